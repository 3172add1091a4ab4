package apitest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the hospital zone below, on hosts without a zone database

	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/scheduling"
)

func init() {
	addProbes(map[string]string{
		"Query.availableSlots":             `{ availableSlots(input: {providerId: "bad", from: "2030-01-02T00:00:00Z", to: "2030-01-01T00:00:00Z"}) { __typename } }`,
		"Query.departmentQueue":            `{ departmentQueue(departmentId: "bad") { __typename } }`,
		"Mutation.rescheduleAppointment":   `mutation { rescheduleAppointment(id: "bad", input: {startAt: "2030-01-01T09:00:00Z", endAt: "2030-01-01T10:00:00Z"}) { __typename } }`,
		"Mutation.startAppointment":        `mutation { startAppointment(id: "bad") { __typename } }`,
		"Mutation.completeAppointment":     `mutation { completeAppointment(id: "bad") { __typename } }`,
		"Mutation.markNoShow":              `mutation { markNoShow(id: "bad") { __typename } }`,
		"Mutation.setProviderAvailability": `mutation { setProviderAvailability(staffId: "bad", periods: []) { __typename } }`,
		"Mutation.addProviderTimeOff":      `mutation { addProviderTimeOff(input: {staffId: "bad", startAt: "2030-01-01T09:00:00Z", endAt: "2030-01-01T10:00:00Z"}) { __typename } }`,
		"Mutation.removeProviderTimeOff":   `mutation { removeProviderTimeOff(id: "bad") { __typename } }`,
		"Mutation.createRoom":              `mutation { createRoom(input: {departmentId: "bad", code: "MATRIX", name: "Matrix"}) { __typename } }`,
		"Mutation.setRoomActive":           `mutation { setRoomActive(id: "bad", active: true) { __typename } }`,
	})
}

// schedZone is the zone the working-hours tests run the server in: three
// hours east of UTC all year, so local and UTC times differ every day.
const schedZone = "Africa/Nairobi"

func inSchedZone(c *configT) { c.TimeZone = schedZone }

func schedLocation(t testing.TB) *time.Location {
	loc, err := time.LoadLocation(schedZone)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// newScheduledProvider adds a member of staff of the department, for tests that
// give them working hours: there is no staff roster API yet, and the demo's
// doctor and nurse must stay bookable at any time for the other tests.
func newScheduledProvider(t testing.TB, s *server, departmentID string, kind staff.Kind) string {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	m, err := s.app.Store.Client.Staff.Create().SetGivenName("Test").SetFamilyName("Provider").
		SetKind(kind).SetDepartmentID(departmentID).Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// schedDay is local midnight days after today in loc.
func schedDay(loc *time.Location, days int) time.Time {
	now := time.Now().In(loc)
	return time.Date(now.Year(), now.Month(), now.Day()+days, 0, 0, 0, 0, loc)
}

func schedAt(day time.Time, hh, mm int) string {
	return time.Date(day.Year(), day.Month(), day.Day(), hh, mm, 0, 0, day.Location()).UTC().Format(time.RFC3339)
}

func utcRFC(t time.Time) string { return t.UTC().Format(time.RFC3339) }

const (
	setAvailabilityMut = `mutation($s: ID!, $p: [AvailabilityPeriodInput!]!) {
  setProviderAvailability(staffId: $s, periods: $p) { id weekday startMinute endMinute validFrom validTo staff { id } }
}`
	availableSlotsQuery    = `query($in: AvailableSlotsInput!) { availableSlots(input: $in) { start end provider { id } } }`
	addTimeOffMut          = `mutation($in: AddProviderTimeOffInput!) { addProviderTimeOff(input: $in) { id startAt endAt reason staff { id } } }`
	removeTimeOffMut       = `mutation($id: ID!) { removeProviderTimeOff(id: $id) { id } }`
	providerScheduleQuery  = `query($id: ID!) { staffs(where: {id: $id}) { edges { node { availability { startMinute endMinute } timeOff { id } } } } }`
	startVisitMutation     = `mutation($id: ID!) { startAppointment(id: $id) { id status startedAt encounter { id type status } } }`
	completeVisitMutation  = `mutation($id: ID!) { completeAppointment(id: $id) { id status completedAt encounter { id status endedAt } } }`
	markNoShowMutation     = `mutation($id: ID!) { markNoShow(id: $id) { id status } }`
	rescheduleApptMutation = `mutation($id: ID!, $in: RescheduleAppointmentInput!) {
  rescheduleAppointment(id: $id, input: $in) { id status startAt endAt room { id } }
}`
	checkInVisitMutation = `mutation($id: ID!) { checkInAppointment(id: $id) { id status } }`
	createRoomMut        = `mutation($in: CreateRoomInput!) { createRoom(input: $in) { id code name active department { id } } }`
	departmentQueueQuery = `query($d: ID!, $date: Date) {
  departmentQueue(departmentId: $d, date: $date) { id status startAt patient { id } provider { id } room { code } }
}`
)

type availableSlotResult struct {
	Start, End string
	Provider   struct{ ID string }
}

func (s *server) slotStarts(t testing.TB, user string, in map[string]any) []string {
	t.Helper()
	var out struct{ AvailableSlots []availableSlotResult }
	s.as(user, availableSlotsQuery, map[string]any{"in": in}).decode(t, &out)
	var starts []string
	for _, sl := range out.AvailableSlots {
		starts = append(starts, sl.Start)
	}
	return starts
}

func (s *server) bookAppointmentID(t testing.TB, user string, in map[string]any) string {
	t.Helper()
	var out struct{ BookAppointment struct{ ID string } }
	s.as(user, bookMutation, map[string]any{"in": in}).decode(t, &out)
	return out.BookAppointment.ID
}

func apptInput(patientID, providerID, start, end string) map[string]any {
	return map[string]any{"patientId": patientID, "providerId": providerID, "startAt": start, "endAt": end}
}

func TestWorkingHoursAndSlots(t *testing.T) {
	s := newServer(t, inSchedZone)
	d := s.demo()
	loc := schedLocation(t)
	prov := newScheduledProvider(t, s, d.general, staff.KindDOCTOR)
	day := schedDay(loc, 7)
	wd := int(day.Weekday())
	periods := []map[string]any{
		{"weekday": wd, "startTime": "09:00", "endTime": "12:00"},
		{"weekday": wd, "startTime": "14:00", "endTime": "16:00", "validFrom": day.Format("2006-01-02")},
	}
	var set struct {
		SetProviderAvailability []struct {
			ID                              string
			Weekday, StartMinute, EndMinute int
			ValidFrom                       *string
		}
	}
	r := s.as("doctor", setAvailabilityMut, map[string]any{"s": prov, "p": periods})
	must(t, r.hasCode("FORBIDDEN"), "a doctor sets the rota: %s", describe(r))
	s.as("reception", setAvailabilityMut, map[string]any{"s": prov, "p": periods}).decode(t, &set)
	got := set.SetProviderAvailability
	must(t, len(got) == 2 && got[0].StartMinute == 9*60 && got[1].EndMinute == 16*60 && got[1].ValidFrom != nil &&
		*got[1].ValidFrom == day.Format("2006-01-02") && got[0].Weekday == wd, "set: %+v", got)

	// A refused schedule names the period at fault and keeps the old one.
	r = s.as("reception", setAvailabilityMut, map[string]any{"s": prov, "p": []map[string]any{
		{"weekday": wd, "startTime": "09:00", "endTime": "12:00"},
		{"weekday": wd, "startTime": "11:00", "endTime": "13:00"},
	}})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "periods[1].startTime", "overlap: %s", describe(r))
	r = s.as("reception", setAvailabilityMut, map[string]any{"s": prov, "p": []map[string]any{{"weekday": wd, "startTime": "9am", "endTime": "12:00"}}})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "periods[0].startTime", "bad time: %s", describe(r))
	schedule := func() (int, int) {
		var out struct {
			Staffs struct {
				Edges []struct {
					Node struct {
						Availability []struct{ StartMinute int }
						TimeOff      []struct{ ID string }
					}
				}
			}
		}
		s.as("reception", providerScheduleQuery, map[string]any{"id": prov}).decode(t, &out)
		n := out.Staffs.Edges[0].Node
		return len(n.Availability), len(n.TimeOff)
	}
	periodsKept, _ := schedule()
	must(t, periodsKept == 2, "a refused schedule changed the stored one: %d periods", periodsKept)

	// Booking keeps to local working hours.
	r = s.as("reception", bookMutation, map[string]any{"in": apptInput(d.patients[1], prov, schedAt(day, 8, 30), schedAt(day, 9, 0))})
	must(t, r.hasCode("CONFLICT"), "before hours: %s", describe(r))
	utcNine := time.Date(day.Year(), day.Month(), day.Day(), 9, 0, 0, 0, time.UTC)
	r = s.as("reception", bookMutation, map[string]any{"in": apptInput(d.patients[1], prov, utcRFC(utcNine), utcRFC(utcNine.Add(time.Hour)))})
	must(t, r.hasCode("CONFLICT"), "09:00 UTC is noon in the hospital, after hours: %s", describe(r))
	r = s.as("reception", bookMutation, map[string]any{"in": apptInput(d.patients[1], prov, schedAt(day, 9, 0), schedAt(day, 10, 0))})
	must(t, len(r.Errors) == 0, "inside hours: %s", describe(r))

	hourly := map[string]any{"providerId": prov, "from": schedAt(day, 0, 0), "to": schedAt(day, 23, 59), "durationMinutes": 60}
	want := []string{schedAt(day, 10, 0), schedAt(day, 11, 0), schedAt(day, 14, 0), schedAt(day, 15, 0)}
	must(t, strings.Join(s.slotStarts(t, "reception", hourly), " ") == strings.Join(want, " "),
		"slots around the booked hour: %v, want %v", s.slotStarts(t, "reception", hourly), want)
	var bySlot struct{ AvailableSlots []availableSlotResult }
	s.as("doctor", availableSlotsQuery, map[string]any{"in": map[string]any{"departmentId": d.general, "from": schedAt(day, 0, 0), "to": schedAt(day, 23, 59), "durationMinutes": 60}}).decode(t, &bySlot)
	must(t, len(bySlot.AvailableSlots) == 4, "the department's providers with hours are the new one only: %+v", bySlot)
	for _, sl := range bySlot.AvailableSlots {
		must(t, sl.Provider.ID == prov, "slot of %s", sl.Provider.ID)
	}

	// Time off takes its time out of the slots and the book.
	r = s.as("reception", addTimeOffMut, map[string]any{"in": map[string]any{"staffId": prov, "startAt": schedAt(day, 9, 30), "endAt": schedAt(day, 10, 30)}})
	must(t, r.hasCode("CONFLICT"), "time off over a booked appointment: %s", describe(r))
	var off struct {
		AddProviderTimeOff struct {
			ID, StartAt string
			Reason      *string
		}
	}
	s.as("reception", addTimeOffMut, map[string]any{"in": map[string]any{"staffId": prov, "startAt": schedAt(day, 14, 0), "endAt": schedAt(day, 16, 0), "reason": "Theatre"}}).decode(t, &off)
	must(t, off.AddProviderTimeOff.StartAt == schedAt(day, 14, 0) && off.AddProviderTimeOff.Reason != nil, "time off: %+v", off)
	must(t, strings.Join(s.slotStarts(t, "reception", hourly), " ") == strings.Join(want[:2], " "), "slots without the time off: %v", s.slotStarts(t, "reception", hourly))
	r = s.as("reception", bookMutation, map[string]any{"in": apptInput(d.patients[2], prov, schedAt(day, 15, 0), schedAt(day, 15, 30))})
	must(t, r.hasCode("CONFLICT"), "booked during time off: %s", describe(r))
	r = s.as("reception", addTimeOffMut, map[string]any{"in": map[string]any{"staffId": prov, "startAt": schedAt(day, 17, 0), "endAt": schedAt(day, 16, 0)}})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.endAt", "time off ending before it starts: %s", describe(r))
	_, offs := schedule()
	must(t, offs == 1, "%d time-off rows, want the one accepted", offs)

	r = s.as("nurse", removeTimeOffMut, map[string]any{"id": off.AddProviderTimeOff.ID})
	must(t, r.hasCode("FORBIDDEN"), "a nurse removes time off: %s", describe(r))
	s.as("reception", removeTimeOffMut, map[string]any{"id": off.AddProviderTimeOff.ID}).decode(t, &struct{}{})
	r = s.as("reception", removeTimeOffMut, map[string]any{"id": off.AddProviderTimeOff.ID})
	must(t, r.hasCode("NOT_FOUND"), "removed twice: %s", describe(r))
	must(t, strings.Join(s.slotStarts(t, "reception", hourly), " ") == strings.Join(want, " "), "slots after the time off is gone: %v", s.slotStarts(t, "reception", hourly))

	for _, tc := range []struct {
		in    map[string]any
		field string
	}{
		{map[string]any{"from": schedAt(day, 0, 0), "to": schedAt(day, 23, 0)}, "input.providerId"},
		{map[string]any{"providerId": prov, "from": schedAt(day, 10, 0), "to": schedAt(day, 9, 0)}, "input.to"},
		{map[string]any{"providerId": prov, "from": schedAt(day, 0, 0), "to": schedAt(day.AddDate(0, 2, 0), 0, 0)}, "input.to"},
		{map[string]any{"providerId": prov, "from": schedAt(day, 0, 0), "to": schedAt(day, 23, 0), "durationMinutes": 0}, "input.durationMinutes"},
		{map[string]any{"departmentId": "dep_nope", "from": schedAt(day, 0, 0), "to": schedAt(day, 23, 0)}, "input.departmentId"},
	} {
		r := s.as("reception", availableSlotsQuery, map[string]any{"in": tc.in})
		must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == tc.field, "%v: want BAD_USER_INPUT on %s: %s", tc.in, tc.field, describe(r))
	}
	r = s.as("patient", availableSlotsQuery, map[string]any{"in": hourly})
	must(t, r.hasCode("FORBIDDEN"), "the patient app searches slots: %s", describe(r))

	// An empty schedule makes the provider bookable at any time again.
	s.as("admin", setAvailabilityMut, map[string]any{"s": prov, "p": []map[string]any{}}).decode(t, &set)
	must(t, len(set.SetProviderAvailability) == 0, "cleared: %+v", set)
	r = s.as("reception", bookMutation, map[string]any{"in": apptInput(d.patients[2], prov, schedAt(day, 20, 0), schedAt(day, 20, 30))})
	must(t, len(r.Errors) == 0, "a provider without hours: %s", describe(r))
	must(t, len(s.slotStarts(t, "reception", hourly)) == 0, "a provider without hours has no slots to list")
}

type visitResult struct {
	ID, Status string
	StartedAt  *string
	Encounter  *struct{ ID, Type, Status string }
}

func TestVisitCourse(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	b := &booker{t: t, s: s, user: "reception"}
	feed := subscribeAppointments(t, s, protoTransportWS, s.token("doctor"), map[string]any{"providerId": d.nurse})
	awaitLive(t, func() string { return b.book(d.patients[3], d.nurse) }, feed)
	next := func(wantType, wantID string) {
		t.Helper()
		ev := feed.next()
		must(t, ev.Type == wantType && ev.Appointment.ID == wantID, "want %s of %s, got %s of %s", wantType, wantID, ev.Type, ev.Appointment.ID)
	}

	now := time.Now().UTC().Truncate(time.Minute)
	id := s.bookAppointmentID(t, "reception", apptInput(d.patients[0], d.nurse, utcRFC(now.Add(10*time.Minute)), utcRFC(now.Add(30*time.Minute))))
	next("BOOKED", id)
	vars := map[string]any{"id": id}
	r := s.as("nurse", startVisitMutation, vars)
	must(t, r.hasCode("CONFLICT"), "start before check-in: %s", describe(r))
	r = s.as("nurse", completeVisitMutation, vars)
	must(t, r.hasCode("CONFLICT"), "complete before start: %s", describe(r))
	s.as("reception", checkInVisitMutation, vars).decode(t, &struct{}{})
	next("CHECKED_IN", id)

	r = s.as("reception", startVisitMutation, vars)
	must(t, r.hasCode("FORBIDDEN"), "the front desk starts a consultation: %s", describe(r))
	var started struct{ StartAppointment visitResult }
	s.as("nurse", startVisitMutation, vars).decode(t, &started)
	v := started.StartAppointment
	must(t, v.Status == "IN_PROGRESS" && v.StartedAt != nil && v.Encounter != nil && v.Encounter.Type == "OUTPATIENT" && v.Encounter.Status == "IN_PROGRESS",
		"started: %+v", v)
	next("STARTED", id)
	r = s.as("doctor", startVisitMutation, vars)
	must(t, r.hasCode("CONFLICT"), "start twice: %s", describe(r))

	// Exactly one encounter, on the patient's record, seen by staff and by
	// the patient; another patient sees nothing of it.
	encountersOf := `query($p: ID!) { node(id: $p) { ... on Patient { encounters(first: 50) { edges { node { id type status provider { id } appointment { id } } } } } } }`
	type encounterList struct {
		Node struct {
			Encounters struct {
				Edges []struct {
					Node struct {
						ID, Type, Status string
						Provider         struct{ ID string }
						Appointment      *struct{ ID string }
					}
				}
			}
		}
	}
	for _, user := range []string{"doctor", "patient"} {
		var list encounterList
		s.as(user, encountersOf, map[string]any{"p": d.patients[0]}).decode(t, &list)
		n := 0
		for _, e := range list.Node.Encounters.Edges {
			if e.Node.Appointment != nil && e.Node.Appointment.ID == id {
				n++
				must(t, e.Node.ID == v.Encounter.ID && e.Node.Provider.ID == d.nurse && e.Node.Type == "OUTPATIENT", "%s sees %+v", user, e.Node)
			}
		}
		must(t, n == 1, "%s sees %d encounters of the appointment, want 1", user, n)
	}
	r = s.as("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": v.Encounter.ID})
	must(t, len(r.Errors) == 0, "the patient's own encounter by node: %s", describe(r))
	theirs := s.bookAppointmentID(t, "reception", apptInput(d.patients[1], d.doctor, utcRFC(now.Add(10*time.Minute)), utcRFC(now.Add(30*time.Minute))))
	s.as("reception", checkInVisitMutation, map[string]any{"id": theirs}).decode(t, &struct{}{})
	var other struct{ StartAppointment visitResult }
	s.as("doctor", startVisitMutation, map[string]any{"id": theirs}).decode(t, &other)
	r = s.as("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": other.StartAppointment.Encounter.ID})
	must(t, r.hasCode("NOT_FOUND"), "another patient's encounter by node: %s", describe(r))
	r = s.as("patient", `query($id: ID!) { node(id: $id) { ... on Appointment { status } } }`, map[string]any{"id": theirs})
	must(t, r.hasCode("NOT_FOUND"), "another patient's visit by node: %s", describe(r))

	var done struct {
		CompleteAppointment struct {
			Status      string
			CompletedAt *string
			Encounter   struct {
				Status  string
				EndedAt *string
			}
		}
	}
	s.as("doctor", completeVisitMutation, vars).decode(t, &done)
	c := done.CompleteAppointment
	must(t, c.Status == "COMPLETED" && c.CompletedAt != nil && c.Encounter.Status == "FINISHED" && c.Encounter.EndedAt != nil &&
		*c.Encounter.EndedAt == *c.CompletedAt, "completed: %+v", c)
	next("COMPLETED", id)
	for name, doc := range map[string]string{"complete twice": completeVisitMutation, "start again": startVisitMutation, "no-show": markNoShowMutation, "check in again": checkInVisitMutation} {
		r := s.as("doctor", doc, vars)
		must(t, r.hasCode("CONFLICT"), "%s: %s", name, describe(r))
	}
	r = s.as("reception", rescheduleApptMutation, map[string]any{"id": id, "in": map[string]any{"startAt": utcRFC(now.Add(time.Hour)), "endAt": utcRFC(now.Add(2 * time.Hour))}})
	must(t, r.hasCode("CONFLICT"), "reschedule a completed one: %s", describe(r))

	// No-shows: by hand once the appointment has ended, by the sweeper an
	// hour later.
	ended := s.bookAppointmentID(t, "reception", apptInput(d.patients[1], d.nurse, utcRFC(now.Add(-50*time.Minute)), utcRFC(now.Add(-30*time.Minute))))
	next("BOOKED", ended)
	future := s.bookAppointmentID(t, "reception", apptInput(d.patients[2], d.nurse, utcRFC(now.Add(40*time.Minute)), utcRFC(now.Add(time.Hour))))
	next("BOOKED", future)
	r = s.as("reception", markNoShowMutation, map[string]any{"id": future})
	must(t, r.hasCode("CONFLICT"), "no-show before the end: %s", describe(r))
	r = s.as("billing", markNoShowMutation, map[string]any{"id": ended})
	must(t, r.hasCode("FORBIDDEN"), "billing marks a no-show: %s", describe(r))
	var marked struct{ MarkNoShow struct{ Status string } }
	s.as("reception", markNoShowMutation, map[string]any{"id": ended}).decode(t, &marked)
	must(t, marked.MarkNoShow.Status == "NO_SHOW", "%+v", marked)
	next("NO_SHOW", ended)

	sweeper := scheduling.NewService(s.app.Store, time.UTC)
	n, err := sweeper.MarkNoShows(context.Background(), now)
	must(t, err == nil && n == 0, "nothing has ended an hour ago: %d %v", n, err)
	n, err = sweeper.MarkNoShows(context.Background(), now.Add(2*time.Hour+time.Minute))
	must(t, err == nil && n == 1, "the sweep an hour after the end: %d %v", n, err)
	next("NO_SHOW", future)
	var status struct{ Node struct{ Status string } }
	s.as("reception", `query($id: ID!) { node(id: $id) { ... on Appointment { status } } }`, map[string]any{"id": future}).decode(t, &status)
	must(t, status.Node.Status == "NO_SHOW", "swept: %+v", status)
	r = s.as("reception", checkInVisitMutation, map[string]any{"id": future})
	must(t, r.hasCode("CONFLICT"), "check in a no-show: %s", describe(r))
}

func TestRoomsAndRescheduling(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	var room struct {
		CreateRoom struct {
			ID, Code string
			Active   bool
		}
	}
	r := s.as("doctor", createRoomMut, map[string]any{"in": map[string]any{"departmentId": d.general, "code": "GEN-900", "name": "Minor procedures"}})
	must(t, r.hasCode("FORBIDDEN"), "a doctor creates a room: %s", describe(r))
	s.as("reception", createRoomMut, map[string]any{"in": map[string]any{"departmentId": d.general, "code": "GEN-900", "name": "Minor procedures"}}).decode(t, &room)
	must(t, room.CreateRoom.Code == "GEN-900" && room.CreateRoom.Active, "%+v", room)
	roomID := room.CreateRoom.ID
	r = s.as("reception", createRoomMut, map[string]any{"in": map[string]any{"departmentId": d.general, "code": "GEN-900", "name": "Again"}})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.code", "duplicate code: %s", describe(r))

	// Many bookings of one room at overlapping times, each with its own
	// provider where it can: exactly one wins.
	var providers []string
	for i := 0; i < 4; i++ {
		providers = append(providers, newScheduledProvider(t, s, d.general, staff.KindNURSE))
	}
	start, _ := slot(4, 10)
	offset := func(d time.Duration) string {
		t0, _ := time.Parse(time.RFC3339, start)
		return utcRFC(t0.Add(d))
	}
	token := s.token("reception")
	const attempts = 8
	results := make([]response, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Not patients[2]: the rescheduling below moves next to their booking.
			in := apptInput(d.patients[[]int{0, 1, 3, 4}[i%4]], providers[i%4], offset(time.Duration(i)*time.Minute), offset(time.Hour))
			in["roomId"] = roomID
			results[i] = s.do(token, bookMutation, map[string]any{"in": in})
		}(i)
	}
	wg.Wait()
	wins := 0
	var winner string
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
			var out struct{ BookAppointment struct{ ID string } }
			r.decode(t, &out)
			winner = out.BookAppointment.ID
		case !r.hasCode("CONFLICT"):
			t.Errorf("unexpected outcome: %s", describe(r))
		}
	}
	must(t, wins == 1, "wins %d", wins)
	var inRoom struct {
		Room struct{ Appointments struct{ TotalCount int } }
	}
	s.as("admin", `query($id: ID!) { room: node(id: $id) { ... on Room { appointments { totalCount } } } }`, map[string]any{"id": roomID}).decode(t, &inRoom)
	must(t, inRoom.Room.Appointments.TotalCount == 1, "appointments in the room: %d", inRoom.Room.Appointments.TotalCount)

	// Out of service: no new bookings in it.
	var active struct{ SetRoomActive struct{ Active bool } }
	s.as("reception", `mutation($id: ID!) { setRoomActive(id: $id, active: false) { active } }`, map[string]any{"id": roomID}).decode(t, &active)
	must(t, !active.SetRoomActive.Active, "%+v", active)
	other := apptInput(d.patients[2], d.nurse, offset(2*time.Hour), offset(3*time.Hour))
	other["roomId"] = roomID
	r = s.as("reception", bookMutation, map[string]any{"in": other})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.roomId", "booked into a room out of service: %s", describe(r))
	s.as("admin", `mutation($id: ID!) { setRoomActive(id: $id, active: true) { active } }`, map[string]any{"id": roomID}).decode(t, &active)
	otherID := s.bookAppointmentID(t, "reception", other)

	// Rescheduling: the room stays when omitted, goes when null, and the
	// same checks as a apptInput apply, excluding the appointment itself.
	type moved struct {
		RescheduleAppointment struct {
			StartAt string
			Room    *struct{ ID string }
		}
	}
	var m moved
	s.as("doctor", rescheduleApptMutation, map[string]any{"id": winner, "in": map[string]any{"startAt": offset(30 * time.Minute), "endAt": offset(90 * time.Minute)}}).decode(t, &m)
	must(t, m.RescheduleAppointment.StartAt == offset(30*time.Minute) && m.RescheduleAppointment.Room != nil && m.RescheduleAppointment.Room.ID == roomID,
		"moved within itself, room kept: %+v", m)
	r = s.as("reception", rescheduleApptMutation, map[string]any{"id": winner, "in": map[string]any{"startAt": offset(150 * time.Minute), "endAt": offset(200 * time.Minute)}})
	must(t, r.hasCode("CONFLICT"), "onto the other apptInput of the room: %s", describe(r))
	r = s.as("reception", rescheduleApptMutation, map[string]any{"id": winner, "in": map[string]any{"startAt": offset(5 * time.Hour), "endAt": offset(4 * time.Hour)}})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.endAt", "end before start: %s", describe(r))
	s.as("reception", rescheduleApptMutation, map[string]any{"id": winner, "in": map[string]any{"startAt": offset(150 * time.Minute), "endAt": offset(200 * time.Minute), "roomId": nil}}).decode(t, &m)
	must(t, m.RescheduleAppointment.Room == nil, "room given up: %+v", m)
	var check struct{ Node struct{ StartAt string } }
	s.as("reception", `query($id: ID!) { node(id: $id) { ... on Appointment { startAt } } }`, map[string]any{"id": winner}).decode(t, &check)
	must(t, check.Node.StartAt == offset(150*time.Minute), "stored start: %+v", check)
	r = s.as("patient", rescheduleApptMutation, map[string]any{"id": otherID, "in": map[string]any{"startAt": offset(5 * time.Hour), "endAt": offset(6 * time.Hour)}})
	must(t, r.hasCode("FORBIDDEN"), "a patient reschedules: %s", describe(r))
}

func TestDepartmentQueue(t *testing.T) {
	s := newServer(t, inSchedZone)
	d := s.demo()
	loc := schedLocation(t)
	day := schedDay(loc, 5)
	date := day.Format("2006-01-02")

	// 01:00 in the hospital is the evening before in UTC, and 23:30 the
	// evening before is still the day before.
	early := s.bookAppointmentID(t, "reception", apptInput(d.patients[1], d.doctor, schedAt(day, 1, 0), schedAt(day, 1, 30)))
	s.bookAppointmentID(t, "reception", apptInput(d.patients[1], d.doctor, schedAt(day.AddDate(0, 0, -1), 23, 30), schedAt(day, 0, 0)))
	late := s.bookAppointmentID(t, "reception", apptInput(d.patients[2], d.doctor, schedAt(day, 10, 0), schedAt(day, 10, 30)))
	withRoom := apptInput(d.patients[3], d.nurse, schedAt(day, 8, 30), schedAt(day, 9, 0))
	var rooms struct {
		Rooms struct {
			Edges []struct{ Node struct{ ID, Code string } }
		}
	}
	s.as("reception", `{ rooms(where: {code: "GEN-101"}) { edges { node { id code } } } }`, nil).decode(t, &rooms)
	withRoom["roomId"] = rooms.Rooms.Edges[0].Node.ID
	middle := s.bookAppointmentID(t, "reception", withRoom)
	cancelled := s.bookAppointmentID(t, "reception", apptInput(d.patients[4], d.nurse, schedAt(day, 9, 0), schedAt(day, 9, 30)))
	s.as("reception", cancelMutation, map[string]any{"id": cancelled, "r": "patient called"}).decode(t, &struct{}{})
	s.bookAppointmentID(t, "reception", apptInput(d.patients[4], d.nurse, schedAt(day.AddDate(0, 0, 1), 0, 0), schedAt(day.AddDate(0, 0, 1), 0, 30)))

	type queueEntry struct {
		ID, Status, StartAt string
		Patient             struct{ ID string }
		Provider            struct{ ID string }
		Room                *struct{ Code string }
	}
	queue := func(user string, date any) []queueEntry {
		t.Helper()
		var out struct{ DepartmentQueue []queueEntry }
		s.as(user, departmentQueueQuery, map[string]any{"d": d.general, "date": date}).decode(t, &out)
		return out.DepartmentQueue
	}
	q := queue("nurse", date)
	var ids []string
	for _, e := range q {
		ids = append(ids, e.ID)
	}
	must(t, strings.Join(ids, " ") == strings.Join([]string{early, middle, late}, " "), "queue %v, want %v", ids, []string{early, middle, late})
	must(t, q[1].Room != nil && q[1].Room.Code == "GEN-101" && q[1].Provider.ID == d.nurse && q[1].Patient.ID == d.patients[3], "who, with whom, where: %+v", q[1])
	must(t, len(queue("reception", day.AddDate(0, 0, 2).Format("2006-01-02"))) == 0, "an empty day")

	// Today by default: a patient about to arrive, checked in, waits there.
	now := time.Now().UTC().Truncate(time.Minute)
	soon := s.bookAppointmentID(t, "reception", apptInput(d.patients[4], d.doctor, utcRFC(now.Add(10*time.Minute)), utcRFC(now.Add(30*time.Minute))))
	s.as("reception", checkInVisitMutation, map[string]any{"id": soon}).decode(t, &struct{}{})
	soonDate := now.Add(10 * time.Minute).In(loc).Format("2006-01-02")
	found := false
	for _, e := range queue("reception", soonDate) {
		found = found || (e.ID == soon && e.Status == "CHECKED_IN")
	}
	must(t, found, "the checked-in patient is not in the queue of %s", soonDate)
	today := time.Now().In(loc).Format("2006-01-02")
	for _, e := range queue("doctor", nil) {
		start, _ := time.Parse(time.RFC3339, e.StartAt)
		must(t, start.In(loc).Format("2006-01-02") == today, "today's queue has %s", e.StartAt)
	}

	r := s.as("patient", departmentQueueQuery, map[string]any{"d": d.general})
	must(t, r.hasCode("FORBIDDEN"), "the patient app reads the queue: %s", describe(r))
	r = s.as("billing", departmentQueueQuery, map[string]any{"d": d.general})
	must(t, r.hasCode("FORBIDDEN"), "billing reads the queue: %s", describe(r))
	r = s.as("reception", departmentQueueQuery, map[string]any{"d": "nope"})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "departmentId", "bad department: %s", describe(r))
	r = s.as("reception", departmentQueueQuery, map[string]any{"d": "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	must(t, r.hasCode("NOT_FOUND"), "unknown department: %s", describe(r))
}
