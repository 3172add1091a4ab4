package scheduling

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/store"
)

// noShowBatch bounds one sweep transaction, so a backlog (a server that was
// down for days) is worked through without one huge transaction.
const noShowBatch = 200

// MarkNoShows turns every BOOKED appointment that ended more than
// NoShowGrace before now into NO_SHOW, recording an event for each, and
// returns how many it changed. Several processes may sweep at once: each
// appointment changes, and is announced, exactly once.
func (s *Service) MarkNoShows(ctx context.Context, now time.Time) (int, error) {
	ctx = auth.SystemContext(ctx)
	cutoff := now.Add(-NoShowGrace).UTC()
	total := 0
	for {
		ids, err := s.store.Client.Appointment.Query().
			Where(appointment.StatusEQ(appointment.StatusBOOKED), appointment.EndAtLT(cutoff)).
			Order(ent.Asc(appointment.FieldEndAt), ent.Asc(appointment.FieldID)).
			Limit(noShowBatch).
			IDs(ctx)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		changed, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (int, error) {
			// The batch's patients' records hold still, as for any write to
			// them. A status is all the sweep writes, so a record a merge
			// retired meanwhile (whose appointments it moved) is no reason
			// to stop.
			patientIDs, err := tx.Appointment.Query().Where(appointment.IDIn(ids...)).
				Unique(true).Select(appointment.FieldPatientID).Strings(ctx)
			if err != nil {
				return 0, err
			}
			if err := store.LockPatient(ctx, tx, patientIDs...); err != nil && !errors.As(err, new(*store.MergedError)) {
				return 0, err
			}
			changed := 0
			for _, id := range ids {
				a, err := tx.Appointment.UpdateOneID(id).
					Where(appointment.StatusEQ(appointment.StatusBOOKED), appointment.EndAtLT(cutoff)).
					SetStatus(appointment.StatusNO_SHOW).
					Save(ctx)
				if ent.IsNotFound(err) {
					continue // checked in, cancelled or swept elsewhere meanwhile
				} else if err != nil {
					return 0, err
				}
				if err := record(ctx, tx, NoShow, a); err != nil {
					return 0, err
				}
				changed++
			}
			return changed, nil
		})
		if err != nil {
			return total, err
		}
		total += changed
		if len(ids) < noShowBatch {
			return total, nil
		}
	}
}

// SweepNoShows runs MarkNoShows every interval until ctx ends. A failed
// sweep is logged and retried at the next tick.
func (s *Service) SweepNoShows(ctx context.Context, every time.Duration, log *slog.Logger) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if n, err := s.MarkNoShows(ctx, s.now()); err != nil && ctx.Err() == nil {
			log.Error("no-show sweep failed", "err", err)
		} else if n > 0 {
			log.Info("appointments marked no-show", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
