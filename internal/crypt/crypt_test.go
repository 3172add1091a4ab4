package crypt_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/crypt"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

func newPatient(t testing.TB, c *ent.Client, i int, phone string) *ent.Patient {
	t.Helper()
	p, err := c.Patient.Create().SetMrn(fmt.Sprintf("M%06d", i)).SetGivenName("Given").SetFamilyName(fmt.Sprintf("Family%d", i)).
		SetBirthDate(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexFEMALE).
		SetPhone(phone).SetNationalID(fmt.Sprintf("NID-%06d", i)).Save(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// raw reads a column as stored, past ent and its decryption.
func raw(t testing.TB, st *store.Store, column, id string) string {
	t.Helper()
	q := fmt.Sprintf(`SELECT %s FROM patients WHERE id = ?`, column)
	if st.Dialect == "postgres" {
		q = strings.Replace(q, "?", "$1", 1)
	}
	var v string
	if err := st.DB.QueryRow(q, id).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func exec(t testing.TB, st *store.Store, q string, args ...any) {
	t.Helper()
	if st.Dialect == "postgres" {
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
		}
	}
	if _, err := st.DB.Exec(q, args...); err != nil {
		t.Fatal(err)
	}
}

// TestRotateUnderConcurrentWrites rotates the data key twice, as `hmis
// keys rotate` in another process would, while writers keep changing
// encrypted values and readers keep reading them; then retires the old
// keys. Nothing is lost: every value decrypts to the last one written, and
// no value is left under a retired key.
func TestRotateUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	ctx := context.Background()
	const refresh = 20 * time.Millisecond
	st.Keys().SetRefreshInterval(refresh)
	const patients, writers = 60, 4
	var (
		mu       sync.Mutex
		expected = map[string]string{}
		ids      []string
	)
	for i := range patients {
		phone := fmt.Sprintf("+2547%08d", i)
		p := newPatient(t, st.Client, i, phone)
		expected[p.ID] = phone
		ids = append(ids, p.ID)
	}
	firstKey := st.Keys().Primary()

	// The rotator is a keyring of its own, as in another process: the
	// writers' keyring learns of each rotation only by refreshing.
	rotator, err := crypt.Open(ctx, st.DB, st.Dialect, testenv.MasterKey())
	if err != nil {
		t.Fatal(err)
	}
	rotator.SetRefreshInterval(refresh)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes, reads atomic.Int64
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				id := ids[(n*writers+w)%patients]
				phone := fmt.Sprintf("+2548%02d%06d", w, n)
				if _, err := st.Client.Patient.UpdateOneID(id).SetPhone(phone).Save(ctx); err != nil {
					t.Errorf("write: %v", err)
					return
				}
				mu.Lock()
				expected[id] = phone
				mu.Unlock()
				writes.Add(1)
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				all, err := st.Client.Patient.Query().All(ctx)
				if err != nil {
					t.Errorf("read: %v", err)
					return
				}
				for _, p := range all {
					if p.Phone == nil || !strings.HasPrefix(*p.Phone, "+254") || p.NationalID == nil || !strings.HasPrefix(*p.NationalID, "NID-") {
						t.Errorf("read %s: phone %v, national ID %v", p.ID, p.Phone, p.NationalID)
						return
					}
				}
				reads.Add(1)
			}
		}()
	}
	var keys []uint32
	var retried int
	for range 2 {
		id, err := rotator.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, id)
		rep, err := rotator.Reencrypt(ctx)
		if err != nil {
			t.Fatal(err)
		}
		retried += rep.Retried
		t.Logf("rotated to %d: %s", id, rep)
	}
	// Let the writers run past a refresh, so that they write under the
	// last key too, then stop them.
	for start := writes.Load(); writes.Load() < start+2*writers; {
		time.Sleep(refresh)
	}
	close(stop)
	wg.Wait()
	if t.Failed() {
		return
	}
	time.Sleep(2 * refresh)
	rep, err := rotator.Retire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d writes and %d full reads during the rotations (%d values retried after a concurrent write); retire: %s, retired %v",
		writes.Load(), reads.Load(), retried, rep, rep.Retired)
	ring, primary := rotator.Keys()
	if primary != keys[1] || len(ring) != 1 {
		t.Fatalf("keyset after retiring: %v, primary %d; want only %d", ring, primary, keys[1])
	}
	if len(rep.Retired) != 2 || !contains(rep.Retired, firstKey) || !contains(rep.Retired, keys[0]) {
		t.Fatalf("retired %v, want %d and %d", rep.Retired, firstKey, keys[0])
	}
	used, err := rotator.Usage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(used) != 1 || used[keys[1]] != 2*patients {
		t.Fatalf("values by key after retiring: %v, want %d under %d", used, 2*patients, keys[1])
	}

	// Nothing lost: a process started now (a keyring of its own, and the
	// writers' one, which must notice the retirement) reads every value as
	// last written.
	for _, c := range []*ent.Client{st.Client, reopened(t, st)} {
		all, err := c.Patient.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != patients {
			t.Fatalf("%d patients, want %d", len(all), patients)
		}
		for i, p := range all {
			if *p.Phone != expected[p.ID] || !strings.HasPrefix(*p.NationalID, "NID-") {
				t.Fatalf("patient %d: phone %q national ID %q, want phone %q", i, *p.Phone, *p.NationalID, expected[p.ID])
			}
		}
	}
}

func contains(ids []uint32, id uint32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// reopened is a second client of the same database with a keyring of its
// own, as a restarted server has.
func reopened(t *testing.T, st *store.Store) *ent.Client {
	t.Helper()
	c := ent.NewClient(ent.Driver(entsql.OpenDB(st.Dialect, st.DB)))
	kr, err := crypt.Open(context.Background(), st.DB, st.Dialect, testenv.MasterKey())
	if err != nil {
		t.Fatal(err)
	}
	crypt.Install(c, func() *crypt.Keyring { return kr })
	return c
}

// TestCiphertextIsBoundToItsPlace moves ciphertexts between rows and
// columns in the database: none of them decrypts there.
func TestCiphertextIsBoundToItsPlace(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	ctx := context.Background()
	a := newPatient(t, st.Client, 1, "+254700000001")
	b := newPatient(t, st.Client, 2, "+254700000002")
	stored := raw(t, st, "national_id", a.ID)
	if !strings.HasPrefix(stored, crypt.Prefix) || strings.Contains(stored, "NID-") {
		t.Fatalf("stored national ID %q is not ciphertext", stored)
	}
	// Another row's value, in the same column.
	exec(t, st, `UPDATE patients SET national_id = ? WHERE id = ?`, stored, b.ID)
	if _, err := st.Client.Patient.Get(ctx, b.ID); err == nil {
		t.Fatal("a national ID moved to another patient decrypted")
	}
	// The same row's value of another column.
	exec(t, st, `UPDATE patients SET national_id = ? WHERE id = ?`, raw(t, st, "phone", b.ID), b.ID)
	if _, err := st.Client.Patient.Get(ctx, b.ID); err == nil {
		t.Fatal("a phone moved to the national ID column decrypted")
	}
	if got, err := st.Client.Patient.Get(ctx, a.ID); err != nil || *got.NationalID != "NID-000001" {
		t.Fatalf("the untouched row: %v, %v", got, err)
	}
}

// TestPlaintextFromBeforeEncryption reads a value stored in clear by an
// earlier version as it is, and the next re-encryption pass encrypts it and
// gives it its blind index.
func TestPlaintextFromBeforeEncryption(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	ctx := context.Background()
	p := newPatient(t, st.Client, 1, "+254700000001")
	exec(t, st, `UPDATE patients SET national_id = ?, national_id_bidx = NULL WHERE id = ?`, "OLD-1", p.ID)
	got, err := st.Client.Patient.Get(ctx, p.ID)
	if err != nil || *got.NationalID != "OLD-1" {
		t.Fatalf("legacy plaintext read as %v, %v", got, err)
	}
	used, _ := st.Keys().Usage(ctx)
	if used[0] != 1 {
		t.Fatalf("plaintext values: %v", used)
	}
	rep, err := st.Keys().Reencrypt(ctx)
	if err != nil || rep.Reencrypted != 1 {
		t.Fatalf("re-encrypt: %v, %v", rep, err)
	}
	if v := raw(t, st, "national_id", p.ID); !strings.HasPrefix(v, crypt.Prefix) {
		t.Fatalf("still stored as %q", v)
	}
	n, err := st.Client.Patient.Query().
		Where(patient.NationalIDBidx(st.Keys().BlindIndex(patient.Table, patient.FieldNationalID, "old-1"))).Count(ctx)
	if err != nil || n != 1 {
		t.Fatalf("found by blind index: %d, %v", n, err)
	}
}

// TestMasterKey: the keysets open only with the master key that wraps
// them, and a rewrap moves them to a new one.
func TestMasterKey(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	ctx := context.Background()
	p := newPatient(t, st.Client, 1, "+254700000001")
	text, _ := crypt.NewMasterKeyText()
	other, _ := crypt.ParseMasterKey(text)
	if _, err := crypt.Open(ctx, st.DB, st.Dialect, other); err == nil || !strings.Contains(err.Error(), "master key") {
		t.Fatalf("opened with another master key: %v", err)
	}
	if err := st.Keys().Rewrap(ctx, other); err != nil {
		t.Fatal(err)
	}
	if _, err := crypt.Open(ctx, st.DB, st.Dialect, testenv.MasterKey()); err == nil {
		t.Fatal("opened with the old master key after a rewrap")
	}
	kr, err := crypt.Open(ctx, st.DB, st.Dialect, other)
	if err != nil {
		t.Fatal(err)
	}
	c := ent.NewClient(ent.Driver(entsql.OpenDB(st.Dialect, st.DB)))
	crypt.Install(c, func() *crypt.Keyring { return kr })
	got, err := c.Patient.Get(ctx, p.ID)
	if err != nil || *got.NationalID != "NID-000001" {
		t.Fatalf("read under the new master key: %v, %v", got, err)
	}
	if _, err := crypt.ParseMasterKey("c2hvcnQ="); err == nil {
		t.Fatal("a short master key was accepted")
	}
}

// BenchmarkPatientPage reads a page of 20 patients, each with a phone and
// a national ID encrypted, through the decrypting client and through a
// client without it (ciphertext left as it is): the difference is what
// decryption costs a list.
func BenchmarkPatientPage(b *testing.B) {
	st := testenv.Store(b)
	ctx := context.Background()
	for i := range 20 {
		newPatient(b, st.Client, i, fmt.Sprintf("+2547%08d", i))
	}
	plain := ent.NewClient(ent.Driver(entsql.OpenDB(st.Dialect, st.DB)))
	for name, c := range map[string]*ent.Client{"decrypting": st.Client, "ciphertext": plain} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if all, err := c.Patient.Query().Limit(20).All(ctx); err != nil || len(all) != 20 {
					b.Fatal(len(all), err)
				}
			}
		})
	}
}
