package careplans

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careplan"
	"github.com/hmis-dev/hmis/ent/careplanactivity"
	"github.com/hmis-dev/hmis/ent/careplangoal"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/patients"
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

// Service keeps care plans. It needs only the ent client, so the GraphQL
// layer can make one per request.
type Service struct {
	client *ent.Client
	now    func() time.Time
}

// NewService returns a Service on client.
func NewService(client *ent.Client) *Service { return &Service{client: client, now: time.Now} }

// Create writes a DRAFT plan authored by the viewer's staff record, with
// its goals and activities, in one transaction.
func (s *Service) Create(ctx context.Context, in CreateCarePlanInput) (*ent.CarePlan, error) {
	authorID, err := viewerStaff(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateCreate(&in); err != nil {
		return nil, err
	}
	var created *ent.CarePlan
	err = s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if err := checkPatient(ctx, tx, in.PatientID); err != nil {
			return err
		}
		if ok, err := tx.Staff.Query().Where(staff.ID(authorID), staff.Active(true)).Exist(ctx); err != nil {
			return err
		} else if !ok {
			return apperr.Denied("only an active member of staff can author a care plan")
		}
		for i, a := range in.Activities {
			if err := checkAssignee(ctx, tx, fmt.Sprintf("input.activities[%d].assigneeId", i), a.AssigneeID); err != nil {
				return err
			}
		}
		created, err = tx.CarePlan.Create().
			SetPatientID(in.PatientID).
			SetTitle(in.Title).
			SetNillableDescription(in.Description).
			SetNillablePeriodStart(in.PeriodStart).
			SetNillablePeriodEnd(in.PeriodEnd).
			SetAuthorID(authorID).
			Save(ctx)
		if err != nil {
			return err
		}
		goals := make([]*ent.CarePlanGoalCreate, len(in.Goals))
		for i, g := range in.Goals {
			goals[i] = newGoal(tx, created, g)
		}
		if err := tx.CarePlanGoal.CreateBulk(goals...).Exec(ctx); err != nil {
			return err
		}
		activities := make([]*ent.CarePlanActivityCreate, len(in.Activities))
		for i, a := range in.Activities {
			activities[i] = newActivity(tx, created, a)
		}
		return tx.CarePlanActivity.CreateBulk(activities...).Exec(ctx)
	})
	if err != nil {
		return nil, err
	}
	return created.Unwrap(), nil
}

func validateCreate(in *CreateCarePlanInput) error {
	if !globalid.Valid(in.PatientID, "pat") {
		return apperr.BadInput("input.patientId", "is not a patient ID")
	}
	in.Title = strings.TrimSpace(in.Title)
	if in.Title == "" || len(in.Title) > MaxTitle {
		return apperr.BadInput("input.title", "is required, at most %d characters", MaxTitle)
	}
	if in.Description != nil && len(*in.Description) > MaxDescription {
		return apperr.BadInput("input.description", "must be at most %d characters", MaxDescription)
	}
	if in.PeriodStart != nil && in.PeriodEnd != nil && in.PeriodEnd.Before(*in.PeriodStart) {
		return apperr.BadInput("input.periodEnd", "must not be before periodStart")
	}
	if len(in.Goals) > MaxItems {
		return apperr.BadInput("input.goals", "at most %d goals", MaxItems)
	}
	if len(in.Activities) > MaxItems {
		return apperr.BadInput("input.activities", "at most %d activities", MaxItems)
	}
	for i := range in.Goals {
		if err := validateGoal(fmt.Sprintf("input.goals[%d].", i), &in.Goals[i]); err != nil {
			return err
		}
	}
	for i := range in.Activities {
		if err := validateActivity(fmt.Sprintf("input.activities[%d].", i), &in.Activities[i]); err != nil {
			return err
		}
	}
	return nil
}

func validateGoal(prefix string, g *CarePlanGoalInput) error {
	g.Description = strings.TrimSpace(g.Description)
	if g.Description == "" || len(g.Description) > MaxItemText {
		return apperr.BadInput(prefix+"description", "is required, at most %d characters", MaxItemText)
	}
	return nil
}

func validateActivity(prefix string, a *CarePlanActivityInput) error {
	a.Description = strings.TrimSpace(a.Description)
	if a.Description == "" || len(a.Description) > MaxItemText {
		return apperr.BadInput(prefix+"description", "is required, at most %d characters", MaxItemText)
	}
	if a.AssigneeID != nil && !globalid.Valid(*a.AssigneeID, "stf") {
		return apperr.BadInput(prefix+"assigneeId", "is not a staff ID")
	}
	return nil
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
	if !globalid.Valid(id, "cpl") {
		return nil, apperr.BadInput("id", "is not a care plan ID")
	}
	var moved *ent.CarePlan
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		current, err := tx.CarePlan.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("care plan not found")
		} else if err != nil {
			return err
		}
		if !allowed(planTransitions, current.Status, to) {
			return apperr.Conflictf("the care plan is %s; it cannot become %s", current.Status, to)
		}
		moved, err = tx.CarePlan.UpdateOneID(id).Where(careplan.StatusEQ(current.Status)).SetStatus(to).Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the care plan changed meanwhile; reload it")
		} else if err != nil {
			return err
		}
		if to == careplan.StatusACTIVE {
			return nil
		}
		if err := tx.CarePlanGoal.Update().
			Where(careplangoal.CarePlanID(id), careplangoal.StatusIn(openGoals...)).
			SetStatus(careplangoal.StatusCANCELLED).Exec(ctx); err != nil {
			return err
		}
		return tx.CarePlanActivity.Update().
			Where(careplanactivity.CarePlanID(id), careplanactivity.StatusIn(openActivities...)).
			SetStatus(careplanactivity.StatusCANCELLED).Exec(ctx)
	})
	if err != nil {
		return nil, err
	}
	return moved.Unwrap(), nil
}

// AddGoal adds a goal to a plan that is not closed.
func (s *Service) AddGoal(ctx context.Context, planID string, in CarePlanGoalInput) (*ent.CarePlanGoal, error) {
	if !globalid.Valid(planID, "cpl") {
		return nil, apperr.BadInput("carePlanId", "is not a care plan ID")
	}
	if err := validateGoal("input.", &in); err != nil {
		return nil, err
	}
	var added *ent.CarePlanGoal
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		plan, err := lockOpenPlan(ctx, tx, planID)
		if err != nil {
			return err
		}
		added, err = newGoal(tx, plan, in).Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return added.Unwrap(), nil
}

// AddActivity adds an activity to a plan that is not closed.
func (s *Service) AddActivity(ctx context.Context, planID string, in CarePlanActivityInput) (*ent.CarePlanActivity, error) {
	if !globalid.Valid(planID, "cpl") {
		return nil, apperr.BadInput("carePlanId", "is not a care plan ID")
	}
	if err := validateActivity("input.", &in); err != nil {
		return nil, err
	}
	var added *ent.CarePlanActivity
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		plan, err := lockOpenPlan(ctx, tx, planID)
		if err != nil {
			return err
		}
		if err := checkAssignee(ctx, tx, "input.assigneeId", in.AssigneeID); err != nil {
			return err
		}
		added, err = newActivity(tx, plan, in).Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return added.Unwrap(), nil
}

// SetGoalStatus moves a goal along goalTransitions.
func (s *Service) SetGoalStatus(ctx context.Context, id string, to careplangoal.Status) (*ent.CarePlanGoal, error) {
	if !globalid.Valid(id, "cpg") {
		return nil, apperr.BadInput("id", "is not a care plan goal ID")
	}
	if careplangoal.StatusValidator(to) != nil {
		return nil, apperr.BadInput("status", "is not a goal status")
	}
	var changed *ent.CarePlanGoal
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		current, err := tx.CarePlanGoal.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("care plan goal not found")
		} else if err != nil {
			return err
		}
		if _, err := lockOpenPlan(ctx, tx, current.CarePlanID); err != nil {
			return err
		}
		if !allowed(goalTransitions, current.Status, to) {
			return apperr.Conflictf("the goal is %s; it cannot become %s", current.Status, to)
		}
		changed, err = tx.CarePlanGoal.UpdateOneID(id).Where(careplangoal.StatusEQ(current.Status)).SetStatus(to).Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the goal changed meanwhile; reload it")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return changed.Unwrap(), nil
}

// SetActivityStatus moves an activity along activityTransitions. Scheduling
// needs a time: scheduledAt, or the one the activity already has.
func (s *Service) SetActivityStatus(ctx context.Context, id string, to careplanactivity.Status, scheduledAt *time.Time) (*ent.CarePlanActivity, error) {
	if !globalid.Valid(id, "cpa") {
		return nil, apperr.BadInput("id", "is not a care plan activity ID")
	}
	if careplanactivity.StatusValidator(to) != nil {
		return nil, apperr.BadInput("status", "is not an activity status")
	}
	if scheduledAt != nil && to != careplanactivity.StatusSCHEDULED {
		return nil, apperr.BadInput("scheduledAt", "goes only with status SCHEDULED")
	}
	var changed *ent.CarePlanActivity
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		current, err := tx.CarePlanActivity.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("care plan activity not found")
		} else if err != nil {
			return err
		}
		if _, err := lockOpenPlan(ctx, tx, current.CarePlanID); err != nil {
			return err
		}
		if !allowed(activityTransitions, current.Status, to) {
			return apperr.Conflictf("the activity is %s; it cannot become %s", current.Status, to)
		}
		if to == careplanactivity.StatusSCHEDULED && scheduledAt == nil && current.ScheduledAt == nil {
			return apperr.BadInput("scheduledAt", "is required to schedule an activity that has no time yet")
		}
		u := tx.CarePlanActivity.UpdateOneID(id).Where(careplanactivity.StatusEQ(current.Status)).SetStatus(to)
		if scheduledAt != nil {
			u.SetScheduledAt(scheduledAt.UTC())
		}
		changed, err = u.Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the activity changed meanwhile; reload it")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return changed.Unwrap(), nil
}

// lockOpenPlan returns the plan, locked until the transaction ends, or
// CONFLICT if it is closed. Holding the lock while a goal or activity
// changes keeps a concurrent completion or cancellation from slipping in
// between the check and the write.
func lockOpenPlan(ctx context.Context, tx *ent.Tx, id string) (*ent.CarePlan, error) {
	plan, err := tx.CarePlan.Query().Where(careplan.ID(id), forUpdate).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("care plan not found")
	} else if err != nil {
		return nil, err
	}
	for _, open := range openPlans {
		if plan.Status == open {
			return plan, nil
		}
	}
	return nil, apperr.Conflictf("the care plan is %s; a closed plan does not change", plan.Status)
}

// forUpdate locks the selected rows on PostgreSQL. SQLite needs no row
// locks: its write transactions start immediate and run one at a time.
func forUpdate(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate()
	}
}

func checkPatient(ctx context.Context, tx *ent.Tx, id string) error {
	_, err := patients.Active(ctx, tx.Patient, "input.patientId", id)
	return err
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

func viewerStaff(ctx context.Context) (string, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return "", apperr.Denied("only a member of staff can author a care plan")
	}
	return v.StaffID, nil
}

func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context, tx *ent.Tx) error) error {
	tx, err := s.client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
