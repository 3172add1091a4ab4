package apitest

import (
	"strings"
	"testing"
)

const register = `mutation($in: RegisterPatientInput!) {
  registerPatient(input: $in) { patient { id mrn givenName familyName birthDate sex country email } duplicates { id } }
}`

func patientInput(overrides map[string]any) map[string]any {
	in := map[string]any{"givenName": "Amani", "familyName": "Mutua", "birthDate": "1990-04-12", "sex": "FEMALE",
		"country": "ke", "email": "amani@example.org"}
	for k, v := range overrides {
		if v == nil {
			delete(in, k)
		} else {
			in[k] = v
		}
	}
	return map[string]any{"in": in}
}

func patientCount(t *testing.T, s *server) int {
	var out struct{ Patients struct{ TotalCount int } }
	s.as("admin", `{ patients { totalCount } }`, nil).decode(t, &out)
	return out.Patients.TotalCount
}

func TestRegisterAndUpdatePatient(t *testing.T) {
	s := newServer(t)
	var out struct {
		RegisterPatient struct {
			Patient    struct{ ID, Mrn, BirthDate, Country, Sex string }
			Duplicates []struct{ ID string }
		}
	}
	s.as("reception", register, patientInput(nil)).decode(t, &out)
	p := out.RegisterPatient.Patient
	must(t, len(out.RegisterPatient.Duplicates) == 0, "a new person has no duplicates: %+v", out)
	must(t, strings.HasPrefix(p.ID, "pat_") && len(p.Mrn) == 9 && p.BirthDate == "1990-04-12" && p.Country == "KE", "%+v", p)

	update := `mutation($id: ID!, $in: UpdatePatientInput!) { updatePatient(id: $id, input: $in) { givenName email phone } }`
	var up struct {
		UpdatePatient struct {
			GivenName    string
			Email, Phone *string
		}
	}
	s.as("reception", update, map[string]any{"id": p.ID, "in": map[string]any{"email": nil, "phone": "+254 711 222 333"}}).decode(t, &up)
	must(t, up.UpdatePatient.GivenName == "Amani" && up.UpdatePatient.Email == nil && *up.UpdatePatient.Phone == "+254 711 222 333",
		"omitted kept, null cleared, value set: %+v", up)

	r := s.as("reception", update, map[string]any{"id": p.ID, "in": map[string]any{"givenName": nil}})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.givenName", "required field cleared: %s", describe(r))
	r = s.as("reception", update, map[string]any{"id": "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", "in": map[string]any{}})
	must(t, r.hasCode("NOT_FOUND"), "unknown patient: %s", describe(r))
}

// TestBadInputChangesNothing: every rejected registration names its field
// and leaves the patient count as it was.
func TestBadInputChangesNothing(t *testing.T) {
	s := newServer(t)
	before := patientCount(t, s)
	cases := []struct {
		overrides map[string]any
		field     string
	}{
		{map[string]any{"givenName": "  "}, "input.givenName"},
		{map[string]any{"familyName": strings.Repeat("x", 101)}, "input.familyName"},
		{map[string]any{"birthDate": "2999-01-01"}, "input.birthDate"},
		{map[string]any{"email": "not-an-email"}, "input.email"},
		{map[string]any{"country": "Kenya"}, "input.country"},
		{map[string]any{"phone": "call me"}, "input.phone"},
		{map[string]any{"nationalId": "!!"}, "input.nationalId"},
		{map[string]any{"preferredLanguage": "Kiswahili"}, "input.preferredLanguage"},
		{map[string]any{"contacts": []any{map[string]any{"name": "Baraka", "relationship": "spouse"}}}, "input.contacts[0].phone"},
		{map[string]any{"identifiers": []any{map[string]any{"system": "NHIF", "value": "1"}, map[string]any{"system": "", "value": "2"}}},
			"input.identifiers[1].system"},
		{map[string]any{"insurancePolicies": []any{map[string]any{"payer": "NHIF", "memberNumber": "1", "validFrom": "2025-01-01",
			"validTo": "2024-12-31"}}}, "input.insurancePolicies[0].validTo"},
		// Rejected by GraphQL coercion before any resolver runs.
		{map[string]any{"birthDate": "12/04/1990"}, "input.birthDate"},
		{map[string]any{"sex": "YES"}, "in.sex"},
		{map[string]any{"givenName": nil}, "in.givenName"},
	}
	for _, c := range cases {
		r := s.as("reception", register, patientInput(c.overrides))
		must(t, r.hasCode("BAD_USER_INPUT"), "%v: %s", c.overrides, describe(r))
		must(t, r.Errors[0].field() == c.field, "%v: field %q, want %q (%s)", c.overrides, r.Errors[0].field(), c.field, r.Errors[0].Message)
	}
	must(t, patientCount(t, s) == before, "a rejected registration created a patient")
}

func TestBookingInputErrors(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	start, end := slot(2, 9)
	past, pastEnd := slot(-2, 9)
	cases := []struct {
		in    map[string]any
		field string
	}{
		{bookingInput("nope", d.doctor, start, end), "input.patientId"},
		{bookingInput(d.doctor, d.doctor, start, end), "input.patientId"}, // a staff ID where a patient's goes
		{bookingInput(d.patients[1], "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", start, end), "input.providerId"},
		{bookingInput(d.patients[1], d.labtech, start, end), "input.providerId"},
		{bookingInput(d.patients[1], d.doctor, end, start), "input.endAt"},
		{bookingInput(d.patients[1], d.doctor, past, pastEnd), "input.startAt"},
	}
	for _, c := range cases {
		r := s.as("reception", bookMutation, c.in)
		must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == c.field, "%v: %s", c.in, describe(r))
	}
	var count struct{ Appointments struct{ TotalCount int } }
	s.as("admin", `{ appointments { totalCount } }`, nil).decode(t, &count)
	must(t, count.Appointments.TotalCount == 5, "rejected bookings stored something: %d", count.Appointments.TotalCount)
}

func TestMalformedAndUnknownIDs(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	r := s.as("doctor", `{ node(id: "garbage") { id } }`, nil)
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "id", "malformed: %s", describe(r))
	r = s.as("doctor", `{ node(id: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }`, nil)
	must(t, r.hasCode("NOT_FOUND"), "unknown: %s", describe(r))
	r = s.as("doctor", `{ node(id: "zzz_01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }`, nil)
	must(t, r.hasCode("NOT_FOUND"), "unknown type: %s", describe(r))

	var out struct {
		Node struct {
			Typename string `json:"__typename"`
			ID       string
		}
		Nodes []*struct{ ID string }
	}
	r = s.as("doctor", `query($id: ID!, $ids: [ID!]!) { node(id: $id) { __typename id } nodes(ids: $ids) { id } }`,
		map[string]any{"id": d.patients[0], "ids": []string{d.patients[1], "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", d.doctor}})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "NOT_FOUND", "one missing node: %s", describe(r))
	_ = jsonUnmarshal(r.Data, &out)
	must(t, out.Node.Typename == "Patient" && out.Node.ID == d.patients[0], "node: %+v", out.Node)
	must(t, len(out.Nodes) == 3 && out.Nodes[0].ID == d.patients[1] && out.Nodes[1] == nil && out.Nodes[2].ID == d.doctor, "nodes: %s", r.Data)
}

func TestPageAndDepthLimits(t *testing.T) {
	s := newServer(t)
	r := s.as("doctor", `{ patients(first: 101) { totalCount } }`, nil)
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "first", "oversized page: %s", describe(r))
	r = s.as("doctor", `{ patients(last: -1) { totalCount } }`, nil)
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "last", "negative page: %s", describe(r))

	// Without first/last a connection returns the default page, not every row.
	var out struct {
		Patients struct {
			Edges    []any
			PageInfo struct{ HasNextPage bool }
		}
	}
	s2 := newServer(t, func(c *configT) { c.DefaultPageSize = 2 })
	s2.as("doctor", `{ patients { edges { cursor } pageInfo { hasNextPage } } }`, nil).decode(t, &out)
	must(t, len(out.Patients.Edges) == 2 && out.Patients.PageInfo.HasNextPage, "default page: %+v", out)

	deep := `{ patients(first: 1) { edges { node { appointments(first: 1) { edges { node { patient { appointments(first: 1) { edges { node { patient { appointments(first: 1) { edges { node { id } } } } } } } } } } } } } } }`
	r = s.as("doctor", deep, nil)
	must(t, r.hasCode("BAD_USER_INPUT") && strings.Contains(r.Errors[0].Message, "nested too deeply"), "deep query: %s", describe(r))

	// 100 patients × 100 appointments each is refused before it runs.
	r = s.as("doctor", `{ patients(first: 100) { edges { node { appointments(first: 100) { edges { node { id startAt } } } } } } }`, nil)
	must(t, r.hasCode("BAD_USER_INPUT") && strings.Contains(r.Errors[0].Message, "complexity"), "costly query: %s", describe(r))
	r = s.as("doctor", `{ patients(first: 100) { edges { node { appointments(first: 5) { edges { node { id startAt } } } } } } }`, nil)
	must(t, len(r.Errors) == 0, "a reasonable page: %s", describe(r))

	// GraphiQL's introspection query nests deeper than the limit and must still work.
	r = s.do("", introspectionQuery, nil)
	must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), `"queryType"`), "introspection: %s", describe(r)[:200])
}

func TestSyntaxErrorsAreBadInput(t *testing.T) {
	s := newServer(t)
	r := s.as("doctor", `{ patients(first: 1) { edges { node { id } }`, nil)
	must(t, r.hasCode("BAD_USER_INPUT"), "parse error: %s", describe(r))
	r = s.as("doctor", `{ patients { noSuchField } }`, nil)
	must(t, r.hasCode("BAD_USER_INPUT"), "unknown field: %s", describe(r))
}

const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }`
