package scheduling

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/ehr"
)

// hospitalZone is three hours east of UTC and has no daylight saving, so
// local times in these tests differ from UTC but never shift.
var hospitalZone = time.FixedZone("UTC+3", 3*60*60)

// calendar is a fixture whose clock stands still at now, with the hospital
// in hospitalZone, and a working day a week ahead.
type calendar struct {
	fixture
	clock *time.Time
	day   time.Time // local midnight, seven days after today
}

func setupCalendar(t *testing.T) (context.Context, calendar) {
	ctx, f := setup(t)
	now := time.Now().UTC().Truncate(time.Minute)
	c := calendar{fixture: f, clock: &now}
	f.svc.hospital = hospitalZone
	f.svc.now = func() time.Time { return *c.clock }
	today := f.svc.localDay(now)
	c.day = time.Date(today.Year(), today.Month(), today.Day()+7, 0, 0, 0, 0, hospitalZone)
	return ctx, c
}

// at is hh:mm local on the working day, days later.
func (c calendar) at(days, hh, mm int) time.Time {
	return time.Date(c.day.Year(), c.day.Month(), c.day.Day()+days, hh, mm, 0, 0, hospitalZone)
}

func (c calendar) weekday(days int) int { return int(c.at(days, 0, 0).Weekday()) }

func (c calendar) now() time.Time { return *c.clock }

func (c calendar) mustBook(t *testing.T, ctx context.Context, patient int, provider string, start time.Time, minutes int) *ent.Appointment {
	t.Helper()
	a, err := c.book(ctx, patient, provider, start, minutes)
	if err != nil {
		t.Fatalf("book %s: %v", start, err)
	}
	return a
}

func (c calendar) book(ctx context.Context, patient int, provider string, start time.Time, minutes int) (*ent.Appointment, error) {
	return c.svc.Book(ctx, Booking{PatientID: c.patients[patient].ID, ProviderID: provider, StartAt: start, EndAt: start.Add(time.Duration(minutes) * time.Minute)})
}

func wantCode(t *testing.T, err error, code apperr.Code, what string) {
	t.Helper()
	if apperr.CodeOf(err) != code {
		t.Fatalf("%s: want %s, got %v", what, code, err)
	}
}

func wantField(t *testing.T, err error, field, what string) {
	t.Helper()
	if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != field {
		t.Fatalf("%s: want BAD_USER_INPUT on %s, got %v", what, field, err)
	}
}

func periodsOf(t *testing.T, ctx context.Context, c calendar, staffID string) []string {
	t.Helper()
	var out []string
	for _, p := range c.client.Staff.GetX(ctx, staffID).QueryAvailability().AllX(ctx) {
		out = append(out, time.Duration(p.StartMinute*int(time.Minute)).String()+"-"+time.Duration(p.EndMinute*int(time.Minute)).String())
	}
	return out
}

func TestSetAvailabilityValidates(t *testing.T) {
	ctx, c := setupCalendar(t)
	monday := func(start, end string) *AvailabilityPeriod {
		return &AvailabilityPeriod{Weekday: 1, StartTime: start, EndTime: end}
	}
	first, err := c.svc.SetAvailability(ctx, c.doctor.ID, []*AvailabilityPeriod{monday("14:00", "17:00"), monday("08:00", "12:00"), {Weekday: 0, StartTime: "20:00", EndTime: "24:00"}})
	if err != nil || len(first) != 3 {
		t.Fatalf("set: %v %v", first, err)
	}
	if first[0].Weekday != 0 || first[0].EndMinute != 24*60 || first[1].StartMinute != 8*60 || first[2].StartMinute != 14*60 {
		t.Fatalf("periods come back by weekday and start: %+v", first)
	}
	d1, d2 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2030, 6, 30, 0, 0, 0, 0, time.UTC)
	d3 := time.Date(2030, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		periods []*AvailabilityPeriod
		field   string
	}{
		{[]*AvailabilityPeriod{{Weekday: 7, StartTime: "08:00", EndTime: "09:00"}}, "periods[0].weekday"},
		{[]*AvailabilityPeriod{{Weekday: -1, StartTime: "08:00", EndTime: "09:00"}}, "periods[0].weekday"},
		{[]*AvailabilityPeriod{monday("8:00", "09:00")}, "periods[0].startTime"},
		{[]*AvailabilityPeriod{monday("+9:00", "10:00")}, "periods[0].startTime"},
		{[]*AvailabilityPeriod{monday("08:00", "09:+0")}, "periods[0].endTime"},
		{[]*AvailabilityPeriod{monday("24:00", "24:00")}, "periods[0].startTime"},
		{[]*AvailabilityPeriod{monday("08:60", "09:00")}, "periods[0].startTime"},
		{[]*AvailabilityPeriod{monday("08:00", "24:01")}, "periods[0].endTime"},
		{[]*AvailabilityPeriod{monday("08:00", "nine")}, "periods[0].endTime"},
		{[]*AvailabilityPeriod{monday("09:00", "09:00")}, "periods[0].endTime"},
		{[]*AvailabilityPeriod{monday("10:00", "09:00")}, "periods[0].endTime"},
		{[]*AvailabilityPeriod{monday("08:00", "12:00"), monday("11:59", "13:00")}, "periods[1].startTime"},
		{[]*AvailabilityPeriod{monday("08:00", "12:00"), {Weekday: 2, StartTime: "07:00", EndTime: "08:00"}, monday("07:00", "08:01")}, "periods[2].startTime"},
		{[]*AvailabilityPeriod{{Weekday: 1, StartTime: "08:00", EndTime: "12:00", ValidFrom: &d2, ValidTo: &d1}}, "periods[0].validTo"},
		{[]*AvailabilityPeriod{
			{Weekday: 1, StartTime: "08:00", EndTime: "12:00", ValidTo: &d2},
			{Weekday: 1, StartTime: "09:00", EndTime: "10:00", ValidFrom: &d2},
		}, "periods[1].startTime"},
	} {
		_, err := c.svc.SetAvailability(ctx, c.doctor.ID, tc.periods)
		wantField(t, err, tc.field, tc.field)
	}
	_, err = c.svc.SetAvailability(ctx, "nope", nil)
	wantField(t, err, "staffId", "malformed staff ID")
	_, err = c.svc.SetAvailability(ctx, "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", nil)
	wantCode(t, err, apperr.NotFound, "unknown staff")
	_, err = c.svc.SetAvailability(ctx, c.clerk.ID, []*AvailabilityPeriod{monday("08:00", "09:00")})
	wantField(t, err, "staffId", "a billing clerk has no appointments")
	if got := periodsOf(t, ctx, c, c.doctor.ID); len(got) != 3 {
		t.Fatalf("refused schedules changed the stored one: %v", got)
	}

	// Back to back on one day, and overlapping hours in seasons that do not
	// overlap, are both fine.
	got, err := c.svc.SetAvailability(ctx, c.doctor.ID, []*AvailabilityPeriod{
		monday("08:00", "12:00"), monday("12:00", "13:00"),
		{Weekday: 2, StartTime: "08:00", EndTime: "12:00", ValidTo: &d2},
		{Weekday: 2, StartTime: "09:00", EndTime: "10:00", ValidFrom: &d3},
	})
	if err != nil || len(got) != 4 || got[2].ValidTo == nil || !got[2].ValidTo.Equal(d2) {
		t.Fatalf("replace: %+v %v", got, err)
	}
	if got := periodsOf(t, ctx, c, c.doctor.ID); len(got) != 4 {
		t.Fatalf("the schedule was not replaced: %v", got)
	}
	if got, err := c.svc.SetAvailability(ctx, c.doctor.ID, nil); err != nil || len(got) != 0 || len(periodsOf(t, ctx, c, c.doctor.ID)) != 0 {
		t.Fatalf("clear: %v %v", got, err)
	}
}

func TestBookingKeepsToWorkingHoursAndTimeOff(t *testing.T) {
	ctx, c := setupCalendar(t)
	doc := c.doctor.ID
	// Any time at all before the provider has a schedule.
	if _, err := c.book(ctx, 0, doc, c.at(1, 3, 0), 30); err != nil {
		t.Fatalf("provider without a schedule: %v", err)
	}
	if _, err := c.svc.SetAvailability(ctx, doc, []*AvailabilityPeriod{{Weekday: c.weekday(0), StartTime: "09:00", EndTime: "12:00"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what   string
		start  time.Time
		length int
	}{
		{"before the period", c.at(0, 8, 30), 30},
		{"running past its end", c.at(0, 11, 45), 30},
		{"on another weekday", c.at(1, 9, 0), 30},
		// 09:00 UTC is 12:00 local: the period is local time.
		{"the period's hours read as UTC", time.Date(c.day.Year(), c.day.Month(), c.day.Day(), 9, 0, 0, 0, time.UTC), 30},
	} {
		_, err := c.book(ctx, 1, doc, tc.start, tc.length)
		wantCode(t, err, apperr.Conflict, tc.what)
	}
	first, err := c.book(ctx, 1, doc, c.at(0, 9, 0), 30)
	if err != nil {
		t.Fatalf("inside the period: %v", err)
	}
	if _, err := c.book(ctx, 0, doc, c.at(0, 11, 30), 30); err != nil {
		t.Fatalf("ending exactly at the period's end: %v", err)
	}
	// Next week's same weekday is inside again; a period valid only until
	// yesterday-in-a-week is not.
	if _, err := c.book(ctx, 1, doc, c.at(7, 10, 0), 30); err != nil {
		t.Fatalf("a week later: %v", err)
	}
	until := time.Date(c.day.Year(), c.day.Month(), c.day.Day()+13, 0, 0, 0, 0, time.UTC)
	if _, err := c.svc.SetAvailability(ctx, doc, []*AvailabilityPeriod{{Weekday: c.weekday(0), StartTime: "09:00", EndTime: "12:00", ValidTo: &until}}); err != nil {
		t.Fatal(err)
	}
	_, err = c.book(ctx, 1, doc, c.at(14, 10, 0), 30)
	wantCode(t, err, apperr.Conflict, "after the period's validTo")

	// Time off over a booked appointment is refused; elsewhere it blocks bookings.
	_, err = c.svc.AddTimeOff(ctx, TimeOff{StaffID: doc, StartAt: c.at(0, 8, 0), EndAt: c.at(0, 9, 15)})
	wantCode(t, err, apperr.Conflict, "time off over a booked appointment")
	reason := "Department meeting"
	off, err := c.svc.AddTimeOff(ctx, TimeOff{StaffID: doc, StartAt: c.at(0, 10, 0), EndAt: c.at(0, 11, 0), Reason: &reason})
	if err != nil || off.Reason == nil || *off.Reason != reason {
		t.Fatalf("time off: %+v %v", off, err)
	}
	_, err = c.book(ctx, 0, doc, c.at(0, 10, 45), 30)
	wantCode(t, err, apperr.Conflict, "during time off")
	if _, err := c.book(ctx, 0, doc, c.at(0, 9, 30), 30); err != nil {
		t.Fatalf("just before the time off: %v", err)
	}
	if _, err := c.svc.RemoveTimeOff(ctx, off.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.RemoveTimeOff(ctx, off.ID)
	wantCode(t, err, apperr.NotFound, "removing it twice")
	if _, err := c.book(ctx, 0, doc, c.at(0, 10, 45), 30); err != nil {
		t.Fatalf("the time off is gone: %v", err)
	}
	// A cancelled appointment no longer holds its time against time off.
	if _, err := c.svc.Cancel(ctx, first.ID, Cancellation{Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.svc.AddTimeOff(ctx, TimeOff{StaffID: doc, StartAt: c.at(0, 9, 0), EndAt: c.at(0, 9, 30)}); err != nil {
		t.Fatalf("time off over a cancelled appointment: %v", err)
	}

	for _, tc := range []struct {
		in    TimeOff
		field string
	}{
		{TimeOff{StaffID: "x", StartAt: c.at(2, 9, 0), EndAt: c.at(2, 10, 0)}, "input.staffId"},
		{TimeOff{StaffID: doc, StartAt: c.at(2, 9, 0), EndAt: c.at(2, 9, 0)}, "input.endAt"},
		{TimeOff{StaffID: doc, StartAt: c.at(2, 9, 0), EndAt: c.at(400, 9, 0)}, "input.endAt"},
		{TimeOff{StaffID: doc, StartAt: c.at(2, 9, 0), EndAt: c.at(2, 10, 0), Reason: ptr(strings.Repeat("x", 201))}, "input.reason"},
		{TimeOff{StaffID: c.clerk.ID, StartAt: c.at(2, 9, 0), EndAt: c.at(2, 10, 0)}, "input.staffId"},
		{TimeOff{StaffID: "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", StartAt: c.at(2, 9, 0), EndAt: c.at(2, 10, 0)}, "input.staffId"},
	} {
		_, err := c.svc.AddTimeOff(ctx, tc.in)
		wantField(t, err, tc.field, tc.field)
	}
	if n := c.client.ProviderTimeOff.Query().CountX(ctx); n != 1 {
		t.Fatalf("%d time-off rows, want the one accepted", n)
	}
}

func ptr[T any](v T) *T { return &v }

func TestRooms(t *testing.T) {
	ctx, c := setupCalendar(t)
	other := c.client.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(ctx)
	room, err := c.svc.CreateRoom(ctx, NewRoom{DepartmentID: c.doctor.DepartmentID, Code: " G-1 ", Name: "Consulting 1"})
	if err != nil || room.Code != "G-1" || !room.Active {
		t.Fatalf("create: %+v %v", room, err)
	}
	elsewhere, err := c.svc.CreateRoom(ctx, NewRoom{DepartmentID: other.ID, Code: "C-1", Name: "Echo"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		in    NewRoom
		field string
	}{
		{NewRoom{DepartmentID: "x", Code: "A", Name: "A"}, "input.departmentId"},
		{NewRoom{DepartmentID: "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV", Code: "A", Name: "A"}, "input.departmentId"},
		{NewRoom{DepartmentID: other.ID, Code: " ", Name: "A"}, "input.code"},
		{NewRoom{DepartmentID: other.ID, Code: strings.Repeat("A", 33), Name: "A"}, "input.code"},
		{NewRoom{DepartmentID: other.ID, Code: "A", Name: ""}, "input.name"},
		{NewRoom{DepartmentID: other.ID, Code: "G-1", Name: "Again"}, "input.code"},
	} {
		_, err := c.svc.CreateRoom(ctx, tc.in)
		wantField(t, err, tc.field, tc.field)
	}
	if n := c.client.Room.Query().CountX(ctx); n != 2 {
		t.Fatalf("%d rooms", n)
	}

	start := c.at(0, 10, 0)
	inRoom := func(patient int, provider string, roomID string, start time.Time) (*ent.Appointment, error) {
		return c.svc.Book(ctx, Booking{PatientID: c.patients[patient].ID, ProviderID: provider, StartAt: start, EndAt: start.Add(30 * time.Minute), RoomID: &roomID})
	}
	nurse := c.client.Staff.Create().SetGivenName("N").SetFamilyName("R").SetKind(staff.KindNURSE).SetDepartmentID(c.doctor.DepartmentID).SaveX(ctx)
	a, err := inRoom(0, c.doctor.ID, room.ID, start)
	if err != nil || a.RoomID == nil || *a.RoomID != room.ID {
		t.Fatalf("book with room: %+v %v", a, err)
	}
	_, err = inRoom(1, nurse.ID, room.ID, start.Add(15*time.Minute))
	wantCode(t, err, apperr.Conflict, "the room is taken")
	_, err = inRoom(1, nurse.ID, elsewhere.ID, start)
	wantField(t, err, "input.roomId", "a room of another department")
	_, err = inRoom(1, nurse.ID, "rom_01ARZ3NDEKTSV4RRFFQ69G5FAV", start)
	wantField(t, err, "input.roomId", "unknown room")
	_, err = inRoom(1, nurse.ID, "bad", start)
	wantField(t, err, "input.roomId", "malformed room")

	if _, err := c.svc.SetRoomActive(ctx, room.ID, false); err != nil {
		t.Fatal(err)
	}
	_, err = inRoom(1, nurse.ID, room.ID, start.Add(time.Hour))
	wantField(t, err, "input.roomId", "a room out of service")
	if r, err := c.svc.SetRoomActive(ctx, room.ID, true); err != nil || !r.Active {
		t.Fatalf("back in service: %+v %v", r, err)
	}
	if _, err := inRoom(1, nurse.ID, room.ID, start.Add(time.Hour)); err != nil {
		t.Fatalf("back in service: %v", err)
	}
	_, err = c.svc.SetRoomActive(ctx, "rom_01ARZ3NDEKTSV4RRFFQ69G5FAV", true)
	wantCode(t, err, apperr.NotFound, "unknown room")
	_, err = c.svc.SetRoomActive(ctx, "x", true)
	wantField(t, err, "id", "malformed room")
}

// TestConcurrentRoomBooking: different providers and patients, one room,
// one time: exactly one booking wins.
func TestConcurrentRoomBooking(t *testing.T) {
	ctx, c := setupCalendar(t)
	room, err := c.svc.CreateRoom(ctx, NewRoom{DepartmentID: c.doctor.DepartmentID, Code: "G-1", Name: "Consulting 1"})
	if err != nil {
		t.Fatal(err)
	}
	var providers []string
	for i := 0; i < 4; i++ {
		p := c.client.Staff.Create().SetGivenName("N").SetFamilyName("R").SetKind(staff.KindNURSE).SetDepartmentID(c.doctor.DepartmentID).SaveX(ctx)
		providers = append(providers, p.ID)
	}
	var pats []string
	for i := 0; i < 4; i++ {
		if i < 2 {
			pats = append(pats, c.patients[i].ID)
			continue
		}
		p := c.client.Patient.Create().SetMrn([]string{"100000025", "100000033"}[i-2]).SetGivenName("P").SetFamilyName("Q").
			SetBirthDate(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex("OTHER").SaveX(ctx)
		pats = append(pats, p.ID)
	}
	start := c.at(0, 10, 0)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = c.svc.Book(ctx, Booking{PatientID: pats[i], ProviderID: providers[i], StartAt: start.Add(time.Duration(i) * time.Minute),
				EndAt: start.Add(30 * time.Minute), RoomID: &room.ID})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch apperr.CodeOf(err) {
		case apperr.Conflict:
		default:
			if err != nil {
				t.Fatalf("unexpected: %v", err)
			}
			wins++
		}
	}
	if wins != 1 || c.client.Appointment.Query().CountX(ctx) != 1 {
		t.Fatalf("wins %d, stored %d", wins, c.client.Appointment.Query().CountX(ctx))
	}
}

func TestReschedule(t *testing.T) {
	ctx, c := setupCalendar(t)
	doc := c.doctor.ID
	if _, err := c.svc.SetAvailability(ctx, doc, []*AvailabilityPeriod{{Weekday: c.weekday(0), StartTime: "09:00", EndTime: "12:00"}}); err != nil {
		t.Fatal(err)
	}
	room, _ := c.svc.CreateRoom(ctx, NewRoom{DepartmentID: c.doctor.DepartmentID, Code: "G-1", Name: "Consulting 1"})
	a, err := c.svc.Book(ctx, Booking{PatientID: c.patients[0].ID, ProviderID: doc, StartAt: c.at(0, 9, 0), EndAt: c.at(0, 9, 30), RoomID: &room.ID})
	if err != nil {
		t.Fatal(err)
	}
	// The nurse keeps no schedule here; what the two share is the room.
	nurse := c.client.Staff.Create().SetGivenName("N").SetFamilyName("R").SetKind(staff.KindNURSE).SetDepartmentID(c.doctor.DepartmentID).SaveX(ctx)
	b := c.mustBook(t, ctx, 1, nurse.ID, c.at(0, 10, 0), 30)
	move := func(id string, start time.Time, room graphql.Omittable[*string]) (*ent.Appointment, error) {
		return c.svc.Reschedule(ctx, id, Rescheduling{StartAt: start, EndAt: start.Add(30 * time.Minute), RoomID: room})
	}
	keep := graphql.Omittable[*string]{}
	before := c.client.OutboxEvent.Query().CountX(ctx)

	// Overlapping itself is fine: a quarter of an hour later.
	moved, err := move(a.ID, c.at(0, 9, 15), keep)
	if err != nil || !moved.StartAt.Equal(c.at(0, 9, 15)) || moved.RoomID == nil || *moved.RoomID != room.ID {
		t.Fatalf("move within itself: %+v %v", moved, err)
	}
	other := c.mustBook(t, ctx, 1, doc, c.at(0, 10, 30), 30)
	_, err = move(a.ID, c.at(0, 10, 15), keep)
	wantCode(t, err, apperr.Conflict, "onto the provider's other appointment")
	_, err = move(a.ID, c.at(0, 11, 45), keep)
	wantCode(t, err, apperr.Conflict, "past the working period")
	_, err = move(b.ID, c.at(0, 9, 0), graphql.OmittableOf(&room.ID))
	wantCode(t, err, apperr.Conflict, "into the room while it is taken")
	_, err = c.svc.Reschedule(ctx, a.ID, Rescheduling{StartAt: c.at(0, 11, 0), EndAt: c.at(0, 10, 0)})
	wantField(t, err, "input.endAt", "end before start")
	_, err = move(a.ID, c.now().Add(-2*time.Hour), keep)
	wantField(t, err, "input.startAt", "into the past")
	_, err = move(a.ID, c.at(0, 11, 0), graphql.OmittableOf(ptr("bad")))
	wantField(t, err, "input.roomId", "malformed room")
	_, err = move("apt_01ARZ3NDEKTSV4RRFFQ69G5FAV", c.at(0, 11, 0), keep)
	wantCode(t, err, apperr.NotFound, "unknown appointment")
	if got := c.client.Appointment.GetX(ctx, a.ID); !got.StartAt.Equal(c.at(0, 9, 15)) {
		t.Fatalf("a refused reschedule moved it: %v", got.StartAt)
	}

	// Giving the room up frees it for the other appointment.
	if moved, err = move(a.ID, c.at(0, 11, 0), graphql.OmittableOf[*string](nil)); err != nil || moved.RoomID != nil || other.ID == moved.ID {
		t.Fatalf("give up the room: %+v %v", moved, err)
	}
	if moved, err = move(b.ID, c.at(0, 9, 0), graphql.OmittableOf(&room.ID)); err != nil || moved.RoomID == nil {
		t.Fatalf("take the room: %+v %v", moved, err)
	}
	rescheduled := c.client.OutboxEvent.Query().Where(outboxevent.Type(string(Rescheduled))).CountX(ctx)
	if after := c.client.OutboxEvent.Query().CountX(ctx); after-before != 4 || rescheduled != 3 {
		t.Fatalf("%d events, %d RESCHEDULED; want one per successful move and one booking", after-before, rescheduled)
	}

	if _, err := c.svc.Cancel(ctx, b.ID, Cancellation{Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	_, err = move(b.ID, c.at(0, 10, 0), keep)
	wantCode(t, err, apperr.Conflict, "a cancelled appointment")
}

func TestVisitStartsAndCompletes(t *testing.T) {
	ctx, c := setupCalendar(t)
	a, err := c.book(ctx, 0, c.doctor.ID, c.now().Add(10*time.Minute), 20)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.Start(ctx, a.ID)
	wantCode(t, err, apperr.Conflict, "start before check-in")
	_, err = c.svc.Complete(ctx, a.ID)
	wantCode(t, err, apperr.Conflict, "complete before start")
	if _, err := c.svc.CheckIn(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.MarkNoShow(ctx, a.ID)
	wantCode(t, err, apperr.Conflict, "no-show after check-in")
	_, err = c.svc.Complete(ctx, a.ID)
	wantCode(t, err, apperr.Conflict, "complete a checked-in one")
	if c.client.Encounter.Query().CountX(ctx) != 0 {
		t.Fatal("refused moves opened an encounter")
	}

	started, err := c.svc.Start(ctx, a.ID)
	if err != nil || started.Status != appointment.StatusIN_PROGRESS || started.StartedAt == nil {
		t.Fatalf("start: %+v %v", started, err)
	}
	enc := c.client.Encounter.Query().OnlyX(ctx)
	if enc.Type != encounter.TypeOUTPATIENT || enc.Status != encounter.StatusIN_PROGRESS || enc.PatientID != a.PatientID ||
		deref(enc.AppointmentID) != a.ID || deref(enc.ProviderID) != a.ProviderID || deref(enc.DepartmentID) != a.DepartmentID ||
		!enc.StartedAt.Equal(*started.StartedAt) || deref(enc.Reason) != "" {
		t.Fatalf("encounter: %+v", enc)
	}
	_, err = c.svc.Start(ctx, a.ID)
	wantCode(t, err, apperr.Conflict, "start twice")
	_, err = c.svc.Cancel(ctx, a.ID, Cancellation{Reason: "x"})
	wantCode(t, err, apperr.Conflict, "cancel a visit in progress")
	if n := c.client.Encounter.Query().CountX(ctx); n != 1 {
		t.Fatalf("%d encounters", n)
	}

	done, err := c.svc.Complete(ctx, a.ID)
	if err != nil || done.Status != appointment.StatusCOMPLETED || done.CompletedAt == nil {
		t.Fatalf("complete: %+v %v", done, err)
	}
	enc = c.client.Encounter.GetX(ctx, enc.ID)
	if enc.Status != encounter.StatusFINISHED || enc.EndedAt == nil || !enc.EndedAt.Equal(*done.CompletedAt) {
		t.Fatalf("finished encounter: %+v", enc)
	}
	for what, move := range map[string]func(context.Context, string) (*ent.Appointment, error){
		"complete twice": c.svc.Complete, "start again": c.svc.Start, "check in again": c.svc.CheckIn, "no-show": c.svc.MarkNoShow,
	} {
		_, err := move(ctx, a.ID)
		wantCode(t, err, apperr.Conflict, what)
	}
	for _, typ := range []EventType{Booked, CheckedIn, Started, Completed} {
		if n := c.client.OutboxEvent.Query().Where(outboxevent.Type(string(typ))).CountX(ctx); n != 1 {
			t.Fatalf("%d %s events", n, typ)
		}
	}
	// The finished encounter is announced as when the record finishes one,
	// which is what billing charges a consultation for.
	finished := c.client.OutboxEvent.Query().
		Where(outboxevent.Topic(ehr.EncountersTopic), outboxevent.Type(ehr.EncounterFinished)).AllX(ctx)
	if len(finished) != 1 || !strings.Contains(string(finished[0].Payload), enc.ID) {
		t.Fatalf("encounter events: %+v", finished)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestConcurrentStart: many starts of one appointment, one encounter.
func TestConcurrentStart(t *testing.T) {
	ctx, c := setupCalendar(t)
	a, err := c.book(ctx, 0, c.doctor.ID, c.now().Add(10*time.Minute), 20)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.svc.CheckIn(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Add(1)
		go func(i int) { defer wg.Done(); _, errs[i] = c.svc.Start(ctx, a.ID) }(i)
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if apperr.CodeOf(err) != apperr.Conflict {
			t.Fatalf("unexpected: %v", err)
		}
	}
	if n := c.client.Encounter.Query().CountX(ctx); wins != 1 || n != 1 {
		t.Fatalf("wins %d, encounters %d", wins, n)
	}
}

func TestNoShows(t *testing.T) {
	ctx, c := setupCalendar(t)
	// Appointments booked when they were still ahead; the clock then moves on.
	booked := c.now()
	ended, err := c.book(ctx, 0, c.doctor.ID, booked.Add(-50*time.Minute), 20) // ended 30 minutes ago
	if err != nil {
		t.Fatal(err)
	}
	endsSoon, err := c.book(ctx, 1, c.doctor.ID, booked.Add(-10*time.Minute), 20)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.svc.MarkNoShow(ctx, endsSoon.ID)
	wantCode(t, err, apperr.Conflict, "no-show before the end")
	if a, err := c.svc.MarkNoShow(ctx, ended.ID); err != nil || a.Status != appointment.StatusNO_SHOW {
		t.Fatalf("no-show after the end: %+v %v", a, err)
	}
	_, err = c.svc.MarkNoShow(ctx, ended.ID)
	wantCode(t, err, apperr.Conflict, "no-show twice")
	_, err = c.svc.CheckIn(ctx, ended.ID)
	wantCode(t, err, apperr.Conflict, "check in a no-show")
	// A no-show frees its time.
	if _, err := c.book(ctx, 1, c.doctor.ID, booked.Add(-50*time.Minute), 20); err != nil {
		t.Fatalf("rebook a no-show's time: %v", err)
	}

	// Three hours on: everything booked has ended more than the grace ago
	// except what is checked in or ahead.
	checkedIn := c.mustBook(t, ctx, 1, c.doctor.ID, booked.Add(30*time.Minute), 20)
	if _, err := c.svc.CheckIn(ctx, checkedIn.ID); err != nil {
		t.Fatal(err)
	}
	ahead := c.mustBook(t, ctx, 0, c.doctor.ID, booked.Add(5*time.Hour), 20)
	later := booked.Add(3 * time.Hour)
	n, err := c.svc.MarkNoShows(ctx, later)
	if err != nil || n != 2 {
		t.Fatalf("sweep: %d %v (want the rebooked one and endsSoon)", n, err)
	}
	if n, err := c.svc.MarkNoShows(ctx, later); err != nil || n != 0 {
		t.Fatalf("second sweep: %d %v", n, err)
	}
	if got := c.client.Appointment.GetX(ctx, endsSoon.ID).Status; got != appointment.StatusNO_SHOW {
		t.Fatalf("endsSoon is %s", got)
	}
	for _, id := range []string{checkedIn.ID, ahead.ID} {
		if got := c.client.Appointment.GetX(ctx, id).Status; got == appointment.StatusNO_SHOW {
			t.Fatalf("%s swept", id)
		}
	}
	if n := c.client.OutboxEvent.Query().Where(outboxevent.Type(string(NoShow))).CountX(ctx); n != 3 {
		t.Fatalf("%d NO_SHOW events, want one per appointment", n)
	}
	// Within the grace a just-ended appointment is left alone.
	justEnded := c.mustBook(t, ctx, 0, c.doctor.ID, booked.Add(6*time.Hour), 30)
	if n, err := c.svc.MarkNoShows(ctx, justEnded.EndAt.Add(NoShowGrace-time.Minute)); err != nil || n != 1 {
		t.Fatalf("sweep within the grace: %d %v (want only the one ahead, which ended long before)", n, err)
	}
	if got := c.client.Appointment.GetX(ctx, justEnded.ID).Status; got != appointment.StatusBOOKED {
		t.Fatalf("swept within the grace: %s", got)
	}
}

// TestConcurrentSweeps: sweepers of several processes mark each
// appointment, and announce it, once.
func TestConcurrentSweeps(t *testing.T) {
	ctx, c := setupCalendar(t)
	for i := 0; i < 6; i++ {
		if _, err := c.book(ctx, i%2, c.doctor.ID, c.now().Add(time.Duration(i)*time.Hour), 30); err != nil {
			t.Fatal(err)
		}
	}
	later := c.now().Add(12 * time.Hour)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			n, err := c.svc.MarkNoShows(ctx, later)
			if err != nil {
				t.Errorf("sweep: %v", err)
			}
			counts[i] = n
		}(i)
	}
	wg.Wait()
	total := 0
	for _, n := range counts {
		total += n
	}
	if events := c.client.OutboxEvent.Query().Where(outboxevent.Type(string(NoShow))).CountX(ctx); total != 6 || events != 6 {
		t.Fatalf("marked %d (%v), %d events; want 6", total, counts, events)
	}
}

func TestAvailableSlots(t *testing.T) {
	ctx, c := setupCalendar(t)
	doc := c.doctor.ID
	dep := c.doctor.DepartmentID
	nurse := c.client.Staff.Create().SetGivenName("N").SetFamilyName("R").SetKind(staff.KindNURSE).SetDepartmentID(dep).SaveX(ctx)
	gone := c.client.Staff.Create().SetGivenName("O").SetFamilyName("L").SetKind(staff.KindDOCTOR).SetDepartmentID(dep).SaveX(ctx)
	c.client.Staff.Create().SetGivenName("W").SetFamilyName("I").SetKind(staff.KindDOCTOR).SetDepartmentID(dep).SaveX(ctx) // no schedule
	wd := c.weekday(0)
	for _, id := range []string{doc, nurse.ID, gone.ID} {
		if _, err := c.svc.SetAvailability(ctx, id, []*AvailabilityPeriod{{Weekday: wd, StartTime: "09:00", EndTime: "11:00"}}); err != nil {
			t.Fatal(err)
		}
	}
	c.client.Staff.UpdateOneID(gone.ID).SetActive(false).ExecX(ctx)

	search := func(in SlotSearch) []string {
		t.Helper()
		slots, err := c.svc.AvailableSlots(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range slots {
			who := "D"
			if s.Provider.ID == nurse.ID {
				who = "N"
			}
			local := s.Start.In(hospitalZone)
			if local.Day() != c.day.Day() {
				who += "+"
			}
			out = append(out, who+local.Format("15:04")+"-"+s.End.In(hospitalZone).Format("15:04"))
		}
		return strings.Fields(strings.Join(out, " "))
	}
	mins := func(n int) *int { return &n }
	day := SlotSearch{ProviderID: &doc, From: c.at(0, 0, 0), To: c.at(1, 0, 0), DurationMinutes: mins(30)}
	if got := strings.Join(search(day), " "); got != "D09:00-09:30 D09:30-10:00 D10:00-10:30 D10:30-11:00" {
		t.Fatalf("a free morning: %s", got)
	}
	if _, err := c.book(ctx, 0, doc, c.at(0, 9, 40), 15); err != nil {
		t.Fatal(err)
	}
	cancelled, _ := c.book(ctx, 1, doc, c.at(0, 10, 0), 30)
	if _, err := c.svc.Cancel(ctx, cancelled.ID, Cancellation{Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.svc.AddTimeOff(ctx, TimeOff{StaffID: doc, StartAt: c.at(0, 10, 30), EndAt: c.at(0, 12, 0)}); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(search(day), " "); got != "D09:00-09:30 D10:00-10:30" {
		t.Fatalf("booked and time off left out, the cancelled time free: %s", got)
	}
	// The default length and step is a quarter of an hour; the range cuts
	// slots off at both ends.
	narrow := SlotSearch{ProviderID: &doc, From: c.at(0, 9, 10), To: c.at(0, 10, 20)}
	if got := strings.Join(search(narrow), " "); got != "D09:15-09:30 D10:00-10:15" {
		t.Fatalf("narrow range, default duration: %s", got)
	}
	// A whole department: active providers with a schedule, earliest first,
	// across days and bounded by limit.
	dept := SlotSearch{DepartmentID: &dep, From: c.at(0, 0, 0), To: c.at(7, 23, 0), DurationMinutes: mins(60)}
	// The doctor's hours on the first day are taken by the booking and the
	// time off.
	if got := strings.Join(search(dept), " "); got != "N09:00-10:00 N10:00-11:00 D+09:00-10:00 N+09:00-10:00 D+10:00-11:00 N+10:00-11:00" {
		t.Fatalf("department: %s", got)
	}
	dept.Limit = mins(3)
	if got := strings.Join(search(dept), " "); got != "N09:00-10:00 N10:00-11:00 D+09:00-10:00" {
		t.Fatalf("limited: %s", got)
	}
	// Slots already begun are not offered.
	*c.clock = c.at(0, 9, 5).UTC()
	if got := strings.Join(search(day), " "); got != "D10:00-10:30" {
		t.Fatalf("after 09:05: %s", got)
	}

	for _, tc := range []struct {
		in    SlotSearch
		field string
	}{
		{SlotSearch{From: c.at(0, 0, 0), To: c.at(1, 0, 0)}, "input.providerId"},
		{SlotSearch{ProviderID: &doc, DepartmentID: &dep, From: c.at(0, 0, 0), To: c.at(1, 0, 0)}, "input.providerId"},
		{SlotSearch{ProviderID: ptr("x"), From: c.at(0, 0, 0), To: c.at(1, 0, 0)}, "input.providerId"},
		{SlotSearch{ProviderID: ptr("stf_01ARZ3NDEKTSV4RRFFQ69G5FAV"), From: c.at(0, 0, 0), To: c.at(1, 0, 0)}, "input.providerId"},
		{SlotSearch{ProviderID: &gone.ID, From: c.at(0, 0, 0), To: c.at(1, 0, 0)}, "input.providerId"},
		{SlotSearch{ProviderID: &c.clerk.ID, From: c.at(0, 0, 0), To: c.at(1, 0, 0)}, "input.providerId"},
		{SlotSearch{DepartmentID: ptr("x"), From: c.at(0, 0, 0), To: c.at(1, 0, 0)}, "input.departmentId"},
		{SlotSearch{DepartmentID: ptr("dep_01ARZ3NDEKTSV4RRFFQ69G5FAV"), From: c.at(0, 0, 0), To: c.at(1, 0, 0)}, "input.departmentId"},
		{SlotSearch{ProviderID: &doc, From: c.at(1, 0, 0), To: c.at(1, 0, 0)}, "input.to"},
		{SlotSearch{ProviderID: &doc, From: c.at(0, 0, 0), To: c.at(32, 0, 0)}, "input.to"},
		{SlotSearch{ProviderID: &doc, From: c.at(0, 0, 0), To: c.at(1, 0, 0), DurationMinutes: mins(4)}, "input.durationMinutes"},
		{SlotSearch{ProviderID: &doc, From: c.at(0, 0, 0), To: c.at(1, 0, 0), DurationMinutes: mins(481)}, "input.durationMinutes"},
		{SlotSearch{ProviderID: &doc, From: c.at(0, 0, 0), To: c.at(1, 0, 0), Limit: mins(0)}, "input.limit"},
		{SlotSearch{ProviderID: &doc, From: c.at(0, 0, 0), To: c.at(1, 0, 0), Limit: mins(501)}, "input.limit"},
	} {
		_, err := c.svc.AvailableSlots(ctx, tc.in)
		wantField(t, err, tc.field, tc.field)
	}
}

func TestQueue(t *testing.T) {
	ctx, c := setupCalendar(t)
	nurse := c.client.Staff.Create().SetGivenName("N").SetFamilyName("R").SetKind(staff.KindNURSE).SetDepartmentID(c.doctor.DepartmentID).SaveX(ctx)
	other := c.client.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(ctx)
	cardio := c.client.Staff.Create().SetGivenName("C").SetFamilyName("A").SetKind(staff.KindDOCTOR).SetDepartment(other).SaveX(ctx)
	second := c.mustBook(t, ctx, 0, c.doctor.ID, c.at(0, 10, 0), 30)
	first := c.mustBook(t, ctx, 1, nurse.ID, c.at(0, 9, 0), 30)
	// 00:30 local is the evening before in UTC, still this local day; 23:30
	// local is this local day's last half hour.
	earliest := c.mustBook(t, ctx, 1, c.doctor.ID, c.at(0, 0, 30), 30)
	latest := c.mustBook(t, ctx, 0, nurse.ID, c.at(0, 23, 30), 30)
	cancelled := c.mustBook(t, ctx, 0, nurse.ID, c.at(0, 11, 0), 30)
	if _, err := c.svc.Cancel(ctx, cancelled.ID, Cancellation{Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	c.mustBook(t, ctx, 1, cardio.ID, c.at(0, 12, 0), 30)    // another department
	c.mustBook(t, ctx, 0, c.doctor.ID, c.at(1, 0, 0), 30)   // the next local day
	c.mustBook(t, ctx, 0, c.doctor.ID, c.at(-1, 23, 0), 30) // the local day before

	date := time.Date(c.day.Year(), c.day.Month(), c.day.Day(), 0, 0, 0, 0, time.UTC)
	q, err := c.svc.Queue(ctx, c.doctor.DepartmentID, &date)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range q {
		got = append(got, a.ID)
		if a.Edges.Patient == nil || a.Edges.Provider == nil {
			t.Fatalf("patient and provider come loaded: %+v", a.Edges)
		}
	}
	want := []string{earliest.ID, first.ID, second.ID, latest.ID}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("queue %v, want %v", got, want)
	}
	// Today by default: nothing is booked today.
	if q, err := c.svc.Queue(ctx, c.doctor.DepartmentID, nil); err != nil || len(q) != 0 {
		t.Fatalf("today: %v %v", q, err)
	}
	*c.clock = c.at(0, 8, 0).UTC()
	if q, err := c.svc.Queue(ctx, c.doctor.DepartmentID, nil); err != nil || len(q) != 4 {
		t.Fatalf("today, a week on: %d %v", len(q), err)
	}
	_, err = c.svc.Queue(ctx, "x", nil)
	wantField(t, err, "departmentId", "malformed department")
	_, err = c.svc.Queue(ctx, "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV", nil)
	wantCode(t, err, apperr.NotFound, "unknown department")
}
