package auth

import (
	"context"
	"sync"

	"github.com/hmis-dev/hmis/internal/apperr"
)

// Connection is a long-lived connection, such as a WebSocket, whose
// credential was presented once, when it opened, and which must not outlive
// it. Once the credential ends, the connection ends: Ended is closed, Err
// says why, and whoever owns the connection is told so it can close it.
type Connection struct {
	once   sync.Once
	ended  chan struct{}
	err    error
	onEnd  func(error)
	viewer *Viewer

	mu       sync.Mutex
	done     bool
	watchers map[*func()]struct{}
}

// NewConnection returns a live connection acting for v; onEnd is called
// once, when it ends.
func NewConnection(v *Viewer, onEnd func(error)) *Connection {
	return &Connection{ended: make(chan struct{}), onEnd: onEnd, viewer: v}
}

// End ends c for err; later calls do nothing.
func (c *Connection) End(err error) {
	if c == nil {
		return
	}
	c.once.Do(func() {
		c.err = err
		close(c.ended)
		c.mu.Lock()
		c.done = true
		watchers := c.watchers
		c.watchers = nil
		c.mu.Unlock()
		for f := range watchers {
			go (*f)()
		}
		if c.onEnd != nil {
			c.onEnd(err)
		}
	})
}

// AfterEnd arranges for f to run in a goroutine of its own once c ends, at
// once if it has, as context.AfterFunc does for a context: what follows a
// connection registers here instead of keeping a goroutine waiting on
// Ended. stop unregisters f and reports whether it did so before f was
// started. On a nil connection f never runs.
func (c *Connection) AfterEnd(f func()) (stop func() bool) {
	if c == nil {
		return func() bool { return true }
	}
	key := &f
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	if c.watchers == nil {
		c.watchers = map[*func()]struct{}{}
	}
	c.watchers[key] = struct{}{}
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		_, ok := c.watchers[key]
		delete(c.watchers, key)
		return ok
	}
}

// Ended is closed when c ends. A nil connection (a plain HTTP request)
// never ends, so a select on it waits for its other cases.
func (c *Connection) Ended() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.ended
}

// Err is why c ended, nil while it lives.
func (c *Connection) Err() error {
	if c == nil {
		return nil
	}
	select {
	case <-c.ended:
		return c.err
	default:
		return nil
	}
}

type connectionKey struct{}

// WithConnection returns ctx on connection c.
func WithConnection(ctx context.Context, c *Connection) context.Context {
	return context.WithValue(ctx, connectionKey{}, c)
}

// ConnectionFrom returns the connection of ctx, nil outside one.
func ConnectionFrom(ctx context.Context) *Connection {
	c, _ := ctx.Value(connectionKey{}).(*Connection)
	return c
}

// Recheck asks StillValid whether the credential the connection of ctx was
// opened with still holds, and ends the connection if it does not. It is
// the check of every operation and every event on a connection: one cache
// read, shared by every server, so a logout on one ends the connection on
// another. An error other than UNAUTHENTICATED (the cache unreachable)
// refuses what asked but leaves the connection open. Outside a connection
// it checks the viewer of ctx.
func (s *Service) Recheck(ctx context.Context) error {
	c := ConnectionFrom(ctx)
	if err := c.Err(); err != nil {
		return err
	}
	v := FromContext(ctx)
	if c != nil {
		v = c.viewer
	}
	err := s.StillValid(ctx, v)
	if apperr.CodeOf(err) == apperr.Unauthenticated {
		c.End(err)
	}
	return err
}
