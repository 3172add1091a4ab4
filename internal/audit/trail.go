// Package audit keeps the audit trail: one row per audited action, in one
// chain where each row carries the hash of the row before it, so that an
// edit, deletion or insertion made behind the API's back (in the database
// itself) is found by Verify.
//
// The chain proves that rows were not changed in place; it cannot by itself
// show that the newest rows were cut off, or that the whole tail was
// rewritten with fresh hashes. Recording the head (seq and hash) somewhere
// the database's operators cannot write closes that gap.
package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/ent/hook"
	"github.com/hmis-dev/hmis/internal/store"
)

// Entry is what the caller knows about one audited action.
//
// ObjectTypes, ObjectIDs, PatientIDs and Fields are sets: they are stored
// deduplicated and sorted, without empty strings, because their order says
// nothing about the action and a canonical form keeps equal actions equal
// in the table. Roles keep the caller's order.
type Entry struct {
	OccurredAt  time.Time // zero: now
	ActorID     string
	ActorName   string
	Roles       []string
	Operation   string // e.g. "bookAppointment", "query:patients", "login"
	Kind        auditevent.Kind
	Outcome     auditevent.Outcome
	ErrorCode   string
	ObjectTypes []string
	ObjectIDs   []string
	PatientIDs  []string // must not contain ',' (see PatientIDs' storage in the schema)
	Fields      []string // "Patient.givenName", ...
	ClientAddr  string
	RequestID   string
}

// Trail appends to and verifies the audit chain in one store. It is safe for
// concurrent use, also by several processes sharing one PostgreSQL database.
type Trail struct {
	st    *store.Store
	batch int
}

// NewTrail returns the trail kept in st.
func NewTrail(st *store.Store) *Trail {
	return &Trail{st: st, batch: 500}
}

const (
	// chainLock serializes appends across processes on PostgreSQL, where
	// reading the head and inserting after it would otherwise race.
	chainLock = "audit-chain"
	// appendTimeout bounds an append that no longer listens to the caller's
	// cancellation (see Append).
	appendTimeout = 30 * time.Second
	// appendAttempts: a unique-constraint clash (a second writer that did
	// not take the lock, a transaction isolation level that read a stale
	// head) is resolved by reading the head again.
	appendAttempts = 3
)

// Append adds e at the end of the chain and returns the stored row.
//
// It runs in its own transaction, never the caller's, so that the audit of
// a denied or failed action survives that action's rollback. For the same
// reason it ignores the cancellation of ctx (a client hanging up must not
// erase the record of what it did) and is bounded by a timeout of its own.
// Call it once the caller's transaction has ended: on SQLite a write
// transaction holds the only write lock, so an Append from inside one waits
// for itself until the busy timeout.
//
// Strings are stored as valid UTF-8 without NUL bytes (both replaced by
// U+FFFD): PostgreSQL rejects them, and values such as RequestID come from
// the client, who must not be able to make an audit write fail.
func (t *Trail) Append(ctx context.Context, e Entry) (*ent.AuditEvent, error) {
	row, err := newRow(e)
	if err != nil {
		return nil, fmt.Errorf("audit: append: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		saved, err := t.appendOnce(ctx, row)
		if err == nil {
			return saved, nil
		}
		if !ent.IsConstraintError(err) || attempt == appendAttempts {
			return nil, fmt.Errorf("audit: append: %w", err)
		}
	}
}

func (t *Trail) appendOnce(ctx context.Context, content *ent.AuditEvent) (*ent.AuditEvent, error) {
	var saved *ent.AuditEvent
	err := t.st.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if err := t.st.Lock(ctx, tx, chainLock); err != nil {
			return err
		}
		lastSeq, lastHash, err := head(ctx, tx)
		if err != nil {
			return err
		}
		r := *content
		r.ID = auditevent.DefaultID()
		r.Seq = lastSeq + 1
		r.PrevHash = lastHash
		r.Hash = rowHash(&r)
		c := tx.AuditEvent.Create().
			SetID(r.ID).
			SetSeq(r.Seq).
			SetOccurredAt(r.OccurredAt).
			SetOperation(r.Operation).
			SetKind(r.Kind).
			SetOutcome(r.Outcome).
			SetPrevHash(r.PrevHash).
			SetHash(r.Hash)
		// Empty values stay NULL; rowHash encodes NULL and empty alike.
		setString(c.SetActorID, r.ActorID)
		setString(c.SetActorName, r.ActorName)
		setString(c.SetErrorCode, r.ErrorCode)
		setString(c.SetPatientIds, r.PatientIds)
		setString(c.SetClientAddr, r.ClientAddr)
		setString(c.SetRequestID, r.RequestID)
		setList(c.SetRoles, r.Roles)
		setList(c.SetObjectTypes, r.ObjectTypes)
		setList(c.SetObjectIds, r.ObjectIds)
		setList(c.SetFields, r.Fields)
		saved, err = c.Save(ctx)
		return err
	})
	return saved, err
}

// head reads the last row's seq and hash with plain SQL rather than through
// the ent client, so that no query interceptor (row scoping) can hide the
// real head and fork the chain.
func head(ctx context.Context, tx *ent.Tx) (int64, string, error) {
	rows, err := tx.QueryContext(ctx, fmt.Sprintf("SELECT %s, %s FROM %s ORDER BY %s DESC LIMIT 1",
		auditevent.FieldSeq, auditevent.FieldHash, auditevent.Table, auditevent.FieldSeq))
	if err != nil {
		return 0, "", fmt.Errorf("read chain head: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, "", fmt.Errorf("read chain head: %w", err)
		}
		return 0, GenesisHash, nil
	}
	var (
		seq  int64
		hash string
	)
	if err := rows.Scan(&seq, &hash); err != nil {
		return 0, "", fmt.Errorf("read chain head: %w", err)
	}
	return seq, hash, rows.Close()
}

// newRow turns e into the content of a row as it will be stored and read
// back, so that the hash computed before the insert is the one Verify
// recomputes.
func newRow(e Entry) (*ent.AuditEvent, error) {
	if err := auditevent.KindValidator(e.Kind); err != nil {
		return nil, err
	}
	if err := auditevent.OutcomeValidator(e.Outcome); err != nil {
		return nil, err
	}
	patients, err := patientIDsColumn(e.PatientIDs)
	if err != nil {
		return nil, err
	}
	at := e.OccurredAt
	if at.IsZero() {
		at = time.Now()
	}
	return &ent.AuditEvent{
		// PostgreSQL keeps microseconds; dropping the rest before hashing
		// makes the stored time the hashed time on every database.
		OccurredAt:  at.UTC().Truncate(time.Microsecond),
		ActorID:     clean(e.ActorID),
		ActorName:   clean(e.ActorName),
		Roles:       cleanList(e.Roles),
		Operation:   clean(e.Operation),
		Kind:        e.Kind,
		Outcome:     e.Outcome,
		ErrorCode:   clean(e.ErrorCode),
		ObjectTypes: cleanSet(e.ObjectTypes),
		ObjectIds:   cleanSet(e.ObjectIDs),
		PatientIds:  patients,
		Fields:      cleanSet(e.Fields),
		ClientAddr:  clean(e.ClientAddr),
		RequestID:   clean(e.RequestID),
	}, nil
}

// patientIDsColumn encodes the patient set as ",id1,id2," ("" for none).
// An ID holding a comma would make the per-patient filter match the wrong
// rows, so it is refused rather than stored.
func patientIDsColumn(ids []string) (string, error) {
	set := cleanSet(ids)
	if len(set) == 0 {
		return "", nil
	}
	for _, id := range set {
		if strings.Contains(id, ",") {
			return "", errors.New("patient ID contains a comma")
		}
	}
	return "," + strings.Join(set, ",") + ",", nil
}

func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

func cleanList(xs []string) []string {
	if len(xs) == 0 {
		return nil
	}
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = clean(x)
	}
	return out
}

func cleanSet(xs []string) []string {
	seen := make(map[string]bool, len(xs))
	var out []string
	for _, x := range xs {
		x = clean(x)
		if x == "" || seen[x] {
			continue
		}
		seen[x] = true
		out = append(out, x)
	}
	sort.Strings(out)
	return out
}

func setString(set func(string) *ent.AuditEventCreate, v string) {
	if v != "" {
		set(v)
	}
}

func setList(set func([]string) *ent.AuditEventCreate, v []string) {
	if len(v) > 0 {
		set(v)
	}
}

// ErrAppendOnly is returned for any attempt to update or delete an audit row
// through the ent client.
var ErrAppendOnly = errors.New("audit events are append-only")

// ProtectAppendOnly makes client (and the transactions it starts) refuse
// every update and delete of AuditEvent. The schema already makes each field
// immutable, but an ent mutation can still clear optional fields, and rows
// can be deleted; neither may happen through the API.
func ProtectAppendOnly(client *ent.Client) {
	client.AuditEvent.Use(hook.On(func(ent.Mutator) ent.Mutator {
		return hook.AuditEventFunc(func(_ context.Context, m *ent.AuditEventMutation) (ent.Value, error) {
			return nil, fmt.Errorf("audit: %s refused: %w", m.Op(), ErrAppendOnly)
		})
	}, ent.OpUpdate|ent.OpUpdateOne|ent.OpDelete|ent.OpDeleteOne))
}
