package audit

import (
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

// hashVersion opens every encoded row, so a future change to the encoding
// can never produce a hash that an old verifier would accept by accident.
const hashVersion = "hmis-audit-chain/v1"

// rowHash returns hex(SHA-256(encoding of ev)). It reads only what is stored
// in the row, so Append (before the insert) and Verify (after a read) compute
// it from the same values.
//
// The encoding is a sequence of items in a fixed order, each a string as an
// 8-byte big-endian length and its bytes, a list as an 8-byte count and its
// strings, an integer as 8 bytes big-endian:
//
//	version, id, seq, occurred_at (UTC, RFC 3339 with up to 9 fractional
//	digits), actor_id, actor_name, roles, operation, kind, outcome,
//	error_code, object_types, object_ids, patient_ids (the stored ",a,b,"
//	string, verbatim), fields, client_addr, request_id, prev_hash
//
// Length prefixes make it unambiguous (no separator a value could contain),
// and it is easy to reproduce outside Go for an independent check. An absent
// list and an empty one encode alike: the databases do not keep that
// difference apart reliably, and it carries no meaning. patient_ids is
// hashed as stored, not as a parsed list, because the patient filter
// matches that string: an edit that leaves the list unchanged but hides the
// row from the filter (dropping the outer commas) must still break the chain.
func rowHash(ev *ent.AuditEvent) string {
	h := sha256.New()
	e := encoder{w: h}
	e.str(hashVersion)
	e.str(ev.ID)
	e.int(ev.Seq)
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
	e.str(ev.PrevHash)
	return hex.EncodeToString(h.Sum(nil))
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
