package authz

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
)

// FieldGuard is a gqlgen extension that asks the enforcer about every field
// of every object and every root operation before it resolves. A denied
// field resolves to null with a FORBIDDEN error at its path; its resolver
// never runs, so a denied mutation changes nothing.
type FieldGuard struct{ enforcer *Enforcer }

// NewFieldGuard returns the guard for enforcer.
func NewFieldGuard(enforcer *Enforcer) *FieldGuard { return &FieldGuard{enforcer: enforcer} }

var _ interface {
	graphql.HandlerExtension
	graphql.FieldInterceptor
} = (*FieldGuard)(nil)

func (*FieldGuard) ExtensionName() string                   { return "CasbinFieldGuard" }
func (*FieldGuard) Validate(graphql.ExecutableSchema) error { return nil }

func (g *FieldGuard) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	// Introspection (__schema, __type, __typename and the __Type… objects)
	// describes the API, not data, and GraphiQL needs it before sign-in.
	if fc == nil || strings.HasPrefix(fc.Object, "__") || strings.HasPrefix(fc.Field.Name, "__") {
		return next(ctx)
	}
	object := fc.Object + "." + fc.Field.Name
	if v := auth.FromContext(ctx); !g.enforcer.Allows(v, object) {
		audit.NoteDenied(ctx, object)
		if v == nil { // anonymous: signing in is what is missing
			return nil, apperr.Unauthenticatedf("sign in to access %s", object)
		}
		return nil, apperr.Denied("not allowed to access %s", object)
	}
	audit.NoteField(ctx, fc.Object, fc.Field.Name)
	return next(ctx)
}
