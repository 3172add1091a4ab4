package scheduling

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/events"
)

// AppointmentFilter is what an appointment subscription follows: one
// department's, one provider's, both, or every appointment.
type AppointmentFilter struct {
	DepartmentID, ProviderID *string
}

// Matches reports whether an event with payload c is one f follows.
func (f AppointmentFilter) Matches(c Change) bool {
	return (f.DepartmentID == nil || c.DepartmentID == *f.DepartmentID) && (f.ProviderID == nil || c.ProviderID == *f.ProviderID)
}

// AppointmentFeed is the feed of appointment changes (Topic). Each event is
// loaded through row scope, so a patient hears only about their own
// appointments.
func AppointmentFeed(client *ent.Client) events.Feed[Change, *ent.Appointment] {
	return events.Feed[Change, *ent.Appointment]{
		Name: "scheduling.appointments", Topic: Topic,
		Decode: func(ev events.Event) (Change, error) {
			var c Change
			err := json.Unmarshal(ev.Payload, &c)
			return c, err
		},
		Load: func(ctx context.Context, _ events.Event, c Change) (*ent.Appointment, bool, error) {
			a, err := client.Appointment.Get(ctx, c.AppointmentID)
			if ent.IsNotFound(err) {
				return nil, false, nil
			}
			return a, err == nil, err
		},
	}
}
