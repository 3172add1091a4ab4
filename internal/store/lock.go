package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// PatientKey is the lock key of one patient's record, for callers that
// must name it among other keys; domain code takes it with LockPatient.
func PatientKey(id string) string { return "patient:" + id }

// Lock takes exclusive, transaction-scoped locks on the named resources
// ("provider:stf_…", "bed:bed_…") so that a check followed by a write
// cannot interleave with another transaction doing the same. On PostgreSQL
// these are advisory locks, taken in a fixed order so two transactions
// never wait on each other in a cycle; on SQLite the immediate transaction
// already holds the database's single write lock.
//
// A patient's record is locked with LockPatient, before any other lock.
func (s *Store) Lock(ctx context.Context, tx *ent.Tx, keys ...string) error {
	if state, ok := ctx.Value(txKey{}).(*txState); ok && len(keys) > 0 {
		state.otherLocks = true
	}
	return s.lock(ctx, tx, keys)
}

func (s *Store) lock(ctx context.Context, tx *ent.Tx, keys []string) error {
	if s.Dialect != dialect.Postgres {
		return nil
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	for _, k := range sorted {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockID(k)); err != nil {
			return fmt.Errorf("lock %s: %w", strings.SplitN(k, ":", 2)[0], err)
		}
	}
	return nil
}

// LockShared takes shared, transaction-scoped locks on the named resources:
// any number of holders at once, none while another transaction holds the
// key with Lock. It lets many writers go on under a condition (a period is
// open) that one writer changes (closing it) only when they are done. On
// SQLite the write lock already serialises them.
func (s *Store) LockShared(ctx context.Context, tx *ent.Tx, keys ...string) error {
	if s.Dialect != dialect.Postgres {
		return nil
	}
	if state, ok := ctx.Value(txKey{}).(*txState); ok && len(keys) > 0 {
		state.otherLocks = true
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	for _, k := range sorted {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock_shared($1)", lockID(k)); err != nil {
			return fmt.Errorf("lock %s: %w", strings.SplitN(k, ":", 2)[0], err)
		}
	}
	return nil
}

func lockID(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	return int64(h.Sum64())
}

// LockPatient holds the records of the patients ids until the transaction
// ends, and then refuses, with a *MergedError, any of them that has been
// merged into another record. Every writer of patient data takes it, and
// so does mergePatients: a write and a merge of the same record then run
// one after the other, so no row lands on a record a merge is retiring and
// nothing a merge has moved is changed as if it had not moved. A patient
// that does not exist passes; the caller reports it, naming its field.
//
// The order is fixed to rule out deadlocks: all the patients a transaction
// locks in one call, sorted, before any other lock (Lock). A call that
// breaks it fails, whatever the database.
//
// On PostgreSQL it is an advisory transaction lock; on SQLite the
// transaction's write lock already serialises writers, and the merged check
// is the same on both. It works only in a transaction begun by Tx.
func LockPatient(ctx context.Context, tx *ent.Tx, ids ...string) error {
	if err := HoldPatient(ctx, tx, ids...); err != nil {
		return err
	}
	state := ctx.Value(txKey{}).(*txState)
	return refuseMerged(ctx, tx, state.store.Dialect, ids)
}

// HoldPatient takes LockPatient's lock, in the same order, and reads
// nothing: it is for the code that loads the patient itself under the lock
// and refuses a merged record in its own words (patients.Lock), which would
// otherwise read the patient twice.
func HoldPatient(ctx context.Context, tx *ent.Tx, ids ...string) error {
	state, ok := ctx.Value(txKey{}).(*txState)
	if !ok {
		return errors.New("store: LockPatient outside a transaction of store.Tx")
	}
	var keys []string
	for _, id := range ids {
		if !state.patients[id] {
			keys = append(keys, PatientKey(id))
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if state.otherLocks || len(state.patients) > 0 {
		return errors.New("store: lock order: a transaction locks its patients in one LockPatient call, before any other lock")
	}
	if err := state.store.lock(ctx, tx, keys); err != nil {
		return err
	}
	for _, id := range ids {
		state.patients[id] = true
	}
	return nil
}

// MergedError refuses a write to a patient record that a merge has retired:
// whatever landed on it would sit where no one looks. Domain code that has
// the patient's ID from an input field may say so with that field.
type MergedError struct {
	PatientID, MergedInto string
}

func (e *MergedError) Error() string {
	return fmt.Sprintf("the patient was merged into %s; reload and use that record", e.MergedInto)
}

// Unwrap makes a MergedError a CONFLICT wherever errors are classified.
func (e *MergedError) Unwrap() error { return apperr.Conflictf("%s", e.Error()) }

// refuseMerged reads the patients' status in SQL of its own: under the
// lock, past row scope (whether a record is merged is not the viewer's to
// hide from the code that writes to it) and without the ent client, whose
// interceptors live in packages that import this one.
func refuseMerged(ctx context.Context, tx *ent.Tx, dialectName string, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	query, qargs := entsql.Dialect(dialectName).
		Select(patient.FieldID, patient.FieldMergedIntoID).
		From(entsql.Table(patient.Table)).
		Where(entsql.And(
			entsql.In(patient.FieldID, args...),
			entsql.EQ(patient.FieldStatus, patient.StatusMERGED),
		)).
		OrderBy(patient.FieldID).
		Limit(1).
		Query()
	rows, err := tx.QueryContext(ctx, query, qargs...)
	if err != nil {
		return fmt.Errorf("check merged patients: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return rows.Err()
	}
	var id string
	var into *string
	if err := rows.Scan(&id, &into); err != nil {
		return fmt.Errorf("check merged patients: %w", err)
	}
	e := &MergedError{PatientID: id}
	if into != nil {
		e.MergedInto = *into
	}
	return e
}

// ReadLocked reads a row of patient data, locks its patient with
// LockPatient and reads the row again: what was read before the lock may
// have changed while the transaction waited for it. Writers that reach the
// patient through another row (a result, an order item, a contact) take
// the lock this way, then check the state they read and write.
func ReadLocked[T any](ctx context.Context, tx *ent.Tx, read func() (T, error), patientOf func(T) string) (T, error) {
	var none T
	row, err := read()
	if err != nil {
		return none, err
	}
	locked := patientOf(row)
	if err := LockPatient(ctx, tx, locked); err != nil {
		return none, err
	}
	if row, err = read(); err != nil {
		return none, err
	}
	if patientOf(row) != locked {
		// Only a merge moves rows between patients, and it marks the record
		// it empties, which LockPatient refuses; this is the safety net.
		return none, apperr.Conflictf("the record was merged into another patient's meanwhile; reload it")
	}
	return row, nil
}

// GetLocked is ReadLocked for the commonest read: the row id through get
// (tx.Allergy.Get, say), NOT_FOUND with notFound if the viewer cannot see
// it.
func GetLocked[T any](ctx context.Context, tx *ent.Tx, get func(context.Context, string) (T, error), id string,
	patientOf func(T) string, notFound string) (T, error) {
	return ReadLocked(ctx, tx, func() (T, error) {
		row, err := get(ctx, id)
		if ent.IsNotFound(err) {
			return row, apperr.NotFoundf("%s", notFound)
		}
		return row, err
	}, patientOf)
}
