package events

import (
	"context"
	"errors"
	"testing"

	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// Pruning keeps exactly what a restarted in-process broker needs: a resume
// from inside the retained history still gets every event after its cursor,
// one from before it is still told it expired, and pending rows stay.
func TestPruneKeepsWhatRestoreNeeds(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	b := NewMemoryBroker(4)
	t.Cleanup(func() { b.Close() })
	recordN(t, st, "lab.results", 8)
	recordN(t, st, "bed.board", 2)
	relay := NewRelay(st, b, quietLog)
	if err := relay.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	all := st.Client.OutboxEvent.Query().
		Where(outboxevent.Topic("lab.results")).
		Order(outboxevent.ByPublishedAt(), outboxevent.ByID()).
		AllX(ctx)
	recordN(t, st, "lab.results", 2) // pending: never pruned

	deleted, err := relay.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if deleted != 3 {
		t.Fatalf("Prune deleted %d rows, want 3 (8 published, 4 retained + 1 kept)", deleted)
	}
	left := st.Client.OutboxEvent.Query().Where(outboxevent.Topic("lab.results")).CountX(ctx)
	if left != 5+2 {
		t.Fatalf("lab.results keeps %d rows, want 5 published and 2 pending", left)
	}
	if n := st.Client.OutboxEvent.Query().Where(outboxevent.Topic("bed.board")).CountX(ctx); n != 2 {
		t.Fatalf("bed.board keeps %d rows, want both", n)
	}
	if again, err := relay.Prune(ctx); err != nil || again != 0 {
		t.Fatalf("second Prune = %d, %v; want nothing more to delete", again, err)
	}

	after := NewMemoryBroker(4)
	t.Cleanup(func() { after.Close() })
	if err := Restore(ctx, st, after); err != nil {
		t.Fatal(err)
	}
	resumed := subscribe(t, after, "lab.results", all[3].BrokerID)
	got := take(t, resumed, 4)
	for i, ev := range got {
		if ev.ID != all[4+i].BrokerID {
			t.Fatalf("resumed event %d is %s, want %s", i, ev.ID, all[4+i].BrokerID)
		}
	}
	quiet(t, resumed)
	if _, err := after.Subscribe(ctx, "lab.results", all[2].BrokerID); !errors.Is(err, ErrCursorExpired) {
		t.Fatalf("Subscribe(after a pruned event) = %v, want ErrCursorExpired", err)
	}
}
