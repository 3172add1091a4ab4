package platform

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
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
	f, err := os.Open(harness.RepoFile(t, "README.md"))
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
			case "✓", "own", "care":
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

// TestRoleMatrixMatchesREADME checks every cell of the README's role table
// against the running server, and that the table covers every root field
// of the schema and agrees with the policy.
func TestRoleMatrixMatchesREADME(t *testing.T) {
	t.Parallel()
	table := readRoleTable(t)
	probes := harness.AllProbes()
	s := harness.NewServer(t)

	var schema struct {
		Schema struct {
			QueryType, MutationType, SubscriptionType struct {
				Name   string
				Fields []struct{ Name string }
			}
		} `json:"__schema"`
	}
	s.Do("", `{ __schema {
	  queryType { name fields { name } } mutationType { name fields { name } } subscriptionType { name fields { name } } } }`, nil).Decode(t, &schema)
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
			t.Errorf("no probe for %s in harness.ProbeSets", op)
		}
	}
	for op := range probes {
		if !slices.Contains(ops, op) {
			t.Errorf("harness.ProbeSets has a probe for %s, which the schema does not have", op)
		}
	}
	harness.Must(t, len(table.cells) == len(ops), "README table has %d rows, the schema %d root fields", len(table.cells), len(ops))

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

	creds := harness.Credentials(t, s, table.roles)
	// logout ends the session it runs in, so it goes last.
	sort.SliceStable(ops, func(i, j int) bool { return ops[j] == "Mutation.logout" && ops[i] != ops[j] })
	// Each role's probes run in order, the roles side by side: probes
	// change nothing another role's answer depends on (they name no real
	// row), and one role after another took minutes under the race detector.
	var roles sync.WaitGroup
	for _, role := range table.roles {
		roles.Go(func() { probeRole(t, s, enforcer, table, probes, ops, role, creds[role]) })
	}
	roles.Wait()
}

// probeRole asks the policy and the server about each of ops as role, and
// reports where either disagrees with the README's table.
func probeRole(t *testing.T, s *harness.Server, enforcer *authz.Enforcer, table roleTable, probes map[string]string,
	ops []string, role, cred string) {
	for _, op := range ops {
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
		r, err := s.Send(nil, cred, doc, nil)
		if err != nil {
			t.Errorf("%s × %s: %v", op, role, err)
			return
		}
		denied := harness.DeniedByGuard(r, role)
		if denied == want {
			t.Errorf("%s × %s: README says allowed=%v, server answered %s", op, role, want, harness.Describe(r))
		}
		if !denied && r.HasCode("INTERNAL") {
			t.Errorf("%s × %s: internal error: %s", op, role, harness.Describe(r))
		}
	}
}

var patientFields = []string{"id", "createdAt", "updatedAt", "mrn", "givenName", "familyName", "birthDate", "sex",
	"phone", "email", "addressLine", "city", "region", "postalCode", "country", "nationalID"}

// TestFieldLevelPolicy: for every role that may list patients, exactly the
// Patient fields the policy denies come back null with FORBIDDEN.
func TestFieldLevelPolicy(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	enforcer, _ := authz.NewEnforcer(policies.Model, policies.Policy)
	doc := fmt.Sprintf(`{ patients(first: 1) { edges { node { %s } } } }`, strings.Join(patientFields, " "))
	table := readRoleTable(t)
	creds := harness.Credentials(t, s, table.roles)
	checked := 0
	for _, role := range table.roles {
		if !table.cells["Query.patients"][role] {
			continue
		}
		r := s.Do(creds[role], doc, nil)
		denied := map[string]bool{}
		for _, e := range r.Errors {
			harness.Must(t, e.Code() == "FORBIDDEN", "%s: unexpected error %+v", role, e)
			denied[fmt.Sprint(e.Path[len(e.Path)-1])] = true
		}
		for _, f := range patientFields {
			want := !enforcer.Allows(&auth.Viewer{Roles: []string{role}}, "Patient."+f)
			if denied[f] != want {
				t.Errorf("%s × Patient.%s: policy denies=%v, server denied=%v", role, f, want, denied[f])
			}
		}
		harness.Must(t, strings.Contains(string(r.Data), `"mrn"`), "%s: the allowed fields still come back: %s", role, r.Data)
		checked++
	}
	harness.Must(t, checked >= 8, "only %d roles checked", checked)
}

// TestPatientRowScope: the patient user reaches their own record and
// nothing else, whether by list, node, nodes, edge or filter.
func TestPatientRowScope(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	own, other := d.Patients[0], d.Patients[1]

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
	s.As("patient", `{ patients { totalCount edges { node { id } } }
	  appointments { totalCount edges { node { id patient { id } } } } }`, nil).Decode(t, &lists)
	harness.Must(t, lists.Patients.TotalCount == 1 && lists.Patients.Edges[0].Node.ID == own, "patients: %+v", lists.Patients)
	harness.Must(t, lists.Appointments.TotalCount == 2, "own appointments: %+v", lists.Appointments)
	for _, e := range lists.Appointments.Edges {
		harness.Must(t, e.Node.Patient.ID == own, "appointment of another patient: %+v", e)
	}

	r := s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": other})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient by node: %s", harness.Describe(r))
	r = s.As("patient", `query($id: ID!) { patients(where: {id: $id}) { totalCount } }`, map[string]any{"id": other})
	harness.Must(t, strings.Contains(string(r.Data), `"totalCount":0`), "another patient by filter: %s", harness.Describe(r))

	var theirs struct {
		Appointments struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("doctor", `query($p: ID!) { appointments(where: {patientID: $p}) { edges { node { id } } } }`,
		map[string]any{"p": other}).Decode(t, &theirs)
	harness.Must(t, len(theirs.Appointments.Edges) > 0, "the other patient has appointments")
	r = s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": theirs.Appointments.Edges[0].Node.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's appointment by node: %s", harness.Describe(r))
	r = s.As("patient", `query($ids: [ID!]!) { nodes(ids: $ids) { id } }`, map[string]any{"ids": []string{own, other}})
	harness.Must(t, strings.Contains(string(r.Data), own) && !strings.Contains(string(r.Data), other), "nodes: %s", harness.Describe(r))

	// Edges: from the own appointment to its provider and on to the
	// provider's other appointments is denied by the policy…
	r = s.As("patient", `{ appointments { edges { node { provider { appointments { edges { node { id } } } } } } } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "provider's appointments: %s", harness.Describe(r))
	// …and a role without patient access sees no patient rows even where
	// the policy lets it ask: hr may use node(), but no patient is found.
	r = s.As("hr", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": own})
	harness.Must(t, r.HasCode("NOT_FOUND"), "hr reaching a patient by node: %s", harness.Describe(r))
	r = s.As("patient", `mutation($id: ID!) { updatePatient(id: $id, input: {givenName: "Mallory"}) { id } }`, map[string]any{"id": own})
	harness.Must(t, len(r.Errors) > 0, "a patient cannot change their record through the staff mutation")
}
