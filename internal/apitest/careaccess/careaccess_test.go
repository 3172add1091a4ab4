// Package careaccess tests care-relationship row scope, break-the-glass
// and the patient's access log over HTTP.
package careaccess

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

const breakGlassMutation = `mutation($in: BreakGlassInput!) {
  breakGlass(input: $in) { id reason createdAt expiresAt patient { id } staff { id } }
}`

type accessOut struct {
	ID, Reason, CreatedAt, ExpiresAt string
	Patient                          struct{ ID string }
	Staff                            struct{ ID string }
}

// unknownPatient registers a patient no doctor has a relationship with,
// booked with the nurse (who records an allergy), and gives them an app
// login, "glass". It returns the patient's ID and MRN.
func unknownPatient(t *testing.T, s *harness.Server, d harness.DemoIDs) (id, mrn string) {
	t.Helper()
	id = s.RegisterPatient("Glass", "Unknown")
	s.CareFor(id, d.Nurse)
	s.As("nurse", `mutation($in: RecordAllergyInput!) { recordAllergy(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"patientId": id, "substance": "Latex", "category": "ENVIRONMENT", "severity": "MILD"}}).Decode(t, &struct{}{})
	var p struct{ Node struct{ Mrn string } }
	s.As("reception", `query($id: ID!) { node(id: $id) { ... on Patient { mrn } } }`, map[string]any{"id": id}).Decode(t, &p)
	hash, err := auth.HashPassword(harness.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	s.App.Store.Client.User.Create().SetUsername("glass").SetPasswordHash(hash).SetRoles([]string{"patient"}).
		SetPatientID(id).ExecX(auth.SystemContext(context.Background()))
	return id, p.Node.Mrn
}

// hidden asserts that the doctor finds nothing of the patient: not by ID,
// not in a list, a filter, a count, or nested under the nurse who cares
// for them.
func hidden(t *testing.T, s *harness.Server, d harness.DemoIDs, id, mrn string) {
	t.Helper()
	r := s.As("doctor", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
	harness.Must(t, r.HasCode("NOT_FOUND"), "node: %s", harness.Describe(r))
	var out struct {
		ByMRN struct{ TotalCount int } `json:"byMRN"`
		All   struct {
			Edges []struct{ Node struct{ ID string } }
		}
		Appts    struct{ TotalCount int }
		Allergic struct{ TotalCount int }
		Nurse    struct {
			Appointments struct {
				Edges []struct {
					Node struct{ Patient struct{ ID string } }
				}
			}
		}
	}
	s.As("doctor", `query($mrn: String!, $id: ID!, $nurse: ID!) {
	  byMRN: patients(where: {mrn: $mrn}) { totalCount }
	  all: patients(first: 100) { edges { node { id } } }
	  appts: appointments(where: {hasPatientWith: {id: $id}}) { totalCount }
	  allergic: patients(where: {hasAllergiesWith: {substance: "Latex"}}) { totalCount }
	  nurse: node(id: $nurse) { ... on Staff { appointments(first: 100) { edges { node { patient { id } } } } } }
	}`, map[string]any{"mrn": mrn, "id": id, "nurse": d.Nurse}).Decode(t, &out)
	harness.Must(t, out.ByMRN.TotalCount == 0 && out.Appts.TotalCount == 0 && out.Allergic.TotalCount == 0,
		"counts leak the patient: %+v", out)
	for _, e := range out.All.Edges {
		harness.Must(t, e.Node.ID != id, "the patient is listed")
	}
	for _, e := range out.Nurse.Appointments.Edges {
		harness.Must(t, e.Node.Patient.ID != id, "the patient shows under the nurse's appointments")
	}
}

func TestDoctorWithoutRelationshipSeesOnlyTheHeaderUntilBreakGlass(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	id, mrn := unknownPatient(t, s, d)

	hidden(t, s, d, id, mrn)
	// The nurse, booked with the patient, reads the record.
	var nurse struct {
		Node struct{ Allergies []struct{ Substance string } }
	}
	s.As("nurse", `query($id: ID!) { node(id: $id) { ... on Patient { allergies { substance } } } }`, map[string]any{"id": id}).Decode(t, &nurse)
	harness.Must(t, len(nurse.Node.Allergies) == 1, "the nurse: %+v", nurse)

	// The header identifies the patient, by MRN or ID, and nothing more.
	var head struct {
		ByMRN struct{ ID, Mrn, GivenName, FamilyName, BirthDate, Sex string } `json:"byMRN"`
		ByID  struct{ ID string }                                             `json:"byID"`
		None  *struct{ ID string }
	}
	s.As("doctor", `query($mrn: String!, $id: ID!) {
	  byMRN: patientHeader(mrn: $mrn) { id mrn givenName familyName birthDate sex }
	  byID: patientHeader(id: $id) { id }
	  none: patientHeader(mrn: "000000000") { id }
	}`, map[string]any{"mrn": mrn, "id": id}).Decode(t, &head)
	harness.Must(t, head.ByMRN.ID == id && head.ByMRN.FamilyName == "Unknown" && head.ByMRN.BirthDate == "1980-04-02" &&
		head.ByID.ID == id && head.None == nil, "header: %+v", head)
	r := s.As("doctor", `{ patientHeader { id } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "mrn", "no criterion: %s", harness.Describe(r))

	// An appointment with the doctor is a care relationship.
	booked := s.RegisterPatient("Booked", "Later")
	r = s.As("doctor", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": booked})
	harness.Must(t, r.HasCode("NOT_FOUND"), "before booking: %s", harness.Describe(r))
	s.CareFor(booked, d.Doctor)
	var seen struct{ Node struct{ ID string } }
	s.As("doctor", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": booked}).Decode(t, &seen)
	harness.Must(t, seen.Node.ID == booked, "after booking: %+v", seen)

	// Break the glass: the record opens.
	var bg struct{ BreakGlass accessOut }
	s.As("doctor", breakGlassMutation, map[string]any{"in": map[string]any{"patientId": id, "reason": "Unconscious in the ED, no history"}}).Decode(t, &bg)
	a := bg.BreakGlass
	created, _ := time.Parse(time.RFC3339, a.CreatedAt)
	expires, _ := time.Parse(time.RFC3339, a.ExpiresAt)
	harness.Must(t, a.Patient.ID == id && a.Staff.ID == d.Doctor && expires.Sub(created) == 8*time.Hour, "access: %+v", a)
	var opened struct {
		Node struct {
			Phone     *string
			Allergies []struct{ Substance string }
		}
		ByMRN struct{ TotalCount int } `json:"byMRN"`
	}
	s.As("doctor", `query($id: ID!, $mrn: String!) {
	  node(id: $id) { ... on Patient { phone allergies { substance } } }
	  byMRN: patients(where: {mrn: $mrn}) { totalCount }
	}`, map[string]any{"id": id, "mrn": mrn}).Decode(t, &opened)
	harness.Must(t, len(opened.Node.Allergies) == 1 && opened.ByMRN.TotalCount == 1, "after breaking the glass: %+v", opened)

	// The privacy officer sees the access and what was read under it.
	var review struct {
		BreakGlassAccesses struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ID, Reason string
					Patient    struct{ ID string }
					Staff      struct{ FamilyName string }
					Reads      []struct {
						ActorKind, ActorName, Operation string
						StaffKind                       *string
						Fields                          []string
						BreakGlass                      bool
					}
				}
			}
		}
	}
	s.As("auditor", `{ breakGlassAccesses(first: 10) { totalCount edges { node {
	  id reason patient { id } staff { familyName }
	  reads { actorKind actorName staffKind operation fields breakGlass } } } } }`, nil).Decode(t, &review)
	harness.Must(t, review.BreakGlassAccesses.TotalCount == 1, "review: %+v", review)
	n := review.BreakGlassAccesses.Edges[0].Node
	harness.Must(t, n.ID == a.ID && n.Patient.ID == id && n.Staff.FamilyName == "Mwangi" && strings.HasPrefix(n.Reason, "Unconscious"), "review: %+v", n)
	readAllergies := false
	for _, rd := range n.Reads {
		harness.Must(t, rd.ActorKind == "STAFF" && rd.ActorName == "Grace Mwangi" && rd.StaffKind != nil && *rd.StaffKind == "DOCTOR", "read: %+v", rd)
		for _, f := range rd.Fields {
			readAllergies = readAllergies || (f == "Allergy.substance" && rd.BreakGlass)
		}
	}
	harness.Must(t, readAllergies, "the allergies read under the access are not in the review: %+v", n.Reads)
	// Selecting only the reads still finds them: the access is read whole.
	var bare struct {
		BreakGlassAccesses struct {
			Edges []struct {
				Node struct{ Reads []struct{ ActorName string } }
			}
		}
	}
	s.As("auditor", `{ breakGlassAccesses { edges { node { reads { actorName } } } } }`, nil).Decode(t, &bare)
	harness.Must(t, len(bare.BreakGlassAccesses.Edges) == 1 && len(bare.BreakGlassAccesses.Edges[0].Node.Reads) == len(n.Reads) &&
		bare.BreakGlassAccesses.Edges[0].Node.Reads[0].ActorName == "Grace Mwangi", "reads alone: %+v", bare)

	// The patient sees who read their record, and that it was break-the-glass.
	var log struct {
		MyAccessLog struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ActorKind, ActorName, Operation string
					StaffKind                       *string
					Fields                          []string
					BreakGlass                      bool
				}
			}
		}
	}
	s.As("glass", `{ myAccessLog(first: 100) { totalCount edges { node { actorKind actorName staffKind operation fields breakGlass } } } }`, nil).Decode(t, &log)
	byDoctorGlass, byNurse := false, false
	for _, e := range log.MyAccessLog.Edges {
		harness.Must(t, e.Node.ActorKind != "PATIENT", "the patient's own access is listed: %+v", e.Node)
		byDoctorGlass = byDoctorGlass || (e.Node.ActorName == "Grace Mwangi" && e.Node.BreakGlass && strings.Contains(strings.Join(e.Node.Fields, ","), "Allergy.substance"))
		byNurse = byNurse || (e.Node.ActorName == "Tomas Lindqvist" && !e.Node.BreakGlass)
	}
	harness.Must(t, byDoctorGlass && byNurse && log.MyAccessLog.TotalCount == len(log.MyAccessLog.Edges), "access log: %+v", log)
	// Another patient's log does not show this patient's accesses.
	var other struct {
		MyAccessLog struct {
			Edges []struct {
				Node struct {
					ActorName  string
					BreakGlass bool
				}
			}
		}
	}
	s.As("patient", `{ myAccessLog(first: 100) { edges { node { actorName breakGlass } } } }`, nil).Decode(t, &other)
	for _, e := range other.MyAccessLog.Edges {
		harness.Must(t, !e.Node.BreakGlass, "another patient's log shows a break-the-glass access: %+v", e)
	}

	// The access ends when it expires.
	s.App.Enforcer.SetClock(func() time.Time { return expires.Add(time.Minute) })
	hidden(t, s, d, id, mrn)
	// A booked patient stays visible: only the access ended.
	s.As("doctor", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": booked}).Decode(t, &seen)
	harness.Must(t, seen.Node.ID == booked, "after the expiry, the booked patient: %+v", seen)
}

func TestBreakGlassBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	id, _ := unknownPatient(t, s, d)
	for _, c := range []struct {
		in    map[string]any
		field string
	}{
		{map[string]any{"patientId": id, "reason": ""}, "input.reason"},
		{map[string]any{"patientId": id, "reason": "   "}, "input.reason"},
		{map[string]any{"patientId": id, "reason": "because"}, "input.reason"},
		{map[string]any{"patientId": id, "reason": strings.Repeat("x", 1001)}, "input.reason"},
		{map[string]any{"patientId": "bad", "reason": "Unconscious in the ED"}, "input.patientId"},
		{map[string]any{"patientId": d.Doctor, "reason": "Unconscious in the ED"}, "input.patientId"},
		{map[string]any{"patientId": "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", "reason": "Unconscious in the ED"}, "input.patientId"},
	} {
		r := s.As("doctor", breakGlassMutation, map[string]any{"in": c.in})
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == c.field, "%v: %s", c.in, harness.Describe(r))
	}
	// Staff who are no clinicians may not break the glass, whatever the policy.
	r := s.As("admin", breakGlassMutation, map[string]any{"in": map[string]any{"patientId": id, "reason": "Unconscious in the ED"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "admin: %s", harness.Describe(r))
	var review struct{ BreakGlassAccesses struct{ TotalCount int } }
	s.As("auditor", `{ breakGlassAccesses { totalCount } }`, nil).Decode(t, &review)
	harness.Must(t, review.BreakGlassAccesses.TotalCount == 0, "rejected attempts left accesses: %+v", review)
	r = s.As("doctor", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
	harness.Must(t, r.HasCode("NOT_FOUND"), "after rejected attempts: %s", harness.Describe(r))
}

// TestCareAccessRoles: who may call the new operations, role by role.
func TestCareAccessRoles(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	id, mrn := unknownPatient(t, s, d)
	for _, c := range []struct {
		doc     string
		allowed []string
	}{
		{`query($mrn: String!) { patientHeader(mrn: $mrn) { id } }`, []string{"admin", "doctor", "nurse"}},
		{`{ breakGlassAccesses { totalCount } }`, []string{"admin", "auditor"}},
		{`{ myAccessLog { totalCount } }`, []string{"admin", "patient", "glass"}},
	} {
		for _, user := range []string{"admin", "auditor", "billing", "doctor", "hr", "labtech", "nurse", "patient", "pharmacist", "reception", "glass"} {
			r := s.As(user, c.doc, map[string]any{"mrn": mrn})
			want := false
			for _, a := range c.allowed {
				want = want || a == user
			}
			harness.Must(t, want == (len(r.Errors) == 0), "%s, %s: %s", user, c.doc, harness.Describe(r))
			harness.Must(t, want || r.HasCode("FORBIDDEN"), "%s, %s: %s", user, c.doc, harness.Describe(r))
		}
	}
	for _, user := range []string{"auditor", "billing", "hr", "labtech", "patient", "pharmacist", "reception", "glass"} {
		r := s.As(user, breakGlassMutation, map[string]any{"in": map[string]any{"patientId": id, "reason": "Unconscious in the ED"}})
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s breaking the glass: %s", user, harness.Describe(r))
	}
	var bg struct{ BreakGlass accessOut }
	s.As("nurse", breakGlassMutation, map[string]any{"in": map[string]any{"patientId": d.Patients[4], "reason": "Covering the ward tonight"}}).Decode(t, &bg)
	harness.Must(t, bg.BreakGlass.Staff.ID == d.Nurse, "the nurse's access: %+v", bg)
}

// A break-the-glass access is not a way onto the care team: the clinician
// cannot add themselves while it runs, so the access ends when it expires
// (a colleague on the team may add them, which is a decision of its own).
func TestBreakGlassCannotMakeItselfLasting(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	id, mrn := unknownPatient(t, s, d)
	var access struct{ BreakGlass accessOut }
	s.As("doctor", breakGlassMutation, map[string]any{"in": map[string]any{"patientId": id, "reason": "Unconscious in the ED"}}).Decode(t, &access)
	const join = `mutation($in: AddCareTeamMemberInput!) { addCareTeamMember(input: $in) { id } }`
	r := s.As("doctor", join, map[string]any{"in": map[string]any{"patientId": id, "staffId": d.Doctor, "role": "ATTENDING"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "the doctor added themselves under break-the-glass: %s", harness.Describe(r))
	expires, err := time.Parse(time.RFC3339Nano, access.BreakGlass.ExpiresAt)
	harness.Must(t, err == nil, "expiresAt %q: %v", access.BreakGlass.ExpiresAt, err)
	s.App.Enforcer.SetClock(func() time.Time { return expires.Add(time.Minute) })
	hidden(t, s, d, id, mrn)
	// The nurse, on the team, may add the doctor: a relationship someone
	// who has one decided on.
	s.As("nurse", join, map[string]any{"in": map[string]any{"patientId": id, "staffId": d.Doctor, "role": "ATTENDING"}}).Decode(t, &struct{}{})
	var seen struct{ Node struct{ ID string } }
	s.As("doctor", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id}).Decode(t, &seen)
	harness.Must(t, seen.Node.ID == id, "added by the nurse, the doctor still cannot read: %+v", seen)
}
