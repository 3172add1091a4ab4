package audit

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// MinKeyBytes is the shortest audit secret accepted: an HMAC-SHA256 key
// shorter than the hash adds no strength and invites guessable secrets.
const MinKeyBytes = 32

// Key is one audit secret and the ID rows and checkpoints name it by.
type Key struct {
	ID     string
	secret []byte
}

// Keyring holds the audit keys: the first signs, every one verifies, so a
// key can be rotated by putting a new one in front of the old.
type Keyring struct{ keys []Key }

var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// ParseKeyring reads "keyid:base64secret[,keyid:base64secret...]", newest
// first.
func ParseKeyring(s string) (*Keyring, error) {
	kr := &Keyring{}
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, enc, ok := strings.Cut(part, ":")
		if !ok || !keyIDPattern.MatchString(id) {
			return nil, errors.New(`each key is "keyid:base64secret", the key ID of letters, digits, '.', '_' or '-' (at most 32)`)
		}
		if seen[id] {
			return nil, fmt.Errorf("key ID %q appears twice", id)
		}
		secret, err := decodeSecret(enc)
		if err != nil {
			return nil, fmt.Errorf("key %q: the secret is not base64", id)
		}
		if len(secret) < MinKeyBytes {
			return nil, fmt.Errorf("key %q: the secret has %d bytes, at least %d are needed", id, len(secret), MinKeyBytes)
		}
		seen[id] = true
		kr.keys = append(kr.keys, Key{ID: id, secret: secret})
	}
	if len(kr.keys) == 0 {
		return nil, errors.New("no key given")
	}
	return kr, nil
}

func decodeSecret(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

// Signer returns the key new rows and checkpoints are signed with.
func (kr *Keyring) Signer() Key { return kr.keys[0] }

func (kr *Keyring) lookup(id string) (Key, bool) {
	for _, k := range kr.keys {
		if k.ID == id {
			return k, true
		}
	}
	return Key{}, false
}

// IDs lists the key IDs, the signing key first.
func (kr *Keyring) IDs() []string {
	ids := make([]string, len(kr.keys))
	for i, k := range kr.keys {
		ids[i] = k.ID
	}
	return ids
}

// NewKeySpec returns a fresh key in the form ParseKeyring reads.
func NewKeySpec(id string) (string, error) {
	secret := make([]byte, MinKeyBytes)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	return id + ":" + base64.StdEncoding.EncodeToString(secret), nil
}

// LoadKeyFile reads the keyring kept in path; with create, a missing file is
// made with a new random key first. It is the development default for a
// database with no HMIS_AUDIT_KEY: such a key, kept beside the database,
// tells apart rows written by HMIS from rows written behind its back only
// as long as the file stays out of the other's reach.
//
// Two processes starting together on one database may both create the
// file: it is written aside and linked into place, so one of them wins and
// the other reads the winner's key, never a half-written file.
func LoadKeyFile(path string, create bool) (kr *Keyring, created bool, err error) {
	if create {
		if created, err = createKeyFile(path); err != nil {
			return nil, false, err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("read audit key file: %w", err)
	}
	kr, err = ParseKeyring(strings.TrimSpace(string(b)))
	if err != nil {
		return nil, false, fmt.Errorf("audit key file %s: %w", path, err)
	}
	return kr, created, nil
}

// createKeyFile makes the key file at path unless it exists.
func createKeyFile(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	spec, err := NewKeySpec("local1")
	if err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".audit-key-*")
	if err != nil {
		return false, fmt.Errorf("create audit key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(spec + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write audit key file: %w", err)
	}
	// CreateTemp made it 0600, readable by the server's user only.
	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	default:
		return false, fmt.Errorf("create audit key file: %w", err)
	}
}
