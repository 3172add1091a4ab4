// Package leaveatt tests attendance and leave through the API, as every
// member of staff's, managers' and HR's frontends use them.
package leaveatt

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

type node struct{ ID string }

type connection struct {
	TotalCount int
	Edges      []struct{ Node node }
}

// rosterTomorrow puts the demo nurse on a day shift tomorrow (UTC, the
// test server's time zone), as the roster would.
func rosterTomorrow(t *testing.T, s *harness.Server, staffID, departmentID string) *ent.RosterEntry {
	t.Helper()
	sys := auth.SystemContext(context.Background())
	c := s.App.Store.Client
	shift := c.ShiftDefinition.Create().SetCode("DAY-T").SetName("Day").SetKind("DAY").SetStartMinute(7 * 60).SetEndMinute(19 * 60).SaveX(sys)
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
	return c.RosterEntry.Create().SetStaffID(staffID).SetDepartmentID(departmentID).SetShiftID(shift.ID).SetDate(day).
		SetStartAt(day.Add(7 * time.Hour)).SetEndAt(day.Add(19 * time.Hour)).SetAssignedByID("usr_x").SaveX(sys)
}

// TestLeaveThroughTheAPI: the nurse asks for tomorrow off; HR may not
// decide it (General Medicine has a manager), the manager approves; the
// nurse leaves the roster, the appointment booked with them is counted for
// rebooking (the manager, who reads no patients, sees none of it) and a
// new booking with them is refused. Each reads their own requests only.
func TestLeaveThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	entry := rosterTomorrow(t, s, d.Nurse, d.General)
	tomorrow := entry.Date.Format(time.DateOnly)

	var req struct{ RequestLeave struct{ ID, Status string } }
	s.As("nurse", `mutation($d: Date!) { requestLeave(input: {leaveType: ANNUAL, startDate: $d, endDate: $d, reason: "Family"}) { id status } }`,
		map[string]any{"d": tomorrow}).Decode(t, &req)
	id := req.RequestLeave.ID
	harness.Must(t, req.RequestLeave.Status == "REQUESTED", "requested: %+v", req)

	// Bad input names the field.
	r := s.As("nurse", `mutation { requestLeave(input: {leaveType: ANNUAL, startDate: "2030-12-30", endDate: "2031-01-02"}) { id } }`, nil)
	harness.WantBadInput(t, "across the new year", r, "input.endDate")

	approve := `mutation($id: ID!) { approveLeave(id: $id, note: "ok") {
	  leave { id status } removedRosterEntries { id } appointmentsToRebookCount appointmentsToRebook { id } } }`
	r = s.As("hr", approve, map[string]any{"id": id})
	harness.Must(t, r.HasCode("FORBIDDEN"), "HR deciding in a department with a manager: %s", harness.Describe(r))
	r = s.As("doctor", approve, map[string]any{"id": id})
	harness.Must(t, harness.DeniedByGuard(r, "doctor"), "a doctor deciding: %s", harness.Describe(r))

	// The appointments themselves are patient data, which the manager
	// does not read: that field alone is refused, the approval and the
	// count come back.
	r = s.As("manager", approve, map[string]any{"id": id})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN" && r.Errors[0].Path[len(r.Errors[0].Path)-1] == "appointmentsToRebook",
		"manager approving: %s", harness.Describe(r))
	var dec struct {
		ApproveLeave struct {
			Leave                     struct{ ID, Status string }
			RemovedRosterEntries      []node
			AppointmentsToRebookCount int
			AppointmentsToRebook      []node
		}
	}
	harness.Must(t, json.Unmarshal(r.Data, &dec) == nil, "data %s", r.Data)
	a := dec.ApproveLeave
	harness.Must(t, a.Leave.Status == "APPROVED" && len(a.RemovedRosterEntries) == 1 && a.RemovedRosterEntries[0].ID == entry.ID &&
		a.AppointmentsToRebookCount == 1 && a.AppointmentsToRebook == nil, "approved: %+v", a)
	r = s.As("manager", approve, map[string]any{"id": id})
	harness.Must(t, r.HasCode("CONFLICT"), "approved twice: %s", harness.Describe(r))

	// A booking with the nurse tomorrow is refused: they are away.
	start := entry.StartAt.Add(4 * time.Hour)
	r = s.As("reception", `mutation($p: ID!, $n: ID!, $s: Time!, $e: Time!) { bookAppointment(input: {patientId: $p, providerId: $n, startAt: $s, endAt: $e}) { id } }`,
		map[string]any{"p": d.Patients[1], "n": d.Nurse, "s": start.Format(time.RFC3339), "e": start.Add(30 * time.Minute).Format(time.RFC3339)})
	harness.Must(t, r.HasCode("CONFLICT"), "booking the nurse on leave: %s", harness.Describe(r))

	var bal struct {
		MyLeaveBalances []struct {
			LeaveType           string
			Entitled, Remaining *int
			Taken, Pending      int
		}
	}
	s.As("nurse", `query($y: Int!) { myLeaveBalances(year: $y) { leaveType entitled taken pending remaining } }`,
		map[string]any{"y": entry.Date.Year()}).Decode(t, &bal)
	harness.Must(t, len(bal.MyLeaveBalances) == 7 && bal.MyLeaveBalances[0].LeaveType == "ANNUAL" && bal.MyLeaveBalances[0].Taken == 1 &&
		*bal.MyLeaveBalances[0].Entitled == 21 && *bal.MyLeaveBalances[0].Remaining == 20, "balances: %+v", bal)
	// Balances of someone else: the manager and HR, not a colleague.
	balances := `query($s: ID!, $y: Int!) { leaveBalances(staffId: $s, year: $y) { leaveType taken } }`
	vars := map[string]any{"s": d.Nurse, "y": entry.Date.Year()}
	for _, who := range []string{"manager", "hr"} {
		r := s.As(who, balances, vars)
		harness.Must(t, len(r.Errors) == 0 && harness.ContainsJSON(r.Data, `"taken":1`), "%s reads the nurse's balances: %s", who, harness.Describe(r))
	}
	r = s.As("doctor", balances, vars)
	harness.Must(t, r.HasCode("FORBIDDEN"), "a colleague reads the nurse's balances: %s", harness.Describe(r))

	// Own requests only; node(id:) hides a colleague's.
	mine := `{ myLeaveRequests(first: 10) { totalCount edges { node { id } } } }`
	var out struct{ MyLeaveRequests connection }
	s.As("nurse", mine, nil).Decode(t, &out)
	harness.Must(t, out.MyLeaveRequests.TotalCount == 1 && out.MyLeaveRequests.Edges[0].Node.ID == id, "nurse's: %+v", out)
	s.As("doctor", mine, nil).Decode(t, &out)
	harness.Must(t, out.MyLeaveRequests.TotalCount == 0, "doctor's: %+v", out)
	read := `query($id: ID!) { node(id: $id) { ... on LeaveRequest { id status } } }`
	for who, sees := range map[string]bool{"nurse": true, "manager": true, "hr": true, "doctor": false, "reception": false} {
		r := s.As(who, read, map[string]any{"id": id})
		harness.Must(t, harness.ContainsJSON(r.Data, id) == sees, "%s reading the nurse's leave: %s", who, harness.Describe(r))
	}
	// leaveRequests: the manager their department's, reception not at all.
	var list struct{ LeaveRequests connection }
	s.As("manager", `{ leaveRequests(first: 10, where: {days: 1}) { totalCount edges { node { id reason } } } }`, nil).Decode(t, &list)
	harness.Must(t, list.LeaveRequests.TotalCount == 1, "manager's list: %+v", list)
	// The reasons of other people's leave are read on the record.
	found := false
	for _, row := range harness.AuditRows(t, s, map[string]any{"operation": "leaveRequests"}) {
		found = found || slices.Contains(row.Fields, "LeaveRequest.reason") && slices.Contains(row.ObjectIds, id)
	}
	harness.Must(t, found, "no audit row of the manager's read of the nurse's leave")
	r = s.As("manager", `query($d: ID!) { leaveRequests(departmentId: $d, first: 10) { totalCount } }`, map[string]any{"d": d.Cardiology})
	harness.Must(t, r.HasCode("FORBIDDEN"), "manager asking for Cardiology: %s", harness.Describe(r))
	r = s.As("reception", `{ leaveRequests(first: 10) { totalCount } }`, nil)
	harness.Must(t, harness.DeniedByGuard(r, "reception"), "reception listing leave: %s", harness.Describe(r))
}

// TestAttendanceThroughTheAPI: staff clock in and out and read their own;
// the manager reads their department's, HR everyone's; nobody reads a
// colleague's record by ID.
func TestAttendanceThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	var in struct{ ClockIn struct{ ID string } }
	s.As("nurse", `mutation { clockIn(note: "early") { id } }`, nil).Decode(t, &in)
	r := s.As("nurse", `mutation { clockIn { id } }`, nil)
	harness.Must(t, r.HasCode("CONFLICT"), "second clock-in: %s", harness.Describe(r))
	var out struct {
		ClockOut struct {
			ID              string
			ClockOutAt      *string
			MissingClockOut bool
		}
	}
	s.As("nurse", `mutation { clockOut { id clockOutAt missingClockOut } }`, nil).Decode(t, &out)
	harness.Must(t, out.ClockOut.ID == in.ClockIn.ID && out.ClockOut.ClockOutAt != nil && !out.ClockOut.MissingClockOut, "clock out: %+v", out)
	var labIn struct{ ClockIn struct{ ID string } }
	s.As("labtech", `mutation { clockIn { id } }`, nil).Decode(t, &labIn)

	today := time.Now().UTC().Format(time.DateOnly)
	vars := map[string]any{"f": today, "t": today}
	mine := `query($f: Date!, $t: Date!) { myAttendance(from: $f, to: $t) { totalCount edges { node { id } } } }`
	var m struct{ MyAttendance connection }
	s.As("nurse", mine, vars).Decode(t, &m)
	harness.Must(t, m.MyAttendance.TotalCount == 1 && m.MyAttendance.Edges[0].Node.ID == in.ClockIn.ID, "nurse's own: %+v", m)

	read := `query($id: ID!) { node(id: $id) { ... on AttendanceRecord { id workedMinutes } } }`
	for who, sees := range map[string]bool{"nurse": true, "manager": true, "hr": true, "payroll": true, "labtech": false, "reception": false} {
		r := s.As(who, read, map[string]any{"id": in.ClockIn.ID})
		harness.Must(t, harness.ContainsJSON(r.Data, in.ClockIn.ID) == sees, "%s reading the nurse's record: %s", who, harness.Describe(r))
	}

	list := `query($d: ID, $f: Date!, $t: Date!) { attendance(departmentId: $d, from: $f, to: $t, first: 50) { totalCount } }`
	count := func(who string, dep any) (int, harness.Response) {
		var out struct{ Attendance struct{ TotalCount int } }
		r := s.As(who, list, map[string]any{"d": dep, "f": today, "t": today})
		if len(r.Errors) == 0 {
			r.Decode(t, &out)
		}
		return out.Attendance.TotalCount, r
	}
	n, r := count("manager", nil)
	harness.Must(t, len(r.Errors) == 0 && n == 1, "manager's department: %d %s", n, harness.Describe(r))
	n, r = count("hr", nil)
	harness.Must(t, len(r.Errors) == 0 && n == 2, "HR: %d %s", n, harness.Describe(r))
	_, r = count("manager", d.Cardiology)
	harness.Must(t, r.HasCode("FORBIDDEN"), "manager asking for Cardiology: %s", harness.Describe(r))
	_, r = count("nurse", nil)
	harness.Must(t, harness.DeniedByGuard(r, "nurse"), "a nurse listing attendance: %s", harness.Describe(r))

	// HR closes the labtech's open record, with a reason; without one it
	// is refused by field, changing nothing.
	correct := `mutation($id: ID!, $out: Time!, $why: String!) { correctAttendance(id: $id, input: {clockOutAt: $out, reason: $why}) { id clockOutSource reason } }`
	at := time.Now().UTC().Format(time.RFC3339Nano)
	harness.WantBadInput(t, "no reason", s.As("hr", correct, map[string]any{"id": labIn.ClockIn.ID, "out": at, "why": " "}), "input.reason")
	var fixed struct {
		CorrectAttendance struct{ ClockOutSource, Reason string }
	}
	s.As("hr", correct, map[string]any{"id": labIn.ClockIn.ID, "out": at, "why": "Left with the last sample run"}).Decode(t, &fixed)
	harness.Must(t, fixed.CorrectAttendance.ClockOutSource == "RECORDED" && fixed.CorrectAttendance.Reason == "Left with the last sample run", "corrected: %+v", fixed)
	r = s.As("manager", correct, map[string]any{"id": in.ClockIn.ID, "out": at, "why": "x"})
	harness.Must(t, harness.DeniedByGuard(r, "manager"), "a manager correcting: %s", harness.Describe(r))
}

// TestREADMEAttendanceAndLeaveOperationsAreValid runs the README's
// examples as the roles they name: each is valid against the schema; with
// placeholder IDs it is refused as bad input or not found, or answers.
func TestREADMEAttendanceAndLeaveOperationsAreValid(t *testing.T) {
	t.Parallel()
	ops := harness.READMEOperations(t, "## Staff: attendance and leave")
	s := harness.NewServer(t)
	userOf := func(doc string) string {
		// A clinician-manager's approval reads patients: admin stands in.
		if strings.Contains(doc, "appointmentsToRebook {") {
			return "admin"
		}
		for _, op := range []string{"leaveRequests", "approveLeave", "rejectLeave"} {
			if strings.Contains(doc, op+"(") {
				return "manager"
			}
		}
		for _, op := range []string{"recordAttendance", "attendanceMissingClockOut", "correctAttendance", "attendance(", "setLeaveEntitlement", "leaveBalances("} {
			if strings.Contains(doc, op) && !strings.Contains(doc, "myLeaveBalances") {
				return "hr"
			}
		}
		return "nurse"
	}
	for _, op := range ops {
		harness.Must(t, op.Kind != ast.Subscription, "no subscription expected")
		r := s.As(userOf(op.Document), op.Document, nil)
		for _, e := range r.Errors {
			harness.Must(t, e.Code() == "BAD_USER_INPUT" || e.Code() == "NOT_FOUND", "README operation as %s: %s %v\n%s", userOf(op.Document), e.Code(), e, op.Document)
		}
	}
	harness.Must(t, len(ops) == 17, "%d README operations found", len(ops))
}
