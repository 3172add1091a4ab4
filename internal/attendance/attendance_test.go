package attendance

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/attendancerecord"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

var nairobi, _ = time.LoadLocation("Africa/Nairobi")

type fixture struct {
	svc                            *Service
	c                              *ent.Client
	sys                            context.Context
	gen                            *ent.Department
	day, night                     *ent.ShiftDefinition
	nurse, boss, hr, clerk, other  *ent.Staff
	asNurse, asBoss, asHR, asClerk context.Context
	asOther                        context.Context
	now                            time.Time
}

func setup(t *testing.T) *fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	f := &fixture{c: c, sys: sys}
	f.gen = c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	adm := c.Department.Create().SetCode("ADM").SetName("Administration").SaveX(sys)
	car := c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(sys)
	person := func(kind staff.Kind, dep *ent.Department, roles ...string) (*ent.Staff, context.Context) {
		s := c.Staff.Create().SetGivenName("G").SetFamilyName(string(kind)).SetKind(kind).SetDepartment(dep).SaveX(sys)
		return s, auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + s.ID, Roles: roles, StaffID: s.ID})
	}
	f.nurse, f.asNurse = person(staff.KindNURSE, f.gen, "nurse")
	f.boss, f.asBoss = person(staff.KindDOCTOR, f.gen, "doctor", "manager")
	f.hr, f.asHR = person(staff.KindHR_OFFICER, adm, "hr")
	f.clerk, f.asClerk = person(staff.KindBILLING_CLERK, adm, "billing_clerk")
	f.other, f.asOther = person(staff.KindDOCTOR, car, "doctor", "manager")
	c.Department.UpdateOne(f.gen).SetManagerID(f.boss.ID).ExecX(sys)
	c.Department.UpdateOne(car).SetManagerID(f.other.ID).ExecX(sys)
	f.day = c.ShiftDefinition.Create().SetCode("D").SetName("Day").SetKind("DAY").SetStartMinute(8 * 60).SetEndMinute(16 * 60).
		SetUnpaidBreakMinutes(30).SaveX(sys)
	f.night = c.ShiftDefinition.Create().SetCode("N").SetName("Night").SetKind("NIGHT").SetStartMinute(22 * 60).SetEndMinute(7 * 60).
		SetUnpaidBreakMinutes(60).SaveX(sys)
	f.svc = NewService(st, nairobi, 120, 5, func(v *auth.Viewer) bool { return v.HasRole("hr") })
	f.svc.now = func() time.Time { return f.now }
	return f
}

func local(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, nairobi) }

// roster puts s on shift on local day d, its instants as the roster fixes them.
func (f *fixture) roster(s *ent.Staff, shift *ent.ShiftDefinition, d int) *ent.RosterEntry {
	start := local(d, 0, shift.StartMinute)
	end := local(d, 0, shift.EndMinute)
	if !end.After(start) {
		end = local(d+1, 0, shift.EndMinute)
	}
	return f.c.RosterEntry.Create().SetStaffID(s.ID).SetDepartmentID(s.DepartmentID).SetShiftID(shift.ID).
		SetDate(time.Date(2026, 3, d, 0, 0, 0, 0, time.UTC)).SetStartAt(start.UTC()).SetEndAt(end.UTC()).SetAssignedByID("usr_x").SaveX(f.sys)
}

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

func ptr[T any](v T) *T { return &v }

// A night shift clocked by the nurse: matched from 90 minutes before,
// late past the grace, overtime the next morning.
func TestClockInAndOutAcrossMidnight(t *testing.T) {
	f := setup(t)
	f.roster(f.nurse, f.day, 10)
	night := f.roster(f.nurse, f.night, 10)
	// 20:20: the night shift starts within the window (100 minutes); the
	// day shift has ended.
	f.now = local(10, 20, 20)
	rec, err := f.svc.ClockIn(f.asNurse, ptr("handover"))
	if err != nil || rec.RosterEntryID == nil || *rec.RosterEntryID != night.ID || rec.LateMinutes != 0 ||
		rec.ClockInSource != attendancerecord.ClockInSourceSELF || *rec.Reason != "handover" {
		t.Fatalf("clock in: %+v %v", rec, err)
	}
	if _, err := f.svc.ClockIn(f.asNurse, nil); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("clock in twice: %v", err)
	}
	f.now = local(11, 8, 0)
	out, err := f.svc.ClockOut(f.asNurse, nil)
	if err != nil || out.ClockOutAt == nil || out.WorkedMinutes != 700-60 || out.OvertimeMinutes != 60 || out.EarlyLeaveMinutes != 0 {
		t.Fatalf("clock out: %+v %v", out, err)
	}
	if _, err := f.svc.ClockOut(f.asNurse, nil); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("clock out twice: %v", err)
	}
	// Back for the day shift of the 12th, 20 minutes late.
	day := f.roster(f.nurse, f.day, 12)
	f.now = local(12, 8, 20)
	rec, err = f.svc.ClockIn(f.asNurse, nil)
	if err != nil || *rec.RosterEntryID != day.ID || rec.LateMinutes != 20 {
		t.Fatalf("late clock in: %+v %v", rec, err)
	}
	f.now = local(12, 15, 0)
	if out, err = f.svc.ClockOut(f.asNurse, nil); err != nil || out.EarlyLeaveMinutes != 60 || out.WorkedMinutes != 400-30 || out.LateMinutes != 20 {
		t.Fatalf("early leave: %+v %v", out, err)
	}
	// Too early for any shift: unrostered, all overtime.
	f.now = local(13, 3, 0)
	rec, err = f.svc.ClockIn(f.asNurse, nil)
	if err != nil || rec.RosterEntryID != nil {
		t.Fatalf("unrostered: %+v %v", rec, err)
	}
	f.now = local(13, 5, 0)
	if out, err = f.svc.ClockOut(f.asNurse, nil); err != nil || out.WorkedMinutes != 120 || out.OvertimeMinutes != 120 {
		t.Fatalf("unrostered out: %+v %v", out, err)
	}
	// Without a staff record nobody clocks in.
	admin := auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_x", Roles: []string{"admin"}})
	if _, err := f.svc.ClockIn(admin, nil); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("no staff record: %v", err)
	}
}

// N clock-ins racing leave one open record.
func TestConcurrentClockInsLeaveOne(t *testing.T) {
	f := setup(t)
	f.now = local(10, 8, 0)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.svc.ClockIn(f.asNurse, nil); err != nil && apperr.CodeOf(err) != apperr.Conflict {
				t.Errorf("clock in: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := f.c.AttendanceRecord.Query().CountX(f.sys); n != 1 {
		t.Fatalf("%d records after racing clock-ins", n)
	}
}

func TestHRRecordsAndCorrects(t *testing.T) {
	f := setup(t)
	entry := f.roster(f.nurse, f.day, 9)
	f.now = local(10, 12, 0)
	in := local(9, 8, 30)
	out := local(9, 17, 0)
	count := func() int { return f.c.AttendanceRecord.Query().CountX(f.sys) }
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		in    RecordAttendanceInput
		field string
	}{
		{"no reason", f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: in, ClockOutAt: &out, Reason: "  "}, "input.reason"},
		{"bad staff ID", f.asHR, RecordAttendanceInput{StaffID: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", ClockInAt: in, Reason: "x"}, "input.staffId"},
		{"in the future", f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: local(10, 13, 0), Reason: "x"}, "input.clockInAt"},
		{"a century ago", f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: time.Date(1900, 1, 1, 8, 0, 0, 0, nairobi), Reason: "x"}, "input.clockInAt"},
		{"out in the future", f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: in, ClockOutAt: ptr(local(10, 13, 0)), Reason: "x"}, "input.clockOutAt"},
		{"out before in", f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: out, ClockOutAt: &in, Reason: "x"}, "input.clockOutAt"},
		{"over a day", f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: local(8, 8, 0), ClockOutAt: ptr(local(9, 9, 0)), Reason: "x"}, "input.clockOutAt"},
		{"their own", f.asHR, RecordAttendanceInput{StaffID: f.hr.ID, ClockInAt: in, ClockOutAt: &out, Reason: "x"}, "input.staffId"},
		{"no such person", f.asHR, RecordAttendanceInput{StaffID: "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", ClockInAt: in, Reason: "x"}, "input.staffId"},
	} {
		if _, err := f.svc.Record(tc.ctx, tc.in); !isBadInput(err, tc.field) {
			t.Errorf("%s: %v, want BAD_USER_INPUT on %s", tc.name, err, tc.field)
		}
	}
	if _, err := f.svc.Record(f.asBoss, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: in, Reason: "x"}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a manager recording: %v", err)
	}
	if n := count(); n != 0 {
		t.Fatalf("%d records written by refused input", n)
	}
	rec, err := f.svc.Record(f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: in, ClockOutAt: &out, Reason: "Badge reader down"})
	if err != nil || *rec.RosterEntryID != entry.ID || rec.LateMinutes != 30 || rec.OvertimeMinutes != 60 || rec.WorkedMinutes != 510-30 ||
		rec.ClockInSource != attendancerecord.ClockInSourceRECORDED || *rec.ClockOutSource != attendancerecord.ClockOutSourceRECORDED ||
		*rec.RecordedByID != "usr_"+f.hr.ID {
		t.Fatalf("recorded: %+v %v", rec, err)
	}
	// Overlapping it, closed or open.
	if _, err := f.svc.Record(f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: local(9, 16, 0), ClockOutAt: ptr(local(9, 18, 0)), Reason: "x"}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("overlap: %v", err)
	}
	if _, err := f.svc.Record(f.asHR, RecordAttendanceInput{StaffID: f.nurse.ID, ClockInAt: local(9, 6, 0), Reason: "x"}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("an open record before it: %v", err)
	}
	// The nurse forgot to clock out on the 10th: open, then missing.
	f.roster(f.nurse, f.day, 10)
	f.now = local(10, 7, 58)
	open, err := f.svc.ClockIn(f.asNurse, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.now = local(10, 20, 0)
	if missing, _ := f.svc.IsMissingClockOut(f.sys, open); missing {
		t.Fatal("missing 4 hours after the end already")
	}
	if list, err := f.svc.MissingClockOuts(f.asHR, nil); err != nil || len(list) != 0 {
		t.Fatalf("missing list at 20:00: %v %v", list, err)
	}
	f.now = local(10, 20, 1)
	if missing, _ := f.svc.IsMissingClockOut(f.sys, open); !missing {
		t.Fatal("not missing past 4 hours after the end")
	}
	if list, err := f.svc.MissingClockOuts(f.asHR, &f.gen.ID); err != nil || len(list) != 1 || list[0].ID != open.ID {
		t.Fatalf("missing list: %v %v", list, err)
	}
	if _, err := f.svc.MissingClockOuts(f.asBoss, nil); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a manager listing missing clock-outs: %v", err)
	}
	// HR closes it at 16:10.
	if _, err := f.svc.Correct(f.asHR, open.ID, CorrectAttendanceInput{ClockOutAt: ptr(local(10, 7, 0)), Reason: "x"}); !isBadInput(err, "input.clockOutAt") {
		t.Fatalf("close before it opened: %v", err)
	}
	closed, err := f.svc.Correct(f.asHR, open.ID, CorrectAttendanceInput{ClockOutAt: ptr(local(10, 16, 10)), Reason: "Forgot to clock out; rota confirms 16:10"})
	if err != nil || closed.ClockOutAt == nil || closed.ClockInSource != attendancerecord.ClockInSourceSELF ||
		*closed.ClockOutSource != attendancerecord.ClockOutSourceRECORDED || closed.OvertimeMinutes != 10 || closed.WorkedMinutes != 492-30 {
		t.Fatalf("closed: %+v %v", closed, err)
	}
	// Moving the clock-in re-measures: 08:20 is late by 20.
	moved, err := f.svc.Correct(f.asHR, open.ID, CorrectAttendanceInput{ClockInAt: ptr(local(10, 8, 20)), Reason: "Came in late"})
	if err != nil || moved.LateMinutes != 20 || moved.WorkedMinutes != 470-30 || moved.RosterEntryID == nil {
		t.Fatalf("moved: %+v %v", moved, err)
	}
	if _, err := f.svc.Correct(f.asHR, open.ID, CorrectAttendanceInput{ClockInAt: ptr(local(9, 16, 30)), Reason: "x"}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("a correction into another record: %v", err)
	}
	if got := f.c.AttendanceRecord.GetX(f.sys, open.ID); !got.ClockInAt.Equal(local(10, 8, 20)) {
		t.Fatalf("a refused correction changed the record: %v", got.ClockInAt)
	}
}

// attendance: HR everyone's; a manager their department's; nobody else.
func TestListingIsScoped(t *testing.T) {
	f := setup(t)
	f.now = local(10, 12, 0)
	for _, s := range []*ent.Staff{f.nurse, f.clerk} {
		if _, err := f.svc.Record(f.asHR, RecordAttendanceInput{StaffID: s.ID, ClockInAt: local(9, 8, 0), ClockOutAt: ptr(local(9, 16, 0)), Reason: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	from, to := time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 9, 0, 0, 0, 0, time.UTC)
	count := func(ctx context.Context, staffID, departmentID *string) (int, error) {
		q, err := f.svc.List(ctx, staffID, departmentID, &from, &to)
		if err != nil {
			return 0, err
		}
		return q.Count(f.sys)
	}
	if n, err := count(f.asHR, nil, nil); err != nil || n != 2 {
		t.Fatalf("HR: %d %v", n, err)
	}
	if n, err := count(f.asBoss, nil, nil); err != nil || n != 1 {
		t.Fatalf("manager: %d %v", n, err)
	}
	if n, err := count(f.asBoss, &f.clerk.ID, nil); err != nil || n != 0 {
		t.Fatalf("manager asking for someone else's: %d %v", n, err)
	}
	if _, err := count(f.asOther, nil, &f.gen.ID); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("another department's manager: %v", err)
	}
	if _, err := count(f.asNurse, nil, nil); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a nurse: %v", err)
	}
	if _, err := f.svc.List(f.asHR, nil, nil, &to, ptr(from.AddDate(0, 0, -1))); !isBadInput(err, "to") {
		t.Fatalf("to before from: %v", err)
	}
	if _, err := f.svc.List(f.asHR, nil, nil, &from, ptr(from.AddDate(1, 1, 0))); !isBadInput(err, "to") {
		t.Fatalf("over a year: %v", err)
	}
	mine, err := f.svc.Mine(f.asNurse, &from, &to)
	if err != nil || mine.CountX(f.sys) != 1 {
		t.Fatalf("mine: %v", err)
	}
	// The local day in Nairobi starts at 21:00 UTC the day before.
	mine, _ = f.svc.Mine(f.asNurse, ptr(from.AddDate(0, 0, 1)), ptr(to.AddDate(0, 0, 1)))
	if n := mine.CountX(f.sys); n != 0 {
		t.Fatalf("the next day holds %d", n)
	}
}
