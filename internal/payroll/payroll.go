package payroll

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/attendancerecord"
	"github.com/hmis-dev/hmis/ent/leaverequest"
	"github.com/hmis-dev/hmis/ent/paydeduction"
	"github.com/hmis-dev/hmis/ent/payrollrun"
	"github.com/hmis-dev/hmis/ent/payslip"
	"github.com/hmis-dev/hmis/ent/rosterentry"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/store"
)

// Service computes, approves and pays payroll runs.
type Service struct {
	store *store.Store
	books *ledger.Service
	rules Rules
	loc   *time.Location
	now   func() time.Time
}

// NewService returns a Service posting to books under rules; loc is the
// hospital's time zone, whose months the periods are.
func NewService(st *store.Store, books *ledger.Service, rules Rules, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, books: books, rules: rules, loc: loc, now: time.Now}
}

// MaxDeduction bounds one recorded deduction (100 000 000.00).
const MaxDeduction = int64(10_000_000_000)

var periodPattern = regexp.MustCompile(`^(\d{4})-(0[1-9]|1[0-2])$`)

// period is a pay period: a calendar month. start and end are its first
// and last day as dates (UTC midnight, as the Date scalar stores them);
// from and to the instants its days begin and end in the hospital's zone.
type period struct {
	name       string
	start, end time.Time
	from, to   time.Time
	days       int
}

func (s *Service) parsePeriod(field, p string) (period, error) {
	m := periodPattern.FindStringSubmatch(p)
	if m == nil {
		return period{}, apperr.BadInput(field, "must be a month as YYYY-MM, like 2026-11")
	}
	y, _ := strconv.Atoi(m[1])
	mo, _ := strconv.Atoi(m[2])
	if y < 2000 || y > 2200 {
		return period{}, apperr.BadInput(field, "must be a year from 2000 to 2200")
	}
	start := time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, time.UTC)
	next := start.AddDate(0, 1, 0)
	return period{
		name: p, start: start, end: next.AddDate(0, 0, -1),
		from: time.Date(y, time.Month(mo), 1, 0, 0, 0, 0, s.loc).UTC(),
		to:   time.Date(next.Year(), next.Month(), 1, 0, 0, 0, 0, s.loc).UTC(),
		days: next.AddDate(0, 0, -1).Day(),
	}, nil
}

func lockKey(p string) string { return "payroll:" + p }

// actor is the user who acts: payroll is decided by people in roles
// (payroll, HR, finance) that need not be any particular kind of staff,
// so the login answers for it, as it does for ledger postings.
func actor(ctx context.Context) (string, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.UserID == "" {
		return "", apperr.Denied("payroll needs a signed-in user")
	}
	return v.UserID, nil
}

// Run computes the DRAFT run of period, or computes it again: its payslips
// are replaced whole. An APPROVED or PAID run is refused, as is a month
// that has not begun.
func (s *Service) Run(ctx context.Context, p string) (*ent.PayrollRun, error) {
	per, err := s.parsePeriod("period", p)
	if err != nil {
		return nil, err
	}
	if input.Today(s.now(), s.loc).Before(per.start) {
		return nil, apperr.BadInput("period", "has not begun: a run is computed during its month or after it")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PayrollRun, error) {
		who, err := actor(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, lockKey(p)); err != nil {
			return nil, err
		}
		run, err := tx.PayrollRun.Query().Where(payrollrun.Period(p)).Only(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return nil, err
		}
		if run != nil && run.Status != payrollrun.StatusDRAFT {
			return nil, apperr.Conflictf("the payroll of %s is %s: corrections go into the next period", p, run.Status)
		}
		slips, err := s.compute(ctx, tx, per)
		if err != nil {
			return nil, err
		}
		var t totals
		for _, sl := range slips {
			t.add(sl.Slip)
		}
		at := input.Stored(s.now())
		if run == nil {
			run, err = tx.PayrollRun.Create().SetPeriod(p).SetPeriodStart(per.start).SetPeriodEnd(per.end).
				SetComputedAt(at).SetComputedByID(who).
				SetGrossTotal(t.gross).SetTaxTotal(t.tax).SetDeductionsTotal(t.deductions).SetNetTotal(t.net).Save(ctx)
			if ent.IsConstraintError(err) {
				return nil, apperr.Conflictf("the payroll of %s was created meanwhile; run it again", p)
			}
		} else {
			if _, err := tx.Payslip.Delete().Where(payslip.RunID(run.ID)).Exec(ctx); err != nil {
				return nil, err
			}
			run, err = tx.PayrollRun.UpdateOne(run).Where(payrollrun.StatusEQ(payrollrun.StatusDRAFT)).
				SetComputedAt(at).SetComputedByID(who).
				SetGrossTotal(t.gross).SetTaxTotal(t.tax).SetDeductionsTotal(t.deductions).SetNetTotal(t.net).Save(ctx)
			if ent.IsNotFound(err) {
				return nil, apperr.Conflictf("the payroll of %s was approved meanwhile", p)
			}
		}
		if err != nil {
			return nil, err
		}
		bulk := make([]*ent.PayslipCreate, len(slips))
		for i, sl := range slips {
			bulk[i] = tx.Payslip.Create().SetRunID(run.ID).SetStaffID(sl.staffID).SetPeriod(p).
				SetPayBasis(payslip.PayBasis(sl.in.Basis)).SetPayRate(sl.in.Rate).
				SetWorkedMinutes(sl.in.WorkedMinutes).SetOvertimeMinutes(sl.in.OvertimeMinutes).
				SetNightShifts(sl.in.NightShifts).SetOnCallShifts(sl.in.OnCallShifts).SetUnpaidLeaveDays(sl.in.UnpaidLeaveDays).
				SetBasePay(sl.Base).SetOvertimePay(sl.Overtime).SetNightAllowance(sl.Night).SetOnCallAllowance(sl.OnCall).
				SetUnpaidLeaveDeduction(sl.UnpaidLeave).SetGrossPay(sl.Gross).SetTax(sl.Tax).
				SetOtherDeductions(sl.OtherDeductions).SetNetPay(sl.Net)
		}
		for len(bulk) > 0 {
			n := min(len(bulk), 200)
			if _, err := tx.Payslip.CreateBulk(bulk[:n]...).Save(ctx); err != nil {
				return nil, err
			}
			bulk = bulk[n:]
		}
		return run, nil
	})
}

type totals struct{ gross, tax, deductions, net int64 }

func (t *totals) add(s Slip) {
	t.gross += s.Gross
	t.tax += s.Tax
	t.deductions += s.OtherDeductions
	t.net += s.Net
}

// computed is one member of staff's payslip as computed now.
type computed struct {
	staffID string
	in      Inputs
	Slip
}

// compute computes the payslip of everyone paid in per: staff with pay on
// record employed on at least one day of it (start and end dates), active,
// or inactive with an end date (someone who left; an inactive record
// without an end date says nothing of when they stopped, and is left out).
func (s *Service) compute(ctx context.Context, tx *ent.Tx, per period) ([]computed, error) {
	// A payslip is the same whoever asks for it to be computed: the
	// approver (finance) reads nobody's attendance or leave, and under
	// their row scope every hourly payslip would come out empty and every
	// draft look stale.
	ctx = auth.SystemContext(ctx)
	people, err := tx.Staff.Query().Where(
		staff.PayBasisNotNil(), staff.PayRateNotNil(),
		staff.Or(staff.StartDateIsNil(), staff.StartDateLTE(per.end)),
		staff.Or(staff.EndDateIsNil(), staff.EndDateGTE(per.start)),
		staff.Or(staff.Active(true), staff.EndDateNotNil()),
	).Order(ent.Asc(staff.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	worked := map[string][2]int{}
	records, err := tx.AttendanceRecord.Query().Where(attendancerecord.ClockInAtGTE(per.from),
		attendancerecord.ClockInAtLT(per.to), attendancerecord.ClockOutAtNotNil()).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, r := range records {
		w := worked[r.StaffID]
		worked[r.StaffID] = [2]int{w[0] + r.WorkedMinutes, w[1] + r.OvertimeMinutes}
	}
	entries, err := tx.RosterEntry.Query().Where(rosterentry.DateGTE(per.start), rosterentry.DateLTE(per.end),
		rosterentry.HasShiftWith(shiftdefinition.KindIn(shiftdefinition.KindNIGHT, shiftdefinition.KindON_CALL))).
		WithShift().All(ctx)
	if err != nil {
		return nil, err
	}
	var nightIDs []string
	for _, e := range entries {
		if e.Edges.Shift.Kind == shiftdefinition.KindNIGHT {
			nightIDs = append(nightIDs, e.ID)
		}
	}
	attended := map[string]bool{}
	if len(nightIDs) > 0 {
		ids, err := tx.AttendanceRecord.Query().Where(attendancerecord.RosterEntryIDIn(nightIDs...)).
			Select(attendancerecord.FieldRosterEntryID).Strings(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			attended[id] = true
		}
	}
	nights, onCalls := map[string]int{}, map[string]int{}
	for _, e := range entries {
		switch {
		case e.Edges.Shift.Kind == shiftdefinition.KindON_CALL:
			onCalls[e.StaffID]++
		case attended[e.ID]:
			nights[e.StaffID]++
		}
	}
	leave, err := tx.LeaveRequest.Query().Where(leaverequest.StatusEQ(leaverequest.StatusAPPROVED),
		leaverequest.LeaveTypeEQ(leaverequest.LeaveTypeUNPAID),
		leaverequest.StartDateLTE(per.end), leaverequest.EndDateGTE(per.start)).All(ctx)
	if err != nil {
		return nil, err
	}
	leaveOf := map[string][]*ent.LeaveRequest{}
	for _, l := range leave {
		leaveOf[l.StaffID] = append(leaveOf[l.StaffID], l)
	}
	deductions := map[string]int64{}
	rows, err := tx.PayDeduction.Query().Where(paydeduction.Period(per.name)).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, d := range rows {
		deductions[d.StaffID] += d.Amount
	}
	out := make([]computed, 0, len(people))
	for _, m := range people {
		from, to := per.start, per.end
		if m.StartDate != nil && input.Date(*m.StartDate).After(from) {
			from = input.Date(*m.StartDate)
		}
		if m.EndDate != nil && input.Date(*m.EndDate).Before(to) {
			to = input.Date(*m.EndDate)
		}
		in := Inputs{
			Basis: Basis(*m.PayBasis), Rate: *m.PayRate, DaysInMonth: per.days, EmployedDays: daysBetween(from, to),
			WorkedMinutes: worked[m.ID][0], OvertimeMinutes: worked[m.ID][1],
			NightShifts: nights[m.ID], OnCallShifts: onCalls[m.ID],
			UnpaidLeaveDays: leaveDays(leaveOf[m.ID], from, to), Deductions: deductions[m.ID],
		}
		out = append(out, computed{staffID: m.ID, in: in, Slip: Compute(s.rules, in)})
	}
	return out, nil
}

// daysBetween counts the days from from to to, both included.
func daysBetween(from, to time.Time) int {
	if to.Before(from) {
		return 0
	}
	return int(to.Sub(from).Hours()/24+0.5) + 1
}

// leaveDays counts the days between from and to (inclusive) that approved
// leave covers, each day once however many requests cover it.
func leaveDays(leave []*ent.LeaveRequest, from, to time.Time) int {
	days := map[time.Time]bool{}
	for _, l := range leave {
		for d := input.Date(l.StartDate); !d.After(input.Date(l.EndDate)); d = d.AddDate(0, 0, 1) {
			if !d.Before(from) && !d.After(to) {
				days[d] = true
			}
		}
	}
	return len(days)
}

// lockedRun reads run id, takes its period's lock and reads it again, so
// that what is checked is what the lock holds still.
func (s *Service) lockedRun(ctx context.Context, tx *ent.Tx, id string) (*ent.PayrollRun, error) {
	run, err := tx.PayrollRun.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("payroll run not found")
	} else if err != nil {
		return nil, err
	}
	if err := s.store.Lock(ctx, tx, lockKey(run.Period)); err != nil {
		return nil, err
	}
	return tx.PayrollRun.Get(ctx, id)
}

// Approve makes a DRAFT run final and posts it to the ledger: Dr payroll
// expense (gross) / Cr tax payable, payroll payable (net), deductions
// payable. Whoever computed the run last may not approve it, and a draft
// that no longer matches what it was computed from (attendance, leave or
// deductions recorded since) is refused until computed again, so what is
// approved is what the approver saw.
func (s *Service) Approve(ctx context.Context, id string) (*ent.PayrollRun, error) {
	if err := input.ID("id", id, input.PayrollRun); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PayrollRun, error) {
		who, err := actor(ctx)
		if err != nil {
			return nil, err
		}
		run, err := s.lockedRun(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if run.Status != payrollrun.StatusDRAFT {
			return nil, apperr.Conflictf("the payroll of %s is %s already", run.Period, run.Status)
		}
		if run.ComputedByID == who {
			return nil, apperr.Denied("you computed this payroll run; someone else approves it")
		}
		per, err := s.parsePeriod("id", run.Period)
		if err != nil {
			return nil, err
		}
		if input.Today(s.now(), s.loc).Before(per.end) {
			return nil, apperr.Conflictf("the period %s ends on %s: approve it from that day", run.Period, per.end.Format(time.DateOnly))
		}
		if err := s.checkCurrent(ctx, tx, run, per); err != nil {
			return nil, err
		}
		entry, err := s.books.PayrollApproved(ctx, tx, ledger.PayrollRun{ID: run.ID, Date: per.end,
			Gross: run.GrossTotal, Tax: run.TaxTotal, Deductions: run.DeductionsTotal, Net: run.NetTotal,
			Memo: "Payroll " + run.Period})
		if err != nil {
			return nil, err
		}
		u := tx.PayrollRun.UpdateOne(run).Where(payrollrun.StatusEQ(payrollrun.StatusDRAFT)).
			SetStatus(payrollrun.StatusAPPROVED).SetApprovedByID(who).SetApprovedAt(input.Stored(s.now()))
		if entry != nil {
			u.SetJournalEntryID(entry.ID)
		}
		out, err := u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the payroll run changed meanwhile")
		}
		return out, err
	})
}

// checkCurrent refuses a draft whose payslips differ from what computing
// it now gives.
func (s *Service) checkCurrent(ctx context.Context, tx *ent.Tx, run *ent.PayrollRun, per period) error {
	now, err := s.compute(ctx, tx, per)
	if err != nil {
		return err
	}
	stored, err := tx.Payslip.Query().Where(payslip.RunID(run.ID)).All(auth.SystemContext(ctx))
	if err != nil {
		return err
	}
	byStaff := map[string]*ent.Payslip{}
	for _, p := range stored {
		byStaff[p.StaffID] = p
	}
	stale := len(now) != len(stored)
	for _, c := range now {
		p := byStaff[c.staffID]
		if stale || p == nil || p.GrossPay != c.Gross || p.Tax != c.Tax || p.OtherDeductions != c.OtherDeductions ||
			p.NetPay != c.Net || p.BasePay != c.Base || p.OvertimePay != c.Overtime || p.UnpaidLeaveDeduction != c.UnpaidLeave {
			stale = true
			break
		}
	}
	if stale {
		return apperr.Conflictf("the draft of %s is out of date (attendance, leave, pay or deductions changed since it was computed): run payroll again, then approve", run.Period)
	}
	return nil
}

// MarkPaid records that an APPROVED run's net pay left the bank: Dr payroll
// payable / Cr bank.
func (s *Service) MarkPaid(ctx context.Context, id string) (*ent.PayrollRun, error) {
	if err := input.ID("id", id, input.PayrollRun); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PayrollRun, error) {
		who, err := actor(ctx)
		if err != nil {
			return nil, err
		}
		run, err := s.lockedRun(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if run.Status != payrollrun.StatusAPPROVED {
			return nil, apperr.Conflictf("the payroll of %s is %s; only an APPROVED run is paid", run.Period, run.Status)
		}
		if _, err := s.books.PayrollPaid(ctx, tx, ledger.PayrollRun{ID: run.ID, Net: run.NetTotal,
			Memo: "Payroll " + run.Period + " paid"}); err != nil {
			return nil, err
		}
		out, err := tx.PayrollRun.UpdateOne(run).Where(payrollrun.StatusEQ(payrollrun.StatusAPPROVED)).
			SetStatus(payrollrun.StatusPAID).SetPaidByID(who).SetPaidAt(input.Stored(s.now())).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the payroll run changed meanwhile")
		}
		return out, err
	})
}

// RecordPayDeductionInput is the input of recordPayDeduction.
type RecordPayDeductionInput struct {
	StaffID     string
	Period      string
	Amount      int64
	Description string
}

// RecordDeduction records a deduction from a member of staff's pay in a
// period whose run is not approved yet (none, or a draft, which then needs
// computing again).
func (s *Service) RecordDeduction(ctx context.Context, in RecordPayDeductionInput) (*ent.PayDeduction, error) {
	var c input.Checker
	c.ID("input.staffId", in.StaffID, input.Staff)
	if _, err := s.parsePeriod("input.period", in.Period); err != nil {
		c.Fail(err)
	}
	if c.Err() == nil && (in.Amount <= 0 || in.Amount > MaxDeduction) {
		c.Fail(apperr.BadInput("input.amount", "must be above zero and at most %s", input.FormatMoney(MaxDeduction)))
	}
	in.Description = c.Text("input.description", in.Description, 200)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PayDeduction, error) {
		who, err := actor(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, lockKey(in.Period)); err != nil {
			return nil, err
		}
		exists, err := tx.Staff.Query().Where(staff.ID(in.StaffID)).Exist(ctx)
		if err != nil {
			return nil, err
		}
		if !exists {
			return nil, apperr.BadInput("input.staffId", "names no member of staff")
		}
		if err := openPeriod(ctx, tx, in.Period); err != nil {
			return nil, err
		}
		return tx.PayDeduction.Create().SetStaffID(in.StaffID).SetPeriod(in.Period).SetAmount(in.Amount).
			SetDescription(in.Description).SetRecordedByID(who).Save(ctx)
	})
}

// RemoveDeduction removes a deduction of a period not approved yet.
func (s *Service) RemoveDeduction(ctx context.Context, id string) (string, error) {
	if err := input.ID("id", id, input.PayDeduction); err != nil {
		return "", err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (string, error) {
		if _, err := actor(ctx); err != nil {
			return "", err
		}
		d, err := tx.PayDeduction.Get(ctx, id)
		if ent.IsNotFound(err) {
			return "", apperr.NotFoundf("pay deduction not found")
		} else if err != nil {
			return "", err
		}
		if err := s.store.Lock(ctx, tx, lockKey(d.Period)); err != nil {
			return "", err
		}
		if err := openPeriod(ctx, tx, d.Period); err != nil {
			return "", err
		}
		n, err := tx.PayDeduction.Delete().Where(paydeduction.ID(id)).Exec(ctx)
		if err != nil {
			return "", err
		}
		if n == 0 {
			return "", apperr.NotFoundf("pay deduction not found")
		}
		return id, nil
	})
}

// openPeriod refuses a change to a period whose run is approved or paid.
func openPeriod(ctx context.Context, tx *ent.Tx, p string) error {
	run, err := tx.PayrollRun.Query().Where(payrollrun.Period(p)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case run.Status != payrollrun.StatusDRAFT:
		return apperr.Conflictf("the payroll of %s is %s: corrections go into the next period", p, run.Status)
	}
	return nil
}

// Deductions lists the deductions recorded for a period, by member of
// staff and then as recorded.
func (s *Service) Deductions(ctx context.Context, p string) ([]*ent.PayDeduction, error) {
	if _, err := s.parsePeriod("period", p); err != nil {
		return nil, err
	}
	return s.store.Client.PayDeduction.Query().Where(paydeduction.Period(p)).
		Order(ent.Asc(paydeduction.FieldStaffID), ent.Asc(paydeduction.FieldCreatedAt), ent.Asc(paydeduction.FieldID)).All(ctx)
}

// Mine lists the viewer's own payslips of approved and paid runs, newest
// period first: a draft may still change and is nobody's pay yet.
func (s *Service) Mine(ctx context.Context) ([]*ent.Payslip, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return nil, nil
	}
	return s.store.Client.Payslip.Query().Where(payslip.StaffID(v.StaffID),
		payslip.HasRunWith(payrollrun.StatusIn(payrollrun.StatusAPPROVED, payrollrun.StatusPAID))).
		Order(ent.Desc(payslip.FieldPeriod)).All(ctx)
}

// Carried is what of the deductions recorded for p's member of staff and
// period its pay could not cover; recorded again in a later period if it
// is still owed.
func (s *Service) Carried(ctx context.Context, p *ent.Payslip) (int64, error) {
	rows, err := s.store.Client.PayDeduction.Query().
		Where(paydeduction.StaffID(p.StaffID), paydeduction.Period(p.Period)).All(ctx)
	if err != nil {
		return 0, fmt.Errorf("read deductions: %w", err)
	}
	var sum int64
	for _, d := range rows {
		sum += d.Amount
	}
	return max(sum-p.OtherDeductions, 0), nil
}

// Get is run id, nil if there is none.
func (s *Service) Get(ctx context.Context, id string) (*ent.PayrollRun, error) {
	if err := input.ID("id", id, input.PayrollRun); err != nil {
		return nil, err
	}
	run, err := s.store.Client.PayrollRun.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return run, err
}
