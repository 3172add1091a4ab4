package platform

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"testing"

	"github.com/coder/websocket"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

func TestAppointmentChangedAuthorization(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			for _, user := range []string{"labtech", "pharmacist", "hr", "auditor", ""} {
				credential, who := "", "anonymous"
				if user != "" {
					credential, who = s.Token(user), user
				}
				c := s.DialWS(t, proto)
				c.Init(credential)
				errs := c.Failure(c.Start(harness.AppointmentChangedSubscription, nil))
				harness.Must(t, len(errs) == 1 && errs[0].Code() == harness.DeniedCode(who), "%s: want %s, got %v", who, harness.DeniedCode(who), errs)
				c.Close()
			}

			// The authToken form of connection_init is accepted and signs in.
			c := s.DialWS(t, proto)
			m, ok := c.InitWith(map[string]any{"authToken": s.Token("doctor")})
			harness.Must(t, ok && m.Type == "connection_ack", "authToken init: %+v (closed: %v)", m, c.CloseErr())
			r := c.Result(c.Start(`{ me { username } }`, nil))
			var me struct{ Me struct{ Username string } }
			r.Resp.Decode(t, &me)
			harness.Must(t, r.Kind == "next" && me.Me.Username == "doctor", "me over %s: %+v", proto, me)
			c.Close()

			for _, bad := range []struct {
				name    string
				payload map[string]any
			}{
				{"malformed bearer", map[string]any{"Authorization": "Bearer not-a-token"}},
				{"malformed authToken", map[string]any{"authToken": "not-a-token"}},
				{"tampered signature", map[string]any{"Authorization": "Bearer " + s.Token("doctor") + "x"}},
			} {
				c := s.DialWS(t, proto)
				m, ok := c.InitWith(bad.payload)
				if ok {
					harness.Must(t, m.Type != "connection_ack", "%s: acknowledged", bad.name)
					// Only the legacy protocol has connection_error;
					// graphql-transport-ws just closes.
					harness.Must(t, proto == harness.ProtoLegacyWS && m.Type == "connection_error", "%s: want connection_error, got %s %s", bad.name, m.Type, m.Payload)
				}
				// Whether or not the server has closed already, a
				// subscription sent now must never be answered.
				typ := map[string]string{harness.ProtoTransportWS: "subscribe", harness.ProtoLegacyWS: "start"}[proto]
				raw, _ := json.Marshal(map[string]any{"query": harness.AppointmentChangedSubscription})
				_ = c.Write(context.Background(), harness.WSMessage{Type: typ, ID: "1", Payload: raw})
				m, ok = c.Recv(harness.WSTimeout)
				harness.Must(t, !ok && websocket.CloseStatus(c.CloseErr()) != -1,
					"%s: want the server to close the connection, got %+v (closed: %v)", bad.name, m, c.CloseErr())
				c.Close()
			}
		})
	}
}

func TestTwoInstancesShareEvents(t *testing.T) {
	t.Parallel()
	if os.Getenv("HMIS_TEST_REDIS_URL") == "" {
		t.Skip("needs HMIS_TEST_REDIS_URL: without Redis each server has its own in-process broker and token revocation list, by design")
	}
	bk := harness.NewBacking(t)
	a := harness.NewServerOn(t, bk)
	c := harness.NewServerOn(t, bk) // seeds again, which must leave the demo data alone
	d := a.Demo()
	again := c.Demo()
	harness.Must(t, reflect.DeepEqual(again, d), "the second server sees other demo data: %+v vs %+v", again, d)

	// A token issued by one instance works on the other.
	session := a.Login("doctor", harness.DemoPassword)
	var me struct{ Me struct{ Username string } }
	c.Do(session.AccessToken, `{ me { username } }`, nil).Decode(t, &me)
	harness.Must(t, me.Me.Username == "doctor", "me on the other instance: %+v", me)

	b := &harness.Booker{T: t, S: a, User: "reception"}
	f := harness.SubscribeAppointments(t, c, harness.ProtoTransportWS, session.AccessToken, map[string]any{"providerId": d.Doctor})
	harness.AwaitLive(t, func() string { return b.Book(d.Patients[3], d.Doctor) }, f)
	booked := b.Book(d.Patients[1], d.Doctor)
	ev := f.Next()
	harness.Must(t, ev.Appointment.ID == booked && ev.Type == "BOOKED", "booked through one instance, heard on the other: want %s, got %+v", booked, ev)

	var out struct{ Logout bool }
	a.Do(session.AccessToken, `mutation { logout }`, nil).Decode(t, &out)
	harness.Must(t, out.Logout, "logout returned false")
	r := c.Do(session.AccessToken, `{ me { username } }`, nil)
	harness.Must(t, r.Status == http.StatusUnauthorized && r.HasCode("UNAUTHENTICATED"), "revoked token on the other instance: %s", harness.Describe(r))

	ws := c.DialWS(t, harness.ProtoTransportWS)
	m, ok := ws.InitWith(map[string]any{"Authorization": "Bearer " + session.AccessToken})
	harness.Must(t, (ok && m.Type == "connection_error") || (!ok && ws.CloseErr() != nil),
		"the other instance did not refuse a revoked token: %+v (closed: %v)", m, ws.CloseErr())
}

// TestLogoutEndsOpenSubscriptions: a token checked once at connection_init
// would keep streaming patient data after logout; the stream must end with
// UNAUTHENTICATED at the next event instead.
func TestLogoutEndsOpenSubscriptions(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	session := s.Login("doctor", harness.DemoPassword)
	feed := harness.SubscribeAppointments(t, s, "graphql-transport-ws", session.AccessToken, map[string]any{"providerId": d.Doctor})
	b := &harness.Booker{T: t, S: s, User: "reception"}
	harness.AwaitLive(t, func() string { return b.Book(d.Patients[1], d.Doctor) }, feed)

	r := s.Do(session.AccessToken, `mutation { logout }`, nil)
	harness.Must(t, len(r.Errors) == 0, "logout: %s", harness.Describe(r))
	b.Book(d.Patients[2], d.Doctor)

	errs := feed.Conn.Failure(feed.OpID)
	harness.Must(t, len(errs) == 1 && errs[0].Code() == "UNAUTHENTICATED", "after logout: %+v", errs)
	_, hasCursor := errs[0].Extensions["resumeAfter"]
	harness.Must(t, hasCursor, "the error tells the client where to resume: %+v", errs[0])
}
