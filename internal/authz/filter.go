package authz

import (
	"fmt"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// A filter or an ordering is a read: asking for the patients whose
// diagnosis starts with "B" tells the asker as much as reading the
// diagnosis would. filterIndex knows, for every input field of every
// generated where input and every value of every order-field enum, which
// object field it reads, so the guard can ask the policy about it exactly
// as it asks about the field itself.

// filterField is what one input field of a where input reads.
type filterField struct {
	// coordinate is the object field read: "Problem.icd10Code", or the
	// edge "Patient.problems" for hasProblems and hasProblemsWith. Empty
	// for not, and, or, which read nothing of their own.
	coordinate string
	// nested is the where input a not, and, or or has…With holds.
	nested string
	// rows is, for hasX and hasXWith, the id of the entity the edge leads
	// to ("Problem.id"): asking whether a patient has problems reads
	// problems, as the problems field would (see FieldGuard.rowsOf).
	rows string
}

type filterIndex struct {
	// where maps a where-input type to its input fields.
	where map[string]map[string]filterField
	// order maps an order input type ("PatientOrder") to the coordinate
	// each value of its field enum sorts by.
	order map[string]map[string]string
}

// predicateSuffixes are the operators entgql appends to a field's name in
// a where input, as in familyNameHasPrefix or birthDateGTE.
var predicateSuffixes = []string{"", "NEQ", "In", "NotIn", "GT", "GTE", "LT", "LTE", "Contains", "HasPrefix",
	"HasSuffix", "EqualFold", "ContainsFold", "IsNil", "NotNil"}

// newFilterIndex reads the schema once. Every input field must map to an
// object field: one that does not is an error at start-up, so a new entity
// or filter can never be left unguarded by accident.
func newFilterIndex(schema *ast.Schema) (*filterIndex, error) {
	idx := &filterIndex{where: map[string]map[string]filterField{}, order: map[string]map[string]string{}}
	var problems []string
	for name, def := range schema.Types {
		if def.Kind != ast.InputObject {
			continue
		}
		switch {
		case strings.HasSuffix(name, "WhereInput"):
			object := schema.Types[strings.TrimSuffix(name, "WhereInput")]
			if object == nil {
				problems = append(problems, name+": no object type "+strings.TrimSuffix(name, "WhereInput"))
				continue
			}
			fields := map[string]filterField{}
			for _, f := range def.Fields {
				ff, ok := whereField(object, f)
				if !ok {
					problems = append(problems, name+"."+f.Name+": reads no field of "+object.Name)
					continue
				}
				fields[f.Name] = ff
			}
			idx.where[name] = fields
		case strings.HasSuffix(name, "Order") && def.Fields.ForName("field") != nil:
			object := schema.Types[strings.TrimSuffix(name, "Order")]
			enum := schema.Types[def.Fields.ForName("field").Type.Name()]
			if object == nil || enum == nil || enum.Kind != ast.Enum {
				continue // not an entgql ordering
			}
			values := map[string]string{}
			for _, v := range enum.EnumValues {
				field := orderedField(object, v.Name)
				if field == "" {
					problems = append(problems, enum.Name+"."+v.Name+": orders by no field of "+object.Name)
					continue
				}
				values[v.Name] = object.Name + "." + field
			}
			idx.order[name] = values
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("filters the policy cannot guard: %s", strings.Join(problems, "; "))
	}
	return idx, nil
}

func whereField(object *ast.Definition, f *ast.FieldDefinition) (filterField, bool) {
	switch f.Name {
	case "not", "and", "or":
		return filterField{nested: f.Type.Name()}, true
	}
	// The longest field name that leaves an operator: mergedIntoIDIsNil
	// reads mergedIntoID, not mergedInto.
	best := ""
	for _, field := range object.Fields {
		if len(field.Name) > len(best) && strings.HasPrefix(f.Name, field.Name) && isPredicateSuffix(f.Name[len(field.Name):]) &&
			!isEdgeFilterOf(f.Name, field.Name) {
			best = field.Name
		}
	}
	if best != "" {
		return filterField{coordinate: object.Name + "." + best}, true
	}
	if rest, ok := strings.CutPrefix(f.Name, "has"); ok && rest != "" {
		with := strings.HasSuffix(rest, "With")
		edge := lowerFirst(strings.TrimSuffix(rest, "With"))
		if field := object.Fields.ForName(edge); field != nil {
			ff := filterField{coordinate: object.Name + "." + edge,
				rows: strings.TrimSuffix(field.Type.Name(), "Connection") + ".id"}
			if with {
				ff.nested = f.Type.Name()
			}
			return ff, true
		}
	}
	return filterField{}, false
}

// isEdgeFilterOf keeps "hasPatient" from reading as an operator on a field
// named "has".
func isEdgeFilterOf(input, field string) bool { return field == "has" && input != "has" }

func isPredicateSuffix(s string) bool {
	for _, suffix := range predicateSuffixes {
		if s == suffix {
			return true
		}
	}
	return false
}

// orderedField maps an order-field enum value to the field it sorts by:
// FAMILY_NAME → familyName, and entgql's APPOINTMENTS_COUNT → appointments.
func orderedField(object *ast.Definition, value string) string {
	for _, candidate := range []string{value, strings.TrimSuffix(value, "_COUNT")} {
		if name := camelFromUpperSnake(candidate); object.Fields.ForName(name) != nil {
			return name
		}
	}
	return ""
}

func camelFromUpperSnake(s string) string {
	parts := strings.Split(strings.ToLower(s), "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToLower(s[:1]) + s[1:]
}

// filterRead is one object field a filter or ordering reads, at the path
// of input fields that names it.
type filterRead struct {
	coordinate string
	path       string
}

// reads lists what value, an argument of type typ (a where input or an
// order input, or a list of either), reads.
func (idx *filterIndex) reads(typ string, value any, path string, out []filterRead) []filterRead {
	switch v := value.(type) {
	case []any:
		for i, item := range v {
			out = idx.reads(typ, item, fmt.Sprintf("%s[%d]", path, i), out)
		}
		return out
	case map[string]any:
		if fields, ok := idx.where[typ]; ok {
			for name, inner := range v {
				if inner == nil {
					continue
				}
				ff := fields[name]
				if ff.coordinate != "" {
					out = append(out, filterRead{coordinate: ff.coordinate, path: path + "." + name})
				}
				if ff.rows != "" {
					out = append(out, filterRead{coordinate: ff.rows, path: path + "." + name})
				}
				if ff.nested != "" {
					out = idx.reads(ff.nested, inner, path+"."+name, out)
				}
			}
			return out
		}
		if values, ok := idx.order[typ]; ok {
			if field, ok := v["field"].(string); ok {
				if coordinate, ok := values[field]; ok {
					out = append(out, filterRead{coordinate: coordinate, path: path + ".field"})
				}
			}
		}
	}
	return out
}

// emptyNested returns the path of the first where input nested in value
// (under not, and, or or a has…With) that names no condition, "" if none:
// ent cannot build a predicate from one. The argument itself may be empty.
func (idx *filterIndex) emptyNested(typ string, value any, path string, nested bool) string {
	switch v := value.(type) {
	case []any:
		for i, item := range v {
			if p := idx.emptyNested(typ, item, fmt.Sprintf("%s[%d]", path, i), nested); p != "" {
				return p
			}
		}
	case map[string]any:
		fields, ok := idx.where[typ]
		if !ok {
			return ""
		}
		if nested && len(v) == 0 {
			return path
		}
		for name, inner := range v {
			if ff := fields[name]; ff.nested != "" && inner != nil {
				if p := idx.emptyNested(ff.nested, inner, path+"."+name, true); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

// guards reports whether an argument of type typ is a filter or ordering
// the index knows.
func (idx *filterIndex) guards(typ string) bool {
	_, where := idx.where[typ]
	_, order := idx.order[typ]
	return where || order
}
