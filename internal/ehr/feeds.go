package ehr

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/observation"
	"github.com/hmis-dev/hmis/internal/events"
)

// VitalsFilter is what a vitals subscription follows: one patient, the
// patients admitted to one ward when the signs were taken, or, with
// neither, every patient the viewer may see.
type VitalsFilter struct {
	PatientID, WardID *string
}

// Matches reports whether an event with payload p is one f follows.
func (f VitalsFilter) Matches(p VitalsPayload) bool {
	return (f.PatientID == nil || p.PatientID == *f.PatientID) && (f.WardID == nil || p.WardID == *f.WardID)
}

// Vitals is what a vitals event is about, as one viewer may see it.
type Vitals struct {
	Patient *ent.Patient
	// Observations recorded, amended or withdrawn together, in the order
	// the event lists them.
	Observations []*ent.Observation
}

// VitalsFeed is the feed of vital signs (Topic).
func VitalsFeed(client *ent.Client) events.Feed[VitalsPayload, *Vitals] {
	return events.Feed[VitalsPayload, *Vitals]{
		Name: "ehr.vitals", Topic: Topic,
		Decode: func(ev events.Event) (VitalsPayload, error) {
			var p VitalsPayload
			err := json.Unmarshal(ev.Payload, &p)
			return p, err
		},
		Load: func(ctx context.Context, _ events.Event, p VitalsPayload) (*Vitals, bool, error) {
			return loadVitals(ctx, client, p)
		},
	}
}

// loadVitals loads the patient and observations through row scope, so a
// patient hears only of their own.
func loadVitals(ctx context.Context, client *ent.Client, p VitalsPayload) (*Vitals, bool, error) {
	pat, err := client.Patient.Get(ctx, p.PatientID)
	if ent.IsNotFound(err) {
		return nil, false, nil
	} else if err != nil {
		return nil, false, err
	}
	found, err := client.Observation.Query().Where(observation.IDIn(p.ObservationIDs...)).All(ctx)
	if err != nil {
		return nil, false, err
	}
	byID := make(map[string]*ent.Observation, len(found))
	for _, o := range found {
		byID[o.ID] = o
	}
	obs := make([]*ent.Observation, 0, len(found))
	for _, id := range p.ObservationIDs {
		if o, ok := byID[id]; ok {
			obs = append(obs, o)
		}
	}
	if len(obs) == 0 {
		return nil, false, nil
	}
	return &Vitals{Patient: pat, Observations: obs}, true, nil
}
