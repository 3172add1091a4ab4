package authz

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// AdminRole is the role that keeps the power to change the policy: no
// change may take from it what viewing, proposing, approving and rolling
// back a change need.
const AdminRole = "admin"

// PolicyAdminOperations are the root operations changing the policy takes;
// PolicyAdminTypes the types they answer with, whose every field admin
// keeps too.
var (
	PolicyAdminOperations = []string{
		"Query.accessPolicy", "Query.policyProposals", "Query.previewPolicyChange",
		"Mutation.proposePolicyChange", "Mutation.approvePolicyChange",
		"Mutation.rejectPolicyChange", "Mutation.rollbackPolicy",
	}
	PolicyAdminTypes = []string{"AccessPolicy", "PolicyVersion", "PolicyProposal", "PolicyRoleChange"}
)

// specialObjects are the policy objects that are no GraphQL coordinate:
// capabilities the code asks about by name. A policy may name these and
// the schema's coordinates, nothing else, so that a typo is refused rather
// than granting nothing in silence.
var specialObjects = func() map[string]bool {
	m := map[string]bool{
		"Require.MFA":                true, // auth.RequireMFAObject
		AllPatientsObject:            true,
		AllPayslipsObject:            true,
		AllWorkforceObject:           true,
		"Rows.Roster.all":            true, // rostering.AnyDepartmentObject
		"Reports.allDepartments":     true, // reports.AllDepartmentsObject
		"Reports.managedDepartments": true, // reports.ManagedDepartmentsObject
		"Report.invoice":             true, // invoicereport.Object (PDF)
		"Report.labOrder":            true, // labreport.Object (PDF)
		"Report.payslip":             true, // payslipreport.Object (PDF)
		"Ingest.hl7v2":               true, // labhl7.PolicyObject (POST /hl7/v2, MLLP)
	}
	for _, rule := range draftRows {
		m[DraftsObject(rule.drafts)] = true
	}
	return m
}()

// SpecialObjects lists the policy objects that are no GraphQL coordinate, sorted.
func SpecialObjects() []string {
	out := make([]string, 0, len(specialObjects))
	for o := range specialObjects {
		out = append(out, o)
	}
	sort.Strings(out)
	return out
}

// KnownObject reports whether a policy may name object given schema: a
// field of an object type ("Patient.familyName"), a type's every field
// ("Patient.*"), everything ("*"), or a special object. A trailing * after
// a prefix ("Query.patient*") must cover at least one real coordinate.
func KnownObject(schema *ast.Schema, object string) bool {
	if object == "*" || specialObjects[object] {
		return true
	}
	typ, field, ok := strings.Cut(object, ".")
	if !ok {
		return false
	}
	def := schema.Types[typ]
	if def == nil || def.Kind != ast.Object || strings.HasPrefix(typ, "__") {
		return false
	}
	if prefix, wild := strings.CutSuffix(field, "*"); wild {
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, prefix) {
				return true
			}
		}
		return false
	}
	return def.Fields.ForName(field) != nil
}

// PolicyLine is one rule of a policy, in the canonical spelling lines are
// compared in: "p, role, object, allow" or "g, role, inherited-role".
type PolicyLine struct {
	Kind   string // "p" or "g"
	Fields []string
}

func (l PolicyLine) String() string { return l.Kind + ", " + strings.Join(l.Fields, ", ") }

// ParseLine reads one policy line, checking its shape alone.
func ParseLine(text string) (PolicyLine, error) {
	parts := strings.Split(text, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
		if parts[i] == "" {
			return PolicyLine{}, fmt.Errorf("%q has an empty field", text)
		}
	}
	l := PolicyLine{Kind: parts[0], Fields: parts[1:]}
	switch {
	case l.Kind == "p" && len(l.Fields) == 3:
		if eft := l.Fields[2]; eft != "allow" && eft != "deny" {
			return l, fmt.Errorf("%q: the effect must be allow or deny, not %q", text, eft)
		}
	case l.Kind == "p":
		return l, fmt.Errorf("%q: a p line is p, role, object, allow|deny", text)
	case l.Kind == "g" && len(l.Fields) == 2:
		if l.Fields[0] == l.Fields[1] {
			return l, fmt.Errorf("%q: a role cannot inherit itself", text)
		}
	case l.Kind == "g":
		return l, fmt.Errorf("%q: a g line is g, role, inherited-role", text)
	default:
		return l, fmt.Errorf("%q: a line starts with p (a rule) or g (a grant of a role)", text)
	}
	for _, f := range l.Fields {
		if strings.ContainsAny(f, " \t\"") {
			return l, fmt.Errorf("%q: %q may not contain spaces or quotes", text, f)
		}
	}
	roles := l.Fields[:1]
	if l.Kind == "g" {
		roles = l.Fields
	}
	for _, r := range roles {
		// Plain names only: "nurse" followed by an invisible character is
		// another role that reads as nurse.
		if !roleName.MatchString(r) {
			return l, fmt.Errorf("%q: a role is lower-case letters, digits and _, starting with a letter, not %q", text, r)
		}
	}
	return l, nil
}

var roleName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// BroadGrant reports whether an allow line's object covers a whole root
// type, everything, or a prefix of names: such a grant would also give
// every operation added to the schema later, unreviewed.
func BroadGrant(l PolicyLine) bool {
	if l.Kind != "p" || l.Fields[2] != "allow" {
		return false
	}
	object := l.Fields[1]
	if object == "*" {
		return true
	}
	typ, field, _ := strings.Cut(object, ".")
	return strings.HasSuffix(field, "*") && (field != "*" || typ == "Query" || typ == "Mutation" || typ == "Subscription")
}

// PolicyLines splits a policy text into its lines, skipping comments and
// blank lines, each in canonical spelling; errors name the line number.
func PolicyLines(text string) ([]string, []error) {
	var lines []string
	var errs []error
	for i, raw := range strings.Split(text, "\n") {
		raw = strings.TrimSpace(raw)
		if raw == "" || strings.HasPrefix(raw, "#") {
			continue
		}
		l, err := ParseLine(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		lines = append(lines, l.String())
	}
	return lines, errs
}

// CheckPolicy runs the checks every policy must pass, offline: each line
// parses, names only known objects, grants only roles that exist, Casbin
// loads it, and admin keeps what changing the policy takes. It returns
// the loaded enforcer when there is no problem.
func CheckPolicy(modelText, text string, schema *ast.Schema) (*Enforcer, []error) {
	lines, errs := PolicyLines(text)
	// A line given twice is allowed, as Casbin allows it (the built-in
	// files repeat some grants domain by domain); removing it removes both.
	subjects := map[string]bool{}
	for _, s := range lines {
		l, _ := ParseLine(s)
		subjects[l.Fields[0]] = true
	}
	for _, s := range lines {
		l, _ := ParseLine(s)
		switch l.Kind {
		case "p":
			if !KnownObject(schema, l.Fields[1]) {
				errs = append(errs, fmt.Errorf("%q: %s is no GraphQL coordinate (Type.field) and no object the server asks about", s, l.Fields[1]))
			}
		case "g":
			if !subjects[l.Fields[1]] {
				errs = append(errs, fmt.Errorf("%q: role %s has no rule and inherits nothing: no such role", s, l.Fields[1]))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	e, err := NewEnforcer(modelText, strings.Join(lines, "\n"))
	if err != nil {
		return nil, []error{err}
	}
	for _, object := range PolicyAdminObjects(schema) {
		if !e.RoleAllows(AdminRole, object) {
			errs = append(errs, fmt.Errorf("the admin role would lose %s, which changing the policy back needs", object))
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return e, nil
}

// PolicyAdminObjects lists every object admin must keep: the policy
// operations and every field of what they answer with.
func PolicyAdminObjects(schema *ast.Schema) []string {
	out := append([]string(nil), PolicyAdminOperations...)
	for _, typ := range PolicyAdminTypes {
		if def := schema.Types[typ]; def != nil {
			for _, f := range def.Fields {
				out = append(out, typ+"."+f.Name)
			}
		}
	}
	return out
}

// RootOperations lists the coordinates of the schema's root operations,
// which a change's preview compares role by role.
func RootOperations(schema *ast.Schema) []string {
	var out []string
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation, schema.Subscription} {
		if root == nil {
			continue
		}
		for _, f := range root.Fields {
			if !strings.HasPrefix(f.Name, "__") {
				out = append(out, root.Name+"."+f.Name)
			}
		}
	}
	return out
}

// ImpliedRoles returns role and every role it inherits, directly or not.
func (e *Enforcer) ImpliedRoles(role string) []string {
	roles, err := e.live.Load().casbin.GetImplicitRolesForUser(role)
	if err != nil {
		return []string{role}
	}
	return append([]string{role}, roles...)
}

// Subjects lists every role the policy names, building blocks included.
func (e *Enforcer) Subjects() map[string]bool {
	out := map[string]bool{}
	p := e.live.Load()
	if rules, err := p.casbin.GetPolicy(); err == nil {
		for _, r := range rules {
			out[r[0]] = true
		}
	}
	if grants, err := p.casbin.GetGroupingPolicy(); err == nil {
		for _, g := range grants {
			out[g[0]], out[g[1]] = true, true
		}
	}
	return out
}
