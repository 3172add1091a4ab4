package graph

import (
	"context"
	"errors"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/prescribing"
)

// withAllergies attaches what an order was refused for to the error, as
// extensions.allergies and extensions.interactions, so the prescriber sees
// what to weigh before overriding. The error's code stays CONFLICT.
func withAllergies(ctx context.Context, err error) error {
	var (
		allergies    []prescribing.AllergyMatch
		interactions []prescribing.InteractionMatch
	)
	var ac *prescribing.AllergyConflict
	var ic *prescribing.InteractionConflict
	switch {
	case errors.As(err, &ac):
		allergies, interactions = ac.Allergies, ac.Interactions
	case errors.As(err, &ic):
		interactions = ic.Interactions
	default:
		return err
	}
	ext := map[string]any{}
	if len(allergies) > 0 {
		list := make([]map[string]any, len(allergies))
		for i, a := range allergies {
			m := map[string]any{"id": a.ID, "substance": a.Substance, "severity": a.Severity.String(),
				"match": a.Match, "detail": a.Detail}
			if a.Class != "" {
				m["class"] = a.Class
			}
			if a.Note != nil {
				m["note"] = *a.Note
			}
			list[i] = m
		}
		ext["allergies"] = list
	}
	if len(interactions) > 0 {
		list := make([]map[string]any, len(interactions))
		for i, ix := range interactions {
			list[i] = map[string]any{"id": ix.ID, "code": ix.Code, "severity": ix.Severity.String(), "pair": ix.Pair,
				"effect": ix.Effect, "advice": ix.Advice, "orderId": ix.OrderID, "drug": ix.Drug}
		}
		ext["interactions"] = list
	}
	return &gqlerror.Error{
		Err:        err,
		Message:    err.Error(),
		Path:       graphql.GetPath(ctx),
		Extensions: ext,
	}
}
