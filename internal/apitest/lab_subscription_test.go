package apitest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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
	return strings.Join(ids(ev.Notify, func(x struct{ ID string }) string { return x.ID }), ",")
}

// labFeed is one lab subscription on its own connection.
type labFeed struct {
	t     testing.TB
	c     *wsClient
	id    string
	field string // labResultVerified or criticalLabResult
	// probes are the results awaitLabLive released; their events are not
	// part of what a test asserts, whenever they arrive.
	probes map[string]bool
}

func subscribeLab(t testing.TB, s *server, proto, credential, doc string, args map[string]any) *labFeed {
	t.Helper()
	field := "labResultVerified"
	if strings.Contains(doc, "criticalLabResult(") {
		field = "criticalLabResult"
	}
	c := s.dialWS(t, proto)
	c.init(credential)
	return &labFeed{t: t, c: c, id: c.start(doc, args), field: field, probes: map[string]bool{}}
}

func (f *labFeed) next() labEvent {
	f.t.Helper()
	for {
		if ev := f.decode(f.c.result(f.id)); !f.probes[ev.Result.ID] {
			return ev
		}
	}
}

// quiet fails the test if anything but a probe arrives within d.
func (f *labFeed) quiet(d time.Duration) {
	f.t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		r, ok := f.c.resultWithin(f.id, left)
		if !ok {
			must(f.t, f.c.closeErr() == nil, "%s: connection closed while waiting: %v", f.c.proto, f.c.closeErr())
			return
		}
		if ev := f.decode(r); !f.probes[ev.Result.ID] {
			f.t.Fatalf("%s: %s: want nothing, got %+v", f.c.proto, f.field, ev)
		}
	}
}

func (f *labFeed) decode(r opResult) labEvent {
	f.t.Helper()
	if r.kind != "next" {
		f.t.Fatalf("%s: want an event, got %s: %v", f.c.proto, r.kind, r.resp.Errors)
	}
	var out map[string]json.RawMessage
	r.resp.decode(f.t, &out)
	var ev labEvent
	if err := json.Unmarshal(out[f.field], &ev); err != nil {
		f.t.Fatalf("%s: %s: %v", f.c.proto, out, err)
	}
	must(f.t, events.ValidID(ev.EventID), "eventId %q is not an event ID", ev.EventID)
	_, err := time.Parse(time.RFC3339, ev.OccurredAt)
	must(f.t, err == nil && ev.Result.ID != "", "event %+v: %v", ev, err)
	return ev
}

// awaitLabLive returns once every feed is receiving, proven as awaitLive
// proves it: probe releases results every feed can see until each has
// heard of one. probe returns the result's ID.
func awaitLabLive(t testing.TB, probe func() string, feeds ...*labFeed) {
	t.Helper()
	waiting := append([]*labFeed(nil), feeds...)
	for attempt := 0; len(waiting) > 0; attempt++ {
		if attempt == 20 {
			t.Fatalf("%d subscription(s) received none of %d probe events", len(waiting), attempt)
		}
		id := probe()
		for _, f := range feeds {
			f.probes[id] = true
		}
		var still []*labFeed
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
			must(t, f.probes[ev.Result.ID], "%s: %s: event for %s arrived before any probe", f.c.proto, f.field, ev.Result.ID)
		}
		waiting = still
	}
}

// probe releases a potassium of value for patientID.
func (l *labDesk) probe(patientID string, value float64) func() string {
	return func() string { return l.released(patientID, l.cat.potassium.ID, potassium(value)).ID }
}

// labWards sets up the bedside scene: patients[0] admitted to MED-A by the
// doctor, the demo's inpatient patients[3] in the CCU under the
// cardiologist, and potassium values for each.
type labWards struct {
	wards                map[string]string
	cardiologist         string
	medA, ccu            string
	medValues, ccuValues potassiumValues
}

func setUpLabWards(t testing.TB, s *server, d demoIDs, desk *labDesk) labWards {
	t.Helper()
	w := labWards{medA: d.patients[0], ccu: d.patients[3]}
	w.wards, w.cardiologist = wardsAndCardiologist(t, s)
	admit(t, s, "reception", w.medA, s.layout().beds["MED-A-01"], d.doctor)
	pf := facts(t, s, w.medA)
	_, w.medValues = desk.cat.potassiumFor(t, pf.sex, pf.birth)
	pf = facts(t, s, w.ccu)
	_, w.ccuValues = desk.cat.potassiumFor(t, pf.sex, pf.birth)
	return w
}

func TestLabResultVerifiedWardDashboard(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			d := s.demo()
			desk := newLabDesk(t, s)
			w := setUpLabWards(t, s, d, desk)
			k := desk.cat.potassium
			med := subscribeLab(t, s, proto, s.token("nurse"), labResultVerifiedSubscription, map[string]any{"wardId": w.wards["MED-A"]})
			ccu := subscribeLab(t, s, proto, s.token("nurse"), labResultVerifiedSubscription, map[string]any{"wardId": w.wards["CCU"]})
			awaitLabLive(t, desk.probe(w.medA, w.medValues.normal), med)
			awaitLabLive(t, desk.probe(w.ccu, w.ccuValues.normal), ccu)

			outpatient := desk.released(d.patients[1], k.ID, potassium(w.medValues.normal))
			x := desk.released(w.medA, k.ID, potassium(w.medValues.high))
			ev := med.next()
			must(t, ev.Result.ID == x.ID, "MED-A's first event is for %s, want %s (the outpatient's %s is no ward's)",
				ev.Result.ID, x.ID, outpatient.ID)
			must(t, ev.Type == "VERIFIED" && ev.Result.Status == "VERIFIED" && ev.Result.Flag != nil && *ev.Result.Flag == "HIGH" &&
				*ev.Result.NumericValue == *x.NumericValue && ev.Patient.ID == w.medA && ev.Test.ID == k.ID && ev.Test.Code == k.Code &&
				ev.Item != nil && ev.Item.ID == x.Item.ID && ev.Item.Status == "VERIFIED" && ev.Ward != nil && ev.Ward.ID == w.wards["MED-A"],
				"MED-A's event: %+v", ev)

			y := desk.released(w.ccu, k.ID, potassium(w.ccuValues.normal))
			ev = ccu.next()
			must(t, ev.Result.ID == y.ID && ev.Patient.ID == w.ccu && ev.Ward != nil && ev.Ward.ID == w.wards["CCU"],
				"the CCU's first event: %+v, want %s (MED-A's %s must not reach it)", ev, y.ID, x.ID)

			// A correction is news for the ward only once a second
			// technician has verified it: until then the released value
			// stands.
			fix := desk.amend("labtech", x.ID, map[string]any{
				"numericValue": w.medValues.normal, "reason": "Haemolysed sample resulted by mistake"})
			must(t, fix.Status == "ENTERED", "amendment: %+v", fix)
			med.quiet(time.Second)
			desk.verify("labtech2", fix.ID)
			ev = med.next()
			must(t, ev.Type == "AMENDED" && ev.Result.ID == fix.ID && ev.Result.Status == "VERIFIED" && ev.Patient.ID == w.medA &&
				*ev.Result.NumericValue == w.medValues.normal && ev.Result.Flag != nil && *ev.Result.Flag == "NORMAL" &&
				ev.Item != nil && ev.Item.ID == x.Item.ID && ev.Item.Status == "AMENDED" && ev.Ward != nil && ev.Ward.ID == w.wards["MED-A"],
				"amendment event: %+v", ev)
			med.quiet(500 * time.Millisecond)
			ccu.quiet(200 * time.Millisecond)
		})
	}
}

func TestCriticalLabResultDashboard(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			d := s.demo()
			desk := newLabDesk(t, s)
			w := setUpLabWards(t, s, d, desk)
			k := desk.cat.potassium
			med := subscribeLab(t, s, proto, s.token("nurse"), criticalLabResultSubscription, map[string]any{"wardId": w.wards["MED-A"]})
			ccu := subscribeLab(t, s, proto, s.token("doctor"), criticalLabResultSubscription, map[string]any{"wardId": w.wards["CCU"]})
			awaitLabLive(t, desk.probe(w.medA, w.medValues.criticalHigh), med)
			awaitLabLive(t, desk.probe(w.ccu, w.ccuValues.criticalHigh), ccu)

			normal := desk.released(w.ccu, k.ID, potassium(w.ccuValues.high))
			c := desk.released(w.ccu, k.ID, potassium(w.ccuValues.criticalHigh))
			ev := ccu.next()
			must(t, ev.Result.ID == c.ID, "the CCU's first critical is %s, want %s (the merely high %s is no panic value)",
				ev.Result.ID, c.ID, normal.ID)
			must(t, ev.Result.Critical && *ev.Result.Flag == "CRITICAL_HIGH" && ev.Result.Status == "VERIFIED" &&
				ev.Patient.ID == w.ccu && ev.Test.ID == k.ID && ev.Ward != nil && ev.Ward.ID == w.wards["CCU"],
				"the CCU's critical: %+v", ev)
			must(t, ev.notify() == d.doctor+","+w.cardiologist,
				"notify %s, want the ordering doctor %s then the attending %s", ev.notify(), d.doctor, w.cardiologist)

			m := desk.released(w.medA, k.ID, potassium(w.medValues.criticalLow))
			ev = med.next()
			must(t, ev.Type == "CRITICAL" && ev.Result.ID == m.ID && *ev.Result.Flag == "CRITICAL_LOW" && ev.Ward.ID == w.wards["MED-A"] && ev.notify() == d.doctor,
				"MED-A's first critical: %+v, want %s told to the doctor once (the CCU's %s must not reach it)", ev, m.ID, c.ID)
			ccu.quiet(500 * time.Millisecond)

			// The nurse takes it on: every dashboard showing the alert hears
			// so and can clear it, without polling.
			s.as("nurse", acknowledgeMutation, map[string]any{"id": m.ID}).decode(t, &struct{}{})
			ev = med.next()
			must(t, ev.Type == "ACKNOWLEDGED" && ev.Result.ID == m.ID && ev.Ward.ID == w.wards["MED-A"] && ev.notify() == d.doctor,
				"the acknowledgement on MED-A's dashboard: %+v", ev)
			ccu.quiet(500 * time.Millisecond)
		})
	}
}

// TestCriticalLabResultAmendment: a correction that is itself a panic
// value reaches the critical dashboard when it is released, not when it is
// entered, and the patient's own feed hears of it as AMENDED then too.
func TestCriticalLabResultAmendment(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			d := s.demo()
			desk := newLabDesk(t, s)
			w := setUpLabWards(t, s, d, desk) // medA is the patient user's own record
			k := desk.cat.potassium
			crit := subscribeLab(t, s, proto, s.token("nurse"), criticalLabResultSubscription, map[string]any{"wardId": w.wards["MED-A"]})
			own := subscribeLab(t, s, proto, s.token("patient"), labResultVerifiedPatientSubscription, nil)
			awaitLabLive(t, desk.probe(w.medA, w.medValues.criticalHigh), crit, own)

			orig := desk.released(w.medA, k.ID, potassium(w.medValues.high))
			ev := own.next()
			must(t, ev.Type == "VERIFIED" && ev.Result.ID == orig.ID, "the patient's first event: %+v", ev)
			crit.quiet(300 * time.Millisecond)

			fix := desk.amend("labtech2", orig.ID, map[string]any{"numericValue": w.medValues.criticalHigh, "reason": "Dilution not applied"})
			must(t, fix.Status == "ENTERED" && fix.Critical, "critical amendment: %+v", fix)
			crit.quiet(time.Second)
			own.quiet(200 * time.Millisecond)
			r := s.as("labtech2", verifyMutation, map[string]any{"id": fix.ID})
			must(t, len(r.Errors) == 1 && r.Errors[0].code() == "FORBIDDEN", "the amender verifies: %s", describe(r))
			crit.quiet(200 * time.Millisecond)

			desk.verify("labtech", fix.ID)
			ev = crit.next()
			must(t, ev.Result.ID == fix.ID && ev.Result.Critical && ev.Result.Status == "VERIFIED" && *ev.Result.Flag == "CRITICAL_HIGH" &&
				ev.Patient.ID == w.medA && ev.Ward != nil && ev.Ward.ID == w.wards["MED-A"] && ev.notify() == d.doctor,
				"the critical correction: %+v", ev)
			ev = own.next()
			must(t, ev.Type == "AMENDED" && ev.Result.ID == fix.ID && ev.Item != nil && ev.Item.Status == "AMENDED",
				"the patient hears of the correction: %+v", ev)
			crit.quiet(300 * time.Millisecond)
			own.quiet(200 * time.Millisecond)
		})
	}
}

// TestLabResultVerifiedPatientFeed: the patient's app hears of their own
// results only, and only once verified.
func TestLabResultVerifiedPatientFeed(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			d := s.demo()
			desk := newLabDesk(t, s)
			mine, theirs := d.patients[0], d.patients[1]
			own := subscribeLab(t, s, proto, s.token("patient"), labResultVerifiedPatientSubscription, nil)
			// A member of staff hears everything, which shows that what the
			// patient's feed lacks was published.
			staff := subscribeLab(t, s, proto, s.token("doctor"), labResultVerifiedSubscription, nil)
			awaitLabLive(t, desk.probe(mine, 4.0), own, staff)

			draft := desk.entered(mine, desk.cat.potassium.ID, potassium(4.4))
			own.quiet(time.Second)
			staff.quiet(200 * time.Millisecond)
			others := desk.released(theirs, desk.cat.potassium.ID, potassium(4.5))
			desk.verify("labtech2", draft.ID)

			ev := own.next()
			must(t, ev.Result.ID == draft.ID && ev.Patient.ID == mine && ev.Result.Status == "VERIFIED" && ev.Type == "VERIFIED",
				"the patient's first event: %+v, want their own %s (another patient's %s must not reach them)", ev, draft.ID, others.ID)
			for _, want := range []string{others.ID, draft.ID} {
				ev := staff.next()
				must(t, ev.Result.ID == want, "staff feed: want %s, got %+v", want, ev)
			}
			own.quiet(300 * time.Millisecond)
		})
	}
}

func TestLabSubscriptionAuthorization(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			creds := credentials(t, s, []string{"anonymous", "patient", "integrator", "reception", "billing", "pharmacist", "hr", "auditor"})
			refused := map[string][]string{
				labResultVerifiedSubscription: {"anonymous", "reception", "billing", "pharmacist", "hr", "auditor"},
				criticalLabResultSubscription: {"anonymous", "patient", "integrator", "reception", "billing", "pharmacist", "hr", "auditor"},
			}
			for doc, users := range refused {
				for _, user := range users {
					c := s.dialWS(t, proto)
					c.init(creds[user])
					errs := c.failure(c.start(doc, nil))
					must(t, len(errs) == 1 && errs[0].code() == deniedCode(user), "%s: %.40s…: want %s, got %v", user, doc, deniedCode(user), errs)
					c.close()
				}
			}

			c := s.dialWS(t, proto)
			c.init(s.token("nurse"))
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
				errs := c.failure(c.start(tc.doc, tc.args))
				must(t, len(errs) == 1 && errs[0].code() == "BAD_USER_INPUT" && errs[0].field() == tc.field,
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
	for _, kind := range []struct {
		name, doc string
		critical  bool
	}{
		{"labResultVerified", labResultVerifiedSubscription, false},
		{"criticalLabResult", criticalLabResultSubscription, true},
	} {
		for _, proto := range wsProtocols {
			t.Run(kind.name+"/"+proto, func(t *testing.T) {
				s := newServer(t)
				d := s.demo()
				desk := newLabDesk(t, s)
				pf := facts(t, s, d.patients[1])
				_, kv := desk.cat.potassiumFor(t, pf.sex, pf.birth)
				value := kv.normal
				if kind.critical {
					value = kv.criticalHigh
				}
				release := func(patientID string) string {
					return desk.released(patientID, desk.cat.potassium.ID, potassium(value)).ID
				}

				f := subscribeLab(t, s, proto, s.token("nurse"), kind.doc, nil)
				awaitLabLive(t, func() string { return release(d.patients[1]) }, f)
				first := release(d.patients[2])
				seen := f.next()
				must(t, seen.Result.ID == first, "want %s, got %+v", first, seen)
				f.c.close()

				missed := []string{release(d.patients[1]), release(d.patients[3])}
				g := subscribeLab(t, s, proto, s.token("nurse"), kind.doc, map[string]any{"after": seen.EventID})
				last := seen.EventID
				for i, want := range missed {
					ev := g.next()
					must(t, ev.Result.ID == want, "replayed event %d is for %s, want %s (after %s)", i, ev.Result.ID, want, seen.EventID)
					must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
					last = ev.EventID
				}
				// Exactly once: no third event and no second copy.
				g.quiet(time.Second)
				// With a cursor the subscription is gap-free from the start:
				// no probe needed.
				live := release(d.patients[2])
				ev := g.next()
				must(t, ev.Result.ID == live && events.CompareIDs(last, ev.EventID) < 0,
					"after the replay want the live %s, got %+v", live, ev)
			})
		}
	}
}
