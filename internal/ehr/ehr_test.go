package ehr

import (
	"context"
	"encoding/json"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/historyitem"
	"github.com/hmis-dev/hmis/ent/observation"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/problem"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type pokes struct {
	mu sync.Mutex
	n  int
}

func (p *pokes) Poke() { p.mu.Lock(); p.n++; p.mu.Unlock() }

func (p *pokes) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.n }

type fixture struct {
	svc      *Service
	client   *ent.Client
	notify   *pokes
	dep      *ent.Department
	doctor   *ent.Staff
	clerk    *ent.Staff
	patients []*ent.Patient
	born     time.Time
}

// setup gives a fresh database with the ICD-10 catalog, a department, a
// doctor and a billing clerk, and two patients; ctx acts as the doctor.
func setup(t *testing.T) (context.Context, fixture) {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	f := fixture{client: c, notify: &pokes{}, born: time.Date(1980, 5, 17, 0, 0, 0, 0, time.UTC)}
	f.dep = c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	f.doctor = c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(staff.KindDOCTOR).SetDepartment(f.dep).SaveX(sys)
	f.clerk = c.Staff.Create().SetGivenName("L").SetFamilyName("O").SetKind(staff.KindBILLING_CLERK).SetDepartment(f.dep).SaveX(sys)
	for i, mrn := range []string{"100000009", "100000017"} {
		f.patients = append(f.patients, c.Patient.Create().SetMrn(mrn).SetGivenName("P").SetFamilyName("Q").
			SetBirthDate(f.born.AddDate(i, 0, 0)).SetSex(patient.SexOTHER).SaveX(sys))
	}
	if err := SeedICD10(sys, c); err != nil {
		t.Fatal(err)
	}
	st.OnEventsCommitted(f.notify.Poke)
	f.svc = NewService(st, nil)
	ctx := auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_test", Roles: []string{"doctor"}, StaffID: f.doctor.ID})
	return ctx, f
}

// wantCode fails unless err carries code (and, for bad input, names field).
func wantCode(t *testing.T, what string, err error, code apperr.Code, field string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != code || (field != "" && e.Field != field) {
		t.Fatalf("%s: want %s on %q, got %v (%#v)", what, code, field, err, e)
	}
}

func ptr[T any](v T) *T { return &v }

func date(y int, m time.Month, d int) *time.Time {
	t := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	return &t
}

func TestEncounterStateMachine(t *testing.T) {
	ctx, f := setup(t)
	start := func() *ent.Encounter {
		t.Helper()
		e, err := f.svc.StartEncounter(ctx, StartEncounterInput{PatientID: f.patients[0].ID, Type: encounter.TypeEMERGENCY,
			DepartmentID: f.dep.ID, ProviderID: &f.doctor.ID, Reason: "  Chest pain "})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	e := start()
	if e.Status != encounter.StatusIN_PROGRESS || e.Reason == nil || *e.Reason != "Chest pain" || e.StartedAt.IsZero() || e.EndedAt != nil {
		t.Fatalf("started: %+v", e)
	}
	e, err := f.svc.FinishEncounter(ctx, e.ID)
	if err != nil || e.Status != encounter.StatusFINISHED || e.EndedAt == nil {
		t.Fatalf("finish: %+v %v", e, err)
	}
	_, err = f.svc.FinishEncounter(ctx, e.ID)
	wantCode(t, "finish twice", err, apperr.Conflict, "")
	_, err = f.svc.CancelEncounter(ctx, e.ID, "wrong patient")
	wantCode(t, "cancel a finished one", err, apperr.Conflict, "")

	e = start()
	_, err = f.svc.CancelEncounter(ctx, e.ID, "  ")
	wantCode(t, "cancel without a reason", err, apperr.BadUserInput, "reason")
	e, err = f.svc.CancelEncounter(ctx, e.ID, "registered for the wrong patient")
	if err != nil || e.Status != encounter.StatusCANCELLED || e.EndedAt == nil || e.CancelReason == nil || *e.CancelReason != "registered for the wrong patient" {
		t.Fatalf("cancel: %+v %v", e, err)
	}
	_, err = f.svc.FinishEncounter(ctx, e.ID)
	wantCode(t, "finish a cancelled one", err, apperr.Conflict, "")
	_, err = f.svc.CancelEncounter(ctx, e.ID, "again")
	wantCode(t, "cancel twice", err, apperr.Conflict, "")

	_, err = f.svc.FinishEncounter(ctx, "enc_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	wantCode(t, "finish unknown", err, apperr.NotFound, "")
	_, err = f.svc.FinishEncounter(ctx, "garbage")
	wantCode(t, "finish garbage", err, apperr.BadUserInput, "id")

	// A stay's encounter ends with the discharge, not here.
	stay := f.client.Encounter.Create().SetPatient(f.patients[1]).SetType(encounter.TypeINPATIENT).
		SetDepartment(f.dep).SetStartedAt(time.Now().UTC()).SaveX(ctx)
	_, err = f.svc.FinishEncounter(ctx, stay.ID)
	wantCode(t, "finish an inpatient encounter", err, apperr.Conflict, "")
}

func TestEncounterConcurrentEndsOneWins(t *testing.T) {
	ctx, f := setup(t)
	e, err := f.svc.StartEncounter(ctx, StartEncounterInput{PatientID: f.patients[0].ID, Type: encounter.TypeOUTPATIENT,
		DepartmentID: f.dep.ID, Reason: "Cough"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				_, errs[i] = f.svc.FinishEncounter(ctx, e.ID)
			} else {
				_, errs[i] = f.svc.CancelEncounter(ctx, e.ID, "left before being seen")
			}
		}(i)
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case apperr.CodeOf(err) != apperr.Conflict:
			t.Fatalf("a loser got %v, want CONFLICT", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d ends succeeded, want exactly 1", won)
	}
}

func TestStartEncounterBadInput(t *testing.T) {
	ctx, f := setup(t)
	inactive := f.client.Staff.Create().SetGivenName("A").SetFamilyName("B").SetKind(staff.KindNURSE).SetActive(false).SaveX(ctx)
	merged := f.client.Patient.Create().SetMrn("100000025").SetGivenName("D").SetFamilyName("U").SetBirthDate(f.born).
		SetSex(patient.SexOTHER).SetStatus(patient.StatusMERGED).SaveX(ctx)
	valid := func() StartEncounterInput {
		return StartEncounterInput{PatientID: f.patients[0].ID, Type: encounter.TypeOUTPATIENT, DepartmentID: f.dep.ID, Reason: "Cough"}
	}
	for _, tc := range []struct {
		field  string
		change func(*StartEncounterInput)
	}{
		{"input.patientId", func(in *StartEncounterInput) { in.PatientID = "nope" }},
		{"input.patientId", func(in *StartEncounterInput) { in.PatientID = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.patientId", func(in *StartEncounterInput) { in.PatientID = merged.ID }},
		{"input.type", func(in *StartEncounterInput) { in.Type = encounter.TypeINPATIENT }},
		{"input.type", func(in *StartEncounterInput) { in.Type = "HOME_VISIT" }},
		{"input.departmentId", func(in *StartEncounterInput) { in.DepartmentID = f.doctor.ID }},
		{"input.departmentId", func(in *StartEncounterInput) { in.DepartmentID = "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.providerId", func(in *StartEncounterInput) { in.ProviderID = &f.dep.ID }},
		{"input.providerId", func(in *StartEncounterInput) { in.ProviderID = &f.clerk.ID }},
		{"input.providerId", func(in *StartEncounterInput) { in.ProviderID = &inactive.ID }},
		{"input.reason", func(in *StartEncounterInput) { in.Reason = " " }},
		{"input.reason", func(in *StartEncounterInput) { in.Reason = string(make([]byte, 501)) }},
	} {
		in := valid()
		tc.change(&in)
		_, err := f.svc.StartEncounter(ctx, in)
		wantCode(t, tc.field, err, apperr.BadUserInput, tc.field)
	}
	if n := f.client.Encounter.Query().CountX(ctx); n != 0 {
		t.Fatalf("refused starts left %d encounters", n)
	}
}

func TestICD10SeedIsIdempotentAndSearchable(t *testing.T) {
	ctx, f := setup(t)
	sys := auth.SystemContext(context.Background())
	if n := f.client.Icd10Code.Query().CountX(ctx); n != len(icd10Catalog) || n < 60 {
		t.Fatalf("catalog has %d codes, want %d (at least 60)", n, len(icd10Catalog))
	}
	// A description edited by hand is restored; a code added by hand stays.
	f.client.Icd10Code.Update().Where().SetDisplay("changed").ExecX(sys)
	f.client.Icd10Code.Create().SetCode("Z99.89").SetDisplay("Dependence on other enabling machines and devices").ExecX(sys)
	for i := 0; i < 2; i++ {
		if err := SeedICD10(sys, f.client); err != nil {
			t.Fatal(err)
		}
	}
	all := f.client.Icd10Code.Query().AllX(ctx)
	if len(all) != len(icd10Catalog)+1 {
		t.Fatalf("after reseeding: %d codes, want %d", len(all), len(icd10Catalog)+1)
	}
	displays := map[string]string{}
	for _, c := range all {
		displays[c.Code] = c.Display
	}
	for _, e := range icd10Catalog {
		if displays[e.code] != e.display {
			t.Fatalf("%s reads %q, want %q", e.code, displays[e.code], e.display)
		}
	}
	for code, display := range map[string]string{"I10": "Essential (primary) hypertension",
		"E11.9": "Type 2 diabetes mellitus without complications", "J45.909": "Unspecified asthma, uncomplicated",
		"B54": "Unspecified malaria", "I48.91": "Unspecified atrial fibrillation", "M54.5": "Low back pain"} {
		if displays[code] != display {
			t.Fatalf("%s reads %q, want %q", code, displays[code], display)
		}
	}

	codes := func(text string, first *int) []string {
		t.Helper()
		found, err := f.svc.SearchICD10(ctx, text, first)
		if err != nil {
			t.Fatalf("search %q: %v", text, err)
		}
		var out []string
		for _, c := range found {
			out = append(out, c.Code)
		}
		return out
	}
	has := func(list []string, code string) bool {
		for _, c := range list {
			if c == code {
				return true
			}
		}
		return false
	}
	if got := codes("e119", nil); len(got) == 0 || got[0] != "E11.9" {
		t.Fatalf("e119: %v", got)
	}
	if got := codes("E11", nil); len(got) == 0 || got[0] != "E11.9" {
		t.Fatalf("E11: %v", got)
	}
	if got := codes("i1", nil); len(got) == 0 || got[0] != "I10" {
		t.Fatalf("i1: %v", got)
	}
	if got := codes("diabetes TYPE 2", nil); !has(got, "E11.9") || has(got, "E10.9") {
		t.Fatalf("diabetes type 2: %v", got)
	}
	if got := codes("hypertension", nil); !has(got, "I10") {
		t.Fatalf("hypertension: %v", got)
	}
	if got := codes("malaria", nil); !has(got, "B54") || !has(got, "B50.9") {
		t.Fatalf("malaria: %v", got)
	}
	if got := codes("unspecified", ptr(3)); len(got) != 3 || !sort.StringsAreSorted(got) {
		t.Fatalf("first 3: %v", got)
	}
	if got := codes("no such illness", nil); len(got) != 0 {
		t.Fatalf("nonsense found %v", got)
	}
	_, err := f.svc.SearchICD10(ctx, "  ", nil)
	wantCode(t, "empty text", err, apperr.BadUserInput, "text")
	_, err = f.svc.SearchICD10(ctx, "asthma", ptr(0))
	wantCode(t, "first 0", err, apperr.BadUserInput, "first")
	_, err = f.svc.SearchICD10(ctx, "asthma", ptr(MaxICD10Results+1))
	wantCode(t, "first too large", err, apperr.BadUserInput, "first")
}

func TestProblemLifecycle(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[0]
	visit, err := f.svc.StartEncounter(ctx, StartEncounterInput{PatientID: p.ID, Type: encounter.TypeOUTPATIENT, DepartmentID: f.dep.ID, Reason: "Thirst"})
	if err != nil {
		t.Fatal(err)
	}
	prb, err := f.svc.RecordProblem(ctx, RecordProblemInput{PatientID: p.ID, EncounterID: &visit.ID, Icd10Code: " e11.9 ",
		OnsetDate: date(2020, 3, 1), Note: ptr("HbA1c 8.1%")})
	if err != nil {
		t.Fatal(err)
	}
	if prb.Status != problem.StatusACTIVE || prb.Icd10Code != "E11.9" || prb.Display != "Type 2 diabetes mellitus without complications" ||
		prb.RecordedByID == nil || *prb.RecordedByID != f.doctor.ID || prb.EncounterID == nil || *prb.EncounterID != visit.ID {
		t.Fatalf("recorded: %+v", prb)
	}

	_, err = f.svc.ResolveProblem(ctx, prb.ID, date(2019, 1, 1))
	wantCode(t, "resolved before onset", err, apperr.BadUserInput, "resolvedDate")
	_, err = f.svc.ResolveProblem(ctx, prb.ID, ptr(time.Now().UTC().AddDate(0, 0, 3)))
	wantCode(t, "resolved in the future", err, apperr.BadUserInput, "resolvedDate")
	resolved, err := f.svc.ResolveProblem(ctx, prb.ID, nil)
	if err != nil || resolved.Status != problem.StatusRESOLVED || resolved.ResolvedDate == nil || !resolved.ResolvedDate.Equal(f.svc.today()) {
		t.Fatalf("resolve: %+v %v", resolved, err)
	}
	_, err = f.svc.ResolveProblem(ctx, prb.ID, nil)
	wantCode(t, "resolve twice", err, apperr.Conflict, "")
	withdrawn, err := f.svc.MarkProblemEnteredInError(ctx, prb.ID)
	if err != nil || withdrawn.Status != problem.StatusENTERED_IN_ERROR {
		t.Fatalf("entered in error: %+v %v", withdrawn, err)
	}
	_, err = f.svc.MarkProblemEnteredInError(ctx, prb.ID)
	wantCode(t, "entered in error twice", err, apperr.Conflict, "")
	_, err = f.svc.ResolveProblem(ctx, prb.ID, nil)
	wantCode(t, "resolve one entered in error", err, apperr.Conflict, "")
	_, err = f.svc.ResolveProblem(ctx, "prb_01ARZ3NDEKTSV4RRFFQ69G5FAV", nil)
	wantCode(t, "resolve unknown", err, apperr.NotFound, "")

	// An ACTIVE problem can be withdrawn too.
	other, err := f.svc.RecordProblem(ctx, RecordProblemInput{PatientID: p.ID, Icd10Code: "I10"})
	if err != nil {
		t.Fatal(err)
	}
	if other, err = f.svc.MarkProblemEnteredInError(ctx, other.ID); err != nil || other.Status != problem.StatusENTERED_IN_ERROR {
		t.Fatalf("withdraw an active problem: %+v %v", other, err)
	}
}

func TestRecordProblemBadInput(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[0]
	theirs, err := f.svc.StartEncounter(ctx, StartEncounterInput{PatientID: f.patients[1].ID, Type: encounter.TypeOUTPATIENT, DepartmentID: f.dep.ID, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	cancelled, err := f.svc.StartEncounter(ctx, StartEncounterInput{PatientID: p.ID, Type: encounter.TypeOUTPATIENT, DepartmentID: f.dep.ID, Reason: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CancelEncounter(ctx, cancelled.ID, "duplicate"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		field string
		in    RecordProblemInput
	}{
		{"input.patientId", RecordProblemInput{PatientID: "x", Icd10Code: "I10"}},
		{"input.encounterId", RecordProblemInput{PatientID: p.ID, EncounterID: ptr("x"), Icd10Code: "I10"}},
		{"input.encounterId", RecordProblemInput{PatientID: p.ID, EncounterID: &theirs.ID, Icd10Code: "I10"}},
		{"input.encounterId", RecordProblemInput{PatientID: p.ID, EncounterID: &cancelled.ID, Icd10Code: "I10"}},
		{"input.icd10Code", RecordProblemInput{PatientID: p.ID, Icd10Code: ""}},
		{"input.icd10Code", RecordProblemInput{PatientID: p.ID, Icd10Code: "X99.9"}},
		{"input.onsetDate", RecordProblemInput{PatientID: p.ID, Icd10Code: "I10", OnsetDate: ptr(time.Now().UTC().AddDate(0, 0, 3))}},
		{"input.onsetDate", RecordProblemInput{PatientID: p.ID, Icd10Code: "I10", OnsetDate: date(1970, 1, 1)}},
		{"input.note", RecordProblemInput{PatientID: p.ID, Icd10Code: "I10", Note: ptr(string(make([]rune, MaxNoteLength+1)))}},
	} {
		_, err := f.svc.RecordProblem(ctx, tc.in)
		wantCode(t, tc.field, err, apperr.BadUserInput, tc.field)
	}
	if n := f.client.Problem.Query().CountX(ctx); n != 0 {
		t.Fatalf("refused problems left %d rows", n)
	}
}

func TestAllergies(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[0]
	record := func(patientID, substance string) (*ent.Allergy, error) {
		return f.svc.RecordAllergy(ctx, RecordAllergyInput{PatientID: patientID, Substance: substance,
			Category: allergy.CategoryDRUG, Reaction: ptr("Hives"), Severity: allergy.SeveritySEVERE})
	}
	first, err := record(p.ID, "  Penicillin ")
	if err != nil {
		t.Fatal(err)
	}
	if first.Substance != "Penicillin" || first.Status != allergy.StatusACTIVE || first.RecordedByID == nil || *first.RecordedByID != f.doctor.ID {
		t.Fatalf("recorded: %+v", first)
	}
	_, err = record(p.ID, "PENICILLIN")
	wantCode(t, "a second active allergy to the same substance", err, apperr.Conflict, "")
	if _, err := record(f.patients[1].ID, "Penicillin"); err != nil {
		t.Fatalf("another patient's allergy to the same substance: %v", err)
	}

	// Omitted fields are kept, a null reaction cleared, a null severity refused.
	updated, err := f.svc.UpdateAllergy(ctx, first.ID, UpdateAllergyInput{Reaction: graphql.OmittableOf[*string](nil)})
	if err != nil || updated.Reaction != nil || updated.Severity != allergy.SeveritySEVERE || updated.Status != allergy.StatusACTIVE {
		t.Fatalf("clear reaction: %+v %v", updated, err)
	}
	_, err = f.svc.UpdateAllergy(ctx, first.ID, UpdateAllergyInput{Severity: graphql.OmittableOf[*allergy.Severity](nil)})
	wantCode(t, "clear severity", err, apperr.BadUserInput, "input.severity")
	_, err = f.svc.UpdateAllergy(ctx, first.ID, UpdateAllergyInput{Status: graphql.OmittableOf(ptr(allergy.Status("GONE")))})
	wantCode(t, "unknown status", err, apperr.BadUserInput, "input.status")
	updated, err = f.svc.UpdateAllergy(ctx, first.ID, UpdateAllergyInput{
		Reaction: graphql.OmittableOf(ptr("Anaphylaxis")), Severity: graphql.OmittableOf(ptr(allergy.SeverityLIFE_THREATENING)),
		Status: graphql.OmittableOf(ptr(allergy.StatusINACTIVE))})
	if err != nil || *updated.Reaction != "Anaphylaxis" || updated.Severity != allergy.SeverityLIFE_THREATENING || updated.Status != allergy.StatusINACTIVE {
		t.Fatalf("update: %+v %v", updated, err)
	}

	// With the first one inactive, a new active one may be recorded, and
	// then the first cannot be reactivated beside it.
	second, err := record(p.ID, "penicillin")
	if err != nil {
		t.Fatalf("record again after inactivating: %v", err)
	}
	_, err = f.svc.UpdateAllergy(ctx, first.ID, UpdateAllergyInput{Status: graphql.OmittableOf(ptr(allergy.StatusACTIVE))})
	wantCode(t, "reactivate beside an active duplicate", err, apperr.Conflict, "")
	if _, err := f.svc.UpdateAllergy(ctx, second.ID, UpdateAllergyInput{Status: graphql.OmittableOf(ptr(allergy.StatusENTERED_IN_ERROR))}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.UpdateAllergy(ctx, second.ID, UpdateAllergyInput{Status: graphql.OmittableOf(ptr(allergy.StatusACTIVE))})
	wantCode(t, "change one entered in error", err, apperr.Conflict, "")
	if again, err := f.svc.UpdateAllergy(ctx, first.ID, UpdateAllergyInput{Status: graphql.OmittableOf(ptr(allergy.StatusACTIVE))}); err != nil || again.Status != allergy.StatusACTIVE {
		t.Fatalf("reactivate once the duplicate is gone: %+v %v", again, err)
	}
	_, err = f.svc.UpdateAllergy(ctx, "alg_01ARZ3NDEKTSV4RRFFQ69G5FAV", UpdateAllergyInput{})
	wantCode(t, "update unknown", err, apperr.NotFound, "")

	for _, tc := range []struct {
		field string
		in    RecordAllergyInput
	}{
		{"input.patientId", RecordAllergyInput{PatientID: "x", Substance: "Latex", Category: allergy.CategoryENVIRONMENT, Severity: allergy.SeverityMILD}},
		{"input.substance", RecordAllergyInput{PatientID: p.ID, Substance: " ", Category: allergy.CategoryENVIRONMENT, Severity: allergy.SeverityMILD}},
		{"input.category", RecordAllergyInput{PatientID: p.ID, Substance: "Latex", Category: "PLANT", Severity: allergy.SeverityMILD}},
		{"input.reaction", RecordAllergyInput{PatientID: p.ID, Substance: "Latex", Category: allergy.CategoryENVIRONMENT, Reaction: ptr(string(make([]rune, 301))), Severity: allergy.SeverityMILD}},
		{"input.severity", RecordAllergyInput{PatientID: p.ID, Substance: "Latex", Category: allergy.CategoryENVIRONMENT, Severity: "HUGE"}},
		{"input.onsetDate", RecordAllergyInput{PatientID: p.ID, Substance: "Latex", Category: allergy.CategoryENVIRONMENT, Severity: allergy.SeverityMILD, OnsetDate: date(1970, 1, 1)}},
	} {
		_, err := f.svc.RecordAllergy(ctx, tc.in)
		wantCode(t, tc.field, err, apperr.BadUserInput, tc.field)
	}
	if n := f.client.Allergy.Query().Where(allergy.SubstanceEQ("Latex")).CountX(ctx); n != 0 {
		t.Fatalf("refused allergies left %d rows", n)
	}
}

func TestConcurrentDuplicateAllergiesOneWins(t *testing.T) {
	ctx, f := setup(t)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = f.svc.RecordAllergy(ctx, RecordAllergyInput{PatientID: f.patients[0].ID, Substance: "Sulfonamides",
				Category: allergy.CategoryDRUG, Severity: allergy.SeverityMODERATE})
		}(i)
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case apperr.CodeOf(err) != apperr.Conflict:
			t.Fatalf("a loser got %v, want CONFLICT", err)
		}
	}
	if rows := f.client.Allergy.Query().CountX(ctx); won != 1 || rows != 1 {
		t.Fatalf("%d recordings succeeded and %d rows exist, want exactly 1", won, rows)
	}
}

func vitalsEvents(t *testing.T, ctx context.Context, c *ent.Client) []VitalsPayload {
	t.Helper()
	rows := c.OutboxEvent.Query().Where(outboxevent.Topic(Topic)).Order(ent.Asc(outboxevent.FieldCreatedAt)).AllX(ctx)
	out := make([]VitalsPayload, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r.Payload, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func TestRecordVitals(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[0]
	taken := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	obs, err := f.svc.RecordVitals(ctx, RecordVitalsInput{PatientID: p.ID, EffectiveAt: &taken,
		HeartRate: ptr(72), SystolicBp: ptr(128), DiastolicBp: ptr(82), Temperature: ptr(36.8), Spo2: ptr(97),
		RespiratoryRate: ptr(16), Weight: ptr(70.5), Height: ptr(172.0)})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		unit  string
		value float64
	}{"8867-4": {"/min", 72}, "8480-6": {"mm[Hg]", 128}, "8462-4": {"mm[Hg]", 82}, "8310-5": {"Cel", 36.8},
		"59408-5": {"%", 97}, "9279-1": {"/min", 16}, "29463-7": {"kg", 70.5}, "8302-2": {"cm", 172}}
	if len(obs) != len(want) {
		t.Fatalf("%d observations, want %d", len(obs), len(want))
	}
	for _, o := range obs {
		w, ok := want[o.Code]
		if !ok || o.Unit != w.unit || o.Value != w.value || !o.EffectiveAt.Equal(taken) || o.Status != observation.StatusFINAL ||
			o.RecordedByID == nil || *o.RecordedByID != f.doctor.ID || o.PatientID != p.ID || o.Display == "" {
			t.Fatalf("observation %+v, want %+v", o, w)
		}
		delete(want, o.Code)
	}
	evs := vitalsEvents(t, ctx, f.client)
	if len(evs) != 1 || evs[0].PatientID != p.ID || len(evs[0].ObservationIDs) != 8 || evs[0].WardID != "" || f.notify.count() != 1 {
		t.Fatalf("events %+v, pokes %d", evs, f.notify.count())
	}

	// One sign alone, now by default.
	before := time.Now().UTC().Add(-time.Second)
	obs, err = f.svc.RecordVitals(ctx, RecordVitalsInput{PatientID: p.ID, Temperature: ptr(38.4)})
	if err != nil || len(obs) != 1 || obs[0].Code != "8310-5" || obs[0].EffectiveAt.Before(before) {
		t.Fatalf("temperature alone: %+v %v", obs, err)
	}
}

func TestRecordVitalsBadInputNamesTheField(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[0]
	for _, tc := range []struct {
		field string
		in    RecordVitalsInput
	}{
		{"input", RecordVitalsInput{PatientID: p.ID}},
		{"input.patientId", RecordVitalsInput{PatientID: "x", HeartRate: ptr(70)}},
		{"input.patientId", RecordVitalsInput{PatientID: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", HeartRate: ptr(70)}},
		{"input.encounterId", RecordVitalsInput{PatientID: p.ID, EncounterID: ptr("enc_01ARZ3NDEKTSV4RRFFQ69G5FAV"), HeartRate: ptr(70)}},
		{"input.effectiveAt", RecordVitalsInput{PatientID: p.ID, EffectiveAt: ptr(time.Now().Add(time.Hour)), HeartRate: ptr(70)}},
		{"input.effectiveAt", RecordVitalsInput{PatientID: p.ID, EffectiveAt: ptr(f.born.Add(-time.Hour)), HeartRate: ptr(70)}},
		{"input.heartRate", RecordVitalsInput{PatientID: p.ID, HeartRate: ptr(7)}},
		{"input.heartRate", RecordVitalsInput{PatientID: p.ID, HeartRate: ptr(720)}},
		{"input.systolicBp", RecordVitalsInput{PatientID: p.ID, SystolicBp: ptr(400), DiastolicBp: ptr(80)}},
		{"input.diastolicBp", RecordVitalsInput{PatientID: p.ID, SystolicBp: ptr(120), DiastolicBp: ptr(5)}},
		{"input.systolicBp", RecordVitalsInput{PatientID: p.ID, SystolicBp: ptr(80), DiastolicBp: ptr(80)}},
		{"input.diastolicBp", RecordVitalsInput{PatientID: p.ID, SystolicBp: ptr(120)}},
		{"input.systolicBp", RecordVitalsInput{PatientID: p.ID, DiastolicBp: ptr(80)}},
		{"input.temperature", RecordVitalsInput{PatientID: p.ID, Temperature: ptr(98.6)}},
		{"input.spo2", RecordVitalsInput{PatientID: p.ID, Spo2: ptr(101)}},
		{"input.respiratoryRate", RecordVitalsInput{PatientID: p.ID, RespiratoryRate: ptr(0)}},
		{"input.weight", RecordVitalsInput{PatientID: p.ID, Weight: ptr(0.0)}},
		{"input.height", RecordVitalsInput{PatientID: p.ID, Height: ptr(1.72)}},
		// The first bad field in form order is named, and nothing is kept.
		{"input.heartRate", RecordVitalsInput{PatientID: p.ID, HeartRate: ptr(1), Temperature: ptr(37.0), Height: ptr(1.72)}},
	} {
		_, err := f.svc.RecordVitals(ctx, tc.in)
		wantCode(t, tc.field, err, apperr.BadUserInput, tc.field)
	}
	if n := f.client.Observation.Query().CountX(ctx); n != 0 {
		t.Fatalf("refused vitals left %d observations", n)
	}
	if evs := vitalsEvents(t, ctx, f.client); len(evs) != 0 || f.notify.count() != 0 {
		t.Fatalf("refused vitals published %+v", evs)
	}
}

func TestVitalsEventNamesTheCurrentWard(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[1]
	ward := f.client.Ward.Create().SetCode("MED-A").SetName("Medical A").SetDepartment(f.dep).SaveX(ctx)
	b := f.client.Bed.Create().SetWard(ward).SetCode("MED-A-01").SaveX(ctx)
	stay := f.client.Admission.Create().SetPatient(p).SetBed(b).SetAttending(f.doctor).SetAdmittedAt(time.Now().UTC()).
		SetReason("Pneumonia").SetAdmissionType(admission.AdmissionTypeEMERGENCY).SaveX(ctx)
	if _, err := f.svc.RecordVitals(ctx, RecordVitalsInput{PatientID: p.ID, HeartRate: ptr(110)}); err != nil {
		t.Fatal(err)
	}
	f.client.Admission.UpdateOne(stay).SetStatus(admission.StatusDISCHARGED).SetDischargedAt(time.Now().UTC()).ExecX(ctx)
	if _, err := f.svc.RecordVitals(ctx, RecordVitalsInput{PatientID: p.ID, HeartRate: ptr(80)}); err != nil {
		t.Fatal(err)
	}
	evs := vitalsEvents(t, ctx, f.client)
	if len(evs) != 2 || evs[0].WardID != ward.ID || evs[1].WardID != "" {
		t.Fatalf("events %+v, want the ward while admitted and none after discharge", evs)
	}
}

func TestAmendmentKeepsHistory(t *testing.T) {
	ctx, f := setup(t)
	obs, err := f.svc.RecordVitals(ctx, RecordVitalsInput{PatientID: f.patients[0].ID, Weight: ptr(7.5)})
	if err != nil {
		t.Fatal(err)
	}
	old := obs[0]
	fixed, err := f.svc.AmendObservation(ctx, old.ID, AmendObservationInput{Value: 75, Reason: "decimal point in the wrong place"})
	if err != nil {
		t.Fatal(err)
	}
	if fixed.ID == old.ID || fixed.Status != observation.StatusFINAL || fixed.Value != 75 || fixed.ReplacesID == nil ||
		*fixed.ReplacesID != old.ID || fixed.AmendReason == nil || fixed.Code != old.Code || fixed.Unit != old.Unit ||
		!fixed.EffectiveAt.Equal(old.EffectiveAt) {
		t.Fatalf("amendment: %+v of %+v", fixed, old)
	}
	kept := f.client.Observation.GetX(ctx, old.ID)
	if kept.Status != observation.StatusAMENDED || kept.Value != 7.5 {
		t.Fatalf("the old observation: %+v", kept)
	}
	if replacedBy := f.client.Observation.GetX(ctx, old.ID).QueryReplacedBy().OnlyX(ctx); replacedBy.ID != fixed.ID {
		t.Fatalf("replacedBy %s, want %s", replacedBy.ID, fixed.ID)
	}

	_, err = f.svc.AmendObservation(ctx, old.ID, AmendObservationInput{Value: 76, Reason: "again"})
	wantCode(t, "amend an AMENDED observation", err, apperr.Conflict, "")
	_, err = f.svc.MarkObservationEnteredInError(ctx, old.ID, "wrong patient")
	wantCode(t, "withdraw an AMENDED observation", err, apperr.Conflict, "")
	_, err = f.svc.AmendObservation(ctx, fixed.ID, AmendObservationInput{Value: 5000, Reason: "typo"})
	wantCode(t, "amend to an implausible weight", err, apperr.BadUserInput, "input.value")
	_, err = f.svc.AmendObservation(ctx, fixed.ID, AmendObservationInput{Value: 75, Reason: "typo"})
	wantCode(t, "amend to the same value", err, apperr.BadUserInput, "input.value")
	_, err = f.svc.AmendObservation(ctx, fixed.ID, AmendObservationInput{Value: 74, Reason: " "})
	wantCode(t, "amend without a reason", err, apperr.BadUserInput, "input.reason")
	_, err = f.svc.AmendObservation(ctx, "obs_01ARZ3NDEKTSV4RRFFQ69G5FAV", AmendObservationInput{Value: 74, Reason: "x"})
	wantCode(t, "amend unknown", err, apperr.NotFound, "")

	// The chain goes on from the current version.
	again, err := f.svc.AmendObservation(ctx, fixed.ID, AmendObservationInput{Value: 74.8, Reason: "scale recalibrated"})
	if err != nil || *again.ReplacesID != fixed.ID {
		t.Fatalf("second amendment: %+v %v", again, err)
	}
	withdrawn, err := f.svc.MarkObservationEnteredInError(ctx, again.ID, "weighed the wrong patient")
	if err != nil || withdrawn.Status != observation.StatusENTERED_IN_ERROR || withdrawn.AmendReason == nil {
		t.Fatalf("withdraw: %+v %v", withdrawn, err)
	}
	_, err = f.svc.MarkObservationEnteredInError(ctx, again.ID, "again")
	wantCode(t, "withdraw twice", err, apperr.Conflict, "")
	_, err = f.svc.AmendObservation(ctx, again.ID, AmendObservationInput{Value: 70, Reason: "x"})
	wantCode(t, "amend one entered in error", err, apperr.Conflict, "")
	_, err = f.svc.MarkObservationEnteredInError(ctx, fixed.ID, "")
	wantCode(t, "withdraw without a reason", err, apperr.BadUserInput, "reason")

	statuses := map[observation.Status]int{}
	for _, o := range f.client.Observation.Query().AllX(ctx) {
		statuses[o.Status]++
	}
	if statuses[observation.StatusAMENDED] != 2 || statuses[observation.StatusENTERED_IN_ERROR] != 1 || statuses[observation.StatusFINAL] != 0 {
		t.Fatalf("history: %v", statuses)
	}
	var types []string
	for _, r := range f.client.OutboxEvent.Query().Where(outboxevent.Topic(Topic)).Order(ent.Asc(outboxevent.FieldCreatedAt)).AllX(ctx) {
		types = append(types, r.Type)
	}
	if len(types) != 4 || types[0] != "RECORDED" || types[1] != "AMENDED" || types[2] != "AMENDED" || types[3] != "ENTERED_IN_ERROR" {
		t.Fatalf("vitals events: %v", types)
	}
}

func TestConcurrentAmendmentsOneWins(t *testing.T) {
	ctx, f := setup(t)
	obs, err := f.svc.RecordVitals(ctx, RecordVitalsInput{PatientID: f.patients[0].ID, HeartRate: ptr(60)})
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = f.svc.AmendObservation(ctx, obs[0].ID, AmendObservationInput{Value: float64(61 + i), Reason: "recounted"})
		}(i)
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case apperr.CodeOf(err) != apperr.Conflict:
			t.Fatalf("a loser got %v, want CONFLICT", err)
		}
	}
	if rows := f.client.Observation.Query().CountX(ctx); won != 1 || rows != 2 {
		t.Fatalf("%d amendments succeeded, %d observations exist; want 1 and 2", won, rows)
	}
}

func TestRecordObservation(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[0]
	glucose, err := f.svc.RecordObservation(ctx, RecordObservationInput{PatientID: p.ID, Code: "2339-0",
		Display: "Glucose [Mass/volume] in Blood", Value: 112, Unit: "mg/dL"})
	if err != nil || glucose.Code != "2339-0" || glucose.Status != observation.StatusFINAL {
		t.Fatalf("glucose: %+v %v", glucose, err)
	}
	if evs := vitalsEvents(t, ctx, f.client); len(evs) != 0 {
		t.Fatalf("a glucose reading is not a vital sign: %+v", evs)
	}
	if _, err := f.svc.RecordObservation(ctx, RecordObservationInput{PatientID: p.ID, Code: "8867-4", Display: "Pulse", Value: 64, Unit: "/min"}); err != nil {
		t.Fatal(err)
	}
	if evs := vitalsEvents(t, ctx, f.client); len(evs) != 1 {
		t.Fatalf("a heart rate recorded generically is published: %+v", evs)
	}
	for _, tc := range []struct {
		field string
		in    RecordObservationInput
	}{
		{"input.code", RecordObservationInput{PatientID: p.ID, Code: "2339-1", Display: "Glucose", Value: 1, Unit: "mg/dL"}},
		{"input.code", RecordObservationInput{PatientID: p.ID, Code: "glucose", Display: "Glucose", Value: 1, Unit: "mg/dL"}},
		{"input.display", RecordObservationInput{PatientID: p.ID, Code: "2339-0", Display: "", Value: 1, Unit: "mg/dL"}},
		{"input.unit", RecordObservationInput{PatientID: p.ID, Code: "2339-0", Display: "Glucose", Value: 1, Unit: "mg per dL"}},
		{"input.unit", RecordObservationInput{PatientID: p.ID, Code: "8867-4", Display: "Pulse", Value: 64, Unit: "bpm"}},
		{"input.value", RecordObservationInput{PatientID: p.ID, Code: "8867-4", Display: "Pulse", Value: 640, Unit: "/min"}},
	} {
		_, err := f.svc.RecordObservation(ctx, tc.in)
		wantCode(t, tc.field, err, apperr.BadUserInput, tc.field)
	}
	if n := f.client.Observation.Query().CountX(ctx); n != 2 {
		t.Fatalf("%d observations, want the 2 accepted", n)
	}
}

func TestValidLOINC(t *testing.T) {
	for _, code := range []string{"8867-4", "8480-6", "8462-4", "8310-5", "59408-5", "2708-6", "9279-1", "29463-7", "8302-2", "2339-0", "718-7"} {
		if !ValidLOINC(code) {
			t.Errorf("%s is a LOINC code", code)
		}
	}
	for _, code := range []string{"8867-5", "8867", "-4", "88674", "8867-44", "12345678-9", "a867-4"} {
		if ValidLOINC(code) {
			t.Errorf("%s is not a LOINC code", code)
		}
	}
}

func TestHistory(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[0]
	item, err := f.svc.RecordHistoryItem(ctx, RecordHistoryItemInput{PatientID: p.ID, Category: historyitem.CategoryFAMILY,
		Description: " Breast cancer ", Relation: ptr(" mother "), Date: date(1975, 1, 1)})
	if err != nil || item.Description != "Breast cancer" || *item.Relation != "mother" || item.Status != historyitem.StatusACTIVE ||
		*item.RecordedByID != f.doctor.ID {
		t.Fatalf("family history from before the patient's birth: %+v %v", item, err)
	}
	withdrawn, err := f.svc.MarkHistoryItemEnteredInError(ctx, item.ID)
	if err != nil || withdrawn.Status != historyitem.StatusENTERED_IN_ERROR {
		t.Fatalf("withdraw: %+v %v", withdrawn, err)
	}
	_, err = f.svc.MarkHistoryItemEnteredInError(ctx, item.ID)
	wantCode(t, "withdraw twice", err, apperr.Conflict, "")
	_, err = f.svc.MarkHistoryItemEnteredInError(ctx, "hst_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	wantCode(t, "withdraw unknown", err, apperr.NotFound, "")

	for _, tc := range []struct {
		field string
		in    RecordHistoryItemInput
	}{
		{"input.patientId", RecordHistoryItemInput{PatientID: "x", Category: historyitem.CategorySURGERY, Description: "Appendectomy"}},
		{"input.category", RecordHistoryItemInput{PatientID: p.ID, Category: "DIET", Description: "Vegan"}},
		{"input.description", RecordHistoryItemInput{PatientID: p.ID, Category: historyitem.CategorySURGERY, Description: "  "}},
		{"input.date", RecordHistoryItemInput{PatientID: p.ID, Category: historyitem.CategorySURGERY, Description: "Appendectomy", Date: ptr(time.Now().UTC().AddDate(0, 0, 3))}},
		{"input.date", RecordHistoryItemInput{PatientID: p.ID, Category: historyitem.CategorySURGERY, Description: "Appendectomy", Date: date(1975, 1, 1)}},
		{"input.relation", RecordHistoryItemInput{PatientID: p.ID, Category: historyitem.CategorySOCIAL, Description: "Smokes", Relation: ptr("father")}},
	} {
		_, err := f.svc.RecordHistoryItem(ctx, tc.in)
		wantCode(t, tc.field, err, apperr.BadUserInput, tc.field)
	}
	if n := f.client.HistoryItem.Query().CountX(ctx); n != 1 {
		t.Fatalf("%d history items, want only the accepted one", n)
	}
}
