package lab

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/internal/events"
)

// ResultFilter is what a lab subscription follows: one patient's results,
// those of the patients admitted to one ward when released, or, with
// neither, every result the viewer may see.
type ResultFilter struct {
	PatientID, WardID *string
}

// Matches reports whether an event with payload p is one f follows.
func (f ResultFilter) Matches(p ResultPayload) bool {
	return (f.PatientID == nil || p.PatientID == *f.PatientID) && (f.WardID == nil || p.WardID == *f.WardID)
}

// Released is what an event of either lab topic is about, as one viewer
// may see it. The result's patient and item are loaded with it, so that a
// subscription selecting result { patient item } reads nothing more.
type Released struct {
	Patient *ent.Patient
	Result  *ent.LabResult
	Item    *ent.LabOrderItem
	Test    *ent.LabTest
	Ward    *ent.Ward // nil for an outpatient
	// Notify is who must be told of a critical value, in the order
	// published; only loaded for CriticalTopic.
	Notify []*ent.Staff
}

// DecodeResult reads the payload of an event of either lab topic.
func DecodeResult(ev events.Event) (ResultPayload, error) {
	var p ResultPayload
	err := json.Unmarshal(ev.Payload, &p)
	return p, err
}

// ResultsFeed is the feed of released results (ResultsTopic).
func ResultsFeed(client *ent.Client) events.Feed[ResultPayload, *Released] {
	return events.Feed[ResultPayload, *Released]{
		Name: "lab.results", Topic: ResultsTopic, Decode: DecodeResult,
		Load: func(ctx context.Context, _ events.Event, p ResultPayload) (*Released, bool, error) {
			return loadReleased(ctx, client, p, false)
		},
	}
}

// CriticalFeed is the feed of critical values (CriticalTopic), with who
// must be told.
func CriticalFeed(client *ent.Client) events.Feed[ResultPayload, *Released] {
	return events.Feed[ResultPayload, *Released]{
		Name: "lab.critical", Topic: CriticalTopic, Decode: DecodeResult,
		Load: func(ctx context.Context, _ events.Event, p ResultPayload) (*Released, bool, error) {
			return loadReleased(ctx, client, p, true)
		},
	}
}

// loadReleased loads through the row scope of ctx's viewer: nothing when
// the viewer may not see the result (another patient's, or one the
// viewer's role sees only once final) or its patient.
func loadReleased(ctx context.Context, client *ent.Client, p ResultPayload, notify bool) (*Released, bool, error) {
	res, err := client.LabResult.Query().Where(labresult.ID(p.ResultID)).WithPatient().WithItem().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	out := &Released{Result: res, Patient: res.Edges.Patient, Item: res.Edges.Item}
	if out.Patient == nil || out.Item == nil {
		return nil, false, nil
	}
	if out.Test, err = client.LabTest.Get(ctx, p.TestID); err != nil {
		return nil, false, err
	}
	if p.WardID != "" {
		if out.Ward, err = client.Ward.Get(ctx, p.WardID); err != nil && !ent.IsNotFound(err) {
			return nil, false, err
		}
	}
	if notify {
		if out.Notify, err = StaffInOrder(ctx, client, p.Notify); err != nil {
			return nil, false, err
		}
	}
	return out, true, nil
}
