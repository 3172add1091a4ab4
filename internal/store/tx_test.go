package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

func newPatient(ctx context.Context, c *ent.Client, mrn string) *ent.Patient {
	return c.Patient.Create().SetMrn(mrn).SetGivenName("A").SetFamilyName("B").
		SetBirthDate(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexFEMALE).SaveX(ctx)
}

// What Tx returns outlives the transaction: edges load after the commit,
// through a payload struct and a slice alike, and the hook runs once for a
// transaction that recorded events and not for one that did not.
func TestTxReturnsDetachedResults(t *testing.T) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	pokes := 0
	st.OnEventsCommitted(func() { pokes++ })
	type payload struct {
		Patient  *ent.Patient
		Contacts []*ent.PatientContact
	}
	out, err := store.Tx(ctx, st, func(ctx context.Context, tx *ent.Tx) (payload, error) {
		p := newPatient(ctx, tx.Client(), "100000009")
		c := tx.PatientContact.Create().SetPatientID(p.ID).SetName("Kin").SetRelationship("sister").SaveX(ctx)
		return payload{Patient: p, Contacts: []*ent.PatientContact{c}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := out.Patient.QueryContacts().Count(ctx); err != nil || n != 1 {
		t.Fatalf("contacts of the returned patient after commit: %d, %v", n, err)
	}
	if p, err := out.Contacts[0].QueryPatient().Only(ctx); err != nil || p.ID != out.Patient.ID {
		t.Fatalf("patient of the returned contact after commit: %v", err)
	}
	if pokes != 0 {
		t.Fatalf("%d pokes for a transaction that recorded no event", pokes)
	}
	_, err = store.Tx(ctx, st, func(ctx context.Context, tx *ent.Tx) (struct{}, error) {
		store.RecordedEvents(ctx)
		return struct{}{}, nil
	})
	if err != nil || pokes != 1 {
		t.Fatalf("%d pokes after a transaction that recorded events, %v", pokes, err)
	}
	_, err = store.Tx(ctx, st, func(ctx context.Context, tx *ent.Tx) (struct{}, error) {
		store.RecordedEvents(ctx)
		return struct{}{}, errors.New("refused")
	})
	if err == nil || pokes != 1 {
		t.Fatalf("%d pokes after a rolled-back transaction", pokes)
	}
}

// The patient lock refuses a merged record and is taken before any other
// lock, in one call, whatever the database.
func TestLockPatient(t *testing.T) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	survivor := newPatient(ctx, st.Client, "100000017")
	merged := st.Client.Patient.Create().SetMrn("100000025").SetGivenName("A").SetFamilyName("B").
		SetBirthDate(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexFEMALE).
		SetStatus(patient.StatusMERGED).SetMergedIntoID(survivor.ID).SaveX(ctx)
	lock := func(fn func(ctx context.Context, tx *ent.Tx) error) error {
		return st.InTx(ctx, fn)
	}
	if err := lock(func(ctx context.Context, tx *ent.Tx) error { return store.LockPatient(ctx, tx, survivor.ID) }); err != nil {
		t.Fatalf("an active patient: %v", err)
	}
	err := lock(func(ctx context.Context, tx *ent.Tx) error { return store.LockPatient(ctx, tx, survivor.ID, merged.ID) })
	var me *store.MergedError
	if !errors.As(err, &me) || me.PatientID != merged.ID || me.MergedInto != survivor.ID || apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("a merged patient: %v", err)
	}
	err = lock(func(ctx context.Context, tx *ent.Tx) error {
		if err := st.Lock(ctx, tx, "bed:bed_x"); err != nil {
			return err
		}
		return store.LockPatient(ctx, tx, survivor.ID)
	})
	if err == nil || !strings.Contains(err.Error(), "lock order") {
		t.Fatalf("the patient lock after another: %v", err)
	}
	err = lock(func(ctx context.Context, tx *ent.Tx) error {
		if err := store.LockPatient(ctx, tx, survivor.ID); err != nil {
			return err
		}
		if err := store.LockPatient(ctx, tx, survivor.ID); err != nil { // held already: fine
			return err
		}
		return store.LockPatient(ctx, tx, merged.ID)
	})
	if err == nil || !strings.Contains(err.Error(), "lock order") {
		t.Fatalf("a second patient locked in a second call: %v", err)
	}
	err = store.LockPatient(ctx, nil, survivor.ID)
	if err == nil || !strings.Contains(err.Error(), "store.Tx") {
		t.Fatalf("outside a transaction: %v", err)
	}
}
