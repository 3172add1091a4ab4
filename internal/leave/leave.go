package leave

import (
	"context"
	"slices"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/leaveentitlement"
	"github.com/hmis-dev/hmis/ent/leaverequest"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/ent/providertimeoff"
	"github.com/hmis-dev/hmis/ent/rosterentry"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/staffing"
	"github.com/hmis-dev/hmis/internal/store"
)

// onLeave is what a provider's schedule says of approved leave: everyone
// who books sees the time is taken, but which kind of leave (sick,
// maternity, …) is for the person, their manager and HR.
const onLeave = "On leave"

// SickBackdateDays is how many days before today SICK leave may start.
const SickBackdateDays = 7

// MaxDays bounds one request: a calendar year.
const MaxDays = 366

// Service manages leave requests and balances.
type Service struct {
	store *store.Store
	loc   *time.Location
	// defaults are the yearly days per kind for staff without an
	// entitlement of their own (HMIS_LEAVE_DEFAULT_DAYS).
	defaults map[string]int
	// seesAll reports whether the viewer reads every member of staff's
	// leave (authz.AllWorkforceObject): HR.
	seesAll func(*auth.Viewer) bool
	now     func() time.Time
}

// NewService returns a Service. loc is the hospital's time zone, whose
// days leave is taken in.
func NewService(st *store.Store, loc *time.Location, defaults map[string]int, seesAll func(*auth.Viewer) bool) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, loc: loc, defaults: defaults, seesAll: seesAll, now: time.Now}
}

// providerKinds are the staff whose time off blocks appointment slots.
var providerKinds = []staff.Kind{staff.KindDOCTOR, staff.KindNURSE}

// MaxYear bounds the dates of leave, as of rosters: far beyond any plan,
// and short of dates a time-off row cannot hold (leave to the end of 9999
// ends at 10000-01-01, which no backend reads back).
const MaxYear = 2200

// open are the requests that hold their days.
var open = []leaverequest.Status{leaverequest.StatusREQUESTED, leaverequest.StatusAPPROVED}

// busy are the appointments still to happen, which leave leaves without a provider.
var busy = []appointment.Status{appointment.StatusBOOKED, appointment.StatusCHECKED_IN, appointment.StatusIN_PROGRESS}

// Request files a leave request for the viewer.
func (s *Service) Request(ctx context.Context, in RequestLeaveInput) (*ent.LeaveRequest, error) {
	start, end := input.Date(in.StartDate), input.Date(in.EndDate)
	today := input.Today(s.now(), s.loc)
	var c input.Checker
	days := int(end.Sub(start).Hours()/24) + 1
	switch {
	case leaverequest.LeaveTypeValidator(in.LeaveType) != nil:
		c.Fail(apperr.BadInput("input.leaveType", "is not a kind of leave"))
	case start.Year() > MaxYear:
		c.Fail(apperr.BadInput("input.startDate", "must be in the year %d or before", MaxYear))
	case end.Before(start):
		c.Fail(apperr.BadInput("input.endDate", "must not be before startDate"))
	case end.Year() != start.Year():
		c.Fail(apperr.BadInput("input.endDate", "is in another year than startDate: split it at the new year"))
	case days > MaxDays:
		c.Fail(apperr.BadInput("input.endDate", "one request covers at most %d days", MaxDays))
	case in.LeaveType == leaverequest.LeaveTypeSICK && start.Before(today.AddDate(0, 0, -SickBackdateDays)):
		c.Fail(apperr.BadInput("input.startDate", "sick leave starts at most %d days ago", SickBackdateDays))
	case in.LeaveType != leaverequest.LeaveTypeSICK && start.Before(today):
		c.Fail(apperr.BadInput("input.startDate", "is in the past"))
	}
	reason := c.OptionalText("input.reason", in.Reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.LeaveRequest, error) {
		me, err := staffing.Self(ctx, tx, "request leave")
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, "provider:"+me.ID); err != nil {
			return nil, err
		}
		sys := auth.SystemContext(ctx)
		clash, err := tx.LeaveRequest.Query().Where(leaverequest.StaffID(me.ID), leaverequest.StatusIn(open...),
			leaverequest.StartDateLTE(end), leaverequest.EndDateGTE(start)).First(sys)
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			return nil, err
		default:
			return nil, apperr.Conflictf("you already have %s %s leave from %s to %s", clash.Status, clash.LeaveType,
				day(clash.StartDate), day(clash.EndDate))
		}
		if hasBalance(in.LeaveType) {
			b, err := s.balance(sys, tx.Client(), me.ID, start.Year(), in.LeaveType)
			if err != nil {
				return nil, err
			}
			if left := *b.Entitled - b.Taken - b.Pending; days > left {
				return nil, apperr.Conflictf("%d days of %s leave asked for, %d left in %d (pending requests counted)",
					days, in.LeaveType, max(left, 0), start.Year())
			}
		}
		return tx.LeaveRequest.Create().SetStaffID(me.ID).SetLeaveType(in.LeaveType).SetStartDate(start).
			SetEndDate(end).SetDays(days).SetNillableReason(reason).Save(ctx)
	})
}

// Cancel withdraws the viewer's own request: while it is requested, or
// approved and not yet started, when the time off it laid goes too. The
// roster entries approval removed are not put back: the roster is
// re-planned.
func (s *Service) Cancel(ctx context.Context, id string) (*ent.LeaveRequest, error) {
	if err := input.ID("id", id, input.LeaveRequest); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.LeaveRequest, error) {
		me, err := staffing.Self(ctx, tx, "cancel leave")
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, "provider:"+me.ID); err != nil {
			return nil, err
		}
		r, err := tx.LeaveRequest.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("leave request not found")
		} else if err != nil {
			return nil, err
		}
		if r.StaffID != me.ID {
			return nil, apperr.Denied("only the member of staff who requested leave cancels it")
		}
		switch {
		case r.Status == leaverequest.StatusREQUESTED:
		case r.Status == leaverequest.StatusAPPROVED && r.StartDate.After(input.Today(s.now(), s.loc)):
			if _, err := tx.ProviderTimeOff.Delete().Where(providertimeoff.LeaveRequestID(r.ID)).Exec(ctx); err != nil {
				return nil, err
			}
		case r.Status == leaverequest.StatusAPPROVED:
			return nil, apperr.Conflictf("the leave has started: HR or your manager changes it now")
		default:
			return nil, apperr.Conflictf("the request is %s", r.Status)
		}
		return tx.LeaveRequest.UpdateOne(r).SetStatus(leaverequest.StatusCANCELLED).Save(ctx)
	})
}

// Approve approves a request; see the package documentation.
func (s *Service) Approve(ctx context.Context, id string, note *string) (*LeaveDecision, error) {
	var c input.Checker
	c.ID("id", id, input.LeaveRequest)
	note = c.OptionalText("note", note, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*LeaveDecision, error) {
		r, err := s.decidable(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		sys := auth.SystemContext(ctx)
		if hasBalance(r.LeaveType) {
			b, err := s.balance(sys, tx.Client(), r.StaffID, r.StartDate.Year(), r.LeaveType)
			if err != nil {
				return nil, err
			}
			if left := *b.Entitled - b.Taken; r.Days > left {
				return nil, apperr.Conflictf("%d days of %s leave asked for, %d left in %d", r.Days, r.LeaveType, max(left, 0), r.StartDate.Year())
			}
		}
		approved, err := s.decide(ctx, tx, r, leaverequest.StatusAPPROVED, note)
		if err != nil {
			return nil, err
		}
		out := &LeaveDecision{Leave: approved, RemovedRosterEntries: []*ent.RosterEntry{}, AppointmentsToRebook: []*ent.Appointment{}}
		from, to := s.instants(r)
		person, err := tx.Staff.Get(sys, r.StaffID)
		if err != nil {
			return nil, err
		}
		if slices.Contains(providerKinds, person.Kind) {
			if err := tx.ProviderTimeOff.Create().SetStaffID(r.StaffID).SetStartAt(from).SetEndAt(to).
				SetReason(onLeave).SetLeaveRequestID(r.ID).Exec(ctx); err != nil {
				return nil, err
			}
		}
		onRoster := []predicate.RosterEntry{rosterentry.StaffID(r.StaffID), rosterentry.DateGTE(r.StartDate), rosterentry.DateLTE(r.EndDate)}
		if out.RemovedRosterEntries, err = tx.RosterEntry.Query().Where(onRoster...).Order(ent.Asc(rosterentry.FieldStartAt)).All(sys); err != nil {
			return nil, err
		}
		if _, err := tx.RosterEntry.Delete().Where(onRoster...).Exec(sys); err != nil {
			return nil, err
		}
		booked := []predicate.Appointment{appointment.ProviderID(r.StaffID), appointment.StatusIn(busy...),
			appointment.StartAtLT(to), appointment.EndAtGT(from)}
		if out.AppointmentsToRebookCount, err = tx.Appointment.Query().Where(booked...).Count(sys); err != nil {
			return nil, err
		}
		// Patient data: the approver's own row scope decides which they see.
		if out.AppointmentsToRebook, err = tx.Appointment.Query().Where(booked...).Order(ent.Asc(appointment.FieldStartAt)).All(ctx); err != nil {
			return nil, err
		}
		return out, nil
	})
}

// Reject rejects a request, saying why.
func (s *Service) Reject(ctx context.Context, id, note string) (*ent.LeaveRequest, error) {
	var c input.Checker
	c.ID("id", id, input.LeaveRequest)
	note = c.Text("note", note, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.LeaveRequest, error) {
		r, err := s.decidable(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		return s.decide(ctx, tx, r, leaverequest.StatusREJECTED, &note)
	})
}

// decidable reads a request the viewer may decide, under the requester's
// lock, still REQUESTED.
func (s *Service) decidable(ctx context.Context, tx *ent.Tx, id string) (*ent.LeaveRequest, error) {
	v := auth.FromContext(ctx)
	sys := auth.SystemContext(ctx)
	// Read without row scope to find whose lock to take; whether the
	// viewer may see it is decided below, and answered as not found.
	r, err := tx.LeaveRequest.Get(sys, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("leave request not found")
	} else if err != nil {
		return nil, err
	}
	if err := s.store.Lock(ctx, tx, "provider:"+r.StaffID); err != nil {
		return nil, err
	}
	if r, err = tx.LeaveRequest.Get(sys, id); err != nil {
		return nil, err
	}
	requester, err := tx.Staff.Query().Where(staff.ID(r.StaffID)).WithDepartment().Only(sys)
	if err != nil {
		return nil, err
	}
	manager := requester.Edges.Department.ManagerID
	switch {
	case v == nil || v.StaffID == "" && !s.seesAll(v):
		return nil, apperr.NotFoundf("leave request not found")
	case v.StaffID != "" && v.StaffID == r.StaffID:
		return nil, apperr.Denied("nobody decides their own leave")
	case manager != nil && *manager != r.StaffID:
		if v.StaffID != *manager {
			if s.seesAll(v) || managesDepartmentOf(v.StaffID, requester) {
				return nil, apperr.Denied("the manager of the requester's department decides")
			}
			return nil, apperr.NotFoundf("leave request not found")
		}
	case !s.seesAll(v):
		if managesDepartmentOf(v.StaffID, requester) {
			return nil, apperr.Denied("HR decides the leave of a department's manager")
		}
		return nil, apperr.NotFoundf("leave request not found")
	}
	if r.Status != leaverequest.StatusREQUESTED {
		return nil, apperr.Conflictf("the request is %s", r.Status)
	}
	return r, nil
}

// managesDepartmentOf reports whether the viewer manages person's
// department; person was read with its department.
func managesDepartmentOf(viewerStaffID string, person *ent.Staff) bool {
	return viewerStaffID != "" && person.Edges.Department != nil && person.Edges.Department.ManagerID != nil &&
		*person.Edges.Department.ManagerID == viewerStaffID
}

func (s *Service) decide(ctx context.Context, tx *ent.Tx, r *ent.LeaveRequest, to leaverequest.Status, note *string) (*ent.LeaveRequest, error) {
	// Conditional on still being requested, so that of two deciders one
	// is told it lost.
	n, err := tx.LeaveRequest.Update().Where(leaverequest.ID(r.ID), leaverequest.StatusEQ(leaverequest.StatusREQUESTED)).
		SetStatus(to).SetDecidedByID(auth.FromContext(ctx).UserID).SetDecidedAt(input.Stored(s.now())).
		SetNillableDecisionNote(note).Save(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, apperr.Conflictf("the request has been decided meanwhile")
	}
	return tx.LeaveRequest.Get(auth.SystemContext(ctx), r.ID)
}

// instants are the local midnights the leave runs between.
func (s *Service) instants(r *ent.LeaveRequest) (time.Time, time.Time) {
	y, m, d := r.StartDate.Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, s.loc)
	y, m, d = r.EndDate.Date()
	to := time.Date(y, m, d+1, 0, 0, 0, 0, s.loc)
	return from.UTC(), to.UTC()
}

// SetEntitlement sets a member of staff's days of a kind of leave in a year.
func (s *Service) SetEntitlement(ctx context.Context, staffID string, year int, kind leaverequest.LeaveType, days int) (*LeaveBalance, error) {
	var c input.Checker
	c.ID("staffId", staffID, input.Staff)
	switch {
	case c.Err() != nil:
	case year < 2000 || year > 2200:
		c.Fail(apperr.BadInput("year", "must be from 2000 to 2200"))
	case leaverequest.LeaveTypeValidator(kind) != nil:
		c.Fail(apperr.BadInput("leaveType", "is not a kind of leave"))
	case !hasBalance(kind):
		c.Fail(apperr.BadInput("leaveType", "%s leave has no balance", kind))
	case days < 0 || days > MaxDays:
		c.Fail(apperr.BadInput("days", "must be from 0 to %d", MaxDays))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*LeaveBalance, error) {
		v := auth.FromContext(ctx)
		if !s.seesAll(v) {
			return nil, apperr.Denied("only HR sets leave entitlements")
		}
		if v.StaffID == staffID {
			return nil, apperr.BadInput("staffId", "is your own record: another HR officer sets it")
		}
		sys := auth.SystemContext(ctx)
		if err := s.store.Lock(ctx, tx, "provider:"+staffID); err != nil {
			return nil, err
		}
		if ok, err := tx.Staff.Query().Where(staff.ID(staffID)).Exist(sys); err != nil {
			return nil, err
		} else if !ok {
			return nil, apperr.BadInput("staffId", "names no member of staff")
		}
		k := leaveentitlement.LeaveType(kind)
		n, err := tx.LeaveEntitlement.Update().Where(leaveentitlement.StaffID(staffID), leaveentitlement.Year(year),
			leaveentitlement.LeaveTypeEQ(k)).SetDays(days).Save(sys)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if err := tx.LeaveEntitlement.Create().SetStaffID(staffID).SetYear(year).SetLeaveType(k).SetDays(days).Exec(sys); err != nil {
				return nil, err
			}
		}
		return s.balance(sys, tx.Client(), staffID, year, kind)
	})
}

// Balances are a member of staff's balances in year, for HR, the manager
// of their department, or themselves.
func (s *Service) Balances(ctx context.Context, staffID string, year int) ([]*LeaveBalance, error) {
	if err := input.ID("staffId", staffID, input.Staff); err != nil {
		return nil, err
	}
	if year < 2000 || year > 2200 {
		return nil, apperr.BadInput("year", "must be from 2000 to 2200")
	}
	v := auth.FromContext(ctx)
	sys := auth.SystemContext(ctx)
	if v == nil || (v.StaffID != staffID && !s.seesAll(v)) {
		person, err := s.store.Client.Staff.Query().Where(staff.ID(staffID)).WithDepartment().Only(sys)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("staff record not found")
		} else if err != nil {
			return nil, err
		}
		if v == nil || !managesDepartmentOf(v.StaffID, person) {
			return nil, apperr.Denied("HR, the manager of their department or they themselves read their leave balances")
		}
	}
	out := make([]*LeaveBalance, 0, len(leaveTypes))
	for _, k := range leaveTypes {
		b, err := s.balance(sys, s.store.Client, staffID, year, k)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Mine are the viewer's balances in year.
func (s *Service) Mine(ctx context.Context, year int) ([]*LeaveBalance, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return []*LeaveBalance{}, nil
	}
	return s.Balances(ctx, v.StaffID, year)
}

// balance computes one kind's balance. Leave is taken in the year it
// starts in, which is the year it ends in too.
func (s *Service) balance(ctx context.Context, c *ent.Client, staffID string, year int, kind leaverequest.LeaveType) (*LeaveBalance, error) {
	b := &LeaveBalance{LeaveType: kind, Year: year}
	first, last := time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(year, 12, 31, 0, 0, 0, 0, time.UTC)
	rs, err := c.LeaveRequest.Query().Where(leaverequest.StaffID(staffID), leaverequest.LeaveTypeEQ(kind),
		leaverequest.StatusIn(open...), leaverequest.StartDateGTE(first), leaverequest.StartDateLTE(last)).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range rs {
		if r.Status == leaverequest.StatusAPPROVED {
			b.Taken += r.Days
		} else {
			b.Pending += r.Days
		}
	}
	if !hasBalance(kind) {
		return b, nil
	}
	days := s.defaults[string(kind)]
	e, err := c.LeaveEntitlement.Query().Where(leaveentitlement.StaffID(staffID), leaveentitlement.Year(year),
		leaveentitlement.LeaveTypeEQ(leaveentitlement.LeaveType(kind))).Only(ctx)
	switch {
	case ent.IsNotFound(err):
	case err != nil:
		return nil, err
	default:
		days = e.Days
	}
	left := days - b.Taken - b.Pending
	b.Entitled, b.Remaining = &days, &left
	return b, nil
}

// List is leave requests for HR (everyone's) and managers (their
// departments'), narrowed by f; the caller pages it.
func (s *Service) List(ctx context.Context, f RequestFilter) (*ent.LeaveRequestQuery, error) {
	var c input.Checker
	c.OptionalID("departmentId", f.DepartmentID, input.Department)
	c.OptionalID("staffId", f.StaffID, input.Staff)
	if f.From != nil && f.To != nil && f.To.Before(*f.From) {
		c.Fail(apperr.BadInput("to", "must not be before from"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	q := s.store.Client.LeaveRequest.Query()
	v := auth.FromContext(ctx)
	if !s.seesAll(v) {
		managed, err := managedDepartments(ctx, s.store.Client, v)
		if err != nil {
			return nil, err
		}
		if len(managed) == 0 {
			return nil, apperr.Denied("HR and department managers list leave requests")
		}
		if f.DepartmentID != nil && !slices.Contains(managed, *f.DepartmentID) {
			return nil, apperr.Denied("you manage another department")
		}
		q.Where(leaverequest.HasStaffWith(staff.DepartmentIDIn(managed...)))
	}
	if f.Status != nil {
		q.Where(leaverequest.StatusEQ(*f.Status))
	}
	if f.DepartmentID != nil {
		q.Where(leaverequest.HasStaffWith(staff.DepartmentID(*f.DepartmentID)))
	}
	if f.StaffID != nil {
		q.Where(leaverequest.StaffID(*f.StaffID))
	}
	if f.From != nil {
		q.Where(leaverequest.EndDateGTE(input.Date(*f.From)))
	}
	if f.To != nil {
		q.Where(leaverequest.StartDateLTE(input.Date(*f.To)))
	}
	return q, nil
}

// NoteReads puts on the audit trail the requests of other people the viewer
// read: the reason given for sick or compassionate leave can be health or
// family information, read as staffing reads bank details.
func NoteReads(ctx context.Context, rs []*ent.LeaveRequest) {
	v := auth.FromContext(ctx)
	for _, r := range rs {
		if r.Reason != nil && (v == nil || r.StaffID != v.StaffID) {
			audit.NoteSensitive(ctx, "LeaveRequest.reason", ent.TypeLeaveRequest, r.ID)
		}
	}
}

// MyRequests are the viewer's own requests; the caller pages them.
func (s *Service) MyRequests(ctx context.Context, status *leaverequest.Status) *ent.LeaveRequestQuery {
	v := auth.FromContext(ctx)
	id := ""
	if v != nil {
		id = v.StaffID
	}
	q := s.store.Client.LeaveRequest.Query().Where(leaverequest.StaffID(id))
	if id == "" {
		q.Where(leaverequest.IDIn())
	}
	if status != nil {
		q.Where(leaverequest.StatusEQ(*status))
	}
	return q
}

// managedDepartments are the departments the viewer manages.
func managedDepartments(ctx context.Context, c *ent.Client, v *auth.Viewer) ([]string, error) {
	if v == nil || v.StaffID == "" {
		return nil, nil
	}
	return c.Department.Query().Where(department.ManagerID(v.StaffID)).IDs(auth.SystemContext(ctx))
}

func hasBalance(k leaverequest.LeaveType) bool { return k != leaverequest.LeaveTypeUNPAID }

// leaveTypes are the kinds of leave, in the order balances are listed.
var leaveTypes = []leaverequest.LeaveType{
	leaverequest.LeaveTypeANNUAL, leaverequest.LeaveTypeSICK, leaverequest.LeaveTypeUNPAID, leaverequest.LeaveTypeMATERNITY,
	leaverequest.LeaveTypePATERNITY, leaverequest.LeaveTypeCOMPASSIONATE, leaverequest.LeaveTypeSTUDY,
}

func day(t time.Time) string { return t.Format(time.DateOnly) }
