package notes

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc                    *Service
	client                 *ent.Client
	system                 context.Context
	patients               []*ent.Patient
	doctor, nurse, admin   context.Context
	doctorStaff            *ent.Staff
	nurseStaff             *ent.Staff
	firstPatientsEncounter *ent.Encounter
	otherPatientsEncounter *ent.Encounter
	// signedAt is the service's clock: when a note signed now says it was.
	signedAt time.Time
}

func setup(t *testing.T) *fixture {
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	dep := c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	member := func(kind staff.Kind) *ent.Staff {
		return c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(kind).SetDepartment(dep).SaveX(sys)
	}
	as := func(s *ent.Staff, role string) context.Context {
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + s.ID, Username: role, Roles: []string{role}, StaffID: s.ID})
	}
	f := &fixture{svc: NewService(st), client: c, system: sys}
	f.signedAt = time.Now().UTC().Truncate(time.Second)
	f.svc.now = func() time.Time { return f.signedAt }
	f.doctorStaff, f.nurseStaff = member(staff.KindDOCTOR), member(staff.KindNURSE)
	f.doctor, f.nurse = as(f.doctorStaff, "doctor"), as(f.nurseStaff, "nurse")
	f.admin = as(member(staff.KindADMINISTRATOR), "admin")
	for i, mrn := range []string{"100000009", "100000017"} {
		f.patients = append(f.patients, c.Patient.Create().SetMrn(mrn).SetGivenName("P").SetFamilyName([]string{"A", "B"}[i]).
			SetBirthDate(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexOTHER).SaveX(sys))
	}
	f.firstPatientsEncounter = c.Encounter.Create().SetPatient(f.patients[0]).SetType(encounter.TypeINPATIENT).
		SetStartedAt(time.Now().UTC()).SaveX(sys)
	f.otherPatientsEncounter = c.Encounter.Create().SetPatient(f.patients[1]).SetType(encounter.TypeOUTPATIENT).
		SetStartedAt(time.Now().UTC()).SaveX(sys)
	return f
}

func (f *fixture) count(t *testing.T) int {
	t.Helper()
	return f.client.ClinicalNote.Query().CountX(f.system)
}

func (f *fixture) draft(t *testing.T, ctx context.Context) *ent.ClinicalNote {
	t.Helper()
	n, err := f.svc.Write(ctx, WriteNoteInput{PatientID: f.patients[0].ID, EncounterID: &f.firstPatientsEncounter.ID,
		Type: clinicalnote.TypePROGRESS, Text: "Afebrile overnight."})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) signed(t *testing.T, ctx context.Context) *ent.ClinicalNote {
	t.Helper()
	n, err := f.svc.Sign(ctx, f.draft(t, ctx).ID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

func TestDraftIsTheAuthorsUntilSigned(t *testing.T) {
	f := setup(t)
	n := f.draft(t, f.doctor)
	if n.Status != clinicalnote.StatusDRAFT || n.AuthorID != f.doctorStaff.ID || n.SignedAt != nil ||
		n.EncounterID == nil || *n.EncounterID != f.firstPatientsEncounter.ID {
		t.Fatalf("draft: %+v", n)
	}
	for name, try := range map[string]func() error{
		"edit":    func() error { _, err := f.svc.UpdateDraft(f.nurse, n.ID, "mine now"); return err },
		"sign":    func() error { _, err := f.svc.Sign(f.nurse, n.ID); return err },
		"discard": func() error { _, err := f.svc.DiscardDraft(f.nurse, n.ID); return err },
		"admin":   func() error { _, err := f.svc.Sign(f.admin, n.ID); return err },
	} {
		if err := try(); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("someone else's draft, %s: %v", name, err)
		}
	}
	if got := f.client.ClinicalNote.GetX(f.system, n.ID); got.Text != "Afebrile overnight." || got.Status != clinicalnote.StatusDRAFT {
		t.Fatalf("refused changes changed the draft: %+v", got)
	}

	edited, err := f.svc.UpdateDraft(f.doctor, n.ID, "  Afebrile overnight. Eating well.  ")
	if err != nil || edited.Text != "Afebrile overnight. Eating well." || edited.Status != clinicalnote.StatusDRAFT {
		t.Fatalf("edit: %+v %v", edited, err)
	}
	signed, err := f.svc.Sign(f.doctor, n.ID)
	if err != nil || signed.Status != clinicalnote.StatusSIGNED || signed.SignedAt == nil || !signed.SignedAt.Equal(f.signedAt) {
		t.Fatalf("sign: %+v %v", signed, err)
	}
	for name, try := range map[string]func() error{
		"edit":    func() error { _, err := f.svc.UpdateDraft(f.doctor, n.ID, "changed my mind"); return err },
		"sign":    func() error { _, err := f.svc.Sign(f.doctor, n.ID); return err },
		"discard": func() error { _, err := f.svc.DiscardDraft(f.doctor, n.ID); return err },
	} {
		if err := try(); apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("signed note, %s: %v", name, err)
		}
	}

	gone := f.draft(t, f.nurse)
	if id, err := f.svc.DiscardDraft(f.nurse, gone.ID); err != nil || id != gone.ID {
		t.Fatalf("discard: %q %v", id, err)
	}
	if exists := f.client.ClinicalNote.Query().Where(clinicalnote.ID(gone.ID)).ExistX(f.system); exists {
		t.Fatal("a discarded draft is still there")
	}
	if _, err := f.svc.DiscardDraft(f.nurse, gone.ID); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("discard twice: %v", err)
	}
}

func TestOnlyCliniciansWrite(t *testing.T) {
	f := setup(t)
	in := WriteNoteInput{PatientID: f.patients[0].ID, Type: clinicalnote.TypeCONSULT, Text: "Seen."}
	for name, ctx := range map[string]context.Context{
		"administrator": f.admin,
		"API key":       auth.WithViewer(context.Background(), &auth.Viewer{APIKeyID: "key_x", Roles: []string{"integrator"}}),
		"anonymous":     context.Background(),
	} {
		if _, err := f.svc.Write(ctx, in); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("%s writing: %v", name, err)
		}
	}
	if n, err := f.svc.Write(f.nurse, in); err != nil || n.AuthorID != f.nurseStaff.ID {
		t.Fatalf("nurse writing: %+v %v", n, err)
	}
}

func TestBadInputNamesTheFieldAndChangesNothing(t *testing.T) {
	f := setup(t)
	valid := func() WriteNoteInput {
		return WriteNoteInput{PatientID: f.patients[0].ID, Type: clinicalnote.TypePROGRESS, Text: "x"}
	}
	unknownPatient := "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV"
	for field, change := range map[string]func(*WriteNoteInput){
		"input.patientId":   func(in *WriteNoteInput) { in.PatientID = "nope" },
		"input.encounterId": func(in *WriteNoteInput) { in.EncounterID = &f.otherPatientsEncounter.ID },
		"input.type":        func(in *WriteNoteInput) { in.Type = "LETTER" },
		"input.text":        func(in *WriteNoteInput) { in.Text = " \n " },
	} {
		in := valid()
		change(&in)
		if _, err := f.svc.Write(f.doctor, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	in := valid()
	in.PatientID = unknownPatient
	if _, err := f.svc.Write(f.doctor, in); !isBadInput(err, "input.patientId") {
		t.Errorf("unknown patient: %v", err)
	}
	in = valid()
	in.Text = strings.Repeat("x", MaxTextLength+1)
	if _, err := f.svc.Write(f.doctor, in); !isBadInput(err, "input.text") {
		t.Errorf("long text: %v", err)
	}
	if n := f.count(t); n != 0 {
		t.Fatalf("bad input wrote %d notes", n)
	}

	d := f.draft(t, f.doctor)
	if _, err := f.svc.UpdateDraft(f.doctor, d.ID, ""); !isBadInput(err, "text") {
		t.Errorf("empty edit: %v", err)
	}
	s := f.signed(t, f.doctor)
	if _, err := f.svc.Amend(f.doctor, s.ID, AmendNoteInput{Text: "corrected", Reason: " "}); !isBadInput(err, "input.reason") {
		t.Errorf("amend without reason: %v", err)
	}
	if _, err := f.svc.Amend(f.doctor, s.ID, AmendNoteInput{Text: "", Reason: "typo"}); !isBadInput(err, "input.text") {
		t.Errorf("amend without text: %v", err)
	}
	if _, err := f.svc.Sign(f.doctor, "apt_01ARZ3NDEKTSV4RRFFQ69G5FAV"); !isBadInput(err, "id") {
		t.Errorf("sign with another type's ID: %v", err)
	}
	if got := f.client.ClinicalNote.GetX(f.system, d.ID); got.Text != "Afebrile overnight." {
		t.Fatalf("a refused edit changed the draft: %q", got.Text)
	}
	if got := f.client.ClinicalNote.GetX(f.system, s.ID); got.Status != clinicalnote.StatusSIGNED || f.count(t) != 2 {
		t.Fatalf("a refused amendment changed something: %+v, %d notes", got, f.count(t))
	}
}

func TestAmendmentReplacesAndKeeps(t *testing.T) {
	f := setup(t)
	original := f.signed(t, f.doctor)

	if _, err := f.svc.Amend(f.doctor, f.draft(t, f.doctor).ID, AmendNoteInput{Text: "x", Reason: "y"}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("amending a draft: %v", err)
	}
	if _, err := f.svc.Amend(f.admin, original.ID, AmendNoteInput{Text: "x", Reason: "y"}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("administrator amending: %v", err)
	}

	later := f.signedAt.Add(time.Hour)
	f.svc.now = func() time.Time { return later }
	amended, err := f.svc.Amend(f.nurse, original.ID, AmendNoteInput{Text: "Afebrile overnight; temperature 37.9 at 02:00.", Reason: "Omitted a reading"})
	if err != nil {
		t.Fatal(err)
	}
	if amended.Status != clinicalnote.StatusSIGNED || amended.AuthorID != f.nurseStaff.ID || amended.SignedAt == nil ||
		!amended.SignedAt.Equal(later) || amended.ReplacesID == nil || *amended.ReplacesID != original.ID ||
		amended.AmendReason == nil || *amended.AmendReason != "Omitted a reading" || amended.PatientID != original.PatientID ||
		amended.Type != original.Type || *amended.EncounterID != *original.EncounterID {
		t.Fatalf("amendment: %+v", amended)
	}
	kept := f.client.ClinicalNote.GetX(f.system, original.ID)
	if kept.Status != clinicalnote.StatusAMENDED || kept.Text != "Afebrile overnight." || kept.AuthorID != f.doctorStaff.ID ||
		!kept.SignedAt.Equal(f.signedAt) {
		t.Fatalf("the amended note: %+v", kept)
	}
	if _, err := f.svc.Amend(f.doctor, original.ID, AmendNoteInput{Text: "x", Reason: "y"}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("amending an amended note: %v", err)
	}
	again, err := f.svc.Amend(f.doctor, amended.ID, AmendNoteInput{Text: "Final.", Reason: "Clarified"})
	if err != nil || *again.ReplacesID != amended.ID {
		t.Fatalf("amending the amendment: %+v %v", again, err)
	}
	if _, err := f.svc.Amend(f.doctor, "not_01ARZ3NDEKTSV4RRFFQ69G5FAV", AmendNoteInput{Text: "x", Reason: "y"}); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("amending nothing: %v", err)
	}
}

func TestConcurrentAmendmentsOneWins(t *testing.T) {
	f := setup(t)
	original := f.signed(t, f.doctor)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Amend(f.nurse, original.ID, AmendNoteInput{Text: "amended", Reason: "race"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
		} else if apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("a losing amendment: %v", err)
		}
	}
	replacements := f.client.ClinicalNote.Query().Where(clinicalnote.ReplacesID(original.ID)).CountX(f.system)
	if won != 1 || replacements != 1 {
		t.Fatalf("%d amendments won, %d replacements written", won, replacements)
	}
}

func TestEditRacingSignatureNeverChangesASignedNote(t *testing.T) {
	f := setup(t)
	for round := 0; round < 5; round++ {
		d := f.draft(t, f.doctor)
		var wg sync.WaitGroup
		var editErr, signErr error
		wg.Add(2)
		go func() { defer wg.Done(); _, editErr = f.svc.UpdateDraft(f.doctor, d.ID, "edited") }()
		go func() { defer wg.Done(); _, signErr = f.svc.Sign(f.doctor, d.ID) }()
		wg.Wait()
		if signErr != nil {
			t.Fatalf("sign: %v", signErr)
		}
		got := f.client.ClinicalNote.GetX(f.system, d.ID)
		switch {
		case editErr == nil && got.Text != "edited":
			t.Fatalf("an accepted edit was lost: %+v", got)
		case editErr != nil && (apperr.CodeOf(editErr) != apperr.Conflict || got.Text != "Afebrile overnight."):
			t.Fatalf("a refused edit: %v, note %+v", editErr, got)
		}
	}
}
