package graph

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// chart loads one patient with every edge the query selects, eager-loaded
// by entgql's field collection: one statement per selected edge, whatever
// the number of items.
func (r *queryResolver) chart(ctx context.Context, where predicate.Patient) (*ent.Patient, error) {
	q, err := r.Client.Patient.Query().Where(where).CollectFields(ctx)
	if err != nil {
		return nil, err
	}
	p, err := q.Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("patient not found")
	}
	return p, err
}
