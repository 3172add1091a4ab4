package authz

import (
	"fmt"
	"testing"

	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/policies"
)

func enforcer(t testing.TB) *Enforcer {
	t.Helper()
	e, err := NewEnforcer(policies.Model, policies.Policy)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func viewer(roles ...string) *auth.Viewer { return &auth.Viewer{Roles: roles, PatientID: "pat_x"} }

func TestDecisions(t *testing.T) {
	e := enforcer(t)
	cases := []struct {
		v      *auth.Viewer
		object string
		want   bool
	}{
		{nil, "Mutation.login", true},
		{nil, "Query.patients", false},
		{nil, "Patient.id", false},
		{viewer("doctor"), "Patient.nationalID", true},
		{viewer("labtech"), "Patient.mrn", true},
		{viewer("labtech"), "Patient.nationalID", false}, // deny in patient_identity beats allow in patient_reader
		{viewer("integrator"), "Patient.phone", true},
		{viewer("integrator"), "Patient.nationalID", false},
		{viewer("labtech", "doctor"), "Patient.nationalID", true}, // any role allowing suffices
		{viewer("admin"), "Anything.atAll", true},
		{viewer("hr"), "Query.patients", false},
		{viewer("signed_in"), "Query.me", false}, // building blocks cannot be held
		{viewer("no-such-role"), "Query.me", false},
		{viewer(), "Query.me", false},
		{viewer("doctor"), "Unknown.field", false}, // fails closed
		{&auth.Viewer{System: true}, "Unknown.field", true},
	}
	for _, c := range cases {
		if got := e.Allows(c.v, c.object); got != c.want {
			t.Errorf("%v → %s: got %v, want %v", c.v, c.object, got, c.want)
		}
	}
}

func TestAssignableRoles(t *testing.T) {
	got := fmt.Sprint(enforcer(t).Roles())
	want := "[admin auditor billing billing_clerk cashier doctor external_clinic finance_officer hospital_manager hr integrator lab_instrument labtech manager nurse patient payroll pharmacist pharmacy_technician reception ward_manager]"
	if got != want {
		t.Fatalf("roles %s, want %s", got, want)
	}
}

func TestScope(t *testing.T) {
	e := enforcer(t)
	cases := []struct {
		v    *auth.Viewer
		want PatientScope
	}{
		{nil, NoPatients},
		{viewer("hr"), NoPatients},
		{viewer("patient"), OwnRecord},
		{&auth.Viewer{Roles: []string{"patient"}}, NoPatients}, // a patient login not linked to a record sees nothing
		// A nurse sees the patients they care for; without a staff record
		// (an API key in the role), none.
		{&auth.Viewer{Roles: []string{"nurse"}, StaffID: "stf_x"}, CarePatients},
		{&auth.Viewer{Roles: []string{"doctor"}, StaffID: "stf_x"}, CarePatients},
		{viewer("nurse"), NoPatients},
		{&auth.Viewer{Roles: []string{"patient", "nurse"}, StaffID: "stf_x", PatientID: "pat_x"}, CarePatients},
		{viewer("patient", "nurse"), OwnRecord},
		// Rows.Patient.all: roles whose work spans the hospital.
		{viewer("labtech"), AllPatients},
		{&auth.Viewer{Roles: []string{"reception"}, StaffID: "stf_x"}, AllPatients},
		{&auth.Viewer{Roles: []string{"nurse", "billing"}, StaffID: "stf_x"}, AllPatients},
		{viewer("admin"), AllPatients},
		{&auth.Viewer{System: true}, AllPatients},
	}
	for _, c := range cases {
		if got := e.ScopeOf(c.v); got != c.want {
			t.Errorf("%+v: scope %v, want %v", c.v, got, c.want)
		}
	}
}

// TestDecisionsAreMemoized: a page of 100 patients with 16 fields asks the
// same 16 questions 100 times; Casbin must answer each only once.
func TestDecisionsAreMemoized(t *testing.T) {
	// A text no other test loads, so that no decision comes from an
	// enforcer of theirs.
	e, err := NewEnforcer(policies.Model, policies.Policy+"\n# "+t.Name()+"\n")
	if err != nil {
		t.Fatal(err)
	}
	v := viewer("nurse")
	fields := []string{"id", "mrn", "givenName", "familyName", "birthDate", "sex", "phone", "email",
		"addressLine", "city", "region", "postalCode", "country", "nationalID", "createdAt", "updatedAt"}
	for i := 0; i < 100; i++ {
		for _, f := range fields {
			e.Allows(v, "Patient."+f)
		}
	}
	if n := e.Evaluations(); n != int64(len(fields)) {
		t.Fatalf("%d Casbin evaluations for %d distinct questions", n, len(fields))
	}
}

// TestEnforcersShareDecisionsOfTheSameText: a second enforcer on the same
// policy asks Casbin nothing the first has asked, while one on another text
// decides for itself, and a reload to another text does not keep the old
// decisions.
func TestEnforcersShareDecisionsOfTheSameText(t *testing.T) {
	text := policies.Policy + "\n# " + t.Name() + "\n"
	first, err := NewEnforcer(policies.Model, text)
	if err != nil {
		t.Fatal(err)
	}
	v := viewer("nurse")
	if !first.Allows(v, "Patient.mrn") || first.Evaluations() != 1 {
		t.Fatalf("first enforcer: %d evaluations", first.Evaluations())
	}
	second, err := NewEnforcer(policies.Model, text)
	if err != nil {
		t.Fatal(err)
	}
	if !second.Allows(v, "Patient.mrn") || second.Evaluations() != 0 {
		t.Fatalf("second enforcer on the same text: %d evaluations", second.Evaluations())
	}
	// The shared decisions are the text's: a change that denies the field
	// is decided afresh.
	denying := text + "p, nurse, Patient.mrn, deny\n"
	if err := second.Reload(policies.Model, denying, 1); err != nil {
		t.Fatal(err)
	}
	if second.Allows(v, "Patient.mrn") || second.Evaluations() != 1 {
		t.Fatalf("after a reload that denies: %d evaluations", second.Evaluations())
	}
	if !first.Allows(v, "Patient.mrn") {
		t.Fatal("the first enforcer's policy changed with the second's reload")
	}
}

func BenchmarkAllowsMemoized(b *testing.B) {
	e := enforcer(b)
	v := viewer("nurse")
	e.Allows(v, "Patient.givenName")
	b.ReportAllocs()
	for b.Loop() {
		e.Allows(v, "Patient.givenName")
	}
}

func BenchmarkCasbinUnmemoized(b *testing.B) {
	e := enforcer(b)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _ := e.live.Load().casbin.Enforce("nurse", "Patient.givenName"); !ok {
			b.Fatal("denied")
		}
	}
}
