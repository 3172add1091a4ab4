package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// oddEntry is an entry whose values stress the encodings: empty and absent
// values, lists with odd strings, text COPY's special characters.
func oddEntry(i int) Entry {
	e := Entry{
		Operation: fmt.Sprintf("op\t%d\n\\N\\", i),
		Kind:      auditevent.KindSUBSCRIPTION,
		Outcome:   auditevent.OutcomeALLOWED,
	}
	switch i % 4 {
	case 0: // everything absent
	case 1:
		e.ActorID, e.ActorName = "usr_a", "Dr. \"Quote\" \\ back\r\nslash"
		e.Roles = []string{"doctor", "", "<&>", "é\u2028"}
		e.ObjectTypes, e.ObjectIDs = []string{"Lab\tResult"}, []string{"lab_1"}
		e.PatientIDs = []string{"pat_1", "pat_2"}
		e.Fields = []string{"Subscription.criticalLabResult", "LabResult.value"}
		e.ClientAddr, e.RequestID, e.Reason = "192.0.2.1", "\\N", "because\x00\xff"
		e.ErrorCode = "FORBIDDEN"
		e.Outcome = auditevent.OutcomeDENIED
	case 2:
		e.Roles = []string{}
		e.Fields = []string{""}
		e.ActorName = " "
	case 3:
		e.Kind, e.Outcome = auditevent.KindSYSTEM, auditevent.OutcomeFAILED
		e.Reason = strings.Repeat("x", 5000)
	}
	return e
}

// rawRow is a row as PostgreSQL holds it, NULLs apart from empty values.
func rawRows(t *testing.T, tr *Trail, ids []string) []string {
	t.Helper()
	out := make([]string, len(ids))
	for i, id := range ids {
		var s string
		err := tr.st.DB.QueryRowContext(context.Background(), `SELECT concat_ws('|',
			quote_nullable(operation), quote_nullable(kind), quote_nullable(outcome), quote_nullable(occurred_at),
			quote_nullable(actor_id), quote_nullable(actor_name), quote_nullable(roles), quote_nullable(error_code),
			quote_nullable(object_types), quote_nullable(object_ids), quote_nullable(patient_ids), quote_nullable(fields),
			quote_nullable(client_addr), quote_nullable(request_id), quote_nullable(reason), quote_nullable(seq),
			quote_nullable(prev_hash), quote_nullable(hash), quote_nullable(key_id), pg_typeof(roles)::text)
			FROM audit_events WHERE id = $1`, id).Scan(&s)
		if err != nil {
			t.Fatalf("row %s: %v", id, err)
		}
		out[i] = s
	}
	return out
}

// A batch of copyMinRows or more goes by COPY; fewer by INSERT. Both must
// store the same row for the same entry, and Verify must accept both.
func TestCopyWritesWhatInsertWrites(t *testing.T) {
	if !testenv.UsingPostgres() {
		t.Skip("COPY is PostgreSQL's")
	}
	st := testenv.Store(t)
	tr := newTrail(t, st)
	n := 2 * copyMinRows
	// Batches straight to the writer, so that which path a batch takes
	// does not depend on how the queue happened to be gathered.
	batch := func(from, count int) []*pending {
		out := make([]*pending, count)
		for i := range out {
			row, err := newRow(oddEntry(from + i))
			if err != nil {
				t.Fatal(err)
			}
			row.ID = auditevent.DefaultID()
			row.EntryMAC = entryMAC(tr.opts.Keys.Signer(), row)
			out[i] = &pending{row: row, done: make(chan error, 1)}
		}
		return out
	}
	if err := tr.writer.insert(batch(0, n)); err != nil { // COPY
		t.Fatalf("COPY batch: %v", err)
	}
	ins := batch(0, 4)
	if err := tr.writer.insert(ins); err != nil { // INSERT
		t.Fatalf("INSERT batch: %v", err)
	}
	var insertIDs []string
	for _, p := range ins {
		insertIDs = append(insertIDs, p.row.ID)
	}
	rows := allRows(t, st)
	if len(rows) != n+4 {
		t.Fatalf("%d rows, want %d", len(rows), n+4)
	}
	var copyIDs []string
	for _, r := range rows[:4] {
		copyIDs = append(copyIDs, r.ID)
	}
	// ent reads them alike.
	for i := 0; i < 4; i++ {
		c, in := *rows[i], *rows[n+i]
		if c.Operation != in.Operation || c.EntryMAC == "" {
			t.Fatalf("row order: copy %q, insert %q", c.Operation, in.Operation)
		}
		c.ID, in.ID, c.EntryMAC, in.EntryMAC, c.Position, in.Position = "", "", "", "", 0, 0
		c.OccurredAt = in.OccurredAt
		if fmt.Sprintf("%#v", c) != fmt.Sprintf("%#v", in) {
			t.Errorf("entry %d read through ent:\n COPY   %#v\n INSERT %#v", i, c, in)
		}
	}
	// PostgreSQL holds them alike (NULL vs empty, JSON text), time apart.
	cr, ir := rawRows(t, tr, copyIDs), rawRows(t, tr, insertIDs)
	for i := range cr {
		strip := func(s string) string {
			f := strings.Split(s, "|")
			f[3] = "<time>"
			return strings.Join(f, "|")
		}
		if strip(cr[i]) != strip(ir[i]) {
			t.Errorf("entry %d as stored:\n COPY   %s\n INSERT %s", i, cr[i], ir[i])
		}
	}
	seal(t, tr)
	wantIntact(t, tr, int64(n+4))
	// entry_mac is checked on COPY-written rows: edit one before sealing.
	if err := tr.writer.insert(batch(0, copyMinRows)); err != nil {
		t.Fatal(err)
	}
	exec(t, st, "UPDATE audit_events SET actor_name = 'someone else' WHERE seq IS NULL AND actor_name IS NOT NULL AND id IN (SELECT id FROM audit_events WHERE seq IS NULL ORDER BY position LIMIT 2)")
	_, err := verify(t, tr)
	if err == nil || !strings.Contains(err.Error(), "entry MAC") {
		t.Fatalf("Verify after editing an unsealed COPY row = %v, want an entry MAC error", err)
	}
}

// The sealer is to seal once appends pause for sealQuiet. A row appended
// less than sealMostDelay after a round, and followed by no other append,
// must still be sealed soon after that pause, whatever SealInterval is
// (Start's contract before the pause rule: "soon after each Append").
func TestSealerSealsAfterThePause(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := newTrailWith(t, st, Options{Keys: testKeys, CheckpointFile: t.TempDir() + "/cp", SealInterval: time.Hour})
	tr.Start()
	sealedWithin := func(id string, d time.Duration) bool {
		deadline := time.Now().Add(d)
		for time.Now().Before(deadline) {
			r, err := st.Client.AuditEvent.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Seq != nil {
				return true
			}
			time.Sleep(10 * time.Millisecond)
		}
		return false
	}
	first, err := tr.Append(ctx, entry(1))
	if err != nil {
		t.Fatal(err)
	}
	if !sealedWithin(first.ID, 10*time.Second) {
		t.Fatal("first row not sealed")
	}
	second, err := tr.Append(ctx, entry(2)) // within a second of that round
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !sealedWithin(second.ID, 5*time.Second) {
		t.Fatalf("a row appended after a round and followed by a pause of %v is still unsealed (SealInterval 1h)", time.Since(start).Round(time.Second))
	}
}
