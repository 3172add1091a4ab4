package scheduling

import (
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// TestRosteredShiftsAreWorkingPeriods: a provider with no weekly
// availability but a rostered night has slots through the night, past
// midnight, and is bookable only inside it; a shift that is not bookable
// (on call) gives neither; weekly availability still adds its own.
func TestRosteredShiftsAreWorkingPeriods(t *testing.T) {
	ctx, c := setupCalendar(t)
	night := c.client.ShiftDefinition.Create().SetCode("N").SetName("Night").SetKind(shiftdefinition.KindNIGHT).
		SetStartMinute(22 * 60).SetEndMinute(2 * 60).SaveX(ctx)
	onCall := c.client.ShiftDefinition.Create().SetCode("OC").SetName("On call").SetKind(shiftdefinition.KindON_CALL).
		SetStartMinute(8 * 60).SetEndMinute(12 * 60).SetBookable(false).SaveX(ctx)
	date := time.Date(c.day.Year(), c.day.Month(), c.day.Day(), 0, 0, 0, 0, time.UTC)
	c.client.RosterEntry.Create().SetStaffID(c.doctor.ID).SetDepartmentID(c.doctor.DepartmentID).SetShiftID(night.ID).
		SetDate(date).SetStartAt(c.at(0, 22, 0).UTC()).SetEndAt(c.at(1, 2, 0).UTC()).SetAssignedByID("usr_x").ExecX(ctx)
	c.client.RosterEntry.Create().SetStaffID(c.doctor.ID).SetDepartmentID(c.doctor.DepartmentID).SetShiftID(onCall.ID).
		SetDate(date.AddDate(0, 0, 2)).SetStartAt(c.at(2, 8, 0).UTC()).SetEndAt(c.at(2, 12, 0).UTC()).SetAssignedByID("usr_x").ExecX(ctx)

	minutes := 60
	search := func(from, to time.Time, dep *string) []*AvailableSlot {
		t.Helper()
		in := SlotSearch{From: from, To: to, DurationMinutes: &minutes}
		if dep != nil {
			in.DepartmentID = dep
		} else {
			in.ProviderID = &c.doctor.ID
		}
		slots, err := c.svc.AvailableSlots(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		return slots
	}
	slots := search(c.at(0, 0, 0), c.at(3, 0, 0), nil)
	var got []string
	for _, s := range slots {
		got = append(got, s.Start.In(hospitalZone).Format("02 15:04"))
	}
	want := []string{c.at(0, 22, 0).Format("02 15:04"), c.at(0, 23, 0).Format("02 15:04"), c.at(1, 0, 0).Format("02 15:04"), c.at(1, 1, 0).Format("02 15:04")}
	if len(got) != len(want) {
		t.Fatalf("slots %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slots %v, want %v", got, want)
		}
	}
	if dep := search(c.at(0, 0, 0), c.at(3, 0, 0), &c.doctor.DepartmentID); len(dep) != 4 || dep[0].Provider.ID != c.doctor.ID {
		t.Errorf("by department: %d slots", len(dep))
	}

	c.mustBook(t, ctx, 0, c.doctor.ID, c.at(1, 0, 30), 30)
	_, err := c.book(ctx, 1, c.doctor.ID, c.at(0, 21, 30), 60)
	wantCode(t, err, apperr.Conflict, "starting before the shift")
	_, err = c.book(ctx, 1, c.doctor.ID, c.at(2, 9, 0), 30)
	wantCode(t, err, apperr.Conflict, "on call")
	if n := len(search(c.at(0, 0, 0), c.at(3, 0, 0), nil)); n != 3 {
		t.Errorf("after a booking at 00:30, %d slots left, want 3", n)
	}

	// Weekly availability on the on-call day adds its hours.
	if _, err := c.svc.SetAvailability(ctx, c.doctor.ID, []*AvailabilityPeriod{{Weekday: c.weekday(2), StartTime: "14:00", EndTime: "16:00"}}); err != nil {
		t.Fatal(err)
	}
	if n := len(search(c.at(2, 0, 0), c.at(3, 0, 0), nil)); n != 2 {
		t.Errorf("weekly hours beside the roster: %d slots, want 2", n)
	}
	c.mustBook(t, ctx, 1, c.doctor.ID, c.at(2, 14, 0), 30)
}
