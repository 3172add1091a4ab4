// Package payprovider is how HMIS talks to online payment providers: a
// Provider starts a checkout for the patient app, and the provider's
// confirmation comes back later as a signed HTTP callback, whose body and
// signature scheme this package defines.
//
// The callback is the only thing that says money moved. Its body is signed
// with HMAC-SHA256 under a secret HMIS shares with that provider alone, so a
// callback signed for one provider is worthless for another, and nobody
// without the secret can make one. The body names the checkout, the
// provider's own transaction reference and the outcome; what was paid and
// for which invoice comes from the checkout HMIS stored, never from the body.
package payprovider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// SignatureHeader carries a callback's signature: "sha256=" and the
// lower-case hex HMAC-SHA256 of the raw request body.
const SignatureHeader = "X-HMIS-Signature"

// Method is how the patient pays.
type Method string

const (
	Card        Method = "CARD"
	MobileMoney Method = "MOBILE_MONEY"
)

// Checkout is what a provider is asked to collect.
type Checkout struct {
	// ID is HMIS's checkout ID, which the provider echoes in its callback.
	ID        string
	InvoiceID string
	PatientID string
	// Amount is in minor units.
	Amount int64
	Method Method
}

// Session is the provider's answer to a checkout: where the app sends the
// patient, or what the patient is told to do.
type Session struct {
	ID           string
	RedirectURL  string
	Instructions string
}

// Provider is a payment provider HMIS can start checkouts with.
type Provider interface {
	// Name is the provider's name in callback URLs and payment keys.
	Name() string
	StartCheckout(ctx context.Context, c Checkout) (Session, error)
}

// Outcome is what a callback reports.
type Outcome string

const (
	Succeeded Outcome = "SUCCEEDED"
	Failed    Outcome = "FAILED"
)

// Callback is the body of POST /payments/callback/{provider}.
type Callback struct {
	CheckoutID string  `json:"checkoutId"`
	Reference  string  `json:"reference"`
	Outcome    Outcome `json:"outcome"`
}

// ParseCallback reads a callback body. Unknown fields are ignored: a
// provider may send more than HMIS reads, and nothing else is trusted.
func ParseCallback(body []byte) (Callback, error) {
	var c Callback
	if err := json.Unmarshal(body, &c); err != nil {
		return Callback{}, fmt.Errorf("callback body is not JSON: %w", err)
	}
	switch {
	case c.CheckoutID == "":
		return Callback{}, errors.New("callback names no checkoutId")
	case c.Reference == "" || len(c.Reference) > 80:
		return Callback{}, errors.New("callback reference must be given and at most 80 bytes")
	case c.Outcome != Succeeded && c.Outcome != Failed:
		return Callback{}, errors.New("callback outcome must be SUCCEEDED or FAILED")
	}
	return c, nil
}

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether header is body's signature under secret. An empty
// secret verifies nothing, so a provider without one configured can never
// confirm a payment.
func Verify(secret, body []byte, header string) bool {
	if len(secret) == 0 {
		return false
	}
	got, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return false
	}
	mac, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(mac, m.Sum(nil))
}

// MinSecretLength is the shortest callback secret accepted.
const MinSecretLength = 32

// ParseSecrets reads "provider:secret" pairs separated by commas.
func ParseSecrets(s string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, secret, ok := strings.Cut(part, ":")
		if !ok || name == "" {
			return nil, fmt.Errorf("%q is not provider:secret", redact(part))
		}
		if len(secret) < MinSecretLength {
			return nil, fmt.Errorf("the secret of %s must be at least %d bytes", name, MinSecretLength)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("%s has two secrets", name)
		}
		out[name] = []byte(secret)
	}
	return out, nil
}

// redact keeps a secret out of an error message.
func redact(part string) string {
	if len(part) > 4 {
		return part[:4] + "…"
	}
	return "…"
}

// RandomSecret returns a fresh secret, for demo mode and tests.
func RandomSecret() []byte {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return []byte(hex.EncodeToString(b))
}
