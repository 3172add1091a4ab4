package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
)

// WebSocket close codes, those of graphql-transport-ws, sent on both
// protocols (the legacy graphql-ws protocol defines none of its own, and
// also gets a connection_error message before the close).
const (
	// closeUnauthorized (4401) closes a socket whose credential has ended:
	// logout, a password change or a reused refresh token ending the
	// session, a revoked API key, or the access token's expiry. The client
	// refreshes its token (or signs in again), reconnects and resubscribes
	// with after.
	closeUnauthorized = 4401
	// closeForbidden (4403) refuses a connection_init whose credential is
	// not valid, as graphql-transport-ws recommends.
	closeForbidden = 4403
)

// defaultSessionCheck is how often an idle socket asks whether its session
// has ended when Options leave it unset (HMIS_WS_SESSION_CHECK sets it, to
// the same default). It costs one cache read per socket
// per interval, and bounds only how late a client that sends nothing learns
// of the end: nothing reaches or acts through the socket meanwhile, as every
// operation and event checks for itself.
const defaultSessionCheck = 15 * time.Second

// endGrace bounds how long a socket whose credential has ended waits for
// the operations in flight on it to send their last message before it
// closes anyway.
const endGrace = 5 * time.Second

// addWebsocket serves GraphQL over WebSocket, in both protocols, on srv.
//
// The credential is presented once, in connection_init, but the socket does
// not outlive it: every operation on it is checked again before it runs
// (auth.Service.Recheck: the token's expiry and one read of the shared
// revocation cache), as is every subscription event, and a watch closes the
// socket when the access token expires and, checking every interval, when
// the session has ended although nothing was sent. A refused operation
// gets UNAUTHENTICATED; then every subscription on the socket ends with
// UNAUTHENTICATED and its resumeAfter, and the socket closes with 4401.
func addWebsocket(srv *handler.Server, a *auth.Service, trail *audit.Trail, log *slog.Logger, interval time.Duration, maxMessageBytes int64) {
	if interval <= 0 {
		interval = defaultSessionCheck
	}
	t := &wsTransport{
		// A client has this long to authenticate before the socket closes.
		initTimeout: 10 * time.Second,
		// A message on the socket is bounded like a request body.
		readLimit: maxMessageBytes,
		pump:      newPump(trail),
	}
	t.auth, t.log, t.interval = a, log, interval
	t.init = func(ctx context.Context, s *socket, payload transport.InitPayload) (context.Context, error) {
		credential := bearer(payload.Authorization())
		if credential == "" {
			credential = payload.GetString("authToken")
		}
		v, err := a.Authenticate(ctx, credential)
		if err != nil {
			if apperr.CodeOf(err) == apperr.Internal {
				log.WarnContext(ctx, "websocket authentication failed", "err", err)
				err = &apperr.Error{Code: apperr.Internal, Message: "internal error"}
			}
			return withClose(ctx, closeForbidden, "Forbidden"), err
		}
		if v != nil && v.Scopes != nil {
			return withClose(ctx, closeForbidden, "Forbidden"), errScopedKey
		}
		conn := auth.NewConnection(v, s.credentialEnded)
		ctx = auth.WithConnection(auth.WithViewer(ctx, v), conn)
		s.startClock(ctx, conn, v)
		return ctx, nil
	}
	srv.AddTransport(t)
	srv.Use(socketGuard{auth: a, log: log})
}

type socketKey struct{}

func socketFrom(ctx context.Context) *socket {
	s, _ := ctx.Value(socketKey{}).(*socket)
	return s
}

// socket is one GraphQL WebSocket connection. Once its credential has
// ended it closes with 4401 as soon as no operation is in flight, so that
// each sends its last message (a refusal, a subscription's error with
// resumeAfter) before the close.
type socket struct {
	t    *wsTransport
	exec graphql.GraphExecutor
	conn *wsConn
	// cancel ends ctx, and with it every operation on the socket.
	cancel context.CancelFunc

	mu  sync.Mutex
	ctx context.Context // the connection's, with its viewer once initialised
	// ops are the operations running, by their IDs: a slice, as a
	// dashboard runs one or two and a map would cost more than either.
	ops      []*wsOperation
	inflight int
	ended    error // why the credential ended; nil while it holds
	closed   bool

	// The socket's clock (startClock).
	clock     *time.Timer
	pingEvery time.Duration
	nextPing  time.Time
	watched   *auth.Connection // nil: no credential to watch
	nextCheck time.Time
	expiry    time.Time // zero: none
}

// Idle sockets get a keepalive (graphql-ws) or a ping (graphql-transport-ws)
// this often, so that proxies do not cut idle dashboards.
const (
	keepAliveInterval = 10 * time.Second
	pingInterval      = 25 * time.Second
)

// expiryRecheck is how soon a credential past its expiry that the cache
// could not confirm ended is asked about again.
const expiryRecheck = time.Second

// startClock keeps one timer for the socket, for as long as it is open: it
// sends keepalives or pings, and, for a socket with a credential, ends the
// connection at the credential's expiry and when a check every interval
// finds its session or API key revoked. Operations and events check for
// themselves; the watch is for a socket that sends nothing, so that its
// client learns at once, and for closing what would only hold resources.
// One timer rather than one per duty, and no goroutine: an idle dashboard
// should cost little more than its connection.
func (s *socket) startClock(ctx context.Context, conn *auth.Connection, v *auth.Viewer) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.pingEvery = keepAliveInterval
	if s.conn.transportWS {
		s.pingEvery = pingInterval
	}
	s.nextPing = now.Add(s.pingEvery)
	if v != nil {
		s.watched = conn
		s.nextCheck = now.Add(s.t.interval)
		s.expiry = v.ExpiresAt
	}
	s.clock = time.AfterFunc(s.untilNextLocked(now), func() { s.tick(ctx) })
}

// untilNextLocked is how long until the clock's next duty; the caller
// holds s.mu.
func (s *socket) untilNextLocked(now time.Time) time.Duration {
	next := s.nextPing
	if s.watched != nil {
		if s.nextCheck.Before(next) {
			next = s.nextCheck
		}
		if !s.expiry.IsZero() && s.expiry.Before(next) {
			next = s.expiry
		}
	}
	return max(next.Sub(now), 0)
}

func (s *socket) tick(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	now := time.Now()
	s.mu.Lock()
	ping := !now.Before(s.nextPing)
	conn := s.watched
	expired := conn != nil && !s.expiry.IsZero() && !now.Before(s.expiry)
	check := conn != nil && (expired || !now.Before(s.nextCheck))
	s.mu.Unlock()
	if ping {
		msg := map[string]string{"type": "ka"}
		if s.conn.transportWS {
			msg = map[string]string{"type": "ping"}
		}
		if err := s.conn.WriteJSON(msg); err != nil {
			return // the socket is closing; its reader ends it
		}
	}
	if check && !s.stillValid(ctx, conn) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || ctx.Err() != nil {
		return
	}
	if ping {
		s.nextPing = now.Add(s.pingEvery)
	}
	if check {
		s.nextCheck = now.Add(s.t.interval)
		if expired {
			// Should the clock disagree, it is asked again shortly.
			s.expiry = now.Add(expiryRecheck)
		}
	}
	s.clock.Reset(s.untilNextLocked(now))
}

// stillValid asks whether the socket's credential still holds; if not,
// the connection has been ended (and the socket is closing).
func (s *socket) stillValid(ctx context.Context, conn *auth.Connection) bool {
	if conn.Err() != nil {
		return false
	}
	if err := s.t.auth.Recheck(ctx); err != nil && apperr.CodeOf(err) != apperr.Unauthenticated {
		// The cache did not answer. Every operation and event is refused
		// meanwhile; closing every socket would only make every client
		// reconnect into the same outage.
		s.t.log.WarnContext(ctx, "websocket credential check failed", "err", err)
	}
	return conn.Err() == nil
}

// stopClockLocked stops the socket's timer; the caller holds s.mu.
func (s *socket) stopClockLocked() {
	if s.clock != nil {
		s.clock.Stop()
	}
}

// socketBuffer sizes the write buffer of a socket, and half of it the read
// buffer (a dashboard sends less, and more rarely, than it is sent).
// Messages on a dashboard's socket are small and rare, so the 4 KiB each
// that net/http hands over with a hijacked connection would be most of what
// an idle subscription costs; a larger message is read or written in
// several steps.
const socketBuffer = 512

// smallBuffers is the ResponseWriter coder/websocket hijacks: the same
// connection, with buffers of socketBuffer bytes.
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	// What the client sent right after the handshake may already be
	// buffered. It must end up in the new reader's buffer, not behind it:
	// coder/websocket keeps what is buffered and reads the rest from conn.
	r := bufio.NewReaderSize(conn, socketBuffer/2)
	if n := brw.Reader.Buffered(); n > 0 {
		early, _ := brw.Reader.Peek(n)
		r = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(early)), conn), max(socketBuffer/2, n))
		if _, err := r.Peek(n); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, socketBuffer)), nil
}

// credentialEnded is told by the connection when its credential ends.
func (s *socket) credentialEnded(err error) {
	s.mu.Lock()
	s.ended = err
	idle := s.inflight == 0
	s.mu.Unlock()
	if idle {
		s.close()
		return
	}
	time.AfterFunc(endGrace, s.close)
}

// begin counts an operation in flight, from the moment it is dispatched
// until done, which the transport calls after its last message is written.
func (s *socket) begin() {
	s.mu.Lock()
	s.inflight++
	s.mu.Unlock()
}

func (s *socket) done() {
	s.mu.Lock()
	s.inflight--
	ready := s.ended != nil && s.inflight == 0
	s.mu.Unlock()
	if ready {
		s.close()
	}
}

// close closes the socket with 4401, once. The legacy protocol has no close
// codes of its own and its clients may not look at one, so it first gets
// connection_error with the reason and UNAUTHENTICATED.
func (s *socket) close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.stopClockLocked()
	conn, err := s.conn, s.ended
	s.mu.Unlock()
	message := err.Error()
	if conn.Subprotocol() != "graphql-transport-ws" {
		_ = conn.WriteJSON(map[string]any{"type": "connection_error", "payload": &gqlerror.Error{
			Message: message, Extensions: map[string]any{"code": string(apperr.Unauthenticated)},
		}})
	}
	// A close reason is at most 123 bytes.
	if len(message) > 123 {
		message = message[:123]
	}
	_ = conn.WriteClose(closeUnauthorized, message)
	s.cancel()
}

// socketGuard checks the credential of a socket before each operation on
// it, whatever its type: a query or a mutation sent on an open socket
// acts with the socket's credential, which may have ended since
// connection_init. It refuses an operation whose credential has ended with
// UNAUTHENTICATED, which ends the socket.
type socketGuard struct {
	auth *auth.Service
	log  *slog.Logger
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
} = socketGuard{}

func (socketGuard) ExtensionName() string                   { return "SocketCredential" }
func (socketGuard) Validate(graphql.ExecutableSchema) error { return nil }
func (g socketGuard) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	s := socketFrom(ctx)
	if s == nil {
		return next(ctx) // an HTTP request, authenticated as it came in
	}
	if err := g.auth.Recheck(ctx); err != nil {
		code, message := apperr.CodeOf(err), err.Error()
		if code != apperr.Unauthenticated {
			g.log.WarnContext(ctx, "websocket credential check failed", "err", err)
			code, message = apperr.Internal, "internal error"
		}
		return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{{
			Message: message, Extensions: map[string]any{"code": string(code)},
		}}})
	}
	return next(ctx)
}
