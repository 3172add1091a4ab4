package graph

import (
	"context"

	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
)

// vitalsRecorded streams vitals events: of one patient, of the patients
// admitted to one ward when the signs were taken, or all the viewer may see.
func (r *subscriptionResolver) vitalsRecorded(ctx context.Context, patientID, wardID, after *string) (<-chan *model.VitalsEvent, error) {
	if err := optionalID("patientId", patientID, input.Patient); err != nil {
		return nil, err
	}
	if err := optionalID("wardId", wardID, input.Ward); err != nil {
		return nil, err
	}
	f := ehr.VitalsFilter{PatientID: patientID, WardID: wardID}
	return stream(ctx, r.Resolver, ehr.VitalsFeed(r.Client), after, f.Matches,
		func(ev events.Event, v *ehr.Vitals) *model.VitalsEvent {
			return &model.VitalsEvent{
				EventID: ev.ID, Type: ehr.VitalsEventType(ev.Type), OccurredAt: ev.Time, Patient: v.Patient, Observations: v.Observations,
			}
		})
}
