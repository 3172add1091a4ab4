package apitest

import (
	"context"
	"encoding/json"
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
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	k := desk.cat.potassium.ID
	own, other := d.patients[0], d.patients[1]
	ownValue := facts(t, s, own)
	_, ownK := desk.cat.potassiumFor(t, ownValue.sex, ownValue.birth)
	otherValue := facts(t, s, other)
	_, otherK := desk.cat.potassiumFor(t, otherValue.sex, otherValue.birth)

	creds := credentials(t, s, []string{"patient", "integrator"})
	nurse1 := subscribeLab(t, s, protoTransportWS, s.login("nurse", demoPassword).AccessToken, fanoutNationalIDSubscription, nil)
	nurse2 := subscribeLab(t, s, protoTransportWS, s.login("nurse", demoPassword).AccessToken, fanoutNationalIDSubscription, nil)
	integrator := subscribeLab(t, s, protoLegacyWS, creds["integrator"], fanoutNationalIDSubscription, nil)
	patient := subscribeLab(t, s, protoTransportWS, creds["patient"], labResultVerifiedPatientSubscription, nil)
	// Every probe is one the integrator skips too.
	integrator.probes = nurse1.probes
	// The patient hears only of their own results, so they prove it live.
	awaitLabLive(t, desk.probe(own, ownK.normal), nurse1, nurse2, patient)
	// The integrator's events carry an error (nationalID), which
	// awaitLabLive refuses; it is proven live the same way, by hand.
	for attempt := 0; ; attempt++ {
		must(t, attempt < 20, "the integrator received none of %d probe events", attempt)
		id := desk.probe(own, ownK.normal)()
		for _, f := range []*labFeed{nurse1, nurse2, integrator, patient} {
			f.probes[id] = true
		}
		if r, ok := integrator.c.resultWithin(integrator.id, 500*time.Millisecond); ok {
			must(t, r.kind == "next", "integrator: want an event, got %s: %v", r.kind, r.resp.Errors)
			break
		}
	}

	next := func(f *labFeed) (fanoutNationalIDEvent, []gqlError) {
		t.Helper()
		for {
			r := f.c.result(f.id)
			must(t, r.kind == "next", "%s: want an event, got %s: %v", f.c.proto, r.kind, r.resp.Errors)
			var ev fanoutNationalIDEvent
			if err := json.Unmarshal(r.resp.Data, &ev); err != nil {
				t.Fatalf("%s: %s: %v", f.c.proto, r.resp.Data, err)
			}
			if !f.probes[ev.LabResultVerified.Result.ID] {
				return ev, r.resp.Errors
			}
		}
	}

	x := desk.released(other, k, potassium(otherK.normal))
	y := desk.released(own, k, potassium(ownK.normal))
	for _, f := range []*labFeed{nurse1, nurse2} {
		for _, want := range []string{x.ID, y.ID} {
			ev, errs := next(f)
			p := ev.LabResultVerified.Patient
			must(t, len(errs) == 0 && ev.LabResultVerified.Result.ID == want && p != nil && p.NationalID != nil,
				"nurse: want %s with the patient's national ID, got %+v %v", want, ev, errs)
		}
	}
	for _, want := range []string{x.ID, y.ID} {
		ev, errs := next(integrator)
		p := ev.LabResultVerified.Patient
		must(t, ev.LabResultVerified.Result.ID == want && p != nil && p.ID != "" && p.NationalID == nil,
			"integrator: want %s without the national ID, got %+v", want, ev)
		must(t, len(errs) == 1 && errs[0].code() == "FORBIDDEN", "integrator: want FORBIDDEN on nationalID, got %v", errs)
	}
	ev := patient.next()
	must(t, ev.Result.ID == y.ID && ev.Patient.ID == own, "the patient's first event is %s of %s, want their own %s (not %s of %s)",
		ev.Result.ID, ev.Patient.ID, y.ID, x.ID, other)
	patient.quiet(300 * time.Millisecond)
}

// TestFanoutLoadsOncePerScope: the statements one event costs the
// subscription layer depend on how many row scopes follow it, not on how
// many subscribers. The subscribers here are resolver calls, below HTTP:
// over a socket each delivery also writes its own audit row, by design.
func TestFanoutLoadsOncePerScope(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	w := setUpLabWards(t, s, d, desk)
	k := desk.cat.potassium.ID
	ward := w.wards["MED-A"]
	verifier := s.token("labtech2")
	r := &graph.Resolver{Client: s.app.Store.Client, Auth: s.app.Auth, Broker: s.app.Broker}

	// subscribe opens n subscriptions for each role, each with a login of
	// its own, and returns their streams.
	subscribe := func(ctx context.Context, n int, roles ...string) []<-chan *model.CriticalLabResultEvent {
		t.Helper()
		var out []<-chan *model.CriticalLabResultEvent
		for _, role := range roles {
			for range n {
				v, err := s.app.Auth.Authenticate(ctx, s.login(role, demoPassword).AccessToken)
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
			entered := desk.entered(w.medA, k, potassium(w.medValues.criticalHigh))
			before := s.app.Store.Statements()
			if r := s.do(verifier, verifyMutation, map[string]any{"id": entered.ID}); len(r.Errors) > 0 {
				t.Fatal(describe(r))
			}
			for i, ch := range streams {
				select {
				case ev, ok := <-ch:
					must(t, ok && ev.Result.ID == entered.ID && ev.Patient.ID == w.medA, "stream %d: got %+v, want %s", i, ev, entered.ID)
				case <-time.After(wsTimeout):
					t.Fatalf("stream %d: no event for %s", i, entered.ID)
				}
			}
			if n := s.app.Store.Statements() - before; least < 0 || n < least {
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
	must(t, oneScopeMany == oneScopeFew, "one scope: %d statements for 12 subscribers, %d for 1", oneScopeMany, oneScopeFew)
	must(t, twoScopesMany == twoScopesFew, "two scopes: %d statements for 24 subscribers, %d for 2", twoScopesMany, twoScopesFew)
	must(t, twoScopesFew > oneScopeFew, "a second scope loads again: %d statements, %d for one", twoScopesFew, oneScopeFew)
}
