package careplans

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careplan"
	"github.com/hmis-dev/hmis/ent/careplanactivity"
	"github.com/hmis-dev/hmis/ent/careplangoal"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc     *Service
	client  *ent.Client
	patient *ent.Patient
	merged  *ent.Patient
	doctor  *ent.Staff
	nurse   *ent.Staff
	retired *ent.Staff
	system  context.Context
}

func setup(t *testing.T) (context.Context, fixture) {
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	dep := c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	f := fixture{client: c, svc: NewService(st), system: sys}
	f.doctor = c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(staff.KindDOCTOR).SetDepartment(dep).SaveX(sys)
	f.nurse = c.Staff.Create().SetGivenName("T").SetFamilyName("L").SetKind(staff.KindNURSE).SetDepartment(dep).SaveX(sys)
	f.retired = c.Staff.Create().SetGivenName("R").SetFamilyName("E").SetKind(staff.KindNURSE).SetActive(false).SaveX(sys)
	birth := time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	f.patient = c.Patient.Create().SetMrn("100000009").SetGivenName("P").SetFamilyName("Q").SetBirthDate(birth).SetSex(patient.SexFEMALE).SaveX(sys)
	f.merged = c.Patient.Create().SetMrn("100000017").SetGivenName("P").SetFamilyName("Q").SetBirthDate(birth).SetSex(patient.SexFEMALE).
		SetStatus(patient.StatusMERGED).SetMergedIntoID(f.patient.ID).SaveX(sys)
	return as(f.doctor), f
}

// as is a clinician's request context.
func as(s *ent.Staff) context.Context {
	return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + s.ID[4:], Roles: []string{"doctor"}, StaffID: s.ID})
}

func day(offset int) *time.Time {
	d := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, offset)
	return &d
}

func ptr[T any](v T) *T { return &v }

func (f fixture) counts(t *testing.T) [3]int {
	t.Helper()
	return [3]int{
		f.client.CarePlan.Query().CountX(f.system),
		f.client.CarePlanGoal.Query().CountX(f.system),
		f.client.CarePlanActivity.Query().CountX(f.system),
	}
}

func TestCreateWritesPlanWithGoalsAndActivities(t *testing.T) {
	ctx, f := setup(t)
	at := time.Now().UTC().Add(48 * time.Hour).Truncate(time.Second)
	plan, err := f.svc.Create(ctx, CreateCarePlanInput{
		PatientID: f.patient.ID, Title: "  Hypertension control ", Description: ptr("Lifestyle first."),
		PeriodStart: day(0), PeriodEnd: day(90),
		Goals: []CarePlanGoalInput{{Description: "BP below 140/90", TargetDate: day(60)}, {Description: "Lose 5 kg"}},
		Activities: []CarePlanActivityInput{
			{Description: "Home BP log"},
			{Description: "Nurse review", ScheduledAt: &at, AssigneeID: &f.nurse.ID},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Status != careplan.StatusDRAFT || plan.AuthorID != f.doctor.ID || plan.Title != "Hypertension control" || plan.PatientID != f.patient.ID {
		t.Fatalf("plan %+v", plan)
	}
	goals := f.client.CarePlanGoal.Query().Where(careplangoal.CarePlanID(plan.ID)).AllX(f.system)
	if len(goals) != 2 {
		t.Fatalf("goals %+v", goals)
	}
	for _, g := range goals {
		if g.Status != careplangoal.StatusPROPOSED || g.PatientID != f.patient.ID {
			t.Fatalf("goal %+v", g)
		}
	}
	byText := map[string]*ent.CarePlanActivity{}
	for _, a := range f.client.CarePlanActivity.Query().Where(careplanactivity.CarePlanID(plan.ID)).AllX(f.system) {
		byText[a.Description] = a
	}
	if a := byText["Home BP log"]; a == nil || a.Status != careplanactivity.StatusNOT_STARTED || a.ScheduledAt != nil {
		t.Fatalf("unscheduled activity %+v", a)
	}
	if a := byText["Nurse review"]; a == nil || a.Status != careplanactivity.StatusSCHEDULED || !a.ScheduledAt.Equal(at) ||
		a.AssigneeID == nil || *a.AssigneeID != f.nurse.ID {
		t.Fatalf("scheduled activity %+v", a)
	}
}

// TestCreateRefusesBadInput: each bad input names its field, and nothing
// of the plan is written, even when the fault is found after the plan row.
func TestCreateRefusesBadInput(t *testing.T) {
	ctx, f := setup(t)
	good := func() CreateCarePlanInput {
		return CreateCarePlanInput{PatientID: f.patient.ID, Title: "Plan",
			Goals:      []CarePlanGoalInput{{Description: "a"}, {Description: "b"}},
			Activities: []CarePlanActivityInput{{Description: "x"}, {Description: "y"}}}
	}
	many := make([]CarePlanGoalInput, MaxItems+1)
	for i := range many {
		many[i].Description = "g"
	}
	cases := []struct {
		field  string
		change func(*CreateCarePlanInput)
	}{
		{"input.patientId", func(in *CreateCarePlanInput) { in.PatientID = "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.patientId", func(in *CreateCarePlanInput) { in.PatientID = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.patientId", func(in *CreateCarePlanInput) { in.PatientID = f.merged.ID }},
		{"input.title", func(in *CreateCarePlanInput) { in.Title = "   " }},
		{"input.title", func(in *CreateCarePlanInput) { in.Title = string(make([]byte, MaxTitle+1)) }},
		{"input.periodEnd", func(in *CreateCarePlanInput) { in.PeriodStart, in.PeriodEnd = day(10), day(9) }},
		{"input.goals", func(in *CreateCarePlanInput) { in.Goals = many }},
		{"input.goals[1].description", func(in *CreateCarePlanInput) { in.Goals[1].Description = " " }},
		{"input.activities[1].description", func(in *CreateCarePlanInput) { in.Activities[1].Description = "" }},
		{"input.activities[0].assigneeId", func(in *CreateCarePlanInput) { in.Activities[0].AssigneeID = ptr("nobody") }},
		{"input.activities[1].assigneeId", func(in *CreateCarePlanInput) { in.Activities[1].AssigneeID = ptr("stf_01ARZ3NDEKTSV4RRFFQ69G5FAV") }},
		{"input.activities[1].assigneeId", func(in *CreateCarePlanInput) { in.Activities[1].AssigneeID = &f.retired.ID }},
	}
	for _, c := range cases {
		in := good()
		c.change(&in)
		_, err := f.svc.Create(ctx, in)
		if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != c.field {
			t.Errorf("%s: got %v", c.field, err)
		}
	}
	if _, err := f.svc.Create(auth.SystemContext(context.Background()), good()); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("no staff record behind the viewer: %v", err)
	}
	if got := f.counts(t); got != [3]int{} {
		t.Fatalf("refused plans left rows behind: %v", got)
	}
}

func (f fixture) planIn(t *testing.T, status careplan.Status) *ent.CarePlan {
	t.Helper()
	return f.client.CarePlan.Create().SetPatientID(f.patient.ID).SetTitle("Plan").SetAuthorID(f.doctor.ID).SetStatus(status).SaveX(f.system)
}

var (
	planStatuses     = []careplan.Status{careplan.StatusDRAFT, careplan.StatusACTIVE, careplan.StatusCOMPLETED, careplan.StatusCANCELLED}
	goalStatuses     = []careplangoal.Status{careplangoal.StatusPROPOSED, careplangoal.StatusIN_PROGRESS, careplangoal.StatusACHIEVED, careplangoal.StatusNOT_ACHIEVED, careplangoal.StatusCANCELLED}
	activityStatuses = []careplanactivity.Status{careplanactivity.StatusNOT_STARTED, careplanactivity.StatusSCHEDULED, careplanactivity.StatusIN_PROGRESS, careplanactivity.StatusCOMPLETED, careplanactivity.StatusCANCELLED}
)

// TestPlanTransitions tries every status against every operation: the
// allowed ones succeed, every other is a CONFLICT that changes nothing.
func TestPlanTransitions(t *testing.T) {
	ctx, f := setup(t)
	ops := map[careplan.Status]func(context.Context, string) (*ent.CarePlan, error){
		careplan.StatusACTIVE: f.svc.Activate, careplan.StatusCOMPLETED: f.svc.Complete, careplan.StatusCANCELLED: f.svc.Cancel,
	}
	want := map[string]bool{"DRAFT→ACTIVE": true, "DRAFT→CANCELLED": true, "ACTIVE→COMPLETED": true, "ACTIVE→CANCELLED": true}
	for _, from := range planStatuses {
		for to, op := range ops {
			plan := f.planIn(t, from)
			got, err := op(ctx, plan.ID)
			key := fmt.Sprintf("%s→%s", from, to)
			switch {
			case want[key] && (err != nil || got.Status != to):
				t.Errorf("%s: %v %+v", key, err, got)
			case !want[key] && apperr.CodeOf(err) != apperr.Conflict:
				t.Errorf("%s should be a CONFLICT: %v", key, err)
			case !want[key] && f.client.CarePlan.GetX(f.system, plan.ID).Status != from:
				t.Errorf("%s: a refused transition changed the plan", key)
			}
		}
	}
	if _, err := f.svc.Activate(ctx, "cpl_01ARZ3NDEKTSV4RRFFQ69G5FAV"); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown plan: %v", err)
	}
	if _, err := f.svc.Activate(ctx, "cpg_01ARZ3NDEKTSV4RRFFQ69G5FAV"); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Errorf("a goal's ID for a plan's: %v", err)
	}
}

func TestGoalTransitions(t *testing.T) {
	ctx, f := setup(t)
	want := map[string]bool{
		"PROPOSED→IN_PROGRESS": true, "PROPOSED→CANCELLED": true,
		"IN_PROGRESS→ACHIEVED": true, "IN_PROGRESS→NOT_ACHIEVED": true, "IN_PROGRESS→CANCELLED": true,
		"NOT_ACHIEVED→IN_PROGRESS": true,
	}
	plan := f.planIn(t, careplan.StatusACTIVE)
	for _, from := range goalStatuses {
		for _, to := range goalStatuses {
			g := f.client.CarePlanGoal.Create().SetPatientID(f.patient.ID).SetCarePlanID(plan.ID).SetDescription("g").SetStatus(from).SaveX(f.system)
			got, err := f.svc.SetGoalStatus(ctx, g.ID, to)
			key := fmt.Sprintf("%s→%s", from, to)
			switch {
			case want[key] && (err != nil || got.Status != to):
				t.Errorf("%s: %v %+v", key, err, got)
			case !want[key] && apperr.CodeOf(err) != apperr.Conflict:
				t.Errorf("%s should be a CONFLICT: %v", key, err)
			case !want[key] && f.client.CarePlanGoal.GetX(f.system, g.ID).Status != from:
				t.Errorf("%s: a refused transition changed the goal", key)
			}
		}
	}
	if _, err := f.svc.SetGoalStatus(ctx, "cpg_01ARZ3NDEKTSV4RRFFQ69G5FAV", careplangoal.StatusIN_PROGRESS); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown goal: %v", err)
	}
	if e, ok := apperr.As(func() error { _, err := f.svc.SetGoalStatus(ctx, "x", careplangoal.StatusIN_PROGRESS); return err }()); !ok || e.Field != "id" {
		t.Errorf("bad goal ID: %v", e)
	}
	if e, ok := apperr.As(func() error { _, err := f.svc.AddGoal(ctx, plan.ID, CarePlanGoalInput{Description: ""}); return err }()); !ok || e.Field != "input.description" {
		t.Errorf("empty goal: %v", e)
	}
}

func TestActivityTransitions(t *testing.T) {
	ctx, f := setup(t)
	want := map[string]bool{
		"NOT_STARTED→SCHEDULED": true, "NOT_STARTED→IN_PROGRESS": true, "NOT_STARTED→COMPLETED": true, "NOT_STARTED→CANCELLED": true,
		"SCHEDULED→IN_PROGRESS": true, "SCHEDULED→COMPLETED": true, "SCHEDULED→CANCELLED": true,
		"IN_PROGRESS→COMPLETED": true, "IN_PROGRESS→CANCELLED": true,
	}
	plan := f.planIn(t, careplan.StatusDRAFT)
	at := time.Now().UTC().Add(time.Hour).Truncate(time.Second)
	for _, from := range activityStatuses {
		for _, to := range activityStatuses {
			a := f.client.CarePlanActivity.Create().SetPatientID(f.patient.ID).SetCarePlanID(plan.ID).SetDescription("a").SetStatus(from).SaveX(f.system)
			var when *time.Time
			if to == careplanactivity.StatusSCHEDULED {
				when = &at
			}
			got, err := f.svc.SetActivityStatus(ctx, a.ID, to, when)
			key := fmt.Sprintf("%s→%s", from, to)
			switch {
			case want[key] && (err != nil || got.Status != to):
				t.Errorf("%s: %v %+v", key, err, got)
			case want[key] && when != nil && !got.ScheduledAt.Equal(at):
				t.Errorf("%s: scheduled for %v", key, got.ScheduledAt)
			case !want[key] && apperr.CodeOf(err) != apperr.Conflict:
				t.Errorf("%s should be a CONFLICT: %v", key, err)
			case !want[key] && f.client.CarePlanActivity.GetX(f.system, a.ID).Status != from:
				t.Errorf("%s: a refused transition changed the activity", key)
			}
		}
	}

	a := f.client.CarePlanActivity.Create().SetPatientID(f.patient.ID).SetCarePlanID(plan.ID).SetDescription("a").SaveX(f.system)
	_, err := f.svc.SetActivityStatus(ctx, a.ID, careplanactivity.StatusSCHEDULED, nil)
	if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != "scheduledAt" {
		t.Errorf("scheduling without a time: %v", err)
	}
	_, err = f.svc.SetActivityStatus(ctx, a.ID, careplanactivity.StatusIN_PROGRESS, &at)
	if e, ok := apperr.As(err); !ok || e.Field != "scheduledAt" {
		t.Errorf("a time without scheduling: %v", err)
	}
	if got := f.client.CarePlanActivity.GetX(f.system, a.ID); got.Status != careplanactivity.StatusNOT_STARTED || got.ScheduledAt != nil {
		t.Errorf("refused changes changed the activity: %+v", got)
	}
	// An activity created with a time may be scheduled on that time later.
	added, err := f.svc.AddActivity(ctx, plan.ID, CarePlanActivityInput{Description: "later", AssigneeID: &f.nurse.ID})
	if err != nil || added.Status != careplanactivity.StatusNOT_STARTED {
		t.Fatalf("add activity: %v %+v", err, added)
	}
	f.client.CarePlanActivity.UpdateOne(added).SetScheduledAt(at).ExecX(f.system)
	if got, err := f.svc.SetActivityStatus(ctx, added.ID, careplanactivity.StatusSCHEDULED, nil); err != nil || !got.ScheduledAt.Equal(at) {
		t.Errorf("scheduling on the time it has: %v %+v", err, got)
	}
	_, err = f.svc.AddActivity(ctx, plan.ID, CarePlanActivityInput{Description: "x", AssigneeID: &f.retired.ID})
	if e, ok := apperr.As(err); !ok || e.Field != "input.assigneeId" {
		t.Errorf("inactive assignee: %v", err)
	}
}

// TestClosingAPlan: what is still open is cancelled, outcomes are kept, and
// the closed plan refuses every change.
func TestClosingAPlan(t *testing.T) {
	ctx, f := setup(t)
	plan, err := f.svc.Create(ctx, CreateCarePlanInput{PatientID: f.patient.ID, Title: "Plan",
		Goals:      []CarePlanGoalInput{{Description: "open"}, {Description: "met"}, {Description: "missed"}},
		Activities: []CarePlanActivityInput{{Description: "pending"}, {Description: "done"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Activate(ctx, plan.ID); err != nil {
		t.Fatal(err)
	}
	goal := map[string]*ent.CarePlanGoal{}
	for _, g := range f.client.CarePlanGoal.Query().AllX(f.system) {
		goal[g.Description] = g
	}
	for _, s := range []careplangoal.Status{careplangoal.StatusIN_PROGRESS, careplangoal.StatusACHIEVED} {
		if _, err := f.svc.SetGoalStatus(ctx, goal["met"].ID, s); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []careplangoal.Status{careplangoal.StatusIN_PROGRESS, careplangoal.StatusNOT_ACHIEVED} {
		if _, err := f.svc.SetGoalStatus(ctx, goal["missed"].ID, s); err != nil {
			t.Fatal(err)
		}
	}
	done := f.client.CarePlanActivity.Query().Where(careplanactivity.Description("done")).OnlyX(f.system)
	if _, err := f.svc.SetActivityStatus(ctx, done.ID, careplanactivity.StatusCOMPLETED, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Complete(ctx, plan.ID); err != nil {
		t.Fatal(err)
	}
	wantGoals := map[string]careplangoal.Status{"open": careplangoal.StatusCANCELLED, "met": careplangoal.StatusACHIEVED, "missed": careplangoal.StatusNOT_ACHIEVED}
	for _, g := range f.client.CarePlanGoal.Query().AllX(f.system) {
		if g.Status != wantGoals[g.Description] {
			t.Errorf("goal %q is %s after completion", g.Description, g.Status)
		}
	}
	wantActivities := map[string]careplanactivity.Status{"pending": careplanactivity.StatusCANCELLED, "done": careplanactivity.StatusCOMPLETED}
	for _, a := range f.client.CarePlanActivity.Query().AllX(f.system) {
		if a.Status != wantActivities[a.Description] {
			t.Errorf("activity %q is %s after completion", a.Description, a.Status)
		}
	}

	before := f.counts(t)
	refusals := map[string]error{}
	_, refusals["add goal"] = f.svc.AddGoal(ctx, plan.ID, CarePlanGoalInput{Description: "late"})
	_, refusals["add activity"] = f.svc.AddActivity(ctx, plan.ID, CarePlanActivityInput{Description: "late"})
	_, refusals["goal status"] = f.svc.SetGoalStatus(ctx, goal["missed"].ID, careplangoal.StatusIN_PROGRESS)
	_, refusals["activity status"] = f.svc.SetActivityStatus(ctx, done.ID, careplanactivity.StatusCANCELLED, nil)
	_, refusals["cancel"] = f.svc.Cancel(ctx, plan.ID)
	for what, err := range refusals {
		if apperr.CodeOf(err) != apperr.Conflict {
			t.Errorf("%s on a completed plan: %v", what, err)
		}
	}
	if f.counts(t) != before || f.client.CarePlanGoal.GetX(f.system, goal["missed"].ID).Status != careplangoal.StatusNOT_ACHIEVED {
		t.Error("a closed plan changed")
	}
}

// TestAddingWhileClosing races goal additions against the plan's
// completion: whatever the order, no goal is left open in the closed plan.
func TestAddingWhileClosing(t *testing.T) {
	ctx, f := setup(t)
	plan := f.planIn(t, careplan.StatusACTIVE)
	const adders = 8
	var wg sync.WaitGroup
	errs := make([]error, adders+1)
	for i := 0; i <= adders; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == adders/2 {
				_, errs[i] = f.svc.Complete(ctx, plan.ID)
				return
			}
			_, errs[i] = f.svc.AddGoal(ctx, plan.ID, CarePlanGoalInput{Description: fmt.Sprintf("goal %d", i)})
		}(i)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil && (i == adders/2 || apperr.CodeOf(err) != apperr.Conflict) {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if n := f.client.CarePlanGoal.Query().Where(careplangoal.CarePlanID(plan.ID), careplangoal.StatusNEQ(careplangoal.StatusCANCELLED)).CountX(f.system); n != 0 {
		t.Errorf("%d goals left open in a completed plan", n)
	}
}
