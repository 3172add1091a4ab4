package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/ent/intercept"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

func entry(i int) Entry {
	return Entry{
		ActorID:     "usr_actor",
		ActorName:   "Dr. Example",
		Roles:       []string{"doctor", "admin"},
		Operation:   fmt.Sprintf("op%d", i),
		Kind:        auditevent.KindMUTATION,
		Outcome:     auditevent.OutcomeALLOWED,
		ObjectTypes: []string{"Patient"},
		ObjectIDs:   []string{fmt.Sprintf("pat_%d", i)},
		PatientIDs:  []string{fmt.Sprintf("pat_%d", i)},
		Fields:      []string{"Patient.givenName", "Patient.familyName"},
		ClientAddr:  "192.0.2.1",
		RequestID:   fmt.Sprintf("req-%d", i),
	}
}

func appendN(t testing.TB, tr *Trail, n int) []*ent.AuditEvent {
	t.Helper()
	out := make([]*ent.AuditEvent, 0, n)
	for i := 1; i <= n; i++ {
		ev, err := tr.Append(context.Background(), entry(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, ev)
	}
	return out
}

func exec(t *testing.T, st *store.Store, query string) {
	t.Helper()
	if _, err := st.DB.ExecContext(context.Background(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func allRows(t *testing.T, st *store.Store) []*ent.AuditEvent {
	t.Helper()
	rows, err := st.Client.AuditEvent.Query().Order(auditevent.BySeq()).All(context.Background())
	if err != nil {
		t.Fatalf("read rows: %v", err)
	}
	return rows
}

func wantBroken(t *testing.T, checked int64, err error, seq int64, reason string, wantChecked int64) {
	t.Helper()
	var be *BrokenError
	if !errors.As(err, &be) {
		t.Fatalf("Verify = %v, want a *BrokenError at seq %d", err, seq)
	}
	if be.Seq != seq || be.Reason != reason || be.ID == "" {
		t.Fatalf("Verify = %+v, want seq %d, reason %q and the row's ID", be, seq, reason)
	}
	if checked != wantChecked {
		t.Fatalf("checked = %d, want %d", checked, wantChecked)
	}
}

func TestAppendAndVerify(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := NewTrail(st)
	appended := appendN(t, tr, 5)

	rows := allRows(t, st)
	if len(rows) != 5 {
		t.Fatalf("got %d rows, want 5", len(rows))
	}
	prev := GenesisHash
	for i, r := range rows {
		if r.Seq != int64(i+1) {
			t.Errorf("row %d: seq %d", i, r.Seq)
		}
		if r.PrevHash != prev {
			t.Errorf("seq %d: prev_hash %s, want %s", r.Seq, r.PrevHash, prev)
		}
		if len(r.Hash) != 64 || r.Hash != appended[i].Hash || r.ID != appended[i].ID {
			t.Errorf("seq %d: stored (%s, %s), returned (%s, %s)", r.Seq, r.ID, r.Hash, appended[i].ID, appended[i].Hash)
		}
		if !strings.HasPrefix(r.ID, "aud_") {
			t.Errorf("seq %d: id %q lacks the aud_ prefix", r.Seq, r.ID)
		}
		prev = r.Hash
	}

	checked, err := tr.Verify(ctx)
	if err != nil || checked != 5 {
		t.Fatalf("Verify = (%d, %v), want (5, nil)", checked, err)
	}
}

func TestVerifyEmptyChain(t *testing.T) {
	checked, err := NewTrail(testenv.Store(t)).Verify(context.Background())
	if err != nil || checked != 0 {
		t.Fatalf("Verify = (%d, %v), want (0, nil)", checked, err)
	}
}

func TestVerifyFindsTampering(t *testing.T) {
	forged := strings.Repeat("f", 64)
	cases := []struct {
		name   string
		tamper func(t *testing.T, st *store.Store)
		seq    int64
		reason string
		// rows found intact before the break: fewer than seq-1 when rows
		// before it are missing
		checked int64
	}{
		{
			name: "operation changed",
			tamper: func(t *testing.T, st *store.Store) {
				exec(t, st, "UPDATE audit_events SET operation = 'forged' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name: "patient removed from patient_ids",
			tamper: func(t *testing.T, st *store.Store) {
				exec(t, st, "UPDATE audit_events SET patient_ids = ',pat_other,' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			// Same list, but the row no longer matches the per-patient filter.
			name: "patient_ids outer commas dropped",
			tamper: func(t *testing.T, st *store.Store) {
				exec(t, st, "UPDATE audit_events SET patient_ids = 'pat_3' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name: "roles changed",
			tamper: func(t *testing.T, st *store.Store) {
				exec(t, st, `UPDATE audit_events SET roles = '["admin"]' WHERE seq = 3`)
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name:   "row deleted",
			tamper: func(t *testing.T, st *store.Store) { exec(t, st, "DELETE FROM audit_events WHERE seq = 3") },
			seq:    4, reason: ReasonSeqGap, checked: 2,
		},
		{
			// Row 3 is checked before row 4's link to it, so the break is
			// reported at 3, where the stored hash no longer fits the content.
			name: "hash replaced",
			tamper: func(t *testing.T, st *store.Store) {
				exec(t, st, "UPDATE audit_events SET hash = '"+forged+"' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			// Rehashing the edited row makes it consistent in itself; the
			// next row's prev_hash still names the original.
			name: "row edited and rehashed",
			tamper: func(t *testing.T, st *store.Store) {
				r, err := st.Client.AuditEvent.Query().Where(auditevent.Seq(3)).Only(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				r.Operation = "forged"
				exec(t, st, "UPDATE audit_events SET operation = 'forged', hash = '"+rowHash(r)+"' WHERE seq = 3")
			},
			seq: 4, reason: ReasonPrevHash, checked: 3,
		},
		{
			name: "rows swapped",
			tamper: func(t *testing.T, st *store.Store) {
				exec(t, st, "UPDATE audit_events SET seq = 100 WHERE seq = 2")
				exec(t, st, "UPDATE audit_events SET seq = 2 WHERE seq = 3")
				exec(t, st, "UPDATE audit_events SET seq = 3 WHERE seq = 100")
			},
			seq: 2, reason: ReasonPrevHash, checked: 1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := testenv.Store(t)
			tr := NewTrail(st)
			appendN(t, tr, 5)
			tc.tamper(t, st)
			checked, err := tr.Verify(context.Background())
			wantBroken(t, checked, err, tc.seq, tc.reason, tc.checked)
		})
	}
}

// The chain cannot show that its newest rows were cut off; the package
// documentation says what closes that gap. This pins the limit down so
// that nobody reads more into a passing Verify.
func TestVerifyCannotSeeTailTruncation(t *testing.T) {
	st := testenv.Store(t)
	tr := NewTrail(st)
	appendN(t, tr, 5)
	exec(t, st, "DELETE FROM audit_events WHERE seq = 5")
	checked, err := tr.Verify(context.Background())
	if err != nil || checked != 4 {
		t.Fatalf("Verify = (%d, %v), want (4, nil)", checked, err)
	}
}

func TestVerifyAcrossBatches(t *testing.T) {
	st := testenv.Store(t)
	tr := NewTrail(st)
	tr.batch = 2
	appendN(t, tr, 7)
	checked, err := tr.Verify(context.Background())
	if err != nil || checked != 7 {
		t.Fatalf("Verify = (%d, %v), want (7, nil)", checked, err)
	}
	exec(t, st, "DELETE FROM audit_events WHERE seq = 5")
	checked, err = tr.Verify(context.Background())
	wantBroken(t, checked, err, 6, ReasonSeqGap, 4)
}

func TestConcurrentAppends(t *testing.T) {
	const workers, each = 50, 4
	ctx := context.Background()
	st := testenv.Store(t)
	tr := NewTrail(st)

	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if _, err := tr.Append(ctx, entry(w*each+i)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("append: %v", err)
	}

	rows := allRows(t, st)
	if len(rows) != workers*each {
		t.Fatalf("got %d rows, want %d", len(rows), workers*each)
	}
	for i, r := range rows {
		if r.Seq != int64(i+1) {
			t.Fatalf("row %d has seq %d: not gapless", i, r.Seq)
		}
	}
	checked, err := tr.Verify(ctx)
	if err != nil || checked != workers*each {
		t.Fatalf("Verify = (%d, %v), want (%d, nil)", checked, err, workers*each)
	}
}

// Two stores on one database stand for two server processes: each has its
// own connection pool, so only the database can serialize their appends.
// appendOnce is called directly so that the retry in Append cannot hide a
// head read that raced.
func TestAppendsFromTwoProcesses(t *testing.T) {
	const workers, each = 20, 5
	ctx := context.Background()
	url, path := testenv.DatabaseURL(t), testenv.SQLitePath(t)
	var trails [2]*Trail
	for i := range trails {
		st, err := store.Open(url, path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		if i == 0 {
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		trails[i] = NewTrail(st)
	}

	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		tr := trails[w%2]
		wg.Go(func() {
			for i := range each {
				row, err := newRow(entry(w*each + i))
				if err == nil {
					_, err = tr.appendOnce(ctx, row)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("append: %v", err)
	}
	checked, err := trails[1].Verify(ctx)
	if err != nil || checked != workers*each {
		t.Fatalf("Verify = (%d, %v), want (%d, nil)", checked, err, workers*each)
	}
}

func TestProtectAppendOnly(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	ProtectAppendOnly(st.Client)
	tr := NewTrail(st)
	ev := appendN(t, tr, 1)[0]

	attempts := map[string]func(c *ent.Client) error{
		"UpdateOneID": func(c *ent.Client) error {
			u := c.AuditEvent.UpdateOneID(ev.ID)
			u.Mutation().ClearActorID()
			u.Mutation().ClearPatientIds()
			_, err := u.Save(ctx)
			return err
		},
		"Update": func(c *ent.Client) error {
			u := c.AuditEvent.Update().Where(auditevent.Seq(1))
			u.Mutation().ClearRoles()
			_, err := u.Save(ctx)
			return err
		},
		"DeleteOneID": func(c *ent.Client) error { return c.AuditEvent.DeleteOneID(ev.ID).Exec(ctx) },
		"Delete": func(c *ent.Client) error {
			_, err := c.AuditEvent.Delete().Exec(ctx)
			return err
		},
	}
	for name, attempt := range attempts {
		if err := attempt(st.Client); !errors.Is(err, ErrAppendOnly) {
			t.Errorf("%s: err = %v, want ErrAppendOnly", name, err)
		}
		// Transactions share the client's hooks, including ones added
		// after the client was made.
		tx, err := st.Client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := attempt(tx.Client()); !errors.Is(err, ErrAppendOnly) {
			t.Errorf("%s in a transaction: err = %v, want ErrAppendOnly", name, err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}

	rows := allRows(t, st)
	if len(rows) != 1 || rows[0].ActorID != ev.ActorID || rows[0].PatientIds != ev.PatientIds || !slices.Equal(rows[0].Roles, ev.Roles) {
		t.Fatalf("rows after refused changes: %+v, want the original %+v", rows, ev)
	}
	if checked, err := tr.Verify(ctx); err != nil || checked != 1 {
		t.Fatalf("Verify = (%d, %v), want (1, nil)", checked, err)
	}
	// Appending still works under the hook.
	if _, err := tr.Append(ctx, entry(2)); err != nil {
		t.Fatalf("append under the hook: %v", err)
	}
}

func TestTimeRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := NewTrail(st)
	at := time.Date(2024, 2, 29, 23, 59, 58, 123456789, time.FixedZone("UTC+0530", 5*3600+1800))
	e := entry(1)
	e.OccurredAt = at
	ev, err := tr.Append(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2024, 2, 29, 18, 29, 58, 123456000, time.UTC)
	if !ev.OccurredAt.Equal(want) || ev.OccurredAt.Location() != time.UTC {
		t.Fatalf("returned occurred_at %v, want %v", ev.OccurredAt, want)
	}
	got := allRows(t, st)[0]
	if !got.OccurredAt.Equal(want) {
		t.Fatalf("stored occurred_at %v, want %v", got.OccurredAt, want)
	}
	if h := rowHash(got); h != ev.Hash {
		t.Fatalf("hash recomputed after read %s, appended %s", h, ev.Hash)
	}
	if checked, err := tr.Verify(ctx); err != nil || checked != 1 {
		t.Fatalf("Verify = (%d, %v), want (1, nil)", checked, err)
	}
}

func TestAppendDefaultsTimeToNow(t *testing.T) {
	before := time.Now().Add(-time.Second)
	ev, err := NewTrail(testenv.Store(t)).Append(context.Background(), entry(1))
	if err != nil {
		t.Fatal(err)
	}
	if ev.OccurredAt.Before(before) || ev.OccurredAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("occurred_at %v is not now", ev.OccurredAt)
	}
}

func TestEntryNormalization(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := NewTrail(st)
	ev, err := tr.Append(ctx, Entry{
		Roles:       []string{"nurse", "doctor", "nurse"},
		Operation:   "query:patients",
		Kind:        auditevent.KindQUERY,
		Outcome:     auditevent.OutcomeDENIED,
		ErrorCode:   "FORBIDDEN",
		ObjectTypes: []string{"Patient", "Appointment", "Patient"},
		ObjectIDs:   []string{"pat_b", "", "apt_a", "pat_b"},
		PatientIDs:  []string{"pat_b", "pat_a", "pat_b", ""},
		Fields:      []string{"Patient.mrn", "Patient.birthDate", "Patient.mrn"},
		// Client-supplied values: PostgreSQL refuses NUL and invalid UTF-8.
		RequestID:  "req\x00id\xff",
		ClientAddr: "198.51.100.7",
	})
	if err != nil {
		t.Fatal(err)
	}
	got := allRows(t, st)[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"roles", got.Roles, []string{"nurse", "doctor", "nurse"}},
		{"object_types", got.ObjectTypes, []string{"Appointment", "Patient"}},
		{"object_ids", got.ObjectIds, []string{"apt_a", "pat_b"}},
		{"patient_ids", got.PatientIds, ",pat_a,pat_b,"},
		{"fields", got.Fields, []string{"Patient.birthDate", "Patient.mrn"}},
		{"request_id", got.RequestID, "req\uFFFDid\uFFFD"},
		{"actor_id", got.ActorID, ""},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if got.Hash != ev.Hash {
		t.Errorf("stored hash %s, returned %s", got.Hash, ev.Hash)
	}

	for id, want := range map[string]int{"pat_a": 1, "pat_b": 1, "pat_": 0} {
		n, err := st.Client.AuditEvent.Query().Where(auditevent.PatientIdsContains("," + id + ",")).Count(ctx)
		if err != nil || n != want {
			t.Errorf("rows for patient %s = (%d, %v), want %d", id, n, err, want)
		}
	}
	if checked, err := tr.Verify(ctx); err != nil || checked != 1 {
		t.Fatalf("Verify = (%d, %v), want (1, nil)", checked, err)
	}
}

func TestAppendRefusesBadEntries(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := NewTrail(st)
	bad := map[string]Entry{
		"comma in patient ID": {Operation: "x", Kind: auditevent.KindQUERY, Outcome: auditevent.OutcomeALLOWED, PatientIDs: []string{"pat_a,pat_b"}},
		"no kind":             {Operation: "x", Outcome: auditevent.OutcomeALLOWED},
		"unknown outcome":     {Operation: "x", Kind: auditevent.KindQUERY, Outcome: "MAYBE"},
	}
	for name, e := range bad {
		if _, err := tr.Append(ctx, e); err == nil {
			t.Errorf("%s: appended", name)
		}
	}
	if n := len(allRows(t, st)); n != 0 {
		t.Fatalf("%d rows after refused entries, want 0", n)
	}
}

func TestAppendSurvivesCancelledContext(t *testing.T) {
	st := testenv.Store(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := NewTrail(st).Append(ctx, entry(1)); err != nil {
		t.Fatalf("append with a cancelled context: %v", err)
	}
	if n := len(allRows(t, st)); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

// A denied or failed action rolls its transaction back; its audit row must
// stay. On SQLite an open write transaction would block the append itself
// (see Append), so only PostgreSQL can show the row outliving a
// transaction that is still open when Append runs.
func TestAppendOutlivesCallerRollback(t *testing.T) {
	if !testenv.UsingPostgres() {
		t.Skip("needs concurrent writers: set HMIS_TEST_DATABASE_URL")
	}
	ctx := context.Background()
	st := testenv.Store(t)
	tr := NewTrail(st)
	tx, err := st.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Append(ent.NewTxContext(ctx, tx), entry(1)); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := len(allRows(t, st)); n != 1 {
		t.Fatalf("%d rows after the caller's rollback, want 1", n)
	}
}

// Row scoping on AuditEvent queries must not make Append see a shorter
// chain and start a fork.
func TestAppendIgnoresQueryInterceptors(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := NewTrail(st)
	appendN(t, tr, 2)
	st.Client.AuditEvent.Intercept(intercept.TraverseAuditEvent(func(_ context.Context, q *ent.AuditEventQuery) error {
		q.Where(auditevent.SeqLT(0))
		return nil
	}))
	ev, err := tr.Append(ctx, entry(3))
	if err != nil {
		t.Fatal(err)
	}
	if ev.Seq != 3 {
		t.Fatalf("appended at seq %d, want 3", ev.Seq)
	}
}

func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	tr := NewTrail(testenv.Store(b))
	e := entry(1)
	for b.Loop() {
		if _, err := tr.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
