package apitest

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A WebSocket presents its credential once, in connection_init. These tests
// hold it to what the credential allows afterwards: every operation sent on
// the socket is checked again, and the socket closes with 4401 when the
// session ends or the token expires, on both protocols.

// closeUnauthorized is the close code of a socket whose credential ended.
const closeUnauthorized websocket.StatusCode = 4401

const patientPhoneQuery = `query($id: ID!) { patient(id: $id) { id phone } }`

// checkRarely is a session check interval no test waits for, so that what
// ends a socket is the operation or event the test sends, not the watch.
const checkRarely = time.Hour

func sessionCheck(d time.Duration) func(*configT) {
	return func(c *configT) { c.WSSessionCheck = d }
}

// awaitClose waits for the server to close c and returns the close code and
// the messages that came first, failing the test if c stays open.
func (c *wsClient) awaitClose() ([]wsMessage, websocket.StatusCode) {
	c.t.Helper()
	var before []wsMessage
	for {
		m, ok := c.recv(wsTimeout)
		if !ok {
			break
		}
		before = append(before, m)
	}
	err := c.closeErr()
	if err == nil {
		c.t.Fatalf("%s: the socket is still open %s later (messages: %+v)", c.proto, wsTimeout, before)
	}
	return before, websocket.CloseStatus(err)
}

// mustCloseUnauthorized waits for c to be closed with 4401, after nothing
// but, on the legacy protocol, which has no close codes of its own, a
// connection_error saying UNAUTHENTICATED.
func (c *wsClient) mustCloseUnauthorized(what string) {
	c.t.Helper()
	before, code := c.awaitClose()
	must(c.t, code == closeUnauthorized, "%s, %s: closed with %d (%v), want %d", what, c.proto, code, c.closeErr(), closeUnauthorized)
	if c.proto == protoTransportWS {
		must(c.t, len(before) == 0, "%s, %s: messages before the close: %+v", what, c.proto, before)
		return
	}
	must(c.t, len(before) == 1 && before[0].Type == "connection_error", "%s, %s: want connection_error before the close, got %+v", what, c.proto, before)
	var e gqlError
	must(c.t, json.Unmarshal(before[0].Payload, &e) == nil && e.code() == "UNAUTHENTICATED" && e.Message != "",
		"%s, %s: connection_error payload %s", what, c.proto, before[0].Payload)
}

// ended waits for the feed to end with an error, past any late probe
// event, and returns its errors.
func (f *appointmentFeed) ended() []gqlError {
	f.t.Helper()
	for {
		r := f.c.result(f.id)
		if r.kind == "next" && len(r.resp.Errors) == 0 && f.probes[f.decode(r).Appointment.ID] {
			continue
		}
		if r.kind == "next" {
			must(f.t, len(r.resp.Data) == 0 || string(r.resp.Data) == "null", "%s: data alongside the failure: %s", f.c.proto, r.resp.Data)
			end := f.c.result(f.id)
			must(f.t, end.kind == "complete", "%s: want complete after the failure, got %s", f.c.proto, end.kind)
		} else {
			must(f.t, r.kind == "error", "%s: want the stream to fail, got %s", f.c.proto, r.kind)
		}
		return r.resp.Errors
	}
}

// refused asserts that operation id was answered with UNAUTHENTICATED and
// nothing else.
func (c *wsClient) refused(what, id string) {
	c.t.Helper()
	errs := c.failure(id)
	must(c.t, len(errs) == 1 && errs[0].code() == "UNAUTHENTICATED", "%s, %s: want UNAUTHENTICATED, got %+v", what, c.proto, errs)
}

// TestWebsocketLogoutRefusesOperations: a query or a mutation sent on a
// socket opened before logout used to run with the ended session, reading
// a patient's phone and acknowledging a critical value as the nurse who
// had logged out. Each is now refused and the socket closed; the nurse's
// socket of another session goes on working.
func TestWebsocketLogoutRefusesOperations(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t, sessionCheck(checkRarely))
			d := s.demo()
			desk := newLabDesk(t, s)
			inpatient := d.patients[3]
			pf := facts(t, s, inpatient)
			_, kv := desk.cat.potassiumFor(t, pf.sex, pf.birth)
			crit := desk.released(inpatient, desk.cat.potassium.ID, potassium(kv.criticalHigh))
			must(t, crit.Critical && crit.AcknowledgedAt == nil, "critical: %+v", crit)

			ended := s.login("nurse", demoPassword)
			reader, writer := s.dialWS(t, proto), s.dialWS(t, proto)
			reader.init(ended.AccessToken)
			writer.init(ended.AccessToken)
			other := s.dialWS(t, proto)
			other.init(s.login("nurse", demoPassword).AccessToken)

			var phone struct{ Patient *struct{ ID string } }
			id := reader.start(patientPhoneQuery, map[string]any{"id": inpatient})
			reader.result(id).resp.decode(t, &phone)
			must(t, phone.Patient != nil && phone.Patient.ID == inpatient, "before logout: %+v", phone)
			must(t, reader.result(id).kind == "complete", "the query did not complete")

			var out struct{ Logout bool }
			s.do(ended.AccessToken, `mutation { logout }`, nil).decode(t, &out)
			must(t, out.Logout, "logout returned false")

			reader.refused("query after logout", reader.start(patientPhoneQuery, map[string]any{"id": inpatient}))
			reader.mustCloseUnauthorized("query after logout")
			writer.refused("mutation after logout", writer.start(acknowledgeMutation, map[string]any{"id": crit.ID}))
			writer.mustCloseUnauthorized("mutation after logout")

			now := desk.read("doctor", crit.ID)
			must(t, now.AcknowledgedAt == nil && now.AcknowledgedBy == nil, "a refused acknowledgement acknowledged: %+v", now)

			// The nurse's other session is not the one that ended.
			id = other.start(patientPhoneQuery, map[string]any{"id": inpatient})
			other.result(id).resp.decode(t, &phone)
			must(t, phone.Patient != nil && phone.Patient.ID == inpatient, "another session's socket: %+v", phone)
			must(t, other.result(id).kind == "complete", "the query did not complete")
			var acked struct{ AcknowledgeCriticalResult labResultOut }
			other.result(other.start(acknowledgeMutation, map[string]any{"id": crit.ID})).resp.decode(t, &acked)
			a := acked.AcknowledgeCriticalResult
			must(t, a.AcknowledgedBy != nil && a.AcknowledgedBy.ID == d.nurse, "acknowledged through the live socket: %+v", a)
		})
	}
}

// TestWebsocketPasswordChangeRefusesOperations: a password changed from
// another session ends this one; a query or a mutation sent on its socket
// the moment the change has answered is refused, whatever the session
// check's interval, and the socket closes.
func TestWebsocketPasswordChangeRefusesOperations(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t, sessionCheck(checkRarely))
			d := s.demo()
			stolen := s.login("nurse", demoPassword)
			reader, writer := s.dialWS(t, proto), s.dialWS(t, proto)
			reader.init(stolen.AccessToken)
			writer.init(stolen.AccessToken)
			var phone struct{ Patient *struct{ ID string } }
			id := reader.start(patientPhoneQuery, map[string]any{"id": d.patients[1]})
			reader.result(id).resp.decode(t, &phone)
			must(t, phone.Patient != nil, "before the change: %+v", phone)
			must(t, reader.result(id).kind == "complete", "the query did not complete")

			var out struct{ ChangePassword bool }
			s.do(s.login("nurse", demoPassword).AccessToken, changePassword,
				map[string]any{"c": demoPassword, "n": "a-long-new-password"}).decode(t, &out)
			must(t, out.ChangePassword, "changePassword returned false")

			reader.refused("query after the password changed", reader.start(patientPhoneQuery, map[string]any{"id": d.patients[1]}))
			reader.mustCloseUnauthorized("query after the password changed")
			writer.refused("mutation after the password changed", writer.start(`mutation { logout }`, nil))
			writer.mustCloseUnauthorized("mutation after the password changed")
		})
	}
}

// TestWebsocketLogoutEndsSubscriptions: after logout, an open subscription
// ends with UNAUTHENTICATED and where to resume, and its socket closes:
// at the next event, or, with no event, at the next session check. A
// changed password ends the user's other sessions' sockets the same way,
// and a revoked API key its sockets. A socket whose credential holds is
// left alone throughout.
func TestWebsocketLogoutEndsSubscriptions(t *testing.T) {
	const quick = 50 * time.Millisecond
	for _, proto := range wsProtocols {
		for _, tc := range []struct {
			name     string
			interval time.Duration
			event    bool // whether an event follows the end
			// open returns a credential that reads the doctor's
			// appointments, and what ends it.
			open func(t *testing.T, s *server) (credential string, end func())
		}{
			{"logout, then an event", checkRarely, true, openSession(nil)},
			{"logout, idle", quick, false, openSession(nil)},
			{"password changed elsewhere, idle", quick, false, openSession(func(t *testing.T, s *server) {
				elsewhere := s.login("doctor", demoPassword)
				var out struct{ ChangePassword bool }
				s.do(elsewhere.AccessToken, changePassword, map[string]any{"c": demoPassword, "n": "a-long-new-password"}).decode(t, &out)
				must(t, out.ChangePassword, "changePassword returned false")
			})},
			{"API key revoked, idle", quick, false, func(t *testing.T, s *server) (string, func()) {
				var out struct {
					CreateAPIKey struct {
						Secret string
						APIKey struct{ ID string }
					} `json:"createApiKey"`
				}
				s.as("admin", createKey, map[string]any{"in": map[string]any{"name": "ward display", "role": "reception"}}).decode(t, &out)
				return out.CreateAPIKey.Secret, func() {
					r := s.as("admin", `mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, map[string]any{"id": out.CreateAPIKey.APIKey.ID})
					must(t, len(r.Errors) == 0, "revoke: %s", describe(r))
				}
			}},
		} {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				s := newServer(t, sessionCheck(tc.interval))
				d := s.demo()
				b := &booker{t: t, s: s, user: "reception"}
				credential, end := tc.open(t, s)
				feed := subscribeAppointments(t, s, proto, credential, map[string]any{"providerId": d.doctor})
				live := subscribeAppointments(t, s, proto, s.token("reception"), map[string]any{"providerId": d.doctor})
				awaitLive(t, func() string { return b.book(d.patients[1], d.doctor) }, feed, live)

				end()
				if tc.event {
					live.probes[b.book(d.patients[2], d.doctor)] = true
				}

				errs := feed.ended()
				must(t, len(errs) == 1 && errs[0].code() == "UNAUTHENTICATED", "%s: %+v", tc.name, errs)
				_, hasCursor := errs[0].Extensions["resumeAfter"]
				must(t, hasCursor, "the error tells the client where to resume: %+v", errs[0])
				feed.c.mustCloseUnauthorized(tc.name)

				// The watch has run by now, and let the live session be.
				booked := b.book(d.patients[2], d.doctor)
				ev := live.next()
				must(t, ev.Appointment.ID == booked, "the live session's feed: want %s, got %+v", booked, ev)
				var me struct{ Me struct{ Username string } }
				id := live.c.start(`{ me { username } }`, nil)
				live.c.result(id).resp.decode(t, &me)
				must(t, me.Me.Username == "reception", "the live session's socket: %+v", me)
			})
		}
	}
}

// openSession signs the doctor in and ends the session by logout, or by
// end if given.
func openSession(end func(t *testing.T, s *server)) func(t *testing.T, s *server) (string, func()) {
	return func(t *testing.T, s *server) (string, func()) {
		session := s.login("doctor", demoPassword)
		return session.AccessToken, func() {
			if end != nil {
				end(t, s)
				return
			}
			var out struct{ Logout bool }
			s.do(session.AccessToken, `mutation { logout }`, nil).decode(t, &out)
			must(t, out.Logout, "logout returned false")
		}
	}
}

// TestWebsocketLogoutOnAnotherInstance: the session ends on one server,
// the socket is on another; the revocation they share closes it.
func TestWebsocketLogoutOnAnotherInstance(t *testing.T) {
	if os.Getenv("HMIS_TEST_REDIS_URL") == "" {
		t.Skip("needs HMIS_TEST_REDIS_URL: without Redis each server has its own token revocation list, by design")
	}
	bk := newBacking(t)
	a := newServerOn(t, bk)
	other := newServerOn(t, bk, sessionCheck(50*time.Millisecond))
	for _, proto := range wsProtocols {
		session := a.login("nurse", demoPassword)
		c := other.dialWS(t, proto)
		c.init(session.AccessToken)
		var me struct{ Me struct{ Username string } }
		id := c.start(`{ me { username } }`, nil)
		c.result(id).resp.decode(t, &me)
		must(t, me.Me.Username == "nurse" && c.result(id).kind == "complete", "before logout: %+v", me)
		var out struct{ Logout bool }
		a.do(session.AccessToken, `mutation { logout }`, nil).decode(t, &out)
		must(t, out.Logout, "logout returned false")
		c.mustCloseUnauthorized("logout on another instance")
	}
}

// TestWebsocketClosesAtTokenExpiry: a socket used to go on for as long as
// the client kept it open, on a token long expired. It now works until the
// token expires and then, without anything sent, ends its subscriptions
// with UNAUTHENTICATED and closes with 4401, so that the client refreshes
// its token and reconnects.
func TestWebsocketClosesAtTokenExpiry(t *testing.T) {
	const ttl = 6 * time.Second // JWT expiry has whole seconds: 5 to 6 s
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t, sessionCheck(checkRarely), func(c *configT) { c.AccessTokenTTL = ttl })
			d := s.demo()
			b := &booker{t: t, s: s, user: "reception"}
			session := s.login("doctor", demoPassword)
			expires, err := time.Parse(time.RFC3339, session.ExpiresAt)
			must(t, err == nil, "expiresAt %q: %v", session.ExpiresAt, err)
			c := s.dialWS(t, proto)
			c.init(session.AccessToken)
			var me struct{ Me struct{ Username string } }
			id := c.start(`{ me { username } }`, nil)
			c.result(id).resp.decode(t, &me)
			must(t, me.Me.Username == "doctor", "before expiry: %+v", me)
			must(t, c.result(id).kind == "complete", "the query did not complete")
			feed := &appointmentFeed{t: t, c: c, id: c.start(appointmentChangedSubscription, map[string]any{"providerId": d.doctor}), probes: map[string]bool{}}
			awaitLive(t, func() string { return b.book(d.patients[1], d.doctor) }, feed)
			must(t, time.Now().Before(expires), "the setup outlasted the token; raise ttl")

			errs := feed.ended()
			must(t, len(errs) == 1 && errs[0].code() == "UNAUTHENTICATED", "at expiry: %+v", errs)
			_, hasCursor := errs[0].Extensions["resumeAfter"]
			must(t, hasCursor, "the error tells the client where to resume: %+v", errs[0])
			feed.c.mustCloseUnauthorized("token expired")
			must(t, !time.Now().Before(expires.Truncate(time.Second)), "closed at %s, before the token's expiry at %s", time.Now(), expires)

			// Nothing sent now reaches the server.
			raw, _ := json.Marshal(map[string]any{"query": `{ me { username } }`})
			typ := map[string]string{protoTransportWS: "subscribe", protoLegacyWS: "start"}[proto]
			must(t, feed.c.write(context.Background(), wsMessage{Type: typ, ID: "9", Payload: raw}) != nil, "wrote to a closed socket")
		})
	}
}
