package authz

import (
	"strings"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/auth"
)

// RoleTable renders, as a Markdown table, which role may call each root
// operation of schema: "✓", "own" where row scope keeps the role to its own
// patient record, "care" where it keeps it to the patients its member of
// staff has a care relationship with, "–" where the policy denies it. It is computed from the
// policy, so the README's copy is generated (hmis roles) rather than
// written by hand and can never say something the policy does not.
//
// Rows follow the schema's order (Query, Mutation, Subscription); columns
// are the assignable roles, sorted, then anonymous.
func (e *Enforcer) RoleTable(schema *ast.Schema) string {
	roles := append(e.Roles(), Anonymous)
	var b strings.Builder
	b.WriteString("| operation |")
	for _, r := range roles {
		b.WriteString(" " + r + " |")
	}
	b.WriteString("\n|---|")
	b.WriteString(strings.Repeat(":-:|", len(roles)))
	b.WriteByte('\n')
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		if root == nil {
			continue
		}
		for _, f := range root.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			op := root.Name + "." + f.Name
			b.WriteString("| `" + op + "` |")
			for _, role := range roles {
				b.WriteString(" " + e.cell(schema, role, op, f.Type) + " |")
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func (e *Enforcer) cell(schema *ast.Schema, role, op string, result *ast.Type) string {
	if !e.RoleAllows(role, op) {
		return "–"
	}
	if role == Anonymous || !carriesPatientData(schema, result) {
		return "✓"
	}
	switch e.ScopeOf(&auth.Viewer{Roles: []string{role}, PatientID: "own", StaffID: "own"}) {
	case OwnRecord:
		return "own"
	case CarePatients:
		return "care"
	}
	return "✓"
}

// carriesPatientData reports whether an operation's result is patient data
// that row scope filters: an entity with a patient column, a connection of
// one, or an event (a type that is no node) holding such an entity.
func carriesPatientData(schema *ast.Schema, t *ast.Type) bool {
	def := schema.Types[t.Name()]
	if def == nil {
		return false
	}
	if _, ok := ent.PatientColumn[def.Name]; ok {
		return true
	}
	if edges := def.Fields.ForName("edges"); edges != nil && strings.HasSuffix(def.Name, "Connection") {
		if edge := schema.Types[edges.Type.Name()]; edge != nil {
			if node := edge.Fields.ForName("node"); node != nil {
				return carriesPatientData(schema, node.Type)
			}
		}
	}
	if def.Kind != ast.Object || strings.HasSuffix(def.Name, "Connection") {
		return false
	}
	for _, iface := range def.Interfaces {
		if iface == "Node" {
			return false // an entity of its own, such as User, whose links are not its content
		}
	}
	// An event: it carries the patient data it is about.
	for _, f := range def.Fields {
		if _, ok := ent.PatientColumn[f.Type.Name()]; ok {
			return true
		}
	}
	return false
}
