// Package audit keeps the audit trail: one row per audited action.
//
// Writing and chaining are separate steps, so that no request waits on
// another. A request's row is inserted unsealed (no seq, no hash), with an
// HMAC of its content, by a group-commit writer that puts the rows of all
// concurrent requests into one INSERT and answers each caller once that
// INSERT is durable; nothing is locked. The sealer — one per database, in
// the background — then gives unsealed rows gapless seqs in insertion order
// and chains them with an HMAC keyed by a secret that the database does not
// hold, and appends a signed checkpoint of the chain's head to a file kept
// outside the database. Verify finds an edited, deleted, inserted or
// reordered row, a rewrite by anyone without the key, and (against the
// checkpoints) a cut-off tail.
package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
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
	Reason      string // why, for actions that must say (audit.NoteReason)
}

// Options configures a Trail.
type Options struct {
	// Keys sign rows, links and checkpoints; required.
	Keys *Keyring
	// CheckpointFile is where signed checkpoints of the chain's head are
	// appended; empty: none are written (and Verify cannot see a cut-off
	// tail).
	CheckpointFile string
	// SealInterval is how often the background sealer looks for unsealed
	// rows; zero: 150 ms.
	SealInterval time.Duration
	// CheckpointInterval is the least time between two checkpoints written
	// by the background sealer; zero: one second. Seal and Close always
	// write one.
	CheckpointInterval time.Duration
	Log                *slog.Logger
	// Mark, if set, adds to each entry before it is signed what only the
	// application knows about it, such as the break-the-glass accesses
	// the actor read under (internal/careaccess). What it adds is covered
	// by the entry's HMAC and the chain; an error fails the append.
	Mark func(ctx context.Context, e *Entry) error
}

// Trail appends to, seals and verifies the audit trail in one store. It is
// safe for concurrent use, also by several processes sharing one database.
type Trail struct {
	st   *store.Store
	opts Options
	log  *slog.Logger

	// batch is how many rows Verify reads at a time and the sealer seals
	// in one transaction.
	batch int

	writer  writer
	sealer  sealer
	closeMu sync.RWMutex
	closed  bool
}

// NewTrail returns the trail kept in st and starts its writer. Start runs
// the background sealer; Close stops both.
func NewTrail(st *store.Store, opts Options) (*Trail, error) {
	if opts.Keys == nil {
		return nil, errors.New("audit: no key: set HMIS_AUDIT_KEY")
	}
	if opts.SealInterval <= 0 {
		opts.SealInterval = 150 * time.Millisecond
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	t := &Trail{st: st, opts: opts, log: opts.Log, batch: 500}
	t.writer.start(t)
	t.sealer.init(t)
	return t, nil
}

const (
	// appendTimeout bounds an append that no longer listens to the caller's
	// cancellation (see Append).
	appendTimeout = 30 * time.Second
	// unsealedBase is where the positions of unsealed rows start: above
	// every seq there will ever be, below the largest int64 by far more
	// than microseconds since 1970.
	unsealedBase = int64(1) << 62
)

// ErrInvalidEntry wraps the reason an entry cannot be stored at all;
// retrying it is useless.
var ErrInvalidEntry = errors.New("invalid audit entry")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit trail closed")

// Append stores e, unsealed, and returns the row as stored: once it
// returns, the row is committed. Concurrent Appends share one INSERT.
//
// The INSERT runs outside any transaction of the caller, so that the audit
// of a denied or failed action survives that action's rollback. For the
// same reason Append ignores the cancellation of ctx (a client hanging up
// must not erase the record of what it did) and is bounded by a timeout of
// its own. Call it once the caller's transaction has ended: on SQLite a
// write transaction holds the only write lock, so an Append from inside
// one waits for itself until the busy timeout.
//
// Strings are stored as valid UTF-8 without NUL bytes (both replaced by
// U+FFFD): PostgreSQL rejects them, and values such as RequestID come from
// the client, who must not be able to make an audit write fail.
func (t *Trail) Append(ctx context.Context, e Entry) (*ent.AuditEvent, error) {
	if t.opts.Mark != nil {
		if err := t.opts.Mark(ctx, &e); err != nil {
			return nil, fmt.Errorf("audit: append: mark: %w", err)
		}
	}
	row, err := newRow(e)
	if err != nil {
		return nil, fmt.Errorf("audit: append: %w: %w", ErrInvalidEntry, err)
	}
	row.ID = auditevent.DefaultID()
	row.EntryMAC = entryMAC(t.opts.Keys.Signer(), row)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), appendTimeout)
	defer cancel()
	t.closeMu.RLock()
	if t.closed {
		t.closeMu.RUnlock()
		return nil, fmt.Errorf("audit: append: %w", ErrClosed)
	}
	p := &pending{row: row, done: make(chan error, 1)}
	t.writer.queue <- p
	t.closeMu.RUnlock()
	select {
	case err := <-p.done:
		if err != nil {
			return nil, fmt.Errorf("audit: append: %w", err)
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("audit: append: %w", ctx.Err())
	}
	t.sealer.poke()
	return row, nil
}

// Pending is one entry of AppendAll, with the context of the request it
// records (which Options.Mark reads).
type Pending struct {
	Ctx   context.Context
	Entry Entry
}

// AppendAll stores every entry of items as Append would, in as few
// statements as the writer's batches allow, and waits once for all of
// them: one event delivered to a thousand subscribers is a thousand rows
// but not a thousand waits. errs[i] is the outcome of items[i]; a row whose
// error is nil is committed. The entries get one time, so that Mark, which
// depends only on the actor, the patients and the time, runs once per
// distinct actor and patient set rather than once per entry.
func (t *Trail) AppendAll(items []Pending) (errs []error) {
	errs = make([]error, len(items))
	at := time.Now()
	type marked struct {
		types, ids []string
		err        error
	}
	marks := map[string]marked{}
	ps := make([]*pending, len(items))
	for i := range items {
		e := items[i].Entry
		e.OccurredAt = at
		if t.opts.Mark != nil {
			key := e.ActorID + "\x00" + strings.Join(e.PatientIDs, ",")
			m, ok := marks[key]
			if !ok {
				probe := Entry{ActorID: e.ActorID, PatientIDs: e.PatientIDs, OccurredAt: at}
				m.err = t.opts.Mark(items[i].Ctx, &probe)
				m.types, m.ids = probe.ObjectTypes, probe.ObjectIDs
				marks[key] = m
			}
			if m.err != nil {
				errs[i] = fmt.Errorf("audit: append: mark: %w", m.err)
				continue
			}
			e.ObjectTypes = append(slices.Clip(e.ObjectTypes), m.types...)
			e.ObjectIDs = append(slices.Clip(e.ObjectIDs), m.ids...)
		}
		row, err := newRow(e)
		if err != nil {
			errs[i] = fmt.Errorf("audit: append: %w: %w", ErrInvalidEntry, err)
			continue
		}
		row.ID = auditevent.DefaultID()
		row.EntryMAC = entryMAC(t.opts.Keys.Signer(), row)
		ps[i] = &pending{row: row, done: make(chan error, 1)}
	}
	t.closeMu.RLock()
	if t.closed {
		t.closeMu.RUnlock()
		for i, p := range ps {
			if p != nil {
				errs[i] = fmt.Errorf("audit: append: %w", ErrClosed)
			}
		}
		return errs
	}
	for _, p := range ps {
		if p != nil {
			t.writer.queue <- p
		}
	}
	t.closeMu.RUnlock()
	timeout := time.NewTimer(appendTimeout)
	defer timeout.Stop()
	for i, p := range ps {
		if p == nil {
			continue
		}
		select {
		case err := <-p.done:
			if err != nil {
				errs[i] = fmt.Errorf("audit: append: %w", err)
			}
		case <-timeout.C:
			errs[i] = fmt.Errorf("audit: append: %w", context.DeadlineExceeded)
			for j := i + 1; j < len(ps); j++ {
				if ps[j] != nil {
					errs[j] = errs[i]
				}
			}
			t.sealer.poke()
			return errs
		}
	}
	t.sealer.poke()
	return errs
}

// pending is one Append waiting for its batch.
type pending struct {
	row  *ent.AuditEvent
	done chan error
}

// writer coalesces concurrent Appends: it takes whatever is queued, up to
// maxRows, and inserts it in one statement while the next batch gathers.
// There is no wait for a batch to fill: a lone Append is written at once,
// and under load the batches grow by themselves while the previous ones
// are in flight.
type writer struct {
	t       *Trail
	queue   chan *pending
	slots   chan struct{} // INSERTs in flight at once
	done    chan struct{}
	maxRows int
	posMu   sync.Mutex
	lastPos int64
}

func (w *writer) start(t *Trail) {
	w.t = t
	w.queue = make(chan *pending, 4096)
	// SQLite takes one writer at a time anyway; PostgreSQL gains from a
	// few INSERTs in flight while the next batch gathers.
	inFlight := 1
	if t.st.Dialect == "postgres" {
		inFlight = 4
	}
	w.slots = make(chan struct{}, inFlight)
	w.done = make(chan struct{})
	// 20 columns a row stays under both databases' limits on parameters.
	w.maxRows = 500
	go w.run()
}

func (w *writer) run() {
	defer close(w.done)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	for {
		first, ok := <-w.queue
		if !ok {
			return
		}
		batch := []*pending{first}
	gather:
		for len(batch) < w.maxRows {
			select {
			case p, ok := <-w.queue:
				if !ok {
					break gather
				}
				batch = append(batch, p)
			default:
				break gather
			}
		}
		w.slots <- struct{}{}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			err := w.insert(batch)
			<-w.slots
			for _, p := range batch {
				p.done <- err
			}
		}()
	}
}

// positions returns n increasing listing positions for unsealed rows: the
// insertion time in microseconds above unsealedBase, unique within this
// process.
func (w *writer) positions(n int) int64 {
	w.posMu.Lock()
	defer w.posMu.Unlock()
	first := unsealedBase + time.Now().UnixMicro()
	if first <= w.lastPos {
		first = w.lastPos + 1
	}
	w.lastPos = first + int64(n) - 1
	return first
}

func (w *writer) insert(batch []*pending) error {
	ctx, cancel := context.WithTimeout(context.Background(), appendTimeout)
	defer cancel()
	pos := w.positions(len(batch))
	if w.t.st.Dialect == "postgres" && len(batch) >= copyMinRows {
		return w.copyIn(ctx, batch, pos)
	}
	creates := make([]*ent.AuditEventCreate, len(batch))
	for i, p := range batch {
		r := p.row
		r.Position = pos + int64(i)
		c := w.t.st.Client.AuditEvent.Create().
			SetID(r.ID).
			SetPosition(r.Position).
			SetOccurredAt(r.OccurredAt).
			SetOperation(r.Operation).
			SetKind(r.Kind).
			SetOutcome(r.Outcome).
			SetEntryMAC(r.EntryMAC)
		// Empty values stay NULL; the digests encode NULL and empty alike.
		setString(c.SetActorID, r.ActorID)
		setString(c.SetActorName, r.ActorName)
		setString(c.SetErrorCode, r.ErrorCode)
		setString(c.SetPatientIds, r.PatientIds)
		setString(c.SetClientAddr, r.ClientAddr)
		setString(c.SetRequestID, r.RequestID)
		setString(c.SetReason, r.Reason)
		setList(c.SetRoles, r.Roles)
		setList(c.SetObjectTypes, r.ObjectTypes)
		setList(c.SetObjectIds, r.ObjectIds)
		setList(c.SetFields, r.Fields)
		creates[i] = c
	}
	// One statement, committed on its own: no transaction, no lock.
	return w.t.st.Client.AuditEvent.CreateBulk(creates...).Exec(ctx)
}

// copyMinRows is the smallest batch worth a COPY, which takes a
// transaction and four round trips where an INSERT takes one: the few
// rows of concurrent requests go by INSERT, a burst of deliveries by COPY.
const copyMinRows = 100

// copyColumns are the columns an unsealed row has; seq, prev_hash, hash
// and key_id wait for the sealer.
var copyColumns = []string{
	auditevent.FieldID, auditevent.FieldPosition, auditevent.FieldOccurredAt, auditevent.FieldOperation,
	auditevent.FieldKind, auditevent.FieldOutcome, auditevent.FieldEntryMAC, auditevent.FieldActorID,
	auditevent.FieldActorName, auditevent.FieldErrorCode, auditevent.FieldPatientIds, auditevent.FieldClientAddr,
	auditevent.FieldRequestID, auditevent.FieldReason, auditevent.FieldRoles, auditevent.FieldObjectTypes,
	auditevent.FieldObjectIds, auditevent.FieldFields,
}

// copyIn writes a batch with COPY on PostgreSQL: one event delivered to
// thousands of dashboards is thousands of rows, which an INSERT would bind
// value by value and ent would build row by row. The rows are the same
// as insert's, NULL where insert leaves a value unset. Audit rows have no
// ent hook to bypass: they hold nothing encrypted and are written outside
// any request's collector.
func (w *writer) copyIn(ctx context.Context, batch []*pending, pos int64) error {
	rows := make([][]any, len(batch))
	for i, p := range batch {
		r := p.row
		r.Position = pos + int64(i)
		rows[i] = []any{
			r.ID, r.Position, r.OccurredAt, r.Operation, string(r.Kind), string(r.Outcome), r.EntryMAC,
			nullString(r.ActorID), nullString(r.ActorName), nullString(r.ErrorCode), nullString(r.PatientIds),
			nullString(r.ClientAddr), nullString(r.RequestID), nullString(r.Reason),
			jsonList(r.Roles), jsonList(r.ObjectTypes), jsonList(r.ObjectIds), jsonList(r.Fields),
		}
	}
	return w.t.st.CopyIn(ctx, auditevent.Table, copyColumns, rows)
}

// nullString and jsonList encode a value as ent stores it, or NULL where
// insert leaves it unset.
func nullString(v string) any {
	if v == "" {
		return nil
	}
	return v
}

func jsonList(v []string) any {
	if len(v) == 0 {
		return nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil // a []string always marshals
	}
	return string(b)
}

// Close stops taking appends, writes those already taken, stops the
// background sealer and seals what is left, writing a last checkpoint.
func (t *Trail) Close(ctx context.Context) error {
	t.closeMu.Lock()
	if t.closed {
		t.closeMu.Unlock()
		return nil
	}
	t.closed = true
	close(t.writer.queue)
	t.closeMu.Unlock()
	<-t.writer.done
	return t.sealer.stop(ctx)
}

// newRow turns e into the content of a row as it will be stored and read
// back, so that the digests computed before the insert are the ones Verify
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
		Reason:      clean(e.Reason),
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
// can be deleted; neither may happen through the API. The sealer writes a
// row's seq and hash with its own SQL, which no ent hook sees.
func ProtectAppendOnly(client *ent.Client) {
	client.AuditEvent.Use(hook.On(func(ent.Mutator) ent.Mutator {
		return hook.AuditEventFunc(func(_ context.Context, m *ent.AuditEventMutation) (ent.Value, error) {
			return nil, fmt.Errorf("audit: %s refused: %w", m.Op(), ErrAppendOnly)
		})
	}, ent.OpUpdate|ent.OpUpdateOne|ent.OpDelete|ent.OpDeleteOne))
}

// highWater is the last position this process gave a row.
func (w *writer) highWater() int64 {
	w.posMu.Lock()
	defer w.posMu.Unlock()
	return w.lastPos
}
