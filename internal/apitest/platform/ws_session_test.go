package platform

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
)

// A WebSocket presents its credential once, in connection_init. These tests
// hold it to what the credential allows afterwards: every operation sent on
// the socket is checked again, and the socket closes with 4401 when the
// session ends or the token expires, on both protocols.

const patientPhoneQuery = `query($id: ID!) { patient(id: $id) { id phone } }`

// checkRarely is a session check interval no test waits for, so that what
// ends a socket is the operation or event the test sends, not the watch.
const checkRarely = time.Hour

func sessionCheck(d time.Duration) func(*config.Config) {
	return func(c *config.Config) { c.WSSessionCheck = d }
}

// TestWebsocketLogoutRefusesOperations: a query or a mutation sent on a
// socket opened before logout used to run with the ended session, reading
// a patient's phone and acknowledging a critical value as the nurse who
// had logged out. Each is now refused and the socket closed; the nurse's
// socket of another session goes on working.
func TestWebsocketLogoutRefusesOperations(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t, sessionCheck(checkRarely))
			d := s.Demo()
			desk := harness.NewLabDesk(t, s)
			inpatient := d.Patients[3]
			pf := harness.Facts(t, s, inpatient)
			_, kv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
			crit := desk.Released(inpatient, desk.Cat.Potassium.ID, harness.Potassium(kv.CriticalHigh))
			harness.Must(t, crit.Critical && crit.AcknowledgedAt == nil, "critical: %+v", crit)

			ended := s.Login("nurse", harness.DemoPassword)
			reader, writer := s.DialWS(t, proto), s.DialWS(t, proto)
			reader.Init(ended.AccessToken)
			writer.Init(ended.AccessToken)
			other := s.DialWS(t, proto)
			other.Init(s.Login("nurse", harness.DemoPassword).AccessToken)

			var phone struct{ Patient *struct{ ID string } }
			id := reader.Start(patientPhoneQuery, map[string]any{"id": inpatient})
			reader.Result(id).Resp.Decode(t, &phone)
			harness.Must(t, phone.Patient != nil && phone.Patient.ID == inpatient, "before logout: %+v", phone)
			harness.Must(t, reader.Result(id).Kind == "complete", "the query did not complete")

			var out struct{ Logout bool }
			s.Do(ended.AccessToken, `mutation { logout }`, nil).Decode(t, &out)
			harness.Must(t, out.Logout, "logout returned false")

			reader.Refused("query after logout", reader.Start(patientPhoneQuery, map[string]any{"id": inpatient}))
			reader.MustCloseUnauthorized("query after logout")
			writer.Refused("mutation after logout", writer.Start(harness.LabAcknowledgeMutation, map[string]any{"id": crit.ID}))
			writer.MustCloseUnauthorized("mutation after logout")

			now := desk.Read("doctor", crit.ID)
			harness.Must(t, now.AcknowledgedAt == nil && now.AcknowledgedBy == nil, "a refused acknowledgement acknowledged: %+v", now)

			// The nurse's other session is not the one that ended.
			id = other.Start(patientPhoneQuery, map[string]any{"id": inpatient})
			other.Result(id).Resp.Decode(t, &phone)
			harness.Must(t, phone.Patient != nil && phone.Patient.ID == inpatient, "another session's socket: %+v", phone)
			harness.Must(t, other.Result(id).Kind == "complete", "the query did not complete")
			var acked struct{ AcknowledgeCriticalResult harness.LabResult }
			other.Result(other.Start(harness.LabAcknowledgeMutation, map[string]any{"id": crit.ID})).Resp.Decode(t, &acked)
			a := acked.AcknowledgeCriticalResult
			harness.Must(t, a.AcknowledgedBy != nil && a.AcknowledgedBy.ID == d.Nurse, "acknowledged through the live socket: %+v", a)
		})
	}
}

// TestWebsocketPasswordChangeRefusesOperations: a password changed from
// another session ends this one; a query or a mutation sent on its socket
// the moment the change has answered is refused, whatever the session
// check's interval, and the socket closes.
func TestWebsocketPasswordChangeRefusesOperations(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t, sessionCheck(checkRarely))
			d := s.Demo()
			stolen := s.Login("nurse", harness.DemoPassword)
			reader, writer := s.DialWS(t, proto), s.DialWS(t, proto)
			reader.Init(stolen.AccessToken)
			writer.Init(stolen.AccessToken)
			var phone struct{ Patient *struct{ ID string } }
			id := reader.Start(patientPhoneQuery, map[string]any{"id": d.Patients[1]})
			reader.Result(id).Resp.Decode(t, &phone)
			harness.Must(t, phone.Patient != nil, "before the change: %+v", phone)
			harness.Must(t, reader.Result(id).Kind == "complete", "the query did not complete")

			var out struct{ ChangePassword bool }
			s.Do(s.Login("nurse", harness.DemoPassword).AccessToken, changePassword,
				map[string]any{"c": harness.DemoPassword, "n": "a-long-new-password"}).Decode(t, &out)
			harness.Must(t, out.ChangePassword, "changePassword returned false")

			reader.Refused("query after the password changed", reader.Start(patientPhoneQuery, map[string]any{"id": d.Patients[1]}))
			reader.MustCloseUnauthorized("query after the password changed")
			writer.Refused("mutation after the password changed", writer.Start(`mutation { logout }`, nil))
			writer.MustCloseUnauthorized("mutation after the password changed")
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
	t.Parallel()
	const quick = 50 * time.Millisecond
	for _, proto := range harness.WSProtocols {
		for _, tc := range []struct {
			name     string
			interval time.Duration
			event    bool // whether an event follows the end
			// open returns a credential that reads the doctor's
			// appointments, and what ends it.
			open func(t *testing.T, s *harness.Server) (credential string, end func())
		}{
			{"logout, then an event", checkRarely, true, openSession(nil)},
			{"logout, idle", quick, false, openSession(nil)},
			{"password changed elsewhere, idle", quick, false, openSession(func(t *testing.T, s *harness.Server) {
				elsewhere := s.Login("doctor", harness.DemoPassword)
				var out struct{ ChangePassword bool }
				s.Do(elsewhere.AccessToken, changePassword, map[string]any{"c": harness.DemoPassword, "n": "a-long-new-password"}).Decode(t, &out)
				harness.Must(t, out.ChangePassword, "changePassword returned false")
			})},
			{"API key revoked, idle", quick, false, func(t *testing.T, s *harness.Server) (string, func()) {
				var out struct {
					CreateAPIKey struct {
						Secret string
						APIKey struct{ ID string }
					} `json:"createApiKey"`
				}
				s.As("admin", harness.CreateAPIKeyMutation, map[string]any{"in": map[string]any{"name": "ward display", "role": "reception"}}).Decode(t, &out)
				return out.CreateAPIKey.Secret, func() {
					r := s.As("admin", `mutation($id: ID!) { revokeApiKey(id: $id) { revokedAt } }`, map[string]any{"id": out.CreateAPIKey.APIKey.ID})
					harness.Must(t, len(r.Errors) == 0, "revoke: %s", harness.Describe(r))
				}
			}},
		} {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				s := harness.NewServer(t, sessionCheck(tc.interval))
				d := s.Demo()
				b := &harness.Booker{T: t, S: s, User: "reception"}
				credential, end := tc.open(t, s)
				feed := harness.SubscribeAppointments(t, s, proto, credential, map[string]any{"providerId": d.Doctor})
				live := harness.SubscribeAppointments(t, s, proto, s.Token("reception"), map[string]any{"providerId": d.Doctor})
				harness.AwaitLive(t, func() string { return b.Book(d.Patients[1], d.Doctor) }, feed, live)

				end()
				if tc.event {
					live.Probes[b.Book(d.Patients[2], d.Doctor)] = true
				}

				errs := feed.Ended()
				harness.Must(t, len(errs) == 1 && errs[0].Code() == "UNAUTHENTICATED", "%s: %+v", tc.name, errs)
				_, hasCursor := errs[0].Extensions["resumeAfter"]
				harness.Must(t, hasCursor, "the error tells the client where to resume: %+v", errs[0])
				feed.Conn.MustCloseUnauthorized(tc.name)

				// The watch has run by now, and let the live session be.
				booked := b.Book(d.Patients[2], d.Doctor)
				ev := live.Next()
				harness.Must(t, ev.Appointment.ID == booked, "the live session's feed: want %s, got %+v", booked, ev)
				var me struct{ Me struct{ Username string } }
				id := live.Conn.Start(`{ me { username } }`, nil)
				live.Conn.Result(id).Resp.Decode(t, &me)
				harness.Must(t, me.Me.Username == "reception", "the live session's socket: %+v", me)
			})
		}
	}
}

// openSession signs the doctor in and ends the session by logout, or by
// end if given.
func openSession(end func(t *testing.T, s *harness.Server)) func(t *testing.T, s *harness.Server) (string, func()) {
	return func(t *testing.T, s *harness.Server) (string, func()) {
		session := s.Login("doctor", harness.DemoPassword)
		return session.AccessToken, func() {
			if end != nil {
				end(t, s)
				return
			}
			var out struct{ Logout bool }
			s.Do(session.AccessToken, `mutation { logout }`, nil).Decode(t, &out)
			harness.Must(t, out.Logout, "logout returned false")
		}
	}
}

// TestWebsocketLogoutOnAnotherInstance: the session ends on one server,
// the socket is on another; the revocation they share closes it.
func TestWebsocketLogoutOnAnotherInstance(t *testing.T) {
	t.Parallel()
	if os.Getenv("HMIS_TEST_REDIS_URL") == "" {
		t.Skip("needs HMIS_TEST_REDIS_URL: without Redis each server has its own token revocation list, by design")
	}
	bk := harness.NewBacking(t)
	a := harness.NewServerOn(t, bk)
	other := harness.NewServerOn(t, bk, sessionCheck(50*time.Millisecond))
	for _, proto := range harness.WSProtocols {
		session := a.Login("nurse", harness.DemoPassword)
		c := other.DialWS(t, proto)
		c.Init(session.AccessToken)
		var me struct{ Me struct{ Username string } }
		id := c.Start(`{ me { username } }`, nil)
		c.Result(id).Resp.Decode(t, &me)
		harness.Must(t, me.Me.Username == "nurse" && c.Result(id).Kind == "complete", "before logout: %+v", me)
		var out struct{ Logout bool }
		a.Do(session.AccessToken, `mutation { logout }`, nil).Decode(t, &out)
		harness.Must(t, out.Logout, "logout returned false")
		c.MustCloseUnauthorized("logout on another instance")
	}
}

// TestWebsocketClosesAtTokenExpiry: a socket used to go on for as long as
// the client kept it open, on a token long expired. It now works until the
// token expires and then, without anything sent, ends its subscriptions
// with UNAUTHENTICATED and closes with 4401, so that the client refreshes
// its token and reconnects.
//
// Not parallel: its set-up must finish inside the token's six seconds,
// which a machine busy with the other tests could miss.
func TestWebsocketClosesAtTokenExpiry(t *testing.T) {
	const ttl = 6 * time.Second // JWT expiry has whole seconds: 5 to 6 s
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			s := harness.NewServer(t, sessionCheck(checkRarely), func(c *config.Config) { c.AccessTokenTTL = ttl })
			d := s.Demo()
			b := &harness.Booker{T: t, S: s, User: "reception"}
			session := s.Login("doctor", harness.DemoPassword)
			expires, err := time.Parse(time.RFC3339, session.ExpiresAt)
			harness.Must(t, err == nil, "expiresAt %q: %v", session.ExpiresAt, err)
			c := s.DialWS(t, proto)
			c.Init(session.AccessToken)
			var me struct{ Me struct{ Username string } }
			id := c.Start(`{ me { username } }`, nil)
			c.Result(id).Resp.Decode(t, &me)
			harness.Must(t, me.Me.Username == "doctor", "before expiry: %+v", me)
			harness.Must(t, c.Result(id).Kind == "complete", "the query did not complete")
			feed := harness.SubscribeAppointmentsOn(t, c, map[string]any{"providerId": d.Doctor})
			harness.AwaitLive(t, func() string { return b.Book(d.Patients[1], d.Doctor) }, feed)
			harness.Must(t, time.Now().Before(expires), "the setup outlasted the token; raise ttl")

			errs := feed.Ended()
			harness.Must(t, len(errs) == 1 && errs[0].Code() == "UNAUTHENTICATED", "at expiry: %+v", errs)
			_, hasCursor := errs[0].Extensions["resumeAfter"]
			harness.Must(t, hasCursor, "the error tells the client where to resume: %+v", errs[0])
			feed.Conn.MustCloseUnauthorized("token expired")
			harness.Must(t, !time.Now().Before(expires.Truncate(time.Second)), "closed at %s, before the token's expiry at %s", time.Now(), expires)

			// Nothing sent now reaches the server.
			raw, _ := json.Marshal(map[string]any{"query": `{ me { username } }`})
			typ := map[string]string{harness.ProtoTransportWS: "subscribe", harness.ProtoLegacyWS: "start"}[proto]
			harness.Must(t, feed.Conn.Write(context.Background(), harness.WSMessage{Type: typ, ID: "9", Payload: raw}) != nil, "wrote to a closed socket")
		})
	}
}
