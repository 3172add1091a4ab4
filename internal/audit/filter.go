package audit

import (
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/input"
)

// SystemActor is the actor ID of what the server does on its own account.
const SystemActor = "system"

// AuditEventFilter is what an auditor narrows the trail by (the GraphQL
// input of auditEvents binds to it).
type AuditEventFilter struct {
	ActorID   *string             `json:"actorId,omitempty"`
	PatientID *string             `json:"patientId,omitempty"`
	Operation *string             `json:"operation,omitempty"`
	Outcome   *auditevent.Outcome `json:"outcome,omitempty"`
	From      *time.Time          `json:"from,omitempty"`
	To        *time.Time          `json:"to,omitempty"`
}

// Predicates checks f and turns it into the query's conditions; a nil
// filter keeps every row.
func (f *AuditEventFilter) Predicates() ([]predicate.AuditEvent, error) {
	if f == nil {
		return nil, nil
	}
	var where []predicate.AuditEvent
	if f.ActorID != nil {
		// Actors are users, API keys and the system itself; anything else
		// would match nothing and read as "this person did nothing".
		id := *f.ActorID
		if id != SystemActor && !globalid.Valid(id, ent.PrefixByType[ent.TypeUser]) && !globalid.Valid(id, ent.PrefixByType[ent.TypeAPIKey]) {
			return nil, apperr.BadInput("filter.actorId", "is not a user, an API key or %q", SystemActor)
		}
		where = append(where, auditevent.ActorID(id))
	}
	if f.PatientID != nil {
		if err := input.ID("filter.patientId", *f.PatientID, input.Patient); err != nil {
			return nil, err
		}
		// The column holds ",id1,id2,": the commas keep one ID from
		// matching inside another.
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
