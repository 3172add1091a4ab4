package crypt

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/hmis-dev/hmis/ent"
)

// ErrLocked is returned for a read or write of an encrypted field before
// the keyring was loaded: without keys nothing is stored in clear.
var ErrLocked = errors.New("encryption keys are not loaded")

// columnsByType indexes ent.EncryptedColumns by entity.
var columnsByType = func() map[string][]ent.EncryptedColumn {
	out := map[string][]ent.EncryptedColumn{}
	for _, c := range ent.EncryptedColumns {
		out[c.Type] = append(out[c.Type], c)
	}
	return out
}()

// Install makes client encrypt every encrypted field it writes and decrypt
// every one it reads, with the keyring keys returns (nil: not loaded yet).
func Install(client *ent.Client, keys func() *Keyring) {
	client.Use(func(next ent.Mutator) ent.Mutator {
		return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
			cols := columnsByType[m.Type()]
			if len(cols) == 0 {
				return next.Mutate(ctx, m)
			}
			kr := keys()
			if err := encryptMutation(kr, m, cols); err != nil {
				return nil, err
			}
			v, err := next.Mutate(ctx, m)
			if err != nil {
				return v, err
			}
			// What a create or update returns was built from the mutation
			// or read back: ciphertext, like any read.
			return v, decryptValue(ctx, kr, v)
		})
	})
	client.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			v, err := next.Query(ctx, q)
			if err != nil {
				return v, err
			}
			return v, decryptValue(ctx, keys(), v)
		})
	}))
}

func encryptMutation(kr *Keyring, m ent.Mutation, cols []ent.EncryptedColumn) error {
	set := false
	for _, c := range cols {
		if _, ok := m.Field(c.Column); ok {
			set = true
		}
		if m.FieldCleared(c.Column) && c.BlindIndex != "" {
			if err := m.ClearField(c.BlindIndex); err != nil {
				return err
			}
		}
	}
	if !set {
		return nil
	}
	if kr == nil {
		return ErrLocked
	}
	// The row's ID is bound into each ciphertext; a create has it already,
	// since IDs are made by a default that runs before the hooks.
	idm, ok := m.(interface{ ID() (string, bool) })
	if !ok {
		return fmt.Errorf("%s: an encrypted field is written by a mutation without row ID", m.Type())
	}
	id, ok := idm.ID()
	if !ok || !(m.Op().Is(ent.OpCreate) || m.Op().Is(ent.OpUpdateOne)) {
		return fmt.Errorf("%s: encrypted fields are written one row at a time (create or update one)", m.Type())
	}
	for _, c := range cols {
		v, ok := m.Field(c.Column)
		if !ok {
			continue
		}
		plain, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s.%s: an encrypted field must be a string", c.Table, c.Column)
		}
		ct, err := kr.Encrypt(c.Table, c.Column, id, plain)
		if err != nil {
			return err
		}
		if err := m.SetField(c.Column, ct); err != nil {
			return err
		}
		if c.BlindIndex != "" {
			if err := m.SetField(c.BlindIndex, kr.BlindIndex(c.Table, c.Column, plain)); err != nil {
				return err
			}
		}
	}
	return nil
}

// decryptValue decrypts, in place, the entity or entities of a query or
// mutation result. Counts, IDs and scans of chosen columns are left alone:
// no code selects an encrypted column on its own.
func decryptValue(ctx context.Context, kr *Keyring, v ent.Value) error {
	switch e := v.(type) {
	case ent.Encryptable:
		return decryptEntity(ctx, kr, e)
	case nil:
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice || !rv.Type().Elem().Implements(reflect.TypeFor[ent.Encryptable]()) {
		return nil
	}
	for i := 0; i < rv.Len(); i++ {
		if err := decryptEntity(ctx, kr, rv.Index(i).Interface().(ent.Encryptable)); err != nil {
			return err
		}
	}
	return nil
}

func decryptEntity(ctx context.Context, kr *Keyring, e ent.Encryptable) error {
	if reflect.ValueOf(e).IsNil() {
		return nil
	}
	id, values := e.EncryptedValues()
	cols := columnsByType[reflect.TypeOf(e).Elem().Name()]
	for i, p := range values {
		if p == nil || *p == "" {
			continue // not set, or not selected
		}
		if kr == nil {
			return ErrLocked
		}
		if id == "" {
			return fmt.Errorf("%s.%s read without its row's ID, which its ciphertext is bound to", cols[i].Table, cols[i].Column)
		}
		plain, err := kr.Decrypt(ctx, cols[i].Table, cols[i].Column, id, *p)
		if err != nil {
			return err
		}
		*p = plain
	}
	return nil
}
