package graph

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/observation"
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
)

// vitalsRecorded streams vitals events: of one patient, of the patients
// admitted to one ward when the signs were taken, or all. The patient and
// observations are loaded through row scope, so a patient hears only of
// their own.
func (r *subscriptionResolver) vitalsRecorded(ctx context.Context, patientID, wardID, after *string) (<-chan *model.VitalsEvent, error) {
	if err := optionalID("patientId", patientID, "pat", "a patient"); err != nil {
		return nil, err
	}
	if err := optionalID("wardId", wardID, "wrd", "a ward"); err != nil {
		return nil, err
	}
	src, err := r.subscribe(ctx, ehr.Topic, after)
	if err != nil {
		return nil, err
	}
	return stream(ctx, r.Auth, src, func(ev events.Event) (*model.VitalsEvent, bool, error) {
		var payload ehr.VitalsPayload
		if err := json.Unmarshal(ev.Payload, &payload); err != nil {
			return nil, false, err
		}
		if (patientID != nil && payload.PatientID != *patientID) ||
			(wardID != nil && payload.WardID != *wardID) {
			return nil, false, nil
		}
		p, err := r.Client.Patient.Get(ctx, payload.PatientID)
		if ent.IsNotFound(err) {
			return nil, false, nil // not this viewer's to see
		} else if err != nil {
			return nil, false, err
		}
		found, err := r.Client.Observation.Query().Where(observation.IDIn(payload.ObservationIDs...)).All(ctx)
		if err != nil {
			return nil, false, err
		}
		byID := make(map[string]*ent.Observation, len(found))
		for _, o := range found {
			byID[o.ID] = o
		}
		// In the order they were recorded, as the payload lists them.
		obs := make([]*ent.Observation, 0, len(found))
		for _, id := range payload.ObservationIDs {
			if o, ok := byID[id]; ok {
				obs = append(obs, o)
			}
		}
		if len(obs) == 0 {
			return nil, false, nil
		}
		return &model.VitalsEvent{
			EventID: ev.ID, Type: ehr.VitalsEventType(ev.Type), OccurredAt: ev.Time, Patient: p, Observations: obs,
		}, true, nil
	}), nil
}
