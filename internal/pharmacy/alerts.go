package pharmacy

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/stockbatch"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/store"
)

// expiringBefore is the first expiry date not yet worth announcing.
func (s *Service) expiringBefore() time.Time {
	return s.today().Add(s.ExpiryWarning + 24*time.Hour)
}

// alertExpiring announces b on ExpiringTopic if it has stock, expires
// within the warning and has not been announced, and marks it announced.
// The mark is conditional, so of two processes scanning at once only one
// announces a batch.
func (s *Service) alertExpiring(ctx context.Context, tx *ent.Tx, b *ent.StockBatch, d *ent.Drug) error {
	if b.QuantityOnHand == 0 || b.ExpiryAlertedAt != nil || !b.ExpiryDate.Before(s.expiringBefore()) {
		return nil
	}
	n, err := tx.StockBatch.Update().Where(stockbatch.ID(b.ID), stockbatch.ExpiryAlertedAtIsNil()).
		SetExpiryAlertedAt(s.now()).Save(ctx)
	if err != nil || n == 0 {
		return err
	}
	return events.Record(ctx, tx, ExpiringTopic, AlertExpiring, StockAlert{
		LocationID: b.LocationID, DrugID: b.DrugID, BatchID: b.ID, OnHand: b.QuantityOnHand, ReorderLevel: d.ReorderLevel,
	})
}

// expiryBatch bounds one scan transaction.
const expiryBatch = 200

// ScanExpiring announces every batch with stock that expires within the
// warning and was not announced yet, and returns how many it announced.
func (s *Service) ScanExpiring(ctx context.Context) (int, error) {
	ctx = auth.SystemContext(ctx)
	total := 0
	for {
		found, err := s.store.Client.StockBatch.Query().
			Where(stockbatch.ExpiryAlertedAtIsNil(), stockbatch.QuantityOnHandGT(0), stockbatch.ExpiryDateLT(s.expiringBefore())).
			Order(ent.Asc(stockbatch.FieldExpiryDate), ent.Asc(stockbatch.FieldID)).Limit(expiryBatch).All(ctx)
		if err != nil || len(found) == 0 {
			return total, err
		}
		n, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (int, error) {
			n := 0
			for _, b := range found {
				d, err := tx.Drug.Get(ctx, b.DrugID)
				if err != nil {
					return 0, err
				}
				if err := s.alertExpiring(ctx, tx, b, d); err != nil {
					return 0, err
				}
				n++
			}
			return n, nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if len(found) < expiryBatch {
			return total, nil
		}
	}
}

// SweepExpiring runs ScanExpiring every interval until ctx ends: expiry is
// a matter of the calendar, so a batch received long ago comes into the
// warning without anyone touching it. A failed scan is logged and retried
// at the next tick.
func (s *Service) SweepExpiring(ctx context.Context, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if n, err := s.ScanExpiring(ctx); err != nil && ctx.Err() == nil {
			log.Error("expiring stock scan failed", "err", err)
		} else if n > 0 {
			log.Info("batches announced as expiring", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// AlertFilter is what a stock subscription follows: one location, or all.
type AlertFilter struct{ LocationID *string }

// Matches reports whether an alert is one f follows.
func (f AlertFilter) Matches(a StockAlert) bool {
	return f.LocationID == nil || a.LocationID == *f.LocationID
}

// Alerted is what a stock alert is about.
type Alerted struct {
	Alert    StockAlert
	Location *ent.StockLocation
	Drug     *ent.Drug
	Batch    *ent.StockBatch // nil for a low-stock alert
}

// DecodeAlert reads the payload of a stock alert.
func DecodeAlert(ev events.Event) (StockAlert, error) {
	var a StockAlert
	err := json.Unmarshal(ev.Payload, &a)
	return a, err
}

// StockLowFeed is the feed of StockLowTopic.
func StockLowFeed(client *ent.Client) events.Feed[StockAlert, *Alerted] {
	return events.Feed[StockAlert, *Alerted]{Name: "pharmacy.stock_low", Topic: StockLowTopic, Decode: DecodeAlert,
		Load: func(ctx context.Context, _ events.Event, a StockAlert) (*Alerted, bool, error) {
			return loadAlerted(ctx, client, a)
		}}
}

// ExpiringFeed is the feed of ExpiringTopic.
func ExpiringFeed(client *ent.Client) events.Feed[StockAlert, *Alerted] {
	return events.Feed[StockAlert, *Alerted]{Name: "pharmacy.batch_expiring", Topic: ExpiringTopic, Decode: DecodeAlert,
		Load: func(ctx context.Context, _ events.Event, a StockAlert) (*Alerted, bool, error) {
			return loadAlerted(ctx, client, a)
		}}
}

func loadAlerted(ctx context.Context, client *ent.Client, a StockAlert) (*Alerted, bool, error) {
	out := &Alerted{Alert: a}
	var err error
	if out.Location, err = client.StockLocation.Get(ctx, a.LocationID); ent.IsNotFound(err) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	if out.Drug, err = client.Drug.Get(ctx, a.DrugID); ent.IsNotFound(err) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	if a.BatchID != "" {
		if out.Batch, err = client.StockBatch.Get(ctx, a.BatchID); ent.IsNotFound(err) {
			return nil, false, nil
		} else if err != nil {
			return nil, false, err
		}
	}
	return out, true, nil
}
