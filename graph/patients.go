package graph

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/patient"
)

// patientsAsSelected reloads patients, in the order given, with every edge
// the field being resolved selects eager-loaded, as the chart does: one
// statement per selected edge however many patients there are. It also
// keeps Patient.mergedInto right: the generated merged_into edge is a
// bidirectional one-to-one, and loaded lazily ent follows it backwards (to
// the record merged into this one); loaded eagerly it follows
// merged_into_id, the way mergePatients writes it.
func (r *Resolver) patientsAsSelected(ctx context.Context, ps ...*ent.Patient) ([]*ent.Patient, error) {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	q, err := r.Client.Patient.Query().Where(patient.IDIn(ids...)).CollectFields(ctx)
	if err != nil {
		return nil, err
	}
	loaded, err := q.All(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*ent.Patient, len(loaded))
	for _, p := range loaded {
		byID[p.ID] = p
	}
	out := make([]*ent.Patient, 0, len(ids))
	for _, id := range ids {
		if p, ok := byID[id]; ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// patientAsSelected is patientsAsSelected for one patient, nil for nil.
func (r *Resolver) patientAsSelected(ctx context.Context, p *ent.Patient) (*ent.Patient, error) {
	if p == nil {
		return nil, nil
	}
	ps, err := r.patientsAsSelected(ctx, p)
	if err != nil || len(ps) == 0 {
		return nil, err
	}
	return ps[0], nil
}
