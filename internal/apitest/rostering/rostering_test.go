// Package rostering tests shifts and rosters through the API, as HR's, a
// department manager's and every member of staff's frontends use them, and
// that a doctor's bookable hours follow their roster.
package rostering

import (
	"fmt"
	"strings"
	"testing"
	_ "time/tzdata" // Europe/London, on hosts without a zone database

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
)

const (
	createShift = `mutation($in: CreateShiftDefinitionInput!) {
  createShiftDefinition(input: $in) { id code kind startTime endTime crossesMidnight bookable active }
}`
	assign = `mutation($in: AssignShiftsInput!) {
  assignShifts(input: $in) { id date startAt endAt note staff { id givenName } shift { code } department { id } }
}`
	removeEntry  = `mutation($id: ID!) { removeRosterEntry(id: $id) { id } }`
	slotsQuery   = `query($in: AvailableSlotsInput!) { availableSlots(input: $in) { start end provider { id } } }`
	entriesByDep = `query($d: ID!, $from: Date!, $to: Date!) {
  rosterEntries(departmentId: $d, from: $from, to: $to) { id date staff { id } shift { code } }
}`
)

type shift struct {
	ID, Code, Kind, StartTime, EndTime string
	CrossesMidnight, Bookable, Active  bool
}

type entry struct {
	ID, Date, StartAt, EndAt string
	Note                     *string
	Staff                    struct{ ID, GivenName string }
	Shift                    struct{ Code string }
}

type slot struct {
	Start, End string
	Provider   struct{ ID string }
}

// people are the demo's IDs this package needs beside harness.Demo's.
type people struct {
	harness.DemoIDs
	Manager, Reception, Cardiologist string
}

func demo(t *testing.T, s *harness.Server) people {
	t.Helper()
	p := people{DemoIDs: s.Demo()}
	var out struct {
		Staffs struct {
			Edges []struct {
				Node struct {
					ID, DepartmentID, Kind string
					User                   *struct{ Username string }
				}
			}
		}
	}
	s.As("admin", `{ staffs(first: 100) { edges { node { id departmentID kind user { username } } } } }`, nil).Decode(t, &out)
	for _, e := range out.Staffs.Edges {
		switch {
		case e.Node.User != nil && e.Node.User.Username == "manager":
			p.Manager = e.Node.ID
		case e.Node.User != nil && e.Node.User.Username == "reception":
			p.Reception = e.Node.ID
		case e.Node.User == nil && e.Node.Kind == "DOCTOR" && e.Node.DepartmentID == p.Cardiology:
			p.Cardiologist = e.Node.ID
		}
	}
	harness.Must(t, p.Manager != "" && p.Reception != "" && p.Cardiologist != "", "demo people: %+v", p)
	return p
}

func newShift(t *testing.T, s *harness.Server, code, kind, start, end string) shift {
	t.Helper()
	var out struct{ CreateShiftDefinition shift }
	s.As("hr", createShift, map[string]any{"in": map[string]any{"code": code, "name": code, "kind": kind, "startTime": start, "endTime": end}}).Decode(t, &out)
	return out.CreateShiftDefinition
}

func rosterIn(t *testing.T, s *harness.Server, who, dep string, entries ...map[string]any) []entry {
	t.Helper()
	var out struct{ AssignShifts []entry }
	s.As(who, assign, map[string]any{"in": map[string]any{"departmentId": dep, "entries": entries}}).Decode(t, &out)
	return out.AssignShifts
}

func on(staffID, shiftID, date string) map[string]any {
	return map[string]any{"staffId": staffID, "shiftId": shiftID, "date": date}
}

func slots(t *testing.T, s *harness.Server, in map[string]any) []slot {
	t.Helper()
	var out struct{ AvailableSlots []slot }
	s.As("reception", slotsQuery, map[string]any{"in": in}).Decode(t, &out)
	return out.AvailableSlots
}

func starts(ss []slot) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.TrimSuffix(strings.TrimPrefix(s.Start, "2030-"), ":00Z")
	}
	return out
}

// TestHRRostersAWeekAndSlotsFollow is the Done-when: HR rosters a
// week, and the doctor's slots and bookings follow the roster, in a zone
// with daylight saving, across midnight and the night the clocks change.
func TestHRRostersAWeekAndSlotsFollow(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t, func(c *config.Config) { c.TimeZone = "Europe/London" })
	d := demo(t, s)
	day := newShift(t, s, "D", "DAY", "08:00", "16:00")
	night := newShift(t, s, "N", "NIGHT", "20:00", "08:00")
	onCall := newShift(t, s, "OC", "ON_CALL", "17:00", "08:00")
	harness.Must(t, day.Bookable && !day.CrossesMidnight && night.CrossesMidnight && night.EndTime == "08:00" &&
		!onCall.Bookable && onCall.Kind == "ON_CALL", "shifts: %+v %+v %+v", day, night, onCall)

	// Monday 25 March 2030 to Friday on days, then Saturday's night: the
	// clocks go forward at 01:00 GMT on Sunday 31 March.
	var week []map[string]any
	for i := 25; i <= 29; i++ {
		week = append(week, on(d.Doctor, day.ID, fmt.Sprintf("2030-03-%02d", i)))
	}
	week = append(week, on(d.Doctor, night.ID, "2030-03-30"))
	got := rosterIn(t, s, "hr", d.General, week...)
	harness.Must(t, len(got) == 6 && got[0].StartAt == "2030-03-25T08:00:00Z" && got[0].EndAt == "2030-03-25T16:00:00Z" &&
		got[5].StartAt == "2030-03-30T20:00:00Z" && got[5].EndAt == "2030-03-31T07:00:00Z", "rostered: %+v", got)

	// Monday's slots are the day shift's hours (GMT is UTC before the change).
	mon := slots(t, s, map[string]any{"providerId": d.Doctor, "from": "2030-03-25T00:00:00Z", "to": "2030-03-26T00:00:00Z", "durationMinutes": 60})
	harness.Must(t, strings.Join(starts(mon), " ") == "03-25T08:00 03-25T09:00 03-25T10:00 03-25T11:00 03-25T12:00 03-25T13:00 03-25T14:00 03-25T15:00",
		"Monday: %v", starts(mon))
	// Saturday's night runs past midnight and is an hour short.
	sat := slots(t, s, map[string]any{"providerId": d.Doctor, "from": "2030-03-30T12:00:00Z", "to": "2030-03-31T12:00:00Z", "durationMinutes": 60})
	harness.Must(t, len(sat) == 11 && starts(sat)[0] == "03-30T20:00" && starts(sat)[4] == "03-31T00:00" && starts(sat)[10] == "03-31T06:00",
		"Saturday night: %v", starts(sat))
	// Sunday: not rostered, no weekly availability, so nothing.
	sun := slots(t, s, map[string]any{"providerId": d.Doctor, "from": "2030-03-31T08:00:00Z", "to": "2030-04-01T00:00:00Z"})
	harness.Must(t, len(sun) == 0, "Sunday: %v", starts(sun))
	// A search by department finds the rostered doctor.
	dep := slots(t, s, map[string]any{"departmentId": d.General, "from": "2030-03-25T00:00:00Z", "to": "2030-03-26T00:00:00Z", "durationMinutes": 60})
	harness.Must(t, len(dep) == 8 && dep[0].Provider.ID == d.Doctor, "General Medicine on Monday: %v", dep)

	// Booking follows the roster.
	book := func(provider, start, end string) harness.Response {
		return s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[1], provider, start, end))
	}
	r := book(d.Doctor, "2030-03-25T09:00:00Z", "2030-03-25T09:30:00Z")
	harness.Must(t, len(r.Errors) == 0, "booking inside the shift: %s", harness.Describe(r))
	r = book(d.Doctor, "2030-03-31T01:00:00Z", "2030-03-31T01:30:00Z")
	harness.Must(t, len(r.Errors) == 0, "booking in the night shift after midnight: %s", harness.Describe(r))
	for _, c := range [][2]string{
		{"2030-03-25T17:00:00Z", "2030-03-25T17:30:00Z"}, // after the shift
		{"2030-03-25T15:30:00Z", "2030-03-25T16:30:00Z"}, // runs past its end
		{"2030-03-31T10:00:00Z", "2030-03-31T10:30:00Z"}, // Sunday
	} {
		r = book(d.Doctor, c[0], c[1])
		harness.Must(t, r.HasCode("CONFLICT") && strings.Contains(r.Errors[0].Message, "does not work"), "booking %s: %s", c[0], harness.Describe(r))
	}
	// Nobody's schedule and no roster: bookable at any time, as before.
	r = book(d.Nurse, "2030-03-25T03:00:00Z", "2030-03-25T03:30:00Z")
	harness.Must(t, len(r.Errors) == 0, "an unscheduled provider: %s", harness.Describe(r))
	// On call is not bookable: slots none, booking refused.
	oc := rosterIn(t, s, "hr", d.General, on(d.Nurse, onCall.ID, "2030-04-01"))
	harness.Must(t, len(oc) == 1, "on call: %+v", oc)
	none := slots(t, s, map[string]any{"providerId": d.Nurse, "from": "2030-04-01T00:00:00Z", "to": "2030-04-03T00:00:00Z"})
	harness.Must(t, len(none) == 0, "on-call slots: %v", starts(none))
	r = book(d.Nurse, "2030-04-01T20:00:00Z", "2030-04-01T20:30:00Z")
	harness.Must(t, r.HasCode("CONFLICT"), "booking on call: %s", harness.Describe(r))

	// Monday's entry holds a booking: it stays until the booking moves.
	r = s.As("hr", removeEntry, map[string]any{"id": got[0].ID})
	harness.Must(t, r.HasCode("CONFLICT") && strings.Contains(r.Errors[0].Message, "1 appointment"), "removing a booked shift: %s", harness.Describe(r))
	r = s.As("hr", removeEntry, map[string]any{"id": got[1].ID})
	harness.Must(t, len(r.Errors) == 0, "removing Tuesday: %s", harness.Describe(r))
	tue := slots(t, s, map[string]any{"providerId": d.Doctor, "from": "2030-03-26T00:00:00Z", "to": "2030-03-27T00:00:00Z"})
	harness.Must(t, len(tue) == 0, "Tuesday after removal: %v", starts(tue))
	r = book(d.Doctor, "2030-03-26T09:00:00Z", "2030-03-26T09:30:00Z")
	harness.Must(t, r.HasCode("CONFLICT"), "booking Tuesday after removal: %s", harness.Describe(r))

	// The doctor reads their own week.
	var mine struct{ MyRoster []entry }
	s.As("doctor", `{ myRoster(from: "2030-03-25", to: "2030-03-31") { id date startAt shift { code } } }`, nil).Decode(t, &mine)
	harness.Must(t, len(mine.MyRoster) == 5 && mine.MyRoster[0].Date == "2030-03-25" && mine.MyRoster[4].Shift.Code == "N",
		"myRoster: %+v", mine.MyRoster)

	// Weekly availability still adds to the roster (setProviderAvailability keeps working).
	r = s.As("reception", `mutation($s: ID!) { setProviderAvailability(staffId: $s, periods: [{weekday: 0, startTime: "10:00", endTime: "12:00"}]) { id } }`,
		map[string]any{"s": d.Doctor})
	harness.Must(t, len(r.Errors) == 0, "availability: %s", harness.Describe(r))
	sunday := slots(t, s, map[string]any{"providerId": d.Doctor, "from": "2030-03-31T08:00:00Z", "to": "2030-04-01T00:00:00Z", "durationMinutes": 60})
	// 10:00 and 11:00 BST on the first day of summer time.
	harness.Must(t, strings.Join(starts(sunday), " ") == "03-31T09:00 03-31T10:00", "Sunday with weekly availability: %v", starts(sunday))
}

// TestWhoRostersThroughTheAPI: HR any department, the demo manager General
// Medicine only, other staff not at all; a department's roster for its
// staff, HR and its manager only; bad input names the entry.
func TestWhoRostersThroughTheAPI(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := demo(t, s)
	day := newShift(t, s, "D", "DAY", "08:00", "16:00")
	evening := newShift(t, s, "E", "EVENING", "14:00", "22:00")

	var deps struct {
		Departments struct {
			Edges []struct {
				Node struct {
					Code    string
					Manager *struct{ ID, GivenName string }
				}
			}
		}
	}
	s.As("doctor", `{ departments(first: 20) { edges { node { code manager { id givenName } } } } }`, nil).Decode(t, &deps)
	for _, e := range deps.Departments.Edges {
		harness.Must(t, (e.Node.Code == "GEN") == (e.Node.Manager != nil && e.Node.Manager.ID == d.Manager), "%s's manager: %+v", e.Node.Code, e.Node.Manager)
	}

	harness.Must(t, len(rosterIn(t, s, "manager", d.General, on(d.Nurse, day.ID, "2030-05-06"))) == 1, "the manager rosters their department")
	harness.Must(t, len(rosterIn(t, s, "hr", d.Cardiology, on(d.Cardiologist, day.ID, "2030-05-06"))) == 1, "hr rosters any department")
	for _, c := range []struct{ who, dep, code string }{
		{"manager", d.Cardiology, "FORBIDDEN"}, // the service: not their department
		{"doctor", d.General, "FORBIDDEN"},     // the policy
		{"reception", d.General, "FORBIDDEN"},
		{"payroll", d.General, "FORBIDDEN"},
		{"patient", d.General, "FORBIDDEN"},
	} {
		r := s.As(c.who, assign, map[string]any{"in": map[string]any{"departmentId": c.dep, "entries": []any{on(d.Doctor, day.ID, "2030-05-07")}}})
		harness.Must(t, r.HasCode(c.code) && len(r.Data) < 20, "%s rostering: %s", c.who, harness.Describe(r))
	}

	// All or nothing, the entry named.
	r := s.As("hr", assign, map[string]any{"in": map[string]any{"departmentId": d.General, "entries": []any{
		on(d.Doctor, day.ID, "2030-05-08"), on(d.Doctor, "shf_bad", "2030-05-09")}}})
	harness.WantBadInput(t, "a malformed shift", r, "input.entries[1].shiftId")
	r = s.As("hr", assign, map[string]any{"in": map[string]any{"departmentId": d.General, "entries": []any{
		on(d.Doctor, day.ID, "2030-05-08"), on(d.Doctor, evening.ID, "2030-05-08")}}})
	harness.WantBadInput(t, "a batch overlapping itself", r, "input.entries[1].date")
	r = s.As("hr", assign, map[string]any{"in": map[string]any{"departmentId": d.Cardiology, "entries": []any{
		on(d.Doctor, day.ID, "2030-05-08"), on(d.Nurse, evening.ID, "2030-05-06")}}})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "CONFLICT" && r.Errors[0].Field() == "input.entries[1].date",
		"the nurse is on days in General Medicine: %s", harness.Describe(r))

	read := func(who, dep string) harness.Response {
		return s.As(who, entriesByDep, map[string]any{"d": dep, "from": "2030-05-01", "to": "2030-05-31"})
	}
	for who, want := range map[string]int{"hr": 1, "manager": 1, "doctor": 1, "nurse": 1, "reception": 1, "admin": 1, "labtech": -1, "payroll": -1, "patient": -1} {
		r := read(who, d.General)
		if want < 0 {
			harness.Must(t, r.HasCode("FORBIDDEN") && !harness.ContainsJSON(r.Data, d.Nurse), "%s reading General Medicine's roster: %s", who, harness.Describe(r))
			continue
		}
		var out struct{ RosterEntries []entry }
		r.Decode(t, &out)
		harness.Must(t, len(out.RosterEntries) == want && out.RosterEntries[0].Staff.ID == d.Nurse, "%s: %+v", who, out)
	}
	r = read("manager", d.Cardiology)
	harness.Must(t, r.HasCode("FORBIDDEN"), "the manager reading Cardiology's: %s", harness.Describe(r))
	// A person's roster: their own, not a colleague's.
	r = s.As("doctor", `query($s: ID!) { rosterEntries(staffId: $s, from: "2030-05-01", to: "2030-05-31") { id } }`, map[string]any{"s": d.Nurse})
	harness.Must(t, r.HasCode("FORBIDDEN"), "the doctor reading the nurse's: %s", harness.Describe(r))
	r = s.As("nurse", `query($s: ID!) { rosterEntries(staffId: $s, from: "2030-05-01", to: "2030-05-31", where: {hasShiftWith: {code: "D"}}) { id } }`, map[string]any{"s": d.Nurse})
	harness.Must(t, len(r.Errors) == 0 && strings.Count(string(r.Data), `"id"`) == 1, "the nurse's own, filtered: %s", harness.Describe(r))

	// Coverage and requirements are the planners'.
	r = s.As("manager", `mutation($d: ID!, $s: ID!) { setRosterRequirement(departmentId: $d, shiftId: $s, minimumStaff: 2) { minimumStaff } }`,
		map[string]any{"d": d.General, "s": day.ID})
	harness.Must(t, len(r.Errors) == 0, "requirement: %s", harness.Describe(r))
	var cov struct {
		RosterCoverage []struct {
			Date                             string
			Planned, MinimumStaff, Shortfall int
			Staff                            []struct{ ID string }
		}
	}
	s.As("hr", `query($d: ID!) { rosterCoverage(departmentId: $d, from: "2030-05-06", to: "2030-05-07") { date planned minimumStaff shortfall staff { id } } }`,
		map[string]any{"d": d.General}).Decode(t, &cov)
	harness.Must(t, len(cov.RosterCoverage) == 2 && cov.RosterCoverage[0].Planned == 1 && cov.RosterCoverage[0].Shortfall == 1 &&
		cov.RosterCoverage[0].Staff[0].ID == d.Nurse && cov.RosterCoverage[1].Planned == 0 && cov.RosterCoverage[1].Shortfall == 2,
		"coverage: %+v", cov)
	for _, who := range []string{"doctor", "nurse", "labtech"} {
		r := s.As(who, `query($d: ID!) { rosterCoverage(departmentId: $d, from: "2030-05-06", to: "2030-05-07") { planned } }`, map[string]any{"d": d.General})
		harness.Must(t, harness.DeniedByGuard(r, who), "%s reading coverage: %s", who, harness.Describe(r))
	}
	// Shifts are HR's to define; every member of staff reads them.
	r = s.As("manager", createShift, map[string]any{"in": map[string]any{"code": "Z", "name": "Z", "kind": "DAY", "startTime": "08:00", "endTime": "09:00"}})
	harness.Must(t, harness.DeniedByGuard(r, "manager"), "the manager defining a shift: %s", harness.Describe(r))
	var list struct{ ShiftDefinitions struct{ TotalCount int } }
	s.As("labtech", `{ shiftDefinitions(where: {active: true}) { totalCount } }`, nil).Decode(t, &list)
	harness.Must(t, list.ShiftDefinitions.TotalCount == 2, "shifts: %+v", list)
	r = s.As("patient", `{ shiftDefinitions { totalCount } }`, nil)
	harness.Must(t, harness.DeniedByGuard(r, "patient"), "a patient listing shifts: %s", harness.Describe(r))
	// Naming a manager is HR's, and needs an active member of staff.
	r = s.As("manager", `mutation($d: ID!, $s: ID!) { setDepartmentManager(departmentId: $d, staffId: $s) { id } }`, map[string]any{"d": d.Cardiology, "s": d.Manager})
	harness.Must(t, harness.DeniedByGuard(r, "manager"), "the manager naming themselves: %s", harness.Describe(r))
}

// placeholders are the README's example IDs and what they stand for in the demo.
func placeholders(d people, day, night shift) *strings.Replacer {
	return strings.NewReplacer(
		"dep_01ARZ3NDEKTSV4RRFFQ69G5FAV", d.General,
		"stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", d.Doctor,
		"stf_01ARZ3NDEKTSV4RRFFQ69G5FAW", d.Nurse,
		"stf_01ARZ3NDEKTSV4RRFFQ69G5FAX", d.Manager,
		"shf_01ARZ3NDEKTSV4RRFFQ69G5FAV", day.ID,
		"shf_01ARZ3NDEKTSV4RRFFQ69G5FAW", night.ID,
	)
}

// TestREADMERosterOperations runs the README's roster examples against the
// demo, in order, each as the role its comment names, with the demo's IDs
// for the placeholders: every one must succeed, and the doctor's slots must
// be the rostered Monday's.
func TestREADMERosterOperations(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := demo(t, s)
	ops := harness.READMEOperations(t, "## Staff: shifts and rosters")
	harness.Must(t, len(ops) == 8, "%d README roster operations found", len(ops))
	roleOf := map[string]string{"myRoster": "doctor", "availableSlots": "reception", "rosterEntries": "doctor", "rosterCoverage": "manager", "assignShifts": "manager"}
	var day, night shift
	for i, op := range ops {
		doc := op.Document
		if i > 0 {
			doc = placeholders(d, day, night).Replace(doc)
		}
		who := "hr"
		for field, role := range roleOf {
			if strings.Contains(doc, field+"(") {
				who = role
			}
		}
		r := s.As(who, doc, nil)
		harness.Must(t, len(r.Errors) == 0, "README operation as %s: %s\n%s", who, harness.Describe(r), doc)
		if i == 0 {
			var out struct{ Day, Night shift }
			r.Decode(t, &out)
			day, night = out.Day, out.Night
			harness.Must(t, night.CrossesMidnight && day.ID != "", "shifts: %+v", out)
		}
		if strings.Contains(doc, "availableSlots(") {
			var out struct{ AvailableSlots []slot }
			r.Decode(t, &out)
			harness.Must(t, len(out.AvailableSlots) == 3 && out.AvailableSlots[0].Start == "2030-03-04T08:00:00Z", "slots: %+v", out)
		}
		if strings.Contains(doc, "rosterCoverage(") {
			harness.Must(t, harness.ContainsJSON(r.Data, `"shortfall":1`), "coverage: %s", r.Data)
		}
	}
}
