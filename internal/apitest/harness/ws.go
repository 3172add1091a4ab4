package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The two GraphQL-over-WebSocket protocols gqlgen speaks, and frontends
// still use both: the graphql-ws library speaks graphql-transport-ws, and
// the older subscriptions-transport-ws (Apollo's legacy client) speaks
// graphql-ws.
const (
	ProtoTransportWS = "graphql-transport-ws"
	ProtoLegacyWS    = "graphql-ws"
)

// WSProtocols is both, for tests that run once per protocol.
var WSProtocols = []string{ProtoTransportWS, ProtoLegacyWS}

// WSTimeout bounds every wait for a message, so a missing event fails the
// test instead of hanging it.
const WSTimeout = 10 * time.Second

// WSMessage is one frame of either protocol.
type WSMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// WSClient is one GraphQL WebSocket connection. A single goroutine reads
// the socket, because a coder/websocket read whose context ends closes the
// connection: waiting with a timeout must not cost the connection.
type WSClient struct {
	T      testing.TB
	Proto  string // the subprotocol the connection speaks
	conn   *websocket.Conn
	in     chan WSMessage
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader has stopped

	mu      sync.Mutex
	readErr error // why reading stopped, once in is closed
	lastID  int
}

// DialWS opens a WebSocket to s's GraphQL endpoint speaking proto. The
// connection is closed when t ends.
func (s *Server) DialWS(t testing.TB, proto string) *WSClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(s.HTTP.URL, "http") + "/graphql"
	ctx, cancel := context.WithCancel(context.Background())
	dialCtx, dialCancel := context.WithTimeout(ctx, WSTimeout)
	defer dialCancel()
	conn, _, err := websocket.Dial(dialCtx, url, &websocket.DialOptions{
		HTTPClient:   s.HTTP.Client(),
		Subprotocols: []string{proto},
	})
	if err != nil {
		cancel()
		t.Fatalf("dial %s: %v", proto, err)
	}
	if got := conn.Subprotocol(); got != proto {
		cancel()
		conn.CloseNow()
		t.Fatalf("server chose subprotocol %q, want %q", got, proto)
	}
	c := &WSClient{T: t, Proto: proto, conn: conn, in: make(chan WSMessage, 256), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(c.done); c.read(ctx) }()
	t.Cleanup(c.Close)
	return c
}

// Close ends the connection from the client's side, as a client that goes
// away does, and waits for the reader; closing twice is harmless.
func (c *WSClient) Close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	c.cancel()
	<-c.done
}

func (c *WSClient) read(ctx context.Context) {
	defer close(c.in)
	for {
		_, raw, err := c.conn.Read(ctx)
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		var m WSMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			c.mu.Lock()
			c.readErr = fmt.Errorf("message is not JSON: %s", raw)
			c.mu.Unlock()
			return
		}
		switch {
		case m.Type == "ka" && c.Proto == ProtoLegacyWS, m.Type == "pong" && c.Proto == ProtoTransportWS:
			continue
		case m.Type == "ping" && c.Proto == ProtoTransportWS:
			// The protocol requires a pong as soon as possible.
			_ = c.Write(ctx, WSMessage{Type: "pong"})
			continue
		}
		select {
		case c.in <- m:
		case <-ctx.Done():
			return
		}
	}
}

// Write sends m as it is, for tests that send what a well-behaved client
// would not; most tests use Send.
func (c *WSClient) Write(ctx context.Context, m WSMessage) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, WSTimeout)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, raw)
}

// Send sends a message of type typ, failing the test if it cannot.
func (c *WSClient) Send(typ, id string, payload any) {
	c.T.Helper()
	m := WSMessage{Type: typ, ID: id}
	if payload != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			c.T.Fatalf("encode %s payload: %v", typ, err)
		}
		m.Payload = raw
	}
	if err := c.Write(context.Background(), m); err != nil {
		c.T.Fatalf("send %s: %v", typ, err)
	}
}

// Recv returns the next message other than a keepalive. ok is false if the
// connection closed first (CloseErr says how) or timeout passed.
func (c *WSClient) Recv(timeout time.Duration) (m WSMessage, ok bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case m, ok = <-c.in:
		return m, ok
	case <-timer.C:
		return WSMessage{}, false
	}
}

// CloseErr is why the connection stopped being read: nil while it is open.
func (c *WSClient) CloseErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// InitWith sends connection_init with payload and returns the server's
// first answer; ok is false if the connection closed or stayed silent.
func (c *WSClient) InitWith(payload any) (WSMessage, bool) {
	c.T.Helper()
	c.Send("connection_init", "", payload)
	return c.Recv(WSTimeout)
}

// Init opens the session with credential ("" for anonymous) in the
// Authorization form a browser client sends.
func (c *WSClient) Init(credential string) {
	c.T.Helper()
	payload := map[string]any{}
	if credential != "" {
		payload["Authorization"] = "Bearer " + credential
	}
	m, ok := c.InitWith(payload)
	if !ok {
		c.T.Fatalf("%s: no connection_ack (closed: %v)", c.Proto, c.CloseErr())
	}
	if m.Type != "connection_ack" {
		c.T.Fatalf("%s: want connection_ack, got %s %s", c.Proto, m.Type, m.Payload)
	}
}

// Start begins an operation and returns its ID.
func (c *WSClient) Start(query string, vars map[string]any) string {
	c.T.Helper()
	c.mu.Lock()
	c.lastID++
	id := fmt.Sprint(c.lastID)
	c.mu.Unlock()
	typ := "subscribe"
	if c.Proto == ProtoLegacyWS {
		typ = "start"
	}
	c.Send(typ, id, map[string]any{"query": query, "variables": vars})
	return id
}

// OpResult is one server message about an operation, in the terms of
// graphql-transport-ws: Kind is "next", "error" or "complete".
type OpResult struct {
	Kind string
	Resp Response
}

// Result waits for the next message about operation id, failing the test
// on a timeout, a closed connection, or a message about anything else.
func (c *WSClient) Result(id string) OpResult {
	c.T.Helper()
	r, ok := c.ResultWithin(id, WSTimeout)
	if !ok {
		c.T.Fatalf("%s: no message for operation %s within %s (closed: %v)", c.Proto, id, WSTimeout, c.CloseErr())
	}
	return r
}

// ResultWithin is Result with a timeout of the caller's; ok is false if
// nothing came or the connection closed.
func (c *WSClient) ResultWithin(id string, timeout time.Duration) (OpResult, bool) {
	c.T.Helper()
	m, ok := c.Recv(timeout)
	if !ok {
		return OpResult{}, false
	}
	if m.ID != id {
		c.T.Fatalf("%s: want a message for operation %s, got %s for %q: %s", c.Proto, id, m.Type, m.ID, m.Payload)
	}
	switch m.Type {
	case "next", "data":
		var r Response
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			c.T.Fatalf("%s: %s payload: %v: %s", c.Proto, m.Type, err, m.Payload)
		}
		return OpResult{Kind: "next", Resp: r}, true
	case "error":
		// gqlgen sends a list of errors in both protocols; the legacy
		// protocol's own description has a single error object.
		var r Response
		if err := json.Unmarshal(m.Payload, &r.Errors); err != nil {
			var one GQLError
			if err := json.Unmarshal(m.Payload, &one); err != nil {
				c.T.Fatalf("%s: error payload: %v: %s", c.Proto, err, m.Payload)
			}
			r.Errors = []GQLError{one}
		}
		return OpResult{Kind: "error", Resp: r}, true
	case "complete":
		return OpResult{Kind: "complete"}, true
	}
	c.T.Fatalf("%s: unexpected %s message: %s", c.Proto, m.Type, m.Payload)
	return OpResult{}, false
}

// Failure waits for operation id to fail and end, and returns its errors.
// gqlgen reports a resolver's or the field guard's error as a result with
// errors followed by complete, and a protocol-level failure as error; both
// are accepted, but the operation must end either way.
func (c *WSClient) Failure(id string) []GQLError {
	c.T.Helper()
	r := c.Result(id)
	switch r.Kind {
	case "error":
	case "next":
		if len(r.Resp.Errors) == 0 {
			c.T.Fatalf("%s: want a failure, got data %s", c.Proto, r.Resp.Data)
		}
		if len(r.Resp.Data) != 0 && string(r.Resp.Data) != "null" {
			c.T.Fatalf("%s: data alongside the failure: %s", c.Proto, r.Resp.Data)
		}
		if end := c.Result(id); end.Kind != "complete" {
			c.T.Fatalf("%s: want complete after the failure, got %s", c.Proto, end.Kind)
		}
	default:
		c.T.Fatalf("%s: want a failure, got %s", c.Proto, r.Kind)
	}
	return r.Resp.Errors
}

// CloseUnauthorized is the close code of a socket whose credential ended.
const CloseUnauthorized websocket.StatusCode = 4401

// AwaitClose waits for the server to close c and returns the close code and
// the messages that came first, failing the test if c stays open.
func (c *WSClient) AwaitClose() ([]WSMessage, websocket.StatusCode) {
	c.T.Helper()
	var before []WSMessage
	for {
		m, ok := c.Recv(WSTimeout)
		if !ok {
			break
		}
		before = append(before, m)
	}
	err := c.CloseErr()
	if err == nil {
		c.T.Fatalf("%s: the socket is still open %s later (messages: %+v)", c.Proto, WSTimeout, before)
	}
	return before, websocket.CloseStatus(err)
}

// MustCloseUnauthorized waits for c to be closed with 4401, after nothing
// but, on the legacy protocol, which has no close codes of its own, a
// connection_error saying UNAUTHENTICATED.
func (c *WSClient) MustCloseUnauthorized(what string) {
	c.T.Helper()
	before, code := c.AwaitClose()
	Must(c.T, code == CloseUnauthorized, "%s, %s: closed with %d (%v), want %d", what, c.Proto, code, c.CloseErr(), CloseUnauthorized)
	if c.Proto == ProtoTransportWS {
		Must(c.T, len(before) == 0, "%s, %s: messages before the close: %+v", what, c.Proto, before)
		return
	}
	Must(c.T, len(before) == 1 && before[0].Type == "connection_error", "%s, %s: want connection_error before the close, got %+v", what, c.Proto, before)
	var e GQLError
	Must(c.T, json.Unmarshal(before[0].Payload, &e) == nil && e.Code() == "UNAUTHENTICATED" && e.Message != "",
		"%s, %s: connection_error payload %s", what, c.Proto, before[0].Payload)
}

// Refused asserts that operation id was answered with UNAUTHENTICATED and
// nothing else.
func (c *WSClient) Refused(what, id string) {
	c.T.Helper()
	errs := c.Failure(id)
	Must(c.T, len(errs) == 1 && errs[0].Code() == "UNAUTHENTICATED", "%s, %s: want UNAUTHENTICATED, got %+v", what, c.Proto, errs)
}
