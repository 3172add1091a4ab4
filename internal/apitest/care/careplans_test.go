package care

import (
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const createCarePlanMutation = `mutation($in: CreateCarePlanInput!) {
  createCarePlan(input: $in) {
    id status title periodStart periodEnd author { id } patient { id }
    goals { id description status targetDate }
    activities { id description status scheduledAt assignee { id } }
  }
}`

type carePlanOut struct {
	ID, Status, Title      string
	PeriodStart, PeriodEnd *string
	Author, Patient        struct{ ID string }
	Goals                  []struct{ ID, Description, Status string }
	Activities             []struct {
		ID, Description, Status string
		ScheduledAt             *string
		Assignee                *struct{ ID string }
	}
}

func carePlanInput(patientID string) map[string]any {
	return map[string]any{
		"patientId": patientID, "title": "Heart failure follow-up", "periodStart": "2030-01-01", "periodEnd": "2030-06-30",
		"goals": []map[string]any{{"description": "No admissions for fluid overload", "targetDate": "2030-06-30"}},
		"activities": []map[string]any{
			{"description": "Daily weights"},
			{"description": "Nurse phone call", "scheduledAt": time.Now().UTC().Add(72 * time.Hour).Truncate(time.Second).Format(time.RFC3339)},
		},
	}
}

// carePlanCount counts a patient's plans, goals and activities as the admin sees them.
func carePlanCount(t *testing.T, s *harness.Server, patientID string) (plans, goals, activities int) {
	t.Helper()
	var out struct {
		Patient struct {
			CarePlans []struct{ Goals, Activities []struct{ ID string } }
		}
	}
	s.As("admin", `query($id: ID!) { patient(id: $id) { carePlans { goals { id } activities { id } } } }`,
		map[string]any{"id": patientID}).Decode(t, &out)
	for _, p := range out.Patient.CarePlans {
		plans++
		goals += len(p.Goals)
		activities += len(p.Activities)
	}
	return
}

func TestCarePlanLifecycleOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	patient := d.Patients[1]

	var created struct{ CreateCarePlan carePlanOut }
	in := carePlanInput(patient)
	in["activities"].([]map[string]any)[1]["assigneeId"] = d.Nurse
	s.As("doctor", createCarePlanMutation, map[string]any{"in": in}).Decode(t, &created)
	plan := created.CreateCarePlan
	harness.Must(t, plan.Status == "DRAFT" && plan.Author.ID == d.Doctor && plan.Patient.ID == patient &&
		*plan.PeriodStart == "2030-01-01" && *plan.PeriodEnd == "2030-06-30", "created: %+v", plan)
	harness.Must(t, len(plan.Goals) == 1 && plan.Goals[0].Status == "PROPOSED" && len(plan.Activities) == 2, "items: %+v", plan)
	var scheduled, unscheduled string
	for _, a := range plan.Activities {
		if a.ScheduledAt != nil {
			harness.Must(t, a.Status == "SCHEDULED" && a.Assignee != nil && a.Assignee.ID == d.Nurse, "scheduled activity: %+v", a)
			scheduled = a.ID
		} else {
			harness.Must(t, a.Status == "NOT_STARTED", "unscheduled activity: %+v", a)
			unscheduled = a.ID
		}
	}

	planOp := func(op, role, id string) harness.Response {
		return s.As(role, `mutation($id: ID!) { `+op+`(id: $id) { id status } }`, map[string]any{"id": id})
	}
	goalStatus := func(id, status string) harness.Response {
		return s.As("nurse", `mutation($id: ID!, $s: CarePlanGoalStatus!) { setCarePlanGoalStatus(id: $id, status: $s) { id status } }`,
			map[string]any{"id": id, "s": status})
	}
	activityStatus := func(id, status string) harness.Response {
		return s.As("nurse", `mutation($id: ID!, $s: CarePlanActivityStatus!) { setCarePlanActivityStatus(id: $id, status: $s) { id status } }`,
			map[string]any{"id": id, "s": status})
	}
	statusOf := func(r harness.Response, op string) string {
		var out map[string]struct{ Status string }
		r.Decode(t, &out)
		return out[op].Status
	}

	r := planOp("completeCarePlan", "doctor", plan.ID)
	harness.Must(t, r.HasCode("CONFLICT"), "complete a draft: %s", harness.Describe(r))
	harness.Must(t, statusOf(planOp("activateCarePlan", "nurse", plan.ID), "activateCarePlan") == "ACTIVE", "activate")
	r = planOp("activateCarePlan", "nurse", plan.ID)
	harness.Must(t, r.HasCode("CONFLICT"), "activate twice: %s", harness.Describe(r))

	harness.Must(t, statusOf(goalStatus(plan.Goals[0].ID, "IN_PROGRESS"), "setCarePlanGoalStatus") == "IN_PROGRESS", "goal in progress")
	r = goalStatus(plan.Goals[0].ID, "PROPOSED")
	harness.Must(t, r.HasCode("CONFLICT"), "goal back to proposed: %s", harness.Describe(r))
	harness.Must(t, statusOf(goalStatus(plan.Goals[0].ID, "ACHIEVED"), "setCarePlanGoalStatus") == "ACHIEVED", "goal achieved")
	r = goalStatus(plan.Goals[0].ID, "NOT_ACHIEVED")
	harness.Must(t, r.HasCode("CONFLICT"), "an achieved goal is final: %s", harness.Describe(r))

	harness.Must(t, statusOf(activityStatus(scheduled, "IN_PROGRESS"), "setCarePlanActivityStatus") == "IN_PROGRESS", "activity started")
	r = activityStatus(scheduled, "SCHEDULED")
	harness.Must(t, r.HasCode("CONFLICT"), "activity back to scheduled: %s", harness.Describe(r))
	r = activityStatus(unscheduled, "SCHEDULED")
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "scheduledAt", "scheduling without a time: %s", harness.Describe(r))
	harness.Must(t, statusOf(activityStatus(scheduled, "COMPLETED"), "setCarePlanActivityStatus") == "COMPLETED", "activity completed")

	var added struct{ AddCarePlanGoal struct{ Status string } }
	s.As("doctor", `mutation($p: ID!) { addCarePlanGoal(carePlanId: $p, input: {description: "Walk 30 minutes a day", targetDate: "2030-03-01"}) { status } }`,
		map[string]any{"p": plan.ID}).Decode(t, &added)
	harness.Must(t, added.AddCarePlanGoal.Status == "PROPOSED", "added goal: %+v", added)
	var addedActivity struct{ AddCarePlanActivity struct{ Status string } }
	s.As("nurse", `mutation($p: ID!) { addCarePlanActivity(carePlanId: $p, input: {description: "Diet advice"}) { status } }`,
		map[string]any{"p": plan.ID}).Decode(t, &addedActivity)
	harness.Must(t, addedActivity.AddCarePlanActivity.Status == "NOT_STARTED", "added activity: %+v", addedActivity)

	harness.Must(t, statusOf(planOp("completeCarePlan", "doctor", plan.ID), "completeCarePlan") == "COMPLETED", "complete")
	var after struct {
		Node struct {
			Goals      []struct{ Description, Status string }
			Activities []struct{ Description, Status string }
		}
	}
	s.As("doctor", `query($id: ID!) { node(id: $id) { ... on CarePlan { goals { description status } activities { description status } } } }`,
		map[string]any{"id": plan.ID}).Decode(t, &after)
	for _, g := range after.Node.Goals {
		want := map[bool]string{true: "ACHIEVED", false: "CANCELLED"}[g.Description == "No admissions for fluid overload"]
		harness.Must(t, g.Status == want, "goal %q after completion: %s", g.Description, g.Status)
	}
	for _, a := range after.Node.Activities {
		harness.Must(t, a.Status == "COMPLETED" || a.Status == "CANCELLED", "activity %q left %s in a completed plan", a.Description, a.Status)
	}

	_, goalsBefore, activitiesBefore := carePlanCount(t, s, patient)
	for what, r := range map[string]harness.Response{
		"cancel":          planOp("cancelCarePlan", "doctor", plan.ID),
		"add goal":        s.As("doctor", `mutation($p: ID!) { addCarePlanGoal(carePlanId: $p, input: {description: "late"}) { id } }`, map[string]any{"p": plan.ID}),
		"add activity":    s.As("nurse", `mutation($p: ID!) { addCarePlanActivity(carePlanId: $p, input: {description: "late"}) { id } }`, map[string]any{"p": plan.ID}),
		"goal status":     goalStatus(plan.Goals[0].ID, "CANCELLED"),
		"activity status": activityStatus(unscheduled, "IN_PROGRESS"),
	} {
		harness.Must(t, r.HasCode("CONFLICT"), "%s on a completed plan: %s", what, harness.Describe(r))
	}
	_, goalsAfter, activitiesAfter := carePlanCount(t, s, patient)
	harness.Must(t, goalsAfter == goalsBefore && activitiesAfter == activitiesBefore, "a closed plan gained items")

	// A draft may be cancelled; a cancelled plan is closed.
	s.As("nurse", createCarePlanMutation, map[string]any{"in": carePlanInput(patient)}).Decode(t, &created)
	harness.Must(t, statusOf(planOp("cancelCarePlan", "nurse", created.CreateCarePlan.ID), "cancelCarePlan") == "CANCELLED", "cancel a draft")
	r = planOp("activateCarePlan", "doctor", created.CreateCarePlan.ID)
	harness.Must(t, r.HasCode("CONFLICT"), "activate a cancelled plan: %s", harness.Describe(r))
	r = planOp("activateCarePlan", "doctor", "cpl_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown plan: %s", harness.Describe(r))
}

func TestCarePlanBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	patient := d.Patients[2]
	cases := []struct {
		field  string
		change func(map[string]any)
	}{
		{"input.patientId", func(in map[string]any) { in["patientId"] = d.Doctor }},
		{"input.patientId", func(in map[string]any) { in["patientId"] = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.title", func(in map[string]any) { in["title"] = " " }},
		{"input.title", func(in map[string]any) { in["title"] = strings.Repeat("t", 201) }},
		{"input.periodEnd", func(in map[string]any) { in["periodEnd"] = "2029-12-31" }},
		{"input.periodStart", func(in map[string]any) { in["periodStart"] = "2030-02-30" }},
		{"input.goals[0].description", func(in map[string]any) { in["goals"].([]map[string]any)[0]["description"] = "" }},
		{"input.activities[1].assigneeId", func(in map[string]any) {
			in["activities"].([]map[string]any)[1]["assigneeId"] = "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV"
		}},
	}
	for _, c := range cases {
		in := carePlanInput(patient)
		c.change(in)
		r := s.As("doctor", createCarePlanMutation, map[string]any{"in": in})
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && len(r.Errors) == 1 && r.Errors[0].Field() == c.field,
			"%s: %s", c.field, harness.Describe(r))
	}
	plans, goals, activities := carePlanCount(t, s, patient)
	harness.Must(t, plans == 0 && goals == 0 && activities == 0, "refused plans left %d plans, %d goals, %d activities", plans, goals, activities)
}

// TestPatientReadsOwnCarePlans: the patient app shows the patient's own
// plans; another patient's plan does not exist for them, and they write none.
func TestPatientReadsOwnCarePlans(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	own, other := d.Patients[0], d.Patients[1]
	var theirs struct{ CreateCarePlan carePlanOut }
	s.As("doctor", createCarePlanMutation, map[string]any{"in": carePlanInput(other)}).Decode(t, &theirs)

	var mine struct {
		Patient struct {
			CarePlans []struct {
				Title, Status string
				Author        struct{ FamilyName string }
				Goals         []struct{ Description, Status string }
				Activities    []struct{ Description string }
			}
		}
	}
	s.As("patient", `query($id: ID!) { patient(id: $id) { carePlans { title status author { familyName }
	  goals { description status } activities { description } } } }`, map[string]any{"id": own}).Decode(t, &mine)
	harness.Must(t, len(mine.Patient.CarePlans) == 1 && mine.Patient.CarePlans[0].Title == "Hypertension control" &&
		len(mine.Patient.CarePlans[0].Goals) == 1 && mine.Patient.CarePlans[0].Author.FamilyName != "", "own plans: %+v", mine)

	r := s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": theirs.CreateCarePlan.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's plan by node: %s", harness.Describe(r))
	r = s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": theirs.CreateCarePlan.Goals[0].ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's goal by node: %s", harness.Describe(r))
	r = s.As("patient", `query($id: ID!) { patient(id: $id) { carePlans { id } } }`, map[string]any{"id": other})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's chart: %s", harness.Describe(r))

	r = s.As("patient", createCarePlanMutation, map[string]any{"in": carePlanInput(own)})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient writing a plan: %s", harness.Describe(r))
	r = s.As("patient", `mutation($id: ID!) { setCarePlanGoalStatus(id: $id, status: ACHIEVED) { id } }`,
		map[string]any{"id": theirs.CreateCarePlan.Goals[0].ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient changing a goal: %s", harness.Describe(r))
	r = s.As("reception", `mutation($id: ID!) { activateCarePlan(id: $id) { id } }`, map[string]any{"id": theirs.CreateCarePlan.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "reception activating a plan: %s", harness.Describe(r))
	plans, _, _ := carePlanCount(t, s, own)
	harness.Must(t, plans == 1, "own plans after refused writes: %d", plans)
}
