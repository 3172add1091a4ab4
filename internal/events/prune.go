package events

import (
	"context"
	"fmt"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent/outboxevent"
)

const (
	pruneInterval = 10 * time.Minute
	pruneBatch    = 1000
)

// retainer is a broker that keeps a fixed number of events per topic.
type retainer interface{ retention() int }

func (b *MemoryBroker) retention() int { return b.retain }
func (b *RedisBroker) retention() int  { return int(b.retain) }

// keepPerTopic is how many published rows of a topic the outbox keeps: as
// many as the broker retains, and one more, which Restore needs to tell a
// cursor from before the retained history (ErrCursorExpired) from one that
// missed nothing.
func (r *Relay) keepPerTopic() int {
	retain := DefaultRetain
	if rb, ok := r.b.(retainer); ok {
		retain = rb.retention()
	}
	return retain + 1
}

// Prune deletes published outbox rows no broker can replay any longer: all
// but the newest keepPerTopic of each topic. Without it the outbox grows
// with every event ever published, and so does a restart's Restore.
// Pending rows are never touched. It returns how many rows it deleted.
func (r *Relay) Prune(ctx context.Context) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	keep := r.keepPerTopic()
	topics, err := r.st.Client.OutboxEvent.Query().
		Where(outboxevent.PublishedAtNotNil()).
		GroupBy(outboxevent.FieldTopic).
		Strings(ctx)
	if err != nil {
		return 0, fmt.Errorf("events: prune: %w", err)
	}
	deleted := 0
	for _, topic := range topics {
		for {
			// The same order Restore reads in: what it would load is kept.
			ids, err := r.st.Client.OutboxEvent.Query().
				Where(outboxevent.Topic(topic), outboxevent.PublishedAtNotNil()).
				Order(outboxevent.ByPublishedAt(entsql.OrderDesc()), outboxevent.ByID(entsql.OrderDesc())).
				Offset(keep).
				Limit(pruneBatch).
				IDs(ctx)
			if err != nil {
				return deleted, fmt.Errorf("events: prune %s: %w", topic, err)
			}
			if len(ids) == 0 {
				break
			}
			n, err := r.st.Client.OutboxEvent.Delete().
				Where(outboxevent.IDIn(ids...), outboxevent.PublishedAtNotNil()).
				Exec(ctx)
			if err != nil {
				return deleted, fmt.Errorf("events: prune %s: %w", topic, err)
			}
			deleted += n
			if len(ids) < pruneBatch {
				break
			}
		}
	}
	return deleted, nil
}
