package httpapi

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
)

// credentialMutations check or change a credential. Each is one guess or
// one credential, and the throttles, the lockout and the audit trail are
// sized for that; aliases would let one request make many (sixteen
// changePassword guesses in one round trip, say).
var credentialMutations = map[string]bool{
	"login":          true,
	"refreshToken":   true,
	"logout":         true,
	"changePassword": true,
	"createApiKey":   true,
	"revokeApiKey":   true,
	"verifyMfa":      true,
	"enrollTotp":     true,
	"confirmTotp":    true,
	"disableTotp":    true,
	"resetMfa":       true,
}

// oneCredentialMutation refuses, before anything runs, a request that asks
// for more than one credential mutation, whether aliases of the same one or
// different ones.
type oneCredentialMutation struct{}

func (oneCredentialMutation) ExtensionName() string                   { return "OneCredentialMutation" }
func (oneCredentialMutation) Validate(graphql.ExecutableSchema) error { return nil }

func (oneCredentialMutation) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return nil
	}
	n := 0
	// CollectFields honours @skip/@include and fragments, and merges
	// selections under one response name, which run once.
	for _, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, []string{"Mutation"}) {
		if credentialMutations[f.Name] {
			n++
		}
	}
	if n <= 1 {
		return nil
	}
	return &gqlerror.Error{
		Message:    fmt.Sprintf("a request may run at most one of %s; this one asks for %d", credentialMutationList(), n),
		Extensions: map[string]any{"code": string(apperr.BadUserInput)},
	}
}

// delegatedKeyReadsOnly refuses every mutation from an API key that acts
// for a member of staff. Such a key reads as them (their care
// relationships decide the rows); a change made through it would carry
// their name without their hand. auth.ActingStaff refuses such keys too,
// for the steps that sign.
type delegatedKeyReadsOnly struct{}

func (delegatedKeyReadsOnly) ExtensionName() string                   { return "DelegatedKeyReadsOnly" }
func (delegatedKeyReadsOnly) Validate(graphql.ExecutableSchema) error { return nil }

func (delegatedKeyReadsOnly) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil || oc.Operation.Operation != ast.Mutation {
		return nil
	}
	if v := auth.FromContext(ctx); v == nil || v.APIKeyID == "" || v.StaffID == "" {
		return nil
	}
	return &gqlerror.Error{
		Message:    "an API key acting for a member of staff reads as them and changes nothing",
		Extensions: map[string]any{"code": string(apperr.Forbidden)},
	}
}

func credentialMutationList() string {
	names := make([]string, 0, len(credentialMutations))
	for name := range credentialMutations {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
