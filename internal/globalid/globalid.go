// Package globalid makes and checks the opaque IDs every entity carries:
// a short type prefix, an underscore and a ULID ("pat_01J9Z3…").
package globalid

import (
	"crypto/rand"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Annotation carries an entity's prefix from its ent schema into code generation.
type Annotation struct{ Prefix string }

func (Annotation) Name() string { return "GlobalID" }

var (
	entropyMu sync.Mutex
	entropy   = ulid.Monotonic(rand.Reader, 0)
)

// New returns a fresh ID for the type with the given prefix.
func New(prefix string) string {
	entropyMu.Lock()
	id := ulid.MustNew(ulid.Timestamp(time.Now()), entropy)
	entropyMu.Unlock()
	return prefix + "_" + id.String()
}

// Prefix returns the type prefix of a well-formed ID, or "" if the ID is malformed.
func Prefix(id string) string {
	prefix, rest, ok := strings.Cut(id, "_")
	if !ok || prefix == "" || len(rest) != ulid.EncodedSize {
		return ""
	}
	if _, err := ulid.ParseStrict(rest); err != nil {
		return ""
	}
	return prefix
}

// Valid reports whether id is well formed and of the type with the given prefix.
func Valid(id, prefix string) bool { return Prefix(id) == prefix }
