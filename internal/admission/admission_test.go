package admission

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	entadmission "github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/ent/bedassignment"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type pokes struct{ n int }

func (p *pokes) Poke() { p.n++ }

type fixture struct {
	st       *store.Store
	svc      *Service
	client   *ent.Client
	notify   *pokes
	ward     *ent.Ward
	beds     []*ent.Bed // W-01 … W-04
	patients []*ent.Patient
	doctor   *ent.Staff
	nurse    *ent.Staff
	retired  *ent.Staff // an inactive doctor
}

func setup(t *testing.T) (context.Context, fixture) {
	t.Helper()
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	c := st.Client
	dep := c.Department.Create().SetCode("GEN").SetName("General").SaveX(ctx)
	f := fixture{st: st, client: c, notify: &pokes{}}
	st.OnEventsCommitted(f.notify.Poke)
	f.svc = NewService(st)
	f.doctor = c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(staff.KindDOCTOR).SetDepartment(dep).SaveX(ctx)
	f.nurse = c.Staff.Create().SetGivenName("T").SetFamilyName("L").SetKind(staff.KindNURSE).SetDepartment(dep).SaveX(ctx)
	f.retired = c.Staff.Create().SetGivenName("R").SetFamilyName("D").SetKind(staff.KindDOCTOR).SetActive(false).SetDepartment(dep).SaveX(ctx)
	for i := 0; i < 4; i++ {
		f.patients = append(f.patients, c.Patient.Create().SetMrn(fmt.Sprintf("10000%04d", i)).SetGivenName("P").
			SetFamilyName("Q").SetBirthDate(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexOTHER).SaveX(ctx))
	}
	var err error
	f.ward, err = f.svc.CreateWard(ctx, CreateWardInput{DepartmentID: dep.ID, Code: " W ", Name: "Ward W"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 4; i++ {
		b, err := f.svc.AddBed(ctx, f.ward.ID, fmt.Sprintf("W-%02d", i))
		if err != nil {
			t.Fatal(err)
		}
		f.beds = append(f.beds, b)
	}
	return ctx, f
}

func (f fixture) admit(ctx context.Context, t *testing.T, p *ent.Patient, b *ent.Bed) *ent.Admission {
	t.Helper()
	a, err := f.svc.Admit(ctx, AdmitPatientInput{PatientID: p.ID, BedID: b.ID, AttendingID: f.doctor.ID,
		Reason: "Pneumonia", AdmissionType: entadmission.AdmissionTypeEMERGENCY})
	if err != nil {
		t.Fatalf("admit: %v", err)
	}
	return a
}

func (f fixture) status(ctx context.Context, t *testing.T, b *ent.Bed) bed.Status {
	t.Helper()
	return f.client.Bed.GetX(ctx, b.ID).Status
}

// recorded returns the bed events written so far, oldest first.
func (f fixture) recorded(ctx context.Context, t *testing.T) []struct {
	Type string
	Change
} {
	t.Helper()
	rows := f.client.OutboxEvent.Query().Where(outboxevent.Topic(Topic)).Order(outboxevent.ByID()).AllX(ctx)
	out := make([]struct {
		Type string
		Change
	}, len(rows))
	for i, r := range rows {
		out[i].Type = r.Type
		if err := json.Unmarshal(r.Payload, &out[i].Change); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func wantCode(t *testing.T, what string, err error, code apperr.Code) {
	t.Helper()
	if apperr.CodeOf(err) != code {
		t.Fatalf("%s: got %v, want %s", what, err, code)
	}
}

func wantField(t *testing.T, what string, err error, field string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != apperr.BadUserInput || e.Field != field {
		t.Fatalf("%s: got %v, want BAD_USER_INPUT on %s", what, err, field)
	}
}

func TestAdmitTransferDischarge(t *testing.T) {
	ctx, f := setup(t)
	p := f.patients[0]
	before := f.notify.n
	a := f.admit(ctx, t, p, f.beds[0])
	if a.Status != entadmission.StatusADMITTED || a.BedID != f.beds[0].ID || a.AttendingID != f.doctor.ID || f.notify.n != before+1 {
		t.Fatalf("admitted %+v, pokes %d", a, f.notify.n-before)
	}
	if st := f.status(ctx, t, f.beds[0]); st != bed.StatusOCCUPIED {
		t.Fatalf("bed after admission is %s", st)
	}
	enc := f.client.Encounter.Query().Where(encounter.AdmissionID(a.ID)).OnlyX(ctx)
	if enc.Type != encounter.TypeINPATIENT || enc.Status != encounter.StatusIN_PROGRESS || enc.PatientID != p.ID ||
		*enc.ProviderID != f.doctor.ID || *enc.DepartmentID != f.ward.DepartmentID || !enc.StartedAt.Equal(a.AdmittedAt) {
		t.Fatalf("encounter %+v", enc)
	}

	moved, err := f.svc.Transfer(ctx, a.ID, TransferPatientInput{ToBedID: f.beds[1].ID, Reason: "needs oxygen"})
	if err != nil || moved.BedID != f.beds[1].ID {
		t.Fatalf("transfer: %+v %v", moved, err)
	}
	if f.status(ctx, t, f.beds[0]) != bed.StatusCLEANING || f.status(ctx, t, f.beds[1]) != bed.StatusOCCUPIED {
		t.Fatal("transfer leaves the old bed CLEANING and the new one OCCUPIED")
	}
	history := f.client.BedAssignment.Query().Where(bedassignment.AdmissionID(a.ID)).Order(bedassignment.ByFromAt(), bedassignment.ByID()).AllX(ctx)
	if len(history) != 2 || history[0].BedID != f.beds[0].ID || history[0].ToAt == nil ||
		history[1].BedID != f.beds[1].ID || history[1].ToAt != nil || *history[1].Reason != "needs oxygen" ||
		!history[0].ToAt.Equal(history[1].FromAt) {
		t.Fatalf("history after transfer: %+v", history)
	}

	_, err = f.svc.Transfer(ctx, a.ID, TransferPatientInput{ToBedID: f.beds[1].ID, Reason: "x"})
	wantField(t, "transfer into the current bed", err, "input.toBedId")
	_, err = f.svc.Transfer(ctx, a.ID, TransferPatientInput{ToBedID: f.beds[0].ID, Reason: "x"})
	wantCode(t, "transfer into a CLEANING bed", err, apperr.Conflict)

	out, err := f.svc.Discharge(ctx, a.ID, DischargePatientInput{Summary: "Recovered", Disposition: entadmission.DispositionHOME})
	if err != nil || out.Status != entadmission.StatusDISCHARGED || out.DischargedAt == nil || *out.DischargeSummary != "Recovered" ||
		*out.Disposition != entadmission.DispositionHOME {
		t.Fatalf("discharge: %+v %v", out, err)
	}
	if st := f.status(ctx, t, f.beds[1]); st != bed.StatusCLEANING {
		t.Fatalf("the bed after discharge is %s, want CLEANING", st)
	}
	enc = f.client.Encounter.GetX(ctx, enc.ID)
	if enc.Status != encounter.StatusFINISHED || enc.EndedAt == nil || !enc.EndedAt.Equal(*out.DischargedAt) {
		t.Fatalf("encounter after discharge %+v", enc)
	}
	if open := f.client.BedAssignment.Query().Where(bedassignment.AdmissionID(a.ID), bedassignment.ToAtIsNil()).CountX(ctx); open != 0 {
		t.Fatalf("%d assignments still open after discharge", open)
	}

	_, err = f.svc.Discharge(ctx, a.ID, DischargePatientInput{Summary: "again", Disposition: entadmission.DispositionHOME})
	wantCode(t, "discharge twice", err, apperr.Conflict)
	_, err = f.svc.Transfer(ctx, a.ID, TransferPatientInput{ToBedID: f.beds[2].ID, Reason: "x"})
	wantCode(t, "transfer a discharged stay", err, apperr.Conflict)
	_, err = f.svc.Discharge(ctx, "adm_01ARZ3NDEKTSV4RRFFQ69G5FAV", DischargePatientInput{Summary: "x", Disposition: entadmission.DispositionHOME})
	wantCode(t, "discharge an unknown stay", err, apperr.NotFound)

	// Discharged, the patient may be admitted again, into the cleaned bed.
	if _, err := f.svc.MarkBedCleaned(ctx, f.beds[1].ID); err != nil {
		t.Fatal(err)
	}
	again := f.admit(ctx, t, p, f.beds[1])

	var got []string
	for _, ev := range f.recorded(ctx, t) {
		got = append(got, fmt.Sprintf("%s %s %s→%s %v", ev.Type, bedCode(f, ev.BedID), ev.PreviousStatus, ev.Status, ev.AdmissionID != ""))
		if ev.WardID != f.ward.ID {
			t.Fatalf("event without its ward: %+v", ev)
		}
	}
	want := []string{
		"ADDED W-01 →FREE false", "ADDED W-02 →FREE false", "ADDED W-03 →FREE false", "ADDED W-04 →FREE false",
		"ADMITTED W-01 FREE→OCCUPIED true",
		"TRANSFERRED_OUT W-01 OCCUPIED→CLEANING false", "TRANSFERRED_IN W-02 FREE→OCCUPIED true",
		"DISCHARGED W-02 OCCUPIED→CLEANING false",
		"CLEANED W-02 CLEANING→FREE false",
		"ADMITTED W-02 FREE→OCCUPIED true",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	last := f.recorded(ctx, t)
	if last[len(last)-1].AdmissionID != again.ID {
		t.Fatalf("the admission event names the stay: %+v", last[len(last)-1])
	}
}

func bedCode(f fixture, id string) string {
	for _, b := range f.beds {
		if b.ID == id {
			return b.Code
		}
	}
	return id
}

// TestBedStateMachine tries every bed operation from every status.
func TestBedStateMachine(t *testing.T) {
	ctx, f := setup(t)
	// Put the four beds in the four statuses.
	free, occupied, cleaning, broken := f.beds[0], f.beds[1], f.beds[2], f.beds[3]
	f.admit(ctx, t, f.patients[0], occupied)
	a := f.admit(ctx, t, f.patients[1], cleaning)
	if _, err := f.svc.Discharge(ctx, a.ID, DischargePatientInput{Summary: "ok", Disposition: entadmission.DispositionHOME}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetBedOutOfService(ctx, broken.ID, "broken rail"); err != nil {
		t.Fatal(err)
	}
	statuses := map[*ent.Bed]bed.Status{free: bed.StatusFREE, occupied: bed.StatusOCCUPIED, cleaning: bed.StatusCLEANING, broken: bed.StatusOUT_OF_SERVICE}
	for b, st := range statuses {
		if got := f.status(ctx, t, b); got != st {
			t.Fatalf("%s is %s, want %s", b.Code, got, st)
		}
	}

	type op struct {
		name string
		run  func(b *ent.Bed) error
		to   bed.Status
		from []bed.Status
	}
	ops := []op{
		{"markBedCleaned", func(b *ent.Bed) error { _, err := f.svc.MarkBedCleaned(ctx, b.ID); return err },
			bed.StatusFREE, []bed.Status{bed.StatusCLEANING}},
		{"setBedOutOfService", func(b *ent.Bed) error { _, err := f.svc.SetBedOutOfService(ctx, b.ID, "repairs"); return err },
			bed.StatusOUT_OF_SERVICE, []bed.Status{bed.StatusFREE, bed.StatusCLEANING}},
		{"returnBedToService", func(b *ent.Bed) error { _, err := f.svc.ReturnBedToService(ctx, b.ID); return err },
			bed.StatusFREE, []bed.Status{bed.StatusOUT_OF_SERVICE}},
		{"admitPatient", func(b *ent.Bed) error {
			_, err := f.svc.Admit(ctx, AdmitPatientInput{PatientID: f.patients[2].ID, BedID: b.ID, AttendingID: f.doctor.ID,
				Reason: "x", AdmissionType: entadmission.AdmissionTypeELECTIVE})
			return err
		}, bed.StatusOCCUPIED, []bed.Status{bed.StatusFREE}},
	}
	for _, o := range ops {
		for b, st := range statuses {
			allowed := false
			for _, from := range o.from {
				allowed = allowed || from == st
			}
			err := o.run(b)
			switch {
			case allowed && err != nil:
				t.Fatalf("%s from %s: %v", o.name, st, err)
			case !allowed:
				wantCode(t, fmt.Sprintf("%s from %s", o.name, st), err, apperr.Conflict)
				if got := f.status(ctx, t, b); got != st {
					t.Fatalf("refused %s moved the bed from %s to %s", o.name, st, got)
				}
				continue
			}
			if got := f.status(ctx, t, b); got != o.to {
				t.Fatalf("%s from %s left the bed %s, want %s", o.name, st, got, o.to)
			}
			// Put the bed back for the next operation, the way a ward would.
			restore(ctx, t, f, b, st)
		}
	}

	noted := f.client.Bed.GetX(ctx, broken.ID)
	if noted.Note == nil || *noted.Note != "broken rail" {
		t.Fatalf("out-of-service reason: %v", noted.Note)
	}
	back, err := f.svc.ReturnBedToService(ctx, broken.ID)
	if err != nil || back.Note != nil || back.Status != bed.StatusFREE {
		t.Fatalf("return to service clears the note: %+v %v", back, err)
	}
	_, err = f.svc.MarkBedCleaned(ctx, "bed_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	wantCode(t, "unknown bed", err, apperr.NotFound)
	_, err = f.svc.MarkBedCleaned(ctx, f.ward.ID)
	wantField(t, "a ward ID as a bed", err, "bedId")
	_, err = f.svc.SetBedOutOfService(ctx, free.ID, " ")
	wantField(t, "no reason", err, "reason")
}

// restore moves b from where an allowed operation left it back to st.
func restore(ctx context.Context, t *testing.T, f fixture, b *ent.Bed, st bed.Status) {
	t.Helper()
	var err error
	switch now := f.status(ctx, t, b); {
	case now == st:
	case st == bed.StatusCLEANING && now == bed.StatusOUT_OF_SERVICE:
		// Out of service loses the CLEANING; a stay discharged from the
		// bed brings it back.
		if _, err = f.svc.ReturnBedToService(ctx, b.ID); err == nil {
			a := f.admit(ctx, t, f.patients[3], b)
			_, err = f.svc.Discharge(ctx, a.ID, DischargePatientInput{Summary: "ok", Disposition: entadmission.DispositionHOME})
		}
	case st == bed.StatusCLEANING && now == bed.StatusFREE:
		a := f.admit(ctx, t, f.patients[3], b)
		_, err = f.svc.Discharge(ctx, a.ID, DischargePatientInput{Summary: "ok", Disposition: entadmission.DispositionHOME})
	case st == bed.StatusFREE && now == bed.StatusOUT_OF_SERVICE:
		_, err = f.svc.ReturnBedToService(ctx, b.ID)
	case st == bed.StatusFREE && now == bed.StatusOCCUPIED:
		stay := f.client.Admission.Query().Where(entadmission.BedID(b.ID), entadmission.StatusEQ(entadmission.StatusADMITTED)).OnlyX(ctx)
		if _, err = f.svc.Discharge(ctx, stay.ID, DischargePatientInput{Summary: "ok", Disposition: entadmission.DispositionHOME}); err == nil {
			_, err = f.svc.MarkBedCleaned(ctx, b.ID)
		}
	case st == bed.StatusOUT_OF_SERVICE && now == bed.StatusFREE:
		_, err = f.svc.SetBedOutOfService(ctx, b.ID, "broken rail")
	default:
		t.Fatalf("no way back from %s to %s", now, st)
	}
	if err != nil {
		t.Fatalf("restore %s to %s: %v", b.Code, st, err)
	}
}

// TestRefusalsChangeNothing: every rejected admission, transfer and
// discharge leaves no stay, assignment, encounter, bed change or event.
func TestRefusalsChangeNothing(t *testing.T) {
	ctx, f := setup(t)
	now := time.Now().UTC()
	stay := f.admit(ctx, t, f.patients[0], f.beds[0])
	if _, err := f.svc.Transfer(ctx, stay.ID, TransferPatientInput{ToBedID: f.beds[1].ID, Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.MarkBedCleaned(ctx, f.beds[0].ID); err != nil {
		t.Fatal(err)
	}
	future, old := now.Add(time.Hour), now.Add(-8*24*time.Hour)
	beforeAdmission := stay.AdmittedAt.Add(-time.Hour)
	beforeTransfer := stay.AdmittedAt // the transfer came after it

	valid := AdmitPatientInput{PatientID: f.patients[1].ID, BedID: f.beds[2].ID, AttendingID: f.doctor.ID,
		Reason: "Fracture", AdmissionType: entadmission.AdmissionTypeEMERGENCY}
	admits := []struct {
		name, field string
		change      func(*AdmitPatientInput)
	}{
		{"malformed patient", "input.patientId", func(in *AdmitPatientInput) { in.PatientID = "x" }},
		{"unknown patient", "input.patientId", func(in *AdmitPatientInput) { in.PatientID = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"a bed ID of another type", "input.bedId", func(in *AdmitPatientInput) { in.BedID = f.ward.ID }},
		{"unknown bed", "input.bedId", func(in *AdmitPatientInput) { in.BedID = "bed_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"malformed attending", "input.attendingId", func(in *AdmitPatientInput) { in.AttendingID = "" }},
		{"unknown attending", "input.attendingId", func(in *AdmitPatientInput) { in.AttendingID = "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"a nurse attending", "input.attendingId", func(in *AdmitPatientInput) { in.AttendingID = f.nurse.ID }},
		{"an inactive attending", "input.attendingId", func(in *AdmitPatientInput) { in.AttendingID = f.retired.ID }},
		{"blank reason", "input.reason", func(in *AdmitPatientInput) { in.Reason = "  " }},
		{"long reason", "input.reason", func(in *AdmitPatientInput) { in.Reason = strings.Repeat("x", 501) }},
		{"no type", "input.admissionType", func(in *AdmitPatientInput) { in.AdmissionType = "" }},
		{"in the future", "input.admittedAt", func(in *AdmitPatientInput) { in.AdmittedAt = &future }},
		{"long ago", "input.admittedAt", func(in *AdmitPatientInput) { in.AdmittedAt = &old }},
	}
	type counts struct{ stays, assignments, encounters, events int }
	count := func() counts {
		return counts{
			f.client.Admission.Query().CountX(ctx), f.client.BedAssignment.Query().CountX(ctx),
			f.client.Encounter.Query().CountX(ctx), f.client.OutboxEvent.Query().CountX(ctx),
		}
	}
	start := count()
	check := func(what string) {
		t.Helper()
		if got := count(); got != start {
			t.Fatalf("%s changed something: %+v, before %+v", what, got, start)
		}
		if f.status(ctx, t, f.beds[2]) != bed.StatusFREE || f.status(ctx, t, f.beds[1]) != bed.StatusOCCUPIED {
			t.Fatalf("%s moved a bed", what)
		}
		if a := f.client.Admission.GetX(ctx, stay.ID); a.Status != entadmission.StatusADMITTED || a.BedID != f.beds[1].ID {
			t.Fatalf("%s changed the stay: %+v", what, a)
		}
	}
	for _, c := range admits {
		in := valid
		c.change(&in)
		_, err := f.svc.Admit(ctx, in)
		wantField(t, c.name, err, c.field)
		check(c.name)
	}

	_, err := f.svc.Admit(ctx, AdmitPatientInput{PatientID: f.patients[0].ID, BedID: f.beds[2].ID, AttendingID: f.doctor.ID,
		Reason: "x", AdmissionType: entadmission.AdmissionTypeELECTIVE})
	wantCode(t, "admit a patient already admitted", err, apperr.Conflict)
	check("admit a patient already admitted")
	_, err = f.svc.Admit(ctx, AdmitPatientInput{PatientID: f.patients[1].ID, BedID: f.beds[1].ID, AttendingID: f.doctor.ID,
		Reason: "x", AdmissionType: entadmission.AdmissionTypeELECTIVE})
	wantCode(t, "admit into an occupied bed", err, apperr.Conflict)
	check("admit into an occupied bed")

	transfers := []struct {
		name, id, field string
		in              TransferPatientInput
	}{
		{"malformed stay", "x", "admissionId", TransferPatientInput{ToBedID: f.beds[2].ID, Reason: "x"}},
		{"malformed bed", stay.ID, "input.toBedId", TransferPatientInput{ToBedID: "x", Reason: "x"}},
		{"unknown bed", stay.ID, "input.toBedId", TransferPatientInput{ToBedID: "bed_01ARZ3NDEKTSV4RRFFQ69G5FAV", Reason: "x"}},
		{"no reason", stay.ID, "input.reason", TransferPatientInput{ToBedID: f.beds[2].ID, Reason: ""}},
	}
	for _, c := range transfers {
		_, err := f.svc.Transfer(ctx, c.id, c.in)
		wantField(t, "transfer: "+c.name, err, c.field)
		check("transfer: " + c.name)
	}
	_, err = f.svc.Transfer(ctx, "adm_01ARZ3NDEKTSV4RRFFQ69G5FAV", TransferPatientInput{ToBedID: f.beds[2].ID, Reason: "x"})
	wantCode(t, "transfer an unknown stay", err, apperr.NotFound)

	discharges := []struct {
		name, id, field string
		in              DischargePatientInput
	}{
		{"malformed stay", "", "admissionId", DischargePatientInput{Summary: "x", Disposition: entadmission.DispositionHOME}},
		{"no summary", stay.ID, "input.summary", DischargePatientInput{Summary: " ", Disposition: entadmission.DispositionHOME}},
		{"bad disposition", stay.ID, "input.disposition", DischargePatientInput{Summary: "x", Disposition: "AWOL"}},
		{"in the future", stay.ID, "input.dischargedAt", DischargePatientInput{Summary: "x", Disposition: entadmission.DispositionHOME, DischargedAt: &future}},
		{"before the admission", stay.ID, "input.dischargedAt", DischargePatientInput{Summary: "x", Disposition: entadmission.DispositionHOME, DischargedAt: &beforeAdmission}},
		{"before the transfer", stay.ID, "input.dischargedAt", DischargePatientInput{Summary: "x", Disposition: entadmission.DispositionHOME, DischargedAt: &beforeTransfer}},
	}
	for _, c := range discharges {
		_, err := f.svc.Discharge(ctx, c.id, c.in)
		wantField(t, "discharge: "+c.name, err, c.field)
		check("discharge: " + c.name)
	}

	// Set-up input.
	_, err = f.svc.CreateWard(ctx, CreateWardInput{DepartmentID: f.ward.DepartmentID, Code: "W", Name: "Again"})
	wantField(t, "duplicate ward code", err, "input.code")
	_, err = f.svc.CreateWard(ctx, CreateWardInput{DepartmentID: "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV", Code: "Z", Name: "Z"})
	wantField(t, "unknown department", err, "input.departmentId")
	_, err = f.svc.CreateWard(ctx, CreateWardInput{DepartmentID: f.ward.DepartmentID, Code: "bad code", Name: "Z"})
	wantField(t, "code with a space", err, "input.code")
	_, err = f.svc.CreateWard(ctx, CreateWardInput{DepartmentID: f.ward.DepartmentID, Code: "Z", Name: ""})
	wantField(t, "no name", err, "input.name")
	_, err = f.svc.AddBed(ctx, f.ward.ID, "W-01")
	wantField(t, "duplicate bed code", err, "code")
	_, err = f.svc.AddBed(ctx, "wrd_01ARZ3NDEKTSV4RRFFQ69G5FAV", "W-09")
	wantCode(t, "bed in an unknown ward", err, apperr.NotFound)
	check("set-up refusals")
}

// TestUniqueIndexIsTheBackstop: should the locks ever let two admissions
// through, the partial unique indexes refuse the second, as a CONFLICT.
func TestUniqueIndexIsTheBackstop(t *testing.T) {
	ctx, f := setup(t)
	// A stay that the service did not make leaves the bed FREE, so every
	// check of the service passes and only the index can object.
	f.client.Admission.Create().SetPatientID(f.patients[1].ID).SetBedID(f.beds[0].ID).SetAttendingID(f.doctor.ID).
		SetAdmittedAt(time.Now().UTC()).SetReason("x").SetAdmissionType(entadmission.AdmissionTypeELECTIVE).SaveX(ctx)
	events := f.client.OutboxEvent.Query().CountX(ctx)
	_, err := f.svc.Admit(ctx, AdmitPatientInput{PatientID: f.patients[0].ID, BedID: f.beds[0].ID, AttendingID: f.doctor.ID,
		Reason: "x", AdmissionType: entadmission.AdmissionTypeELECTIVE})
	wantCode(t, "second stay in one bed", err, apperr.Conflict)
	if f.status(ctx, t, f.beds[0]) != bed.StatusFREE || f.client.OutboxEvent.Query().CountX(ctx) != events {
		t.Fatal("the refused admission changed something")
	}
	// A discharged stay does not count: the index is partial.
	f.client.Admission.Update().Where(entadmission.BedID(f.beds[0].ID)).SetStatus(entadmission.StatusDISCHARGED).ExecX(ctx)
	f.admit(ctx, t, f.patients[0], f.beds[0])
}

// TestBoardStatementsStayFlat: the board costs the same number of SQL
// statements for one small ward as for several full ones.
func TestBoardStatementsStayFlat(t *testing.T) {
	ctx, f := setup(t)
	f.admit(ctx, t, f.patients[0], f.beds[1])
	cost := func(wardID *string) (int64, []*WardBoard) {
		before := f.st.Statements()
		boards, err := f.svc.Board(ctx, wardID)
		if err != nil {
			t.Fatal(err)
		}
		return f.st.Statements() - before, boards
	}
	small, boards := cost(&f.ward.ID)
	if len(boards) != 1 || len(boards[0].Beds) != 4 || boards[0].Occupied != 1 || boards[0].Free != 3 {
		t.Fatalf("small board: %+v", boards)
	}
	entry := boards[0].Beds[1]
	if entry.Bed.Code != "W-02" || entry.Admission == nil || entry.Admission.Edges.Patient == nil ||
		entry.Admission.Edges.Patient.ID != f.patients[0].ID || entry.Admission.Edges.Attending == nil ||
		entry.Bed.Edges.Ward != boards[0].Ward || boards[0].Ward.Edges.Department == nil {
		t.Fatalf("board entry without what it shows: %+v", entry)
	}
	for i, b := range boards[0].Beds {
		if (b.Admission != nil) != (i == 1) {
			t.Fatalf("bed %s: admission %v", b.Bed.Code, b.Admission)
		}
	}

	// Two more wards, full of beds and patients.
	for w := 0; w < 2; w++ {
		ward, err := f.svc.CreateWard(ctx, CreateWardInput{DepartmentID: f.ward.DepartmentID, Code: fmt.Sprintf("X%d", w), Name: "X"})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 8; i++ {
			b, err := f.svc.AddBed(ctx, ward.ID, fmt.Sprintf("X%d-%02d", w, 8-i))
			if err != nil {
				t.Fatal(err)
			}
			p := f.client.Patient.Create().SetMrn(fmt.Sprintf("2%d%07d", w, i)).SetGivenName("P").SetFamilyName("Q").
				SetBirthDate(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexOTHER).SaveX(ctx)
			f.admit(ctx, t, p, b)
		}
	}
	large, boards := cost(nil)
	if len(boards) != 3 || boards[0].Ward.Code != "W" || boards[1].Ward.Code != "X0" || boards[2].Ward.Code != "X1" {
		t.Fatalf("wards by code: %+v", boards)
	}
	for _, b := range boards[1:] {
		if len(b.Beds) != 8 || b.Occupied != 8 || b.Beds[0].Bed.Code > b.Beds[7].Bed.Code {
			t.Fatalf("full ward: %+v", b)
		}
	}
	if small != large {
		t.Fatalf("the board took %d statements for one ward of 4 beds, %d for three wards of 20", small, large)
	}

	_, err := f.svc.Board(ctx, new("wrd_01ARZ3NDEKTSV4RRFFQ69G5FAV"))
	wantCode(t, "unknown ward", err, apperr.NotFound)
	_, err = f.svc.Board(ctx, new("nope"))
	wantField(t, "malformed ward", err, "wardId")
}
