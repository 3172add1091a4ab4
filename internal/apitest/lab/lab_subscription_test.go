package lab

import (
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/events"
)

const (
	labResultVerifiedSubscription = `subscription($patientId: ID, $wardId: ID, $after: String) {
  labResultVerified(patientId: $patientId, wardId: $wardId, after: $after) {
    eventId type occurredAt patient { id } result { id status flag critical numericValue }
    item { id status } test { id code } ward { id }
  }
}`
	// The patient's app asks for no ward: the bed board is not theirs.
	labResultVerifiedPatientSubscription = `subscription($after: String) {
  labResultVerified(after: $after) {
    eventId type occurredAt patient { id } result { id status flag critical numericValue } item { id status } test { id code }
  }
}`
	criticalLabResultSubscription = `subscription($wardId: ID, $after: String) {
  criticalLabResult(wardId: $wardId, after: $after) {
    eventId type occurredAt patient { id } result { id status flag critical numericValue } test { id code } ward { id } notify { id }
  }
}`
)

type labEvent struct {
	EventID, Type, OccurredAt string
	Patient                   struct{ ID string }
	Result                    struct {
		ID, Status   string
		Flag         *string
		Critical     bool
		NumericValue *float64
	}
	Item   *struct{ ID, Status string }
	Test   struct{ ID, Code string }
	Ward   *struct{ ID string }
	Notify []struct{ ID string }
}

func (ev labEvent) notify() string {
	return strings.Join(harness.IDs(ev.Notify, func(x struct{ ID string }) string { return x.ID }), ",")
}

// labFeed is one lab subscription, to labResultVerified or
// criticalLabResult; its probes are result IDs.
type labFeed = harness.Feed[labEvent]

func subscribeLab(t testing.TB, s *harness.Server, proto, credential, doc string, args map[string]any) *labFeed {
	t.Helper()
	return harness.Subscribe(t, s, proto, credential, doc, args, func(ev labEvent) string { return ev.Result.ID })
}

func TestLabResultVerifiedWardDashboard(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			d := s.Demo()
			desk := harness.NewLabDesk(t, s)
			w := setUpLabWards(t, s, d, desk)
			k := desk.Cat.Potassium
			med := subscribeLab(t, s, proto, s.Token("nurse"), labResultVerifiedSubscription, map[string]any{"wardId": w.Wards["MED-A"]})
			ccu := subscribeLab(t, s, proto, s.Token("nurse"), labResultVerifiedSubscription, map[string]any{"wardId": w.Wards["CCU"]})
			harness.AwaitLive(t, desk.Probe(w.MedA, w.MedValues.Normal), med)
			harness.AwaitLive(t, desk.Probe(w.CCU, w.CCUValues.Normal), ccu)

			outpatient := desk.Released(d.Patients[1], k.ID, harness.Potassium(w.MedValues.Normal))
			x := desk.Released(w.MedA, k.ID, harness.Potassium(w.MedValues.High))
			ev := med.Next()
			harness.Must(t, ev.Result.ID == x.ID, "MED-A's first event is for %s, want %s (the outpatient's %s is no ward's)",
				ev.Result.ID, x.ID, outpatient.ID)
			harness.Must(t, ev.Type == "VERIFIED" && ev.Result.Status == "VERIFIED" && ev.Result.Flag != nil && *ev.Result.Flag == "HIGH" &&
				*ev.Result.NumericValue == *x.NumericValue && ev.Patient.ID == w.MedA && ev.Test.ID == k.ID && ev.Test.Code == k.Code &&
				ev.Item != nil && ev.Item.ID == x.Item.ID && ev.Item.Status == "VERIFIED" && ev.Ward != nil && ev.Ward.ID == w.Wards["MED-A"],
				"MED-A's event: %+v", ev)

			y := desk.Released(w.CCU, k.ID, harness.Potassium(w.CCUValues.Normal))
			ev = ccu.Next()
			harness.Must(t, ev.Result.ID == y.ID && ev.Patient.ID == w.CCU && ev.Ward != nil && ev.Ward.ID == w.Wards["CCU"],
				"the CCU's first event: %+v, want %s (MED-A's %s must not reach it)", ev, y.ID, x.ID)

			// A correction is news for the ward only once a second
			// technician has verified it: until then the released value
			// stands.
			fix := desk.Amend("labtech", x.ID, map[string]any{
				"numericValue": w.MedValues.Normal, "reason": "Haemolysed sample resulted by mistake"})
			harness.Must(t, fix.Status == "ENTERED", "amendment: %+v", fix)
			med.Quiet(time.Second)
			desk.Verify("labtech2", fix.ID)
			ev = med.Next()
			harness.Must(t, ev.Type == "AMENDED" && ev.Result.ID == fix.ID && ev.Result.Status == "VERIFIED" && ev.Patient.ID == w.MedA &&
				*ev.Result.NumericValue == w.MedValues.Normal && ev.Result.Flag != nil && *ev.Result.Flag == "NORMAL" &&
				ev.Item != nil && ev.Item.ID == x.Item.ID && ev.Item.Status == "AMENDED" && ev.Ward != nil && ev.Ward.ID == w.Wards["MED-A"],
				"amendment event: %+v", ev)
			med.Quiet(500 * time.Millisecond)
			ccu.Quiet(200 * time.Millisecond)
		})
	}
}

func TestCriticalLabResultDashboard(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			d := s.Demo()
			desk := harness.NewLabDesk(t, s)
			w := setUpLabWards(t, s, d, desk)
			k := desk.Cat.Potassium
			med := subscribeLab(t, s, proto, s.Token("nurse"), criticalLabResultSubscription, map[string]any{"wardId": w.Wards["MED-A"]})
			ccu := subscribeLab(t, s, proto, s.Token("doctor"), criticalLabResultSubscription, map[string]any{"wardId": w.Wards["CCU"]})
			harness.AwaitLive(t, desk.Probe(w.MedA, w.MedValues.CriticalHigh), med)
			harness.AwaitLive(t, desk.Probe(w.CCU, w.CCUValues.CriticalHigh), ccu)

			normal := desk.Released(w.CCU, k.ID, harness.Potassium(w.CCUValues.High))
			c := desk.Released(w.CCU, k.ID, harness.Potassium(w.CCUValues.CriticalHigh))
			ev := ccu.Next()
			harness.Must(t, ev.Result.ID == c.ID, "the CCU's first critical is %s, want %s (the merely high %s is no panic value)",
				ev.Result.ID, c.ID, normal.ID)
			harness.Must(t, ev.Result.Critical && *ev.Result.Flag == "CRITICAL_HIGH" && ev.Result.Status == "VERIFIED" &&
				ev.Patient.ID == w.CCU && ev.Test.ID == k.ID && ev.Ward != nil && ev.Ward.ID == w.Wards["CCU"],
				"the CCU's critical: %+v", ev)
			harness.Must(t, ev.notify() == d.Doctor+","+w.Cardiologist,
				"notify %s, want the ordering doctor %s then the attending %s", ev.notify(), d.Doctor, w.Cardiologist)

			m := desk.Released(w.MedA, k.ID, harness.Potassium(w.MedValues.CriticalLow))
			ev = med.Next()
			harness.Must(t, ev.Type == "CRITICAL" && ev.Result.ID == m.ID && *ev.Result.Flag == "CRITICAL_LOW" && ev.Ward.ID == w.Wards["MED-A"] && ev.notify() == d.Doctor,
				"MED-A's first critical: %+v, want %s told to the doctor once (the CCU's %s must not reach it)", ev, m.ID, c.ID)
			ccu.Quiet(500 * time.Millisecond)

			// The nurse takes it on: every dashboard showing the alert hears
			// so and can clear it, without polling.
			s.As("nurse", harness.LabAcknowledgeMutation, map[string]any{"id": m.ID}).Decode(t, &struct{}{})
			ev = med.Next()
			harness.Must(t, ev.Type == "ACKNOWLEDGED" && ev.Result.ID == m.ID && ev.Ward.ID == w.Wards["MED-A"] && ev.notify() == d.Doctor,
				"the acknowledgement on MED-A's dashboard: %+v", ev)
			ccu.Quiet(500 * time.Millisecond)
		})
	}
}

// TestCriticalLabResultAmendment: a correction that is itself a panic
// value reaches the critical dashboard when it is released, not when it is
// entered, and the patient's own feed hears of it as AMENDED then too.
func TestCriticalLabResultAmendment(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			d := s.Demo()
			desk := harness.NewLabDesk(t, s)
			w := setUpLabWards(t, s, d, desk) // medA is the patient user's own record
			k := desk.Cat.Potassium
			crit := subscribeLab(t, s, proto, s.Token("nurse"), criticalLabResultSubscription, map[string]any{"wardId": w.Wards["MED-A"]})
			own := subscribeLab(t, s, proto, s.Token("patient"), labResultVerifiedPatientSubscription, nil)
			harness.AwaitLive(t, desk.Probe(w.MedA, w.MedValues.CriticalHigh), crit, own)

			orig := desk.Released(w.MedA, k.ID, harness.Potassium(w.MedValues.High))
			ev := own.Next()
			harness.Must(t, ev.Type == "VERIFIED" && ev.Result.ID == orig.ID, "the patient's first event: %+v", ev)
			crit.Quiet(300 * time.Millisecond)

			fix := desk.Amend("labtech2", orig.ID, map[string]any{"numericValue": w.MedValues.CriticalHigh, "reason": "Dilution not applied"})
			harness.Must(t, fix.Status == "ENTERED" && fix.Critical, "critical amendment: %+v", fix)
			crit.Quiet(time.Second)
			own.Quiet(200 * time.Millisecond)
			r := s.As("labtech2", harness.LabVerifyMutation, map[string]any{"id": fix.ID})
			harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN", "the amender verifies: %s", harness.Describe(r))
			crit.Quiet(200 * time.Millisecond)

			desk.Verify("labtech", fix.ID)
			ev = crit.Next()
			harness.Must(t, ev.Result.ID == fix.ID && ev.Result.Critical && ev.Result.Status == "VERIFIED" && *ev.Result.Flag == "CRITICAL_HIGH" &&
				ev.Patient.ID == w.MedA && ev.Ward != nil && ev.Ward.ID == w.Wards["MED-A"] && ev.notify() == d.Doctor,
				"the critical correction: %+v", ev)
			ev = own.Next()
			harness.Must(t, ev.Type == "AMENDED" && ev.Result.ID == fix.ID && ev.Item != nil && ev.Item.Status == "AMENDED",
				"the patient hears of the correction: %+v", ev)
			crit.Quiet(300 * time.Millisecond)
			own.Quiet(200 * time.Millisecond)
		})
	}
}

// TestLabResultVerifiedPatientFeed: the patient's app hears of their own
// results only, and only once verified.
func TestLabResultVerifiedPatientFeed(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			d := s.Demo()
			desk := harness.NewLabDesk(t, s)
			mine, theirs := d.Patients[0], d.Patients[1]
			own := subscribeLab(t, s, proto, s.Token("patient"), labResultVerifiedPatientSubscription, nil)
			// A member of staff hears everything, which shows that what the
			// patient's feed lacks was published.
			staff := subscribeLab(t, s, proto, s.Token("doctor"), labResultVerifiedSubscription, nil)
			harness.AwaitLive(t, desk.Probe(mine, 4.0), own, staff)

			draft := desk.Entered(mine, desk.Cat.Potassium.ID, harness.Potassium(4.4))
			own.Quiet(time.Second)
			staff.Quiet(200 * time.Millisecond)
			others := desk.Released(theirs, desk.Cat.Potassium.ID, harness.Potassium(4.5))
			desk.Verify("labtech2", draft.ID)

			ev := own.Next()
			harness.Must(t, ev.Result.ID == draft.ID && ev.Patient.ID == mine && ev.Result.Status == "VERIFIED" && ev.Type == "VERIFIED",
				"the patient's first event: %+v, want their own %s (another patient's %s must not reach them)", ev, draft.ID, others.ID)
			for _, want := range []string{others.ID, draft.ID} {
				ev := staff.Next()
				harness.Must(t, ev.Result.ID == want, "staff feed: want %s, got %+v", want, ev)
			}
			own.Quiet(300 * time.Millisecond)
		})
	}
}

func TestLabSubscriptionAuthorization(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			creds := harness.Credentials(t, s, []string{"anonymous", "patient", "integrator", "reception", "billing", "pharmacist", "hr", "auditor"})
			refused := map[string][]string{
				labResultVerifiedSubscription: {"anonymous", "reception", "billing", "pharmacist", "hr", "auditor"},
				criticalLabResultSubscription: {"anonymous", "patient", "integrator", "reception", "billing", "pharmacist", "hr", "auditor"},
			}
			for doc, users := range refused {
				for _, user := range users {
					c := s.DialWS(t, proto)
					c.Init(creds[user])
					errs := c.Failure(c.Start(doc, nil))
					harness.Must(t, len(errs) == 1 && errs[0].Code() == harness.DeniedCode(user), "%s: %.40s…: want %s, got %v", user, doc, harness.DeniedCode(user), errs)
					c.Close()
				}
			}

			c := s.DialWS(t, proto)
			c.Init(s.Token("nurse"))
			for _, tc := range []struct {
				doc   string
				args  map[string]any
				field string
			}{
				{labResultVerifiedSubscription, map[string]any{"after": "not-an-id"}, "after"},
				{labResultVerifiedSubscription, map[string]any{"patientId": "garbage"}, "patientId"},
				{labResultVerifiedSubscription, map[string]any{"wardId": "garbage"}, "wardId"},
				{criticalLabResultSubscription, map[string]any{"wardId": "garbage"}, "wardId"},
				{criticalLabResultSubscription, map[string]any{"after": "1-2-3"}, "after"},
			} {
				errs := c.Failure(c.Start(tc.doc, tc.args))
				harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT" && errs[0].Field() == tc.field,
					"%v: want BAD_USER_INPUT on %s, got %v", tc.args, tc.field, errs)
			}
		})
	}
}

// TestLabEventsResume: a dashboard that lost its connection resubscribes
// with the last eventId it saw and receives what it missed, in order,
// exactly once, then live events. It runs on the suite's backing: the
// in-process broker by default, Redis when HMIS_TEST_REDIS_URL is set.
func TestLabEventsResume(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name, doc string
		critical  bool
	}{
		{"labResultVerified", labResultVerifiedSubscription, false},
		{"criticalLabResult", criticalLabResultSubscription, true},
	} {
		for _, proto := range harness.WSProtocols {
			t.Run(kind.name+"/"+proto, func(t *testing.T) {
				t.Parallel()
				s := harness.NewServer(t)
				d := s.Demo()
				desk := harness.NewLabDesk(t, s)
				pf := harness.Facts(t, s, d.Patients[1])
				_, kv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
				value := kv.Normal
				if kind.critical {
					value = kv.CriticalHigh
				}
				release := func(patientID string) string {
					return desk.Released(patientID, desk.Cat.Potassium.ID, harness.Potassium(value)).ID
				}

				f := subscribeLab(t, s, proto, s.Token("nurse"), kind.doc, nil)
				harness.AwaitLive(t, func() string { return release(d.Patients[1]) }, f)
				first := release(d.Patients[2])
				seen := f.Next()
				harness.Must(t, seen.Result.ID == first, "want %s, got %+v", first, seen)
				f.Conn.Close()

				missed := []string{release(d.Patients[1]), release(d.Patients[3])}
				g := subscribeLab(t, s, proto, s.Token("nurse"), kind.doc, map[string]any{"after": seen.EventID})
				last := seen.EventID
				for i, want := range missed {
					ev := g.Next()
					harness.Must(t, ev.Result.ID == want, "replayed event %d is for %s, want %s (after %s)", i, ev.Result.ID, want, seen.EventID)
					harness.Must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
					last = ev.EventID
				}
				// Exactly once: no third event and no second copy.
				g.Quiet(time.Second)
				// With a cursor the subscription is gap-free from the start:
				// no probe needed.
				live := release(d.Patients[2])
				ev := g.Next()
				harness.Must(t, ev.Result.ID == live && events.CompareIDs(last, ev.EventID) < 0,
					"after the replay want the live %s, got %+v", live, ev)
			})
		}
	}
}
