package apitest

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/policies"
)

// roleTable is the README's table of who may do what: operation → role → allowed.
type roleTable struct {
	roles []string
	cells map[string]map[string]bool
}

func readRoleTable(t *testing.T) roleTable {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatalf("README: %v", err)
	}
	defer f.Close()
	table := roleTable{cells: map[string]map[string]bool{}}
	inside := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "<!-- role-table:start -->":
			inside = true
			continue
		case line == "<!-- role-table:end -->":
			inside = false
		}
		if !inside || !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		cols := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cols {
			cols[i] = strings.Trim(strings.TrimSpace(cols[i]), "`")
		}
		if cols[0] == "operation" {
			table.roles = cols[1:]
			continue
		}
		row := map[string]bool{}
		for i, cell := range cols[1:] {
			switch cell {
			case "✓", "own":
				row[table.roles[i]] = true
			case "–":
				row[table.roles[i]] = false
			default:
				t.Fatalf("README role table: %s has cell %q for %s", cols[0], cell, table.roles[i])
			}
		}
		table.cells[cols[0]] = row
	}
	if len(table.cells) == 0 || len(table.roles) == 0 {
		t.Fatal("README has no role table between the role-table markers")
	}
	return table
}

// probes are documents that reach each root operation with harmless
// arguments: an allowed role gets past the guard and is stopped by
// validation (or succeeds without changing anything that matters); a denied
// one gets FORBIDDEN. Each selects only __typename, which is never guarded,
// so the operation's own decision is all that is tested.
var probes = map[string]string{
	"Query.me":                        `{ me { __typename } }`,
	"Query.node":                      `{ node(id: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV") { __typename } }`,
	"Query.nodes":                     `{ nodes(ids: []) { __typename } }`,
	"Query.patients":                  `{ patients(first: 1) { __typename } }`,
	"Query.appointments":              `{ appointments(first: 1) { __typename } }`,
	"Query.departments":               `{ departments(first: 1) { __typename } }`,
	"Query.staffs":                    `{ staffs(first: 1) { __typename } }`,
	"Query.users":                     `{ users(first: 1) { __typename } }`,
	"Query.apiKeys":                   `{ apiKeys(first: 1) { __typename } }`,
	"Query.auditEvents":               `{ auditEvents(first: 1) { __typename } }`,
	"Mutation.login":                  `mutation { login(input: {username: "matrix-nobody", password: "x"}) { __typename } }`,
	"Mutation.refreshToken":           `mutation { refreshToken(input: {refreshToken: "not-a-token"}) { __typename } }`,
	"Mutation.logout":                 `mutation { logout }`,
	"Mutation.changePassword":         `mutation { changePassword(input: {currentPassword: "wrong", newPassword: "another-long-password"}) }`,
	"Mutation.registerPatient":        `mutation { registerPatient(input: {givenName: "", familyName: "X", birthDate: "2000-01-01", sex: FEMALE}) { __typename } }`,
	"Mutation.updatePatient":          `mutation { updatePatient(id: "bad", input: {}) { __typename } }`,
	"Mutation.bookAppointment":        `mutation { bookAppointment(input: {patientId: "bad", providerId: "bad", startAt: "2030-01-01T09:00:00Z", endAt: "2030-01-01T10:00:00Z"}) { __typename } }`,
	"Mutation.cancelAppointment":      `mutation { cancelAppointment(id: "bad", input: {reason: "x"}) { __typename } }`,
	"Mutation.checkInAppointment":     `mutation { checkInAppointment(id: "bad") { __typename } }`,
	"Mutation.createApiKey":           `mutation { createApiKey(input: {name: "matrix", role: "no-such-role"}) { __typename } }`,
	"Mutation.revokeApiKey":           `mutation { revokeApiKey(id: "bad") { __typename } }`,
	"Subscription.appointmentChanged": "", // over WebSocket: see TestAppointmentChangedAuthorization and subscriptionAllowed below
}

// addProbes lets each domain's test file add the probes of its own
// operations, from an init function.
func addProbes(more map[string]string) {
	for op, doc := range more {
		if _, dup := probes[op]; dup {
			panic("two probes for " + op)
		}
		probes[op] = doc
	}
}

// credentials signs in as each role of the table: demo users, an API key
// for integrator, nothing for anonymous.
func credentials(t *testing.T, s *server, roles []string) map[string]string {
	creds := map[string]string{}
	for _, role := range roles {
		switch role {
		case "anonymous":
			creds[role] = ""
		case "integrator":
			var out struct {
				CreateAPIKey struct{ Secret string } `json:"createApiKey"`
			}
			s.as("admin", createKey, map[string]any{"in": map[string]any{"name": "matrix", "role": "integrator"}}).decode(t, &out)
			creds[role] = out.CreateAPIKey.Secret
		default:
			creds[role] = s.token(role)
		}
	}
	return creds
}

// TestRoleMatrixMatchesREADME checks every cell of the README's role table
// against the running server, and that the table covers every root field
// of the schema and agrees with the policy.
func TestRoleMatrixMatchesREADME(t *testing.T) {
	table := readRoleTable(t)
	s := newServer(t)

	var schema struct {
		Schema struct {
			QueryType, MutationType, SubscriptionType struct {
				Name   string
				Fields []struct{ Name string }
			}
		} `json:"__schema"`
	}
	s.do("", `{ __schema {
	  queryType { name fields { name } } mutationType { name fields { name } } subscriptionType { name fields { name } } } }`, nil).decode(t, &schema)
	var ops []string
	for _, typ := range []struct {
		Name   string
		Fields []struct{ Name string }
	}{schema.Schema.QueryType, schema.Schema.MutationType, schema.Schema.SubscriptionType} {
		for _, f := range typ.Fields {
			ops = append(ops, typ.Name+"."+f.Name)
		}
	}
	sort.Strings(ops)
	for _, op := range ops {
		if _, ok := table.cells[op]; !ok {
			t.Errorf("README role table has no row for %s", op)
		}
		if _, ok := probes[op]; !ok {
			t.Errorf("no probe for %s in the role matrix test", op)
		}
	}
	must(t, len(table.cells) == len(ops), "README table has %d rows, the schema %d root fields", len(table.cells), len(ops))

	enforcer, err := authz.NewEnforcer(policies.Model, policies.Policy)
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range table.roles {
		if role != authz.Anonymous && !enforcer.IsRole(role) {
			t.Errorf("README names role %s, which the policy does not define", role)
		}
	}
	for _, role := range enforcer.Roles() {
		found := false
		for _, r := range table.roles {
			found = found || r == role
		}
		if !found {
			t.Errorf("policy role %s has no column in the README table", role)
		}
	}

	creds := credentials(t, s, table.roles)
	// logout ends the session it runs in, so it goes last.
	sort.SliceStable(ops, func(i, j int) bool { return ops[j] == "Mutation.logout" && ops[i] != ops[j] })
	for _, op := range ops {
		for _, role := range table.roles {
			want := table.cells[op][role]
			var v *auth.Viewer
			if role != authz.Anonymous {
				v = &auth.Viewer{Roles: []string{role}}
			}
			if got := enforcer.Allows(v, op); got != want {
				t.Errorf("%s × %s: README says %v, policy says %v", op, role, want, got)
			}
			doc := probes[op]
			if doc == "" {
				continue
			}
			r := s.do(creds[role], doc, nil)
			denied := deniedByGuard(r, role)
			if denied == want {
				t.Errorf("%s × %s: README says allowed=%v, server answered %s", op, role, want, describe(r))
			}
			if !denied && r.hasCode("INTERNAL") {
				t.Errorf("%s × %s: internal error: %s", op, role, describe(r))
			}
		}
	}
}

var patientFields = []string{"id", "createdAt", "updatedAt", "mrn", "givenName", "familyName", "birthDate", "sex",
	"phone", "email", "addressLine", "city", "region", "postalCode", "country", "nationalID"}

// TestFieldLevelPolicy: for every role that may list patients, exactly the
// Patient fields the policy denies come back null with FORBIDDEN.
func TestFieldLevelPolicy(t *testing.T) {
	s := newServer(t)
	enforcer, _ := authz.NewEnforcer(policies.Model, policies.Policy)
	doc := fmt.Sprintf(`{ patients(first: 1) { edges { node { %s } } } }`, strings.Join(patientFields, " "))
	table := readRoleTable(t)
	creds := credentials(t, s, table.roles)
	checked := 0
	for _, role := range table.roles {
		if !table.cells["Query.patients"][role] {
			continue
		}
		r := s.do(creds[role], doc, nil)
		denied := map[string]bool{}
		for _, e := range r.Errors {
			must(t, e.code() == "FORBIDDEN", "%s: unexpected error %+v", role, e)
			denied[fmt.Sprint(e.Path[len(e.Path)-1])] = true
		}
		for _, f := range patientFields {
			want := !enforcer.Allows(&auth.Viewer{Roles: []string{role}}, "Patient."+f)
			if denied[f] != want {
				t.Errorf("%s × Patient.%s: policy denies=%v, server denied=%v", role, f, want, denied[f])
			}
		}
		must(t, strings.Contains(string(r.Data), `"mrn"`), "%s: the allowed fields still come back: %s", role, r.Data)
		checked++
	}
	must(t, checked >= 8, "only %d roles checked", checked)
}

// TestPatientRowScope: the patient user reaches their own record and
// nothing else, whether by list, node, nodes, edge or filter.
func TestPatientRowScope(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	own, other := d.patients[0], d.patients[1]

	var lists struct {
		Patients struct {
			TotalCount int
			Edges      []struct{ Node struct{ ID string } }
		}
		Appointments struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ID      string
					Patient struct{ ID string }
				}
			}
		}
	}
	s.as("patient", `{ patients { totalCount edges { node { id } } }
	  appointments { totalCount edges { node { id patient { id } } } } }`, nil).decode(t, &lists)
	must(t, lists.Patients.TotalCount == 1 && lists.Patients.Edges[0].Node.ID == own, "patients: %+v", lists.Patients)
	must(t, lists.Appointments.TotalCount == 2, "own appointments: %+v", lists.Appointments)
	for _, e := range lists.Appointments.Edges {
		must(t, e.Node.Patient.ID == own, "appointment of another patient: %+v", e)
	}

	r := s.as("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": other})
	must(t, r.hasCode("NOT_FOUND"), "another patient by node: %s", describe(r))
	r = s.as("patient", `query($id: ID!) { patients(where: {id: $id}) { totalCount } }`, map[string]any{"id": other})
	must(t, strings.Contains(string(r.Data), `"totalCount":0`), "another patient by filter: %s", describe(r))

	var theirs struct {
		Appointments struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.as("doctor", `query($p: ID!) { appointments(where: {patientID: $p}) { edges { node { id } } } }`,
		map[string]any{"p": other}).decode(t, &theirs)
	must(t, len(theirs.Appointments.Edges) > 0, "the other patient has appointments")
	r = s.as("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": theirs.Appointments.Edges[0].Node.ID})
	must(t, r.hasCode("NOT_FOUND"), "another patient's appointment by node: %s", describe(r))
	r = s.as("patient", `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{own, other}})
	must(t, strings.Contains(string(r.Data), own) && !strings.Contains(string(r.Data), other), "nodes: %s", describe(r))

	// Edges: from the own appointment to its provider and on to the
	// provider's other appointments is denied by the policy…
	r = s.as("patient", `{ appointments { edges { node { provider { appointments { edges { node { id } } } } } } } }`, nil)
	must(t, r.hasCode("FORBIDDEN"), "provider's appointments: %s", describe(r))
	// …and a role without patient access sees no patient rows even where
	// the policy lets it ask: hr may use node(), but no patient is found.
	r = s.as("hr", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": own})
	must(t, r.hasCode("NOT_FOUND"), "hr reaching a patient by node: %s", describe(r))
	r = s.as("patient", `mutation($id: ID!) { updatePatient(id: $id, input: {givenName: "Mallory"}) { id } }`, map[string]any{"id": own})
	must(t, len(r.Errors) > 0, "a patient cannot change their record through the staff mutation")
}

func init() {
	addProbes(map[string]string{
		"Query.rooms":            `{ rooms(first: 1) { __typename } }`,
		"Query.wards":            `{ wards(first: 1) { __typename } }`,
		"Query.beds":             `{ beds(first: 1) { __typename } }`,
		"Query.admissions":       `{ admissions(first: 1) { __typename } }`,
		"Query.encounters":       `{ encounters(first: 1) { __typename } }`,
		"Query.icd10Codes":       `{ icd10Codes(first: 1) { __typename } }`,
		"Query.medicationOrders": `{ medicationOrders(first: 1) { __typename } }`,
		"Query.referrals":        `{ referrals(first: 1) { __typename } }`,
	})
}
