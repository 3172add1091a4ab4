package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/graph"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
)

func guardFor(t testing.TB) (*FieldGuard, *ast.Schema) {
	t.Helper()
	es := graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{}})
	g := NewFieldGuard(enforcer(t), nil)
	if err := g.Validate(es); err != nil {
		t.Fatal(err)
	}
	return g, es.Schema()
}

func TestFilterFieldsMapToWhatTheyRead(t *testing.T) {
	g, _ := guardFor(t)
	for _, c := range []struct{ input, field, reads string }{
		{"PatientWhereInput", "familyNameHasPrefix", "Patient.familyName"},
		{"PatientWhereInput", "familyName", "Patient.familyName"},
		{"PatientWhereInput", "mergedIntoIDIsNil", "Patient.mergedIntoID"},
		{"PatientWhereInput", "hasProblemsWith", "Patient.problems"},
		{"PatientWhereInput", "hasProblems", "Patient.problems"},
		{"PatientWhereInput", "hasLabResultsWith", "Patient.labResults"},
		{"ProblemWhereInput", "icd10CodeHasPrefix", "Problem.icd10Code"},
		{"StaffWhereInput", "hasAppointmentsWith", "Staff.appointments"},
		{"AppointmentWhereInput", "startAtGTE", "Appointment.startAt"},
	} {
		if strings.HasPrefix(c.field, "has") && g.filters.where[c.input][c.field].rows == "" {
			t.Errorf("%s.%s does not read the rows it leads to", c.input, c.field)
		}
		if got := g.filters.where[c.input][c.field].coordinate; got != c.reads {
			t.Errorf("%s.%s reads %q, want %q", c.input, c.field, got, c.reads)
		}
	}
	if got := g.filters.order["PatientOrder"]["FAMILY_NAME"]; got != "Patient.familyName" {
		t.Errorf("ordering by FAMILY_NAME reads %q", got)
	}
}

// TestNoRoleFiltersOrOrdersOnWhatItCannotRead walks every input field of
// every where input and every value of every ordering, placed where a
// client would place it (reached from a root query through has…With
// filters), for every role of the policy, through the guard itself: the
// guard refuses it exactly when the role may not read a field it touches.
func TestNoRoleFiltersOrOrdersOnWhatItCannotRead(t *testing.T) {
	g, schema := guardFor(t)
	e := g.enforcer
	paths := pathsToWhereInputs(schema)
	for typ := range g.filters.where {
		if _, ok := paths[typ]; !ok && usedAnywhere(schema, typ) {
			t.Errorf("%s is reached by no query: untested", typ)
		}
	}
	roles := append(e.Roles(), "no-such-role")
	checked, refused := 0, 0
	for _, role := range roles {
		v := &auth.Viewer{Roles: []string{role}, UserID: "usr_x", PatientID: "pat_x"}
		for typ, p := range paths {
			def := schema.Types[typ]
			for _, f := range def.Fields {
				literal := literalFor(schema, f.Type)
				doc := fmt.Sprintf("{ %s(%s%s: %s) { __typename } }", p.root, p.required, p.arg, p.wrap(f.Name+": "+literal))
				ff := g.filters.where[typ][f.Name]
				touched := append(append([]string{}, p.touched...), ff.coordinate, ff.rows)
				checked++
				if check(t, g, schema, v, doc, touched) {
					refused++
				}
			}
		}
		for orderType, values := range g.filters.order {
			open, arg, close, ok := fieldTaking(schema, orderType)
			if !ok {
				if usedAnywhere(schema, orderType) {
					t.Errorf("%s is taken by no field a query reaches: untested", orderType)
				}
				continue
			}
			for value, coordinate := range values {
				doc := fmt.Sprintf("%s(%s: {field: %s}) %s", open, arg, value, close)
				checked++
				if check(t, g, schema, v, doc, []string{coordinate}) {
					refused++
				}
			}
		}
	}
	// The walk must have met both answers, or it proved nothing.
	if refused == 0 || refused == checked {
		t.Fatalf("%d of %d filters refused: the walk did not exercise the policy", refused, checked)
	}
	t.Logf("%d filters and orderings checked for %d roles, %d refused", checked, len(roles), refused)
}

// check runs doc's root field through the guard's filter check as viewer v
// and reports whether it was refused; it fails the test unless it was
// refused exactly when v may not read one of the fields in touched.
func check(t *testing.T, g *FieldGuard, schema *ast.Schema, v *auth.Viewer, doc string, touched []string) bool {
	t.Helper()
	query, err := parsedDoc(schema, doc)
	if err != nil {
		t.Fatalf("%s: %v", doc, err)
	}
	field := query.Operations[0].SelectionSet[0].(*ast.Field)
	for len(field.SelectionSet) > 0 && field.SelectionSet[0].(*ast.Field).Name != "__typename" {
		field = field.SelectionSet[0].(*ast.Field)
	}
	fc := &graphql.FieldContext{Object: "Query", Field: graphql.CollectedField{Field: field}, Args: map[string]any{}}
	err = g.guardFilters(context.Background(), &operation{viewer: v, decider: g.enforcer.Decider(v)}, g.plan(fc), fc)
	want := false
	for _, c := range touched {
		if c != "" && !g.enforcer.Allows(v, c) {
			want = true
		}
	}
	var ae *apperr.Error
	got := err != nil && errors.As(err, &ae) && ae.Code == apperr.Forbidden
	// The walk's nested inputs are empty ({}), which a permitted filter
	// refuses as naming no condition, after the policy had its say.
	emptyRefused := err != nil && errors.As(err, &ae) && ae.Code == apperr.BadUserInput && strings.Contains(ae.Message, "at least one condition")
	if err != nil && !got && !emptyRefused {
		t.Errorf("%v: %s: %v", v.Roles, doc, err)
	}
	if got != want {
		t.Errorf("%v: %s: refused %v, want %v (touches %v)", v.Roles, doc, got, want, touched)
	}
	return got
}

// parsedDocs keeps each document check has parsed and validated: the walk
// asks the same thousands of documents for every role, and validating
// against the whole schema was nearly all of its time.
var parsedDocs sync.Map // document → *ast.QueryDocument

func parsedDoc(schema *ast.Schema, doc string) (*ast.QueryDocument, error) {
	if q, ok := parsedDocs.Load(doc); ok {
		return q.(*ast.QueryDocument), nil
	}
	q, errs := gqlparser.LoadQuery(schema, doc)
	if errs != nil {
		return nil, errs
	}
	parsedDocs.Store(doc, q)
	return q, nil
}

// wherePath is how a client reaches one where input: a root query, its
// argument, and the has…With filters leading to the input.
type wherePath struct {
	root, arg string
	required  string   // the root's other required arguments, "from: \"x\", "
	steps     []string // input fields, outermost first
	touched   []string // the edges they read
}

func (p wherePath) wrap(inner string) string {
	for i := len(p.steps) - 1; i >= 0; i-- {
		inner = p.steps[i] + ": {" + inner + "}"
	}
	return "{" + inner + "}"
}

// pathsToWhereInputs finds, for every where input, the shortest way a
// client reaches it from a root query's argument.
func pathsToWhereInputs(schema *ast.Schema) map[string]wherePath {
	paths := map[string]wherePath{}
	var queue []string
	for _, f := range schema.Query.Fields {
		for _, a := range f.Arguments {
			typ := a.Type.Name()
			if _, seen := paths[typ]; strings.HasSuffix(typ, "WhereInput") && !seen {
				var required string
				for _, b := range f.Arguments {
					if b.Type.NonNull && b.DefaultValue == nil {
						required += b.Name + ": " + literalFor(schema, b.Type) + ", "
					}
				}
				paths[typ] = wherePath{root: f.Name, arg: a.Name, required: required}
				queue = append(queue, typ)
			}
		}
	}
	for len(queue) > 0 {
		typ := queue[0]
		queue = queue[1:]
		object := strings.TrimSuffix(typ, "WhereInput")
		for _, f := range schema.Types[typ].Fields {
			next := f.Type.Name()
			if _, seen := paths[next]; seen || !strings.HasPrefix(f.Name, "has") || !strings.HasSuffix(f.Name, "With") {
				continue
			}
			p := paths[typ]
			edge := strings.ToLower(f.Name[3:4]) + strings.TrimSuffix(f.Name[4:], "With")
			rows := strings.TrimSuffix(schema.Types[object].Fields.ForName(edge).Type.Name(), "Connection") + ".id"
			paths[next] = wherePath{root: p.root, arg: p.arg, required: p.required, steps: append(append([]string{}, p.steps...), f.Name),
				touched: append(append([]string{}, p.touched...), object+"."+edge, rows)}
			queue = append(queue, next)
		}
	}
	return paths
}

// usedAnywhere reports whether some field argument or input field has
// type typ; a where input nothing takes filters nothing.
func usedAnywhere(schema *ast.Schema, typ string) bool {
	for _, def := range schema.Types {
		for _, f := range def.Fields {
			if def.Kind == ast.InputObject && def.Name != typ && f.Type.Name() == typ {
				return true
			}
			for _, a := range f.Arguments {
				if a.Type.Name() == typ {
					return true
				}
			}
		}
	}
	return false
}

// fieldTaking finds the nearest field, reached from Query through object
// fields, that takes an argument of type argType, and returns the document
// around that argument: "{ patient(id: "x") { observations", the
// argument's name, and the closing "{ __typename } } }".
func fieldTaking(schema *ast.Schema, argType string) (open, arg, close string, ok bool) {
	type step struct {
		typ        *ast.Definition
		open, tail string
	}
	queue := []step{{typ: schema.Query, open: "{"}}
	seen := map[string]bool{schema.Query.Name: true}
	for len(queue) > 0 {
		at := queue[0]
		queue = queue[1:]
		for _, f := range at.typ.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			var required []string
			for _, a := range f.Arguments {
				if a.Type.Name() == argType {
					return at.open + " " + f.Name, a.Name, "{ __typename } }" + at.tail, true
				}
				if a.Type.NonNull && a.DefaultValue == nil {
					required = append(required, a.Name+": "+literalFor(schema, a.Type))
				}
			}
			next := schema.Types[f.Type.Name()]
			if next == nil || next.Kind != ast.Object || seen[next.Name] {
				continue
			}
			seen[next.Name] = true
			call := f.Name
			if len(required) > 0 {
				call += "(" + strings.Join(required, ", ") + ")"
			}
			queue = append(queue, step{typ: next, open: at.open + " " + call + " {", tail: " }" + at.tail})
		}
	}
	return "", "", "", false
}

// literalFor returns a GraphQL literal of type t that validates.
func literalFor(schema *ast.Schema, t *ast.Type) string {
	if t.Elem != nil {
		return "[" + literalFor(schema, t.Elem) + "]"
	}
	switch def := schema.Types[t.NamedType]; {
	case def.Kind == ast.Enum:
		return def.EnumValues[0].Name
	case def.Kind == ast.InputObject:
		return "{}"
	case t.NamedType == "Int":
		return "1"
	case t.NamedType == "Float":
		return "1.5"
	case t.NamedType == "Boolean":
		return "true"
	}
	return `"x"`
}
