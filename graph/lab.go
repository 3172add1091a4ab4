package graph

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/lab"
)

// labEvents checks a lab subscription's arguments and subscribes to topic.
func (r *subscriptionResolver) labEvents(ctx context.Context, topic string, patientID, wardID, after *string) (<-chan events.Event, error) {
	if err := optionalID("patientId", patientID, "pat", "a patient"); err != nil {
		return nil, err
	}
	if err := optionalID("wardId", wardID, "wrd", "a ward"); err != nil {
		return nil, err
	}
	return r.subscribe(ctx, topic, after)
}

// releasedResult is what a lab event is about, loaded through the viewer's
// row scope: nil when the viewer may not see it (another patient's, or a
// result the viewer's role sees only once final).
type releasedResult struct {
	payload lab.ResultPayload
	patient *ent.Patient
	result  *ent.LabResult
	test    *ent.LabTest
	ward    *ent.Ward
}

func (r *subscriptionResolver) loadReleased(ctx context.Context, ev events.Event, patientID, wardID *string) (*releasedResult, error) {
	var p lab.ResultPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return nil, err
	}
	if (patientID != nil && p.PatientID != *patientID) || (wardID != nil && p.WardID != *wardID) {
		return nil, nil
	}
	pat, err := r.Client.Patient.Get(ctx, p.PatientID)
	if ent.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	res, err := r.Client.LabResult.Get(ctx, p.ResultID)
	if ent.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	test, err := r.Client.LabTest.Get(ctx, p.TestID)
	if err != nil {
		return nil, err
	}
	out := &releasedResult{payload: p, patient: pat, result: res, test: test}
	if p.WardID != "" {
		if out.ward, err = r.Client.Ward.Get(ctx, p.WardID); err != nil && !ent.IsNotFound(err) {
			return nil, err
		}
	}
	return out, nil
}

// labResultVerified streams released results: of one patient, of the
// patients admitted to one ward when released, or all the viewer may see.
func (r *subscriptionResolver) labResultVerified(ctx context.Context, patientID, wardID, after *string) (<-chan *model.LabResultEvent, error) {
	src, err := r.labEvents(ctx, lab.ResultsTopic, patientID, wardID, after)
	if err != nil {
		return nil, err
	}
	return stream(ctx, r.Auth, src, func(ev events.Event) (*model.LabResultEvent, bool, error) {
		rel, err := r.loadReleased(ctx, ev, patientID, wardID)
		if rel == nil || err != nil {
			return nil, false, err
		}
		item, err := r.Client.LabOrderItem.Get(ctx, rel.payload.ItemID)
		if ent.IsNotFound(err) {
			return nil, false, nil
		} else if err != nil {
			return nil, false, err
		}
		return &model.LabResultEvent{
			EventID: ev.ID, Type: lab.LabResultEventType(ev.Type), OccurredAt: ev.Time,
			Patient: rel.patient, Result: rel.result, Item: item, Test: rel.test, Ward: rel.ward,
		}, true, nil
	}), nil
}

// criticalLabResult streams critical values with who must be told.
func (r *subscriptionResolver) criticalLabResult(ctx context.Context, wardID, after *string) (<-chan *model.CriticalLabResultEvent, error) {
	src, err := r.labEvents(ctx, lab.CriticalTopic, nil, wardID, after)
	if err != nil {
		return nil, err
	}
	return stream(ctx, r.Auth, src, func(ev events.Event) (*model.CriticalLabResultEvent, bool, error) {
		rel, err := r.loadReleased(ctx, ev, nil, wardID)
		if rel == nil || err != nil {
			return nil, false, err
		}
		notify, err := lab.StaffInOrder(ctx, r.Client, rel.payload.Notify)
		if err != nil {
			return nil, false, err
		}
		return &model.CriticalLabResultEvent{
			EventID: ev.ID, Type: lab.CriticalLabResultEventType(ev.Type), OccurredAt: ev.Time, Patient: rel.patient, Result: rel.result,
			Test: rel.test, Ward: rel.ward, Notify: notify,
		}, true, nil
	}), nil
}
