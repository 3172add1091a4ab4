package careaccess

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

const breakGlassAccessedSubscription = `subscription($after: String) {
  breakGlassAccessed(after: $after) { eventId occurredAt access { id reason patient { id } staff { id } } }
}`

type breakGlassEvent struct {
	EventID, OccurredAt string
	Access              struct {
		ID, Reason string
		Patient    struct{ ID string }
		Staff      struct{ ID string }
	}
}

// TestBreakGlassHeardLiveAndSealed: the privacy officer's subscription hears
// an access as it opens, and the audit rows of what was read under it name
// the access, inside what the chain seals.
func TestBreakGlassHeardLiveAndSealed(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			d := s.Demo()
			id, _ := unknownPatient(t, s, d)
			feed := harness.Subscribe(t, s, proto, s.Token("auditor"), breakGlassAccessedSubscription, nil,
				func(e breakGlassEvent) string { return e.Access.ID })
			// Probes: the nurse breaks the glass for a demo patient.
			harness.AwaitLive(t, func() string {
				var bg struct{ BreakGlass accessOut }
				s.As("nurse", breakGlassMutation, map[string]any{"in": map[string]any{
					"patientId": d.Patients[4], "reason": "Probe: covering the ward"}}).Decode(t, &bg)
				return bg.BreakGlass.ID
			}, feed)

			var bg struct{ BreakGlass accessOut }
			s.As("doctor", breakGlassMutation, map[string]any{"in": map[string]any{"patientId": id, "reason": "Collapsed in the car park"}}).Decode(t, &bg)
			ev := feed.Next()
			harness.Must(t, ev.Access.ID == bg.BreakGlass.ID && ev.Access.Patient.ID == id && ev.Access.Staff.ID == d.Doctor &&
				ev.Access.Reason == "Collapsed in the car park", "event: %+v", ev)

			// The delivery is in the patient's access log, as the auditor's.
			var log struct {
				MyAccessLog struct {
					Edges []struct {
						Node struct{ ActorName, Operation string }
					}
				}
			}
			s.As("glass", `{ myAccessLog(first: 100) { edges { node { actorName operation } } } }`, nil).Decode(t, &log)
			delivered := false
			for _, e := range log.MyAccessLog.Edges {
				delivered = delivered || (e.Node.ActorName == "Sam Novak" && e.Node.Operation == "breakGlassAccessed")
			}
			harness.Must(t, delivered, "the subscription's delivery is not in the patient's log: %+v", log)

			s.As("doctor", `query($id: ID!) { node(id: $id) { ... on Patient { givenName } } }`, map[string]any{"id": id}).Decode(t, &struct{}{})
			ctx := auth.SystemContext(context.Background())
			_, err := s.App.Trail.Seal(ctx)
			harness.Must(t, err == nil, "seal: %v", err)
			rows := s.App.Store.Client.AuditEvent.Query().Where(auditevent.PatientIdsContains(","+id+","), auditevent.Operation("node")).AllX(ctx)
			marked := 0
			for _, r := range rows {
				if slices.Contains(r.ObjectIds, bg.BreakGlass.ID) && slices.Contains(r.ObjectTypes, "BreakGlassAccess") {
					marked++
					harness.Must(t, r.Hash != nil, "the marked row is not sealed")
				}
			}
			harness.Must(t, marked == 1, "%d audit rows of the read name the access: %+v", marked, rows)
			rep, err := s.App.Trail.Verify(ctx, time.Minute)
			harness.Must(t, err == nil && rep.Checked > 0, "verify: %+v %v", rep, err)
		})
	}
}

func TestBreakGlassAccessedAuthorization(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			for _, user := range []string{"doctor", "nurse", "patient", "labtech", "pharmacist", "billing", "hr", "reception", ""} {
				credential, who := "", "anonymous"
				if user != "" {
					credential, who = s.Token(user), user
				}
				c := s.DialWS(t, proto)
				c.Init(credential)
				errs := c.Failure(c.Start(breakGlassAccessedSubscription, nil))
				harness.Must(t, len(errs) == 1 && errs[0].Code() == harness.DeniedCode(who), "%s: want %s, got %v", who, harness.DeniedCode(who), errs)
				c.Close()
			}
		})
	}
}
