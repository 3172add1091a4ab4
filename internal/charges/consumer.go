package charges

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/store"
)

// fromTheStart is the cursor of a consumer that never ran: every event the
// broker still retains, so that what happened before billing was switched
// on (or before the first start) is charged too.
const fromTheStart = "0-0"

// Consume applies the events of every topic billing reads until ctx ends,
// each topic from its saved cursor. It returns when ctx is done.
func (s *Service) Consume(ctx context.Context, b events.Broker, log *slog.Logger) {
	done := make(chan struct{}, len(Topics))
	for _, topic := range Topics {
		go func() {
			defer func() { done <- struct{}{} }()
			s.consume(ctx, b, topic, log)
		}()
	}
	for range Topics {
		<-done
	}
}

func (s *Service) consume(ctx context.Context, b events.Broker, topic string, log *slog.Logger) {
	failures := 0
	pause := func() bool {
		failures++
		d := time.Duration(min(failures, 30)) * time.Second
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for ctx.Err() == nil {
		after, err := s.Cursor(ctx, topic)
		if err != nil {
			log.Error("billing: cursor", "topic", topic, "err", err)
			if !pause() {
				return
			}
			continue
		}
		if after == "" {
			after = fromTheStart
		}
		ch, err := b.Subscribe(ctx, topic, after)
		if errors.Is(err, events.ErrCursorExpired) {
			// The broker no longer has events billing has not seen:
			// they cannot be charged from here. Say so loudly and go on
			// from what is retained; the bed-day sweep still catches up
			// the stays.
			log.Error("billing: events were missed: the broker no longer retains them", "topic", topic, "after", after)
			if _, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (struct{}, error) {
				return struct{}{}, saveCursor(ctx, tx, topic, "")
			}); err != nil {
				log.Error("billing: cursor", "topic", topic, "err", err)
			}
			ch, err = b.Subscribe(ctx, topic, "")
		}
		if err != nil {
			log.Error("billing: subscribe", "topic", topic, "err", err)
			if !pause() {
				return
			}
			continue
		}
		for ev := range ch {
			for {
				err := s.Apply(ctx, ev)
				if err == nil || ctx.Err() != nil {
					break
				}
				if permanent(err) {
					// An event whose rows cannot be read will never
					// apply; holding the topic behind it would stop
					// every charge after it. Say so, and pass it.
					log.Error("billing: event cannot be charged; skipped", "topic", topic, "event", ev.ID, "err", err)
					if err := s.skip(ctx, ev); err == nil {
						break
					}
				}
				// The event stays unapplied and the cursor before it:
				// retry rather than skip, since skipping loses a charge.
				log.Error("billing: charge capture failed; retrying", "topic", topic, "event", ev.ID, "err", err)
				if !pause() {
					return
				}
			}
			failures = 0
		}
		if ctx.Err() == nil && !pause() {
			return
		}
	}
}

// permanent reports an error retrying cannot cure: a row the event names
// does not exist, or a capture refused as bad input.
func permanent(err error) bool {
	var ae *apperr.Error
	return ent.IsNotFound(err) || (errors.As(err, &ae) && ae.Code == apperr.BadUserInput)
}

// skip moves topic's cursor past ev without charging it.
func (s *Service) skip(ctx context.Context, ev events.Event) error {
	_, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (struct{}, error) {
		return struct{}{}, saveCursor(ctx, tx, ev.Topic, ev.ID)
	})
	return err
}

// ChargeBedDays charges the bed-days due of every running stay and of the
// stays discharged in the last week (which the discharge event normally
// already caught up). It returns how many stays it looked at.
func (s *Service) ChargeBedDays(ctx context.Context) (int, error) {
	since := s.now().AddDate(0, 0, -7)
	ids, err := s.store.Client.Admission.Query().
		Where(admission.Or(admission.StatusEQ(admission.StatusADMITTED), admission.DischargedAtGTE(since))).IDs(ctx)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		// One transaction per stay: a long census never holds many
		// patients' locks at once.
		if _, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (struct{}, error) {
			a, err := tx.Admission.Get(ctx, id)
			if err != nil {
				return struct{}{}, err
			}
			return struct{}{}, s.chargeStay(ctx, tx, a)
		}); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// SweepBedDays runs ChargeBedDays every interval until ctx ends.
func (s *Service) SweepBedDays(ctx context.Context, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.ChargeBedDays(ctx); err != nil && ctx.Err() == nil {
			log.Error("billing: bed-day sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
