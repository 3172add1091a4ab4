package graph

import (
	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
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
		if err := input.ID("filter.patientId", *f.PatientID, input.Patient); err != nil {
			return nil, err
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
