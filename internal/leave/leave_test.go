package leave

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/leaverequest"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/providertimeoff"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

var nairobi, _ = time.LoadLocation("Africa/Nairobi")

type fixture struct {
	svc    *Service
	c      *ent.Client
	sys    context.Context
	gen    *ent.Department
	shift  *ent.ShiftDefinition
	nurse  *ent.Staff // in General Medicine, managed by manager
	nurse2 *ent.Staff
	boss   *ent.Staff // manages General Medicine
	hr     *ent.Staff // in Administration, which has no manager
	clerk  *ent.Staff // in Administration
	other  *ent.Staff // manages Cardiology

	asNurse, asNurse2, asBoss, asHR, asClerk, asOther context.Context
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
	f.nurse2, f.asNurse2 = person(staff.KindNURSE, f.gen, "nurse")
	f.boss, f.asBoss = person(staff.KindDOCTOR, f.gen, "doctor", "manager")
	f.hr, f.asHR = person(staff.KindHR_OFFICER, adm, "hr")
	f.clerk, f.asClerk = person(staff.KindBILLING_CLERK, adm, "billing_clerk")
	f.other, f.asOther = person(staff.KindDOCTOR, car, "doctor", "manager")
	c.Department.UpdateOne(f.gen).SetManagerID(f.boss.ID).ExecX(sys)
	c.Department.UpdateOne(car).SetManagerID(f.other.ID).ExecX(sys)
	f.shift = c.ShiftDefinition.Create().SetCode("D").SetName("Day").SetKind("DAY").SetStartMinute(8 * 60).SetEndMinute(16 * 60).SaveX(sys)
	f.svc = NewService(st, nairobi, map[string]int{"ANNUAL": 21, "SICK": 14}, func(v *auth.Viewer) bool { return v.HasRole("hr") })
	f.svc.now = func() time.Time { return time.Date(2026, 3, 10, 9, 0, 0, 0, nairobi) }
	return f
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func ptr[T any](v T) *T { return &v }

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

func (f *fixture) request(t *testing.T, ctx context.Context, kind leaverequest.LeaveType, from, to time.Time) *ent.LeaveRequest {
	t.Helper()
	r, err := f.svc.Request(ctx, RequestLeaveInput{LeaveType: kind, StartDate: from, EndDate: to})
	if err != nil {
		t.Fatalf("request %s %v–%v: %v", kind, from, to, err)
	}
	return r
}

func (f *fixture) balance(t *testing.T, ctx context.Context, s *ent.Staff, kind leaverequest.LeaveType) *LeaveBalance {
	t.Helper()
	bs, err := f.svc.Balances(ctx, s.ID, 2026)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		if b.LeaveType == kind {
			return b
		}
	}
	t.Fatalf("no %s balance", kind)
	return nil
}

func TestBadRequestsNameTheFieldAndWriteNothing(t *testing.T) {
	f := setup(t)
	for _, tc := range []struct {
		name  string
		in    RequestLeaveInput
		field string
	}{
		{"unknown kind", RequestLeaveInput{LeaveType: "HOLIDAY", StartDate: date(2026, 4, 1), EndDate: date(2026, 4, 2)}, "input.leaveType"},
		{"end before start", RequestLeaveInput{LeaveType: "ANNUAL", StartDate: date(2026, 4, 2), EndDate: date(2026, 4, 1)}, "input.endDate"},
		{"across the new year", RequestLeaveInput{LeaveType: "ANNUAL", StartDate: date(2026, 12, 28), EndDate: date(2027, 1, 3)}, "input.endDate"},
		{"annual in the past", RequestLeaveInput{LeaveType: "ANNUAL", StartDate: date(2026, 3, 9), EndDate: date(2026, 3, 11)}, "input.startDate"},
		{"sick too long ago", RequestLeaveInput{LeaveType: "SICK", StartDate: date(2026, 3, 2), EndDate: date(2026, 3, 4)}, "input.startDate"},
		{"in year 9999", RequestLeaveInput{LeaveType: "UNPAID", StartDate: date(9999, 1, 1), EndDate: date(9999, 12, 31)}, "input.startDate"},
		{"reason too long", RequestLeaveInput{LeaveType: "ANNUAL", StartDate: date(2026, 4, 1), EndDate: date(2026, 4, 1), Reason: ptr(string(make([]rune, 501)))}, "input.reason"},
	} {
		if _, err := f.svc.Request(f.asNurse, tc.in); !isBadInput(err, tc.field) {
			t.Errorf("%s: %v, want BAD_USER_INPUT on %s", tc.name, err, tc.field)
		}
	}
	if n := f.c.LeaveRequest.Query().CountX(f.sys); n != 0 {
		t.Fatalf("%d requests written by refused input", n)
	}
	// Sick leave reported within the allowance is accepted: today is 10 March.
	r := f.request(t, f.asNurse, "SICK", date(2026, 3, 3), date(2026, 3, 4))
	if r.Days != 2 || r.Status != leaverequest.StatusREQUESTED {
		t.Fatalf("sick leave: %+v", r)
	}
	// Without a staff record nobody requests leave.
	admin := auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_x", Roles: []string{"admin"}})
	if _, err := f.svc.Request(admin, RequestLeaveInput{LeaveType: "ANNUAL", StartDate: date(2026, 4, 1), EndDate: date(2026, 4, 1)}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("admin without a record: %v", err)
	}
}

func TestBalancesOverlapsAndDecisions(t *testing.T) {
	f := setup(t)
	a := f.request(t, f.asNurse, "ANNUAL", date(2026, 4, 6), date(2026, 4, 10))
	if a.Days != 5 {
		t.Fatalf("days %d", a.Days)
	}
	b := f.balance(t, f.asNurse, f.nurse, "ANNUAL")
	if *b.Entitled != 21 || b.Taken != 0 || b.Pending != 5 || *b.Remaining != 16 {
		t.Fatalf("after the request: %+v", b)
	}
	// Overlapping an open request of theirs.
	if _, err := f.svc.Request(f.asNurse, RequestLeaveInput{LeaveType: "SICK", StartDate: date(2026, 4, 10), EndDate: date(2026, 4, 11)}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("overlap: %v", err)
	}
	// More than is left (pending counted): 17 days.
	if _, err := f.svc.Request(f.asNurse, RequestLeaveInput{LeaveType: "ANNUAL", StartDate: date(2026, 5, 1), EndDate: date(2026, 5, 17)}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("over the balance: %v", err)
	}
	// UNPAID has no balance: 40 days are fine.
	u := f.request(t, f.asNurse, "UNPAID", date(2026, 6, 1), date(2026, 7, 10))
	if ub := f.balance(t, f.asNurse, f.nurse, "UNPAID"); ub.Entitled != nil || ub.Remaining != nil || ub.Pending != 40 {
		t.Fatalf("unpaid: %+v", ub)
	}
	// A kind absent from the defaults has none.
	if _, err := f.svc.Request(f.asNurse, RequestLeaveInput{LeaveType: "STUDY", StartDate: date(2026, 8, 1), EndDate: date(2026, 8, 1)}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("study without entitlement: %v", err)
	}

	// Who decides: the manager of General Medicine, not HR, not the
	// manager of another department, and nobody their own.
	if _, err := f.svc.Approve(f.asHR, a.ID, nil); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("HR where the department has a manager: %v", err)
	}
	if _, err := f.svc.Approve(f.asOther, a.ID, nil); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("another department's manager: %v", err)
	}
	if _, err := f.svc.Approve(f.asNurse2, a.ID, nil); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("a colleague: %v", err)
	}
	if _, err := f.svc.Approve(f.asNurse, a.ID, nil); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("their own: %v", err)
	}
	if got := f.c.LeaveRequest.GetX(f.sys, a.ID); got.Status != leaverequest.StatusREQUESTED || got.DecidedByID != nil {
		t.Fatalf("a refused decision changed the request: %+v", got)
	}
	d, err := f.svc.Approve(f.asBoss, a.ID, ptr("Enjoy"))
	if err != nil || d.Leave.Status != leaverequest.StatusAPPROVED || *d.Leave.DecidedByID != "usr_"+f.boss.ID || *d.Leave.DecisionNote != "Enjoy" {
		t.Fatalf("approve: %+v %v", d, err)
	}
	if _, err := f.svc.Approve(f.asBoss, a.ID, nil); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("approve twice: %v", err)
	}
	if _, err := f.svc.Reject(f.asBoss, u.ID, " "); !isBadInput(err, "note") {
		t.Fatalf("reject without a note: %v", err)
	}
	if r, err := f.svc.Reject(f.asBoss, u.ID, "Short-staffed in June"); err != nil || r.Status != leaverequest.StatusREJECTED {
		t.Fatalf("reject: %+v %v", r, err)
	}
	b = f.balance(t, f.asBoss, f.nurse, "ANNUAL")
	if *b.Entitled != 21 || b.Taken != 5 || b.Pending != 0 || *b.Remaining != 16 {
		t.Fatalf("after approval: %+v", b)
	}
	// HR sets an entitlement; the balance follows.
	if _, err := f.svc.SetEntitlement(f.asHR, f.nurse.ID, 2026, "UNPAID", 3); !isBadInput(err, "leaveType") {
		t.Fatalf("entitlement to unpaid: %v", err)
	}
	if _, err := f.svc.SetEntitlement(f.asHR, f.hr.ID, 2026, "ANNUAL", 30); !isBadInput(err, "staffId") {
		t.Fatalf("HR's own entitlement: %v", err)
	}
	if _, err := f.svc.SetEntitlement(f.asBoss, f.nurse.ID, 2026, "ANNUAL", 30); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a manager setting entitlements: %v", err)
	}
	if b, err := f.svc.SetEntitlement(f.asHR, f.nurse.ID, 2026, "ANNUAL", 25); err != nil || *b.Entitled != 25 || *b.Remaining != 20 {
		t.Fatalf("set entitlement: %+v %v", b, err)
	}
	if b, err := f.svc.SetEntitlement(f.asHR, f.nurse.ID, 2026, "ANNUAL", 24); err != nil || *b.Entitled != 24 {
		t.Fatalf("set it again: %+v %v", b, err)
	}
	if n := f.c.LeaveEntitlement.Query().CountX(f.sys); n != 1 {
		t.Fatalf("%d entitlement rows", n)
	}
	// Who reads balances: themselves, their manager, HR; not a colleague
	// or another department's manager.
	for name, ctx := range map[string]context.Context{"colleague": f.asNurse2, "other manager": f.asOther, "clerk": f.asClerk} {
		if _, err := f.svc.Balances(ctx, f.nurse.ID, 2026); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("%s reads the nurse's balances: %v", name, err)
		}
	}
	if _, err := f.svc.Balances(f.asHR, f.nurse.ID, 2026); err != nil {
		t.Fatal(err)
	}
	mine, err := f.svc.Mine(f.asNurse, 2026)
	if err != nil || len(mine) != 7 {
		t.Fatalf("my balances: %d %v", len(mine), err)
	}
}

// A manager's own leave, and leave in a department without a manager, is
// HR's to decide.
func TestHRDecidesWithoutAManager(t *testing.T) {
	f := setup(t)
	own := f.request(t, f.asBoss, "ANNUAL", date(2026, 4, 6), date(2026, 4, 6))
	if _, err := f.svc.Approve(f.asBoss, own.ID, nil); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a manager approving their own: %v", err)
	}
	if _, err := f.svc.Approve(f.asHR, own.ID, nil); err != nil {
		t.Fatalf("HR approving a manager's: %v", err)
	}
	clerk := f.request(t, f.asClerk, "ANNUAL", date(2026, 4, 6), date(2026, 4, 6))
	if _, err := f.svc.Approve(f.asBoss, clerk.ID, nil); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("a manager of another department: %v", err)
	}
	if _, err := f.svc.Reject(f.asHR, clerk.ID, "No"); err != nil {
		t.Fatalf("HR rejecting where there is no manager: %v", err)
	}
	hrs := f.request(t, f.asHR, "ANNUAL", date(2026, 4, 6), date(2026, 4, 6))
	if _, err := f.svc.Approve(f.asHR, hrs.ID, nil); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("HR approving their own: %v", err)
	}
}

// Approval lays time off over the whole local days, takes the person off
// the roster in those days, and lists the appointments to rebook without
// refusing because of them; cancelling before the start removes the time
// off.
func TestApprovalBlocksTheDays(t *testing.T) {
	f := setup(t)
	sys := f.sys
	entry := func(d time.Time) *ent.RosterEntry {
		start := time.Date(d.Year(), d.Month(), d.Day(), 8, 0, 0, 0, nairobi)
		return f.c.RosterEntry.Create().SetStaffID(f.nurse.ID).SetDepartmentID(f.gen.ID).SetShiftID(f.shift.ID).SetDate(d).
			SetStartAt(start.UTC()).SetEndAt(start.Add(8 * time.Hour).UTC()).SetAssignedByID("usr_x").SaveX(sys)
	}
	before, in1, in2, after := entry(date(2026, 4, 5)), entry(date(2026, 4, 6)), entry(date(2026, 4, 7)), entry(date(2026, 4, 8))
	p := f.c.Patient.Create().SetMrn("100000009").SetGivenName("P").SetFamilyName("Q").
		SetBirthDate(date(1990, 1, 1)).SetSex(patient.SexOTHER).SaveX(sys)
	book := func(at time.Time) *ent.Appointment {
		return f.c.Appointment.Create().SetPatientID(p.ID).SetProviderID(f.nurse.ID).SetDepartmentID(f.gen.ID).
			SetStartAt(at.UTC()).SetEndAt(at.Add(30 * time.Minute).UTC()).SaveX(sys)
	}
	// 00:15 local on the first day is still the leave's; 23:45 local
	// the day before is not.
	inside := book(time.Date(2026, 4, 6, 0, 15, 0, 0, nairobi))
	book(time.Date(2026, 4, 5, 23, 15, 0, 0, nairobi))
	cancelled := book(time.Date(2026, 4, 7, 10, 0, 0, 0, nairobi))
	f.c.Appointment.UpdateOne(cancelled).SetStatus("CANCELLED").ExecX(sys)

	r := f.request(t, f.asNurse, "ANNUAL", date(2026, 4, 6), date(2026, 4, 7))
	d, err := f.svc.Approve(f.asBoss, r.ID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.RemovedRosterEntries) != 2 || d.RemovedRosterEntries[0].ID != in1.ID || d.RemovedRosterEntries[1].ID != in2.ID {
		t.Fatalf("removed %+v", d.RemovedRosterEntries)
	}
	left := f.c.RosterEntry.Query().IDsX(sys)
	if len(left) != 2 || !(left[0] == before.ID || left[1] == before.ID) || !(left[0] == after.ID || left[1] == after.ID) {
		t.Fatalf("roster left: %v", left)
	}
	if d.AppointmentsToRebookCount != 1 || len(d.AppointmentsToRebook) != 1 || d.AppointmentsToRebook[0].ID != inside.ID {
		t.Fatalf("to rebook: %d %+v", d.AppointmentsToRebookCount, d.AppointmentsToRebook)
	}
	off := f.c.ProviderTimeOff.Query().Where(providertimeoff.LeaveRequestID(r.ID)).OnlyX(sys)
	if !off.StartAt.Equal(time.Date(2026, 4, 6, 0, 0, 0, 0, nairobi)) || !off.EndAt.Equal(time.Date(2026, 4, 8, 0, 0, 0, 0, nairobi)) {
		t.Fatalf("time off %v–%v", off.StartAt, off.EndAt)
	}
	// Whoever books sees the time taken, not the kind of leave.
	if off.Reason == nil || *off.Reason != "On leave" {
		t.Fatalf("time off says %v", off.Reason)
	}
	// Not the nurse's colleague's to cancel; the nurse's, before it starts.
	if _, err := f.svc.Cancel(f.asNurse2, r.ID); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a colleague cancelling: %v", err)
	}
	if c, err := f.svc.Cancel(f.asNurse, r.ID); err != nil || c.Status != leaverequest.StatusCANCELLED {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	if n := f.c.ProviderTimeOff.Query().CountX(sys); n != 0 {
		t.Fatalf("time off left after cancelling: %d", n)
	}
	if _, err := f.svc.Cancel(f.asNurse, r.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("cancel twice: %v", err)
	}
	// Leave that has started stays.
	s := f.request(t, f.asNurse, "SICK", date(2026, 3, 9), date(2026, 3, 11))
	if _, err := f.svc.Approve(f.asBoss, s.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Cancel(f.asNurse, s.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("cancel started leave: %v", err)
	}
	// A clerk's leave lays no time off: they have no appointments.
	c := f.request(t, f.asClerk, "ANNUAL", date(2026, 5, 4), date(2026, 5, 4))
	if _, err := f.svc.Approve(f.asHR, c.ID, nil); err != nil {
		t.Fatal(err)
	}
	if n := f.c.ProviderTimeOff.Query().CountX(sys); n != 1 {
		t.Fatalf("time off rows %d, want the sick nurse's only", n)
	}
}

// Two approvals racing over one balance: one wins, the balance is never
// overdrawn.
func TestConcurrentApprovalsDoNotOverdraw(t *testing.T) {
	f := setup(t)
	var ids []string
	for i := 0; i < 4; i++ {
		d := date(2026, 4, 6+7*i)
		ids = append(ids, f.request(t, f.asNurse, "ANNUAL", d, d.AddDate(0, 0, 4)).ID)
	}
	// HR lowers the entitlement below what was asked for: 7 days for four
	// requests of 5.
	if _, err := f.svc.SetEntitlement(f.asHR, f.nurse.ID, 2026, "ANNUAL", 7); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ids))
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Approve(f.asBoss, id, nil)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case apperr.CodeOf(err) != apperr.Conflict:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	b := f.balance(t, f.asHR, f.nurse, "ANNUAL")
	if won != 1 || b.Taken != 5 {
		t.Fatalf("%d approvals won, %d days taken of 7", won, b.Taken)
	}
}

// Racing requests for the same days: one is filed.
func TestConcurrentRequestsDoNotOverlap(t *testing.T) {
	f := setup(t)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.svc.Request(f.asNurse, RequestLeaveInput{LeaveType: "ANNUAL", StartDate: date(2026, 4, 6), EndDate: date(2026, 4, 8)})
			if err != nil && apperr.CodeOf(err) != apperr.Conflict {
				t.Errorf("request: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := f.c.LeaveRequest.Query().CountX(f.sys); n != 1 {
		t.Fatalf("%d overlapping requests filed", n)
	}
}

// leaveRequests: HR everyone's, a manager their department's only.
func TestListingIsScoped(t *testing.T) {
	f := setup(t)
	f.request(t, f.asNurse, "ANNUAL", date(2026, 4, 6), date(2026, 4, 6))
	f.request(t, f.asClerk, "ANNUAL", date(2026, 4, 6), date(2026, 4, 6))
	count := func(ctx context.Context, filter RequestFilter) (int, error) {
		q, err := f.svc.List(ctx, filter)
		if err != nil {
			return 0, err
		}
		return q.Count(f.sys)
	}
	if n, err := count(f.asHR, RequestFilter{}); err != nil || n != 2 {
		t.Fatalf("HR: %d %v", n, err)
	}
	if n, err := count(f.asBoss, RequestFilter{}); err != nil || n != 1 {
		t.Fatalf("manager: %d %v", n, err)
	}
	if _, err := count(f.asBoss, RequestFilter{DepartmentID: ptr(f.hr.DepartmentID)}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("manager asking for another department: %v", err)
	}
	if _, err := count(f.asNurse, RequestFilter{}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a nurse listing: %v", err)
	}
	if n, err := count(f.asHR, RequestFilter{From: ptr(date(2026, 4, 7)), To: ptr(date(2026, 4, 30))}); err != nil || n != 0 {
		t.Fatalf("HR, from the 7th: %d %v", n, err)
	}
	if n := f.svc.MyRequests(f.asNurse, nil).CountX(f.sys); n != 1 {
		t.Fatalf("mine: %d", n)
	}
}
