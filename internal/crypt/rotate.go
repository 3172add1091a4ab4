package crypt

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/hmis-dev/hmis/ent"
)

// update changes the stored keysets in one transaction: fn gets each
// purpose's unwrapped keyset and returns the ones to store (wrapped with
// kek) and whether the data keyset got a new primary.
func (k *Keyring) update(ctx context.Context, kek KEK, fn func(map[string]*keyset.Handle) (map[string]*keyset.Handle, bool, error)) error {
	tx, err := k.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	stored, err := k.read(ctx, tx, true)
	if err != nil {
		return err
	}
	handles := map[string]*keyset.Handle{}
	for purpose, s := range stored {
		if handles[purpose], err = unwrap(k.kek, purpose, s.text); err != nil {
			return err
		}
	}
	changed, rotated, err := fn(handles)
	if err != nil {
		return err
	}
	w := &Keyring{kek: kek}
	for purpose, h := range changed {
		text, err := w.wrap(h, purpose)
		if err != nil {
			return err
		}
		// A new version makes the other processes load the keyset again;
		// a rewrap changes no key, and they could not unwrap it anyway
		// until restarted with the new master key.
		set := fmt.Sprintf(`UPDATE encryption_keysets SET keyset = %s`, k.ph(1))
		if kek == k.kek {
			set += `, version = version + 1`
		}
		args := []any{text}
		if rotated && purpose == dataKeyset {
			set += `, rotated_at = ` + k.ph(2)
			args = append(args, time.Now().Unix())
		}
		args = append(args, purpose)
		if _, err := tx.ExecContext(ctx, set+` WHERE purpose = `+k.ph(len(args)), args...); err != nil {
			return fmt.Errorf("store %s keyset: %w", purpose, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	k.kek = kek
	return k.load(ctx)
}

// Rotate adds a new data key and makes it the primary: new ciphertexts use
// it at once in this process, and in the others within RefreshInterval.
// The older keys stay, so that everything still decrypts; Reencrypt moves
// the stored values onto the new key, and Retire then drops the old ones.
func (k *Keyring) Rotate(ctx context.Context) (uint32, error) {
	var id uint32
	err := k.update(ctx, k.kek, func(h map[string]*keyset.Handle) (map[string]*keyset.Handle, bool, error) {
		m := keyset.NewManagerFromHandle(h[dataKeyset])
		var err error
		if id, err = m.Add(aead.AES256GCMKeyTemplate()); err != nil {
			return nil, false, err
		}
		if err := m.SetPrimary(id); err != nil {
			return nil, false, err
		}
		nh, err := m.Handle()
		return map[string]*keyset.Handle{dataKeyset: nh}, true, err
	})
	return id, err
}

// Rewrap wraps both keysets with a new master key (or KMS key). The data is
// not touched: its keys do not change, only what protects them.
func (k *Keyring) Rewrap(ctx context.Context, kek KEK) error {
	return k.update(ctx, kek, func(h map[string]*keyset.Handle) (map[string]*keyset.Handle, bool, error) {
		return h, false, nil
	})
}

// Report says what a pass over the encrypted columns found and did.
type Report struct {
	// Rows is the number of stored values per data key after the pass
	// (key 0: plaintext left from before encryption).
	Rows map[uint32]int
	// Reencrypted counts the values the pass rewrote; Retried, those it
	// had to read again because a write changed them meanwhile.
	Reencrypted, Retried int
	// Retired lists the keys removed from the keyset.
	Retired []uint32
}

func (r Report) String() string {
	var ids []uint32
	for id := range r.Rows {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var parts []string
	for _, id := range ids {
		name := fmt.Sprintf("key %d", id)
		if id == 0 {
			name = "plaintext"
		}
		parts = append(parts, fmt.Sprintf("%s: %d", name, r.Rows[id]))
	}
	return fmt.Sprintf("%d values re-encrypted (%d retried after a concurrent write); values by key: %s",
		r.Reencrypted, r.Retried, strings.Join(parts, ", "))
}

// BatchSize is how many rows one transaction of a pass rewrites.
const BatchSize = 200

// Reencrypt rewrites every stored value not under the primary data key —
// older keys' ciphertexts and plaintext from before encryption — in small
// transactions, while the server runs. A value is replaced only if it is
// still the one read (compare and swap on the ciphertext, which is never
// the same twice), so a concurrent write is never overwritten: the pass
// reads that value again and moves it too if it needs to.
func (k *Keyring) Reencrypt(ctx context.Context) (Report, error) {
	rep := Report{Rows: map[uint32]int{}}
	for _, table := range tables() {
		if err := k.reencryptTable(ctx, table, &rep); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

type tableColumns struct {
	name    string
	columns []ent.EncryptedColumn
}

func tables() []tableColumns {
	var out []tableColumns
	for _, c := range ent.EncryptedColumns {
		if len(out) == 0 || out[len(out)-1].name != c.Table {
			out = append(out, tableColumns{name: c.Table})
		}
		out[len(out)-1].columns = append(out[len(out)-1].columns, c)
	}
	return out
}

func (k *Keyring) reencryptTable(ctx context.Context, t tableColumns, rep *Report) error {
	cols := make([]string, len(t.columns))
	for i, c := range t.columns {
		cols[i] = c.Column
	}
	after := ""
	for {
		query := fmt.Sprintf(`SELECT id, %s FROM %s WHERE id > %s ORDER BY id LIMIT %d`,
			strings.Join(cols, ", "), t.name, k.ph(1), BatchSize)
		rows, err := k.db.QueryContext(ctx, query, after)
		if err != nil {
			return fmt.Errorf("read %s: %w", t.name, err)
		}
		type row struct {
			id     string
			values []sql.NullString
		}
		var batch []row
		for rows.Next() {
			r := row{values: make([]sql.NullString, len(cols))}
			dest := []any{&r.id}
			for i := range r.values {
				dest = append(dest, &r.values[i])
			}
			if err := rows.Scan(dest...); err != nil {
				rows.Close()
				return err
			}
			batch = append(batch, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(batch) == 0 {
			return nil
		}
		tx, err := k.db.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, r := range batch {
			for i, c := range t.columns {
				if err := k.reencryptValue(ctx, tx, c, r.id, r.values[i], rep); err != nil {
					tx.Rollback()
					return err
				}
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		after = batch[len(batch)-1].id
	}
}

// reencryptValue moves one value onto the primary key, reading it again
// whenever a concurrent write got there first.
func (k *Keyring) reencryptValue(ctx context.Context, tx *sql.Tx, c ent.EncryptedColumn, id string, v sql.NullString, rep *Report) error {
	for attempt := 0; ; attempt++ {
		if !v.Valid {
			return nil
		}
		keyID, encrypted := KeyID(v.String)
		primary := k.Primary()
		if encrypted && keyID == primary {
			rep.Rows[keyID]++
			return nil
		}
		plain, err := k.Decrypt(ctx, c.Table, c.Column, id, v.String)
		if err != nil {
			return err
		}
		ct, err := k.Encrypt(c.Table, c.Column, id, plain)
		if err != nil {
			return err
		}
		set := fmt.Sprintf(`UPDATE %s SET %s = %s`, c.Table, c.Column, k.ph(1))
		args := []any{ct}
		if c.BlindIndex != "" {
			// Plaintext from before encryption has no index yet.
			args = append(args, k.BlindIndex(c.Table, c.Column, plain))
			set += fmt.Sprintf(`, %s = %s`, c.BlindIndex, k.ph(len(args)))
		}
		args = append(args, id, v.String)
		res, err := tx.ExecContext(ctx, set+fmt.Sprintf(` WHERE id = %s AND %s = %s`, k.ph(len(args)-1), c.Column, k.ph(len(args))), args...)
		if err != nil {
			return fmt.Errorf("re-encrypt %s.%s: %w", c.Table, c.Column, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 1 {
			rep.Reencrypted++
			rep.Rows[primary]++
			return nil
		}
		// Changed (or deleted) since it was read: read it again.
		rep.Retried++
		if attempt > 100 {
			return fmt.Errorf("re-encrypt %s.%s of %s: the value keeps changing", c.Table, c.Column, id)
		}
		err = tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE id = %s`, c.Column, c.Table, k.ph(1)), id).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Usage counts the stored values per data key (0: plaintext).
func (k *Keyring) Usage(ctx context.Context) (map[uint32]int, error) {
	out := map[uint32]int{}
	for _, c := range ent.EncryptedColumns {
		rows, err := k.db.QueryContext(ctx, fmt.Sprintf(`SELECT %s FROM %s WHERE %s IS NOT NULL`, c.Column, c.Table, c.Column))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", c.Table, err)
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return nil, err
			}
			id, _ := KeyID(v)
			out[id]++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ErrTooSoon refuses to retire keys while another process may still be
// encrypting under the previous primary.
var ErrTooSoon = errors.New("the data key was rotated less than two refresh intervals ago; other processes may still encrypt under the old key")

// Retire re-encrypts what is still under an older key (values written by
// processes that had not yet seen the rotation) and then removes from the
// keyset every key no stored value uses any more.
func (k *Keyring) Retire(ctx context.Context) (Report, error) {
	if time.Since(k.cur.Load().rotatedAt) < 2*time.Duration(k.refresh.Load()) {
		return Report{}, ErrTooSoon
	}
	rep, err := k.Reencrypt(ctx)
	if err != nil {
		return rep, err
	}
	used, err := k.Usage(ctx)
	if err != nil {
		return rep, err
	}
	rep.Rows = used
	err = k.update(ctx, k.kek, func(h map[string]*keyset.Handle) (map[string]*keyset.Handle, bool, error) {
		info := h[dataKeyset].KeysetInfo()
		m := keyset.NewManagerFromHandle(h[dataKeyset])
		for _, ki := range info.GetKeyInfo() {
			id := ki.GetKeyId()
			if id == info.GetPrimaryKeyId() || used[id] > 0 {
				continue
			}
			if err := m.Disable(id); err != nil {
				return nil, false, err
			}
			if err := m.Delete(id); err != nil {
				return nil, false, err
			}
			rep.Retired = append(rep.Retired, id)
		}
		nh, err := m.Handle()
		return map[string]*keyset.Handle{dataKeyset: nh}, false, err
	})
	return rep, err
}

// Keys lists the data keys in the keyset and which is the primary.
func (k *Keyring) Keys() (ids []uint32, primary uint32) {
	cur := k.cur.Load()
	for id := range cur.known {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, cur.primary
}
