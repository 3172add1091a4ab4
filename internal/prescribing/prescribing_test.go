package prescribing

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/formulary"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc      *Service
	client   *ent.Client
	system   context.Context
	patients []*ent.Patient
	// Contexts acting as members of staff of each kind.
	doctor, nurse, admin, retired context.Context
	doctorStaff                   *ent.Staff
	penicillin                    *ent.Allergy
}

func setup(t *testing.T) fixture {
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	if err := formulary.Seed(sys, c); err != nil {
		t.Fatal(err)
	}
	dep := c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	member := func(kind staff.Kind, active bool) *ent.Staff {
		return c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(kind).SetDepartment(dep).SetActive(active).SaveX(sys)
	}
	as := func(s *ent.Staff, role string) context.Context {
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + s.ID, Username: role, Roles: []string{role}, StaffID: s.ID})
	}
	f := fixture{svc: NewService(st), client: c, system: sys}
	f.doctorStaff = member(staff.KindDOCTOR, true)
	f.doctor = as(f.doctorStaff, "doctor")
	f.nurse = as(member(staff.KindNURSE, true), "nurse")
	f.admin = as(member(staff.KindADMINISTRATOR, true), "admin")
	f.retired = as(member(staff.KindDOCTOR, false), "doctor")
	for i, mrn := range []string{"100000009", "100000017"} {
		f.patients = append(f.patients, c.Patient.Create().SetMrn(mrn).SetGivenName("P").SetFamilyName([]string{"A", "B"}[i]).
			SetBirthDate(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexOTHER).SaveX(sys))
	}
	f.penicillin = c.Allergy.Create().SetPatient(f.patients[0]).SetSubstance("Penicillin").SetCategory(allergy.CategoryDRUG).
		SetSeverity(allergy.SeveritySEVERE).SaveX(sys)
	c.Allergy.Create().SetPatient(f.patients[0]).SetSubstance("Aspirin").SetCategory(allergy.CategoryDRUG).
		SetSeverity(allergy.SeverityMILD).SetStatus(allergy.StatusINACTIVE).SaveX(sys)
	c.Allergy.Create().SetPatient(f.patients[1]).SetSubstance("Ibuprofen").SetCategory(allergy.CategoryDRUG).
		SetSeverity(allergy.SeverityMODERATE).SaveX(sys)
	return f
}

func rx(patientID, drug string) PrescribeMedicationInput {
	days := 7
	return PrescribeMedicationInput{PatientID: patientID, Drug: &drug, DoseAmount: 500, DoseUnit: "mg",
		Route: medicationorder.RouteORAL, Frequency: "TID", DurationDays: &days, Quantity: 21}
}

func revision(drug string, dose float64) ReviseMedicationOrderInput {
	return ReviseMedicationOrderInput{Drug: &drug, DoseAmount: dose, DoseUnit: "mg", Route: medicationorder.RouteORAL,
		Frequency: "BID", Quantity: 14}
}

func ptr[T any](v T) *T { return &v }

func (f fixture) orderCount(t *testing.T) int {
	t.Helper()
	n, err := f.client.MedicationOrder.Query().Count(f.system)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMatches(t *testing.T) {
	for _, c := range []struct {
		drug, substance string
		want            bool
	}{
		{"Penicillin", "penicillin", true},
		{"Penicillin V potassium", "Penicillin", true},
		{"amoxicillin", "Amoxicillin/clavulanate", true},
		{"Co-trimoxazole (sulfamethoxazole + trimethoprim)", "Sulfamethoxazole", true},
		{"Sulfasalazine", "sulfa", false},
		{"Amoxicillin", "Penicillin", false},
		{"Aspirin 75 mg", "aspirin", true},
		{"Acetylsalicylic acid", "salicylic acid", false},
		{"Insulin glargine", "insulin", true},
		{"Paracetamol", "", false},
		{"", "Penicillin", false},
	} {
		if got := Matches(c.drug, c.substance); got != c.want {
			t.Errorf("Matches(%q, %q) = %v, want %v", c.drug, c.substance, got, c.want)
		}
	}
}

func TestAllergyBlocksUnlessOverridden(t *testing.T) {
	f := setup(t)
	pat := f.patients[0].ID

	_, err := f.svc.Prescribe(f.doctor, rx(pat, "Penicillin V potassium"))
	var conflict *AllergyConflict
	if !errors.As(err, &conflict) || apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("allergic drug: %v", err)
	}
	if len(conflict.Allergies) != 1 || conflict.Allergies[0].ID != f.penicillin.ID ||
		conflict.Allergies[0].Substance != "Penicillin" || conflict.Allergies[0].Severity != allergy.SeveritySEVERE {
		t.Fatalf("matching allergies: %+v", conflict.Allergies)
	}
	if n := f.orderCount(t); n != 0 {
		t.Fatalf("a refused order was written: %d", n)
	}

	in := rx(pat, "Penicillin V potassium")
	in.AllergyOverrideReason = ptr("   ")
	if _, err := f.svc.Prescribe(f.doctor, in); !isBadInput(err, "input.allergyOverrideReason") {
		t.Fatalf("blank override: %v", err)
	}
	in.AllergyOverrideReason = ptr(strings.Repeat("x", MaxReasonLength+1))
	if _, err := f.svc.Prescribe(f.doctor, in); !isBadInput(err, "input.allergyOverrideReason") {
		t.Fatalf("long override: %v", err)
	}

	in.AllergyOverrideReason = ptr("  Mild rash only; no alternative for this organism.  ")
	o, err := f.svc.Prescribe(f.doctor, in)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != medicationorder.StatusACTIVE || o.AllergyOverrideReason == nil ||
		*o.AllergyOverrideReason != "Mild rash only; no alternative for this organism." || o.PrescriberID != f.doctorStaff.ID {
		t.Fatalf("overridden order: %+v", o)
	}

	// An inactive allergy does not block, and an override with nothing to
	// override is not kept.
	in = rx(pat, "Aspirin")
	in.AllergyOverrideReason = ptr("just in case")
	if o, err = f.svc.Prescribe(f.doctor, in); err != nil || o.AllergyOverrideReason != nil {
		t.Fatalf("aspirin, allergy inactive: %+v %v", o, err)
	}
	// Another patient's allergy is not this one's.
	if _, err := f.svc.Prescribe(f.doctor, rx(pat, "Ibuprofen")); err != nil {
		t.Fatalf("ibuprofen for a patient not allergic to it: %v", err)
	}
	if _, err := f.svc.Prescribe(f.doctor, rx(f.patients[1].ID, "ibuprofen 400")); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("ibuprofen for the patient allergic to it: %v", err)
	}
}

func TestOnlyActiveDoctorsPrescribe(t *testing.T) {
	f := setup(t)
	anonymousStaff := auth.WithViewer(context.Background(), &auth.Viewer{APIKeyID: "key_x", Roles: []string{"integrator"}})
	for name, ctx := range map[string]context.Context{
		"nurse": f.nurse, "administrator": f.admin, "inactive doctor": f.retired, "API key": anonymousStaff, "anonymous": context.Background(),
	} {
		if _, err := f.svc.Prescribe(ctx, rx(f.patients[0].ID, "Paracetamol")); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("%s prescribing: %v", name, err)
		}
	}
	if n := f.orderCount(t); n != 0 {
		t.Fatalf("refused prescriptions were written: %d", n)
	}
}

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

func TestBadInputNamesTheFieldAndChangesNothing(t *testing.T) {
	f := setup(t)
	other := f.client.Encounter.Create().SetPatient(f.patients[1]).SetType(encounter.TypeOUTPATIENT).
		SetStartedAt(time.Now().UTC()).SaveX(f.system)
	for field, change := range map[string]func(*PrescribeMedicationInput){
		"input.patientId":    func(in *PrescribeMedicationInput) { in.PatientID = "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV" },
		"input.encounterId":  func(in *PrescribeMedicationInput) { in.EncounterID = ptr(other.ID) },
		"input.drug":         func(in *PrescribeMedicationInput) { in.Drug = ptr("  ") },
		"input.drugCode":     func(in *PrescribeMedicationInput) { in.DrugCode = ptr("012345678901234567890123456789012") },
		"input.doseAmount":   func(in *PrescribeMedicationInput) { in.DoseAmount = 0 },
		"input.doseUnit":     func(in *PrescribeMedicationInput) { in.DoseUnit = "" },
		"input.route":        func(in *PrescribeMedicationInput) { in.Route = "NASAL" },
		"input.frequency":    func(in *PrescribeMedicationInput) { in.Frequency = "" },
		"input.durationDays": func(in *PrescribeMedicationInput) { in.DurationDays = ptr(0) },
		"input.quantity":     func(in *PrescribeMedicationInput) { in.Quantity = -1 },
	} {
		in := rx(f.patients[0].ID, "Paracetamol")
		change(&in)
		if _, err := f.svc.Prescribe(f.doctor, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if _, err := f.svc.Prescribe(f.doctor, rx("pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", "Paracetamol")); !isBadInput(err, "input.patientId") {
		t.Errorf("unknown patient: %v", err)
	}
	if n := f.orderCount(t); n != 0 {
		t.Fatalf("bad input wrote %d orders", n)
	}
	if _, err := f.svc.Revise(f.doctor, "bad", revision("Paracetamol", 1)); !isBadInput(err, "id") {
		t.Errorf("revise bad id: %v", err)
	}
	if _, err := f.svc.Stop(f.doctor, "med_01ARZ3NDEKTSV4RRFFQ69G5FAV", " "); !isBadInput(err, "reason") {
		t.Errorf("stop without reason: %v", err)
	}
	if _, err := f.svc.Complete(f.nurse, "med_01ARZ3NDEKTSV4RRFFQ69G5FAV"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("complete unknown: %v", err)
	}
}

func TestRevisionHistory(t *testing.T) {
	f := setup(t)
	enc := f.client.Encounter.Create().SetPatient(f.patients[0]).SetType(encounter.TypeOUTPATIENT).
		SetStartedAt(time.Now().UTC()).SaveX(f.system)
	in := rx(f.patients[0].ID, "Doxycycline")
	in.EncounterID = &enc.ID
	first, err := f.svc.Prescribe(f.doctor, in)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.Revise(f.doctor, first.ID, revision("Doxycycline", 250))
	if err != nil {
		t.Fatal(err)
	}
	if second.Status != medicationorder.StatusACTIVE || second.ReplacesID == nil || *second.ReplacesID != first.ID ||
		second.PatientID != first.PatientID || second.DoseAmount != 250 || second.EncounterID == nil || *second.EncounterID != enc.ID {
		t.Fatalf("revision: %+v", second)
	}
	old := f.client.MedicationOrder.GetX(f.system, first.ID)
	if old.Status != medicationorder.StatusSUPERSEDED || old.EndedAt == nil {
		t.Fatalf("revised order: %+v", old)
	}
	if _, err := f.svc.Revise(f.doctor, first.ID, revision("Doxycycline", 125)); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("revising a superseded order: %v", err)
	}

	// A revision to a drug the patient is allergic to is refused whole: the
	// order it would replace stays ACTIVE.
	if _, err := f.svc.Revise(f.doctor, second.ID, revision("Penicillin G", 1)); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("revising to an allergen: %v", err)
	}
	if o := f.client.MedicationOrder.GetX(f.system, second.ID); o.Status != medicationorder.StatusACTIVE || o.EndedAt != nil {
		t.Fatalf("a refused revision changed the order: %+v", o)
	}
	withOverride := revision("Penicillin G", 1)
	withOverride.AllergyOverrideReason = ptr("desensitised")
	third, err := f.svc.Revise(f.doctor, second.ID, withOverride)
	if err != nil || third.AllergyOverrideReason == nil || *third.ReplacesID != second.ID {
		t.Fatalf("overridden revision: %+v %v", third, err)
	}
	if _, err := f.svc.Revise(f.nurse, third.ID, revision("Doxycycline", 1)); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("nurse revising: %v", err)
	}
	chain := f.client.MedicationOrder.Query().Where(medicationorder.PatientID(f.patients[0].ID)).
		Order(ent.Asc(medicationorder.FieldID)).AllX(f.system)
	if len(chain) != 3 || chain[0].Status != medicationorder.StatusSUPERSEDED || chain[1].Status != medicationorder.StatusSUPERSEDED ||
		chain[2].Status != medicationorder.StatusACTIVE {
		t.Fatalf("history: %+v", chain)
	}
}

func TestStopAndComplete(t *testing.T) {
	f := setup(t)
	a, _ := f.svc.Prescribe(f.doctor, rx(f.patients[0].ID, "Paracetamol"))
	b, _ := f.svc.Prescribe(f.doctor, rx(f.patients[0].ID, "Metformin"))

	if _, err := f.svc.Stop(f.nurse, a.ID, "no longer needed"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("nurse stopping: %v", err)
	}
	stopped, err := f.svc.Stop(f.doctor, a.ID, " no longer needed ")
	if err != nil || stopped.Status != medicationorder.StatusSTOPPED || *stopped.StopReason != "no longer needed" || stopped.EndedAt == nil {
		t.Fatalf("stop: %+v %v", stopped, err)
	}
	for name, try := range map[string]func() error{
		"stop twice":       func() error { _, err := f.svc.Stop(f.doctor, a.ID, "again"); return err },
		"complete stopped": func() error { _, err := f.svc.Complete(f.nurse, a.ID); return err },
		"revise stopped":   func() error { _, err := f.svc.Revise(f.doctor, a.ID, revision("Paracetamol", 1)); return err },
	} {
		if err := try(); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("%s: %v", name, err)
		}
	}

	if _, err := f.svc.Complete(f.admin, b.ID); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("administrator completing: %v", err)
	}
	done, err := f.svc.Complete(f.nurse, b.ID)
	if err != nil || done.Status != medicationorder.StatusCOMPLETED || done.EndedAt == nil || done.StopReason != nil {
		t.Fatalf("complete: %+v %v", done, err)
	}
	if _, err := f.svc.Stop(f.doctor, b.ID, "x"); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("stop completed: %v", err)
	}
}

func TestConcurrentRevisionsOneWins(t *testing.T) {
	f := setup(t)
	o, err := f.svc.Prescribe(f.doctor, rx(f.patients[0].ID, "Paracetamol"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Revise(f.doctor, o.ID, revision("Paracetamol", float64(100+i)))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("a losing revision: %v", err)
		}
	}
	replacements := f.client.MedicationOrder.Query().Where(medicationorder.ReplacesID(o.ID)).CountX(f.system)
	if won != 1 || replacements != 1 {
		t.Fatalf("%d revisions won, %d replacements written", won, replacements)
	}
}
