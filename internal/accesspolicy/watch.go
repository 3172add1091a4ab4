package accesspolicy

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/casbin/casbin/v2/persist"
	"github.com/redis/go-redis/v9"
)

// Watcher is Casbin's persist.Watcher over Redis pub/sub, on the client
// the server already has: an instance that applies a version publishes
// its number, and every instance subscribed reloads from the database.
// The message carries no policy: the database is the one source, so a
// message lost or repeated costs at most a reload (and the poll heals a
// lost one).
type Watcher struct {
	rdb     *redis.Client
	channel string
	sub     *redis.PubSub
	mu      sync.Mutex
	notify  func(string)
	done    chan struct{}
}

var _ persist.Watcher = (*Watcher)(nil)

// NewRedisWatcher subscribes to the policy channel under prefix; it
// returns once Redis has confirmed the subscription, so no message
// published after it can be missed.
func NewRedisWatcher(ctx context.Context, rdb *redis.Client, prefix string) (*Watcher, error) {
	w := &Watcher{rdb: rdb, channel: prefix + "policy:version", done: make(chan struct{})}
	w.sub = rdb.Subscribe(ctx, w.channel)
	if _, err := w.sub.Receive(ctx); err != nil {
		w.sub.Close()
		return nil, err
	}
	go w.listen()
	return w, nil
}

func (w *Watcher) listen() {
	defer close(w.done)
	for msg := range w.sub.Channel() {
		w.mu.Lock()
		notify := w.notify
		w.mu.Unlock()
		if notify != nil {
			notify(msg.Payload)
		}
	}
}

// SetUpdateCallback sets what a message runs: the service's Sync.
func (w *Watcher) SetUpdateCallback(f func(string)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.notify = f
	return nil
}

// Update tells every instance a new version is in force.
func (w *Watcher) Update() error { return w.publish(context.Background(), 0) }

func (w *Watcher) publish(ctx context.Context, version int) error {
	return w.rdb.Publish(ctx, w.channel, strconv.Itoa(version)).Err()
}

// Close unsubscribes and waits for the listener to stop.
func (w *Watcher) Close() {
	w.sub.Close()
	<-w.done
}

// Watch makes the service reload on w's messages and publish through it.
// Call it before the service is used.
func (s *Service) Watch(w *Watcher) {
	_ = w.SetUpdateCallback(func(string) {
		if err := s.Sync(context.Background()); err != nil {
			s.log.Error("access policy: reload on notice failed", "err", err)
		}
	})
	s.publish = func(ctx context.Context, version int) {
		if err := w.publish(ctx, version); err != nil {
			// The others catch up at their next poll.
			s.log.WarnContext(ctx, "access policy: telling the other instances failed", "err", err)
		}
	}
}

// Poll checks the database for a newer version every interval until ctx
// ends: the fallback that heals a missed message, and the only way another
// instance's change arrives without Redis.
func (s *Service) Poll(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.Sync(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("access policy: poll failed", "err", err)
			}
		}
	}
}
