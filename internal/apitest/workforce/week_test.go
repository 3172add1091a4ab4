// Package workforce tests the staff issue's whole story through the API, as
// HR's, a department head's, payroll's and every member of staff's
// frontends drive it: a rostered week the doctor's slots follow, a leave
// that blocks them, clocking in and out, and a month's payroll approved,
// posted and read by each member of staff.
package workforce

import (
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const (
	createShift = `mutation($in: CreateShiftDefinitionInput!) { createShiftDefinition(input: $in) { id } }`
	assign      = `mutation($in: AssignShiftsInput!) { assignShifts(input: $in) { id date startAt endAt } }`
	slotsQuery  = `query($in: AvailableSlotsInput!) { availableSlots(input: $in) { start } }`
	payslipBits = `id period payBasis workedMinutes overtimeMinutes basePay overtimePay grossPay tax netPay staff { id }`
)

func shiftID(t *testing.T, s *harness.Server, code, start, end string) string {
	t.Helper()
	var out struct{ CreateShiftDefinition struct{ ID string } }
	s.As("hr", createShift, map[string]any{"in": map[string]any{"code": code, "name": code, "kind": "DAY", "startTime": start, "endTime": end}}).
		Decode(t, &out)
	return out.CreateShiftDefinition.ID
}

func roster(t *testing.T, s *harness.Server, departmentID, staffID, shift string, days ...time.Time) int {
	t.Helper()
	entries := make([]map[string]any, len(days))
	for i, d := range days {
		entries[i] = map[string]any{"staffId": staffID, "shiftId": shift, "date": d.Format(time.DateOnly)}
	}
	var out struct{ AssignShifts []struct{ ID string } }
	s.As("hr", assign, map[string]any{"in": map[string]any{"departmentId": departmentID, "entries": entries}}).Decode(t, &out)
	return len(out.AssignShifts)
}

func slotsOn(t *testing.T, s *harness.Server, providerID string, day time.Time) []string {
	t.Helper()
	var out struct{ AvailableSlots []struct{ Start string } }
	s.As("reception", slotsQuery, map[string]any{"in": map[string]any{"providerId": providerID,
		"from": day.Format(time.RFC3339), "to": day.AddDate(0, 0, 1).Format(time.RFC3339), "durationMinutes": 60}}).Decode(t, &out)
	starts := make([]string, len(out.AvailableSlots))
	for i, sl := range out.AvailableSlots {
		starts[i] = sl.Start[11:16]
	}
	return starts
}

func book(s *harness.Server, patientID, providerID string, start time.Time) harness.Response {
	return s.As("reception", harness.BookMutation, harness.BookingInput(patientID, providerID,
		start.Format(time.RFC3339), start.Add(30*time.Minute).Format(time.RFC3339)))
}

// TestAStaffWeekFromRosterToPayslips is issue #14's Done-when, in the test
// server's time zone (UTC).
func TestAStaffWeekFromRosterToPayslips(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	now := time.Now().UTC()
	today := now.Truncate(24 * time.Hour)
	day := shiftID(t, s, "D", "08:00", "16:00")

	// HR rosters the doctor on days, Monday to Friday of a week ahead.
	monday := today.AddDate(0, 0, 7)
	for monday.Weekday() != time.Monday {
		monday = monday.AddDate(0, 0, 1)
	}
	var week []time.Time
	for i := range 5 {
		week = append(week, monday.AddDate(0, 0, i))
	}
	harness.Must(t, roster(t, s, d.General, d.Doctor, day, week...) == 5, "the doctor's week was not rostered")
	wednesday, saturday := monday.AddDate(0, 0, 2), monday.AddDate(0, 0, 5)

	// The doctor's slots are the roster's hours, and none on the weekend.
	eight := "08:00 09:00 10:00 11:00 12:00 13:00 14:00 15:00"
	harness.Must(t, fmt.Sprint(slotsOn(t, s, d.Doctor, monday)) == "["+eight+"]", "Monday's slots: %v", slotsOn(t, s, d.Doctor, monday))
	harness.Must(t, len(slotsOn(t, s, d.Doctor, saturday)) == 0, "Saturday's slots: %v", slotsOn(t, s, d.Doctor, saturday))
	r := book(s, d.Patients[1], d.Doctor, saturday.Add(9*time.Hour))
	harness.Must(t, r.HasCode("CONFLICT"), "booking the doctor on a day off: %s", harness.Describe(r))
	r = book(s, d.Patients[1], d.Doctor, wednesday.Add(9*time.Hour))
	harness.Must(t, len(r.Errors) == 0, "booking inside the roster: %s", harness.Describe(r))

	// The doctor asks for Wednesday off; their department's head approves.
	var asked struct{ RequestLeave struct{ ID, Status string } }
	s.As("doctor", `mutation($d: Date!) { requestLeave(input: {leaveType: ANNUAL, startDate: $d, endDate: $d, reason: "Conference"}) { id status } }`,
		map[string]any{"d": wednesday.Format(time.DateOnly)}).Decode(t, &asked)
	var decided struct {
		ApproveLeave struct {
			Leave                     struct{ Status string }
			RemovedRosterEntries      []struct{ Date string }
			AppointmentsToRebookCount int
		}
	}
	s.As("manager", `mutation($id: ID!) { approveLeave(id: $id, note: "Covered") { leave { status } removedRosterEntries { date } appointmentsToRebookCount } }`,
		map[string]any{"id": asked.RequestLeave.ID}).Decode(t, &decided)
	a := decided.ApproveLeave
	harness.Must(t, a.Leave.Status == "APPROVED" && len(a.RemovedRosterEntries) == 1 &&
		a.RemovedRosterEntries[0].Date == wednesday.Format(time.DateOnly) && a.AppointmentsToRebookCount == 1,
		"approval: %+v", a)
	// Payroll needs the kind of leave (unpaid leave is deducted), not why;
	// nor does the administrator.
	for _, who := range []string{"payroll", "admin"} {
		r = s.As(who, `query($id: ID!) { node(id: $id) { ... on LeaveRequest { leaveType reason } } }`, map[string]any{"id": asked.RequestLeave.ID})
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN" && r.Errors[0].Path[len(r.Errors[0].Path)-1] == "reason",
			"%s reading why the doctor is away: %s", who, harness.Describe(r))
	}
	// Wednesday has no slots and takes no new booking; Thursday is untouched.
	harness.Must(t, len(slotsOn(t, s, d.Doctor, wednesday)) == 0, "Wednesday's slots on leave: %v", slotsOn(t, s, d.Doctor, wednesday))
	r = book(s, d.Patients[2], d.Doctor, wednesday.Add(11*time.Hour))
	harness.Must(t, r.HasCode("CONFLICT"), "booking the doctor on leave: %s", harness.Describe(r))
	harness.Must(t, fmt.Sprint(slotsOn(t, s, d.Doctor, wednesday.AddDate(0, 0, 1))) == "["+eight+"]", "Thursday's slots changed")
	var balances struct {
		MyLeaveBalances []struct {
			LeaveType string
			Taken     int
			Remaining *int
		}
	}
	s.As("doctor", `query($y: Int!) { myLeaveBalances(year: $y) { leaveType taken remaining } }`,
		map[string]any{"y": wednesday.Year()}).Decode(t, &balances)
	annual := false
	for _, b := range balances.MyLeaveBalances {
		if b.LeaveType == "ANNUAL" {
			annual = b.Taken == 1 && b.Remaining != nil && *b.Remaining == 20
		}
	}
	harness.Must(t, annual, "annual leave after one day: %+v", balances)

	// The nurse is on a shift that began an hour ago, clocks in late and
	// leaves early; the doctor does not see it among their own.
	began := now.Add(-time.Hour).Truncate(time.Minute)
	current := shiftID(t, s, "NOW", began.Format("15:04"), began.Add(8*time.Hour).Format("15:04"))
	harness.Must(t, roster(t, s, d.General, d.Nurse, current, began.Truncate(24*time.Hour)) == 1, "the nurse's shift was not rostered")
	type record struct {
		ID                             string
		ClockOutAt                     *string
		LateMinutes, EarlyLeaveMinutes int
		RosterEntry                    *struct{ ID string }
	}
	var in struct{ ClockIn record }
	s.As("nurse", `mutation { clockIn(note: "Bus was late") { id clockOutAt lateMinutes earlyLeaveMinutes rosterEntry { id } } }`, nil).Decode(t, &in)
	harness.Must(t, in.ClockIn.RosterEntry != nil && in.ClockIn.LateMinutes >= 59 && in.ClockIn.ClockOutAt == nil, "clock-in: %+v", in.ClockIn)
	var out struct{ ClockOut record }
	s.As("nurse", `mutation { clockOut { id clockOutAt lateMinutes earlyLeaveMinutes rosterEntry { id } } }`, nil).Decode(t, &out)
	harness.Must(t, out.ClockOut.ID == in.ClockIn.ID && out.ClockOut.ClockOutAt != nil && out.ClockOut.EarlyLeaveMinutes >= 6*60,
		"clock-out: %+v", out.ClockOut)
	mine := `query($f: Date!, $t: Date!) { myAttendance(from: $f, to: $t) { edges { node { id } } } }`
	span := map[string]any{"f": today.AddDate(0, 0, -1).Format(time.DateOnly), "t": today.AddDate(0, 0, 1).Format(time.DateOnly)}
	var nurseOwn, doctorOwn struct {
		MyAttendance struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("nurse", mine, span).Decode(t, &nurseOwn)
	s.As("doctor", mine, span).Decode(t, &doctorOwn)
	harness.Must(t, len(nurseOwn.MyAttendance.Edges) == 1 && nurseOwn.MyAttendance.Edges[0].Node.ID == in.ClockIn.ID &&
		len(doctorOwn.MyAttendance.Edges) == 0, "own attendance: nurse %+v, doctor %+v", nurseOwn, doctorOwn)

	// Last month: the nurse, paid by the hour, worked three rostered days
	// HR recorded afterwards — on time (480 minutes), 20 minutes late (460)
	// and two hours over (600, 120 of them overtime).
	first := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	period := first.Format("2006-01")
	days := []time.Time{first.AddDate(0, 0, 1), first.AddDate(0, 0, 2), first.AddDate(0, 0, 3)}
	harness.Must(t, roster(t, s, d.General, d.Nurse, day, days...) == 3, "last month's roster")
	s.As("hr", `mutation($id: ID!) { updateStaff(id: $id, input: {pay: {basis: HOURLY, rate: "500.00"}}) { id } }`,
		map[string]any{"id": d.Nurse}).Decode(t, &struct{}{})
	for i, w := range [][2]time.Duration{{8 * time.Hour, 16 * time.Hour}, {8*time.Hour + 20*time.Minute, 16 * time.Hour}, {8 * time.Hour, 18 * time.Hour}} {
		s.As("hr", `mutation($in: RecordAttendanceInput!) { recordAttendance(input: $in) { id } }`, map[string]any{"in": map[string]any{
			"staffId": d.Nurse, "clockInAt": days[i].Add(w[0]).Format(time.RFC3339), "clockOutAt": days[i].Add(w[1]).Format(time.RFC3339),
			"reason": "Clock was broken"}}).Decode(t, &struct{}{})
	}

	// Payroll computes the month; a draft is nobody's payslip yet.
	var run struct {
		RunPayroll struct {
			ID, Status, GrossTotal string
			Payslips               []struct {
				GrossPay string
				Staff    struct{ ID string }
			}
		}
	}
	s.As("payroll", `mutation($p: String!) { runPayroll(period: $p) { id status grossTotal payslips { grossPay staff { id } } } }`,
		map[string]any{"p": period}).Decode(t, &run)
	// The doctor's salary is 250000.00; the nurse earns 500.00 × 1420 / 60
	// = 11833.33 and 120 minutes of overtime at 150 %: 1500.00.
	harness.Must(t, run.RunPayroll.Status == "DRAFT" && run.RunPayroll.GrossTotal == "263333.33", "draft: %+v", run.RunPayroll)
	type payslip struct {
		ID, Period, PayBasis                        string
		WorkedMinutes, OvertimeMinutes              int
		BasePay, OvertimePay, GrossPay, Tax, NetPay string
		Staff                                       struct{ ID string }
	}
	var drafts struct{ MyPayslips []payslip }
	s.As("nurse", `{ myPayslips { `+payslipBits+` } }`, nil).Decode(t, &drafts)
	harness.Must(t, len(drafts.MyPayslips) == 0, "a draft payslip reached its owner: %+v", drafts)

	// Finance approves it, which posts it to the ledger.
	var approved struct {
		ApprovePayroll struct {
			Status         string
			JournalEntryID *string
		}
	}
	s.As("finance_officer", `mutation($id: ID!) { approvePayroll(id: $id) { status journalEntryID } }`,
		map[string]any{"id": run.RunPayroll.ID}).Decode(t, &approved)
	harness.Must(t, approved.ApprovePayroll.Status == "APPROVED" && approved.ApprovePayroll.JournalEntryID != nil, "approval: %+v", approved)
	var entry struct {
		Node struct {
			Lines []struct {
				Debit, Credit string
				Account       struct{ Code string }
			}
		}
	}
	s.As("finance_officer", `query($id: ID!) { node(id: $id) { ... on JournalEntry { lines { debit credit account { code } } } } }`,
		map[string]any{"id": *approved.ApprovePayroll.JournalEntryID}).Decode(t, &entry)
	lines := map[string]string{}
	for _, l := range entry.Node.Lines {
		lines[l.Account.Code] = l.Debit + "/" + l.Credit
	}
	harness.Must(t, lines["5400"] == "263333.33/0.00" && lines["2200"] == "0.00/263333.33", "the payroll entry: %v", lines)

	// Each member of staff reads their own payslip, and only theirs.
	own := func(user, staffID string) payslip {
		var out struct{ MyPayslips []payslip }
		s.As(user, `{ myPayslips { `+payslipBits+` } }`, nil).Decode(t, &out)
		harness.Must(t, len(out.MyPayslips) == 1 && out.MyPayslips[0].Staff.ID == staffID && out.MyPayslips[0].Period == period,
			"%s's payslips: %+v", user, out.MyPayslips)
		return out.MyPayslips[0]
	}
	doctor := own("doctor", d.Doctor)
	harness.Must(t, doctor.PayBasis == "MONTHLY" && doctor.GrossPay == "250000.00" && doctor.NetPay == "250000.00", "the doctor's payslip: %+v", doctor)
	nurse := own("nurse", d.Nurse)
	harness.Must(t, nurse.PayBasis == "HOURLY" && nurse.WorkedMinutes == 1540 && nurse.OvertimeMinutes == 120 &&
		nurse.BasePay == "11833.33" && nurse.OvertimePay == "1500.00" && nurse.GrossPay == "13333.33" && nurse.NetPay == "13333.33",
		"the nurse's payslip: %+v", nurse)
	r = s.As("nurse", `query($id: ID!) { node(id: $id) { ... on Payslip { netPay } } }`, map[string]any{"id": doctor.ID})
	harness.Must(t, len(r.Errors) > 0 || string(r.Data) == `{"node":null}`, "the nurse read the doctor's payslip: %s", harness.Describe(r))
}
