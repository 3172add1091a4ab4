package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	e := Entry{
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
	if i%3 == 0 {
		e.Reason = fmt.Sprintf("reason %d", i) // some actions give one, most do not
	}
	return e
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

// testKeys is the audit key of the tests; attackerKeys has the same key ID
// and another secret, as someone guessing would.
var (
	testKeys     = mustKeys("test1:" + strings.Repeat("QUJD", 11))
	attackerKeys = mustKeys("test1:" + strings.Repeat("WFla", 11))
)

func mustKeys(spec string) *Keyring {
	kr, err := ParseKeyring(spec)
	if err != nil {
		panic(err)
	}
	return kr
}

// newTrail returns a trail on st with the test key and a checkpoint file of
// the test's own, closed when the test ends.
func newTrail(t testing.TB, st *store.Store) *Trail {
	t.Helper()
	return newTrailWith(t, st, Options{Keys: testKeys, CheckpointFile: filepath.Join(t.TempDir(), "checkpoints")})
}

func newTrailWith(t testing.TB, st *store.Store, opts Options) *Trail {
	t.Helper()
	tr, err := NewTrail(st, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close(context.Background()) })
	return tr
}

func seal(t testing.TB, tr *Trail) int {
	t.Helper()
	n, err := tr.Seal(context.Background())
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return n
}

func verify(t testing.TB, tr *Trail) (Report, error) {
	t.Helper()
	return tr.Verify(context.Background(), time.Minute)
}

func wantIntact(t testing.TB, tr *Trail, checked int64) Report {
	t.Helper()
	rep, err := verify(t, tr)
	if err != nil || rep.Checked != checked {
		t.Fatalf("Verify = (%+v, %v), want %d intact rows", rep, err, checked)
	}
	return rep
}

func exec(t *testing.T, st *store.Store, query string, args ...any) {
	t.Helper()
	if st.Dialect == "postgres" {
		for i := range args {
			query = strings.Replace(query, "?", fmt.Sprintf("$%d", i+1), 1)
		}
	}
	if _, err := st.DB.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

func allRows(t *testing.T, st *store.Store) []*ent.AuditEvent {
	t.Helper()
	rows, err := st.Client.AuditEvent.Query().Order(auditevent.ByPosition(), auditevent.ByID()).All(context.Background())
	if err != nil {
		t.Fatalf("read rows: %v", err)
	}
	return rows
}

func rowAt(t *testing.T, st *store.Store, seq int64) *ent.AuditEvent {
	t.Helper()
	r, err := st.Client.AuditEvent.Query().Where(auditevent.Seq(seq)).Only(context.Background())
	if err != nil {
		t.Fatalf("row at seq %d: %v", seq, err)
	}
	return r
}

func wantBroken(t *testing.T, rep Report, err error, seq int64, reason string, wantChecked int64) *BrokenError {
	t.Helper()
	var be *BrokenError
	if !errors.As(err, &be) {
		t.Fatalf("Verify = %v, want a *BrokenError at seq %d", err, seq)
	}
	if be.Seq != seq || be.Reason != reason {
		t.Fatalf("Verify = %+v, want seq %d, reason %q", be, seq, reason)
	}
	if rep.Checked != wantChecked {
		t.Fatalf("checked = %d, want %d", rep.Checked, wantChecked)
	}
	return be
}

func TestAppendSealAndVerify(t *testing.T) {
	st := testenv.Store(t)
	tr := newTrail(t, st)
	appended := appendN(t, tr, 5)

	for i, r := range allRows(t, st) {
		if r.Seq != nil || r.Hash != nil || r.PrevHash != nil || r.KeyID != nil {
			t.Fatalf("row %d sealed before Seal: %+v", i, r)
		}
		if r.Position <= unsealedBase || r.ID != appended[i].ID || !strings.HasPrefix(r.EntryMAC, "test1:") {
			t.Fatalf("unsealed row %d: position %d, id %s (appended %s), entry MAC %q", i, r.Position, r.ID, appended[i].ID, r.EntryMAC)
		}
	}
	if rep := wantIntact(t, tr, 0); rep.Unsealed != 5 || rep.Stale != 0 {
		t.Fatalf("before sealing: %+v, want 5 fresh unsealed rows", rep)
	}

	if n := seal(t, tr); n != 5 {
		t.Fatalf("sealed %d rows, want 5", n)
	}
	rows := allRows(t, st)
	prev := GenesisHash
	for i, r := range rows {
		if r.Seq == nil || *r.Seq != int64(i+1) || r.Position != *r.Seq {
			t.Fatalf("row %d: seq %v, position %d, want %d", i, r.Seq, r.Position, i+1)
		}
		if r.ID != appended[i].ID {
			t.Errorf("seq %d is %s, appended %d-th was %s: not insertion order", *r.Seq, r.ID, i+1, appended[i].ID)
		}
		if deref(r.PrevHash) != prev || len(deref(r.Hash)) != 64 || deref(r.KeyID) != "test1" {
			t.Errorf("seq %d: prev_hash %s (want %s), hash %q, key %v", *r.Seq, deref(r.PrevHash), prev, deref(r.Hash), r.KeyID)
		}
		if !strings.HasPrefix(r.ID, "aud_") {
			t.Errorf("seq %d: id %q lacks the aud_ prefix", *r.Seq, r.ID)
		}
		prev = deref(r.Hash)
	}
	rep := wantIntact(t, tr, 5)
	if rep.Head != 5 || rep.Checkpoints != 1 || rep.Unsealed != 0 || len(rep.Findings) != 0 {
		t.Fatalf("report %+v, want head 5, one checkpoint, nothing unsealed, no findings", rep)
	}

	// A second round continues the chain.
	appendN(t, tr, 2)
	if n := seal(t, tr); n != 2 {
		t.Fatalf("sealed %d rows, want 2", n)
	}
	if rep := wantIntact(t, tr, 7); rep.Checkpoints != 2 {
		t.Fatalf("report %+v, want two checkpoints", rep)
	}
}

func TestVerifyEmptyChain(t *testing.T) {
	tr := newTrail(t, testenv.Store(t))
	rep := wantIntact(t, tr, 0)
	if len(rep.Findings) != 0 {
		t.Fatalf("findings on an empty trail: %v", rep.Findings)
	}
}

// Each case edits the database behind HMIS's back, with SQL, as someone
// with write access to it but without the audit key would.
func TestVerifyFindsTampering(t *testing.T) {
	forged := strings.Repeat("f", 64)
	cases := []struct {
		name   string
		tamper func(t *testing.T, st *store.Store, tr *Trail)
		seq    int64
		reason string
		// rows found intact before the break
		checked int64
	}{
		{
			name: "edited row",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET operation = 'forged' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name: "patient removed from patient_ids",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET patient_ids = ',pat_other,' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			// Same list, but the row no longer matches the per-patient filter.
			name: "patient_ids outer commas dropped",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET patient_ids = 'pat_3' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name: "reason edited",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET reason = 'routine' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name: "reason erased",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET reason = NULL WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name: "reason added",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET reason = 'approved' WHERE seq = 2")
			},
			seq: 2, reason: ReasonHash, checked: 1,
		},
		{
			name: "roles changed",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, `UPDATE audit_events SET roles = '["admin"]' WHERE seq = 3`)
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name:   "deleted row",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) { exec(t, st, "DELETE FROM audit_events WHERE seq = 3") },
			seq:    4, reason: ReasonSeqGap, checked: 2,
		},
		{
			// Rows 3 to 5 moved up one place, a made-up row put at 3 and
			// linked to row 2: without the key its hash cannot be right.
			name: "row inserted into the chain",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET seq = seq + 100, position = position + 100 WHERE seq >= 3")
				exec(t, st, "UPDATE audit_events SET seq = seq - 99, position = position - 99 WHERE seq > 100")
				two := rowAt(t, st, 2)
				exec(t, st, `INSERT INTO audit_events (id, seq, position, occurred_at, operation, kind, outcome, entry_mac, prev_hash, hash, key_id)
					VALUES ('aud_forged', 3, 3, ?, 'forged', 'QUERY', 'ALLOWED', 'test1:00', ?, ?, 'test1')`,
					two.OccurredAt, *two.Hash, forged)
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			// A row slipped in unsealed is sealed like any other; its
			// entry MAC, which needs the key, gives it away.
			name: "row inserted unsealed, then sealed",
			tamper: func(t *testing.T, st *store.Store, tr *Trail) {
				exec(t, st, `INSERT INTO audit_events (id, position, occurred_at, operation, kind, outcome, entry_mac)
					VALUES ('aud_forged', ?, ?, 'forged', 'QUERY', 'ALLOWED', 'test1:00')`, unsealedBase+1, time.Now().UTC())
				if n := seal(t, tr); n != 1 {
					t.Fatalf("sealed %d rows, want the forged one", n)
				}
			},
			seq: 6, reason: ReasonEntryMAC, checked: 5,
		},
		{
			name: "hash replaced",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET hash = '"+forged+"' WHERE seq = 3")
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			// The old, unkeyed chain could be repaired by recomputing a
			// hash; now that needs the key.
			name: "row edited and rehashed without the key",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				r := rowAt(t, st, 3)
				r.Operation = "forged"
				exec(t, st, "UPDATE audit_events SET operation = 'forged', hash = ? WHERE seq = 3",
					chainHash(attackerKeys.Signer(), r, 3, *r.PrevHash))
			},
			seq: 3, reason: ReasonHash, checked: 2,
		},
		{
			name: "rows reordered",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET seq = 100, position = 100 WHERE seq = 2")
				exec(t, st, "UPDATE audit_events SET seq = 2, position = 2 WHERE seq = 3")
				exec(t, st, "UPDATE audit_events SET seq = 3, position = 3 WHERE seq = 100")
			},
			seq: 2, reason: ReasonPrevHash, checked: 1,
		},
		{
			name: "listing order changed",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				exec(t, st, "UPDATE audit_events SET position = 0 WHERE seq = 4")
			},
			seq: 4, reason: ReasonPosition, checked: 3,
		},
		{
			// The chain itself is consistent; only the checkpoint knows
			// that it once went to seq 5.
			name:   "tail cut off",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) { exec(t, st, "DELETE FROM audit_events WHERE seq >= 4") },
			seq:    4, reason: ReasonTruncated, checked: 3,
		},
		{
			// Every row rewritten and resealed under the attacker's
			// secret, key ID and all: the first row's HMAC fails.
			name: "full rewrite without the key",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				rewrite(t, st, func(r *ent.AuditEvent, seq int64, prev string) (string, *string) {
					r.EntryMAC = entryMAC(attackerKeys.Signer(), r)
					exec(t, st, "UPDATE audit_events SET entry_mac = ? WHERE id = ?", r.EntryMAC, r.ID)
					kid := "test1"
					return chainHash(attackerKeys.Signer(), r, seq, prev), &kid
				})
			},
			seq: 1, reason: ReasonHash, checked: 0,
		},
		{
			name: "full rewrite under another key ID",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				other := mustKeys("mine:" + strings.Repeat("WFla", 11)).Signer()
				rewrite(t, st, func(r *ent.AuditEvent, seq int64, prev string) (string, *string) {
					kid := other.ID
					return chainHash(other, r, seq, prev), &kid
				})
			},
			seq: 1, reason: ReasonUnknownKey, checked: 0,
		},
		{
			// Passing the rows off as the unkeyed chain of earlier
			// versions, which needs no key: the checkpoint's hash for
			// seq 5 gives it away.
			name: "full rewrite as unkeyed rows",
			tamper: func(t *testing.T, st *store.Store, _ *Trail) {
				rewrite(t, st, func(r *ent.AuditEvent, seq int64, prev string) (string, *string) {
					return legacyHash(r, seq, prev), nil
				})
			},
			seq: 5, reason: ReasonCheckpoint, checked: 4,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := testenv.Store(t)
			tr := newTrail(t, st)
			appendN(t, tr, 5)
			seal(t, tr)
			wantIntact(t, tr, 5)
			tc.tamper(t, st, tr)
			rep, err := verify(t, tr)
			be := wantBroken(t, rep, err, tc.seq, tc.reason, tc.checked)
			if (be.ID == "") != (tc.reason == ReasonTruncated) {
				t.Fatalf("broken row's ID %q: want one exactly when the row exists", be.ID)
			}
		})
	}
}

// rewrite recomputes every sealed row's link with hash (which returns the
// new hash and key ID) and stores it, as a forger would.
func rewrite(t *testing.T, st *store.Store, hash func(r *ent.AuditEvent, seq int64, prev string) (string, *string)) {
	t.Helper()
	prev := GenesisHash
	for _, r := range allRows(t, st) {
		h, kid := hash(r, *r.Seq, prev)
		exec(t, st, "UPDATE audit_events SET prev_hash = ?, hash = ?, key_id = ? WHERE id = ?", prev, h, kid, r.ID)
		prev = h
	}
}

func TestVerifyFindsTamperingBeforeSealing(t *testing.T) {
	st := testenv.Store(t)
	tr := newTrail(t, st)
	rows := appendN(t, tr, 3)
	exec(t, st, "UPDATE audit_events SET actor_name = 'someone else' WHERE id = ?", rows[1].ID)
	rep, err := verify(t, tr)
	be := wantBroken(t, rep, err, 0, ReasonEntryMAC, 0)
	if be.ID != rows[1].ID {
		t.Fatalf("broken row %s, want the edited %s", be.ID, rows[1].ID)
	}
}

func TestVerifyRefusesForgedCheckpoints(t *testing.T) {
	st := testenv.Store(t)
	tr := newTrail(t, st)
	appendN(t, tr, 3)
	seal(t, tr)
	appendN(t, tr, 1)
	seal(t, tr)
	b, err := os.ReadFile(tr.opts.CheckpointFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("checkpoint file has %d lines, want 2:\n%s", len(lines), b)
	}
	// Moving the checkpoint back to make room for a cut needs its signature.
	lines[1] = strings.Replace(lines[1], `"seq":4`, `"seq":3`, 1)
	if err := os.WriteFile(tr.opts.CheckpointFile, []byte(strings.Join(lines, "\n")+"\ntorn{"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = verify(t, tr)
	var ce *CheckpointError
	if !errors.As(err, &ce) || ce.Line != 2 || ce.Seq != 3 {
		t.Fatalf("Verify = %v, want the forged checkpoint on line 2", err)
	}
}

// A sealer that stopped leaves rows unsealed; Verify says so without
// calling the trail broken.
func TestVerifyReportsStaleUnsealedRows(t *testing.T) {
	st := testenv.Store(t)
	tr := newTrail(t, st)
	e := entry(1)
	e.OccurredAt = time.Now().Add(-2 * time.Minute)
	if _, err := tr.Append(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	appendN(t, tr, 1)
	rep := wantIntact(t, tr, 0)
	if rep.Unsealed != 2 || rep.Stale != 1 || len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0], "is a sealer running") {
		t.Fatalf("report %+v, want 2 unsealed rows, 1 stale, and a finding", rep)
	}
	seal(t, tr)
	if rep := wantIntact(t, tr, 2); rep.Stale != 0 || len(rep.Findings) != 0 {
		t.Fatalf("after sealing: %+v", rep)
	}
}

func TestVerifyReportsMissingCheckpointFile(t *testing.T) {
	st := testenv.Store(t)
	tr := newTrailWith(t, st, Options{Keys: testKeys})
	appendN(t, tr, 1)
	seal(t, tr)
	rep := wantIntact(t, tr, 1)
	if len(rep.Findings) != 1 || !strings.Contains(rep.Findings[0], "cut off") {
		t.Fatalf("findings %v, want one about the missing checkpoints", rep.Findings)
	}
}

func TestKeyRotation(t *testing.T) {
	st := testenv.Store(t)
	file := filepath.Join(t.TempDir(), "checkpoints")
	old := newTrailWith(t, st, Options{Keys: testKeys, CheckpointFile: file})
	appendN(t, old, 2)
	seal(t, old)
	old.Close(context.Background())

	rotated := mustKeys("test2:" + strings.Repeat("TU5P", 11) + ",test1:" + strings.Repeat("QUJD", 11))
	tr := newTrailWith(t, st, Options{Keys: rotated, CheckpointFile: file})
	appendN(t, tr, 2)
	seal(t, tr)
	var kids []string
	for _, r := range allRows(t, st) {
		kids = append(kids, deref(r.KeyID)+"/"+strings.SplitN(r.EntryMAC, ":", 2)[0])
	}
	if strings.Join(kids, ",") != "test1/test1,test1/test1,test2/test2,test2/test2" {
		t.Fatalf("row keys %v: the newest key must seal", kids)
	}
	wantIntact(t, tr, 4)

	// Dropping the old key from the ring leaves its rows unverifiable.
	newOnly := newTrailWith(t, st, Options{Keys: mustKeys("test2:" + strings.Repeat("TU5P", 11)), CheckpointFile: filepath.Join(t.TempDir(), "none")})
	rep, err := verify(t, newOnly)
	wantBroken(t, rep, err, 1, ReasonUnknownKey, 0)
}

func TestParseKeyring(t *testing.T) {
	good := "k1:" + strings.Repeat("QUJD", 11) + ", k0:" + strings.Repeat("WFla", 11)
	kr, err := ParseKeyring(good)
	if err != nil || strings.Join(kr.IDs(), ",") != "k1,k0" || kr.Signer().ID != "k1" {
		t.Fatalf("ParseKeyring(%q) = %v, %v", good, kr, err)
	}
	for _, bad := range []string{"", "nokey", "k1:short", "k 1:" + strings.Repeat("QUJD", 11), "k1:" + strings.Repeat("QUJD", 11) + ",k1:" + strings.Repeat("WFla", 11), "k1:%%%"} {
		if _, err := ParseKeyring(bad); err == nil {
			t.Errorf("ParseKeyring(%q) accepted", bad)
		}
	}
}

func TestKeyFileIsCreatedOnceAndShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hmis.db.audit-key")
	if _, _, err := LoadKeyFile(path, false); err == nil {
		t.Fatal("a missing key file must not be created when not asked to")
	}
	var wg sync.WaitGroup
	ids := make([]string, 8)
	created := make([]bool, 8)
	for i := range ids {
		wg.Go(func() {
			kr, c, err := LoadKeyFile(path, true)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], created[i] = kr.Signer().ID+string(kr.Signer().secret), c
		})
	}
	wg.Wait()
	n := 0
	for i := range ids {
		if ids[i] != ids[0] {
			t.Fatal("processes starting together got different keys")
		}
		if created[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d creators, want 1", n)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("key file mode: %v %v", fi, err)
	}
}

func TestVerifyAcrossBatches(t *testing.T) {
	st := testenv.Store(t)
	tr := newTrail(t, st)
	tr.batch = 2
	appendN(t, tr, 7)
	if n := seal(t, tr); n != 7 {
		t.Fatalf("sealed %d in batches of 2, want 7", n)
	}
	wantIntact(t, tr, 7)
	exec(t, st, "DELETE FROM audit_events WHERE seq = 5")
	rep, err := verify(t, tr)
	wantBroken(t, rep, err, 6, ReasonSeqGap, 4)
}

func TestConcurrentAppends(t *testing.T) {
	const workers, each = 50, 4
	ctx := context.Background()
	st := testenv.Store(t)
	tr := newTrail(t, st)
	tr.Start() // sealing while appends go on

	before := st.Statements()
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
	// Only the writer's INSERTs go through the counted client; the
	// sealer uses connections of its own.
	inserts := st.Statements() - before
	if inserts < 1 || inserts > workers*each {
		t.Fatalf("%d INSERTs for %d appends: more than one statement an append", inserts, workers*each)
	}
	t.Logf("%d appends in %d INSERTs", workers*each, inserts)

	seal(t, tr)
	rows := allRows(t, st)
	if len(rows) != workers*each {
		t.Fatalf("got %d rows, want %d", len(rows), workers*each)
	}
	for i, r := range rows {
		if r.Seq == nil || *r.Seq != int64(i+1) {
			t.Fatalf("row %d has seq %v: not gapless", i, r.Seq)
		}
	}
	wantIntact(t, tr, workers*each)
}

// Group commit: appends that arrive together share statements.
func TestConcurrentAppendsShareInserts(t *testing.T) {
	const n = 200
	st := testenv.Store(t)
	tr := newTrail(t, st)
	start := make(chan struct{})
	var wg sync.WaitGroup
	before := st.Statements()
	for i := range n {
		wg.Go(func() {
			<-start
			if _, err := tr.Append(context.Background(), entry(i)); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	inserts := st.Statements() - before
	if inserts >= n {
		t.Fatalf("%d simultaneous appends took %d statements: none were coalesced", n, inserts)
	}
	if rows := len(allRows(t, st)); rows != n {
		t.Fatalf("%d rows, want %d", rows, n)
	}
	t.Logf("%d simultaneous appends in %d INSERTs", n, inserts)
}

// Two stores on one database stand for two server processes, each with
// its own writer and a sealer running: only one may seal at a time, and
// the chain must come out whole.
func TestAppendsAndSealingFromTwoProcesses(t *testing.T) {
	const workers, each = 20, 5
	ctx := context.Background()
	url, path := testenv.DatabaseURL(t), testenv.SQLitePath(t)
	file := filepath.Join(t.TempDir(), "checkpoints")
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
		trails[i] = newTrailWith(t, st, Options{Keys: testKeys, CheckpointFile: file, SealInterval: 5 * time.Millisecond})
		trails[i].Start()
	}

	var wg sync.WaitGroup
	for w := range workers {
		tr := trails[w%2]
		wg.Go(func() {
			for i := range each {
				if _, err := tr.Append(ctx, entry(w*each+i)); err != nil {
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	for _, tr := range trails {
		if _, err := tr.Seal(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, tr := range trails {
		wantIntact(t, tr, workers*each)
	}
}

// A process that dies between writing rows and sealing them leaves them to
// the next sealer.
func TestNextSealerSealsWhatACrashLeft(t *testing.T) {
	st := testenv.Store(t)
	file := filepath.Join(t.TempDir(), "checkpoints")
	crashed := newTrailWith(t, st, Options{Keys: testKeys, CheckpointFile: file})
	appendN(t, crashed, 3) // never sealed: its sealer never ran
	next := newTrailWith(t, st, Options{Keys: testKeys, CheckpointFile: file})
	if n := seal(t, next); n != 3 {
		t.Fatalf("next sealer sealed %d rows, want 3", n)
	}
	wantIntact(t, next, 3)
}

// The background sealer seals without being asked, and Close seals what
// is left.
func TestBackgroundSealer(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := newTrailWith(t, st, Options{Keys: testKeys, CheckpointFile: filepath.Join(t.TempDir(), "cp"), SealInterval: 10 * time.Millisecond})
	tr.Start()
	ev, err := tr.Append(ctx, entry(1))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := st.Client.AuditEvent.Get(ctx, ev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the background sealer did not seal the row")
		}
		time.Sleep(10 * time.Millisecond)
	}
	appendN(t, tr, 3)
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Append(ctx, entry(9)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Close: %v, want ErrClosed", err)
	}
	if rep := wantIntact(t, tr, 4); rep.Unsealed != 0 || rep.Checkpoints < 1 {
		t.Fatalf("after Close: %+v, want everything sealed and checkpointed", rep)
	}
}

func TestProtectAppendOnly(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	ProtectAppendOnly(st.Client)
	tr := newTrail(t, st)
	ev := appendN(t, tr, 1)[0]
	seal(t, tr)

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
	wantIntact(t, tr, 1)
	// Appending and sealing still work under the hook.
	appendN(t, tr, 1)
	seal(t, tr)
	wantIntact(t, tr, 2)
}

func TestTimeRoundTrip(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := newTrail(t, st)
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
	if m := entryMAC(testKeys.Signer(), got); m != ev.EntryMAC {
		t.Fatalf("entry MAC recomputed after read %s, appended %s", m, ev.EntryMAC)
	}
	// The sealer reads rows with its own SQL; its hash must be Verify's.
	seal(t, tr)
	wantIntact(t, tr, 1)
}

func TestAppendDefaultsTimeToNow(t *testing.T) {
	before := time.Now().Add(-time.Second)
	ev, err := newTrail(t, testenv.Store(t)).Append(context.Background(), entry(1))
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
	tr := newTrail(t, st)
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
	if got.EntryMAC != ev.EntryMAC {
		t.Errorf("stored entry MAC %s, returned %s", got.EntryMAC, ev.EntryMAC)
	}

	for id, want := range map[string]int{"pat_a": 1, "pat_b": 1, "pat_": 0} {
		n, err := st.Client.AuditEvent.Query().Where(auditevent.PatientIdsContains("," + id + ",")).Count(ctx)
		if err != nil || n != want {
			t.Errorf("rows for patient %s = (%d, %v), want %d", id, n, err, want)
		}
	}
	seal(t, tr)
	wantIntact(t, tr, 1)
}

func TestAppendRefusesBadEntries(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	tr := newTrail(t, st)
	bad := map[string]Entry{
		"comma in patient ID": {Operation: "x", Kind: auditevent.KindQUERY, Outcome: auditevent.OutcomeALLOWED, PatientIDs: []string{"pat_a,pat_b"}},
		"no kind":             {Operation: "x", Outcome: auditevent.OutcomeALLOWED},
		"unknown outcome":     {Operation: "x", Kind: auditevent.KindQUERY, Outcome: "MAYBE"},
	}
	for name, e := range bad {
		if _, err := tr.Append(ctx, e); !errors.Is(err, ErrInvalidEntry) {
			t.Errorf("%s: err = %v, want ErrInvalidEntry", name, err)
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
	if _, err := newTrail(t, st).Append(ctx, entry(1)); err != nil {
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
	tr := newTrail(t, st)
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

// Row scoping on AuditEvent queries must not make the sealer see a
// shorter chain and start a fork.
func TestSealIgnoresQueryInterceptors(t *testing.T) {
	st := testenv.Store(t)
	tr := newTrail(t, st)
	appendN(t, tr, 2)
	seal(t, tr)
	st.Client.AuditEvent.Intercept(intercept.TraverseAuditEvent(func(_ context.Context, q *ent.AuditEventQuery) error {
		q.Where(auditevent.SeqLT(0))
		return nil
	}))
	ev := appendN(t, tr, 1)[0]
	seal(t, tr)
	var seq int64
	if err := st.DB.QueryRow("SELECT seq FROM audit_events WHERE id = '" + ev.ID + "'").Scan(&seq); err != nil || seq != 3 {
		t.Fatalf("sealed at seq %d (%v), want 3", seq, err)
	}
}

// BenchmarkAppendParallel measures Append under concurrent load, as many
// requests auditing at once; "statements/append" is how many SQL
// statements the request path spent per audited request.
func BenchmarkAppendParallel(b *testing.B) {
	ctx := context.Background()
	st := testenv.Store(b)
	tr := newTrail(b, st)
	tr.Start()
	e := entry(1)
	b.SetParallelism(16) // requests in flight per core
	before := st.Statements()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := tr.Append(ctx, e); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(st.Statements()-before)/float64(b.N), "statements/append")
}

// BenchmarkAppendSerial is one caller at a time: the latency of a lone
// request's audit write.
func BenchmarkAppendSerial(b *testing.B) {
	ctx := context.Background()
	tr := newTrail(b, testenv.Store(b))
	e := entry(1)
	for b.Loop() {
		if _, err := tr.Append(ctx, e); err != nil {
			b.Fatal(err)
		}
	}
}
