package payroll

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/attendancerecord"
	"github.com/hmis-dev/hmis/ent/journalentry"
	"github.com/hmis-dev/hmis/ent/leaverequest"
	"github.com/hmis-dev/hmis/ent/ledgeraccount"
	"github.com/hmis-dev/hmis/ent/payslip"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc                       *Service
	client                    *ent.Client
	sys                       context.Context
	clerk, hr, finance, admin context.Context
	dep                       string
	night, onCall             string
	// The people of November 2026's examples.
	monthly, hourly, starter, leaver string
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func at(m time.Month, d, h int) time.Time { return time.Date(2026, m, d, h, 0, 0, 0, time.UTC) }

func setup(t *testing.T) *fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	if err := ledger.Seed(sys, c); err != nil {
		t.Fatal(err)
	}
	dep := c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	f := &fixture{client: c, sys: sys, dep: dep.ID}
	as := func(role string) context.Context {
		m := c.Staff.Create().SetGivenName(role).SetFamilyName("User").SetKind(staff.KindADMINISTRATIVE).SetDepartment(dep).SaveX(sys)
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + role, Username: role, Roles: []string{role}, StaffID: m.ID})
	}
	f.clerk, f.hr, f.finance, f.admin = as("payroll"), as("hr"), as("finance_officer"), as("admin")
	f.night = c.ShiftDefinition.Create().SetCode("N").SetName("Night").SetKind(shiftdefinition.KindNIGHT).
		SetStartMinute(20 * 60).SetEndMinute(8 * 60).SaveX(sys).ID
	f.onCall = c.ShiftDefinition.Create().SetCode("OC").SetName("On call").SetKind(shiftdefinition.KindON_CALL).
		SetStartMinute(8 * 60).SetEndMinute(8 * 60).SaveX(sys).ID
	dayShift := c.ShiftDefinition.Create().SetCode("D").SetName("Day").SetKind(shiftdefinition.KindDAY).
		SetStartMinute(8 * 60).SetEndMinute(16 * 60).SaveX(sys).ID

	person := func(name string, basis staff.PayBasis, rate int64, start time.Time, end *time.Time, active bool) string {
		cr := c.Staff.Create().SetGivenName(name).SetFamilyName("Example").SetKind(staff.KindNURSE).SetDepartment(dep).
			SetStartDate(start).SetNillableEndDate(end).SetActive(active)
		if basis != "" {
			cr.SetPayBasis(basis).SetPayRate(rate)
		}
		return cr.SaveX(sys).ID
	}
	ptr := func(t time.Time) *time.Time { return &t }
	f.monthly = person("Monthly", staff.PayBasisMONTHLY, 12_000_000, day(2020, 1, 1), nil, true)
	f.hourly = person("Hourly", staff.PayBasisHOURLY, 85_050, day(2025, 1, 1), nil, true)
	f.starter = person("Starter", staff.PayBasisMONTHLY, 6_000_000, day(2026, 11, 24), nil, true)
	f.leaver = person("Leaver", staff.PayBasisMONTHLY, 3_000_000, day(2024, 1, 1), ptr(day(2026, 11, 10)), false)
	// Not paid in November: no pay on record, left in October, inactive
	// without an end date, starting in December.
	person("Volunteer", "", 0, day(2020, 1, 1), nil, true)
	person("Gone", staff.PayBasisMONTHLY, 1_000_000, day(2020, 1, 1), ptr(day(2026, 10, 31)), false)
	person("Inactive", staff.PayBasisMONTHLY, 1_000_000, day(2020, 1, 1), nil, false)
	person("December", staff.PayBasisMONTHLY, 1_000_000, day(2026, 12, 1), nil, true)

	roster := func(who, shift string, d int) string {
		return c.RosterEntry.Create().SetStaffID(who).SetDepartmentID(dep.ID).SetShiftID(shift).SetDate(day(2026, 11, d)).
			SetStartAt(at(11, d, 8)).SetEndAt(at(11, d, 16)).SetAssignedByID("usr_hr").SaveX(sys).ID
	}
	attend := func(who string, rosterEntry *string, in time.Time, out *time.Time, worked, overtime int) {
		c.AttendanceRecord.Create().SetStaffID(who).SetNillableRosterEntryID(rosterEntry).SetClockInAt(in).
			SetNillableClockOutAt(out).SetClockInSource(attendancerecord.ClockInSourceSELF).
			SetWorkedMinutes(worked).SetOvertimeMinutes(overtime).SaveX(sys)
	}
	// The monthly nurse: two nights rostered, one attended (10 h, 1 h
	// overtime); one on-call shift; a day shift, which pays nothing extra.
	attended := roster(f.monthly, f.night, 3)
	roster(f.monthly, f.night, 10)
	roster(f.monthly, f.onCall, 20)
	roster(f.monthly, dayShift, 21)
	attend(f.monthly, &attended, at(11, 3, 20), ptr(at(11, 4, 6)), 600, 60)
	// The hourly nurse: 480 + 540 minutes in November, 60 of them
	// overtime; a stretch in October, one in December and one never
	// clocked out are not November's pay.
	attend(f.hourly, nil, at(11, 2, 8), ptr(at(11, 2, 16)), 480, 0)
	attend(f.hourly, nil, at(11, 5, 8), ptr(at(11, 5, 17)), 540, 60)
	attend(f.hourly, nil, at(10, 31, 8), ptr(at(10, 31, 16)), 480, 0)
	attend(f.hourly, nil, at(12, 1, 8), ptr(at(12, 1, 16)), 480, 0)
	attend(f.hourly, nil, at(11, 7, 8), nil, 0, 0)
	// Unpaid leave of the monthly nurse: 11–13 and 13–14 November
	// approved (4 days, the 13th once); a request not decided and annual
	// leave take nothing.
	leave := func(typ leaverequest.LeaveType, status leaverequest.Status, from, to int) {
		c.LeaveRequest.Create().SetStaffID(f.monthly).SetLeaveType(typ).SetStatus(status).
			SetStartDate(day(2026, 11, from)).SetEndDate(day(2026, 11, to)).SetDays(to - from + 1).SaveX(sys)
	}
	leave(leaverequest.LeaveTypeUNPAID, leaverequest.StatusAPPROVED, 11, 13)
	leave(leaverequest.LeaveTypeUNPAID, leaverequest.StatusAPPROVED, 13, 14)
	leave(leaverequest.LeaveTypeUNPAID, leaverequest.StatusREQUESTED, 24, 25)
	leave(leaverequest.LeaveTypeANNUAL, leaverequest.StatusAPPROVED, 26, 27)

	f.svc = NewService(st, ledger.NewService(st, time.UTC), rules, time.UTC)
	f.svc.now = func() time.Time { return time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC) }
	return f
}

func (f *fixture) deduct(t *testing.T, ctx context.Context, who string, amount int64) *ent.PayDeduction {
	t.Helper()
	d, err := f.svc.RecordDeduction(ctx, RecordPayDeductionInput{StaffID: who, Period: "2026-11", Amount: amount, Description: "Loan repayment"})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (f *fixture) slips(t *testing.T, runID string) map[string]*ent.Payslip {
	t.Helper()
	out := map[string]*ent.Payslip{}
	for _, p := range f.client.Payslip.Query().Where(payslip.RunID(runID)).AllX(f.sys) {
		out[p.StaffID] = p
	}
	return out
}

func code(err error) apperr.Code { return apperr.CodeOf(err) }

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

// TestRunPayrollFromRecords: November 2026 computed from the records the
// rosters, attendance and leave keep, by hand:
//
// Monthly (120000.00): base 12 000 000; overtime 60 min × 12 000 000 × 12 × 150
// / (60 × 100 × 52 × 40) = 103 846.15 → 103 846; one attended night 150 000; one
// on-call 100 000; 4 unpaid days 12 000 000 × 4 / 30 = 1 600 000; gross
// 10 753 846; tax 240 000 + 208 325 + (10 753 846 − 3 233 300) × 30 % = 2 704 488.8
// → 2 704 489; deduction 50 000; net 7 999 357.
//
// Hourly (850.50): ordinary 960 min = 16 h × 85 050 = 1 360 800; overtime 60 ×
// 85 050 × 150 / 6000 = 127 575; gross 1 488 375; tax 10 % = 148 837.5 → 148 838;
// net 1 339 537.
//
// Starter (60000.00 from the 24th): 6 000 000 × 7 / 30 = 1 400 000; tax 140 000;
// net 1 260 000.
//
// Leaver (30000.00 to the 10th): 3 000 000 × 10 / 30 = 1 000 000; tax 100 000;
// deductions of 1 200 000 take the 900 000 left, 300 000 carried; net 0.
func TestRunPayrollFromRecords(t *testing.T) {
	f := setup(t)
	f.deduct(t, f.clerk, f.monthly, 50_000)
	f.deduct(t, f.hr, f.leaver, 1_200_000)
	run, err := f.svc.Run(f.clerk, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != "DRAFT" || run.ComputedByID != "usr_payroll" || !run.PeriodStart.Equal(day(2026, 11, 1)) || !run.PeriodEnd.Equal(day(2026, 11, 30)) {
		t.Fatalf("run: %+v", run)
	}
	slips := f.slips(t, run.ID)
	if len(slips) != 4 {
		t.Fatalf("%d payslips, want the 4 people paid in November: %v", len(slips), slips)
	}
	type want struct {
		worked, overtime, nights, onCalls, unpaidDays                    int
		base, ot, night, onCall, unpaid, gross, tax, other, net, carried int64
	}
	for who, w := range map[string]want{
		f.monthly: {600, 60, 1, 1, 4, 12_000_000, 103_846, 150_000, 100_000, 1_600_000, 10_753_846, 2_704_489, 50_000, 7_999_357, 0},
		f.hourly:  {1020, 60, 0, 0, 0, 1_360_800, 127_575, 0, 0, 0, 1_488_375, 148_838, 0, 1_339_537, 0},
		f.starter: {0, 0, 0, 0, 0, 1_400_000, 0, 0, 0, 0, 1_400_000, 140_000, 0, 1_260_000, 0},
		f.leaver:  {0, 0, 0, 0, 0, 1_000_000, 0, 0, 0, 0, 1_000_000, 100_000, 900_000, 0, 300_000},
	} {
		p := slips[who]
		if p == nil {
			t.Fatalf("no payslip for %s", who)
		}
		got := want{p.WorkedMinutes, p.OvertimeMinutes, p.NightShifts, p.OnCallShifts, p.UnpaidLeaveDays,
			p.BasePay, p.OvertimePay, p.NightAllowance, p.OnCallAllowance, p.UnpaidLeaveDeduction, p.GrossPay, p.Tax,
			p.OtherDeductions, p.NetPay, 0}
		carried, err := f.svc.Carried(f.sys, p)
		if err != nil {
			t.Fatal(err)
		}
		got.carried = carried
		if got != w || p.Period != "2026-11" {
			t.Errorf("%s:\ngot  %+v\nwant %+v", who, got, w)
		}
	}
	if run.GrossTotal != 14_642_221 || run.TaxTotal != 3_093_327 || run.DeductionsTotal != 950_000 || run.NetTotal != 10_598_894 {
		t.Errorf("totals: %d %d %d %d", run.GrossTotal, run.TaxTotal, run.DeductionsTotal, run.NetTotal)
	}
}

// TestRunAgainReplacesTheDraft: a draft computed again is the same run
// with payslips computed afresh, and picks up what changed.
func TestRunAgainReplacesTheDraft(t *testing.T) {
	f := setup(t)
	first, err := f.svc.Run(f.clerk, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	d := f.deduct(t, f.hr, f.starter, 60_000)
	second, err := f.svc.Run(f.hr, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	slips := f.slips(t, second.ID)
	if second.ID != first.ID || second.ComputedByID != "usr_hr" || len(slips) != 4 ||
		slips[f.starter].OtherDeductions != 60_000 || second.DeductionsTotal != 60_000 {
		t.Fatalf("recomputed: %+v, %+v", second, slips[f.starter])
	}
	if n := f.client.Payslip.Query().CountX(f.sys); n != 4 {
		t.Fatalf("%d payslips kept, want 4", n)
	}
	if _, err := f.svc.RemoveDeduction(f.clerk, d.ID); err != nil {
		t.Fatal(err)
	}
	third, err := f.svc.Run(f.clerk, "2026-11")
	if err != nil || third.DeductionsTotal != 0 {
		t.Fatalf("after removing the deduction: %+v, %v", third, err)
	}
}

// TestApproveAndPay walks DRAFT → APPROVED → PAID with its refusals, its
// journal entries, and the immutability of the approved run.
func TestApproveAndPay(t *testing.T) {
	f := setup(t)
	f.deduct(t, f.clerk, f.monthly, 50_000)
	f.deduct(t, f.clerk, f.leaver, 1_200_000)
	run, err := f.svc.Run(f.clerk, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	// Four eyes: whoever computed it does not approve it.
	if _, err := f.svc.Approve(f.clerk, run.ID); code(err) != apperr.Forbidden {
		t.Fatalf("approved by who computed it: %v", err)
	}
	// A draft out of date with its records is refused until computed again.
	extra := f.deduct(t, f.hr, f.hourly, 10_000)
	if _, err := f.svc.Approve(f.finance, run.ID); code(err) != apperr.Conflict {
		t.Fatalf("approved a stale draft: %v", err)
	}
	if _, err := f.svc.RemoveDeduction(f.hr, extra.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.MarkPaid(f.clerk, run.ID); code(err) != apperr.Conflict {
		t.Fatalf("paid a draft: %v", err)
	}
	approved, err := f.svc.Approve(f.finance, run.ID)
	if err != nil {
		t.Fatal(err)
	}
	if approved.Status != "APPROVED" || approved.ApprovedByID == nil || *approved.ApprovedByID != "usr_finance_officer" || approved.JournalEntryID == nil {
		t.Fatalf("approved: %+v", approved)
	}
	// One balanced entry: Dr expense 14 642 221 / Cr tax 3 093 327, payroll
	// payable 10 598 894, deductions payable 950 000, dated the period's end.
	checkEntry(t, f, *approved.JournalEntryID, day(2026, 11, 30), map[string][2]int64{
		ledger.PayrollExpense: {14_642_221, 0}, ledger.TaxPayable: {0, 3_093_327},
		ledger.PayrollPayable: {0, 10_598_894}, ledger.DeductionsPayable: {0, 950_000},
	})

	// Immutable: computing, approving again, recording or removing a
	// deduction are refused and change nothing.
	before := f.slips(t, run.ID)
	deductionsBefore := f.client.PayDeduction.Query().CountX(f.sys)
	if _, err := f.svc.Run(f.clerk, "2026-11"); code(err) != apperr.Conflict {
		t.Fatalf("recomputed an approved run: %v", err)
	}
	if _, err := f.svc.Approve(f.hr, run.ID); code(err) != apperr.Conflict {
		t.Fatalf("approved twice: %v", err)
	}
	if _, err := f.svc.RecordDeduction(f.hr, RecordPayDeductionInput{StaffID: f.monthly, Period: "2026-11", Amount: 1, Description: "Late"}); code(err) != apperr.Conflict {
		t.Fatalf("deduction into an approved period: %v", err)
	}
	some := f.client.PayDeduction.Query().FirstX(f.sys)
	if _, err := f.svc.RemoveDeduction(f.hr, some.ID); code(err) != apperr.Conflict {
		t.Fatalf("removed a deduction of an approved period: %v", err)
	}
	after := f.slips(t, run.ID)
	for who, p := range before {
		q := after[who]
		if q == nil || q.ID != p.ID || q.NetPay != p.NetPay || q.GrossPay != p.GrossPay || !q.UpdatedAt.Equal(p.UpdatedAt) {
			t.Fatalf("payslip of %s changed: %+v → %+v", who, p, q)
		}
	}
	if len(after) != len(before) || f.client.PayDeduction.Query().CountX(f.sys) != deductionsBefore {
		t.Fatal("an approved period's rows changed")
	}
	// Corrections go into the next period, which is open.
	if _, err := f.svc.RecordDeduction(f.hr, RecordPayDeductionInput{StaffID: f.leaver, Period: "2026-12", Amount: 300_000, Description: "Carried from 2026-11"}); err != nil {
		t.Fatalf("deduction into the next period: %v", err)
	}

	paid, err := f.svc.MarkPaid(f.clerk, run.ID)
	if err != nil || paid.Status != "PAID" || paid.PaidByID == nil || *paid.PaidByID != "usr_payroll" {
		t.Fatalf("paid: %+v, %v", paid, err)
	}
	pay := f.client.JournalEntry.Query().Where(journalentry.SourceType("PAYROLL_PAYMENT"), journalentry.SourceID(run.ID)).OnlyX(f.sys)
	checkEntry(t, f, pay.ID, time.Time{}, map[string][2]int64{ledger.PayrollPayable: {10_598_894, 0}, ledger.Bank: {0, 10_598_894}})
	if _, err := f.svc.MarkPaid(f.clerk, run.ID); code(err) != apperr.Conflict {
		t.Fatalf("paid twice: %v", err)
	}
	if _, err := f.svc.Approve(f.hr, run.ID); code(err) != apperr.Conflict {
		t.Fatalf("approved a paid run: %v", err)
	}
	if n := f.client.JournalEntry.Query().Where(journalentry.SourceIDEQ(run.ID)).CountX(f.sys); n != 2 {
		t.Fatalf("%d journal entries for the run, want 2", n)
	}
}

// checkEntry checks an entry's lines by account code, that it balances,
// and its date unless zero.
func checkEntry(t *testing.T, f *fixture, id string, date time.Time, want map[string][2]int64) {
	t.Helper()
	e := f.client.JournalEntry.Query().Where(journalentry.ID(id)).WithLines().OnlyX(f.sys)
	if !date.IsZero() && !e.EntryDate.Equal(date) {
		t.Errorf("entry dated %s, want %s", e.EntryDate, date)
	}
	var debits, credits int64
	got := map[string][2]int64{}
	for _, l := range e.Edges.Lines {
		a := f.client.LedgerAccount.Query().Where(ledgeraccount.ID(l.AccountID)).OnlyX(f.sys)
		got[a.Code] = [2]int64{got[a.Code][0] + l.Debit, got[a.Code][1] + l.Credit}
		debits += l.Debit
		credits += l.Credit
	}
	if debits != credits || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("entry lines %v (debits %d, credits %d), want %v", got, debits, credits, want)
	}
}

// TestApproveOnlyOnceTheMonthEnds: a draft of the current month may be
// computed, not approved before its last day.
func TestApproveOnlyOnceTheMonthEnds(t *testing.T) {
	f := setup(t)
	run, err := f.svc.Run(f.clerk, "2026-12")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Approve(f.hr, run.ID); code(err) != apperr.Conflict {
		t.Fatalf("approved before the month ended: %v", err)
	}
	f.svc.now = func() time.Time { return time.Date(2026, 12, 31, 9, 0, 0, 0, time.UTC) }
	if _, err := f.svc.Run(f.clerk, "2026-12"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Approve(f.hr, run.ID); err != nil {
		t.Fatalf("approve on the last day: %v", err)
	}
}

// TestBadInputNamesTheFieldAndWritesNothing.
func TestBadInputNamesTheFieldAndWritesNothing(t *testing.T) {
	f := setup(t)
	for _, p := range []string{"", "2026-13", "2026-1", "26-11", "2026-11-01", "1999-12"} {
		if _, err := f.svc.Run(f.clerk, p); !isBadInput(err, "period") {
			t.Errorf("period %q: %v", p, err)
		}
	}
	if _, err := f.svc.Run(f.clerk, "2027-01"); !isBadInput(err, "period") {
		t.Errorf("a month not begun: %v", err)
	}
	good := RecordPayDeductionInput{StaffID: f.monthly, Period: "2026-11", Amount: 100, Description: "Union fee"}
	for field, change := range map[string]func(*RecordPayDeductionInput){
		"input.staffId":     func(in *RecordPayDeductionInput) { in.StaffID = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" },
		"input.period":      func(in *RecordPayDeductionInput) { in.Period = "November" },
		"input.amount":      func(in *RecordPayDeductionInput) { in.Amount = 0 },
		"input.description": func(in *RecordPayDeductionInput) { in.Description = "  " },
	} {
		in := good
		change(&in)
		if _, err := f.svc.RecordDeduction(f.clerk, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	in := good
	in.StaffID = "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV"
	if _, err := f.svc.RecordDeduction(f.clerk, in); !isBadInput(err, "input.staffId") {
		t.Errorf("unknown staff: %v", err)
	}
	if _, err := f.svc.RecordDeduction(f.clerk, good); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"approve":   second(f.svc.Approve(f.hr, "bad")),
		"pay":       second(f.svc.MarkPaid(f.hr, "psl_01ARZ3NDEKTSV4RRFFQ69G5FAV")),
		"remove":    second(f.svc.RemoveDeduction(f.hr, "prn_01ARZ3NDEKTSV4RRFFQ69G5FAV")),
		"anonymous": second(f.svc.Run(context.Background(), "2026-11")),
	} {
		if name == "anonymous" {
			if code(err) != apperr.Forbidden {
				t.Errorf("%s: %v", name, err)
			}
		} else if !isBadInput(err, "id") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := f.svc.Approve(f.hr, "prn_01ARZ3NDEKTSV4RRFFQ69G5FAV"); code(err) != apperr.NotFound {
		t.Errorf("approve a run that does not exist: %v", err)
	}
	if n := f.client.PayrollRun.Query().CountX(f.sys); n != 0 || f.client.PayDeduction.Query().CountX(f.sys) != 1 {
		t.Fatalf("refused input wrote: %d runs", n)
	}
}

func second[T any](_ T, err error) error { return err }

// TestConcurrentRunsMakeOneRun: racing computations of one period leave
// one run whose totals are its payslips'.
func TestConcurrentRunsMakeOneRun(t *testing.T) {
	f := setup(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := f.clerk
			if i%2 == 1 {
				ctx = f.hr
			}
			_, err := f.svc.Run(ctx, "2026-11")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		// A loser of the race for the first insert is told so; nothing else.
		if err != nil && code(err) != apperr.Conflict {
			t.Fatalf("racing run: %v", err)
		}
	}
	runs := f.client.PayrollRun.Query().AllX(f.sys)
	if len(runs) != 1 {
		t.Fatalf("%d runs of one period", len(runs))
	}
	slips := f.client.Payslip.Query().AllX(f.sys)
	var gross, net int64
	for _, p := range slips {
		gross += p.GrossPay
		net += p.NetPay
	}
	if len(slips) != 4 || gross != runs[0].GrossTotal || net != runs[0].NetTotal {
		t.Fatalf("%d payslips, gross %d net %d; run %+v", len(slips), gross, net, runs[0])
	}
}

// TestConcurrentDeductionAndApproval: a deduction racing the approval
// either lands before it (and the stale draft is refused) or is refused
// after it; never both in an approved period.
func TestConcurrentDeductionAndApproval(t *testing.T) {
	f := setup(t)
	run, err := f.svc.Run(f.clerk, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var approveErr, deductErr error
	wg.Add(2)
	go func() { defer wg.Done(); _, approveErr = f.svc.Approve(f.finance, run.ID) }()
	go func() {
		defer wg.Done()
		_, deductErr = f.svc.RecordDeduction(f.hr, RecordPayDeductionInput{StaffID: f.monthly, Period: "2026-11", Amount: 1000, Description: "Fee"})
	}()
	wg.Wait()
	if (approveErr == nil) == (deductErr == nil) {
		t.Fatalf("approval %v, deduction %v: exactly one should win", approveErr, deductErr)
	}
}

// TestMine: a member of staff reads their own payslips of approved runs.
func TestMine(t *testing.T) {
	f := setup(t)
	mine := auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_m", Roles: []string{"nurse"}, StaffID: f.monthly})
	run, err := f.svc.Run(f.clerk, "2026-11")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.svc.Mine(mine); err != nil || len(got) != 0 {
		t.Fatalf("a draft's payslip shown: %v %v", got, err)
	}
	if _, err := f.svc.Approve(f.hr, run.ID); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Mine(mine)
	if err != nil || len(got) != 1 || got[0].StaffID != f.monthly || got[0].NetPay != 8_049_357 {
		t.Fatalf("own payslips: %+v %v", got, err)
	}
	if got, err := f.svc.Mine(context.Background()); err != nil || got != nil {
		t.Fatalf("anonymous: %v %v", got, err)
	}
}
