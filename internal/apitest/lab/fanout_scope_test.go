package lab

import (
	"context"
	"encoding/json"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/graph"
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/auth"
)

// fanoutNationalIDSubscription asks, beside the event, for a field the
// integrator's role may not read.
const fanoutNationalIDSubscription = `subscription {
  labResultVerified { eventId occurredAt result { id } patient { id nationalID } }
}`

type fanoutNationalIDEvent struct {
	LabResultVerified struct {
		Result  struct{ ID string }
		Patient *struct {
			ID         string
			NationalID *string
		}
	}
}

// TestFanoutScopesStaySeparate: subscribers of one topic with different
// row scopes share one stream, yet each sees only its own rows and fields.
// Two nurses (one scope), a patient (their own record only) and an
// integrator (every patient, but not Patient.nationalID) all follow every
// released result; one result is another patient's, one the patient's own.
func TestFanoutScopesStaySeparate(t *testing.T) {
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	k := desk.Cat.Potassium.ID
	own, other := d.Patients[0], d.Patients[1]
	ownValue := harness.Facts(t, s, own)
	_, ownK := desk.Cat.PotassiumFor(t, ownValue.Sex, ownValue.Birth)
	otherValue := harness.Facts(t, s, other)
	_, otherK := desk.Cat.PotassiumFor(t, otherValue.Sex, otherValue.Birth)

	creds := harness.Credentials(t, s, []string{"patient", "integrator"})
	nurse1 := subscribeLab(t, s, harness.ProtoTransportWS, s.Login("nurse", harness.DemoPassword).AccessToken, fanoutNationalIDSubscription, nil)
	nurse2 := subscribeLab(t, s, harness.ProtoTransportWS, s.Login("nurse", harness.DemoPassword).AccessToken, fanoutNationalIDSubscription, nil)
	integrator := subscribeLab(t, s, harness.ProtoLegacyWS, creds["integrator"], fanoutNationalIDSubscription, nil)
	patient := subscribeLab(t, s, harness.ProtoTransportWS, creds["patient"], labResultVerifiedPatientSubscription, nil)
	// Every probe is one the integrator skips too.
	integrator.Probes = nurse1.Probes
	// The patient hears only of their own results, so they prove it live.
	harness.AwaitLive(t, desk.Probe(own, ownK.Normal), nurse1, nurse2, patient)
	// The integrator's events carry an error (nationalID), which
	// awaitLabLive refuses; it is proven live the same way, by hand.
	for attempt := 0; ; attempt++ {
		harness.Must(t, attempt < 20, "the integrator received none of %d probe events", attempt)
		id := desk.Probe(own, ownK.Normal)()
		for _, f := range []*labFeed{nurse1, nurse2, integrator, patient} {
			f.Probes[id] = true
		}
		if r, ok := integrator.Conn.ResultWithin(integrator.OpID, 500*time.Millisecond); ok {
			harness.Must(t, r.Kind == "next", "integrator: want an event, got %s: %v", r.Kind, r.Resp.Errors)
			break
		}
	}

	next := func(f *labFeed) (fanoutNationalIDEvent, []harness.GQLError) {
		t.Helper()
		for {
			r := f.Conn.Result(f.OpID)
			harness.Must(t, r.Kind == "next", "%s: want an event, got %s: %v", f.Conn.Proto, r.Kind, r.Resp.Errors)
			var ev fanoutNationalIDEvent
			if err := json.Unmarshal(r.Resp.Data, &ev); err != nil {
				t.Fatalf("%s: %s: %v", f.Conn.Proto, r.Resp.Data, err)
			}
			if !f.Probes[ev.LabResultVerified.Result.ID] {
				return ev, r.Resp.Errors
			}
		}
	}

	x := desk.Released(other, k, harness.Potassium(otherK.Normal))
	y := desk.Released(own, k, harness.Potassium(ownK.Normal))
	for _, f := range []*labFeed{nurse1, nurse2} {
		for _, want := range []string{x.ID, y.ID} {
			ev, errs := next(f)
			p := ev.LabResultVerified.Patient
			harness.Must(t, len(errs) == 0 && ev.LabResultVerified.Result.ID == want && p != nil && p.NationalID != nil,
				"nurse: want %s with the patient's national ID, got %+v %v", want, ev, errs)
		}
	}
	for _, want := range []string{x.ID, y.ID} {
		ev, errs := next(integrator)
		p := ev.LabResultVerified.Patient
		harness.Must(t, ev.LabResultVerified.Result.ID == want && p != nil && p.ID != "" && p.NationalID == nil,
			"integrator: want %s without the national ID, got %+v", want, ev)
		harness.Must(t, len(errs) == 1 && errs[0].Code() == "FORBIDDEN", "integrator: want FORBIDDEN on nationalID, got %v", errs)
	}
	ev := patient.Next()
	harness.Must(t, ev.Result.ID == y.ID && ev.Patient.ID == own, "the patient's first event is %s of %s, want their own %s (not %s of %s)",
		ev.Result.ID, ev.Patient.ID, y.ID, x.ID, other)
	patient.Quiet(300 * time.Millisecond)
}

// TestFanoutLoadsOncePerScope: the statements one event costs the
// subscription layer depend on how many row scopes follow it, not on how
// many subscribers. The subscribers here are resolver calls, below HTTP:
// over a socket each delivery also writes its own audit row, by design.
func TestFanoutLoadsOncePerScope(t *testing.T) {
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	w := setUpLabWards(t, s, d, desk)
	k := desk.Cat.Potassium.ID
	ward := w.Wards["MED-A"]
	verifier := s.Token("labtech2")
	r := &graph.Resolver{Client: s.App.Store.Client, Auth: s.App.Auth, Broker: s.App.Broker}

	// subscribe opens n subscriptions for each role, each with a login of
	// its own, and returns their streams.
	subscribe := func(ctx context.Context, n int, roles ...string) []<-chan *model.CriticalLabResultEvent {
		t.Helper()
		var out []<-chan *model.CriticalLabResultEvent
		for _, role := range roles {
			for range n {
				v, err := s.App.Auth.Authenticate(ctx, s.Login(role, harness.DemoPassword).AccessToken)
				if err != nil {
					t.Fatal(err)
				}
				ch, err := r.Subscription().CriticalLabResult(auth.WithViewer(ctx, v), &ward, nil)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, ch)
			}
		}
		return out
	}
	// cost releases a critical value and returns the statements sent
	// until every stream had it. The relay polls the outbox through the
	// same counter, so it takes the least of a few releases.
	cost := func(streams []<-chan *model.CriticalLabResultEvent) int64 {
		t.Helper()
		var least int64 = -1
		for range 3 {
			entered := desk.Entered(w.MedA, k, harness.Potassium(w.MedValues.CriticalHigh))
			before := s.App.Store.Statements()
			if r := s.Do(verifier, harness.LabVerifyMutation, map[string]any{"id": entered.ID}); len(r.Errors) > 0 {
				t.Fatal(harness.Describe(r))
			}
			for i, ch := range streams {
				select {
				case ev, ok := <-ch:
					harness.Must(t, ok && ev.Result.ID == entered.ID && ev.Patient.ID == w.MedA, "stream %d: got %+v, want %s", i, ev, entered.ID)
				case <-time.After(harness.WSTimeout):
					t.Fatalf("stream %d: no event for %s", i, entered.ID)
				}
			}
			if n := s.App.Store.Statements() - before; least < 0 || n < least {
				least = n
			}
		}
		return least
	}
	measure := func(n int, roles ...string) int64 {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		return cost(subscribe(ctx, n, roles...))
	}

	oneScopeFew := measure(1, "nurse")
	oneScopeMany := measure(12, "nurse")
	twoScopesFew := measure(1, "nurse", "doctor")
	twoScopesMany := measure(12, "nurse", "doctor")
	t.Logf("statements per event: 1 scope: %d (1 subscriber), %d (12); 2 scopes: %d (2), %d (24)",
		oneScopeFew, oneScopeMany, twoScopesFew, twoScopesMany)
	// The audit sealer and the relay run on timers and count through the
	// same counter, so a window may hold a statement or two of theirs;
	// loading per subscriber would add several for each one.
	const background = 3
	harness.Must(t, oneScopeMany <= oneScopeFew+background, "one scope: %d statements for 12 subscribers, %d for 1", oneScopeMany, oneScopeFew)
	harness.Must(t, twoScopesMany <= twoScopesFew+background, "two scopes: %d statements for 24 subscribers, %d for 2", twoScopesMany, twoScopesFew)
	harness.Must(t, twoScopesFew > oneScopeFew, "a second scope loads again: %d statements, %d for one", twoScopesFew, oneScopeFew)
}

// TestFanoutSharedResponseAuditsEachSubscriber: dashboards with the same
// login, document and variables are sent the bytes of one execution per
// event, on either protocol, yet each receives the event and each
// delivery is audited as its own, under its own socket's request ID.
func TestFanoutSharedResponseAuditsEachSubscriber(t *testing.T) {
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	w := setUpLabWards(t, s, d, desk)
	k := desk.Cat.Potassium.ID
	token := s.Token("nurse")
	var feeds []*labFeed
	for _, proto := range []string{harness.ProtoTransportWS, harness.ProtoTransportWS, harness.ProtoLegacyWS} {
		feeds = append(feeds, subscribeLab(t, s, proto, token, criticalLabResultSubscription, map[string]any{"wardId": w.Wards["MED-A"]}))
	}
	harness.AwaitLive(t, desk.Probe(w.MedA, w.MedValues.CriticalHigh), feeds...)
	for _, f := range feeds {
		f.Quiet(300 * time.Millisecond)
	}

	filter := map[string]any{"operation": "criticalLabResult", "patientId": w.MedA}
	byRequest := func() map[string]int {
		n := map[string]int{}
		for _, r := range harness.AuditRows(t, s, filter) {
			harness.Must(t, r.Kind == "SUBSCRIPTION" && r.ActorName != nil && *r.ActorName == "nurse" && r.RequestID != nil,
				"audit row of a delivery: %+v", r)
			n[*r.RequestID]++
		}
		return n
	}
	before := byRequest()
	x := desk.Released(w.MedA, k, harness.Potassium(w.MedValues.CriticalHigh))
	for _, f := range feeds {
		ev := f.Next()
		harness.Must(t, ev.Result.ID == x.ID && ev.Patient.ID == w.MedA && ev.Result.Critical,
			"%s: got %+v, want the critical result %s", f.Conn.Proto, ev, x.ID)
	}
	after := byRequest()
	added := 0
	for id, n := range after {
		harness.Must(t, n-before[id] <= 1, "request %s: %d rows for one event", id, n-before[id])
		added += n - before[id]
	}
	harness.Must(t, added == len(feeds), "%d audit rows for one event delivered to %d dashboards", added, len(feeds))
}
