package apitest

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/hmis-dev/hmis/internal/events"
)

const appointmentChangedSubscription = `subscription($departmentId: ID, $providerId: ID, $after: String) {
  appointmentChanged(departmentId: $departmentId, providerId: $providerId, after: $after) {
    eventId type occurredAt
    appointment { id status patient { id } provider { id } }
  }
}`

type appointmentEvent struct {
	EventID     string
	Type        string
	OccurredAt  string
	Appointment struct {
		ID, Status string
		Patient    struct{ ID string }
		Provider   struct{ ID string }
	}
}

// appointmentFeed is one appointmentChanged subscription on its own
// connection.
type appointmentFeed struct {
	t  testing.TB
	c  *wsClient
	id string
	// probes are the appointments awaitLive booked; their events are
	// not part of what a test asserts, whenever they arrive.
	probes map[string]bool
}

// subscribeAppointments opens a connection to s as credential ("" for
// anonymous) and subscribes with args (departmentId, providerId, after).
func subscribeAppointments(t testing.TB, s *server, proto, credential string, args map[string]any) *appointmentFeed {
	t.Helper()
	c := s.dialWS(t, proto)
	c.init(credential)
	return &appointmentFeed{t: t, c: c, id: c.start(appointmentChangedSubscription, args), probes: map[string]bool{}}
}

// next returns the next event that is not a probe, failing the test on an
// error, the end of the stream, or a timeout.
func (f *appointmentFeed) next() appointmentEvent {
	f.t.Helper()
	for {
		if ev := f.decode(f.c.result(f.id)); !f.probes[ev.Appointment.ID] {
			return ev
		}
	}
}

func (f *appointmentFeed) decode(r opResult) appointmentEvent {
	f.t.Helper()
	if r.kind != "next" {
		f.t.Fatalf("%s: want an event, got %s: %v", f.c.proto, r.kind, r.resp.Errors)
	}
	var out struct{ AppointmentChanged appointmentEvent }
	r.resp.decode(f.t, &out)
	ev := out.AppointmentChanged
	must(f.t, events.ValidID(ev.EventID), "eventId %q is not an event ID", ev.EventID)
	_, err := time.Parse(time.RFC3339, ev.OccurredAt)
	must(f.t, err == nil, "occurredAt %q: %v", ev.OccurredAt, err)
	return ev
}

// awaitLive returns once every feed is receiving. Neither protocol
// acknowledges that a subscription has started, and one without a cursor
// misses what is published before it has, so the only proof is an event:
// awaitLive books probe appointments every feed can see until each has
// received one.
func awaitLive(t testing.TB, probe func() string, feeds ...*appointmentFeed) {
	t.Helper()
	waiting := append([]*appointmentFeed(nil), feeds...)
	for attempt := 0; len(waiting) > 0; attempt++ {
		if attempt == 20 {
			t.Fatalf("%d subscription(s) received none of %d probe events", len(waiting), attempt)
		}
		id := probe()
		for _, f := range feeds {
			f.probes[id] = true
		}
		var still []*appointmentFeed
		for _, f := range waiting {
			r, ok := f.c.resultWithin(f.id, 500*time.Millisecond)
			if !ok {
				if err := f.c.closeErr(); err != nil {
					t.Fatalf("%s: connection closed while waiting for a probe: %v", f.c.proto, err)
				}
				still = append(still, f)
				continue
			}
			ev := f.decode(r)
			must(t, f.probes[ev.Appointment.ID], "%s: event %s for appointment %s arrived before any probe", f.c.proto, ev.Type, ev.Appointment.ID)
		}
		waiting = still
	}
}

// booker books appointments in slots that never overlap each other or the
// demo's own appointments (which are in the next two days).
type booker struct {
	t    testing.TB
	s    *server
	user string
	n    int
}

func (b *booker) book(patientID, providerID string) string {
	b.t.Helper()
	start, end := slot(3+b.n/8, 8+b.n%8)
	b.n++
	var out struct{ BookAppointment struct{ ID string } }
	b.s.as(b.user, bookMutation, bookingInput(patientID, providerID, start, end)).decode(b.t, &out)
	return out.BookAppointment.ID
}

const cancelMutation = `mutation($id: ID!, $r: String!) { cancelAppointment(id: $id, input: {reason: $r}) { id status } }`

func TestAppointmentChangedLive(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			d := s.demo()
			b := &booker{t: t, s: s, user: "reception"}
			f := subscribeAppointments(t, s, proto, s.token("doctor"), map[string]any{"providerId": d.doctor})
			awaitLive(t, func() string { return b.book(d.patients[3], d.doctor) }, f)

			nurses := b.book(d.patients[2], d.nurse)
			doctors := b.book(d.patients[1], d.doctor)
			booked := f.next()
			must(t, booked.Appointment.ID == doctors,
				"first event is for appointment %s, want the doctor's %s (the nurse's %s must be filtered out)",
				booked.Appointment.ID, doctors, nurses)
			must(t, booked.Type == "BOOKED" && booked.Appointment.Status == "BOOKED" &&
				booked.Appointment.Provider.ID == d.doctor && booked.Appointment.Patient.ID == d.patients[1],
				"booked event: %+v", booked)

			var cancelled struct{ CancelAppointment struct{ ID, Status string } }
			s.as("reception", cancelMutation, map[string]any{"id": doctors, "r": "patient called"}).decode(t, &cancelled)
			ev := f.next()
			must(t, ev.Type == "CANCELLED" && ev.Appointment.ID == doctors && ev.Appointment.Status == "CANCELLED",
				"want the cancellation of %s, got %+v", doctors, ev)
			must(t, events.CompareIDs(booked.EventID, ev.EventID) < 0,
				"event IDs must increase: %s then %s", booked.EventID, ev.EventID)
		})
	}
}

func TestAppointmentChangedResume(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	b := &booker{t: t, s: s, user: "reception"}
	f := subscribeAppointments(t, s, protoTransportWS, s.token("doctor"), nil)
	awaitLive(t, func() string { return b.book(d.patients[3], d.doctor) }, f)

	first := b.book(d.patients[1], d.doctor)
	seen := f.next()
	must(t, seen.Appointment.ID == first, "want %s, got %+v", first, seen)
	f.c.close()

	missed := []string{b.book(d.patients[2], d.nurse), b.book(d.patients[1], d.doctor)}

	g := subscribeAppointments(t, s, protoTransportWS, s.token("doctor"), map[string]any{"after": seen.EventID})
	last := seen.EventID
	for i, want := range missed {
		ev := g.next()
		must(t, ev.Appointment.ID == want, "replayed event %d is for %s, want %s (after %s)", i, ev.Appointment.ID, want, seen.EventID)
		must(t, ev.Type == "BOOKED", "replayed event %d: %+v", i, ev)
		must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
		last = ev.EventID
	}
	// With a cursor the subscription is gap-free from the start, so this
	// needs no probe to be sure it is heard.
	live := b.book(d.patients[3], d.nurse)
	ev := g.next()
	must(t, ev.Appointment.ID == live, "after the replay want the live %s, got %+v", live, ev)
	must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
}

func TestAppointmentChangedRowScope(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	b := &booker{t: t, s: s, user: "reception"}
	own := subscribeAppointments(t, s, protoTransportWS, s.token("patient"), nil)
	// A member of staff hears both, which shows that the other patient's
	// event was published and the patient's feed left it out.
	staff := subscribeAppointments(t, s, protoTransportWS, s.token("reception"), nil)
	awaitLive(t, func() string { return b.book(d.patients[0], d.nurse) }, own, staff)

	others := b.book(d.patients[1], d.doctor)
	patients := b.book(d.patients[0], d.doctor)

	ev := own.next()
	must(t, ev.Appointment.ID == patients,
		"the patient's first event is for %s, want their own %s (another patient's %s must not reach them)",
		ev.Appointment.ID, patients, others)
	must(t, ev.Appointment.Patient.ID == d.patients[0], "own event: %+v", ev)

	for _, want := range []string{others, patients} {
		ev := staff.next()
		must(t, ev.Appointment.ID == want, "staff feed: want %s, got %+v", want, ev)
	}
}

func TestAppointmentChangedAuthorization(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			for _, user := range []string{"labtech", "pharmacist", "hr", "auditor", ""} {
				credential, who := "", "anonymous"
				if user != "" {
					credential, who = s.token(user), user
				}
				c := s.dialWS(t, proto)
				c.init(credential)
				errs := c.failure(c.start(appointmentChangedSubscription, nil))
				must(t, len(errs) == 1 && errs[0].code() == deniedCode(who), "%s: want %s, got %v", who, deniedCode(who), errs)
				c.close()
			}

			// The authToken form of connection_init is accepted and signs in.
			c := s.dialWS(t, proto)
			m, ok := c.initWith(map[string]any{"authToken": s.token("doctor")})
			must(t, ok && m.Type == "connection_ack", "authToken init: %+v (closed: %v)", m, c.closeErr())
			r := c.result(c.start(`{ me { username } }`, nil))
			var me struct{ Me struct{ Username string } }
			r.resp.decode(t, &me)
			must(t, r.kind == "next" && me.Me.Username == "doctor", "me over %s: %+v", proto, me)
			c.close()

			for _, bad := range []struct {
				name    string
				payload map[string]any
			}{
				{"malformed bearer", map[string]any{"Authorization": "Bearer not-a-token"}},
				{"malformed authToken", map[string]any{"authToken": "not-a-token"}},
				{"tampered signature", map[string]any{"Authorization": "Bearer " + s.token("doctor") + "x"}},
			} {
				c := s.dialWS(t, proto)
				m, ok := c.initWith(bad.payload)
				if ok {
					must(t, m.Type != "connection_ack", "%s: acknowledged", bad.name)
					// Only the legacy protocol has connection_error;
					// graphql-transport-ws just closes.
					must(t, proto == protoLegacyWS && m.Type == "connection_error", "%s: want connection_error, got %s %s", bad.name, m.Type, m.Payload)
				}
				// Whether or not the server has closed already, a
				// subscription sent now must never be answered.
				typ := map[string]string{protoTransportWS: "subscribe", protoLegacyWS: "start"}[proto]
				raw, _ := json.Marshal(map[string]any{"query": appointmentChangedSubscription})
				_ = c.write(context.Background(), wsMessage{Type: typ, ID: "1", Payload: raw})
				m, ok = c.recv(wsTimeout)
				must(t, !ok && websocket.CloseStatus(c.closeErr()) != -1,
					"%s: want the server to close the connection, got %+v (closed: %v)", bad.name, m, c.closeErr())
				c.close()
			}
		})
	}
}

func TestAppointmentChangedBadInput(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			c := s.dialWS(t, proto)
			c.init(s.token("doctor"))
			for _, tc := range []struct {
				args  map[string]any
				field string
			}{
				{map[string]any{"after": "not-an-id"}, "after"},
				{map[string]any{"departmentId": "garbage"}, "departmentId"},
				{map[string]any{"providerId": "garbage"}, "providerId"},
			} {
				errs := c.failure(c.start(appointmentChangedSubscription, tc.args))
				must(t, len(errs) == 1 && errs[0].code() == "BAD_USER_INPUT" && errs[0].field() == tc.field,
					"%v: want BAD_USER_INPUT on %s, got %v", tc.args, tc.field, errs)
			}
		})
	}
}

func TestTwoInstancesShareEvents(t *testing.T) {
	if os.Getenv("HMIS_TEST_REDIS_URL") == "" {
		t.Skip("needs HMIS_TEST_REDIS_URL: without Redis each server has its own in-process broker and token revocation list, by design")
	}
	bk := newBacking(t)
	a := newServerOn(t, bk)
	c := newServerOn(t, bk) // seeds again, which must leave the demo data alone
	d := a.demo()
	again := c.demo()
	must(t, reflect.DeepEqual(again, d), "the second server sees other demo data: %+v vs %+v", again, d)

	// A token issued by one instance works on the other.
	session := a.login("doctor", demoPassword)
	var me struct{ Me struct{ Username string } }
	c.do(session.AccessToken, `{ me { username } }`, nil).decode(t, &me)
	must(t, me.Me.Username == "doctor", "me on the other instance: %+v", me)

	b := &booker{t: t, s: a, user: "reception"}
	f := subscribeAppointments(t, c, protoTransportWS, session.AccessToken, map[string]any{"providerId": d.doctor})
	awaitLive(t, func() string { return b.book(d.patients[3], d.doctor) }, f)
	booked := b.book(d.patients[1], d.doctor)
	ev := f.next()
	must(t, ev.Appointment.ID == booked && ev.Type == "BOOKED", "booked through one instance, heard on the other: want %s, got %+v", booked, ev)

	var out struct{ Logout bool }
	a.do(session.AccessToken, `mutation { logout }`, nil).decode(t, &out)
	must(t, out.Logout, "logout returned false")
	r := c.do(session.AccessToken, `{ me { username } }`, nil)
	must(t, r.Status == http.StatusUnauthorized && r.hasCode("UNAUTHENTICATED"), "revoked token on the other instance: %s", describe(r))

	ws := c.dialWS(t, protoTransportWS)
	m, ok := ws.initWith(map[string]any{"Authorization": "Bearer " + session.AccessToken})
	must(t, (ok && m.Type == "connection_error") || (!ok && ws.closeErr() != nil),
		"the other instance did not refuse a revoked token: %+v (closed: %v)", m, ws.closeErr())
}

// TestLogoutEndsOpenSubscriptions: a token checked once at connection_init
// would keep streaming patient data after logout; the stream must end with
// UNAUTHENTICATED at the next event instead.
func TestLogoutEndsOpenSubscriptions(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	session := s.login("doctor", demoPassword)
	feed := subscribeAppointments(t, s, "graphql-transport-ws", session.AccessToken, map[string]any{"providerId": d.doctor})
	b := &booker{t: t, s: s, user: "reception"}
	awaitLive(t, func() string { return b.book(d.patients[1], d.doctor) }, feed)

	r := s.do(session.AccessToken, `mutation { logout }`, nil)
	must(t, len(r.Errors) == 0, "logout: %s", describe(r))
	b.book(d.patients[2], d.doctor)

	errs := feed.c.failure(feed.id)
	must(t, len(errs) == 1 && errs[0].code() == "UNAUTHENTICATED", "after logout: %+v", errs)
	_, hasCursor := errs[0].Extensions["resumeAfter"]
	must(t, hasCursor, "the error tells the client where to resume: %+v", errs[0])
}
