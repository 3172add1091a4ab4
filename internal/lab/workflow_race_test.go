package lab

import (
	"context"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/internal/apperr"
)

const wfRounds = 10

// wfRace runs each call in its own goroutine, released together, and
// returns the index of the one that succeeded. It fails unless exactly one
// did and every other got CONFLICT.
func wfRace(t *testing.T, what string, calls ...func() error) int {
	t.Helper()
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
