package apitest

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
	protoTransportWS = "graphql-transport-ws"
	protoLegacyWS    = "graphql-ws"
)

var wsProtocols = []string{protoTransportWS, protoLegacyWS}

// wsTimeout bounds every wait for a message, so a missing event fails the
// test instead of hanging it.
const wsTimeout = 10 * time.Second

type wsMessage struct {
	Type    string          `json:"type"`
	ID      string          `json:"id,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// wsClient is one GraphQL WebSocket connection. A single goroutine reads
// the socket, because a coder/websocket read whose context ends closes the
// connection: waiting with a timeout must not cost the connection.
type wsClient struct {
	t      testing.TB
	proto  string
	conn   *websocket.Conn
	in     chan wsMessage
	cancel context.CancelFunc
	done   chan struct{} // closed when the reader has stopped

	mu      sync.Mutex
	readErr error // why reading stopped, once in is closed
	lastID  int
}

// dialWS opens a WebSocket to s's GraphQL endpoint speaking proto. The
// connection is closed when t ends.
func (s *server) dialWS(t testing.TB, proto string) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(s.http.URL, "http") + "/graphql"
	ctx, cancel := context.WithCancel(context.Background())
	dialCtx, dialCancel := context.WithTimeout(ctx, wsTimeout)
	defer dialCancel()
	conn, _, err := websocket.Dial(dialCtx, url, &websocket.DialOptions{
		HTTPClient:   s.http.Client(),
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
	c := &wsClient{t: t, proto: proto, conn: conn, in: make(chan wsMessage, 256), cancel: cancel, done: make(chan struct{})}
	go func() { defer close(c.done); c.read(ctx) }()
	t.Cleanup(c.close)
	return c
}

// close ends the connection from the client's side, as a client that goes
// away does, and waits for the reader; closing twice is harmless.
func (c *wsClient) close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	c.cancel()
	<-c.done
}

func (c *wsClient) read(ctx context.Context) {
	defer close(c.in)
	for {
		_, raw, err := c.conn.Read(ctx)
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		var m wsMessage
		if err := json.Unmarshal(raw, &m); err != nil {
			c.mu.Lock()
			c.readErr = fmt.Errorf("message is not JSON: %s", raw)
			c.mu.Unlock()
			return
		}
		switch {
		case m.Type == "ka" && c.proto == protoLegacyWS, m.Type == "pong" && c.proto == protoTransportWS:
			continue
		case m.Type == "ping" && c.proto == protoTransportWS:
			// The protocol requires a pong as soon as possible.
			_ = c.write(ctx, wsMessage{Type: "pong"})
			continue
		}
		select {
		case c.in <- m:
		case <-ctx.Done():
			return
		}
	}
}

func (c *wsClient) write(ctx context.Context, m wsMessage) error {
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, wsTimeout)
	defer cancel()
	return c.conn.Write(ctx, websocket.MessageText, raw)
}

func (c *wsClient) send(typ, id string, payload any) {
	c.t.Helper()
	m := wsMessage{Type: typ, ID: id}
	if payload != nil {
		raw, err := json.Marshal(payload)
		if err != nil {
			c.t.Fatalf("encode %s payload: %v", typ, err)
		}
		m.Payload = raw
	}
	if err := c.write(context.Background(), m); err != nil {
		c.t.Fatalf("send %s: %v", typ, err)
	}
}

// recv returns the next message other than a keepalive. ok is false if the
// connection closed first (closeErr says how) or timeout passed.
func (c *wsClient) recv(timeout time.Duration) (m wsMessage, ok bool) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case m, ok = <-c.in:
		return m, ok
	case <-timer.C:
		return wsMessage{}, false
	}
}

func (c *wsClient) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// initWith sends connection_init with payload and returns the server's
// first answer; ok is false if the connection closed or stayed silent.
func (c *wsClient) initWith(payload any) (wsMessage, bool) {
	c.t.Helper()
	c.send("connection_init", "", payload)
	return c.recv(wsTimeout)
}

// init opens the session with credential ("" for anonymous) in the
// Authorization form a browser client sends.
func (c *wsClient) init(credential string) {
	c.t.Helper()
	payload := map[string]any{}
	if credential != "" {
		payload["Authorization"] = "Bearer " + credential
	}
	m, ok := c.initWith(payload)
	if !ok {
		c.t.Fatalf("%s: no connection_ack (closed: %v)", c.proto, c.closeErr())
	}
	if m.Type != "connection_ack" {
		c.t.Fatalf("%s: want connection_ack, got %s %s", c.proto, m.Type, m.Payload)
	}
}

// start begins an operation and returns its ID.
func (c *wsClient) start(query string, vars map[string]any) string {
	c.t.Helper()
	c.mu.Lock()
	c.lastID++
	id := fmt.Sprint(c.lastID)
	c.mu.Unlock()
	typ := "subscribe"
	if c.proto == protoLegacyWS {
		typ = "start"
	}
	c.send(typ, id, map[string]any{"query": query, "variables": vars})
	return id
}

// opResult is one server message about an operation, in the terms of
// graphql-transport-ws: kind is "next", "error" or "complete".
type opResult struct {
	kind string
	resp response
}

// result waits for the next message about operation id, failing the test
// on a timeout, a closed connection, or a message about anything else.
func (c *wsClient) result(id string) opResult {
	c.t.Helper()
	r, ok := c.resultWithin(id, wsTimeout)
	if !ok {
		c.t.Fatalf("%s: no message for operation %s within %s (closed: %v)", c.proto, id, wsTimeout, c.closeErr())
	}
	return r
}

// resultWithin is result with a timeout of the caller's; ok is false if
// nothing came or the connection closed.
func (c *wsClient) resultWithin(id string, timeout time.Duration) (opResult, bool) {
	c.t.Helper()
	m, ok := c.recv(timeout)
	if !ok {
		return opResult{}, false
	}
	if m.ID != id {
		c.t.Fatalf("%s: want a message for operation %s, got %s for %q: %s", c.proto, id, m.Type, m.ID, m.Payload)
	}
	switch m.Type {
	case "next", "data":
		var r response
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			c.t.Fatalf("%s: %s payload: %v: %s", c.proto, m.Type, err, m.Payload)
		}
		return opResult{kind: "next", resp: r}, true
	case "error":
		// gqlgen sends a list of errors in both protocols; the legacy
		// protocol's own description has a single error object.
		var r response
		if err := json.Unmarshal(m.Payload, &r.Errors); err != nil {
			var one gqlError
			if err := json.Unmarshal(m.Payload, &one); err != nil {
				c.t.Fatalf("%s: error payload: %v: %s", c.proto, err, m.Payload)
			}
			r.Errors = []gqlError{one}
		}
		return opResult{kind: "error", resp: r}, true
	case "complete":
		return opResult{kind: "complete"}, true
	}
	c.t.Fatalf("%s: unexpected %s message: %s", c.proto, m.Type, m.Payload)
	return opResult{}, false
}

// failure waits for operation id to fail and end, and returns its errors.
// gqlgen reports a resolver's or the field guard's error as a result with
// errors followed by complete, and a protocol-level failure as error; both
// are accepted, but the operation must end either way.
func (c *wsClient) failure(id string) []gqlError {
	c.t.Helper()
	r := c.result(id)
	switch r.kind {
	case "error":
	case "next":
		if len(r.resp.Errors) == 0 {
			c.t.Fatalf("%s: want a failure, got data %s", c.proto, r.resp.Data)
		}
		if len(r.resp.Data) != 0 && string(r.resp.Data) != "null" {
			c.t.Fatalf("%s: data alongside the failure: %s", c.proto, r.resp.Data)
		}
		if end := c.result(id); end.kind != "complete" {
			c.t.Fatalf("%s: want complete after the failure, got %s", c.proto, end.kind)
		}
	default:
		c.t.Fatalf("%s: want a failure, got %s", c.proto, r.kind)
	}
	return r.resp.Errors
}
