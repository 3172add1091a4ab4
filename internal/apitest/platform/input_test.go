package platform

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
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

func TestRegisterAndUpdatePatient(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	var out struct {
		RegisterPatient struct {
			Patient    struct{ ID, Mrn, BirthDate, Country, Sex string }
			Duplicates []struct{ ID string }
		}
	}
	s.As("reception", register, patientInput(nil)).Decode(t, &out)
	p := out.RegisterPatient.Patient
	harness.Must(t, len(out.RegisterPatient.Duplicates) == 0, "a new person has no duplicates: %+v", out)
	harness.Must(t, strings.HasPrefix(p.ID, "pat_") && len(p.Mrn) == 9 && p.BirthDate == "1990-04-12" && p.Country == "KE", "%+v", p)

	update := `mutation($id: ID!, $in: UpdatePatientInput!) { updatePatient(id: $id, input: $in) { givenName email phone } }`
	var up struct {
		UpdatePatient struct {
			GivenName    string
			Email, Phone *string
		}
	}
	s.As("reception", update, map[string]any{"id": p.ID, "in": map[string]any{"email": nil, "phone": "+254 711 222 333"}}).Decode(t, &up)
	harness.Must(t, up.UpdatePatient.GivenName == "Amani" && up.UpdatePatient.Email == nil && *up.UpdatePatient.Phone == "+254 711 222 333",
		"omitted kept, null cleared, value set: %+v", up)

	r := s.As("reception", update, map[string]any{"id": p.ID, "in": map[string]any{"givenName": nil}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.givenName", "required field cleared: %s", harness.Describe(r))
	r = s.As("reception", update, map[string]any{"id": "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", "in": map[string]any{}})
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown patient: %s", harness.Describe(r))
}

// TestBadInputChangesNothing: every rejected registration names its field
// and leaves the patient count as it was.
func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	before := harness.PatientCount(t, s)
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
		r := s.As("reception", register, patientInput(c.overrides))
		harness.Must(t, r.HasCode("BAD_USER_INPUT"), "%v: %s", c.overrides, harness.Describe(r))
		harness.Must(t, r.Errors[0].Field() == c.field, "%v: field %q, want %q (%s)", c.overrides, r.Errors[0].Field(), c.field, r.Errors[0].Message)
	}
	harness.Must(t, harness.PatientCount(t, s) == before, "a rejected registration created a patient")
}

func TestBookingInputErrors(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	start, end := harness.Slot(2, 9)
	past, pastEnd := harness.Slot(-2, 9)
	cases := []struct {
		in    map[string]any
		field string
	}{
		{harness.BookingInput("nope", d.Doctor, start, end), "input.patientId"},
		{harness.BookingInput(d.Doctor, d.Doctor, start, end), "input.patientId"}, // a staff ID where a patient's goes
		{harness.BookingInput(d.Patients[1], "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", start, end), "input.providerId"},
		{harness.BookingInput(d.Patients[1], d.Labtech, start, end), "input.providerId"},
		{harness.BookingInput(d.Patients[1], d.Doctor, end, start), "input.endAt"},
		{harness.BookingInput(d.Patients[1], d.Doctor, past, pastEnd), "input.startAt"},
	}
	for _, c := range cases {
		r := s.As("reception", harness.BookMutation, c.in)
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == c.field, "%v: %s", c.in, harness.Describe(r))
	}
	var count struct{ Appointments struct{ TotalCount int } }
	s.As("admin", `{ appointments { totalCount } }`, nil).Decode(t, &count)
	harness.Must(t, count.Appointments.TotalCount == 5, "rejected bookings stored something: %d", count.Appointments.TotalCount)
}

func TestMalformedAndUnknownIDs(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	r := s.As("doctor", `{ node(id: "garbage") { id } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "id", "malformed: %s", harness.Describe(r))
	r = s.As("doctor", `{ node(id: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }`, nil)
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown: %s", harness.Describe(r))
	r = s.As("doctor", `{ node(id: "zzz_01ARZ3NDEKTSV4RRFFQ69G5FAV") { id } }`, nil)
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown type: %s", harness.Describe(r))

	var out struct {
		Node struct {
			Typename string `json:"__typename"`
			ID       string
		}
		Nodes []*struct{ ID string }
	}
	r = s.As("doctor", `query($id: ID!, $ids: [ID!]!) { node(id: $id) { __typename id } nodes(ids: $ids) { id } }`,
		map[string]any{"id": d.Patients[0], "ids": []string{d.Patients[1], "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", d.Doctor}})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "NOT_FOUND", "one missing node: %s", harness.Describe(r))
	_ = json.Unmarshal(r.Data, &out)
	harness.Must(t, out.Node.Typename == "Patient" && out.Node.ID == d.Patients[0], "node: %+v", out.Node)
	harness.Must(t, len(out.Nodes) == 3 && out.Nodes[0].ID == d.Patients[1] && out.Nodes[1] == nil && out.Nodes[2].ID == d.Doctor, "nodes: %s", r.Data)
}

func TestPageAndDepthLimits(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	r := s.As("doctor", `{ patients(first: 101) { totalCount } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "first", "oversized page: %s", harness.Describe(r))
	r = s.As("doctor", `{ patients(last: -1) { totalCount } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "last", "negative page: %s", harness.Describe(r))

	// Without first/last a connection returns the default page, not every row.
	var out struct {
		Patients struct {
			Edges    []any
			PageInfo struct{ HasNextPage bool }
		}
	}
	s2 := harness.NewServer(t, func(c *config.Config) { c.DefaultPageSize = 2 })
	s2.As("doctor", `{ patients { edges { cursor } pageInfo { hasNextPage } } }`, nil).Decode(t, &out)
	harness.Must(t, len(out.Patients.Edges) == 2 && out.Patients.PageInfo.HasNextPage, "default page: %+v", out)

	deep := `{ patients(first: 1) { edges { node { appointments(first: 1) { edges { node { patient { appointments(first: 1) { edges { node { patient { appointments(first: 1) { edges { node { id } } } } } } } } } } } } } } }`
	r = s.As("doctor", deep, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && strings.Contains(r.Errors[0].Message, "nested too deeply"), "deep query: %s", harness.Describe(r))

	// 100 patients × 100 appointments each is refused before it runs.
	r = s.As("doctor", `{ patients(first: 100) { edges { node { appointments(first: 100) { edges { node { id startAt } } } } } } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && strings.Contains(r.Errors[0].Message, "complexity"), "costly query: %s", harness.Describe(r))
	r = s.As("doctor", `{ patients(first: 100) { edges { node { appointments(first: 5) { edges { node { id startAt } } } } } } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "a reasonable page: %s", harness.Describe(r))

	// GraphiQL's introspection query nests deeper than the limit and must still work.
	r = s.Do("", introspectionQuery, nil)
	harness.Must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), `"queryType"`), "introspection: %s", harness.Describe(r)[:200])
}

func TestSyntaxErrorsAreBadInput(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	r := s.As("doctor", `{ patients(first: 1) { edges { node { id } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT"), "parse error: %s", harness.Describe(r))
	r = s.As("doctor", `{ patients { noSuchField } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT"), "unknown field: %s", harness.Describe(r))
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
