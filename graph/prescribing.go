package graph

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/prescribing"
)

// withAllergies attaches the allergies an order was refused for to the
// error, as extensions.allergies, so the prescriber sees what to weigh
// before overriding. The error's code stays CONFLICT.
func withAllergies(ctx context.Context, err error) error {
	var conflict *prescribing.AllergyConflict
	if !errors.As(err, &conflict) {
		return err
	}
	allergies := make([]map[string]any, len(conflict.Allergies))
	for i, a := range conflict.Allergies {
		allergies[i] = map[string]any{"id": a.ID, "substance": a.Substance, "severity": a.Severity.String()}
	}
	return &gqlerror.Error{
		Err:        err,
		Message:    err.Error(),
		Path:       graphql.GetPath(ctx),
		Extensions: map[string]any{"allergies": allergies},
	}
}
