package authz

import (
	"context"
	"strings"
	"sync"

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
//
// A page of 20 patients resolves some 800 fields, so the guard does per
// field only what differs per field: what a coordinate needs (plans) is
// worked out once at start-up, what the viewer's roles may do once per role
// set and coordinate (Decider), and the viewer and the audit collector are
// looked up once per operation.
type FieldGuard struct {
	enforcer *Enforcer
	client   *ent.Client
	schema   *ast.Schema
	filters  *filterIndex
	// plans holds, per object type and field, what guarding it takes.
	plans map[planKey]*fieldPlan
	// before runs on every field the guard lets through, before its
	// resolver (see BeforeResolve).
	before []func(*graphql.FieldContext)
}

type planKey struct{ object, field string }

// fieldPlan is what guarding one field of one object type takes, known
// from the schema alone.
type fieldPlan struct {
	coordinate string // "Patient.familyName"
	// rows is, for a field reaching rows of an entity (a list or
	// connection of them, or a link to one other than a root
	// operation's result), that entity's id ("Problem.id"): reaching rows
	// needs the right to read their id, or a list would still tell how
	// many there are (problems { __typename } counts diagnoses) and a link
	// whether it exists (encounter { __typename }).
	rows string
	// patientData: the field is noted on the request's audit row.
	patientData bool
	// node: node(id:) or nodes(ids:), whose IDs of unreadable types are hidden.
	node bool
	// filtered: the field takes a where filter or an ordering.
	filtered bool
}

// NewFieldGuard returns the guard for enforcer. client runs the queries
// that tell the audit trail which patients a filter searched.
func NewFieldGuard(enforcer *Enforcer, client *ent.Client) *FieldGuard {
	return &FieldGuard{enforcer: enforcer, client: client}
}

// BeforeResolve adds a step run on every field the guard allowed, before
// its resolver, in the guard's own interception of the field: an HTTP
// limit that sets a field's arguments (a default page size) then costs no
// interceptor of its own on each of the hundreds of fields of a page.
func (g *FieldGuard) BeforeResolve(step func(*graphql.FieldContext)) {
	g.before = append(g.before, step)
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.FieldInterceptor
} = (*FieldGuard)(nil)

func (*FieldGuard) ExtensionName() string { return "CasbinFieldGuard" }

// Validate indexes the schema's filters and plans every field; a filter
// the policy could not guard stops the server from starting.
func (g *FieldGuard) Validate(es graphql.ExecutableSchema) error {
	schema := es.Schema()
	filters, err := newFilterIndex(schema)
	if err != nil {
		return err
	}
	g.schema, g.filters = schema, filters
	g.plans = map[planKey]*fieldPlan{}
	for name, def := range schema.Types {
		if def.Kind != ast.Object || strings.HasPrefix(name, "__") {
			continue
		}
		for _, f := range def.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				g.plans[planKey{name, f.Name}] = g.newPlan(schema, name, f)
			}
		}
	}
	return nil
}

func (g *FieldGuard) newPlan(schema *ast.Schema, object string, f *ast.FieldDefinition) *fieldPlan {
	p := &fieldPlan{
		coordinate:  object + "." + f.Name,
		patientData: audit.PatientData(object),
	}
	p.node = p.coordinate == "Query.node" || p.coordinate == "Query.nodes"
	if rows := rowsOf(schema, f.Type.Name()); rows != "" && (isList(f.Type) || !isRoot(object)) {
		p.rows = rows
	}
	for _, arg := range f.Arguments {
		p.filtered = p.filtered || g.filters.guards(arg.Type.Name())
	}
	return p
}

// rowsOf returns the id field of the entity whose rows an object type
// carries ("Problem.id" for Problem, ProblemConnection and ProblemEdge),
// "" for types of no entity (payloads, PageInfo).
func rowsOf(schema *ast.Schema, typ string) string {
	if def := schema.Types[typ]; def == nil || def.Kind != ast.Object {
		return ""
	}
	entity := strings.TrimSuffix(strings.TrimSuffix(typ, "Connection"), "Edge")
	if e := schema.Types[entity]; e != nil && e.Kind == ast.Object && e.Fields.ForName("id") != nil {
		return entity + ".id"
	}
	return ""
}

// plan returns the plan of the field fc resolves: the one made at start-up
// for every field of every object type, or, for a field of a type the
// schema did not list then, one made now the same way.
func (g *FieldGuard) plan(fc *graphql.FieldContext) *fieldPlan {
	if p, ok := g.plans[planKey{fc.Object, fc.Field.Name}]; ok {
		return p
	}
	def := fc.Field.Definition
	if def == nil {
		// Validation gives every field of a document its definition.
		def = &ast.FieldDefinition{Name: fc.Field.Name, Type: ast.NamedType("", nil)}
	}
	return g.newPlan(g.schema, fc.Object, def)
}

// operation is what the guard looks up once per operation rather than
// once per field.
type operation struct {
	viewer  *auth.Viewer
	decider *Decider
	// filters remembers, per field of the document, what its filter and
	// ordering arguments read: the same in every row of a page.
	filters sync.Map // *ast.Field → *filterCheck
}

type operationKey struct{}

// filterCheck is what a field's filter arguments read, worked out once.
type filterCheck struct {
	reads []filterRead
	// empty is the path of a nested where input that names no condition.
	empty string
	err   error
}

// InterceptOperation looks the viewer up once for all the operation's fields.
func (g *FieldGuard) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	v := auth.FromContext(ctx)
	return next(context.WithValue(ctx, operationKey{}, &operation{viewer: v, decider: g.enforcer.Decider(v)}))
}

func (g *FieldGuard) operationOf(ctx context.Context) *operation {
	if op, ok := ctx.Value(operationKey{}).(*operation); ok {
		return op
	}
	// A field resolved outside an operation this guard intercepted:
	// decide from the context as it is.
	v := auth.FromContext(ctx)
	return &operation{viewer: v, decider: g.enforcer.Decider(v)}
}

func (g *FieldGuard) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	// Introspection (__schema, __type, __typename and the __Type… objects)
	// describes the API, not data, and GraphiQL needs it before sign-in.
	if fc == nil || strings.HasPrefix(fc.Object, "__") || strings.HasPrefix(fc.Field.Name, "__") {
		return next(ctx)
	}
	if g.schema == nil {
		// Not validated, so nothing is indexed: fail closed.
		return nil, &apperr.Error{Code: apperr.Internal, Message: "the field guard was not set up"}
	}
	op := g.operationOf(ctx)
	p := g.plan(fc)
	if !op.decider.Allows(p.coordinate) {
		audit.NoteDenied(ctx, p.coordinate)
		return nil, refusal(op.viewer, p.coordinate)
	}
	if p.rows != "" && !op.decider.Allows(p.rows) {
		audit.NoteDenied(ctx, p.rows)
		return nil, refusal(op.viewer, p.coordinate)
	}
	if p.patientData {
		audit.NoteCoordinate(ctx, p.coordinate)
	}
	if p.node {
		g.hideUnreadable(ctx, op.viewer, fc)
	}
	if p.filtered {
		if err := g.guardFilters(ctx, op, p, fc); err != nil {
			return nil, err
		}
	}
	for _, step := range g.before {
		step(fc)
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
func (g *FieldGuard) guardFilters(ctx context.Context, op *operation, p *fieldPlan, fc *graphql.FieldContext) error {
	check := g.filterCheck(ctx, op, fc)
	if check.err != nil {
		return check.err
	}
	for _, read := range check.reads {
		if !op.decider.Allows(read.coordinate) {
			audit.NoteDenied(ctx, read.coordinate)
			return &apperr.Error{Code: apperr.Forbidden, Field: read.path,
				Message: "not allowed to filter or order on " + read.coordinate}
		}
		if object, _, _ := strings.Cut(read.coordinate, "."); audit.PatientData(object) {
			audit.NoteCoordinate(ctx, read.coordinate)
		}
	}
	if check.empty != "" {
		return apperr.BadInput(check.empty, "must name at least one condition")
	}
	// The decoded filters are the field's own, fresh in every row of a
	// page: each is scoped, and its subqueries' patients audited, on its own.
	for _, arg := range fc.Field.Arguments {
		where, ok := fc.Args[arg.Name]
		if !ok || where == nil {
			continue
		}
		if def := fc.Field.Definition.Arguments.ForName(arg.Name); def == nil || !g.filters.guards(def.Type.Name()) {
			continue
		}
		if g.enforcer.ScopeFilters(op.viewer, where) && !isRoot(fc.Object) {
			// A list inside another is loaded for the whole page by the
			// parent's query (ent's eager loading), which decodes the
			// filter anew, unscoped: the copy scoped here is not the one
			// that ran. Rather than answer from rows the viewer may not
			// see, refuse; the same filter at the root is scoped.
			audit.NoteDenied(ctx, p.coordinate)
			return &apperr.Error{Code: apperr.Forbidden, Field: arg.Name,
				Message: "a filter of a nested list may not search rows kept from you; filter the list at the root"}
		}
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

// filterCheck lists what the filter and ordering arguments of the field fc
// resolves read. A field's arguments are the same in every row of a page,
// so they are read once per operation and field of the document.
func (g *FieldGuard) filterCheck(ctx context.Context, op *operation, fc *graphql.FieldContext) *filterCheck {
	if c, ok := op.filters.Load(fc.Field.Field); ok {
		return c.(*filterCheck)
	}
	var variables map[string]any
	if graphql.HasOperationContext(ctx) {
		variables = graphql.GetOperationContext(ctx).Variables
	}
	c := &filterCheck{}
	for _, arg := range fc.Field.Arguments {
		def := fc.Field.Definition.Arguments.ForName(arg.Name)
		if def == nil || !g.filters.guards(def.Type.Name()) {
			continue
		}
		raw, err := arg.Value.Value(variables)
		if err != nil {
			c.err = apperr.BadInput(arg.Name, "is not valid")
			break
		}
		if terms, depth := filterSize(raw, 1); terms > maxFilterTerms || depth > maxFilterDepth {
			c.err = apperr.BadInput(arg.Name, "is too complex: at most %d conditions, nested at most %d deep", maxFilterTerms, maxFilterDepth)
			break
		}
		c.reads = g.filters.reads(def.Type.Name(), raw, arg.Name, c.reads)
		if c.empty == "" {
			c.empty = g.filters.emptyNested(def.Type.Name(), raw, arg.Name, false)
		}
	}
	if fc.Field.Field != nil {
		op.filters.Store(fc.Field.Field, c)
	}
	return c
}

// A filter's size is bounded before anything reads it: thousands of nested
// not/or terms make a statement the database refuses after seconds of work
// (SQLite: "Expression tree is too large"), and no screen builds one.
const (
	maxFilterTerms = 200
	maxFilterDepth = 12
)

// filterSize counts the conditions of a decoded filter value and how deep
// its objects and lists nest.
func filterSize(value any, depth int) (terms, maxDepth int) {
	maxDepth = depth
	add := func(v any) {
		t, d := filterSize(v, depth+1)
		terms += t
		maxDepth = max(maxDepth, d)
	}
	switch v := value.(type) {
	case map[string]any:
		terms += len(v)
		for _, inner := range v {
			add(inner)
		}
	case []any:
		for _, item := range v {
			add(item)
		}
	}
	return terms, maxDepth
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
