package careplans

import (
	"context"
	"fmt"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careplan"
	"github.com/hmis-dev/hmis/ent/careplanactivity"
	"github.com/hmis-dev/hmis/ent/careplangoal"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// CreateCarePlanInput is the input of createCarePlan.
type CreateCarePlanInput struct {
	PatientID   string
	Title       string
	Description *string
	PeriodStart *time.Time
	PeriodEnd   *time.Time
	Goals       []CarePlanGoalInput
	Activities  []CarePlanActivityInput
}

// CarePlanGoalInput describes a goal, in a new plan or added to one.
type CarePlanGoalInput struct {
	Description string
	TargetDate  *time.Time
}

// CarePlanActivityInput describes an activity, in a new plan or added to one.
type CarePlanActivityInput struct {
	Description string
	ScheduledAt *time.Time
	AssigneeID  *string
}

// Limits on what a plan may hold.
const (
	MaxTitle       = 200
	MaxDescription = 4000
	MaxItemText    = 500
	MaxItems       = 50
)

// Which status may follow which. A status missing as a key is final.
var (
	planTransitions = map[careplan.Status][]careplan.Status{
		careplan.StatusDRAFT:  {careplan.StatusACTIVE, careplan.StatusCANCELLED},
		careplan.StatusACTIVE: {careplan.StatusCOMPLETED, careplan.StatusCANCELLED},
	}
	goalTransitions = map[careplangoal.Status][]careplangoal.Status{
		careplangoal.StatusPROPOSED:    {careplangoal.StatusIN_PROGRESS, careplangoal.StatusCANCELLED},
		careplangoal.StatusIN_PROGRESS: {careplangoal.StatusACHIEVED, careplangoal.StatusNOT_ACHIEVED, careplangoal.StatusCANCELLED},
		// A goal missed at one review may be taken up again.
		careplangoal.StatusNOT_ACHIEVED: {careplangoal.StatusIN_PROGRESS},
	}
	activityTransitions = map[careplanactivity.Status][]careplanactivity.Status{
		careplanactivity.StatusNOT_STARTED: {careplanactivity.StatusSCHEDULED, careplanactivity.StatusIN_PROGRESS,
			careplanactivity.StatusCOMPLETED, careplanactivity.StatusCANCELLED},
		careplanactivity.StatusSCHEDULED:   {careplanactivity.StatusIN_PROGRESS, careplanactivity.StatusCOMPLETED, careplanactivity.StatusCANCELLED},
		careplanactivity.StatusIN_PROGRESS: {careplanactivity.StatusCOMPLETED, careplanactivity.StatusCANCELLED},
	}
)

func allowed[S comparable](table map[S][]S, from, to S) bool {
	for _, next := range table[from] {
		if next == to {
			return true
		}
	}
	return false
}

// What is still open in a plan, and so is cancelled when the plan closes.
var (
	openGoals      = []careplangoal.Status{careplangoal.StatusPROPOSED, careplangoal.StatusIN_PROGRESS}
	openActivities = []careplanactivity.Status{careplanactivity.StatusNOT_STARTED, careplanactivity.StatusSCHEDULED, careplanactivity.StatusIN_PROGRESS}
	openPlans      = []careplan.Status{careplan.StatusDRAFT, careplan.StatusACTIVE}
)

// Service keeps care plans.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st.
func NewService(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// Create writes a DRAFT plan authored by the viewer's staff record, with
// its goals and activities, in one transaction.
func (s *Service) Create(ctx context.Context, in CreateCarePlanInput) (*ent.CarePlan, error) {
	if err := validateCreate(&in); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.CarePlan, error) {
		author, err := auth.ActingStaff(ctx, tx.Staff, "author a care plan", staff.KindDOCTOR, staff.KindNURSE)
		if err != nil {
			return nil, err
		}
		if _, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID); err != nil {
			return nil, err
		}
		for i, a := range in.Activities {
			if err := checkAssignee(ctx, tx, fmt.Sprintf("input.activities[%d].assigneeId", i), a.AssigneeID); err != nil {
				return nil, err
			}
		}
		created, err := tx.CarePlan.Create().
			SetPatientID(in.PatientID).
			SetTitle(in.Title).
			SetNillableDescription(in.Description).
			SetNillablePeriodStart(in.PeriodStart).
			SetNillablePeriodEnd(in.PeriodEnd).
			SetAuthorID(author.ID).
			Save(ctx)
		if err != nil {
			return nil, err
		}
		goals := make([]*ent.CarePlanGoalCreate, len(in.Goals))
		for i, g := range in.Goals {
			goals[i] = newGoal(tx, created, g)
		}
		if err := tx.CarePlanGoal.CreateBulk(goals...).Exec(ctx); err != nil {
			return nil, err
		}
		activities := make([]*ent.CarePlanActivityCreate, len(in.Activities))
		for i, a := range in.Activities {
			activities[i] = newActivity(tx, created, a)
		}
		return created, tx.CarePlanActivity.CreateBulk(activities...).Exec(ctx)
	})
}

func validateCreate(in *CreateCarePlanInput) error {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	in.Title = c.Text("input.title", in.Title, MaxTitle)
	in.Description = c.OptionalText("input.description", in.Description, MaxDescription)
	switch {
	case c.Err() != nil:
	case in.PeriodStart != nil && in.PeriodEnd != nil && in.PeriodEnd.Before(*in.PeriodStart):
		c.Fail(apperr.BadInput("input.periodEnd", "must not be before periodStart"))
	case len(in.Goals) > MaxItems:
		c.Fail(apperr.BadInput("input.goals", "at most %d goals", MaxItems))
	case len(in.Activities) > MaxItems:
		c.Fail(apperr.BadInput("input.activities", "at most %d activities", MaxItems))
	}
	for i := range in.Goals {
		validateGoal(&c, fmt.Sprintf("input.goals[%d].", i), &in.Goals[i])
	}
	for i := range in.Activities {
		validateActivity(&c, fmt.Sprintf("input.activities[%d].", i), &in.Activities[i])
	}
	return c.Err()
}

func validateGoal(c *input.Checker, prefix string, g *CarePlanGoalInput) {
	g.Description = c.Text(prefix+"description", g.Description, MaxItemText)
}

func validateActivity(c *input.Checker, prefix string, a *CarePlanActivityInput) {
	a.Description = c.Text(prefix+"description", a.Description, MaxItemText)
	c.OptionalID(prefix+"assigneeId", a.AssigneeID, input.Staff)
}

func newGoal(tx *ent.Tx, plan *ent.CarePlan, g CarePlanGoalInput) *ent.CarePlanGoalCreate {
	return tx.CarePlanGoal.Create().
		SetPatientID(plan.PatientID).
		SetCarePlanID(plan.ID).
		SetDescription(g.Description).
		SetNillableTargetDate(g.TargetDate)
}

// newActivity starts an activity that already has a time as SCHEDULED.
func newActivity(tx *ent.Tx, plan *ent.CarePlan, a CarePlanActivityInput) *ent.CarePlanActivityCreate {
	c := tx.CarePlanActivity.Create().
		SetPatientID(plan.PatientID).
		SetCarePlanID(plan.ID).
		SetDescription(a.Description).
		SetNillableAssigneeID(a.AssigneeID)
	if a.ScheduledAt != nil {
		c.SetScheduledAt(a.ScheduledAt.UTC()).SetStatus(careplanactivity.StatusSCHEDULED)
	}
	return c
}

// Activate puts a DRAFT plan into effect.
func (s *Service) Activate(ctx context.Context, id string) (*ent.CarePlan, error) {
	return s.movePlan(ctx, id, careplan.StatusACTIVE)
}

// Complete closes an ACTIVE plan as done. Goals and activities still open
// are cancelled: nothing stays pending under a closed plan.
func (s *Service) Complete(ctx context.Context, id string) (*ent.CarePlan, error) {
	return s.movePlan(ctx, id, careplan.StatusCOMPLETED)
}

// Cancel abandons a DRAFT or ACTIVE plan, cancelling what is still open in it.
func (s *Service) Cancel(ctx context.Context, id string) (*ent.CarePlan, error) {
	return s.movePlan(ctx, id, careplan.StatusCANCELLED)
}

// movePlan changes a plan's status if the table allows it. The update is
// conditional on the status read, so of two concurrent changes one wins
// and the other gets CONFLICT.
func (s *Service) movePlan(ctx context.Context, id string, to careplan.Status) (*ent.CarePlan, error) {
	if err := input.ID("id", id, input.CarePlan); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.CarePlan, error) {
		current, err := lockedPlan(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if !allowed(planTransitions, current.Status, to) {
			return nil, apperr.Conflictf("the care plan is %s; it cannot become %s", current.Status, to)
		}
		moved, err := tx.CarePlan.UpdateOneID(id).Where(careplan.StatusEQ(current.Status)).SetStatus(to).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the care plan changed meanwhile; reload it")
		} else if err != nil || to == careplan.StatusACTIVE {
			return moved, err
		}
		if err := tx.CarePlanGoal.Update().
			Where(careplangoal.CarePlanID(id), careplangoal.StatusIn(openGoals...)).
			SetStatus(careplangoal.StatusCANCELLED).Exec(ctx); err != nil {
			return nil, err
		}
		return moved, tx.CarePlanActivity.Update().
			Where(careplanactivity.CarePlanID(id), careplanactivity.StatusIn(openActivities...)).
			SetStatus(careplanactivity.StatusCANCELLED).Exec(ctx)
	})
}

// AddGoal adds a goal to a plan that is not closed.
func (s *Service) AddGoal(ctx context.Context, planID string, in CarePlanGoalInput) (*ent.CarePlanGoal, error) {
	var c input.Checker
	c.ID("carePlanId", planID, input.CarePlan)
	validateGoal(&c, "input.", &in)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.CarePlanGoal, error) {
		plan, err := lockOpenPlan(ctx, tx, planID)
		if err != nil {
			return nil, err
		}
		return newGoal(tx, plan, in).Save(ctx)
	})
}

// AddActivity adds an activity to a plan that is not closed.
func (s *Service) AddActivity(ctx context.Context, planID string, in CarePlanActivityInput) (*ent.CarePlanActivity, error) {
	var c input.Checker
	c.ID("carePlanId", planID, input.CarePlan)
	validateActivity(&c, "input.", &in)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.CarePlanActivity, error) {
		plan, err := lockOpenPlan(ctx, tx, planID)
		if err != nil {
			return nil, err
		}
		if err := checkAssignee(ctx, tx, "input.assigneeId", in.AssigneeID); err != nil {
			return nil, err
		}
		return newActivity(tx, plan, in).Save(ctx)
	})
}

// SetGoalStatus moves a goal along goalTransitions.
func (s *Service) SetGoalStatus(ctx context.Context, id string, to careplangoal.Status) (*ent.CarePlanGoal, error) {
	if err := input.ID("id", id, input.CarePlanGoal); err != nil {
		return nil, err
	}
	if careplangoal.StatusValidator(to) != nil {
		return nil, apperr.BadInput("status", "is not a goal status")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.CarePlanGoal, error) {
		current, err := store.GetLocked(ctx, tx, tx.CarePlanGoal.Get, id, func(g *ent.CarePlanGoal) string { return g.PatientID }, "care plan goal not found")
		if err != nil {
			return nil, err
		}
		if _, err := lockOpenPlan(ctx, tx, current.CarePlanID); err != nil {
			return nil, err
		}
		if !allowed(goalTransitions, current.Status, to) {
			return nil, apperr.Conflictf("the goal is %s; it cannot become %s", current.Status, to)
		}
		changed, err := tx.CarePlanGoal.UpdateOneID(id).Where(careplangoal.StatusEQ(current.Status)).SetStatus(to).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the goal changed meanwhile; reload it")
		}
		return changed, err
	})
}

// SetActivityStatus moves an activity along activityTransitions. Scheduling
// needs a time: scheduledAt, or the one the activity already has.
func (s *Service) SetActivityStatus(ctx context.Context, id string, to careplanactivity.Status, scheduledAt *time.Time) (*ent.CarePlanActivity, error) {
	if err := input.ID("id", id, input.CarePlanActivity); err != nil {
		return nil, err
	}
	if careplanactivity.StatusValidator(to) != nil {
		return nil, apperr.BadInput("status", "is not an activity status")
	}
	if scheduledAt != nil && to != careplanactivity.StatusSCHEDULED {
		return nil, apperr.BadInput("scheduledAt", "goes only with status SCHEDULED")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.CarePlanActivity, error) {
		current, err := store.GetLocked(ctx, tx, tx.CarePlanActivity.Get, id, func(a *ent.CarePlanActivity) string { return a.PatientID }, "care plan activity not found")
		if err != nil {
			return nil, err
		}
		if _, err := lockOpenPlan(ctx, tx, current.CarePlanID); err != nil {
			return nil, err
		}
		if !allowed(activityTransitions, current.Status, to) {
			return nil, apperr.Conflictf("the activity is %s; it cannot become %s", current.Status, to)
		}
		if to == careplanactivity.StatusSCHEDULED && scheduledAt == nil && current.ScheduledAt == nil {
			return nil, apperr.BadInput("scheduledAt", "is required to schedule an activity that has no time yet")
		}
		u := tx.CarePlanActivity.UpdateOneID(id).Where(careplanactivity.StatusEQ(current.Status)).SetStatus(to)
		if scheduledAt != nil {
			u.SetScheduledAt(scheduledAt.UTC())
		}
		changed, err := u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the activity changed meanwhile; reload it")
		}
		return changed, err
	})
}

// lockedPlan reads a plan under its patient's lock.
func lockedPlan(ctx context.Context, tx *ent.Tx, id string) (*ent.CarePlan, error) {
	return store.GetLocked(ctx, tx, tx.CarePlan.Get, id, func(p *ent.CarePlan) string { return p.PatientID }, "care plan not found")
}

// lockOpenPlan returns the plan, read under its patient's lock, or
// CONFLICT if it is closed. Holding the lock while a goal or activity
// changes keeps a concurrent completion or cancellation from slipping in
// between the check and the write.
func lockOpenPlan(ctx context.Context, tx *ent.Tx, id string) (*ent.CarePlan, error) {
	plan, err := lockedPlan(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	for _, open := range openPlans {
		if plan.Status == open {
			return plan, nil
		}
	}
	return nil, apperr.Conflictf("the care plan is %s; a closed plan does not change", plan.Status)
}

func checkAssignee(ctx context.Context, tx *ent.Tx, field string, id *string) error {
	if id == nil {
		return nil
	}
	m, err := tx.Staff.Get(ctx, *id)
	if ent.IsNotFound(err) {
		return apperr.BadInput(field, "no such member of staff")
	} else if err != nil {
		return err
	}
	if !m.Active {
		return apperr.BadInput(field, "is no longer active")
	}
	return nil
}
