package graph

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/scheduling"
)

// appointmentChanged streams appointment events. Each event is loaded
// through row scope before it is sent, so a patient hears only about their
// own appointments, and only what the policy lets them read of it.
func (r *subscriptionResolver) appointmentChanged(ctx context.Context, departmentID, providerID, after *string) (<-chan *model.AppointmentEvent, error) {
	if err := optionalID("departmentId", departmentID, input.Department); err != nil {
		return nil, err
	}
	if err := optionalID("providerId", providerID, input.Staff); err != nil {
		return nil, err
	}
	f := scheduling.AppointmentFilter{DepartmentID: departmentID, ProviderID: providerID}
	return stream(ctx, r.Resolver, scheduling.AppointmentFeed(r.Client), after, f.Matches,
		func(ev events.Event, a *ent.Appointment) *model.AppointmentEvent {
			return &model.AppointmentEvent{EventID: ev.ID, Type: model.AppointmentEventType(ev.Type), OccurredAt: ev.Time, Appointment: a}
		})
}
