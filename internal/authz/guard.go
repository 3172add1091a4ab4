package authz

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// FieldGuard is a gqlgen extension that asks the enforcer about every field
// of every object and every root operation before it resolves. A denied
// field resolves to null with a FORBIDDEN error at its path; its resolver
// never runs, so a denied mutation changes nothing. It guards what a field's
// arguments read as well: every field a where filter or an ordering touches,
// at any depth (see filter.go), and the row scope of every subquery such a
// filter makes (see filterscope.go).
type FieldGuard struct {
	enforcer *Enforcer
	client   *ent.Client
	filters  *filterIndex
	// rowsOf maps an object type to the id field of the entity whose rows
	// it carries ("Problem.id" for Problem, ProblemConnection and
	// ProblemEdge), built once so the hot path concatenates nothing. Types
	// of no entity (payloads, PageInfo) are absent.
	rowsOf map[string]string
}

// NewFieldGuard returns the guard for enforcer. client runs the queries
// that tell the audit trail which patients a filter searched.
func NewFieldGuard(enforcer *Enforcer, client *ent.Client) *FieldGuard {
	return &FieldGuard{enforcer: enforcer, client: client}
}

var _ interface {
	graphql.HandlerExtension
	graphql.FieldInterceptor
} = (*FieldGuard)(nil)

func (*FieldGuard) ExtensionName() string { return "CasbinFieldGuard" }

// Validate indexes the schema's filters; a filter the policy could not
// guard stops the server from starting.
func (g *FieldGuard) Validate(es graphql.ExecutableSchema) error {
	schema := es.Schema()
	filters, err := newFilterIndex(schema)
	if err != nil {
		return err
	}
	g.filters = filters
	g.rowsOf = map[string]string{}
	for name, def := range schema.Types {
		if def.Kind != ast.Object || strings.HasPrefix(name, "__") {
			continue
		}
		entity := strings.TrimSuffix(strings.TrimSuffix(name, "Connection"), "Edge")
		if e := schema.Types[entity]; e != nil && e.Kind == ast.Object && e.Fields.ForName("id") != nil {
			g.rowsOf[name] = entity + ".id"
		}
	}
	return nil
}

func (g *FieldGuard) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	// Introspection (__schema, __type, __typename and the __Type… objects)
	// describes the API, not data, and GraphiQL needs it before sign-in.
	if fc == nil || strings.HasPrefix(fc.Object, "__") || strings.HasPrefix(fc.Field.Name, "__") {
		return next(ctx)
	}
	v := auth.FromContext(ctx)
	object := fc.Object + "." + fc.Field.Name
	if !g.enforcer.Allows(v, object) {
		audit.NoteDenied(ctx, object)
		return nil, refusal(v, object)
	}
	// A list of rows the viewer may not read would still tell how many
	// there are (problems { __typename } counts diagnoses), and a link to
	// one whether it exists (encounter { __typename }), so reaching rows of
	// an entity needs the right to read their id. A root operation's
	// result is the operation's to answer for.
	if rows, ok := g.rowsOf[fc.Field.Definition.Type.Name()]; ok && (isList(fc.Field.Definition.Type) || !isRoot(fc.Object)) &&
		!g.enforcer.Allows(v, rows) {
		audit.NoteDenied(ctx, rows)
		return nil, refusal(v, object)
	}
	audit.NoteField(ctx, fc.Object, fc.Field.Name)
	if object == "Query.node" || object == "Query.nodes" {
		g.hideUnreadable(ctx, v, fc)
	}
	if err := g.guardFilters(ctx, v, fc); err != nil {
		return nil, err
	}
	return next(ctx)
}

// hideUnreadable makes node(id:) and nodes(ids:) answer for an object of
// a type the viewer may not read exactly as for one that does not exist:
// otherwise FORBIDDEN on its fields, against NOT_FOUND for a made-up ID,
// would tell the viewer which IDs are real. Such an ID is swapped for one
// of the same type that cannot exist, so the resolver's own not-found
// answer is the only one.
func (g *FieldGuard) hideUnreadable(ctx context.Context, v *auth.Viewer, fc *graphql.FieldContext) {
	hide := func(id string) string {
		prefix := globalid.Prefix(id)
		typ, ok := typeByPrefix[prefix]
		if !ok || g.enforcer.Allows(v, typ+".id") {
			return id
		}
		audit.NoteDenied(ctx, typ+".id")
		return prefix + "_" + missingULID
	}
	switch ids := fc.Args["ids"].(type) {
	case []string:
		for i, id := range ids {
			ids[i] = hide(id)
		}
	}
	if id, ok := fc.Args["id"].(string); ok {
		fc.Args["id"] = hide(id)
	}
}

// missingULID is a well-formed ULID no ID is ever given: time zero.
const missingULID = "00000000000000000000000000"

// typeByPrefix maps the prefix of a global ID to the type it names.
var typeByPrefix = func() map[string]string {
	m := make(map[string]string, len(ent.PrefixByType))
	for typ, prefix := range ent.PrefixByType {
		m[prefix] = typ
	}
	return m
}()

// refusal is the error of a denied field: for an anonymous viewer, signing
// in is what is missing.
func refusal(v *auth.Viewer, object string) error {
	if v == nil {
		return apperr.Unauthenticatedf("sign in to access %s", object)
	}
	return apperr.Denied("not allowed to access %s", object)
}

// auditedFilterMatches caps the patients one filter adds to the audit
// row; a filter matching more is still recorded with its fields.
const auditedFilterMatches = 1000

// guardFilters checks every field the field's filter and ordering
// arguments read against the policy, confines their subqueries to the
// viewer's rows, and tells the audit trail what they read.
func (g *FieldGuard) guardFilters(ctx context.Context, v *auth.Viewer, fc *graphql.FieldContext) error {
	if len(fc.Field.Arguments) == 0 {
		return nil
	}
	var variables map[string]any
	if graphql.HasOperationContext(ctx) {
		variables = graphql.GetOperationContext(ctx).Variables
	}
	for _, arg := range fc.Field.Arguments {
		def := fc.Field.Definition.Arguments.ForName(arg.Name)
		if def == nil || !g.filters.guards(def.Type.Name()) {
			continue
		}
		raw, err := arg.Value.Value(variables)
		if err != nil {
			return apperr.BadInput(arg.Name, "is not valid")
		}
		for _, read := range g.filters.reads(def.Type.Name(), raw, arg.Name, nil) {
			if !g.enforcer.Allows(v, read.coordinate) {
				audit.NoteDenied(ctx, read.coordinate)
				return &apperr.Error{Code: apperr.Forbidden, Field: read.path,
					Message: "not allowed to filter or order on " + read.coordinate}
			}
			typ, field, _ := strings.Cut(read.coordinate, ".")
			audit.NoteField(ctx, typ, field)
		}
		if empty := g.filters.emptyNested(def.Type.Name(), raw, arg.Name, false); empty != "" {
			return apperr.BadInput(empty, "must name at least one condition")
		}
		where, ok := fc.Args[arg.Name]
		if !ok || where == nil {
			continue
		}
		g.enforcer.ScopeFilters(v, where)
		for _, searched := range patientDataFilters(where, selects(fc.Field.Selections, "totalCount")) {
			ids, err := ent.PatientsMatching(ctx, g.client, searched, auditedFilterMatches)
			if err != nil {
				return err
			}
			audit.NotePatients(ctx, ids...)
		}
	}
	return nil
}

func isRoot(object string) bool {
	return object == "Query" || object == "Mutation" || object == "Subscription"
}

// isList reports whether a field returns many rows: a list or a connection.
func isList(t *ast.Type) bool { return t.Elem != nil || strings.HasSuffix(t.Name(), "Connection") }

// selects reports whether a selection set asks for field, directly or
// through fragments.
func selects(set ast.SelectionSet, field string) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == field {
				return true
			}
		case *ast.InlineFragment:
			if selects(s.SelectionSet, field) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && selects(s.Definition.SelectionSet, field) {
				return true
			}
		}
	}
	return false
}
