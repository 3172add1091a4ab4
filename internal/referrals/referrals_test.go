package referrals

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/referral"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc          *Service
	client       *ent.Client
	system       context.Context
	gen, car     *ent.Department
	patients     []*ent.Patient
	merged       *ent.Patient
	gp, nurse    *ent.Staff // general medicine
	cardiologist *ent.Staff
	cardioNurse  *ent.Staff
	pharmacist   *ent.Staff // no department
	retired      *ent.Staff
}

func setup(t *testing.T) fixture {
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	f := fixture{client: c, svc: NewService(st), system: sys}
	f.gen = c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	f.car = c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(sys)
	member := func(kind staff.Kind, dep *ent.Department) *ent.Staff {
		b := c.Staff.Create().SetGivenName("A").SetFamilyName("B").SetKind(kind)
		if dep != nil {
			b.SetDepartment(dep)
		}
		return b.SaveX(sys)
	}
	f.gp, f.nurse = member(staff.KindDOCTOR, f.gen), member(staff.KindNURSE, f.gen)
	f.cardiologist, f.cardioNurse = member(staff.KindDOCTOR, f.car), member(staff.KindNURSE, f.car)
	f.pharmacist = member(staff.KindPHARMACIST, nil)
	f.retired = c.Staff.Create().SetGivenName("R").SetFamilyName("E").SetKind(staff.KindDOCTOR).SetDepartment(f.car).SetActive(false).SaveX(sys)
	birth := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, mrn := range []string{"100000009", "100000017"} {
		f.patients = append(f.patients, c.Patient.Create().SetMrn(mrn).SetGivenName("P").SetFamilyName("Q").
			SetBirthDate(birth).SetSex(patient.SexFEMALE).SaveX(sys))
	}
	f.merged = c.Patient.Create().SetMrn("100000025").SetGivenName("P").SetFamilyName("Q").SetBirthDate(birth).
		SetSex(patient.SexFEMALE).SetStatus(patient.StatusMERGED).SetMergedIntoID(f.patients[0].ID).SaveX(sys)
	return f
}

func as(s *ent.Staff) context.Context {
	return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + s.ID[4:], Roles: []string{"doctor"}, StaffID: s.ID})
}

func ptr[T any](v T) *T { return &v }

func code(err error) apperr.Code {
	if err == nil {
		return ""
	}
	return apperr.CodeOf(err)
}

func field(err error) string {
	if e, ok := apperr.As(err); ok && e.Code == apperr.BadUserInput {
		return e.Field
	}
	return fmt.Sprintf("not bad input: %v", err)
}

func (f fixture) refer(t *testing.T, in ReferPatientInput) *ent.Referral {
	t.Helper()
	if in.PatientID == "" {
		in.PatientID = f.patients[0].ID
	}
	if in.ToDepartmentID == "" {
		in.ToDepartmentID = f.car.ID
	}
	if in.Reason == "" {
		in.Reason = "Exertional chest pain"
	}
	r, err := f.svc.Refer(as(f.gp), in)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReferFromTheViewersDepartment(t *testing.T) {
	f := setup(t)
	enc := f.client.Encounter.Create().SetPatientID(f.patients[0].ID).SetType(encounter.TypeOUTPATIENT).
		SetStartedAt(time.Now().UTC()).SetProviderID(f.gp.ID).SaveX(f.system)
	r := f.refer(t, ReferPatientInput{ToStaffID: &f.cardiologist.ID, Reason: "  Echo please ", Priority: referral.PriorityURGENT, EncounterID: &enc.ID})
	if r.Status != referral.StatusREQUESTED || r.FromStaffID != f.gp.ID || r.FromDepartmentID != f.gen.ID ||
		r.ToDepartmentID != f.car.ID || *r.ToStaffID != f.cardiologist.ID || r.Reason != "Echo please" ||
		r.Priority != referral.PriorityURGENT || *r.EncounterID != enc.ID {
		t.Fatalf("referral %+v", r)
	}
	if r := f.refer(t, ReferPatientInput{}); r.Priority != referral.PriorityROUTINE || r.ToStaffID != nil {
		t.Fatalf("defaults: %+v", r)
	}
}

func TestReferRefusesBadInput(t *testing.T) {
	f := setup(t)
	other := f.client.Encounter.Create().SetPatientID(f.patients[1].ID).SetType(encounter.TypeOUTPATIENT).
		SetStartedAt(time.Now().UTC()).SetProviderID(f.gp.ID).SaveX(f.system)
	good := func() ReferPatientInput {
		return ReferPatientInput{PatientID: f.patients[0].ID, ToDepartmentID: f.car.ID, Reason: "why"}
	}
	unknown := "_01ARZ3NDEKTSV4RRFFQ69G5FAV"
	cases := []struct {
		field  string
		change func(*ReferPatientInput)
	}{
		{"input.patientId", func(in *ReferPatientInput) { in.PatientID = "x" }},
		{"input.patientId", func(in *ReferPatientInput) { in.PatientID = "pat" + unknown }},
		{"input.patientId", func(in *ReferPatientInput) { in.PatientID = f.merged.ID }},
		{"input.toDepartmentId", func(in *ReferPatientInput) { in.ToDepartmentID = f.gp.ID }},
		{"input.toDepartmentId", func(in *ReferPatientInput) { in.ToDepartmentID = "dep" + unknown }},
		{"input.toStaffId", func(in *ReferPatientInput) { in.ToStaffID = ptr("stf" + unknown) }},
		{"input.toStaffId", func(in *ReferPatientInput) { in.ToStaffID = &f.nurse.ID }},      // not in cardiology
		{"input.toStaffId", func(in *ReferPatientInput) { in.ToStaffID = &f.retired.ID }},    // no longer active
		{"input.toStaffId", func(in *ReferPatientInput) { in.ToStaffID = &f.pharmacist.ID }}, // not a provider
		{"input.toStaffId", func(in *ReferPatientInput) { in.ToDepartmentID, in.ToStaffID = f.gen.ID, &f.gp.ID }},
		{"input.reason", func(in *ReferPatientInput) { in.Reason = "  " }},
		{"input.reason", func(in *ReferPatientInput) { in.Reason = strings.Repeat("x", MaxReason+1) }},
		{"input.priority", func(in *ReferPatientInput) { in.Priority = "SOON" }},
		{"input.encounterId", func(in *ReferPatientInput) { in.EncounterID = ptr("enc" + unknown) }},
		{"input.encounterId", func(in *ReferPatientInput) { in.EncounterID = &other.ID }},
	}
	for _, c := range cases {
		in := good()
		c.change(&in)
		_, err := f.svc.Refer(as(f.gp), in)
		if got := field(err); got != c.field {
			t.Errorf("want %s, got %s", c.field, got)
		}
	}
	if _, err := f.svc.Refer(as(f.pharmacist), good()); code(err) != apperr.Forbidden {
		t.Errorf("a referrer without a department: %v", err)
	}
	if _, err := f.svc.Refer(auth.SystemContext(context.Background()), good()); code(err) != apperr.Forbidden {
		t.Errorf("no staff behind the viewer: %v", err)
	}
	if n := f.client.Referral.Query().CountX(f.system); n != 0 {
		t.Fatalf("%d referrals written by refused requests", n)
	}
}

// TestReferralTransitions: each operation from each status, by someone
// allowed to act: allowed ones succeed, the rest are CONFLICTs that change
// nothing.
func TestReferralTransitions(t *testing.T) {
	f := setup(t)
	type op struct {
		name string
		by   *ent.Staff
		run  func(ctx context.Context, id string) (*ent.Referral, error)
		to   referral.Status
	}
	ops := []op{
		{"accept", f.cardiologist, func(ctx context.Context, id string) (*ent.Referral, error) { return f.svc.Accept(ctx, id, nil) }, referral.StatusACCEPTED},
		{"decline", f.cardiologist, func(ctx context.Context, id string) (*ent.Referral, error) { return f.svc.Decline(ctx, id, "full") }, referral.StatusDECLINED},
		{"complete", f.cardiologist, func(ctx context.Context, id string) (*ent.Referral, error) { return f.svc.Complete(ctx, id, nil) }, referral.StatusCOMPLETED},
		{"cancel", f.gp, func(ctx context.Context, id string) (*ent.Referral, error) { return f.svc.Cancel(ctx, id, "resolved") }, referral.StatusCANCELLED},
	}
	want := map[string]bool{
		"REQUESTED accept": true, "REQUESTED decline": true, "ACCEPTED complete": true,
		"REQUESTED cancel": true, "ACCEPTED cancel": true,
	}
	for _, from := range []referral.Status{referral.StatusREQUESTED, referral.StatusACCEPTED, referral.StatusDECLINED, referral.StatusCOMPLETED, referral.StatusCANCELLED} {
		for _, o := range ops {
			r := f.refer(t, ReferPatientInput{})
			f.client.Referral.UpdateOne(r).SetStatus(from).ExecX(f.system)
			got, err := o.run(as(o.by), r.ID)
			key := fmt.Sprintf("%s %s", from, o.name)
			switch {
			case want[key] && (err != nil || got.Status != o.to):
				t.Errorf("%s: %v %+v", key, err, got)
			case !want[key] && code(err) != apperr.Conflict:
				t.Errorf("%s should be a CONFLICT: %v", key, err)
			case !want[key] && f.client.Referral.GetX(f.system, r.ID).Status != from:
				t.Errorf("%s: a refused transition changed the referral", key)
			}
		}
	}
}

// TestWhoMayAnswer: the wrong side is FORBIDDEN whatever the status.
func TestWhoMayAnswer(t *testing.T) {
	f := setup(t)
	named := f.refer(t, ReferPatientInput{ToStaffID: &f.cardiologist.ID})
	for name, err := range map[string]error{
		"accept by another department": second(f.svc.Accept(as(f.nurse), named.ID, nil)),
		"decline by the referrer":      second(f.svc.Decline(as(f.gp), named.ID, "no")),
		"accept by a retired member":   second(f.svc.Accept(as(f.retired), named.ID, nil)),
		"cancel by the receiver":       second(f.svc.Cancel(as(f.cardiologist), named.ID, "no")),
		"cancel by a colleague":        second(f.svc.Cancel(as(f.nurse), named.ID, "no")),
	} {
		if code(err) != apperr.Forbidden {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := f.svc.Accept(as(f.cardiologist), "ref_01ARZ3NDEKTSV4RRFFQ69G5FAV", nil); code(err) != apperr.NotFound {
		t.Errorf("unknown referral: %v", err)
	}
	for name, err := range map[string]error{
		"id":     second(f.svc.Accept(as(f.cardiologist), "apt_01ARZ3NDEKTSV4RRFFQ69G5FAV", nil)),
		"note":   second(f.svc.Accept(as(f.cardiologist), named.ID, ptr(strings.Repeat("x", MaxNote+1)))),
		"reason": second(f.svc.Decline(as(f.cardiologist), named.ID, " ")),
	} {
		if got := field(err); got != name {
			t.Errorf("want %s, got %s", name, got)
		}
	}
	if got := f.client.Referral.GetX(f.system, named.ID); got.Status != referral.StatusREQUESTED || got.ResponseNote != nil {
		t.Fatalf("refused answers changed the referral: %+v", got)
	}

	// A department colleague of the named provider may answer for them;
	// once the referral is accepted, the receiving side completes it.
	accepted, err := f.svc.Accept(as(f.cardioNurse), named.ID, ptr("Cover for Dr B"))
	if err != nil || accepted.Status != referral.StatusACCEPTED || *accepted.ToStaffID != f.cardiologist.ID ||
		*accepted.ResponseNote != "Cover for Dr B" || accepted.RespondedAt == nil {
		t.Fatalf("accept by a colleague: %v %+v", err, accepted)
	}
	if _, err := f.svc.Complete(as(f.nurse), named.ID, nil); code(err) != apperr.Forbidden {
		t.Errorf("complete by another department: %v", err)
	}
	done, err := f.svc.Complete(as(f.cardiologist), named.ID, ptr("Echo normal"))
	if err != nil || done.Status != referral.StatusCOMPLETED || *done.ResponseNote != "Echo normal" {
		t.Fatalf("complete: %v %+v", err, done)
	}
}

func second[T any](_ T, err error) error { return err }

func (f fixture) team(t *testing.T, patientID string) []*ent.CareTeamMember {
	t.Helper()
	return f.client.CareTeamMember.Query().Where(careteammember.PatientID(patientID)).Order(ent.Asc(careteammember.FieldSince)).AllX(f.system)
}

func TestAcceptJoinsTheCareTeamOnce(t *testing.T) {
	f := setup(t)
	p := f.patients[0].ID
	first, err := f.svc.Accept(as(f.cardiologist), f.refer(t, ReferPatientInput{}).ID, nil)
	if err != nil || *first.ToStaffID != f.cardiologist.ID {
		t.Fatalf("accept: %v %+v", err, first)
	}
	team := f.team(t, p)
	if len(team) != 1 || team[0].StaffID != f.cardiologist.ID || team[0].Role != careteammember.RoleCONSULTANT || team[0].Until != nil {
		t.Fatalf("team after the first acceptance: %+v", team)
	}
	if _, err := f.svc.Accept(as(f.cardiologist), f.refer(t, ReferPatientInput{}).ID, nil); err != nil {
		t.Fatal(err)
	}
	if team := f.team(t, p); len(team) != 1 {
		t.Fatalf("an active member joined twice: %+v", team)
	}
	// Already on the team in another role: not added as consultant too.
	f.client.CareTeamMember.Create().SetPatientID(p).SetStaffID(f.cardioNurse.ID).SetRole(careteammember.RoleNURSE).SetSince(time.Now().UTC()).ExecX(f.system)
	if _, err := f.svc.Accept(as(f.cardioNurse), f.refer(t, ReferPatientInput{}).ID, nil); err != nil {
		t.Fatal(err)
	}
	if team := f.team(t, p); len(team) != 2 {
		t.Fatalf("a member in another role joined again: %+v", team)
	}
	// Once the membership has ended, a new acceptance starts a new one.
	if _, err := f.svc.EndCareTeamMembership(as(f.gp), team[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Accept(as(f.cardiologist), f.refer(t, ReferPatientInput{}).ID, nil); err != nil {
		t.Fatal(err)
	}
	active := f.client.CareTeamMember.Query().Where(careteammember.PatientID(p), careteammember.StaffID(f.cardiologist.ID), careteammember.UntilIsNil()).CountX(f.system)
	if total := len(f.team(t, p)); total != 3 || active != 1 {
		t.Fatalf("after rejoining: %d memberships, %d active", total, active)
	}
	// A declined referral adds no one.
	if _, err := f.svc.Decline(as(f.cardiologist), f.refer(t, ReferPatientInput{PatientID: f.patients[1].ID}).ID, "not needed"); err != nil {
		t.Fatal(err)
	}
	if team := f.team(t, f.patients[1].ID); len(team) != 0 {
		t.Fatalf("decline changed the care team: %+v", team)
	}
}

// TestConcurrentAccepts: many acceptances of one referral, by two
// clinicians, at once: one wins, and the care team gains one member.
func TestConcurrentAccepts(t *testing.T) {
	f := setup(t)
	r := f.refer(t, ReferPatientInput{})
	const attempts = 8
	errs := make([]error, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			by := []*ent.Staff{f.cardiologist, f.cardioNurse}[i%2]
			_, errs[i] = f.svc.Accept(as(by), r.ID, nil)
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch code(err) {
		case "":
			wins++
		case apperr.Conflict:
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	team := f.team(t, f.patients[0].ID)
	if wins != 1 || len(team) != 1 || team[0].StaffID != *f.client.Referral.GetX(f.system, r.ID).ToStaffID {
		t.Fatalf("wins %d, team %+v", wins, team)
	}
}

func TestCareTeamMembership(t *testing.T) {
	f := setup(t)
	ctx := as(f.nurse)
	p := f.patients[0].ID
	m, err := f.svc.AddCareTeamMember(ctx, AddCareTeamMemberInput{PatientID: p, StaffID: f.gp.ID, Role: careteammember.RolePRIMARY_CARE})
	if err != nil || m.Until != nil || m.Role != careteammember.RolePRIMARY_CARE || m.Since.IsZero() {
		t.Fatalf("add: %v %+v", err, m)
	}
	if _, err := f.svc.AddCareTeamMember(ctx, AddCareTeamMemberInput{PatientID: p, StaffID: f.gp.ID, Role: careteammember.RolePRIMARY_CARE}); code(err) != apperr.Conflict {
		t.Fatalf("the same role twice: %v", err)
	}
	if _, err := f.svc.AddCareTeamMember(ctx, AddCareTeamMemberInput{PatientID: p, StaffID: f.gp.ID, Role: careteammember.RoleATTENDING}); err != nil {
		t.Fatalf("another role: %v", err)
	}
	unknown := "_01ARZ3NDEKTSV4RRFFQ69G5FAV"
	for _, c := range []struct {
		field string
		in    AddCareTeamMemberInput
	}{
		{"input.patientId", AddCareTeamMemberInput{PatientID: "x", StaffID: f.gp.ID, Role: careteammember.RoleOTHER}},
		{"input.patientId", AddCareTeamMemberInput{PatientID: "pat" + unknown, StaffID: f.gp.ID, Role: careteammember.RoleOTHER}},
		{"input.patientId", AddCareTeamMemberInput{PatientID: f.merged.ID, StaffID: f.gp.ID, Role: careteammember.RoleOTHER}},
		{"input.staffId", AddCareTeamMemberInput{PatientID: p, StaffID: "stf" + unknown, Role: careteammember.RoleOTHER}},
		{"input.staffId", AddCareTeamMemberInput{PatientID: p, StaffID: f.retired.ID, Role: careteammember.RoleOTHER}},
		{"input.role", AddCareTeamMemberInput{PatientID: p, StaffID: f.gp.ID, Role: "SURGEON"}},
		{"input.role", AddCareTeamMemberInput{PatientID: p, StaffID: f.nurse.ID, Role: careteammember.RoleATTENDING}},
		{"input.role", AddCareTeamMemberInput{PatientID: p, StaffID: f.gp.ID, Role: careteammember.RolePHARMACIST}},
	} {
		if _, err := f.svc.AddCareTeamMember(ctx, c.in); field(err) != c.field {
			t.Errorf("want %s, got %v", c.field, err)
		}
	}
	if n := len(f.team(t, p)); n != 2 {
		t.Fatalf("refused additions changed the team: %d members", n)
	}

	ended, err := f.svc.EndCareTeamMembership(ctx, m.ID)
	if err != nil || ended.Until == nil {
		t.Fatalf("end: %v %+v", err, ended)
	}
	if _, err := f.svc.EndCareTeamMembership(ctx, m.ID); code(err) != apperr.Conflict {
		t.Fatalf("end twice: %v", err)
	}
	if _, err := f.svc.EndCareTeamMembership(ctx, "ctm"+unknown); code(err) != apperr.NotFound {
		t.Fatalf("end unknown: %v", err)
	}
	if _, err := f.svc.EndCareTeamMembership(ctx, m.PatientID); field(err) != "id" {
		t.Fatalf("end with a patient's ID: %v", err)
	}
	if _, err := f.svc.AddCareTeamMember(ctx, AddCareTeamMemberInput{PatientID: p, StaffID: f.gp.ID, Role: careteammember.RolePRIMARY_CARE}); err != nil {
		t.Fatalf("rejoin after the end: %v", err)
	}
}

// TestConcurrentAdditions: one role, one member, many requests at once.
func TestConcurrentAdditions(t *testing.T) {
	f := setup(t)
	const attempts = 8
	errs := make([]error, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = f.svc.AddCareTeamMember(as(f.nurse), AddCareTeamMemberInput{PatientID: f.patients[0].ID, StaffID: f.cardiologist.ID, Role: careteammember.RoleCONSULTANT})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if code(err) != apperr.Conflict {
			t.Errorf("unexpected: %v", err)
		}
	}
	if n := len(f.team(t, f.patients[0].ID)); wins != 1 || n != 1 {
		t.Fatalf("wins %d, members %d", wins, n)
	}
}

func TestIncoming(t *testing.T) {
	f := setup(t)
	toDepartment := f.refer(t, ReferPatientInput{})
	toMe := f.refer(t, ReferPatientInput{ToStaffID: &f.cardiologist.ID, Priority: referral.PriorityURGENT})
	if _, err := f.svc.Refer(as(f.cardioNurse), ReferPatientInput{PatientID: f.patients[1].ID, ToDepartmentID: f.car.ID, Reason: "own"}); err != nil {
		t.Fatal(err)
	}
	f.refer(t, ReferPatientInput{ToDepartmentID: f.gen.ID, ToStaffID: &f.nurse.ID})
	if _, err := f.svc.Decline(as(f.cardiologist), toDepartment.ID, "no"); err != nil {
		t.Fatal(err)
	}
	ids := func(ctx context.Context, filter IncomingFilter) []string {
		q, err := f.svc.Incoming(ctx, filter)
		if err != nil {
			t.Fatal(err)
		}
		return q.Order(ent.Asc(referral.FieldID)).IDsX(f.system)
	}
	if got := ids(as(f.cardiologist), IncomingFilter{}); len(got) != 3 {
		t.Errorf("cardiology's work list: %v", got)
	}
	if got := ids(as(f.cardioNurse), IncomingFilter{}); len(got) != 2 {
		t.Errorf("the nurse's list leaves out her own referral: %v", got)
	}
	if got := ids(as(f.cardiologist), IncomingFilter{Status: ptr(referral.StatusREQUESTED), Priority: ptr(referral.PriorityURGENT)}); len(got) != 1 || got[0] != toMe.ID {
		t.Errorf("filtered: %v", got)
	}
	if got := ids(as(f.nurse), IncomingFilter{}); len(got) != 1 {
		t.Errorf("general medicine's list: %v", got)
	}
	if got := ids(as(f.gp), IncomingFilter{}); len(got) != 0 {
		t.Errorf("the referrer's own referral to his department: %v", got)
	}
	if _, err := f.svc.Incoming(auth.SystemContext(context.Background()), IncomingFilter{}); code(err) != apperr.Forbidden {
		t.Errorf("no staff behind the viewer: %v", err)
	}
}
