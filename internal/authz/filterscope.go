package authz

import (
	"reflect"
	"strings"
	"sync"

	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/auth"
)

// Row scope reaches every query through an ent interceptor, but a
// has…With filter becomes a subquery inside another query's WHERE, which
// no interceptor sees: appointments(where: {hasProviderWith:
// {hasAppointmentsWith: {hasPatientWith: …}}}) would search every
// patient's appointments on behalf of a patient. ScopeFilters therefore
// adds the viewer's row filter to every where input a has…With holds,
// before ent turns the input into SQL.

// whereNode is one where input inside a decoded filter: the entity it
// filters, whether it is the argument itself, and whether it is searched
// in a subquery: a has…With's target, or a not, and or or inside one.
type whereNode struct {
	typ      string
	value    reflect.Value // *ent.XWhereInput
	root     bool
	subquery bool
}

// whereShape lists, per generated where-input struct, the indexes of the
// fields that hold further where inputs, found once by reflection.
type whereShape struct {
	sameType []int // Not, And, Or: the same entity, combined in one query
	edges    []int // Has…With: another entity, a subquery
	// exists pairs each Has… flag (hasAppointments: true) with the
	// Has…With list of the same edge.
	exists [][2]int
	not    int // index of Not
	and    int // index of And
}

var whereShapes sync.Map // reflect.Type → *whereShape

func shapeOf(t reflect.Type) *whereShape {
	if s, ok := whereShapes.Load(t); ok {
		return s.(*whereShape)
	}
	s := &whereShape{}
	for i := range t.NumField() {
		f := t.Field(i)
		switch {
		case f.Name == "Not" || f.Name == "And" || f.Name == "Or":
			s.sameType = append(s.sameType, i)
			switch f.Name {
			case "Not":
				s.not = i
			case "And":
				s.and = i
			}
		case strings.HasPrefix(f.Name, "Has") && strings.HasSuffix(f.Name, "With"):
			s.edges = append(s.edges, i)
			if flag, ok := t.FieldByName(strings.TrimSuffix(f.Name, "With")); ok {
				s.exists = append(s.exists, [2]int{flag.Index[0], i})
			}
		}
	}
	whereShapes.Store(t, s)
	return s
}

// walkWhere calls visit for every where input in the tree under root (a
// pointer to a generated where input), root included, outermost first;
// visit returns whether to go on into the node's own where inputs.
func walkWhere(root reflect.Value, visit func(whereNode) bool) {
	walkNode(root, true, false, visit)
}

func walkNode(node reflect.Value, root, subquery bool, visit func(whereNode) bool) {
	if node.Kind() != reflect.Pointer || node.IsNil() || node.Elem().Kind() != reflect.Struct {
		return
	}
	t := node.Elem().Type()
	if !visit(whereNode{typ: strings.TrimSuffix(t.Name(), "WhereInput"), value: node, root: root, subquery: subquery}) {
		return
	}
	shape := shapeOf(t)
	for _, i := range shape.sameType {
		eachWhere(node.Elem().Field(i), func(child reflect.Value) { walkNode(child, false, subquery, visit) })
	}
	for _, i := range shape.edges {
		eachWhere(node.Elem().Field(i), func(child reflect.Value) { walkNode(child, false, true, visit) })
	}
}

func eachWhere(field reflect.Value, fn func(reflect.Value)) {
	switch field.Kind() {
	case reflect.Pointer:
		fn(field)
	case reflect.Slice:
		for j := range field.Len() {
			fn(field.Index(j))
		}
	}
}

// ScopeFilters adds the viewer's row filter to every subquery of a
// decoded where input (a *ent.XWhereInput; anything else is left alone),
// and reports whether it had to: whether some subquery of the filter would
// otherwise have searched rows the viewer may not see. The query the filter
// belongs to is scoped by the interceptor already.
func (e *Enforcer) ScopeFilters(v *auth.Viewer, where any) (scoped bool) {
	walkWhere(reflect.ValueOf(where), func(n whereNode) bool {
		if e.scopeExistence(v, n.value) {
			scoped = true
		}
		if n.subquery {
			if keep := e.RowFilter(v, n.typ); keep != nil {
				addPredicate(n.value, keep)
				scoped = true
			}
		}
		return true
	})
	return scoped
}

// scopeExistence rewrites hasAppointments: true into hasAppointmentsWith:
// [the viewer's rows], and false into not that, where the viewer may not
// see every row of the edge's entity: asking which staff have appointments
// is asking about appointments. The new where inputs are then scoped like
// any other subquery. It reports whether it rewrote anything.
func (e *Enforcer) scopeExistence(v *auth.Viewer, node reflect.Value) (rewrote bool) {
	shape := shapeOf(node.Elem().Type())
	for _, pair := range shape.exists {
		flag := node.Elem().Field(pair[0])
		if flag.IsNil() {
			continue
		}
		with := node.Elem().Field(pair[1])
		target := with.Type().Elem() // *ent.YWhereInput
		if e.RowFilter(v, strings.TrimSuffix(target.Elem().Name(), "WhereInput")) == nil {
			continue
		}
		rewrote = true
		wanted := flag.Elem().Bool()
		flag.Set(reflect.Zero(flag.Type()))
		visible := reflect.Append(reflect.Zero(with.Type()), reflect.New(target.Elem()))
		if wanted {
			with.Set(reflect.AppendSlice(with, visible))
			continue
		}
		// "has none" is "not (has one the viewer may see)", added beside
		// whatever else the node says.
		none := reflect.New(node.Elem().Type())
		inner := reflect.New(node.Elem().Type())
		inner.Elem().Field(pair[1]).Set(visible)
		none.Elem().Field(shape.not).Set(inner)
		and := node.Elem().Field(shape.and)
		and.Set(reflect.Append(and, none))
	}
	return rewrote
}

// addPredicate calls the generated AddPredicates(...predicate.X) of a where
// input with p converted to predicate.X, which is func(*sql.Selector).
func addPredicate(where reflect.Value, p func(*sql.Selector)) {
	add := where.MethodByName("AddPredicates")
	typed := reflect.ValueOf(p).Convert(add.Type().In(0).Elem())
	add.Call([]reflect.Value{typed})
}

// patientDataFilters returns the where inputs under root that search a
// patient's data in a subquery: the outermost patient-owned subquery of
// each branch, and root itself when countAll is set (a totalCount counts
// every matching row, not just the page returned). Those are the patients
// a filter reads without returning their rows.
func patientDataFilters(where any, countAll bool) []any {
	var found []any
	walkWhere(reflect.ValueOf(where), func(n whereNode) bool {
		if _, owned := ent.PatientColumn[n.typ]; owned && (n.subquery || (n.root && countAll)) {
			found = append(found, n.value.Interface())
			return false // its own subqueries are inside the probe of it
		}
		return true
	})
	return found
}
