package lab

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/internal/apperr"
)

const wfRounds = 10

// wfAtOnce runs each call in its own goroutine, released together, and
// returns their errors.
func wfAtOnce(calls ...func() error) []error {
	errs := make([]error, len(calls))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = call()
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// wfRace runs the calls at once and returns the index of the one that
// succeeded. It fails unless exactly one did and every other got CONFLICT.
func wfRace(t *testing.T, what string, calls ...func() error) int {
	t.Helper()
	errs := wfAtOnce(calls...)
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("%s: calls %d and %d both succeeded", what, winner, i)
		case err == nil:
			winner = i
		case apperr.CodeOf(err) != apperr.Conflict:
			t.Fatalf("%s: a loser got %v, want CONFLICT", what, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no call succeeded: %v", what, errs)
	}
	return winner
}

func TestWorkflowConcurrentEntriesOneWins(t *testing.T) {
	f := newWorkflow(t)
	techs := []context.Context{f.as(f.tech), f.as(f.tech2)}
	values := []float64{4.1, 4.6}
	for range wfRounds {
		it, _ := f.received(t, f.woman, f.potassium)
		call := func(i int) func() error {
			return func() error {
				_, err := f.svc.Enter(techs[i], it.ID, EnterLabResultInput{NumericValue: new(values[i])})
				return err
			}
		}
		w := wfRace(t, "enter", call(0), call(1))
		rs := f.client.LabResult.Query().Where(labresult.ItemID(it.ID)).AllX(f.sys)
		if len(rs) != 1 || *rs[0].NumericValue != values[w] || rs[0].Status != labresult.StatusENTERED {
			t.Fatalf("after racing entries: %+v, want the winner's one result", rs)
		}
		if got := f.item(it.ID).Status; got != laborderitem.StatusRESULTED {
			t.Fatalf("item %s after racing entries", got)
		}
	}
}

func TestWorkflowConcurrentVerificationsOneWins(t *testing.T) {
	f := newWorkflow(t)
	verifiers := []string{f.tech2.ID, f.tech3.ID}
	ctxs := []context.Context{f.as(f.tech2), f.as(f.tech3)}
	for round := range wfRounds {
		// Every other round the value is critical, so that a lost race
		// must leave no critical event behind either.
		v := 4.0
		if round%2 == 1 {
			v = 7.0
		}
		it, r := f.resulted(t, f.man, v)
		call := func(i int) func() error {
			return func() error { _, err := f.svc.Verify(ctxs[i], r.ID); return err }
		}
		w := wfRace(t, "verify", call(0), call(1))
		got := f.result(r.ID)
		if got.Status != labresult.StatusVERIFIED || got.VerifiedByID == nil || *got.VerifiedByID != verifiers[w] {
			t.Fatalf("after racing verifications: %+v, want verified by the winner", got)
		}
		if n := f.client.LabResult.Query().Where(labresult.ItemID(it.ID)).CountX(f.sys); n != 1 {
			t.Fatalf("%d results for the item", n)
		}
		if item := f.item(it.ID); item.Status != laborderitem.StatusVERIFIED {
			t.Fatalf("item %s after racing verifications", item.Status)
		}
		want := map[string]int{ResultsTopic: 1}
		if got.Critical {
			want[CriticalTopic] = 1
		}
		for _, topic := range []string{ResultsTopic, CriticalTopic} {
			n := 0
			for _, e := range wfEvents(t, f, topic) {
				if e.ResultID == r.ID {
					n++
				}
			}
			if n != want[topic] {
				t.Fatalf("round %d: %d events on %s for the result, want %d", round, n, topic, want[topic])
			}
		}
	}
	if n := f.client.OutboxEvent.Query().Where(outboxevent.Topic(CriticalTopic)).CountX(f.sys); n != wfRounds/2 {
		t.Fatalf("%d critical events, want %d", n, wfRounds/2)
	}
	if f.notify.count() != wfRounds {
		t.Fatalf("%d pokes, want one per round: a lost race pokes nothing", f.notify.count())
	}
}

func TestWorkflowConcurrentCollectionsOneWins(t *testing.T) {
	f := newWorkflow(t)
	collectors := []string{f.nurse.ID, f.tech.ID}
	ctxs := []context.Context{f.as(f.nurse), f.as(f.tech)}
	for range wfRounds {
		it := f.order(t, f.woman, f.potassium)[0]
		call := func(i int) func() error {
			return func() error {
				_, err := f.svc.Collect(ctxs[i], CollectLabSpecimenInput{ItemIDs: []string{it.ID}})
				return err
			}
		}
		w := wfRace(t, "collect", call(0), call(1))
		sps := f.client.LabSpecimen.Query().Where(labspecimen.OrderID(it.OrderID)).AllX(f.sys)
		if len(sps) != 1 || sps[0].CollectedByID != collectors[w] {
			t.Fatalf("after racing collections: %+v, want the winner's one specimen", sps)
		}
		if got := f.item(it.ID); got.Status != laborderitem.StatusCOLLECTED || got.SpecimenID == nil || *got.SpecimenID != sps[0].ID {
			t.Fatalf("item after racing collections: %+v", got)
		}
	}
}

// TestWorkflowEnterRacingReject enters a critical value on an item while
// its specimen is rejected (say, found mislabeled). Whichever goes first,
// the rejection stands, for the item was open to it either way; the entry
// either lands first and is discarded with the specimen, or finds the item
// REJECTED and is refused. What must never happen is a value left ENTERED
// on a REJECTED item, where a second technician could still release it.
//
// Released together, the rejection nearly always wins on PostgreSQL (the
// entry locks the patient and loads more first), so the rejection is held
// back a little longer each round: the rounds then span a rejection well
// ahead, the two interleaved, and an entry well ahead.
func TestWorkflowEnterRacingReject(t *testing.T) {
	f := newWorkflow(t)
	outcomes := map[string]int{}
	var last *ent.LabOrderItem
	for round := range wfRounds {
		it, sp := f.received(t, f.man, f.potassium)
		last = it
		errs := wfAtOnce(
			func() error {
				_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(7.0)})
				return err
			},
			func() error {
				time.Sleep(time.Duration(round) * 300 * time.Microsecond)
				_, err := f.svc.Reject(f.as(f.tech2), sp.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonMISLABELED})
				return err
			},
		)
		if errs[1] != nil {
			t.Fatalf("round %d: the rejection failed: %v", round, errs[1])
		}
		rs := f.client.LabResult.Query().Where(labresult.ItemID(it.ID)).AllX(f.sys)
		switch {
		case errs[0] == nil:
			outcomes["entry first, then discarded"]++
			if len(rs) != 1 || rs[0].Status != labresult.StatusDISCARDED {
				t.Fatalf("round %d: the entry succeeded, leaving %+v; want its one result DISCARDED", round, rs)
			}
		case apperr.CodeOf(errs[0]) == apperr.Conflict:
			outcomes["rejection first, entry refused"]++
			if len(rs) != 0 {
				t.Fatalf("round %d: the entry was refused, yet left %+v", round, rs)
			}
		default:
			t.Fatalf("round %d: the entry got %v, want success or CONFLICT", round, errs[0])
		}
		if got := f.item(it.ID).Status; got != laborderitem.StatusREJECTED {
			t.Fatalf("round %d: the item is %s, want REJECTED", round, got)
		}
		if got := f.specimen(sp.ID).Status; got != labspecimen.StatusREJECTED {
			t.Fatalf("round %d: the specimen is %s, want REJECTED", round, got)
		}
		for _, r := range rs {
			f.unchanged(t, "verify a result discarded in a race", apperr.Conflict, "", func() error {
				_, err := f.svc.Verify(f.as(f.tech3), r.ID)
				return err
			})
		}
	}
	t.Logf("outcomes over %d rounds: %v", wfRounds, outcomes)
	if n := f.client.LabResult.Query().Where(labresult.StatusEQ(labresult.StatusENTERED),
		labresult.HasItemWith(laborderitem.StatusEQ(laborderitem.StatusREJECTED))).CountX(f.sys); n != 0 {
		t.Fatalf("%d results ENTERED on REJECTED items", n)
	}
	if n := f.client.OutboxEvent.Query().CountX(f.sys); n != 0 || f.notify.count() != 0 {
		t.Fatalf("%d events and %d pokes for values never released", n, f.notify.count())
	}
	// The item is collected again as after any rejection.
	sp := f.receive(t, f.collect(t, last))
	r := f.verify(t, f.enter(t, last, 4.0))
	if got := f.item(last.ID); got.Status != laborderitem.StatusVERIFIED || *got.SpecimenID != sp.ID || r.Status != labresult.StatusVERIFIED {
		t.Fatalf("after recollecting: %+v, result %+v", got, r)
	}
}

// TestWorkflowVerifyRacingReject releases a critical value while its
// specimen is rejected. One of them must win outright, the other getting
// CONFLICT: a released result stands (the specimen then has nothing left
// to reject), or the result is discarded with the specimen and is never
// released. A rejection that succeeds while the result goes out would tell
// the lab the value was withdrawn when the ward has it.
func TestWorkflowVerifyRacingReject(t *testing.T) {
	f := newWorkflow(t)
	outcomes := map[string]int{}
	for round := range wfRounds {
		it, r := f.resulted(t, f.man, 7.0)
		sp := *f.item(it.ID).SpecimenID
		errs := wfAtOnce(
			func() error { _, err := f.svc.Verify(f.as(f.tech2), r.ID); return err },
			func() error {
				_, err := f.svc.Reject(f.as(f.tech3), sp, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonMISLABELED})
				return err
			},
		)
		events := 0
		for _, topic := range []string{ResultsTopic, CriticalTopic} {
			for _, e := range wfEvents(t, f, topic) {
				if e.ResultID == r.ID {
					events++
				}
			}
		}
		item, res, spec := f.item(it.ID).Status, f.result(r.ID).Status, f.specimen(sp).Status
		state := fmt.Sprintf("verify: %v, reject: %v; item %s, result %s, specimen %s, %d events", errs[0], errs[1], item, res, spec, events)
		switch {
		case errs[0] == nil && apperr.CodeOf(errs[1]) == apperr.Conflict:
			outcomes["verified"]++
			if item != laborderitem.StatusVERIFIED || res != labresult.StatusVERIFIED || spec != labspecimen.StatusRECEIVED || events != 2 {
				t.Fatalf("round %d, verified first: %s", round, state)
			}
		case errs[1] == nil && apperr.CodeOf(errs[0]) == apperr.Conflict:
			outcomes["rejected"]++
			if item != laborderitem.StatusREJECTED || res != labresult.StatusDISCARDED || spec != labspecimen.StatusREJECTED || events != 0 {
				t.Fatalf("round %d, rejected first: %s", round, state)
			}
		default:
			t.Fatalf("round %d: want exactly one to succeed and the other CONFLICT; %s", round, state)
		}
	}
	t.Logf("outcomes over %d rounds: %v", wfRounds, outcomes)
}

// TestWorkflowConcurrentAmendmentsOneWaits has two technicians correct the
// same released result at once: one correction waits for verification,
// the other is refused, and the original stays released meanwhile.
func TestWorkflowConcurrentAmendmentsOneWaits(t *testing.T) {
	f := newWorkflow(t)
	amenders := []*ent.Staff{f.tech, f.tech3}
	values := []float64{4.6, 5.2}
	for round := range wfRounds {
		it, r := f.resulted(t, f.woman, 4.0)
		r = f.verify(t, r)
		call := func(i int) func() error {
			return func() error {
				_, err := f.svc.Amend(f.as(amenders[i]), r.ID, AmendLabResultInput{NumericValue: new(values[i]), Reason: "rerun"})
				return err
			}
		}
		w := wfRace(t, "amend", call(0), call(1))
		fixes := f.client.LabResult.Query().Where(labresult.ReplacesID(r.ID)).AllX(f.sys)
		if len(fixes) != 1 || fixes[0].Status != labresult.StatusENTERED || *fixes[0].NumericValue != values[w] ||
			*fixes[0].EnteredByID != amenders[w].ID {
			t.Fatalf("round %d: corrections %+v, want the winner's one, waiting", round, fixes)
		}
		if got := f.result(r.ID).Status; got != labresult.StatusVERIFIED {
			t.Fatalf("round %d: the original is %s while its correction waits", round, got)
		}
		if got := f.item(it.ID).Status; got != laborderitem.StatusVERIFIED {
			t.Fatalf("round %d: the item is %s while the correction waits", round, got)
		}
		f.verify(t, fixes[0])
		wfReleased(t, f, it.ID, "after the correction", r.ID, fixes[0].ID)
	}
	evs := wfEvents(t, f, ResultsTopic)
	if len(evs) != 2*wfRounds {
		t.Fatalf("%d events, want a verification and one amendment per round", len(evs))
	}
	for i := 1; i < len(evs); i += 2 {
		if evs[i].typ != string(ResultAmended) {
			t.Fatalf("event %d is %s, want AMENDED", i, evs[i].typ)
		}
	}
}
