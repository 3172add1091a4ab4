package pharmacy

import (
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// TestREADMEPharmacyOperationsAreValid runs every operation of the README's
// pharmacy walkthrough as admin: each must be valid against the schema
// (with its placeholder IDs it is then refused as bad input, or answers),
// so the copy-paste examples keep up with the schema.
func TestREADMEPharmacyOperationsAreValid(t *testing.T) {
	t.Parallel()
	ops := harness.READMEOperations(t, "## Pharmacy: stock and dispensing")
	s := harness.NewServer(t)
	for _, op := range ops {
		if op.Kind == ast.Subscription {
			c := s.DialWS(t, harness.WSProtocols[0])
			c.Init(s.Token("admin"))
			errs := c.Failure(c.Start(op.Document, nil))
			// A placeholder location ID is refused as bad input, after validation.
			harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT", "README subscription: %v\n%s", errs, op.Document)
			c.Close()
			continue
		}
		r := s.As("admin", op.Document, nil)
		for _, e := range r.Errors {
			harness.Must(t, e.Code() == "BAD_USER_INPUT" || e.Code() == "NOT_FOUND", "README operation: %s %v\n%s", e.Code(), e, op.Document)
		}
	}
	harness.Must(t, len(ops) >= 15, "only %d README pharmacy operations found", len(ops))
}
