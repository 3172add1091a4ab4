// Package crypt encrypts sensitive fields at rest. The fields are marked in
// ent/schema (schema.Encrypted) and listed by code generation in
// ent.EncryptedColumns; ent hooks encrypt them on every write and an ent
// interceptor decrypts them on every read, so domain code only ever handles
// plaintext while the database holds authenticated ciphertext.
//
// Keys form two layers. The data keyset (Tink, AES-256-GCM) encrypts the
// fields and the index keyset (Tink, HMAC-SHA256) computes blind indexes
// for exact-match lookups; both are kept in the database, wrapped by a
// key-encryption key (KEK) that never is: the master key from the
// environment or a file today, a KMS later.
package crypt

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead/subtle"
)

// KEK wraps and unwraps the data and index keysets. A KMS implements it by
// calling its encrypt and decrypt operations with the associated data.
type KEK interface {
	Wrap(plaintext, associatedData []byte) ([]byte, error)
	Unwrap(ciphertext, associatedData []byte) ([]byte, error)
}

// MasterKeySize is the length of a master key: AES-256.
const MasterKeySize = 32

// MasterKey is a KEK held in memory: AES-256-GCM with a random nonce.
type MasterKey struct{ aead *subtle.AESGCM }

// NewMasterKey makes a KEK from 32 raw bytes.
func NewMasterKey(raw []byte) (*MasterKey, error) {
	if len(raw) != MasterKeySize {
		return nil, fmt.Errorf("the master key must be %d bytes, not %d", MasterKeySize, len(raw))
	}
	a, err := subtle.NewAESGCM(raw)
	if err != nil {
		return nil, err
	}
	return &MasterKey{aead: a}, nil
}

// ParseMasterKey reads a master key written in base64 (standard or URL
// alphabet, padded or not), as HMIS_MASTER_KEY and key files hold it.
func ParseMasterKey(text string) (*MasterKey, error) {
	text = strings.TrimSpace(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(text); err == nil {
			return NewMasterKey(raw)
		}
	}
	return nil, errors.New("the master key must be 32 bytes in base64 (try: openssl rand -base64 32)")
}

// Wrap implements KEK.
func (k *MasterKey) Wrap(plaintext, associatedData []byte) ([]byte, error) {
	return k.aead.Encrypt(plaintext, associatedData)
}

// Unwrap implements KEK.
func (k *MasterKey) Unwrap(ciphertext, associatedData []byte) ([]byte, error) {
	return k.aead.Decrypt(ciphertext, associatedData)
}

// NewMasterKeyText returns a fresh master key in base64.
func NewMasterKeyText() (string, error) {
	raw := make([]byte, MasterKeySize)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(raw), nil
}

// LoadMasterKeyFile reads a master key file; with create, it first makes
// one (readable by the owner only) if there is none, and reports so.
func LoadMasterKeyFile(path string, create bool) (key *MasterKey, created bool, err error) {
	if create {
		if created, err = createKeyFile(path); err != nil {
			return nil, false, err
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, fmt.Errorf("read master key file: %w", err)
	}
	key, err = ParseMasterKey(string(b))
	if err != nil {
		return nil, false, fmt.Errorf("master key file %s: %w", path, err)
	}
	return key, created, nil
}

// createKeyFile writes a new key to path unless a file is there; a link
// from a finished temporary file, so that two processes starting at once
// agree on one key.
func createKeyFile(path string) (bool, error) {
	if _, err := os.Stat(path); err == nil {
		return false, nil
	}
	text, err := NewMasterKeyText()
	if err != nil {
		return false, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".master-key-*")
	if err != nil {
		return false, fmt.Errorf("create master key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(text + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("write master key file: %w", err)
	}
	switch err := os.Link(tmp.Name(), path); {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrExist):
		return false, nil
	default:
		return false, fmt.Errorf("create master key file: %w", err)
	}
}

// tinkKEK lets Tink wrap a keyset with a KEK.
type tinkKEK struct{ KEK }

func (k tinkKEK) Encrypt(plaintext, associatedData []byte) ([]byte, error) {
	return k.Wrap(plaintext, associatedData)
}

func (k tinkKEK) Decrypt(ciphertext, associatedData []byte) ([]byte, error) {
	return k.Unwrap(ciphertext, associatedData)
}
