package payprovider

import (
	"bytes"
	"context"
	"testing"
)

func TestSignatureVerifiesOnlyTheSignedBodyUnderItsSecret(t *testing.T) {
	secret := bytes.Repeat([]byte("k"), 32)
	body := []byte(`{"checkoutId":"pck_1","reference":"r1","outcome":"SUCCEEDED"}`)
	sig := Sign(secret, body)
	if !Verify(secret, body, sig) {
		t.Fatalf("a signature does not verify its own body")
	}
	cases := map[string]struct {
		secret, body []byte
		header       string
	}{
		"another body":       {secret, []byte(`{"checkoutId":"pck_2","reference":"r1","outcome":"SUCCEEDED"}`), sig},
		"another secret":     {bytes.Repeat([]byte("j"), 32), body, sig},
		"no secret":          {nil, body, sig},
		"no scheme":          {secret, body, sig[len("sha256="):]},
		"not hex":            {secret, body, "sha256=zz"},
		"empty":              {secret, body, ""},
		"truncated":          {secret, body, sig[:len(sig)-2]},
		"wrong scheme label": {secret, body, "sha1=" + sig[len("sha256="):]},
	}
	for name, c := range cases {
		if Verify(c.secret, c.body, c.header) {
			t.Errorf("%s: verified", name)
		}
	}
}

func TestParseSecrets(t *testing.T) {
	long := string(bytes.Repeat([]byte("s"), 32))
	got, err := ParseSecrets("simulated:" + long + ", mpesa:" + long + "x")
	if err != nil || string(got["simulated"]) != long || string(got["mpesa"]) != long+"x" {
		t.Fatalf("ParseSecrets = %v, %v", got, err)
	}
	for _, bad := range []string{"simulated", "simulated:short", ":" + long, "a:" + long + ",a:" + long} {
		if _, err := ParseSecrets(bad); err == nil {
			t.Errorf("ParseSecrets(%q) accepted", bad)
		} else if bytes.Contains([]byte(err.Error()), []byte("short")) || bytes.Contains([]byte(err.Error()), []byte(long)) {
			t.Errorf("ParseSecrets(%q) leaks the secret: %v", bad, err)
		}
	}
}

func TestParseCallbackRefusesWhatItCannotTrust(t *testing.T) {
	if c, err := ParseCallback([]byte(`{"checkoutId":"pck_1","reference":"r","outcome":"FAILED","amount":"1000000.00"}`)); err != nil || c.Outcome != Failed {
		t.Fatalf("ParseCallback = %+v, %v", c, err)
	}
	for _, bad := range []string{`nope`, `{"reference":"r","outcome":"FAILED"}`, `{"checkoutId":"x","outcome":"FAILED"}`,
		`{"checkoutId":"x","reference":"r","outcome":"MAYBE"}`} {
		if _, err := ParseCallback([]byte(bad)); err == nil {
			t.Errorf("ParseCallback(%s) accepted", bad)
		}
	}
}

func TestSimulatedCheckoutsAreDistinctSessions(t *testing.T) {
	a, err := Simulated{}.StartCheckout(context.Background(), Checkout{ID: "pck_1", Amount: 100, Method: MobileMoney})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Simulated{}.StartCheckout(context.Background(), Checkout{ID: "pck_1", Amount: 100, Method: Card})
	if a.ID == "" || a.ID == b.ID || a.Instructions == "" {
		t.Fatalf("sessions %+v and %+v", a, b)
	}
}
