package rostering

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/leaverequest"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc    *Service
	client *ent.Client
	system context.Context
	// gen and car are departments; the manager manages gen.
	gen, car string
	// Staff IDs.
	doctor, nurse, outsider, inactive, managerID string
	// Viewers.
	hr, manager, doctorCtx, outsiderCtx, carManager context.Context
	day, night, evening, onCall, retired            *ent.ShiftDefinition
}

func setup(t *testing.T, loc *time.Location) fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	gen := c.Department.Create().SetCode("GEN").SetName("General Medicine").SaveX(sys)
	car := c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(sys)
	person := func(given string, kind staff.Kind, dep *ent.Department, active bool) *ent.Staff {
		return c.Staff.Create().SetGivenName(given).SetFamilyName("Test").SetKind(kind).SetDepartment(dep).SetActive(active).SaveX(sys)
	}
	as := func(m *ent.Staff, roles ...string) context.Context {
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + m.ID, Username: m.GivenName, Roles: roles, StaffID: m.ID})
	}
	hr := person("Mei", staff.KindHR_OFFICER, car, true)
	mgr := person("Joseph", staff.KindDOCTOR, gen, true)
	carMgr := person("Kwame", staff.KindDOCTOR, car, true)
	c.Department.UpdateOne(gen).SetManager(mgr).ExecX(sys)
	c.Department.UpdateOne(car).SetManager(carMgr).ExecX(sys)
	f := fixture{client: c, system: sys, gen: gen.ID, car: car.ID, managerID: mgr.ID}
	doc := person("Grace", staff.KindDOCTOR, gen, true)
	f.doctor = doc.ID
	f.nurse = person("Tomas", staff.KindNURSE, gen, true).ID
	out := person("Priya", staff.KindDOCTOR, car, true)
	f.outsider = out.ID
	f.inactive = person("Old", staff.KindNURSE, gen, false).ID
	f.hr, f.manager, f.carManager = as(hr, "hr"), as(mgr, "doctor", "manager"), as(carMgr, "doctor", "manager")
	f.doctorCtx, f.outsiderCtx = as(doc, "doctor"), as(out, "doctor")
	f.svc = NewService(st, loc, 8*time.Hour, func(v *auth.Viewer) bool { return v.HasRole("hr") || v.HasRole("admin") })
	shift := func(code string, kind shiftdefinition.Kind, start, end string) *ent.ShiftDefinition {
		sh, err := f.svc.CreateShift(f.hr, CreateShiftDefinitionInput{Code: code, Name: code, Kind: kind, StartTime: start, EndTime: end})
		if err != nil {
			t.Fatalf("shift %s: %v", code, err)
		}
		return sh
	}
	f.day = shift("D", shiftdefinition.KindDAY, "08:00", "16:00")
	f.evening = shift("E", shiftdefinition.KindEVENING, "16:00", "24:00")
	f.night = shift("N", shiftdefinition.KindNIGHT, "20:00", "08:00")
	f.onCall = shift("OC", shiftdefinition.KindON_CALL, "17:00", "08:00")
	f.retired = shift("X", shiftdefinition.KindDAY, "09:00", "17:00")
	if _, err := f.svc.DeactivateShift(f.hr, f.retired.ID); err != nil {
		t.Fatal(err)
	}
	return f
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func entry(staffID string, sh *ent.ShiftDefinition, date time.Time) *RosterEntryInput {
	return &RosterEntryInput{StaffID: staffID, ShiftID: sh.ID, Date: date}
}

func field(err error) (apperr.Code, string) {
	e, ok := apperr.As(err)
	if !ok {
		return apperr.Internal, ""
	}
	return e.Code, e.Field
}

func (f fixture) count(t *testing.T) int {
	t.Helper()
	return f.client.RosterEntry.Query().CountX(f.system)
}

func TestShiftTimes(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no tz data:", err)
	}
	nairobi, _ := time.LoadLocation("Africa/Nairobi")
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		name       string
		loc        *time.Location
		date       time.Time
		start, end int
		from, to   string
	}{
		{"day in UTC", time.UTC, day(2030, 3, 4), 8 * 60, 16 * 60, "2030-03-04T08:00:00Z", "2030-03-04T16:00:00Z"},
		{"night crosses midnight", time.UTC, day(2030, 3, 4), 20 * 60, 8 * 60, "2030-03-04T20:00:00Z", "2030-03-05T08:00:00Z"},
		{"ends at 24:00", time.UTC, day(2030, 3, 4), 16 * 60, 24 * 60, "2030-03-04T16:00:00Z", "2030-03-05T00:00:00Z"},
		{"24 hours on call", time.UTC, day(2030, 3, 4), 8 * 60, 8 * 60, "2030-03-04T08:00:00Z", "2030-03-05T08:00:00Z"},
		{"Nairobi is UTC+3", nairobi, day(2030, 3, 4), 8 * 60, 16 * 60, "2030-03-04T05:00:00Z", "2030-03-04T13:00:00Z"},
		{"London winter", london, day(2026, 1, 10), 8 * 60, 16 * 60, "2026-01-10T08:00:00Z", "2026-01-10T16:00:00Z"},
		{"London summer", london, day(2026, 7, 10), 8 * 60, 16 * 60, "2026-07-10T07:00:00Z", "2026-07-10T15:00:00Z"},
		// Clocks go forward at 01:00 on 29 March 2026: the night is 11 hours.
		{"London night, spring forward", london, day(2026, 3, 28), 20 * 60, 8 * 60, "2026-03-28T20:00:00Z", "2026-03-29T07:00:00Z"},
		// Clocks go back at 02:00 on 25 October 2026: the night is 13 hours.
		{"London night, fall back", london, day(2026, 10, 24), 20 * 60, 8 * 60, "2026-10-24T19:00:00Z", "2026-10-25T08:00:00Z"},
	} {
		from, to := ShiftTimes(c.loc, c.date, c.start, c.end)
		if !from.Equal(at(c.from)) || !to.Equal(at(c.to)) {
			t.Errorf("%s: %s – %s, want %s – %s", c.name, from.Format(time.RFC3339), to.Format(time.RFC3339), c.from, c.to)
		}
	}
	if got := to(london, day(2026, 3, 28)).Sub(from(london, day(2026, 3, 28))); got != 11*time.Hour {
		t.Errorf("spring-forward night lasts %s", got)
	}
}

func from(loc *time.Location, d time.Time) time.Time {
	f, _ := ShiftTimes(loc, d, 20*60, 8*60)
	return f
}
func to(loc *time.Location, d time.Time) time.Time { _, t := ShiftTimes(loc, d, 20*60, 8*60); return t }

func TestShiftDefinitions(t *testing.T) {
	f := setup(t, time.UTC)
	if f.onCall.Bookable || !f.day.Bookable || !CrossesMidnight(f.night) || CrossesMidnight(f.day) {
		t.Errorf("defaults: on call bookable %v, day %v; night crosses %v", f.onCall.Bookable, f.day.Bookable, CrossesMidnight(f.night))
	}
	if Clock(f.evening.EndMinute) != "24:00" || Clock(f.night.StartMinute) != "20:00" {
		t.Errorf("clock: %s %s", Clock(f.evening.EndMinute), Clock(f.night.StartMinute))
	}
	before := f.client.ShiftDefinition.Query().CountX(f.system)
	for _, c := range []struct {
		in    CreateShiftDefinitionInput
		field string
	}{
		{CreateShiftDefinitionInput{Code: "", Name: "x", Kind: "DAY", StartTime: "08:00", EndTime: "16:00"}, "input.code"},
		{CreateShiftDefinitionInput{Code: "d", Name: "x", Kind: "DAY", StartTime: "08:00", EndTime: "16:00"}, "input.code"},
		{CreateShiftDefinitionInput{Code: "Y", Name: "", Kind: "DAY", StartTime: "08:00", EndTime: "16:00"}, "input.name"},
		{CreateShiftDefinitionInput{Code: "Y", Name: "x", Kind: "DAY", StartTime: "8:00", EndTime: "16:00"}, "input.startTime"},
		{CreateShiftDefinitionInput{Code: "Y", Name: "x", Kind: "DAY", StartTime: "24:00", EndTime: "16:00"}, "input.startTime"},
		{CreateShiftDefinitionInput{Code: "Y", Name: "x", Kind: "DAY", StartTime: "08:00", EndTime: "16:60"}, "input.endTime"},
		{CreateShiftDefinitionInput{Code: "Y", Name: "x", Kind: "BRUNCH", StartTime: "08:00", EndTime: "16:00"}, "input.kind"},
		{CreateShiftDefinitionInput{Code: "Y", Name: "x", Kind: "DAY", StartTime: "08:00", EndTime: "09:00", UnpaidBreakMinutes: ptr(60)}, "input.unpaidBreakMinutes"},
	} {
		_, err := f.svc.CreateShift(f.hr, c.in)
		if code, got := field(err); code != apperr.BadUserInput || got != c.field {
			t.Errorf("%+v: %v, want bad %s", c.in, err, c.field)
		}
	}
	if n := f.client.ShiftDefinition.Query().CountX(f.system); n != before {
		t.Errorf("refused shifts wrote %d rows", n-before)
	}
	up, err := f.svc.UpdateShift(f.hr, f.day.ID, UpdateShiftDefinitionInput{StartTime: ptr("07:30"), Bookable: ptr(false)})
	if err != nil || up.StartMinute != 7*60+30 || up.EndMinute != 16*60 || up.Bookable || up.Name != "D" {
		t.Fatalf("update: %+v %v", up, err)
	}
	if _, err := f.svc.UpdateShift(f.hr, f.day.ID, UpdateShiftDefinitionInput{EndTime: ptr("25:00")}); !isBad(err, "input.endTime") {
		t.Errorf("bad update: %v", err)
	}
	if _, err := f.svc.DeactivateShift(f.hr, f.retired.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("deactivating twice: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func isBad(err error, name string) bool {
	code, got := field(err)
	return code == apperr.BadUserInput && got == name
}

// TestOverlapAndRest: one person already on a day shift on 4 March 2030;
// each case rosters them once more.
func TestOverlapAndRest(t *testing.T) {
	f := setup(t, time.UTC)
	if _, err := f.svc.Assign(f.hr, AssignShiftsInput{DepartmentID: f.gen, Entries: []*RosterEntryInput{entry(f.doctor, f.day, day(2030, 3, 4))}}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		dep   string
		shift *ent.ShiftDefinition
		date  time.Time
		ok    bool
	}{
		{"the same shift again", f.gen, f.day, day(2030, 3, 4), false},
		{"an evening straight after: no rest", f.gen, f.evening, day(2030, 3, 4), false},
		{"a night 4 hours after: too little rest", f.gen, f.night, day(2030, 3, 4), false},
		{"in another department, overlapping", f.car, f.day, day(2030, 3, 4), false},
		{"a night the evening before ends at 08:00: overlaps", f.gen, f.night, day(2030, 3, 3), false},
		{"on call the evening before ends at 08:00: overlaps", f.gen, f.onCall, day(2030, 3, 3), false},
		{"the next day: 16 hours of rest", f.gen, f.day, day(2030, 3, 5), true},
		{"a night the day after that ends 2030-03-07 08:00, 12 h before the next day's evening", f.gen, f.night, day(2030, 3, 6), true},
		{"an evening 8 hours after that night", f.gen, f.evening, day(2030, 3, 7), true},
	} {
		before := f.count(t)
		_, err := f.svc.Assign(f.hr, AssignShiftsInput{DepartmentID: c.dep, Entries: []*RosterEntryInput{entry(f.doctor, c.shift, c.date)}})
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: refused: %v", c.name, err)
		case !c.ok && err == nil:
			t.Errorf("%s: accepted", c.name)
		case !c.ok:
			if code, name := field(err); code != apperr.Conflict || name != "input.entries[0].date" {
				t.Errorf("%s: %v (%s %s), want a conflict on input.entries[0].date", c.name, err, code, name)
			}
			if n := f.count(t); n != before {
				t.Errorf("%s: refused, yet wrote %d entries", c.name, n-before)
			}
		}
	}
}

func TestMinimumRestIsConfigurable(t *testing.T) {
	f := setup(t, time.UTC)
	f.svc.minRest = 0
	_, err := f.svc.Assign(f.hr, AssignShiftsInput{DepartmentID: f.gen, Entries: []*RosterEntryInput{
		entry(f.doctor, f.day, day(2030, 3, 4)), entry(f.doctor, f.evening, day(2030, 3, 4))}})
	if err != nil {
		t.Fatalf("back to back without a minimum: %v", err)
	}
	f.svc.minRest = 12 * time.Hour
	_, err = f.svc.Assign(f.hr, AssignShiftsInput{DepartmentID: f.gen, Entries: []*RosterEntryInput{entry(f.doctor, f.day, day(2030, 3, 5))}})
	if code, _ := field(err); code != apperr.Conflict || !strings.Contains(err.Error(), "8h") || !strings.Contains(err.Error(), "12h") {
		t.Errorf("8 hours after midnight with 12 required: %v", err)
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	f := setup(t, time.UTC)
	week := func(extra ...*RosterEntryInput) AssignShiftsInput {
		var es []*RosterEntryInput
		for d := 4; d <= 8; d++ {
			es = append(es, entry(f.doctor, f.day, day(2030, 3, d)))
		}
		return AssignShiftsInput{DepartmentID: f.gen, Entries: append(es, extra...)}
	}
	for _, c := range []struct {
		name  string
		in    AssignShiftsInput
		code  apperr.Code
		field string
	}{
		{"inactive person", week(entry(f.inactive, f.day, day(2030, 3, 4))), apperr.BadUserInput, "input.entries[5].staffId"},
		{"inactive shift", week(entry(f.nurse, f.retired, day(2030, 3, 4))), apperr.BadUserInput, "input.entries[5].shiftId"},
		{"no such person", week(&RosterEntryInput{StaffID: "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", ShiftID: f.day.ID, Date: day(2030, 3, 4)}), apperr.BadUserInput, "input.entries[5].staffId"},
		{"malformed shift ID", week(&RosterEntryInput{StaffID: f.nurse, ShiftID: "nope", Date: day(2030, 3, 4)}), apperr.BadUserInput, "input.entries[5].shiftId"},
		{"a note too long", week(&RosterEntryInput{StaffID: f.nurse, ShiftID: f.day.ID, Date: day(2030, 3, 4), Note: ptr(strings.Repeat("x", 201))}), apperr.BadUserInput, "input.entries[5].note"},
		{"overlapping itself", week(entry(f.doctor, f.evening, day(2030, 3, 6))), apperr.BadUserInput, "input.entries[5].date"},
		{"too little rest within", week(entry(f.doctor, f.night, day(2030, 3, 3))), apperr.BadUserInput, "input.entries[5].date"},
		{"no entries", AssignShiftsInput{DepartmentID: f.gen}, apperr.BadUserInput, "input.entries"},
		{"no such department", AssignShiftsInput{DepartmentID: "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV", Entries: week().Entries}, apperr.BadUserInput, "input.departmentId"},
	} {
		_, err := f.svc.Assign(f.hr, c.in)
		if code, name := field(err); code != c.code || name != c.field {
			t.Errorf("%s: %v, want %s on %s", c.name, err, c.code, c.field)
		}
		if n := f.count(t); n != 0 {
			t.Fatalf("%s: refused, yet %d entries written", c.name, n)
		}
	}
	out, err := f.svc.Assign(f.hr, week(entry(f.nurse, f.night, day(2030, 3, 4))))
	if err != nil || len(out) != 6 || f.count(t) != 6 {
		t.Fatalf("a week: %d %v", len(out), err)
	}
	if !out[5].StartAt.Equal(time.Date(2030, 3, 4, 20, 0, 0, 0, time.UTC)) || !out[5].EndAt.Equal(time.Date(2030, 3, 5, 8, 0, 0, 0, time.UTC)) ||
		out[5].AssignedByID == "" {
		t.Errorf("the night: %+v", out[5])
	}
}

func TestApprovedLeaveBlocksRostering(t *testing.T) {
	f := setup(t, time.UTC)
	leave := func(status leaverequest.Status, from, to time.Time) {
		f.client.LeaveRequest.Create().SetStaffID(f.nurse).SetLeaveType(leaverequest.LeaveTypeANNUAL).SetStartDate(from).SetEndDate(to).
			SetDays(int(to.Sub(from).Hours()/24) + 1).SetStatus(status).ExecX(f.system)
	}
	leave(leaverequest.StatusAPPROVED, day(2030, 3, 10), day(2030, 3, 14))
	leave(leaverequest.StatusREQUESTED, day(2030, 3, 20), day(2030, 3, 21))
	leave(leaverequest.StatusREJECTED, day(2030, 3, 22), day(2030, 3, 22))
	for _, c := range []struct {
		name  string
		shift *ent.ShiftDefinition
		date  time.Time
		ok    bool
	}{
		{"first day of leave", f.day, day(2030, 3, 10), false},
		{"last day of leave", f.day, day(2030, 3, 14), false},
		{"a night the evening before leave runs into it", f.night, day(2030, 3, 9), false},
		{"the day before leave", f.day, day(2030, 3, 9), true},
		{"the day after leave", f.day, day(2030, 3, 15), true},
		{"leave only requested", f.day, day(2030, 3, 20), true},
		{"leave rejected", f.day, day(2030, 3, 22), true},
	} {
		_, err := f.svc.Assign(f.hr, AssignShiftsInput{DepartmentID: f.gen, Entries: []*RosterEntryInput{entry(f.nurse, c.shift, c.date)}})
		if c.ok != (err == nil) {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && (apperr.CodeOf(err) != apperr.Conflict || !strings.Contains(err.Error(), "approved leave")) {
			t.Errorf("%s: %v, want a conflict about leave", c.name, err)
		}
	}
}

// TestWhoRosters: HR any department; a manager their own only; other
// staff neither; reads by department and by person.
func TestWhoRosters(t *testing.T) {
	f := setup(t, time.UTC)
	one := func(dep, who string, d int) AssignShiftsInput {
		return AssignShiftsInput{DepartmentID: dep, Entries: []*RosterEntryInput{entry(who, f.day, day(2030, 3, d))}}
	}
	for _, c := range []struct {
		name string
		ctx  context.Context
		in   AssignShiftsInput
		ok   bool
	}{
		{"hr, General Medicine", f.hr, one(f.gen, f.doctor, 4), true},
		{"hr, Cardiology", f.hr, one(f.car, f.outsider, 4), true},
		{"manager, own department", f.manager, one(f.gen, f.nurse, 4), true},
		{"hr lends someone from elsewhere to General Medicine", f.hr, one(f.gen, f.outsider, 6), true},
		{"manager, someone from elsewhere into own department", f.manager, one(f.gen, f.outsider, 10), false},
		{"manager, their own nurse in the past", f.manager,
			AssignShiftsInput{DepartmentID: f.gen, Entries: []*RosterEntryInput{entry(f.nurse, f.day, day(2020, 3, 2))}}, false},
		{"manager, another department", f.manager, one(f.car, f.outsider, 8), false},
		{"Cardiology's manager, General Medicine", f.carManager, one(f.gen, f.nurse, 8), false},
		{"a doctor of the department", f.doctorCtx, one(f.gen, f.doctor, 8), false},
		{"nobody", context.Background(), one(f.gen, f.doctor, 8), false},
	} {
		before := f.count(t)
		_, err := f.svc.Assign(c.ctx, c.in)
		if c.ok != (err == nil) || (!c.ok && apperr.CodeOf(err) != apperr.Forbidden) {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && f.count(t) != before {
			t.Errorf("%s: refused, yet wrote", c.name)
		}
	}
	// Dates every backend stores: a far year is bad input, and writes nothing.
	before := f.count(t)
	_, err := f.svc.Assign(f.hr, AssignShiftsInput{DepartmentID: f.gen, Entries: []*RosterEntryInput{entry(f.nurse, f.day, day(9999, 12, 31))}})
	if apperr.CodeOf(err) != apperr.BadUserInput || !strings.Contains(err.Error(), "input.entries[0].date") || f.count(t) != before {
		t.Errorf("year 9999: %v", err)
	}
	gen, car := f.gen, f.car
	for _, c := range []struct {
		name  string
		ctx   context.Context
		q     EntryQuery
		count int // -1: refused
	}{
		{"hr reads General Medicine", f.hr, EntryQuery{DepartmentID: &gen}, 3},
		{"the manager reads it", f.manager, EntryQuery{DepartmentID: &gen}, 3},
		{"a doctor of it reads it", f.doctorCtx, EntryQuery{DepartmentID: &gen}, 3},
		{"a doctor of Cardiology does not", f.outsiderCtx, EntryQuery{DepartmentID: &gen}, -1},
		{"General Medicine's manager does not read Cardiology's", f.manager, EntryQuery{DepartmentID: &car}, -1},
		{"a doctor reads their own", f.doctorCtx, EntryQuery{StaffID: &f.doctor}, 1},
		{"not a colleague's", f.doctorCtx, EntryQuery{StaffID: &f.nurse}, -1},
		{"the manager reads their people's", f.manager, EntryQuery{StaffID: &f.nurse}, 1},
		{"not someone else's people's, though rostered here", f.manager, EntryQuery{StaffID: &f.outsider}, -1},
		{"hr reads anyone's, in every department", f.hr, EntryQuery{StaffID: &f.outsider}, 2},
	} {
		c.q.From, c.q.To = day(2030, 3, 1), day(2030, 3, 31)
		got, err := f.svc.Entries(c.ctx, c.q)
		switch {
		case c.count < 0 && apperr.CodeOf(err) != apperr.Forbidden:
			t.Errorf("%s: %v, want FORBIDDEN", c.name, err)
		case c.count >= 0 && (err != nil || len(got) != c.count):
			t.Errorf("%s: %d entries, %v; want %d", c.name, len(got), err, c.count)
		}
	}
	mine, err := f.svc.Mine(f.doctorCtx, day(2030, 3, 1), day(2030, 3, 31))
	if err != nil || len(mine) != 1 || mine[0].StaffID != f.doctor {
		t.Errorf("myRoster: %v %v", mine, err)
	}
	if _, err := f.svc.Mine(f.doctorCtx, day(2030, 3, 1), day(2030, 6, 1)); !isBad(err, "to") {
		t.Errorf("a range too long: %v", err)
	}
	// Managers are named by HR, and must be active staff.
	if _, err := f.svc.SetDepartmentManager(f.hr, f.car, f.inactive); !isBad(err, "staffId") {
		t.Errorf("inactive manager: %v", err)
	}
	if d, err := f.svc.SetDepartmentManager(f.hr, f.car, f.managerID); err != nil || d.ManagerID == nil || *d.ManagerID != f.managerID {
		t.Fatalf("set manager: %v", err)
	}
	if _, err := f.svc.Assign(f.manager, one(f.car, f.outsider, 10)); err != nil {
		t.Errorf("the new manager of Cardiology: %v", err)
	}
	if _, err := f.svc.Assign(f.carManager, one(f.car, f.outsider, 12)); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("the former manager: %v", err)
	}
}

func TestCoverage(t *testing.T) {
	f := setup(t, time.UTC)
	if _, err := f.svc.SetRequirement(f.hr, f.gen, f.day.ID, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetRequirement(f.manager, f.gen, f.night.ID, 3); err != nil {
		t.Fatal(err)
	}
	if r, err := f.svc.SetRequirement(f.manager, f.gen, f.night.ID, 1); err != nil || r.MinimumStaff != 1 {
		t.Fatalf("changed requirement: %v %v", r, err)
	}
	if _, err := f.svc.SetRequirement(f.manager, f.car, f.night.ID, 1); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("another department's requirement: %v", err)
	}
	if _, err := f.svc.SetRequirement(f.hr, f.gen, f.night.ID, -1); !isBad(err, "minimumStaff") {
		t.Errorf("negative: %v", err)
	}
	_, err := f.svc.Assign(f.hr, AssignShiftsInput{DepartmentID: f.gen, Entries: []*RosterEntryInput{
		entry(f.doctor, f.day, day(2030, 3, 4)), entry(f.nurse, f.day, day(2030, 3, 4)),
		entry(f.outsider, f.night, day(2030, 3, 4)), entry(f.nurse, f.evening, day(2030, 3, 5)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := f.svc.Coverage(f.manager, f.gen, day(2030, 3, 4), day(2030, 3, 5))
	if err != nil {
		t.Fatal(err)
	}
	type cell struct {
		date, shift                      string
		planned, minimum, shortfall, who int
	}
	var got []cell
	for _, r := range rows {
		got = append(got, cell{r.Date.Format(time.DateOnly), r.Shift.Code, r.Planned, r.MinimumStaff, r.Shortfall, len(r.Staff)})
	}
	want := []cell{
		{"2030-03-04", "D", 2, 2, 0, 2},
		{"2030-03-04", "N", 1, 1, 0, 1},
		{"2030-03-05", "D", 0, 2, 2, 0},
		{"2030-03-05", "E", 1, 0, 0, 1},
		{"2030-03-05", "N", 0, 1, 1, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("coverage: %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := f.svc.Coverage(f.doctorCtx, f.gen, day(2030, 3, 4), day(2030, 3, 5)); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("a doctor reading coverage: %v", err)
	}
}

// TestRacingAssignments: many HR officers roster one person at once on
// shifts that overlap or leave too little rest between each other; the
// per-person lock lets exactly one through.
func TestRacingAssignments(t *testing.T) {
	f := setup(t, time.UTC)
	shifts := []*ent.ShiftDefinition{f.day, f.evening, f.night, f.onCall}
	const n = 12
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			dep := f.gen
			if i%2 == 1 {
				dep = f.car
			}
			_, errs[i] = f.svc.Assign(f.hr, AssignShiftsInput{DepartmentID: dep,
				Entries: []*RosterEntryInput{entry(f.doctor, shifts[i%len(shifts)], day(2030, 3, 4))}})
		}(i)
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apperr.CodeOf(err) != apperr.Conflict:
			t.Errorf("unexpected: %v", err)
		}
	}
	if ok != 1 || f.count(t) != 1 {
		t.Fatalf("%d assignments succeeded, %d entries stored; want one", ok, f.count(t))
	}
}
