package store

import (
	"context"
	"fmt"
	"reflect"

	"github.com/hmis-dev/hmis/ent"
)

// Tx runs fn in one transaction and returns what fn returned once the
// transaction has committed. If fn fails (or panics, which is re-raised)
// the transaction is rolled back and nothing of it stands.
//
// Every ent entity reachable from the result — the value itself, fields of
// a payload struct, slices, loaded edges — is detached from the finished
// transaction before it is returned: an entity read or written in a
// transaction keeps that transaction as its driver, and the resolvers load
// its edges (registerPatient { patient { contacts } }) after the commit,
// which through the finished transaction fails with "transaction has
// already been committed". ent's generated Unwrap swaps the driver back to
// the client's; calling it here, once, keeps it out of domain code.
//
// When fn recorded outbox events (see RecordedEvents), the hook set with
// OnEventsCommitted runs after the commit, so that the relay publishes now
// rather than at its next poll.
func Tx[T any](ctx context.Context, st *Store, fn func(ctx context.Context, tx *ent.Tx) (T, error)) (out T, err error) {
	var none T
	tx, err := st.Client.Tx(ctx)
	if err != nil {
		return none, fmt.Errorf("begin transaction: %w", err)
	}
	state := &txState{store: st, patients: map[string]bool{}}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	out, err = fn(context.WithValue(ctx, txKey{}, state), tx)
	if err != nil {
		_ = tx.Rollback()
		return none, err
	}
	if err := tx.Commit(); err != nil {
		return none, fmt.Errorf("commit: %w", err)
	}
	detach(reflect.ValueOf(&out).Elem(), map[uintptr]bool{})
	if state.recorded {
		if hook := st.onEvents.Load(); hook != nil {
			(*hook)()
		}
	}
	return out, nil
}

// InTx runs fn in one transaction, for callers with nothing to return; it
// is Tx without a result.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx *ent.Tx) error) error {
	_, err := Tx(ctx, s, func(ctx context.Context, tx *ent.Tx) (struct{}, error) {
		return struct{}{}, fn(ctx, tx)
	})
	return err
}

// OnEventsCommitted sets what runs after each transaction of Tx that
// recorded outbox events has committed: the relay's poke. One hook per
// store; setting another replaces it.
func (s *Store) OnEventsCommitted(hook func()) { s.onEvents.Store(&hook) }

// RecordedEvents notes that the transaction of ctx wrote outbox rows, so
// that Tx runs the OnEventsCommitted hook once it commits. Outside Tx it
// does nothing: the relay still finds the rows at its next poll.
func RecordedEvents(ctx context.Context) {
	if state, ok := ctx.Value(txKey{}).(*txState); ok {
		state.recorded = true
	}
}

type txKey struct{}

// txState is what the kit keeps about one transaction of Tx.
type txState struct {
	store    *Store
	recorded bool
	// patients are the patients locked so far; otherLocks says whether any
	// other lock was taken (see LockPatient for why the order matters).
	patients   map[string]bool
	otherLocks bool
}

// entPackage is where the entities detach looks for live.
var entPackage = reflect.TypeOf(ent.Patient{}).PkgPath()

// detach unwraps every transactional ent entity reachable from v. seen
// guards against the cycles loaded edges may form (a bed's ward whose beds
// include it).
func detach(v reflect.Value, seen map[uintptr]bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		if v.Type().Elem().PkgPath() == entPackage {
			if m := v.MethodByName("Unwrap"); m.IsValid() && m.Type().NumIn() == 0 &&
				m.Type().NumOut() == 1 && m.Type().Out(0) == v.Type() {
				unwrap(m)
			}
		}
		detach(v.Elem(), seen)
	case reflect.Interface:
		if !v.IsNil() {
			detach(v.Elem(), seen)
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				detach(v.Field(i), seen)
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < v.Len(); i++ {
			detach(v.Index(i), seen)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			detach(it.Value(), seen)
		}
	}
}

// unwrap calls an entity's Unwrap. ent's Unwrap panics on an entity that
// is not transactional, such as one a fn returns from the plain client: it
// is already what Tx wants.
func unwrap(m reflect.Value) {
	defer func() { _ = recover() }()
	m.Call(nil)
}
