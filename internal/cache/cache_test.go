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
