package crypt

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"
	"github.com/tink-crypto/tink-go/v2/mac"
	"github.com/tink-crypto/tink-go/v2/tink"
)

// The keysets, by purpose, in the encryption_keysets table.
const (
	dataKeyset  = "data"
	indexKeyset = "index"
)

// Prefix starts every stored ciphertext: the format's version, then the
// Tink ciphertext (whose first five bytes name the data key) in base64. A
// value without it is plaintext written before encryption was introduced;
// it is read as it is and encrypted by the next `hmis keys rotate`.
const Prefix = "enc1:"

// RefreshInterval is how often a process looks for a keyset rotated by
// another one, so that it stops encrypting under a key being retired. A
// ciphertext under a key it does not know makes it look at once.
const RefreshInterval = 30 * time.Second

// keys is one loaded version of the keysets.
type keys struct {
	version   int64
	rotatedAt time.Time
	data      *keyset.Handle
	aead      tink.AEAD
	primary   uint32
	known     map[uint32]bool
	mac       tink.MAC
}

// Keyring holds the unwrapped keysets of one database.
type Keyring struct {
	db      *sql.DB
	dialect string
	kek     KEK

	cur     atomic.Pointer[keys]
	refresh atomic.Int64 // the refresh interval, in nanoseconds
	wake    chan struct{}
	reload  sync.Mutex
}

// SetRefreshInterval changes RefreshInterval for this keyring (tests).
func (k *Keyring) SetRefreshInterval(d time.Duration) {
	k.refresh.Store(int64(d))
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// Open loads the keysets of the database, creating them (and their table)
// on first use. Processes starting together agree on one keyset: the first
// insert wins and the others read it.
func Open(ctx context.Context, db *sql.DB, dialect string, kek KEK) (*Keyring, error) {
	k := &Keyring{db: db, dialect: dialect, kek: kek, wake: make(chan struct{}, 1)}
	k.refresh.Store(int64(RefreshInterval))
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS encryption_keysets (
		purpose VARCHAR(16) PRIMARY KEY,
		keyset TEXT NOT NULL,
		version BIGINT NOT NULL,
		rotated_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create encryption_keysets: %w", err)
	}
	for _, purpose := range []string{dataKeyset, indexKeyset} {
		if err := k.create(ctx, purpose); err != nil {
			return nil, err
		}
	}
	if err := k.load(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Keyring) ph(i int) string {
	if k.dialect == "postgres" {
		return fmt.Sprintf("$%d", i)
	}
	return "?"
}

// create stores a new keyset for purpose unless there is one.
func (k *Keyring) create(ctx context.Context, purpose string) error {
	var n int
	if err := k.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM encryption_keysets WHERE purpose = `+k.ph(1), purpose).Scan(&n); err != nil {
		return fmt.Errorf("read encryption_keysets: %w", err)
	}
	if n > 0 {
		return nil
	}
	template := aead.AES256GCMKeyTemplate()
	if purpose == indexKeyset {
		template = mac.HMACSHA256Tag256KeyTemplate()
	}
	h, err := keyset.NewHandle(template)
	if err != nil {
		return err
	}
	wrapped, err := k.wrap(h, purpose)
	if err != nil {
		return err
	}
	_, err = k.db.ExecContext(ctx, fmt.Sprintf(`INSERT INTO encryption_keysets (purpose, keyset, version, rotated_at) VALUES (%s, %s, 1, %s)
		ON CONFLICT (purpose) DO NOTHING`, k.ph(1), k.ph(2), k.ph(3)), purpose, wrapped, time.Now().Unix())
	if err != nil {
		return fmt.Errorf("store %s keyset: %w", purpose, err)
	}
	return nil
}

// associatedData binds a wrapped keyset to its purpose: the index keyset
// cannot be passed off as the data keyset.
func associatedData(purpose string) []byte { return []byte("hmis encryption keyset: " + purpose) }

func (k *Keyring) wrap(h *keyset.Handle, purpose string) (string, error) {
	var buf bytes.Buffer
	if err := h.WriteWithAssociatedData(keyset.NewBinaryWriter(&buf), tinkKEK{k.kek}, associatedData(purpose)); err != nil {
		return "", fmt.Errorf("wrap %s keyset: %w", purpose, err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func unwrap(kek KEK, purpose, stored string) (*keyset.Handle, error) {
	raw, err := base64.StdEncoding.DecodeString(stored)
	if err != nil {
		return nil, fmt.Errorf("%s keyset: %w", purpose, err)
	}
	h, err := keyset.ReadWithAssociatedData(keyset.NewBinaryReader(bytes.NewReader(raw)), tinkKEK{kek}, associatedData(purpose))
	if err != nil {
		return nil, fmt.Errorf("cannot unwrap the %s keyset stored in the database: is this the master key it was made with? (%v)", purpose, err)
	}
	return h, nil
}

type storedKeyset struct {
	text      string
	version   int64
	rotatedAt int64
}

func (k *Keyring) read(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, forUpdate bool) (map[string]storedKeyset, error) {
	query := `SELECT purpose, keyset, version, rotated_at FROM encryption_keysets`
	if forUpdate && k.dialect == "postgres" {
		query += ` FOR UPDATE`
	}
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("read encryption_keysets: %w", err)
	}
	defer rows.Close()
	out := map[string]storedKeyset{}
	for rows.Next() {
		var purpose string
		var s storedKeyset
		if err := rows.Scan(&purpose, &s.text, &s.version, &s.rotatedAt); err != nil {
			return nil, err
		}
		out[purpose] = s
	}
	return out, rows.Err()
}

// load reads and unwraps both keysets.
func (k *Keyring) load(ctx context.Context) error {
	stored, err := k.read(ctx, k.db, false)
	if err != nil {
		return err
	}
	data, ok1 := stored[dataKeyset]
	index, ok2 := stored[indexKeyset]
	if !ok1 || !ok2 {
		return errors.New("encryption_keysets lacks a keyset")
	}
	dh, err := unwrap(k.kek, dataKeyset, data.text)
	if err != nil {
		return err
	}
	ih, err := unwrap(k.kek, indexKeyset, index.text)
	if err != nil {
		return err
	}
	a, err := aead.New(dh)
	if err != nil {
		return err
	}
	m, err := mac.New(ih)
	if err != nil {
		return err
	}
	info := dh.KeysetInfo()
	ks := &keys{version: data.version, rotatedAt: time.Unix(data.rotatedAt, 0), data: dh, aead: a,
		primary: info.GetPrimaryKeyId(), known: map[uint32]bool{}, mac: m}
	for _, ki := range info.GetKeyInfo() {
		ks.known[ki.GetKeyId()] = true
	}
	k.cur.Store(ks)
	return nil
}

// Reload reads the keysets again if another process changed them.
func (k *Keyring) Reload(ctx context.Context) error {
	k.reload.Lock()
	defer k.reload.Unlock()
	var version int64
	err := k.db.QueryRowContext(ctx, `SELECT version FROM encryption_keysets WHERE purpose = `+k.ph(1), dataKeyset).Scan(&version)
	if err != nil {
		return fmt.Errorf("read encryption_keysets: %w", err)
	}
	if version == k.cur.Load().version {
		return nil
	}
	return k.load(ctx)
}

// Watch reloads the keysets every refresh interval until ctx ends, so that
// within an interval of a rotation no process encrypts under the previous
// primary key any more, which Retire relies on. It runs on its own, not in
// the write path: a write inside a transaction never waits for another
// connection (on SQLite, the transactions waiting for the write lock may
// hold them all).
func (k *Keyring) Watch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(k.refresh.Load())):
		case <-k.wake:
		}
		_ = k.Reload(ctx) // a failed look is tried again at the next interval
	}
}

// Primary is the ID of the data key new ciphertexts are made with.
func (k *Keyring) Primary() uint32 { return k.cur.Load().primary }

// fieldAD binds a ciphertext to its table, column and row: moved to another
// row or column, it no longer decrypts.
func fieldAD(table, column, id string) []byte {
	return []byte(table + "\x00" + column + "\x00" + id)
}

// Encrypt seals the value of table.column in row id.
func (k *Keyring) Encrypt(table, column, id, plaintext string) (string, error) {
	ct, err := k.cur.Load().aead.Encrypt([]byte(plaintext), fieldAD(table, column, id))
	if err != nil {
		return "", fmt.Errorf("encrypt %s.%s: %w", table, column, err)
	}
	return Prefix + base64.RawStdEncoding.EncodeToString(ct), nil
}

// KeyID returns the ID of the data key a stored value was encrypted under;
// false for plaintext or a value not in the format.
func KeyID(stored string) (uint32, bool) {
	rest, ok := strings.CutPrefix(stored, Prefix)
	if !ok || len(rest) < 8 {
		return 0, false
	}
	head, err := base64.RawStdEncoding.DecodeString(rest[:8]) // 6 bytes: the 5-byte Tink prefix and one more
	if err != nil || head[0] != 1 {
		return 0, false
	}
	return binary.BigEndian.Uint32(head[1:5]), true
}

// Decrypt opens a stored value of table.column in row id. Plaintext from
// before encryption is returned as it is.
func (k *Keyring) Decrypt(ctx context.Context, table, column, id, stored string) (string, error) {
	rest, ok := strings.CutPrefix(stored, Prefix)
	if !ok {
		return stored, nil
	}
	ct, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("decrypt %s.%s of %s: malformed ciphertext", table, column, id)
	}
	cur := k.cur.Load()
	if keyID, ok := KeyID(stored); ok && !cur.known[keyID] {
		// Rotated by another process since this one loaded the keyset.
		if err := k.Reload(ctx); err != nil {
			return "", err
		}
		cur = k.cur.Load()
	}
	pt, err := cur.aead.Decrypt(ct, fieldAD(table, column, id))
	if err != nil {
		return "", fmt.Errorf("decrypt %s.%s of %s: %w", table, column, id, err)
	}
	return string(pt), nil
}

// Normalize is the form a value is indexed in: what the lookups compared
// before encryption. Identifier values are stored upper case without
// spaces already; national IDs were compared ignoring case.
func Normalize(value string) string { return strings.ToUpper(strings.TrimSpace(value)) }

// BlindIndex is the keyed hash of a value of table.column that lookups
// compare instead of the value: equal for equal (normalised) values, and
// without the index key telling nothing about them. The table and column
// are hashed in, so equal values in two columns do not show as equal.
func (k *Keyring) BlindIndex(table, column, value string) string {
	tag, err := k.cur.Load().mac.ComputeMAC([]byte(table + "\x00" + column + "\x00" + Normalize(value)))
	if err != nil {
		// HMAC over a loaded key does not fail.
		panic(fmt.Sprintf("blind index: %v", err))
	}
	return hex.EncodeToString(tag)
}
