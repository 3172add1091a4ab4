package graph

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/scheduling"
)

func authPayload(t *auth.Tokens) *model.AuthPayload {
	return &model.AuthPayload{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresAt: t.ExpiresAt, User: t.User}
}

func auditFilter(f *model.AuditEventFilter) ([]predicate.AuditEvent, error) {
	if f == nil {
		return nil, nil
	}
	var where []predicate.AuditEvent
	if f.ActorID != nil {
		where = append(where, auditevent.ActorID(*f.ActorID))
	}
	if f.PatientID != nil {
		if !globalid.Valid(*f.PatientID, "pat") {
			return nil, apperr.BadInput("filter.patientId", "is not a patient ID")
		}
		where = append(where, auditevent.PatientIdsContains(","+*f.PatientID+","))
	}
	if f.Operation != nil {
		where = append(where, auditevent.Operation(*f.Operation))
	}
	if f.Outcome != nil {
		where = append(where, auditevent.OutcomeEQ(*f.Outcome))
	}
	if f.From != nil {
		where = append(where, auditevent.OccurredAtGTE(*f.From))
	}
	if f.To != nil {
		if f.From != nil && !f.To.After(*f.From) {
			return nil, apperr.BadInput("filter.to", "must be after filter.from")
		}
		where = append(where, auditevent.OccurredAtLT(*f.To))
	}
	return where, nil
}

// appointmentChanged streams appointment events. Each event is loaded
// through row scope before it is sent, so a patient hears only about their
// own appointments, and only what the policy lets them read of it.
func (r *subscriptionResolver) appointmentChanged(ctx context.Context, departmentID, providerID, after *string) (<-chan *model.AppointmentEvent, error) {
	if err := optionalID("departmentId", departmentID, "dep", "a department"); err != nil {
		return nil, err
	}
	if err := optionalID("providerId", providerID, "stf", "a staff"); err != nil {
		return nil, err
	}
	src, err := r.subscribe(ctx, scheduling.Topic, after)
	if err != nil {
		return nil, err
	}
	return stream(ctx, r.Auth, src, func(ev events.Event) (*model.AppointmentEvent, bool, error) {
		var change scheduling.Change
		if err := json.Unmarshal(ev.Payload, &change); err != nil {
			return nil, false, err
		}
		if (departmentID != nil && change.DepartmentID != *departmentID) ||
			(providerID != nil && change.ProviderID != *providerID) {
			return nil, false, nil
		}
		a, err := r.Client.Appointment.Get(ctx, change.AppointmentID)
		if ent.IsNotFound(err) {
			return nil, false, nil // not this viewer's to see
		} else if err != nil {
			return nil, false, err
		}
		return &model.AppointmentEvent{EventID: ev.ID, Type: model.AppointmentEventType(ev.Type), OccurredAt: ev.Time, Appointment: a}, true, nil
	}), nil
}
