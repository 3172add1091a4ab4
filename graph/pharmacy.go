package graph

import (
	"context"

	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/pharmacy"
)

// stockAlerts streams one stock alert feed, of one location or all.
func (r *subscriptionResolver) stockAlerts(ctx context.Context, feed events.Feed[pharmacy.StockAlert, *pharmacy.Alerted],
	locationID, after *string) (<-chan *model.StockAlertEvent, error) {
	if err := optionalID("locationId", locationID, input.StockLocation); err != nil {
		return nil, err
	}
	f := pharmacy.AlertFilter{LocationID: locationID}
	return stream(ctx, r.Resolver, feed, after, f.Matches,
		func(ev events.Event, a *pharmacy.Alerted) *model.StockAlertEvent {
			return &model.StockAlertEvent{
				EventID: ev.ID, Type: model.StockAlertType(ev.Type), OccurredAt: ev.Time,
				Location: a.Location, Drug: a.Drug, Batch: a.Batch,
				OnHand: a.Alert.OnHand, ReorderLevel: a.Alert.ReorderLevel,
			}
		})
}
