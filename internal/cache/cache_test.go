package cache

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/testenv"
)

// caches returns the in-process cache and, when a test Redis is configured,
// the Redis one, so each test runs against both.
func caches(t *testing.T) map[string]Cache {
	out := map[string]Cache{"memory": NewMemory()}
	if client, prefix := testenv.Redis(t); client != nil {
		out["redis"] = NewRedis(client, prefix)
	}
	return out
}

func TestGetSetDel(t *testing.T) {
	ctx := context.Background()
	for name, c := range caches(t) {
		t.Run(name, func(t *testing.T) {
			if _, ok, err := c.Get(ctx, "k"); ok || err != nil {
				t.Fatalf("empty get: %v %v", ok, err)
			}
			if err := c.Set(ctx, "k", "v", time.Minute); err != nil {
				t.Fatal(err)
			}
			if v, ok, err := c.Get(ctx, "k"); v != "v" || !ok || err != nil {
				t.Fatalf("get: %q %v %v", v, ok, err)
			}
			if err := c.Del(ctx, "k"); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := c.Get(ctx, "k"); ok {
				t.Fatal("deleted key still there")
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	for name, c := range caches(t) {
		t.Run(name, func(t *testing.T) {
			if err := c.Set(ctx, "short", "v", 50*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if n, err := c.Incr(ctx, "counter", 50*time.Millisecond); n != 1 || err != nil {
				t.Fatalf("incr: %d %v", n, err)
			}
			time.Sleep(120 * time.Millisecond)
			if _, ok, _ := c.Get(ctx, "short"); ok {
				t.Fatal("value outlived its ttl")
			}
			if n, _ := c.Incr(ctx, "counter", time.Minute); n != 1 {
				t.Fatalf("counter outlived its ttl: %d", n)
			}
		})
	}
}

// TestConcurrentIncr: counters are the login throttle; no increment may be lost.
func TestConcurrentIncr(t *testing.T) {
	ctx := context.Background()
	for name, c := range caches(t) {
		t.Run(name, func(t *testing.T) {
			var wg sync.WaitGroup
			for i := 0; i < 50; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := c.Incr(ctx, "n", time.Minute); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			if v, _, _ := c.Get(ctx, "n"); v != "50" {
				t.Fatalf("counter %s after 50 increments", v)
			}
		})
	}
}

// TestConcurrentReserve: the login throttle reserves an attempt before it
// checks a password, so however many callers race, exactly limit get a slot.
func TestConcurrentReserve(t *testing.T) {
	ctx := context.Background()
	for name, c := range caches(t) {
		t.Run(name, func(t *testing.T) {
			const limit = 5
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				granted int
			)
			start := make(chan struct{})
			for i := 0; i < 40; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					ok, err := c.Reserve(ctx, "slots", limit, time.Minute)
					if err != nil {
						t.Error(err)
					}
					if ok {
						mu.Lock()
						granted++
						mu.Unlock()
					}
				}()
			}
			close(start)
			wg.Wait()
			if granted != limit {
				t.Fatalf("%d reservations granted, limit %d", granted, limit)
			}
			if v, _, _ := c.Get(ctx, "slots"); v != "5" {
				t.Fatalf("counter %s: refused reservations must not count", v)
			}
		})
	}
}

func TestReleaseGivesBackOneSlot(t *testing.T) {
	ctx := context.Background()
	for name, c := range caches(t) {
		t.Run(name, func(t *testing.T) {
			for i := 0; i < 2; i++ {
				if ok, err := c.Reserve(ctx, "r", 2, time.Minute); !ok || err != nil {
					t.Fatalf("reserve %d: %v %v", i, ok, err)
				}
			}
			if ok, _ := c.Reserve(ctx, "r", 2, time.Minute); ok {
				t.Fatal("a third slot under a limit of two")
			}
			if err := c.Release(ctx, "r"); err != nil {
				t.Fatal(err)
			}
			if ok, _ := c.Reserve(ctx, "r", 2, time.Minute); !ok {
				t.Fatal("a released slot is free again")
			}
			// Releasing more than was reserved, or a counter that is gone,
			// neither goes below zero nor creates a counter without expiry.
			for i := 0; i < 4; i++ {
				if err := c.Release(ctx, "r"); err != nil {
					t.Fatal(err)
				}
			}
			if v, _, _ := c.Get(ctx, "r"); v != "0" {
				t.Fatalf("counter %s after over-release", v)
			}
			if err := c.Release(ctx, "never-reserved"); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := c.Get(ctx, "never-reserved"); ok {
				t.Fatal("release created a counter")
			}
		})
	}
}

func TestReserveExpires(t *testing.T) {
	ctx := context.Background()
	for name, c := range caches(t) {
		t.Run(name, func(t *testing.T) {
			if ok, err := c.Reserve(ctx, "w", 1, 50*time.Millisecond); !ok || err != nil {
				t.Fatalf("reserve: %v %v", ok, err)
			}
			time.Sleep(120 * time.Millisecond)
			if ok, _ := c.Reserve(ctx, "w", 1, time.Minute); !ok {
				t.Fatal("a reservation outlived its window")
			}
		})
	}
}
