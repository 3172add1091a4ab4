package harness

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/events"
)

// Feed is one subscription on a connection of its own, decoding each event
// into E. Every domain's live feed (appointments, beds, vitals, lab) is a
// Feed; the domain supplies only the document, the event type and Subject.
type Feed[E any] struct {
	T     testing.TB
	Conn  *WSClient
	OpID  string
	Field string // the subscription's root field, whose value is E
	// Subject names what an event is about (the appointment, bed, result),
	// so that probe events can be told from the ones a test asserts.
	Subject func(E) string
	// Probes are the subjects AwaitLive made events about: they are not
	// part of what a test asserts, whenever they arrive.
	Probes map[string]bool
}

// Subscribe opens a connection to s as credential ("" for anonymous),
// speaking proto, and subscribes with doc and args.
func Subscribe[E any](t testing.TB, s *Server, proto, credential, doc string, args map[string]any, subject func(E) string) *Feed[E] {
	t.Helper()
	c := s.DialWS(t, proto)
	c.Init(credential)
	return SubscribeOn(t, c, doc, args, subject)
}

// SubscribeOn subscribes on a connection already open and initialised,
// for tests that run other operations on the same socket.
func SubscribeOn[E any](t testing.TB, c *WSClient, doc string, args map[string]any, subject func(E) string) *Feed[E] {
	t.Helper()
	return &Feed[E]{T: t, Conn: c, OpID: c.Start(doc, args), Field: rootField(doc), Subject: subject, Probes: map[string]bool{}}
}

// rootField is the first field of doc's selection: a subscription has
// exactly one.
func rootField(doc string) string {
	i := strings.Index(doc, "{")
	if i < 0 {
		return ""
	}
	rest := strings.TrimSpace(doc[i+1:])
	if end := strings.IndexAny(rest, "( {\n"); end >= 0 {
		return rest[:end]
	}
	return rest
}

// Next returns the next event that is not a probe, failing the test on an
// error, the end of the stream, or a timeout.
func (f *Feed[E]) Next() E {
	f.T.Helper()
	for {
		if ev := f.Decode(f.Conn.Result(f.OpID)); !f.Probes[f.Subject(ev)] {
			return ev
		}
	}
}

// Decode checks that r is an event with a valid eventId, occurredAt and
// subject, and returns it.
func (f *Feed[E]) Decode(r OpResult) E {
	f.T.Helper()
	if r.Kind != "next" {
		f.T.Fatalf("%s: want an event, got %s: %v", f.Conn.Proto, r.Kind, r.Resp.Errors)
	}
	var out map[string]json.RawMessage
	r.Resp.Decode(f.T, &out)
	var head struct{ EventID, OccurredAt string }
	var ev E
	if err := json.Unmarshal(out[f.Field], &head); err != nil {
		f.T.Fatalf("%s: %s: %v", f.Conn.Proto, out, err)
	}
	if err := json.Unmarshal(out[f.Field], &ev); err != nil {
		f.T.Fatalf("%s: %s: %v", f.Conn.Proto, out, err)
	}
	Must(f.T, events.ValidID(head.EventID), "eventId %q is not an event ID", head.EventID)
	_, err := time.Parse(time.RFC3339, head.OccurredAt)
	Must(f.T, err == nil, "occurredAt %q: %v", head.OccurredAt, err)
	Must(f.T, f.Subject(ev) != "", "%s: event about nothing: %+v", f.Field, ev)
	return ev
}

// Quiet fails the test if anything but a probe arrives within d.
func (f *Feed[E]) Quiet(d time.Duration) {
	f.T.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		r, ok := f.Conn.ResultWithin(f.OpID, left)
		if !ok {
			Must(f.T, f.Conn.CloseErr() == nil, "%s: connection closed while waiting: %v", f.Conn.Proto, f.Conn.CloseErr())
			return
		}
		if ev := f.Decode(r); !f.Probes[f.Subject(ev)] {
			f.T.Fatalf("%s: %s: want nothing, got %+v", f.Conn.Proto, f.Field, ev)
		}
	}
}

// Ended waits for the feed to end with an error, past any late probe
// event, and returns its errors.
func (f *Feed[E]) Ended() []GQLError {
	f.T.Helper()
	for {
		r := f.Conn.Result(f.OpID)
		if r.Kind == "next" && len(r.Resp.Errors) == 0 && f.Probes[f.Subject(f.Decode(r))] {
			continue
		}
		if r.Kind == "next" {
			Must(f.T, len(r.Resp.Data) == 0 || string(r.Resp.Data) == "null", "%s: data alongside the failure: %s", f.Conn.Proto, r.Resp.Data)
			end := f.Conn.Result(f.OpID)
			Must(f.T, end.Kind == "complete", "%s: want complete after the failure, got %s", f.Conn.Proto, end.Kind)
		} else {
			Must(f.T, r.Kind == "error", "%s: want the stream to fail, got %s", f.Conn.Proto, r.Kind)
		}
		return r.Resp.Errors
	}
}

// AwaitLive returns once every feed is receiving. Neither protocol
// acknowledges that a subscription has started, and one without a cursor
// misses what is published before it has, so the only proof is an event:
// probe makes an event every feed can see and returns its subject, until
// each feed has received one.
func AwaitLive[E any](t testing.TB, probe func() string, feeds ...*Feed[E]) {
	t.Helper()
	waiting := append([]*Feed[E](nil), feeds...)
	for attempt := 0; len(waiting) > 0; attempt++ {
		if attempt == 20 {
			t.Fatalf("%d subscription(s) received none of %d probe events", len(waiting), attempt)
		}
		id := probe()
		for _, f := range feeds {
			f.Probes[id] = true
		}
		var still []*Feed[E]
		for _, f := range waiting {
			r, ok := f.Conn.ResultWithin(f.OpID, 500*time.Millisecond)
			if !ok {
				if err := f.Conn.CloseErr(); err != nil {
					t.Fatalf("%s: connection closed while waiting for a probe: %v", f.Conn.Proto, err)
				}
				still = append(still, f)
				continue
			}
			ev := f.Decode(r)
			Must(t, f.Probes[f.Subject(ev)], "%s: %s: event about %s arrived before any probe", f.Conn.Proto, f.Field, f.Subject(ev))
		}
		waiting = still
	}
}
