package patients

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/insurancepolicy"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

func ptr[T any](v T) *T { return &v }

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func newService(t *testing.T) (context.Context, *Service, *ent.Client) {
	t.Helper()
	st := testenv.Store(t)
	return auth.SystemContext(context.Background()), NewService(st), st.Client
}

func baseRegistration() Registration {
	return Registration{GivenName: "Amani", FamilyName: "Mutua", BirthDate: day(1990, 4, 12), Sex: patient.SexFEMALE}
}

func mustRegister(t *testing.T, ctx context.Context, svc *Service, r Registration) *ent.Patient {
	t.Helper()
	out, err := svc.Register(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if out.Patient == nil {
		t.Fatalf("not registered; duplicates %v", out.Duplicates)
	}
	return out.Patient
}

// markMerged marks p merged into survivor without moving anything, as a
// merge leaves a record.
func markMerged(t *testing.T, ctx context.Context, svc *Service, p, survivor *ent.Patient) {
	t.Helper()
	err := svc.store.Client.Patient.UpdateOne(p).
		SetStatus(patient.StatusMERGED).SetMergedAt(time.Now().UTC()).SetMergedIntoID(survivor.ID).
		Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
}

func wantField(t *testing.T, err error, field string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.BadUserInput || e.Field != field {
		t.Fatalf("want BAD_USER_INPUT at %s, got %v", field, err)
	}
}

func wantCode(t *testing.T, err error, code apperr.Code) {
	t.Helper()
	if apperr.CodeOf(err) != code {
		t.Fatalf("want %s, got %v", code, err)
	}
}

func TestRegisterWithEverythingInOneStep(t *testing.T) {
	ctx, svc, c := newService(t)
	r := baseRegistration()
	r.PreferredLanguage = ptr(" EN-ke ")
	r.Contacts = []PatientContactInput{
		{Name: " Baraka Mutua ", Relationship: "spouse", Phone: ptr("+254 700 000 001"), NextOfKin: true},
		{Name: "Neema", Relationship: "neighbour", Email: ptr("neema@example.org"), Address: ptr("  "), EmergencyContact: true},
	}
	r.Identifiers = []PatientIdentifierInput{{System: " passport ", Value: "ab 123 456"}, {System: "NHIF", Value: "9-8-7"}}
	r.InsurancePolicies = []InsurancePolicyInput{
		{Payer: "NHIF", MemberNumber: "987", ValidFrom: day(2024, 1, 1), Priority: 1},
		{Payer: "Jubilee", MemberNumber: "J-1", PlanName: ptr("Gold"), ValidFrom: day(2024, 1, 1), ValidTo: ptr(day(2026, 12, 31)), Priority: 2},
	}
	p := mustRegister(t, ctx, svc, r)
	if *p.PreferredLanguage != "en-KE" || p.Status != patient.StatusACTIVE {
		t.Fatalf("patient %+v", p)
	}
	contacts := c.PatientContact.Query().AllX(ctx)
	names := map[string]bool{}
	for _, ct := range contacts {
		names[ct.Name] = true
		if ct.PatientID != p.ID || ct.Address != nil {
			t.Fatalf("contact %+v", ct)
		}
	}
	if len(contacts) != 2 || !names["Baraka Mutua"] || !names["Neema"] {
		t.Fatalf("contacts %+v", contacts)
	}
	ids := c.Patient.QueryIdentifiers(p).AllX(ctx)
	got := map[string]string{}
	for _, id := range ids {
		got[id.System] = id.Value
	}
	if len(ids) != 2 || got["PASSPORT"] != "AB123456" || got["NHIF"] != "9-8-7" {
		t.Fatalf("identifiers stored as %v", got)
	}
	if n := c.Patient.QueryInsurancePolicies(p).Where(insurancepolicy.StatusEQ(insurancepolicy.StatusACTIVE)).CountX(ctx); n != 2 {
		t.Fatalf("%d policies", n)
	}
}

func TestLanguageTags(t *testing.T) {
	for in, want := range map[string]string{"sw": "sw", "EN-ke": "en-KE", "zh-hant-tw": "zh-Hant-TW", "en-US-x-TWAIN": "en-US-x-twain"} {
		v := validator{}
		if got := v.language("f", &in); v.Err() != nil || *got != want {
			t.Errorf("%s → %v, %v; want %s", in, got, v.Err(), want)
		}
	}
	for _, bad := range []string{"english", "e", "en_KE", "en-", "12"} {
		v := validator{}
		if v.language("f", &bad); v.Err() == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestRegisterBadInputNamesTheFieldAndCreatesNothing: items are validated
// field by field, and a bad item anywhere keeps the whole registration out.
func TestRegisterBadInputNamesTheFieldAndCreatesNothing(t *testing.T) {
	ctx, svc, c := newService(t)
	contact := PatientContactInput{Name: "Baraka", Relationship: "spouse", Phone: ptr("+254700000001")}
	policy := InsurancePolicyInput{Payer: "NHIF", MemberNumber: "1", ValidFrom: day(2024, 1, 1), Priority: 1}
	cases := []struct {
		field  string
		change func(*Registration)
	}{
		{"input.preferredLanguage", func(r *Registration) { r.PreferredLanguage = ptr("Kiswahili") }},
		{"input.contacts[1].phone", func(r *Registration) {
			bad := contact
			bad.Phone = ptr("call me")
			r.Contacts = []PatientContactInput{contact, bad}
		}},
		{"input.contacts[0].phone", func(r *Registration) {
			bad := contact
			bad.Phone = nil
			r.Contacts = []PatientContactInput{bad}
		}},
		{"input.contacts[0].name", func(r *Registration) {
			bad := contact
			bad.Name = " "
			r.Contacts = []PatientContactInput{bad}
		}},
		{"input.contacts[0].email", func(r *Registration) {
			bad := contact
			bad.Email = ptr("nope")
			r.Contacts = []PatientContactInput{bad}
		}},
		{"input.identifiers[0].system", func(r *Registration) { r.Identifiers = []PatientIdentifierInput{{System: "", Value: "1"}} }},
		{"input.identifiers[0].value", func(r *Registration) { r.Identifiers = []PatientIdentifierInput{{System: "NHIF", Value: "1;DROP"}} }},
		{"input.identifiers[1].value", func(r *Registration) {
			r.Identifiers = []PatientIdentifierInput{{System: "NHIF", Value: "a1"}, {System: "nhif", Value: "A 1"}}
		}},
		{"input.insurancePolicies[0].validTo", func(r *Registration) {
			bad := policy
			bad.ValidTo = ptr(day(2023, 12, 31))
			r.InsurancePolicies = []InsurancePolicyInput{bad}
		}},
		{"input.insurancePolicies[0].priority", func(r *Registration) {
			bad := policy
			bad.Priority = 0
			r.InsurancePolicies = []InsurancePolicyInput{bad}
		}},
		{"input.insurancePolicies[0].payer", func(r *Registration) {
			bad := policy
			bad.Payer = ""
			r.InsurancePolicies = []InsurancePolicyInput{bad}
		}},
		{"input.insurancePolicies[1].priority", func(r *Registration) {
			other := policy
			other.Payer, other.ValidFrom = "AAR", day(2025, 6, 1)
			r.InsurancePolicies = []InsurancePolicyInput{policy, other}
		}},
		{"input.insurancePolicies[1].memberNumber", func(r *Registration) {
			again := policy
			again.Payer, again.Priority = "nhif", 2
			r.InsurancePolicies = []InsurancePolicyInput{policy, again}
		}},
	}
	for _, tc := range cases {
		r := baseRegistration()
		tc.change(&r)
		_, err := svc.Register(ctx, r)
		wantField(t, err, tc.field)
	}
	if n := c.Patient.Query().CountX(ctx) + c.PatientContact.Query().CountX(ctx) + c.PatientIdentifier.Query().CountX(ctx) +
		c.InsurancePolicy.Query().CountX(ctx); n != 0 {
		t.Fatalf("rejected registrations stored %d rows", n)
	}
	// Policies of the same priority that never overlap are fine.
	r := baseRegistration()
	later := policy
	later.Payer, later.ValidFrom = "AAR", day(2025, 1, 1)
	first := policy
	first.ValidTo = ptr(day(2024, 12, 31))
	r.InsurancePolicies = []InsurancePolicyInput{first, later}
	mustRegister(t, ctx, svc, r)
}

func TestDuplicatesStopRegistrationUntilConfirmed(t *testing.T) {
	ctx, svc, c := newService(t)
	r := baseRegistration()
	r.NationalID = ptr("12345678")
	r.Identifiers = []PatientIdentifierInput{{System: "PASSPORT", Value: "AB123"}}
	first := mustRegister(t, ctx, svc, r)

	cases := map[string]Registration{
		"same names in another case and birth date": {GivenName: " amani", FamilyName: "MUTUA ", BirthDate: day(1990, 4, 12), Sex: patient.SexFEMALE},
		"same national ID":                          {GivenName: "Other", FamilyName: "Name", BirthDate: day(1970, 1, 1), Sex: patient.SexMALE, NationalID: ptr("12345678")},
		"same identifier, typed differently": {GivenName: "Other", FamilyName: "Name", BirthDate: day(1970, 1, 1), Sex: patient.SexMALE,
			Identifiers: []PatientIdentifierInput{{System: "passport", Value: "ab 123"}}},
	}
	for name, dup := range cases {
		out, err := svc.Register(ctx, dup)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if out.Patient != nil || len(out.Duplicates) != 1 || out.Duplicates[0].ID != first.ID {
			t.Fatalf("%s: %+v", name, out)
		}
	}
	if n := c.Patient.Query().CountX(ctx); n != 1 {
		t.Fatalf("a stopped registration created a patient: %d", n)
	}

	// Same names, another birth date: a different person.
	other := baseRegistration()
	other.BirthDate = day(1990, 4, 13)
	mustRegister(t, ctx, svc, other)

	// Confirmed: registered despite the namesake.
	twin := cases["same names in another case and birth date"]
	twin.ConfirmNotDuplicate = true
	p := mustRegister(t, ctx, svc, twin)
	if p.GivenName != "amani" {
		t.Fatalf("%+v", p)
	}
	// An identifier is one person's: confirming does not share it.
	shared := cases["same identifier, typed differently"]
	shared.ConfirmNotDuplicate = true
	_, err := svc.Register(ctx, shared)
	wantField(t, err, "input.identifiers[0].value")

	// Search before registering finds the same candidates.
	found, err := svc.FindDuplicates(ctx, FindDuplicatePatientsInput{GivenName: ptr("AMANI"), FamilyName: ptr("mutua"), BirthDate: ptr(day(1990, 4, 12))})
	if err != nil || len(found) != 2 {
		t.Fatalf("by name: %v %v", found, err)
	}
	found, err = svc.FindDuplicates(ctx, FindDuplicatePatientsInput{Identifiers: []PatientIdentifierInput{{System: "Passport", Value: "AB-123"}}})
	if err != nil || len(found) != 0 {
		t.Fatalf("a different identifier matched: %v %v", found, err)
	}
	found, err = svc.FindDuplicates(ctx, FindDuplicatePatientsInput{NationalID: ptr(" 12345678 ")})
	if err != nil || len(found) != 1 || found[0].ID != first.ID {
		t.Fatalf("by national ID: %v %v", found, err)
	}

	// A merged record is never a candidate.
	markMerged(t, ctx, svc, first, p)
	found, err = svc.FindDuplicates(ctx, FindDuplicatePatientsInput{NationalID: ptr("12345678")})
	if err != nil || len(found) != 0 {
		t.Fatalf("merged record offered: %v %v", found, err)
	}

	_, err = svc.FindDuplicates(ctx, FindDuplicatePatientsInput{})
	wantField(t, err, "input")
	_, err = svc.FindDuplicates(ctx, FindDuplicatePatientsInput{GivenName: ptr("Amani"), FamilyName: ptr("Mutua")})
	wantField(t, err, "input.birthDate")
	_, err = svc.FindDuplicates(ctx, FindDuplicatePatientsInput{Identifiers: []PatientIdentifierInput{{System: "X", Value: ""}}})
	wantField(t, err, "input.identifiers[0].value")
}

func TestContactsLifecycle(t *testing.T) {
	ctx, svc, c := newService(t)
	p := mustRegister(t, ctx, svc, baseRegistration())

	_, err := svc.AddContact(ctx, p.ID, PatientContactInput{Name: "Baraka", Relationship: "spouse"})
	wantField(t, err, "input.phone")
	_, err = svc.AddContact(ctx, "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", PatientContactInput{Name: "Baraka", Relationship: "spouse", Phone: ptr("+254700000001")})
	wantCode(t, err, apperr.NotFound)
	ct, err := svc.AddContact(ctx, p.ID, PatientContactInput{Name: "Baraka", Relationship: "spouse", Phone: ptr("+254700000001"), NextOfKin: true})
	if err != nil {
		t.Fatal(err)
	}

	var changes UpdatePatientContactInput
	changes.Email = graphql.OmittableOf(ptr("baraka@example.org"))
	changes.Phone = graphql.OmittableOf[*string](nil)
	changes.EmergencyContact = graphql.OmittableOf(ptr(true))
	ct, err = svc.UpdateContact(ctx, ct.ID, changes)
	if err != nil || ct.Phone != nil || *ct.Email != "baraka@example.org" || !ct.EmergencyContact || !ct.NextOfKin || ct.Name != "Baraka" {
		t.Fatalf("%+v %v", ct, err)
	}
	var unreachable UpdatePatientContactInput
	unreachable.Email = graphql.OmittableOf[*string](nil)
	_, err = svc.UpdateContact(ctx, ct.ID, unreachable)
	wantField(t, err, "input.phone")
	var nameless UpdatePatientContactInput
	nameless.Name = graphql.OmittableOf[*string](nil)
	_, err = svc.UpdateContact(ctx, ct.ID, nameless)
	wantField(t, err, "input.name")
	if again := c.PatientContact.GetX(ctx, ct.ID); again.Email == nil || again.Name != "Baraka" {
		t.Fatalf("a refused update changed the contact: %+v", again)
	}

	id, err := svc.RemoveContact(ctx, ct.ID)
	if err != nil || id != ct.ID {
		t.Fatal(err)
	}
	_, err = svc.RemoveContact(ctx, ct.ID)
	wantCode(t, err, apperr.NotFound)
	_, err = svc.UpdateContact(ctx, ct.ID, changes)
	wantCode(t, err, apperr.NotFound)
}

func TestIdentifiersBelongToOnePatient(t *testing.T) {
	ctx, svc, _ := newService(t)
	a := mustRegister(t, ctx, svc, baseRegistration())
	other := baseRegistration()
	other.GivenName = "Zawadi"
	b := mustRegister(t, ctx, svc, other)

	id, err := svc.AddIdentifier(ctx, a.ID, PatientIdentifierInput{System: "nhif", Value: " 55 66 "})
	if err != nil || id.System != "NHIF" || id.Value != "5566" {
		t.Fatalf("%+v %v", id, err)
	}
	_, err = svc.AddIdentifier(ctx, a.ID, PatientIdentifierInput{System: "NHIF", Value: "5566"})
	wantCode(t, err, apperr.Conflict)
	_, err = svc.AddIdentifier(ctx, b.ID, PatientIdentifierInput{System: "NHIF", Value: "5566"})
	wantField(t, err, "input.value")
	_, err = svc.AddIdentifier(ctx, "bad", PatientIdentifierInput{System: "NHIF", Value: "1"})
	wantField(t, err, "patientId")

	if _, err := svc.RemoveIdentifier(ctx, id.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AddIdentifier(ctx, b.ID, PatientIdentifierInput{System: "NHIF", Value: "5566"}); err != nil {
		t.Fatalf("a removed identifier is free again: %v", err)
	}
}

func TestInsurancePolicyLifecycle(t *testing.T) {
	ctx, svc, _ := newService(t)
	p := mustRegister(t, ctx, svc, baseRegistration())
	primary, err := svc.AddInsurancePolicy(ctx, p.ID, InsurancePolicyInput{Payer: "NHIF", MemberNumber: "1", ValidFrom: day(2024, 1, 1), Priority: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.AddInsurancePolicy(ctx, p.ID, InsurancePolicyInput{Payer: "AAR", MemberNumber: "2", ValidFrom: day(2025, 1, 1), Priority: 1})
	wantCode(t, err, apperr.Conflict) // two primaries for 2025 onwards
	_, err = svc.AddInsurancePolicy(ctx, p.ID, InsurancePolicyInput{Payer: "nhif", MemberNumber: " 1", ValidFrom: day(2025, 1, 1), Priority: 2})
	wantCode(t, err, apperr.Conflict) // the same cover twice
	_, err = svc.AddInsurancePolicy(ctx, p.ID, InsurancePolicyInput{Payer: "AAR", MemberNumber: "2", ValidFrom: day(2025, 1, 1), Priority: 0})
	wantField(t, err, "input.priority")
	secondary, err := svc.AddInsurancePolicy(ctx, p.ID, InsurancePolicyInput{Payer: "AAR", MemberNumber: "2", ValidFrom: day(2025, 1, 1), Priority: 2})
	if err != nil {
		t.Fatal(err)
	}

	_, err = svc.UpdateInsurancePolicyValidity(ctx, primary.ID, InsurancePolicyValidityInput{ValidFrom: day(2024, 1, 1), ValidTo: ptr(day(2023, 1, 1))})
	wantField(t, err, "input.validTo")
	ended, err := svc.UpdateInsurancePolicyValidity(ctx, primary.ID, InsurancePolicyValidityInput{ValidFrom: day(2024, 1, 1), ValidTo: ptr(day(2024, 12, 31))})
	if err != nil || !ended.ValidTo.Equal(day(2024, 12, 31)) {
		t.Fatalf("%+v %v", ended, err)
	}
	// With the primary ended, the AAR policy can become primary from 2025.
	_, err = svc.AddInsurancePolicy(ctx, p.ID, InsurancePolicyInput{Payer: "Jubilee", MemberNumber: "3", ValidFrom: day(2025, 1, 1), Priority: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Reopening the old primary would clash with the new one.
	_, err = svc.UpdateInsurancePolicyValidity(ctx, primary.ID, InsurancePolicyValidityInput{ValidFrom: day(2024, 1, 1)})
	wantCode(t, err, apperr.Conflict)

	off, err := svc.DeactivateInsurancePolicy(ctx, secondary.ID)
	if err != nil || off.Status != insurancepolicy.StatusINACTIVE {
		t.Fatalf("%+v %v", off, err)
	}
	_, err = svc.DeactivateInsurancePolicy(ctx, secondary.ID)
	wantCode(t, err, apperr.Conflict)
	_, err = svc.UpdateInsurancePolicyValidity(ctx, secondary.ID, InsurancePolicyValidityInput{ValidFrom: day(2025, 1, 1)})
	wantCode(t, err, apperr.Conflict)
	_, err = svc.DeactivateInsurancePolicy(ctx, "ins_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	wantCode(t, err, apperr.NotFound)
}

func TestMergedPatientsCannotBeChanged(t *testing.T) {
	ctx, svc, _ := newService(t)
	survivor := mustRegister(t, ctx, svc, baseRegistration())
	other := baseRegistration()
	other.GivenName = "Zawadi"
	merged := mustRegister(t, ctx, svc, other)
	markMerged(t, ctx, svc, merged, survivor)

	var changes Changes
	changes.City = graphql.OmittableOf(ptr("Nairobi"))
	_, err := svc.Update(ctx, merged.ID, changes)
	wantCode(t, err, apperr.Conflict)
	_, err = svc.AddContact(ctx, merged.ID, PatientContactInput{Name: "B", Relationship: "x", Phone: ptr("+254700000001")})
	wantCode(t, err, apperr.Conflict)
	_, err = svc.AddIdentifier(ctx, merged.ID, PatientIdentifierInput{System: "NHIF", Value: "1"})
	wantCode(t, err, apperr.Conflict)
	_, err = svc.AddInsurancePolicy(ctx, merged.ID, InsurancePolicyInput{Payer: "NHIF", MemberNumber: "1", ValidFrom: day(2024, 1, 1), Priority: 1})
	wantCode(t, err, apperr.Conflict)
}

// A name is limited in characters, not bytes: one in Arabic script at the
// limit is stored whole (the database column counts characters too), one
// character more is refused naming the field.
func TestNameLimitCountsCharacters(t *testing.T) {
	ctx, svc, c := newService(t)
	atLimit := strings.Repeat("ع", 100) // 200 bytes
	r := baseRegistration()
	r.GivenName, r.FamilyName = atLimit, strings.Repeat("ŋ", 100)
	p := mustRegister(t, ctx, svc, r)
	stored := c.Patient.GetX(ctx, p.ID)
	if stored.GivenName != atLimit || utf8.RuneCountInString(stored.FamilyName) != 100 {
		t.Fatalf("stored %q / %q", stored.GivenName, stored.FamilyName)
	}
	r = baseRegistration()
	r.GivenName = atLimit + "ع"
	_, err := svc.Register(ctx, r)
	wantField(t, err, "input.givenName")
}
