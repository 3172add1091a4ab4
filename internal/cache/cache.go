// Package cache is the small key-value store behind token revocation and
// login rate limits: Redis when configured, so that every server process sees
// the same state, and an in-process map otherwise. It must never hold
// protected health information: keys and values are IDs and counters.
package cache

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cache is implemented by Memory and Redis.
type Cache interface {
	// Get returns the value at key and whether it exists.
	Get(ctx context.Context, key string) (string, bool, error)
	// Set stores value at key for ttl (0: no expiry).
	Set(ctx context.Context, key, value string, ttl time.Duration) error
	// Incr adds one to the counter at key and returns the new value; a counter
	// that did not exist starts at 1 and expires after ttl.
	Incr(ctx context.Context, key string, ttl time.Duration) (int64, error)
	// Reserve adds one to the counter at key only if it is below limit, and
	// reports whether it did; checking and counting are one atomic step, so
	// concurrent callers never take more than limit between them. A counter
	// that did not exist starts at 1 and expires after ttl.
	Reserve(ctx context.Context, key string, limit int64, ttl time.Duration) (bool, error)
	// Release gives back one reservation: the counter at key goes down by
	// one, never below zero, keeping its expiry. A missing counter stays
	// missing.
	Release(ctx context.Context, key string) error
	// Del removes keys.
	Del(ctx context.Context, keys ...string) error
	Ping(ctx context.Context) error
}

// Redis is a Cache in Redis, every key under a prefix so that several
// deployments or test runs can share one server.
type Redis struct {
	client *redis.Client
	prefix string
}

// NewRedis returns a Cache using client with keys under prefix.
func NewRedis(client *redis.Client, prefix string) *Redis {
	return &Redis{client: client, prefix: prefix}
}

func (r *Redis) Get(ctx context.Context, key string) (string, bool, error) {
	v, err := r.client.Get(ctx, r.prefix+key).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

func (r *Redis) Set(ctx context.Context, key, value string, ttl time.Duration) error {
	return r.client.Set(ctx, r.prefix+key, value, ttl).Err()
}

// incrScript sets the expiry only on the first increment, atomically, so a
// counter cannot be left without one if the process dies in between.
var incrScript = redis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 and tonumber(ARGV[1]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`)

func (r *Redis) Incr(ctx context.Context, key string, ttl time.Duration) (int64, error) {
	return incrScript.Run(ctx, r.client, []string{r.prefix + key}, ttl.Milliseconds()).Int64()
}

// reserveScript checks and counts in one step: a GET followed by an INCR from
// the client would let concurrent callers all pass the check. The expiry is
// set whenever the key lacks one, so a counter never outlives its window.
var reserveScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
if tonumber(ARGV[2]) > 0 and redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1`)

func (r *Redis) Reserve(ctx context.Context, key string, limit int64, ttl time.Duration) (bool, error) {
	n, err := reserveScript.Run(ctx, r.client, []string{r.prefix + key}, limit, ttl.Milliseconds()).Int64()
	return n == 1, err
}

// releaseScript never creates the key: DECR of a missing (expired) counter
// would leave -1 behind with no expiry.
var releaseScript = redis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 0 then redis.call('DECR', KEYS[1]) end
return 0`)

func (r *Redis) Release(ctx context.Context, key string) error {
	return releaseScript.Run(ctx, r.client, []string{r.prefix + key}).Err()
}

func (r *Redis) Del(ctx context.Context, keys ...string) error {
	full := make([]string, len(keys))
	for i, k := range keys {
		full[i] = r.prefix + k
	}
	return r.client.Del(ctx, full...).Err()
}

func (r *Redis) Ping(ctx context.Context) error { return r.client.Ping(ctx).Err() }

// Memory is a Cache in this process.
type Memory struct {
	mu    sync.Mutex
	items map[string]memoryItem
	now   func() time.Time
}

type memoryItem struct {
	value   string
	expires time.Time // zero: never
}

// NewMemory returns an empty in-process Cache.
func NewMemory() *Memory {
	return &Memory{items: map[string]memoryItem{}, now: time.Now}
}

// live returns the item at key unless it has expired, which it then drops.
func (m *Memory) live(key string) (memoryItem, bool) {
	it, ok := m.items[key]
	if ok && !it.expires.IsZero() && !m.now().Before(it.expires) {
		delete(m.items, key)
		return memoryItem{}, false
	}
	return it, ok
}

func (m *Memory) Get(_ context.Context, key string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.live(key)
	return it.value, ok, nil
}

func (m *Memory) Set(_ context.Context, key, value string, ttl time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.items[key] = memoryItem{value: value, expires: m.expiry(ttl)}
	m.sweep()
	return nil
}

func (m *Memory) Incr(_ context.Context, key string, ttl time.Duration) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, n, err := m.counter(key, ttl)
	if err != nil {
		return 0, err
	}
	n++
	it.value = strconv.FormatInt(n, 10)
	m.items[key] = it
	return n, nil
}

// counter returns key's live item and its count, or a new item expiring
// after ttl and zero. The caller holds m.mu.
func (m *Memory) counter(key string, ttl time.Duration) (memoryItem, int64, error) {
	it, ok := m.live(key)
	if !ok {
		it.expires = m.expiry(ttl)
		return it, 0, nil
	}
	n, err := strconv.ParseInt(it.value, 10, 64)
	if err != nil {
		return it, 0, errors.New("cache: value is not a counter")
	}
	return it, n, nil
}

func (m *Memory) Reserve(_ context.Context, key string, limit int64, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, n, err := m.counter(key, ttl)
	if err != nil || n >= limit {
		return false, err
	}
	it.value = strconv.FormatInt(n+1, 10)
	m.items[key] = it
	m.sweep()
	return true, nil
}

func (m *Memory) Release(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	it, ok := m.live(key)
	if !ok {
		return nil
	}
	n, err := strconv.ParseInt(it.value, 10, 64)
	if err != nil {
		return errors.New("cache: value is not a counter")
	}
	if n > 0 {
		it.value = strconv.FormatInt(n-1, 10)
		m.items[key] = it
	}
	return nil
}

func (m *Memory) Del(_ context.Context, keys ...string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range keys {
		delete(m.items, k)
	}
	return nil
}

func (m *Memory) Ping(context.Context) error { return nil }

func (m *Memory) expiry(ttl time.Duration) time.Time {
	if ttl <= 0 {
		return time.Time{}
	}
	return m.now().Add(ttl)
}

// sweep drops expired items once the map has grown, so that a stream of
// failed logins from many addresses cannot grow memory without bound.
func (m *Memory) sweep() {
	if len(m.items) < 10000 {
		return
	}
	for k := range m.items {
		m.live(k)
	}
}
