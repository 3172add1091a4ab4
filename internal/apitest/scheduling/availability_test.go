package scheduling

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the hospital zone below, on hosts without a zone database

	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/scheduling"
)

// schedZone is the zone the working-hours tests run the server in: three
// hours east of UTC all year, so local and UTC times differ every day.
const schedZone = "Africa/Nairobi"

func inSchedZone(c *config.Config) { c.TimeZone = schedZone }

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
func newScheduledProvider(t testing.TB, s *harness.Server, departmentID string, kind staff.Kind) string {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	m, err := s.App.Store.Client.Staff.Create().SetGivenName("Test").SetFamilyName("Provider").
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

func slotStarts(s *harness.Server, t testing.TB, user string, in map[string]any) []string {
	t.Helper()
	var out struct{ AvailableSlots []availableSlotResult }
	s.As(user, availableSlotsQuery, map[string]any{"in": in}).Decode(t, &out)
	var starts []string
	for _, sl := range out.AvailableSlots {
		starts = append(starts, sl.Start)
	}
	return starts
}

func bookAppointmentID(s *harness.Server, t testing.TB, user string, in map[string]any) string {
	t.Helper()
	var out struct{ BookAppointment struct{ ID string } }
	s.As(user, harness.BookMutation, map[string]any{"in": in}).Decode(t, &out)
	return out.BookAppointment.ID
}

func apptInput(patientID, providerID, start, end string) map[string]any {
	return map[string]any{"patientId": patientID, "providerId": providerID, "startAt": start, "endAt": end}
}

func TestWorkingHoursAndSlots(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t, inSchedZone)
	d := s.Demo()
	loc := schedLocation(t)
	prov := newScheduledProvider(t, s, d.General, staff.KindDOCTOR)
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
	r := s.As("doctor", setAvailabilityMut, map[string]any{"s": prov, "p": periods})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a doctor sets the rota: %s", harness.Describe(r))
	s.As("reception", setAvailabilityMut, map[string]any{"s": prov, "p": periods}).Decode(t, &set)
	got := set.SetProviderAvailability
	harness.Must(t, len(got) == 2 && got[0].StartMinute == 9*60 && got[1].EndMinute == 16*60 && got[1].ValidFrom != nil &&
		*got[1].ValidFrom == day.Format("2006-01-02") && got[0].Weekday == wd, "set: %+v", got)

	// A refused schedule names the period at fault and keeps the old one.
	r = s.As("reception", setAvailabilityMut, map[string]any{"s": prov, "p": []map[string]any{
		{"weekday": wd, "startTime": "09:00", "endTime": "12:00"},
		{"weekday": wd, "startTime": "11:00", "endTime": "13:00"},
	}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "periods[1].startTime", "overlap: %s", harness.Describe(r))
	r = s.As("reception", setAvailabilityMut, map[string]any{"s": prov, "p": []map[string]any{{"weekday": wd, "startTime": "9am", "endTime": "12:00"}}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "periods[0].startTime", "bad time: %s", harness.Describe(r))
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
		s.As("reception", providerScheduleQuery, map[string]any{"id": prov}).Decode(t, &out)
		n := out.Staffs.Edges[0].Node
		return len(n.Availability), len(n.TimeOff)
	}
	periodsKept, _ := schedule()
	harness.Must(t, periodsKept == 2, "a refused schedule changed the stored one: %d periods", periodsKept)

	// Booking keeps to local working hours.
	r = s.As("reception", harness.BookMutation, map[string]any{"in": apptInput(d.Patients[1], prov, schedAt(day, 8, 30), schedAt(day, 9, 0))})
	harness.Must(t, r.HasCode("CONFLICT"), "before hours: %s", harness.Describe(r))
	utcNine := time.Date(day.Year(), day.Month(), day.Day(), 9, 0, 0, 0, time.UTC)
	r = s.As("reception", harness.BookMutation, map[string]any{"in": apptInput(d.Patients[1], prov, utcRFC(utcNine), utcRFC(utcNine.Add(time.Hour)))})
	harness.Must(t, r.HasCode("CONFLICT"), "09:00 UTC is noon in the hospital, after hours: %s", harness.Describe(r))
	r = s.As("reception", harness.BookMutation, map[string]any{"in": apptInput(d.Patients[1], prov, schedAt(day, 9, 0), schedAt(day, 10, 0))})
	harness.Must(t, len(r.Errors) == 0, "inside hours: %s", harness.Describe(r))

	hourly := map[string]any{"providerId": prov, "from": schedAt(day, 0, 0), "to": schedAt(day, 23, 59), "durationMinutes": 60}
	want := []string{schedAt(day, 10, 0), schedAt(day, 11, 0), schedAt(day, 14, 0), schedAt(day, 15, 0)}
	harness.Must(t, strings.Join(slotStarts(s, t, "reception", hourly), " ") == strings.Join(want, " "),
		"slots around the booked hour: %v, want %v", slotStarts(s, t, "reception", hourly), want)
	var bySlot struct{ AvailableSlots []availableSlotResult }
	s.As("doctor", availableSlotsQuery, map[string]any{"in": map[string]any{"departmentId": d.General, "from": schedAt(day, 0, 0), "to": schedAt(day, 23, 59), "durationMinutes": 60}}).Decode(t, &bySlot)
	harness.Must(t, len(bySlot.AvailableSlots) == 4, "the department's providers with hours are the new one only: %+v", bySlot)
	for _, sl := range bySlot.AvailableSlots {
		harness.Must(t, sl.Provider.ID == prov, "slot of %s", sl.Provider.ID)
	}

	// Time off takes its time out of the slots and the book.
	r = s.As("reception", addTimeOffMut, map[string]any{"in": map[string]any{"staffId": prov, "startAt": schedAt(day, 9, 30), "endAt": schedAt(day, 10, 30)}})
	harness.Must(t, r.HasCode("CONFLICT"), "time off over a booked appointment: %s", harness.Describe(r))
	var off struct {
		AddProviderTimeOff struct {
			ID, StartAt string
			Reason      *string
		}
	}
	s.As("reception", addTimeOffMut, map[string]any{"in": map[string]any{"staffId": prov, "startAt": schedAt(day, 14, 0), "endAt": schedAt(day, 16, 0), "reason": "Theatre"}}).Decode(t, &off)
	harness.Must(t, off.AddProviderTimeOff.StartAt == schedAt(day, 14, 0) && off.AddProviderTimeOff.Reason != nil, "time off: %+v", off)
	harness.Must(t, strings.Join(slotStarts(s, t, "reception", hourly), " ") == strings.Join(want[:2], " "), "slots without the time off: %v", slotStarts(s, t, "reception", hourly))
	r = s.As("reception", harness.BookMutation, map[string]any{"in": apptInput(d.Patients[2], prov, schedAt(day, 15, 0), schedAt(day, 15, 30))})
	harness.Must(t, r.HasCode("CONFLICT"), "booked during time off: %s", harness.Describe(r))
	r = s.As("reception", addTimeOffMut, map[string]any{"in": map[string]any{"staffId": prov, "startAt": schedAt(day, 17, 0), "endAt": schedAt(day, 16, 0)}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.endAt", "time off ending before it starts: %s", harness.Describe(r))
	_, offs := schedule()
	harness.Must(t, offs == 1, "%d time-off rows, want the one accepted", offs)

	r = s.As("nurse", removeTimeOffMut, map[string]any{"id": off.AddProviderTimeOff.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a nurse removes time off: %s", harness.Describe(r))
	s.As("reception", removeTimeOffMut, map[string]any{"id": off.AddProviderTimeOff.ID}).Decode(t, &struct{}{})
	r = s.As("reception", removeTimeOffMut, map[string]any{"id": off.AddProviderTimeOff.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "removed twice: %s", harness.Describe(r))
	harness.Must(t, strings.Join(slotStarts(s, t, "reception", hourly), " ") == strings.Join(want, " "), "slots after the time off is gone: %v", slotStarts(s, t, "reception", hourly))

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
		r := s.As("reception", availableSlotsQuery, map[string]any{"in": tc.in})
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == tc.field, "%v: want BAD_USER_INPUT on %s: %s", tc.in, tc.field, harness.Describe(r))
	}
	r = s.As("patient", availableSlotsQuery, map[string]any{"in": hourly})
	harness.Must(t, r.HasCode("FORBIDDEN"), "the patient app searches slots: %s", harness.Describe(r))

	// An empty schedule makes the provider bookable at any time again.
	s.As("admin", setAvailabilityMut, map[string]any{"s": prov, "p": []map[string]any{}}).Decode(t, &set)
	harness.Must(t, len(set.SetProviderAvailability) == 0, "cleared: %+v", set)
	r = s.As("reception", harness.BookMutation, map[string]any{"in": apptInput(d.Patients[2], prov, schedAt(day, 20, 0), schedAt(day, 20, 30))})
	harness.Must(t, len(r.Errors) == 0, "a provider without hours: %s", harness.Describe(r))
	harness.Must(t, len(slotStarts(s, t, "reception", hourly)) == 0, "a provider without hours has no slots to list")
}

type visitResult struct {
	ID, Status string
	StartedAt  *string
	Encounter  *struct{ ID, Type, Status string }
}

func TestVisitCourse(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	b := &harness.Booker{T: t, S: s, User: "reception"}
	feed := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("doctor"), map[string]any{"providerId": d.Nurse})
	harness.AwaitLive(t, func() string { return b.Book(d.Patients[3], d.Nurse) }, feed)
	next := func(wantType, wantID string) {
		t.Helper()
		ev := feed.Next()
		harness.Must(t, ev.Type == wantType && ev.Appointment.ID == wantID, "want %s of %s, got %s of %s", wantType, wantID, ev.Type, ev.Appointment.ID)
	}

	now := time.Now().UTC().Truncate(time.Minute)
	id := bookAppointmentID(s, t, "reception", apptInput(d.Patients[0], d.Nurse, utcRFC(now.Add(10*time.Minute)), utcRFC(now.Add(30*time.Minute))))
	next("BOOKED", id)
	vars := map[string]any{"id": id}
	r := s.As("nurse", startVisitMutation, vars)
	harness.Must(t, r.HasCode("CONFLICT"), "start before check-in: %s", harness.Describe(r))
	r = s.As("nurse", completeVisitMutation, vars)
	harness.Must(t, r.HasCode("CONFLICT"), "complete before start: %s", harness.Describe(r))
	s.As("reception", checkInVisitMutation, vars).Decode(t, &struct{}{})
	next("CHECKED_IN", id)

	r = s.As("reception", startVisitMutation, vars)
	harness.Must(t, r.HasCode("FORBIDDEN"), "the front desk starts a consultation: %s", harness.Describe(r))
	var started struct{ StartAppointment visitResult }
	s.As("nurse", startVisitMutation, vars).Decode(t, &started)
	v := started.StartAppointment
	harness.Must(t, v.Status == "IN_PROGRESS" && v.StartedAt != nil && v.Encounter != nil && v.Encounter.Type == "OUTPATIENT" && v.Encounter.Status == "IN_PROGRESS",
		"started: %+v", v)
	next("STARTED", id)
	r = s.As("doctor", startVisitMutation, vars)
	harness.Must(t, r.HasCode("CONFLICT"), "start twice: %s", harness.Describe(r))

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
		s.As(user, encountersOf, map[string]any{"p": d.Patients[0]}).Decode(t, &list)
		n := 0
		for _, e := range list.Node.Encounters.Edges {
			if e.Node.Appointment != nil && e.Node.Appointment.ID == id {
				n++
				harness.Must(t, e.Node.ID == v.Encounter.ID && e.Node.Provider.ID == d.Nurse && e.Node.Type == "OUTPATIENT", "%s sees %+v", user, e.Node)
			}
		}
		harness.Must(t, n == 1, "%s sees %d encounters of the appointment, want 1", user, n)
	}
	r = s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": v.Encounter.ID})
	harness.Must(t, len(r.Errors) == 0, "the patient's own encounter by node: %s", harness.Describe(r))
	theirs := bookAppointmentID(s, t, "reception", apptInput(d.Patients[1], d.Doctor, utcRFC(now.Add(10*time.Minute)), utcRFC(now.Add(30*time.Minute))))
	s.As("reception", checkInVisitMutation, map[string]any{"id": theirs}).Decode(t, &struct{}{})
	var other struct{ StartAppointment visitResult }
	s.As("doctor", startVisitMutation, map[string]any{"id": theirs}).Decode(t, &other)
	r = s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": other.StartAppointment.Encounter.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's encounter by node: %s", harness.Describe(r))
	r = s.As("patient", `query($id: ID!) { node(id: $id) { ... on Appointment { status } } }`, map[string]any{"id": theirs})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's visit by node: %s", harness.Describe(r))

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
	s.As("doctor", completeVisitMutation, vars).Decode(t, &done)
	c := done.CompleteAppointment
	harness.Must(t, c.Status == "COMPLETED" && c.CompletedAt != nil && c.Encounter.Status == "FINISHED" && c.Encounter.EndedAt != nil &&
		*c.Encounter.EndedAt == *c.CompletedAt, "completed: %+v", c)
	next("COMPLETED", id)
	for name, doc := range map[string]string{"complete twice": completeVisitMutation, "start again": startVisitMutation, "no-show": markNoShowMutation, "check in again": checkInVisitMutation} {
		r := s.As("doctor", doc, vars)
		harness.Must(t, r.HasCode("CONFLICT"), "%s: %s", name, harness.Describe(r))
	}
	r = s.As("reception", rescheduleApptMutation, map[string]any{"id": id, "in": map[string]any{"startAt": utcRFC(now.Add(time.Hour)), "endAt": utcRFC(now.Add(2 * time.Hour))}})
	harness.Must(t, r.HasCode("CONFLICT"), "reschedule a completed one: %s", harness.Describe(r))

	// No-shows: by hand once the appointment has ended, by the sweeper an
	// hour later.
	ended := bookAppointmentID(s, t, "reception", apptInput(d.Patients[1], d.Nurse, utcRFC(now.Add(-50*time.Minute)), utcRFC(now.Add(-30*time.Minute))))
	next("BOOKED", ended)
	future := bookAppointmentID(s, t, "reception", apptInput(d.Patients[2], d.Nurse, utcRFC(now.Add(40*time.Minute)), utcRFC(now.Add(time.Hour))))
	next("BOOKED", future)
	r = s.As("reception", markNoShowMutation, map[string]any{"id": future})
	harness.Must(t, r.HasCode("CONFLICT"), "no-show before the end: %s", harness.Describe(r))
	r = s.As("billing", markNoShowMutation, map[string]any{"id": ended})
	harness.Must(t, r.HasCode("FORBIDDEN"), "billing marks a no-show: %s", harness.Describe(r))
	var marked struct{ MarkNoShow struct{ Status string } }
	s.As("reception", markNoShowMutation, map[string]any{"id": ended}).Decode(t, &marked)
	harness.Must(t, marked.MarkNoShow.Status == "NO_SHOW", "%+v", marked)
	next("NO_SHOW", ended)

	sweeper := scheduling.NewService(s.App.Store, time.UTC)
	n, err := sweeper.MarkNoShows(context.Background(), now)
	harness.Must(t, err == nil && n == 0, "nothing has ended an hour ago: %d %v", n, err)
	n, err = sweeper.MarkNoShows(context.Background(), now.Add(2*time.Hour+time.Minute))
	harness.Must(t, err == nil && n == 1, "the sweep an hour after the end: %d %v", n, err)
	next("NO_SHOW", future)
	var status struct{ Node struct{ Status string } }
	s.As("reception", `query($id: ID!) { node(id: $id) { ... on Appointment { status } } }`, map[string]any{"id": future}).Decode(t, &status)
	harness.Must(t, status.Node.Status == "NO_SHOW", "swept: %+v", status)
	r = s.As("reception", checkInVisitMutation, map[string]any{"id": future})
	harness.Must(t, r.HasCode("CONFLICT"), "check in a no-show: %s", harness.Describe(r))
}

func TestRoomsAndRescheduling(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	var room struct {
		CreateRoom struct {
			ID, Code string
			Active   bool
		}
	}
	r := s.As("doctor", createRoomMut, map[string]any{"in": map[string]any{"departmentId": d.General, "code": "GEN-900", "name": "Minor procedures"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a doctor creates a room: %s", harness.Describe(r))
	s.As("reception", createRoomMut, map[string]any{"in": map[string]any{"departmentId": d.General, "code": "GEN-900", "name": "Minor procedures"}}).Decode(t, &room)
	harness.Must(t, room.CreateRoom.Code == "GEN-900" && room.CreateRoom.Active, "%+v", room)
	roomID := room.CreateRoom.ID
	r = s.As("reception", createRoomMut, map[string]any{"in": map[string]any{"departmentId": d.General, "code": "GEN-900", "name": "Again"}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.code", "duplicate code: %s", harness.Describe(r))

	// Many bookings of one room at overlapping times, each with its own
	// provider where it can: exactly one wins.
	var providers []string
	for i := 0; i < 4; i++ {
		providers = append(providers, newScheduledProvider(t, s, d.General, staff.KindNURSE))
	}
	start, _ := harness.Slot(4, 10)
	offset := func(d time.Duration) string {
		t0, _ := time.Parse(time.RFC3339, start)
		return utcRFC(t0.Add(d))
	}
	token := s.Token("reception")
	const attempts = 8
	results := make([]harness.Response, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// Not patients[2]: the rescheduling below moves next to their booking.
			in := apptInput(d.Patients[[]int{0, 1, 3, 4}[i%4]], providers[i%4], offset(time.Duration(i)*time.Minute), offset(time.Hour))
			in["roomId"] = roomID
			results[i] = s.Do(token, harness.BookMutation, map[string]any{"in": in})
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
			r.Decode(t, &out)
			winner = out.BookAppointment.ID
		case !r.HasCode("CONFLICT"):
			t.Errorf("unexpected outcome: %s", harness.Describe(r))
		}
	}
	harness.Must(t, wins == 1, "wins %d", wins)
	var inRoom struct {
		Room struct{ Appointments struct{ TotalCount int } }
	}
	s.As("admin", `query($id: ID!) { room: node(id: $id) { ... on Room { appointments { totalCount } } } }`, map[string]any{"id": roomID}).Decode(t, &inRoom)
	harness.Must(t, inRoom.Room.Appointments.TotalCount == 1, "appointments in the room: %d", inRoom.Room.Appointments.TotalCount)

	// Out of service: no new bookings in it.
	var active struct{ SetRoomActive struct{ Active bool } }
	s.As("reception", `mutation($id: ID!) { setRoomActive(id: $id, active: false) { active } }`, map[string]any{"id": roomID}).Decode(t, &active)
	harness.Must(t, !active.SetRoomActive.Active, "%+v", active)
	other := apptInput(d.Patients[2], d.Nurse, offset(2*time.Hour), offset(3*time.Hour))
	other["roomId"] = roomID
	r = s.As("reception", harness.BookMutation, map[string]any{"in": other})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.roomId", "booked into a room out of service: %s", harness.Describe(r))
	s.As("admin", `mutation($id: ID!) { setRoomActive(id: $id, active: true) { active } }`, map[string]any{"id": roomID}).Decode(t, &active)
	otherID := bookAppointmentID(s, t, "reception", other)

	// Rescheduling: the room stays when omitted, goes when null, and the
	// same checks as a apptInput apply, excluding the appointment itself.
	type moved struct {
		RescheduleAppointment struct {
			StartAt string
			Room    *struct{ ID string }
		}
	}
	var m moved
	s.As("doctor", rescheduleApptMutation, map[string]any{"id": winner, "in": map[string]any{"startAt": offset(30 * time.Minute), "endAt": offset(90 * time.Minute)}}).Decode(t, &m)
	harness.Must(t, m.RescheduleAppointment.StartAt == offset(30*time.Minute) && m.RescheduleAppointment.Room != nil && m.RescheduleAppointment.Room.ID == roomID,
		"moved within itself, room kept: %+v", m)
	r = s.As("reception", rescheduleApptMutation, map[string]any{"id": winner, "in": map[string]any{"startAt": offset(150 * time.Minute), "endAt": offset(200 * time.Minute)}})
	harness.Must(t, r.HasCode("CONFLICT"), "onto the other apptInput of the room: %s", harness.Describe(r))
	r = s.As("reception", rescheduleApptMutation, map[string]any{"id": winner, "in": map[string]any{"startAt": offset(5 * time.Hour), "endAt": offset(4 * time.Hour)}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.endAt", "end before start: %s", harness.Describe(r))
	s.As("reception", rescheduleApptMutation, map[string]any{"id": winner, "in": map[string]any{"startAt": offset(150 * time.Minute), "endAt": offset(200 * time.Minute), "roomId": nil}}).Decode(t, &m)
	harness.Must(t, m.RescheduleAppointment.Room == nil, "room given up: %+v", m)
	var check struct{ Node struct{ StartAt string } }
	s.As("reception", `query($id: ID!) { node(id: $id) { ... on Appointment { startAt } } }`, map[string]any{"id": winner}).Decode(t, &check)
	harness.Must(t, check.Node.StartAt == offset(150*time.Minute), "stored start: %+v", check)
	r = s.As("patient", rescheduleApptMutation, map[string]any{"id": otherID, "in": map[string]any{"startAt": offset(5 * time.Hour), "endAt": offset(6 * time.Hour)}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient reschedules: %s", harness.Describe(r))
}

func TestDepartmentQueue(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t, inSchedZone)
	d := s.Demo()
	loc := schedLocation(t)
	day := schedDay(loc, 5)
	date := day.Format("2006-01-02")

	// 01:00 in the hospital is the evening before in UTC, and 23:30 the
	// evening before is still the day before.
	early := bookAppointmentID(s, t, "reception", apptInput(d.Patients[1], d.Doctor, schedAt(day, 1, 0), schedAt(day, 1, 30)))
	bookAppointmentID(s, t, "reception", apptInput(d.Patients[1], d.Doctor, schedAt(day.AddDate(0, 0, -1), 23, 30), schedAt(day, 0, 0)))
	late := bookAppointmentID(s, t, "reception", apptInput(d.Patients[2], d.Doctor, schedAt(day, 10, 0), schedAt(day, 10, 30)))
	withRoom := apptInput(d.Patients[3], d.Nurse, schedAt(day, 8, 30), schedAt(day, 9, 0))
	var rooms struct {
		Rooms struct {
			Edges []struct{ Node struct{ ID, Code string } }
		}
	}
	s.As("reception", `{ rooms(where: {code: "GEN-101"}) { edges { node { id code } } } }`, nil).Decode(t, &rooms)
	withRoom["roomId"] = rooms.Rooms.Edges[0].Node.ID
	middle := bookAppointmentID(s, t, "reception", withRoom)
	cancelled := bookAppointmentID(s, t, "reception", apptInput(d.Patients[4], d.Nurse, schedAt(day, 9, 0), schedAt(day, 9, 30)))
	s.As("reception", cancelMutation, map[string]any{"id": cancelled, "r": "patient called"}).Decode(t, &struct{}{})
	bookAppointmentID(s, t, "reception", apptInput(d.Patients[4], d.Nurse, schedAt(day.AddDate(0, 0, 1), 0, 0), schedAt(day.AddDate(0, 0, 1), 0, 30)))

	type queueEntry struct {
		ID, Status, StartAt string
		Patient             struct{ ID string }
		Provider            struct{ ID string }
		Room                *struct{ Code string }
	}
	queue := func(user string, date any) []queueEntry {
		t.Helper()
		var out struct{ DepartmentQueue []queueEntry }
		s.As(user, departmentQueueQuery, map[string]any{"d": d.General, "date": date}).Decode(t, &out)
		return out.DepartmentQueue
	}
	q := queue("nurse", date)
	var ids []string
	for _, e := range q {
		ids = append(ids, e.ID)
	}
	harness.Must(t, strings.Join(ids, " ") == strings.Join([]string{early, middle, late}, " "), "queue %v, want %v", ids, []string{early, middle, late})
	harness.Must(t, q[1].Room != nil && q[1].Room.Code == "GEN-101" && q[1].Provider.ID == d.Nurse && q[1].Patient.ID == d.Patients[3], "who, with whom, where: %+v", q[1])
	harness.Must(t, len(queue("reception", day.AddDate(0, 0, 2).Format("2006-01-02"))) == 0, "an empty day")

	// Today by default: a patient about to arrive, checked in, waits there.
	now := time.Now().UTC().Truncate(time.Minute)
	soon := bookAppointmentID(s, t, "reception", apptInput(d.Patients[4], d.Doctor, utcRFC(now.Add(10*time.Minute)), utcRFC(now.Add(30*time.Minute))))
	s.As("reception", checkInVisitMutation, map[string]any{"id": soon}).Decode(t, &struct{}{})
	soonDate := now.Add(10 * time.Minute).In(loc).Format("2006-01-02")
	found := false
	for _, e := range queue("reception", soonDate) {
		found = found || (e.ID == soon && e.Status == "CHECKED_IN")
	}
	harness.Must(t, found, "the checked-in patient is not in the queue of %s", soonDate)
	today := time.Now().In(loc).Format("2006-01-02")
	for _, e := range queue("doctor", nil) {
		start, _ := time.Parse(time.RFC3339, e.StartAt)
		harness.Must(t, start.In(loc).Format("2006-01-02") == today, "today's queue has %s", e.StartAt)
	}

	r := s.As("patient", departmentQueueQuery, map[string]any{"d": d.General})
	harness.Must(t, r.HasCode("FORBIDDEN"), "the patient app reads the queue: %s", harness.Describe(r))
	r = s.As("billing", departmentQueueQuery, map[string]any{"d": d.General})
	harness.Must(t, r.HasCode("FORBIDDEN"), "billing reads the queue: %s", harness.Describe(r))
	r = s.As("reception", departmentQueueQuery, map[string]any{"d": "nope"})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "departmentId", "bad department: %s", harness.Describe(r))
	r = s.As("reception", departmentQueueQuery, map[string]any{"d": "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown department: %s", harness.Describe(r))
}
