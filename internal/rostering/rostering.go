package rostering

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/leaverequest"
	"github.com/hmis-dev/hmis/ent/payrollrun"
	"github.com/hmis-dev/hmis/ent/rosterentry"
	"github.com/hmis-dev/hmis/ent/rosterrequirement"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/staffing"
	"github.com/hmis-dev/hmis/internal/store"
)

// AnyDepartmentObject is the policy's capability to keep and read the
// roster of every department (HR's); without it a viewer keeps only the
// roster of the department whose manager they are.
const AnyDepartmentObject = "Rows.Roster.all"

// Limits on one request.
const (
	MaxEntries   = 500
	MaxRangeDays = 62
	// Roster dates stay within years every backend stores as dates.
	MinYear, MaxYear = 2000, 2200
	MaxMinimum       = 1000
)

// Service keeps shifts and rosters.
type Service struct {
	store *store.Store
	// loc is the hospital's time zone, whose wall clock shifts run on.
	loc     *time.Location
	minRest time.Duration
	// anyDepartment tells whether the policy gives the viewer every
	// department's roster (AnyDepartmentObject).
	anyDepartment func(*auth.Viewer) bool
}

// NewService returns a Service. minRest is the least rest between two
// shifts of one person (HMIS_ROSTER_MIN_REST_HOURS).
func NewService(st *store.Store, loc *time.Location, minRest time.Duration, anyDepartment func(*auth.Viewer) bool) *Service {
	if loc == nil {
		loc = time.UTC
	}
	if anyDepartment == nil {
		anyDepartment = func(*auth.Viewer) bool { return false }
	}
	return &Service{store: st, loc: loc, minRest: minRest, anyDepartment: anyDepartment}
}

func conflict(field, format string, args ...any) error {
	return &apperr.Error{Code: apperr.Conflict, Field: field, Message: fmt.Sprintf(format, args...)}
}

// mayKeep reports whether the viewer rosters dep's staff: HR for every
// department, a manager for the department whose manager they are.
func (s *Service) mayKeep(ctx context.Context, c *ent.Client, dep *ent.Department) (bool, error) {
	if v := auth.FromContext(ctx); v != nil && s.anyDepartment(v) {
		return true, nil
	}
	me, err := staffing.Active(ctx, c)
	if err != nil || me == nil {
		return false, err
	}
	return dep.ManagerID != nil && *dep.ManagerID == me.ID, nil
}

// mayRead reports whether the viewer reads dep's roster: whoever keeps it,
// and the department's own staff, who work beside the people on it.
func (s *Service) mayRead(ctx context.Context, c *ent.Client, dep *ent.Department) (bool, error) {
	if ok, err := s.mayKeep(ctx, c, dep); ok || err != nil {
		return ok, err
	}
	me, err := staffing.Active(ctx, c)
	if err != nil || me == nil {
		return false, err
	}
	return me.DepartmentID == dep.ID, nil
}

// payrollClosed reports whether the month of day has an approved or paid
// payroll run, which a roster entry (its allowances) may no longer change.
func (s *Service) payrollClosed(ctx context.Context, tx *ent.Tx, day time.Time) (bool, error) {
	return tx.PayrollRun.Query().Where(payrollrun.Period(day.Format("2006-01")),
		payrollrun.StatusIn(payrollrun.StatusAPPROVED, payrollrun.StatusPAID)).Exist(auth.SystemContext(ctx))
}

func denyKeep() error {
	return apperr.Denied("only HR or the department's manager keeps its roster")
}

// SetDepartmentManager makes an active member of staff dep's manager.
func (s *Service) SetDepartmentManager(ctx context.Context, departmentID, staffID string) (*ent.Department, error) {
	var c input.Checker
	c.ID("departmentId", departmentID, input.Department)
	c.ID("staffId", staffID, input.Staff)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Department, error) {
		dep, err := tx.Department.Get(ctx, departmentID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("departmentId", "names no department")
		} else if err != nil {
			return nil, err
		}
		// Under the person's lock: deactivating them takes it too.
		if err := s.store.Lock(ctx, tx, "staff:"+staffID); err != nil {
			return nil, err
		}
		m, err := tx.Staff.Get(ctx, staffID)
		switch {
		case ent.IsNotFound(err):
			return nil, apperr.BadInput("staffId", "names no member of staff")
		case err != nil:
			return nil, err
		case !m.Active:
			return nil, apperr.BadInput("staffId", "is inactive")
		}
		return tx.Department.UpdateOne(dep).SetManagerID(m.ID).Save(ctx)
	})
}

// planned is one entry of assignShifts, checked.
type planned struct {
	field      func(string) string
	staffID    string
	shift      *ent.ShiftDefinition
	date       time.Time
	start, end time.Time
	note       *string
}

// Assign rosters a batch of entries in one department, all or none.
func (s *Service) Assign(ctx context.Context, in AssignShiftsInput) ([]*ent.RosterEntry, error) {
	var c input.Checker
	c.ID("input.departmentId", in.DepartmentID, input.Department)
	switch {
	case c.Err() != nil:
	case len(in.Entries) == 0:
		c.Fail(apperr.BadInput("input.entries", "must name at least one entry"))
	case len(in.Entries) > MaxEntries:
		c.Fail(apperr.BadInput("input.entries", "at most %d entries at once", MaxEntries))
	}
	plan := make([]*planned, len(in.Entries))
	for i, e := range in.Entries {
		if c.Err() != nil {
			break
		}
		i := i
		p := &planned{field: func(n string) string { return fmt.Sprintf("input.entries[%d].%s", i, n) },
			staffID: e.StaffID, date: input.Date(e.Date)}
		c.ID(p.field("staffId"), e.StaffID, input.Staff)
		c.ID(p.field("shiftId"), e.ShiftID, input.ShiftDefinition)
		if y := p.date.Year(); c.Err() == nil && (y < MinYear || y > MaxYear) {
			c.Fail(apperr.BadInput(p.field("date"), "must be in the years %d to %d", MinYear, MaxYear))
		}
		p.note = c.OptionalText(p.field("note"), e.Note, 200)
		plan[i] = p
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) ([]*ent.RosterEntry, error) {
		dep, err := tx.Department.Get(ctx, in.DepartmentID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.departmentId", "names no department")
		} else if err != nil {
			return nil, err
		}
		if ok, err := s.mayKeep(ctx, tx.Client(), dep); err != nil {
			return nil, err
		} else if !ok {
			return nil, denyKeep()
		}
		// Bookings, leave and other rosters of these people wait, so the
		// checks below hold until the entries are written.
		if err := s.store.Lock(ctx, tx, providerKeys(plan)...); err != nil {
			return nil, err
		}
		people, shifts, err := s.load(ctx, tx, in.Entries)
		if err != nil {
			return nil, err
		}
		hr := s.anyDepartment(auth.FromContext(ctx))
		today := input.Date(time.Now().In(s.loc))
		for i, p := range plan {
			m, ok := people[p.staffID]
			switch {
			case !ok:
				return nil, apperr.BadInput(p.field("staffId"), "names no member of staff")
			case !m.Active:
				return nil, apperr.BadInput(p.field("staffId"), "is inactive")
			// A manager plans their own people's time ahead; lending
			// someone from another department, or writing the past (which
			// pays night and on-call allowances), is HR's.
			case !hr && m.DepartmentID != dep.ID:
				return nil, apperr.Denied("%s: a manager rosters their own department's staff; HR rosters others", p.field("staffId"))
			case !hr && p.date.Before(today):
				return nil, apperr.Denied("%s: a manager rosters from today on; HR records past shifts", p.field("date"))
			}
			if paid, err := s.payrollClosed(ctx, tx, p.date); err != nil {
				return nil, err
			} else if paid {
				return nil, conflict(p.field("date"), "the payroll of %s is approved; corrections go into the next period", p.date.Format("2006-01"))
			}
			sh, ok := shifts[in.Entries[i].ShiftID]
			switch {
			case !ok:
				return nil, apperr.BadInput(p.field("shiftId"), "names no shift")
			case !sh.Active:
				return nil, apperr.BadInput(p.field("shiftId"), "is inactive")
			}
			p.shift = sh
			p.start, p.end = ShiftTimes(s.loc, p.date, sh.StartMinute, sh.EndMinute)
			if err := s.checkAgainstBatch(plan[:i], p); err != nil {
				return nil, err
			}
			if err := s.checkAgainstRoster(ctx, tx, p, m); err != nil {
				return nil, err
			}
			if err := s.checkLeave(ctx, tx, p, m); err != nil {
				return nil, err
			}
		}
		v := auth.FromContext(ctx)
		builders := make([]*ent.RosterEntryCreate, len(plan))
		for i, p := range plan {
			builders[i] = tx.RosterEntry.Create().SetStaffID(p.staffID).SetDepartmentID(dep.ID).SetShiftID(p.shift.ID).
				SetDate(p.date).SetStartAt(p.start).SetEndAt(p.end).SetNillableNote(p.note).SetAssignedByID(v.UserID)
		}
		out, err := tx.RosterEntry.CreateBulk(builders...).Save(ctx)
		if ent.IsConstraintError(err) {
			// The checks above hold the person still; this is a race they
			// did not foresee, reported as the conflict it is.
			return nil, apperr.Conflictf("an entry is already on the roster")
		}
		if err != nil {
			return nil, err
		}
		for i, e := range out {
			e.Edges.Shift = plan[i].shift
			e.Edges.Staff = people[plan[i].staffID]
			e.Edges.Department = dep
			if err := events.Record(ctx, tx, Topic, Rostered, Change{EntryID: e.ID, StaffID: e.StaffID, DepartmentID: dep.ID}); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
}

func providerKeys(plan []*planned) []string {
	seen := map[string]bool{}
	var keys []string
	for _, p := range plan {
		if !seen[p.staffID] {
			seen[p.staffID] = true
			keys = append(keys, "provider:"+p.staffID)
		}
	}
	sort.Strings(keys)
	return keys
}

func (s *Service) load(ctx context.Context, tx *ent.Tx, entries []*RosterEntryInput) (map[string]*ent.Staff, map[string]*ent.ShiftDefinition, error) {
	var staffIDs, shiftIDs []string
	for _, e := range entries {
		staffIDs = append(staffIDs, e.StaffID)
		shiftIDs = append(shiftIDs, e.ShiftID)
	}
	people, err := tx.Staff.Query().Where(staff.IDIn(staffIDs...)).All(ctx)
	if err != nil {
		return nil, nil, err
	}
	shifts, err := tx.ShiftDefinition.Query().Where(shiftdefinition.IDIn(shiftIDs...)).All(ctx)
	if err != nil {
		return nil, nil, err
	}
	byStaff := map[string]*ent.Staff{}
	for _, m := range people {
		byStaff[m.ID] = m
	}
	byShift := map[string]*ent.ShiftDefinition{}
	for _, sh := range shifts {
		byShift[sh.ID] = sh
	}
	return byStaff, byShift, nil
}

// restBetween is the time from the end of the earlier of two stretches to
// the start of the later, negative when they overlap.
func restBetween(aStart, aEnd, bStart, bEnd time.Time) time.Duration {
	if aStart.After(bStart) {
		aStart, aEnd, bStart, bEnd = bStart, bEnd, aStart, aEnd
	}
	return bStart.Sub(aEnd)
}

func (s *Service) checkAgainstBatch(earlier []*planned, p *planned) error {
	for j, q := range earlier {
		if q.staffID != p.staffID {
			continue
		}
		switch rest := restBetween(q.start, q.end, p.start, p.end); {
		case rest < 0:
			return apperr.BadInput(p.field("date"), "overlaps input.entries[%d] of the same person", j)
		case rest < s.minRest:
			return apperr.BadInput(p.field("date"), "leaves %s of rest next to input.entries[%d]; the least is %s",
				hours(rest), j, hours(s.minRest))
		}
	}
	return nil
}

func (s *Service) checkAgainstRoster(ctx context.Context, tx *ent.Tx, p *planned, m *ent.Staff) error {
	near, err := tx.RosterEntry.Query().Where(
		rosterentry.StaffID(p.staffID),
		rosterentry.StartAtLT(p.end.Add(s.minRest)),
		rosterentry.EndAtGT(p.start.Add(-s.minRest)),
	).Order(ent.Asc(rosterentry.FieldStartAt)).WithShift().All(ctx)
	if err != nil {
		return err
	}
	for _, x := range near {
		rest := restBetween(x.StartAt, x.EndAt, p.start, p.end)
		name := m.GivenName + " " + m.FamilyName
		if rest < 0 {
			return conflict(p.field("date"), "%s is already rostered from %s to %s (%s)", name,
				s.local(x.StartAt), s.local(x.EndAt), x.Edges.Shift.Code)
		}
		if rest < s.minRest {
			return conflict(p.field("date"), "%s would rest only %s next to their shift from %s to %s (%s); the least is %s",
				name, hours(rest), s.local(x.StartAt), s.local(x.EndAt), x.Edges.Shift.Code, hours(s.minRest))
		}
	}
	return nil
}

func (s *Service) checkLeave(ctx context.Context, tx *ent.Tx, p *planned, m *ent.Staff) error {
	last := input.Date(p.end.Add(-time.Nanosecond).In(s.loc))
	leave, err := tx.LeaveRequest.Query().Where(
		leaverequest.StaffID(p.staffID),
		leaverequest.StatusEQ(leaverequest.StatusAPPROVED),
		leaverequest.StartDateLTE(last),
		leaverequest.EndDateGTE(p.date),
	).First(ctx)
	if ent.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	return conflict(p.field("date"), "%s %s is on approved leave from %s to %s", m.GivenName, m.FamilyName,
		leave.StartDate.UTC().Format(time.DateOnly), leave.EndDate.UTC().Format(time.DateOnly))
}

func hours(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	// "0h01m" rather than "0.016666666666666666h".
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// local formats t in the hospital's time zone, as the roster reads.
func (s *Service) local(t time.Time) string { return t.In(s.loc).Format("2006-01-02 15:04") }

// RemoveEntry takes an entry off the roster. It is refused while
// appointments are booked in its time, so that no patient is left booked
// with nobody: they are moved or cancelled first.
func (s *Service) RemoveEntry(ctx context.Context, id string) (*ent.RosterEntry, error) {
	if err := input.ID("id", id, input.RosterEntry); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.RosterEntry, error) {
		e, err := tx.RosterEntry.Query().Where(rosterentry.ID(id)).WithDepartment().Only(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("roster entry not found")
		} else if err != nil {
			return nil, err
		}
		if ok, err := s.mayKeep(ctx, tx.Client(), e.Edges.Department); err != nil {
			return nil, err
		} else if !ok {
			return nil, denyKeep()
		}
		if err := s.store.Lock(ctx, tx, "provider:"+e.StaffID); err != nil {
			return nil, err
		}
		// Only times are counted, so whose the appointments are is not read.
		n, err := tx.Appointment.Query().Where(
			appointment.ProviderID(e.StaffID),
			appointment.StatusIn(appointment.StatusBOOKED, appointment.StatusCHECKED_IN, appointment.StatusIN_PROGRESS),
			appointment.StartAtLT(e.EndAt),
			appointment.EndAtGT(e.StartAt),
		).Count(auth.SystemContext(ctx))
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, apperr.Conflictf("%d appointment(s) are booked in this shift; reschedule or cancel them first", n)
		}
		deleted, err := tx.RosterEntry.Delete().Where(rosterentry.ID(id)).Exec(ctx)
		if err == nil && deleted == 0 {
			return nil, apperr.NotFoundf("roster entry not found")
		}
		if err != nil {
			return nil, err
		}
		return e, events.Record(ctx, tx, Topic, Removed, Change{EntryID: e.ID, StaffID: e.StaffID, DepartmentID: e.DepartmentID})
	})
}

// SetRequirement sets how many people dep needs on a shift; 0 keeps the
// shift on the coverage with nobody required.
func (s *Service) SetRequirement(ctx context.Context, departmentID, shiftID string, minimum int) (*ent.RosterRequirement, error) {
	var c input.Checker
	c.ID("departmentId", departmentID, input.Department)
	c.ID("shiftId", shiftID, input.ShiftDefinition)
	if c.Err() == nil && (minimum < 0 || minimum > MaxMinimum) {
		c.Fail(apperr.BadInput("minimumStaff", "must be 0 to %d", MaxMinimum))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.RosterRequirement, error) {
		dep, err := tx.Department.Get(ctx, departmentID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("departmentId", "names no department")
		} else if err != nil {
			return nil, err
		}
		if ok, err := s.mayKeep(ctx, tx.Client(), dep); err != nil {
			return nil, err
		} else if !ok {
			return nil, denyKeep()
		}
		if exists, err := tx.ShiftDefinition.Query().Where(shiftdefinition.ID(shiftID)).Exist(ctx); err != nil {
			return nil, err
		} else if !exists {
			return nil, apperr.BadInput("shiftId", "names no shift")
		}
		if err := s.store.Lock(ctx, tx, "roster-requirement:"+departmentID+":"+shiftID); err != nil {
			return nil, err
		}
		r, err := tx.RosterRequirement.Query().Where(rosterrequirement.DepartmentID(departmentID), rosterrequirement.ShiftID(shiftID)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			return tx.RosterRequirement.Create().SetDepartmentID(departmentID).SetShiftID(shiftID).SetMinimumStaff(minimum).Save(ctx)
		case err != nil:
			return nil, err
		}
		return tx.RosterRequirement.UpdateOne(r).SetMinimumStaff(minimum).Save(ctx)
	})
}

// dayRange checks a from–to range of local days, both included.
func dayRange(from, to time.Time) (time.Time, time.Time, error) {
	from, to = input.Date(from), input.Date(to)
	switch {
	case to.Before(from):
		return from, to, apperr.BadInput("to", "must not be before from")
	case to.Sub(from) >= MaxRangeDays*24*time.Hour:
		return from, to, apperr.BadInput("to", "a range spans at most %d days", MaxRangeDays)
	}
	return from, to, nil
}

// EntryQuery is what rosterEntries asks for.
type EntryQuery struct {
	DepartmentID *string
	StaffID      *string
	From, To     time.Time
	// Filter is the client's where filter, applied on top.
	Filter func(*ent.RosterEntryQuery) (*ent.RosterEntryQuery, error)
}

// Entries lists the roster of one department or one member of staff,
// earliest first, if the viewer may read it.
func (s *Service) Entries(ctx context.Context, q EntryQuery) ([]*ent.RosterEntry, error) {
	if (q.DepartmentID == nil) == (q.StaffID == nil) {
		return nil, apperr.BadInput("departmentId", "give either departmentId or staffId")
	}
	from, to, err := dayRange(q.From, q.To)
	if err != nil {
		return nil, err
	}
	c := s.store.Client
	query := c.RosterEntry.Query().Where(rosterentry.DateGTE(from), rosterentry.DateLTE(to))
	if q.DepartmentID != nil {
		if err := input.ID("departmentId", *q.DepartmentID, input.Department); err != nil {
			return nil, err
		}
		dep, err := c.Department.Get(ctx, *q.DepartmentID)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("department not found")
		} else if err != nil {
			return nil, err
		}
		if ok, err := s.mayRead(ctx, c, dep); err != nil {
			return nil, err
		} else if !ok {
			return nil, apperr.Denied("only HR, the department's manager and its staff read its roster")
		}
		query.Where(rosterentry.DepartmentID(dep.ID))
	} else {
		if err := input.ID("staffId", *q.StaffID, input.Staff); err != nil {
			return nil, err
		}
		ok, err := s.mayReadPerson(ctx, c, *q.StaffID)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, apperr.Denied("only the person, HR and their department's manager read a person's roster")
		}
		query.Where(rosterentry.StaffID(*q.StaffID))
	}
	return s.list(ctx, query, q.Filter)
}

// mayReadPerson reports whether the viewer reads staffID's roster in every
// department: they themselves, HR, and the manager of their department.
func (s *Service) mayReadPerson(ctx context.Context, c *ent.Client, staffID string) (bool, error) {
	if v := auth.FromContext(ctx); v != nil && (v.StaffID == staffID || s.anyDepartment(v)) {
		return true, nil
	}
	m, err := c.Staff.Query().Where(staff.ID(staffID)).WithDepartment().Only(ctx)
	if ent.IsNotFound(err) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if m.Edges.Department == nil {
		return false, nil
	}
	return s.mayKeep(ctx, c, m.Edges.Department)
}

func (s *Service) list(ctx context.Context, q *ent.RosterEntryQuery, filter func(*ent.RosterEntryQuery) (*ent.RosterEntryQuery, error)) ([]*ent.RosterEntry, error) {
	if filter != nil {
		var err error
		if q, err = filter(q); err != nil {
			return nil, err
		}
	}
	return q.Order(ent.Asc(rosterentry.FieldStartAt), ent.Asc(rosterentry.FieldID)).All(ctx)
}

// Mine is the viewer's own roster from one local day to another.
func (s *Service) Mine(ctx context.Context, from, to time.Time) ([]*ent.RosterEntry, error) {
	from, to, err := dayRange(from, to)
	if err != nil {
		return nil, err
	}
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return []*ent.RosterEntry{}, nil
	}
	return s.list(ctx, s.store.Client.RosterEntry.Query().Where(
		rosterentry.StaffID(v.StaffID), rosterentry.DateGTE(from), rosterentry.DateLTE(to)), nil)
}

// Coverage sets dep's roster from one local day to another against its
// requirements: one row per day and shift that has a requirement or an
// entry, by day and then shift start.
func (s *Service) Coverage(ctx context.Context, departmentID string, from, to time.Time) ([]*RosterCoverage, error) {
	if err := input.ID("departmentId", departmentID, input.Department); err != nil {
		return nil, err
	}
	from, to, err := dayRange(from, to)
	if err != nil {
		return nil, err
	}
	c := s.store.Client
	dep, err := c.Department.Get(ctx, departmentID)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("department not found")
	} else if err != nil {
		return nil, err
	}
	if ok, err := s.mayKeep(ctx, c, dep); err != nil {
		return nil, err
	} else if !ok {
		return nil, denyKeep()
	}
	reqs, err := c.RosterRequirement.Query().Where(rosterrequirement.DepartmentID(dep.ID)).WithShift().All(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := c.RosterEntry.Query().Where(rosterentry.DepartmentID(dep.ID), rosterentry.DateGTE(from),
		rosterentry.DateLTE(to)).WithShift().WithStaff().All(ctx)
	if err != nil {
		return nil, err
	}
	type key struct {
		day   string
		shift string
	}
	rows := map[key]*RosterCoverage{}
	var order []*RosterCoverage
	row := func(day time.Time, sh *ent.ShiftDefinition) *RosterCoverage {
		k := key{day.Format(time.DateOnly), sh.ID}
		r, ok := rows[k]
		if !ok {
			r = &RosterCoverage{Date: day, Shift: sh, Staff: []*ent.Staff{}}
			rows[k] = r
			order = append(order, r)
		}
		return r
	}
	for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
		for _, rq := range reqs {
			// A retired shift is still reported where people are on it.
			if rq.Edges.Shift.Active {
				row(day, rq.Edges.Shift).MinimumStaff = rq.MinimumStaff
			}
		}
	}
	minimum := map[string]int{}
	for _, rq := range reqs {
		minimum[rq.ShiftID] = rq.MinimumStaff
	}
	for _, e := range entries {
		r := row(input.Date(e.Date.UTC()), e.Edges.Shift)
		r.MinimumStaff = minimum[e.ShiftID]
		r.Planned++
		r.Staff = append(r.Staff, e.Edges.Staff)
	}
	for _, r := range order {
		if r.Shortfall = r.MinimumStaff - r.Planned; r.Shortfall < 0 {
			r.Shortfall = 0
		}
		sort.Slice(r.Staff, func(i, j int) bool {
			a, b := r.Staff[i], r.Staff[j]
			if a.FamilyName != b.FamilyName {
				return a.FamilyName < b.FamilyName
			}
			return a.ID < b.ID
		})
	}
	sort.SliceStable(order, func(i, j int) bool {
		a, b := order[i], order[j]
		if !a.Date.Equal(b.Date) {
			return a.Date.Before(b.Date)
		}
		if a.Shift.StartMinute != b.Shift.StartMinute {
			return a.Shift.StartMinute < b.Shift.StartMinute
		}
		return a.Shift.Code < b.Shift.Code
	})
	return order, nil
}
