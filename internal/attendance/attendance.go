package attendance

import (
	"context"
	"slices"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/attendancerecord"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/rosterentry"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/staffing"
	"github.com/hmis-dev/hmis/internal/store"
)

// MaxStretch is the longest record HR may enter: a longer stay is two.
const MaxStretch = 24 * time.Hour

// MaxRangeDays bounds a listing's from–to.
const MaxRangeDays = 366

// Service records attendance.
type Service struct {
	store         *store.Store
	loc           *time.Location
	window, grace time.Duration
	// seesAll reports whether the viewer reads and records everyone's
	// attendance (authz.AllWorkforceObject): HR.
	seesAll func(*auth.Viewer) bool
	now     func() time.Time
}

// NewService returns a Service; window and grace are in minutes
// (HMIS_ATTENDANCE_MATCH_WINDOW_MINUTES, HMIS_ATTENDANCE_GRACE_MINUTES).
func NewService(st *store.Store, loc *time.Location, windowMinutes, graceMinutes int, seesAll func(*auth.Viewer) bool) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, loc: loc, window: time.Duration(windowMinutes) * time.Minute,
		grace: time.Duration(graceMinutes) * time.Minute, seesAll: seesAll, now: time.Now}
}

// ClockIn opens a record for the viewer now, against their roster entry.
func (s *Service) ClockIn(ctx context.Context, note *string) (*ent.AttendanceRecord, error) {
	note, err := input.OptionalText("note", note, 500)
	if err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.AttendanceRecord, error) {
		me, err := staffing.Self(ctx, tx, "clock in")
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, "provider:"+me.ID); err != nil {
			return nil, err
		}
		sys := auth.SystemContext(ctx)
		now := input.Stored(s.now())
		if open, err := tx.AttendanceRecord.Query().Where(attendancerecord.StaffID(me.ID), attendancerecord.ClockOutAtIsNil()).
			First(sys); err == nil {
			return nil, apperr.Conflictf("you are clocked in since %s: clock out first", open.ClockInAt.Format(time.RFC3339))
		} else if !ent.IsNotFound(err) {
			return nil, err
		}
		if err := s.refuseOverlap(sys, tx, me.ID, "", now, nil); err != nil {
			return nil, err
		}
		entry, err := s.match(sys, tx, me.ID, "", now)
		if err != nil {
			return nil, err
		}
		m := Measure(now, nil, shiftOf(entry), s.grace)
		create := tx.AttendanceRecord.Create().SetStaffID(me.ID).SetClockInAt(now).
			SetClockInSource(attendancerecord.ClockInSourceSELF).SetNillableReason(note).SetLateMinutes(m.Late)
		if entry != nil {
			create.SetRosterEntryID(entry.ID)
		}
		return published(ctx, tx, ClockedIn)(create.Save(ctx))
	})
}

// ClockOut closes the viewer's open record now.
func (s *Service) ClockOut(ctx context.Context, note *string) (*ent.AttendanceRecord, error) {
	note, err := input.OptionalText("note", note, 500)
	if err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.AttendanceRecord, error) {
		me, err := staffing.Self(ctx, tx, "clock out")
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, "provider:"+me.ID); err != nil {
			return nil, err
		}
		sys := auth.SystemContext(ctx)
		rec, err := tx.AttendanceRecord.Query().Where(attendancerecord.StaffID(me.ID), attendancerecord.ClockOutAtIsNil()).
			WithRosterEntry(func(q *ent.RosterEntryQuery) { q.WithShift() }).Only(sys)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("you are not clocked in")
		} else if err != nil {
			return nil, err
		}
		now := input.Stored(s.now())
		if !now.After(rec.ClockInAt) {
			return nil, apperr.Conflictf("you clocked in at %s, which is not yet past", rec.ClockInAt.Format(time.RFC3339))
		}
		if note != nil && rec.Reason != nil {
			joined := *rec.Reason + "; " + *note
			if len([]rune(joined)) <= 500 {
				note = &joined
			}
		}
		m := Measure(rec.ClockInAt, &now, shiftOf(rec.Edges.RosterEntry), s.grace)
		u := tx.AttendanceRecord.UpdateOne(rec).SetClockOutAt(now).SetClockOutSource(attendancerecord.ClockOutSourceSELF)
		if note != nil {
			u.SetReason(*note)
		}
		return published(ctx, tx, ClockedOut)(setMeasures(u, m).Save(ctx))
	})
}

// Record enters a stretch at work for a member of staff, as HR.
func (s *Service) Record(ctx context.Context, in RecordAttendanceInput) (*ent.AttendanceRecord, error) {
	var c input.Checker
	c.ID("input.staffId", in.StaffID, input.Staff)
	reason := c.Text("input.reason", in.Reason, 500)
	clockIn := input.Stored(in.ClockInAt)
	var clockOut *time.Time
	if in.ClockOutAt != nil {
		t := input.Stored(*in.ClockOutAt)
		clockOut = &t
	}
	if c.Err() == nil {
		c.Fail(s.checkTimes(clockIn, clockOut))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.AttendanceRecord, error) {
		v, err := s.recorder(ctx, in.StaffID, "input.staffId")
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, "provider:"+in.StaffID); err != nil {
			return nil, err
		}
		sys := auth.SystemContext(ctx)
		if ok, err := tx.Staff.Query().Where(staff.ID(in.StaffID)).Exist(sys); err != nil {
			return nil, err
		} else if !ok {
			return nil, apperr.BadInput("input.staffId", "names no member of staff")
		}
		if err := s.refuseOverlap(sys, tx, in.StaffID, "", clockIn, clockOut); err != nil {
			return nil, err
		}
		entry, err := s.match(sys, tx, in.StaffID, "", clockIn)
		if err != nil {
			return nil, err
		}
		create := tx.AttendanceRecord.Create().SetStaffID(in.StaffID).SetClockInAt(clockIn).
			SetClockInSource(attendancerecord.ClockInSourceRECORDED).SetRecordedByID(v.UserID).SetReason(reason)
		if clockOut != nil {
			create.SetClockOutAt(*clockOut).SetClockOutSource(attendancerecord.ClockOutSourceRECORDED)
		}
		if entry != nil {
			create.SetRosterEntryID(entry.ID)
		}
		m := Measure(clockIn, clockOut, shiftOf(entry), s.grace)
		return published(ctx, tx, Recorded)(create.SetWorkedMinutes(m.Worked).SetLateMinutes(m.Late).
			SetEarlyLeaveMinutes(m.EarlyLeave).SetOvertimeMinutes(m.Overtime).Save(ctx))
	})
}

// Correct changes a record's times, or closes an open one, as HR.
func (s *Service) Correct(ctx context.Context, id string, in CorrectAttendanceInput) (*ent.AttendanceRecord, error) {
	var c input.Checker
	c.ID("id", id, input.AttendanceRecord)
	reason := c.Text("input.reason", in.Reason, 500)
	if c.Err() == nil && in.ClockInAt == nil && in.ClockOutAt == nil {
		c.Fail(apperr.BadInput("input.clockInAt", "give clockInAt, clockOutAt or both"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.AttendanceRecord, error) {
		sys := auth.SystemContext(ctx)
		rec, err := tx.AttendanceRecord.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("attendance record not found")
		} else if err != nil {
			return nil, err
		}
		v, err := s.recorder(ctx, rec.StaffID, "id")
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, "provider:"+rec.StaffID); err != nil {
			return nil, err
		}
		// Read again under the lock: a clock-out may have closed it.
		if rec, err = tx.AttendanceRecord.Get(sys, id); err != nil {
			return nil, err
		}
		clockIn, clockOut := rec.ClockInAt, rec.ClockOutAt
		if in.ClockInAt != nil {
			clockIn = input.Stored(*in.ClockInAt)
		}
		if in.ClockOutAt != nil {
			t := input.Stored(*in.ClockOutAt)
			clockOut = &t
		}
		if err := s.checkTimes(clockIn, clockOut); err != nil {
			return nil, err
		}
		if err := s.refuseOverlap(sys, tx, rec.StaffID, rec.ID, clockIn, clockOut); err != nil {
			return nil, err
		}
		var entry *ent.RosterEntry
		if in.ClockInAt != nil {
			if entry, err = s.match(sys, tx, rec.StaffID, rec.ID, clockIn); err != nil {
				return nil, err
			}
		} else if rec.RosterEntryID != nil {
			entry, err = tx.RosterEntry.Query().Where(rosterentry.ID(*rec.RosterEntryID)).WithShift().Only(sys)
			if ent.IsNotFound(err) {
				entry, err = nil, nil
			} else if err != nil {
				return nil, err
			}
		}
		u := tx.AttendanceRecord.UpdateOne(rec).SetRecordedByID(v.UserID).SetReason(reason)
		if in.ClockInAt != nil {
			u.SetClockInAt(clockIn).SetClockInSource(attendancerecord.ClockInSourceRECORDED)
		}
		if in.ClockOutAt != nil {
			u.SetClockOutAt(*clockOut).SetClockOutSource(attendancerecord.ClockOutSourceRECORDED)
		}
		if entry != nil {
			u.SetRosterEntryID(entry.ID)
		} else {
			u.ClearRosterEntryID()
		}
		return published(ctx, tx, Corrected)(setMeasures(u, Measure(clockIn, clockOut, shiftOf(entry), s.grace)).Save(ctx))
	})
}

// recorder is the viewer if they may record attendance for staffID: HR,
// and not their own.
func (s *Service) recorder(ctx context.Context, staffID, field string) (*auth.Viewer, error) {
	v := auth.FromContext(ctx)
	if v == nil || !s.seesAll(v) {
		return nil, apperr.Denied("only HR records attendance")
	}
	if v.StaffID != "" && v.StaffID == staffID {
		return nil, apperr.BadInput(field, "is your own attendance: another HR officer records it")
	}
	return v, nil
}

// MaxYearsBack bounds how far back HR records attendance: pay records are
// kept for years, not for centuries.
const MaxYearsBack = 10

func (s *Service) checkTimes(in time.Time, out *time.Time) error {
	now := s.now()
	switch {
	case in.After(now):
		return apperr.BadInput("input.clockInAt", "is in the future")
	case in.Before(now.AddDate(-MaxYearsBack, 0, 0)):
		return apperr.BadInput("input.clockInAt", "is more than %d years ago", MaxYearsBack)
	case out == nil:
	case out.After(now):
		return apperr.BadInput("input.clockOutAt", "is in the future")
	case !out.After(in):
		return apperr.BadInput("input.clockOutAt", "must be after clockInAt")
	case out.Sub(in) > MaxStretch:
		return apperr.BadInput("input.clockOutAt", "one record lasts at most %d hours", int(MaxStretch.Hours()))
	}
	return nil
}

// refuseOverlap refuses [in, out) (out nil: still open) if it overlaps
// another record of the person (an open one runs on for ever).
func (s *Service) refuseOverlap(ctx context.Context, tx *ent.Tx, staffID, self string, in time.Time, out *time.Time) error {
	q := tx.AttendanceRecord.Query().Where(attendancerecord.StaffID(staffID),
		attendancerecord.Or(attendancerecord.ClockOutAtIsNil(), attendancerecord.ClockOutAtGT(in)))
	if out != nil {
		q.Where(attendancerecord.ClockInAtLT(*out))
	}
	if self != "" {
		q.Where(attendancerecord.IDNEQ(self))
	}
	clash, err := q.First(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case clash.ClockOutAt == nil:
		return apperr.Conflictf("overlaps the open record from %s", clash.ClockInAt.Format(time.RFC3339))
	default:
		return apperr.Conflictf("overlaps the record from %s to %s", clash.ClockInAt.Format(time.RFC3339), clash.ClockOutAt.Format(time.RFC3339))
	}
}

// match finds the person's roster entry running at `at` or starting within
// the window after it, that no other record has matched; nil if none.
func (s *Service) match(ctx context.Context, tx *ent.Tx, staffID, self string, at time.Time) (*ent.RosterEntry, error) {
	entries, err := tx.RosterEntry.Query().Where(rosterentry.StaffID(staffID), rosterentry.StartAtLTE(at.Add(s.window)),
		rosterentry.EndAtGT(at)).WithShift().Order(ent.Asc(rosterentry.FieldStartAt)).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		q := tx.AttendanceRecord.Query().Where(attendancerecord.RosterEntryID(e.ID))
		if self != "" {
			q.Where(attendancerecord.IDNEQ(self))
		}
		taken, err := q.Exist(ctx)
		if err != nil {
			return nil, err
		}
		if !taken {
			return e, nil
		}
	}
	return nil, nil
}

// IsMissingClockOut is the missingClockOut of rec.
func (s *Service) IsMissingClockOut(ctx context.Context, rec *ent.AttendanceRecord) (bool, error) {
	if rec.ClockOutAt != nil {
		return false, nil
	}
	var end *time.Time
	if rec.RosterEntryID != nil {
		e, err := s.store.Client.RosterEntry.Get(auth.SystemContext(ctx), *rec.RosterEntryID)
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			return false, err
		default:
			end = &e.EndAt
		}
	}
	return MissingClockOut(rec.ClockInAt, nil, end, s.now()), nil
}

// MissingClockOuts are the records overdue for a clock-out, oldest first,
// for HR.
func (s *Service) MissingClockOuts(ctx context.Context, departmentID *string) ([]*ent.AttendanceRecord, error) {
	var c input.Checker
	c.OptionalID("departmentId", departmentID, input.Department)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if !s.seesAll(auth.FromContext(ctx)) {
		return nil, apperr.Denied("HR lists records missing a clock-out")
	}
	now := s.now().UTC()
	q := s.store.Client.AttendanceRecord.Query().Where(attendancerecord.ClockOutAtIsNil(), attendancerecord.Or(
		attendancerecord.And(attendancerecord.RosterEntryIDIsNil(), attendancerecord.ClockInAtLT(now.Add(-MissingAfterUnrostered))),
		attendancerecord.HasRosterEntryWith(rosterentry.EndAtLT(now.Add(-MissingAfterRosteredEnd))),
	))
	if departmentID != nil {
		q.Where(attendancerecord.HasStaffWith(staff.DepartmentID(*departmentID)))
	}
	return q.Order(ent.Asc(attendancerecord.FieldClockInAt)).All(ctx)
}

// Mine are the viewer's records with a clock-in in the local days from to
// to; the caller pages them.
func (s *Service) Mine(ctx context.Context, from, to *time.Time) (*ent.AttendanceRecordQuery, error) {
	q := s.store.Client.AttendanceRecord.Query()
	if err := s.clockedInWithin(q, from, to); err != nil {
		return nil, err
	}
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return q.Where(attendancerecord.IDIn()), nil
	}
	return q.Where(attendancerecord.StaffID(v.StaffID)), nil
}

// List is the attendance of a member of staff or a department for HR
// and, for their departments, managers; the caller pages it.
func (s *Service) List(ctx context.Context, staffID, departmentID *string, from, to *time.Time) (*ent.AttendanceRecordQuery, error) {
	var c input.Checker
	c.OptionalID("staffId", staffID, input.Staff)
	c.OptionalID("departmentId", departmentID, input.Department)
	if err := c.Err(); err != nil {
		return nil, err
	}
	q := s.store.Client.AttendanceRecord.Query()
	if err := s.clockedInWithin(q, from, to); err != nil {
		return nil, err
	}
	v := auth.FromContext(ctx)
	if !s.seesAll(v) {
		var managed []string
		if v != nil && v.StaffID != "" {
			var err error
			if managed, err = s.store.Client.Department.Query().Where(department.ManagerID(v.StaffID)).IDs(auth.SystemContext(ctx)); err != nil {
				return nil, err
			}
		}
		if len(managed) == 0 {
			return nil, apperr.Denied("HR and department managers read attendance")
		}
		if departmentID != nil && !slices.Contains(managed, *departmentID) {
			return nil, apperr.Denied("you manage another department")
		}
		q.Where(attendancerecord.HasStaffWith(staff.DepartmentIDIn(managed...)))
	}
	if staffID != nil {
		q.Where(attendancerecord.StaffID(*staffID))
	}
	if departmentID != nil {
		q.Where(attendancerecord.HasStaffWith(staff.DepartmentID(*departmentID)))
	}
	return q, nil
}

// clockedInWithin narrows q to records clocked in within the local days
// from to to, either of which may be nil.
func (s *Service) clockedInWithin(q *ent.AttendanceRecordQuery, from, to *time.Time) error {
	switch {
	case from != nil && to != nil:
		start, end, err := s.days(*from, *to)
		if err != nil {
			return err
		}
		q.Where(attendancerecord.ClockInAtGTE(start), attendancerecord.ClockInAtLT(end))
	case from != nil:
		start, _, _ := s.days(*from, *from)
		q.Where(attendancerecord.ClockInAtGTE(start))
	case to != nil:
		_, end, _ := s.days(*to, *to)
		q.Where(attendancerecord.ClockInAtLT(end))
	}
	return nil
}

// days turns local days from–to into the instants they run between.
func (s *Service) days(from, to time.Time) (time.Time, time.Time, error) {
	from, to = input.Date(from), input.Date(to)
	switch {
	case to.Before(from):
		return time.Time{}, time.Time{}, apperr.BadInput("to", "must not be before from")
	case int(to.Sub(from).Hours()/24)+1 > MaxRangeDays:
		return time.Time{}, time.Time{}, apperr.BadInput("to", "at most %d days from from", MaxRangeDays)
	}
	start := time.Date(from.Year(), from.Month(), from.Day(), 0, 0, 0, 0, s.loc)
	end := time.Date(to.Year(), to.Month(), to.Day()+1, 0, 0, 0, 0, s.loc)
	return start.UTC(), end.UTC(), nil
}

func setMeasures(u *ent.AttendanceRecordUpdateOne, m Measures) *ent.AttendanceRecordUpdateOne {
	return u.SetWorkedMinutes(m.Worked).SetLateMinutes(m.Late).SetEarlyLeaveMinutes(m.EarlyLeave).SetOvertimeMinutes(m.Overtime)
}

// shiftOf is what e is measured against; e was read with its shift.
func shiftOf(e *ent.RosterEntry) *Shift {
	if e == nil {
		return nil
	}
	sh := &Shift{Start: e.StartAt, End: e.EndAt}
	if e.Edges.Shift != nil {
		sh.BreakMinutes = e.Edges.Shift.UnpaidBreakMinutes
	}
	return sh
}
