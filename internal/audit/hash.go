package audit

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
)

// GenesisHash is the prev_hash of the first row: there is nothing before it.
var GenesisHash = strings.Repeat("0", 64)

// Version tags open every encoding, so that one kind of digest can never
// be taken for another, nor a future encoding for this one.
const (
	legacyVersion     = "hmis-audit-chain/v1"
	entryVersion      = "hmis-audit-entry/v2"
	chainVersion      = "hmis-audit-chain/v2"
	checkpointVersion = "hmis-audit-checkpoint/v1"
)

// The encoding of every digest below is a sequence of items, each a string
// as an 8-byte big-endian length and its bytes, a list as an 8-byte count
// and its strings, an integer as 8 bytes big-endian. Length prefixes make
// it unambiguous (no separator a value could contain), and it is easy to
// reproduce outside Go for an independent check. An absent list and an
// empty one encode alike: the databases do not keep that difference apart
// reliably, and it carries no meaning. patient_ids is encoded as stored,
// not as a parsed list, because the patient filter matches that string: an
// edit that leaves the list unchanged but hides the row from the filter
// (dropping the outer commas) must still be found.

// content encodes what the caller recorded, in this order: id,
// occurred_at (UTC, RFC 3339 with up to 9 fractional digits), actor_id,
// actor_name, roles, operation, kind, outcome, error_code, object_types,
// object_ids, patient_ids, fields, client_addr, request_id, and reason
// only when there is one, so rows written before reasons existed keep
// their digests.
func (e *encoder) content(ev *ent.AuditEvent) {
	e.str(ev.ID)
	e.fromOccurredAt(ev)
}

// fromOccurredAt encodes content after the ID: occurred_at onwards. The
// legacy hash put seq between the two.
func (e *encoder) fromOccurredAt(ev *ent.AuditEvent) {
	e.str(ev.OccurredAt.UTC().Format(time.RFC3339Nano))
	e.str(ev.ActorID)
	e.str(ev.ActorName)
	e.list(ev.Roles)
	e.str(ev.Operation)
	e.str(string(ev.Kind))
	e.str(string(ev.Outcome))
	e.str(ev.ErrorCode)
	e.list(ev.ObjectTypes)
	e.list(ev.ObjectIds)
	e.str(ev.PatientIds)
	e.list(ev.Fields)
	e.str(ev.ClientAddr)
	e.str(ev.RequestID)
	if ev.Reason != "" {
		e.str(ev.Reason)
	}
}

// entryMAC returns "keyid:hex(HMAC(key, entry version, content))". The
// writer stores it with the row, so a row that someone able to write the
// database inserts, or edits before the sealer reaches it, is found
// although the sealer will chain it like any other.
func entryMAC(k Key, ev *ent.AuditEvent) string {
	e := encoder{w: hmac.New(sha256.New, k.secret)}
	e.str(entryVersion)
	e.content(ev)
	return k.ID + ":" + hex.EncodeToString(e.w.Sum(nil))
}

// chainHash returns hex(HMAC(key, chain version, seq, content, entry_mac,
// key_id, prev_hash)): the row's link in the chain. Without the key nobody
// can make a row, or a whole rewritten chain, that verifies.
func chainHash(k Key, ev *ent.AuditEvent, seq int64, prevHash string) string {
	e := encoder{w: hmac.New(sha256.New, k.secret)}
	e.str(chainVersion)
	e.int(seq)
	e.content(ev)
	e.str(ev.EntryMAC)
	e.str(k.ID)
	e.str(prevHash)
	return hex.EncodeToString(e.w.Sum(nil))
}

// legacyHash is the unkeyed hash of rows sealed by earlier versions
// (key_id null): hex(SHA-256(v1, id, seq, content without id, prev_hash)).
// Verify accepts such rows only at the start of the chain, where the first
// keyed row's HMAC, covering its prev_hash, vouches for them.
func legacyHash(ev *ent.AuditEvent, seq int64, prevHash string) string {
	e := encoder{w: sha256.New()}
	e.str(legacyVersion)
	e.str(ev.ID)
	e.int(seq)
	e.fromOccurredAt(ev)
	e.str(prevHash)
	return hex.EncodeToString(e.w.Sum(nil))
}

// checkpointSig returns hex(HMAC(key, checkpoint version, seq, hash, at,
// key_id)).
func checkpointSig(k Key, seq int64, chainHash string, at time.Time) string {
	e := encoder{w: hmac.New(sha256.New, k.secret)}
	e.str(checkpointVersion)
	e.int(seq)
	e.str(chainHash)
	e.str(at.UTC().Format(time.RFC3339Nano))
	e.str(k.ID)
	return hex.EncodeToString(e.w.Sum(nil))
}

type encoder struct {
	w   hash.Hash
	buf [8]byte
}

func (e *encoder) int(n int64) {
	binary.BigEndian.PutUint64(e.buf[:], uint64(n))
	e.w.Write(e.buf[:])
}

func (e *encoder) str(s string) {
	e.int(int64(len(s)))
	io.WriteString(e.w, s)
}

func (e *encoder) list(xs []string) {
	e.int(int64(len(xs)))
	for _, x := range xs {
		e.str(x)
	}
}
