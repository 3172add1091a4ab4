package apitest

import (
	"sync"
	"testing"
	"time"
)

func TestBookCancelCheckIn(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	start, end := slot(3, 9)

	var booked struct {
		BookAppointment struct {
			ID, Status, StartAt string
			Department          struct{ ID string }
		}
	}
	s.as("reception", bookMutation, bookingInput(d.patients[1], d.doctor, start, end)).decode(t, &booked)
	a := booked.BookAppointment
	must(t, a.Status == "BOOKED" && a.StartAt == start && a.Department.ID == d.general,
		"booked: %+v (department defaults to the provider's)", a)

	cancel := `mutation($id: ID!, $r: String!) { cancelAppointment(id: $id, input: {reason: $r}) { status cancelReason } }`
	checkIn := `mutation($id: ID!) { checkInAppointment(id: $id) { status checkedInAt } }`

	r := s.as("reception", checkIn, map[string]any{"id": a.ID})
	must(t, r.hasCode("CONFLICT"), "check-in three days early: %s", describe(r))

	r = s.as("doctor", cancel, map[string]any{"id": a.ID, "r": ""})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.reason", "empty reason: %s", describe(r))

	var cancelled struct {
		CancelAppointment struct{ Status, CancelReason string }
	}
	s.as("doctor", cancel, map[string]any{"id": a.ID, "r": "patient called"}).decode(t, &cancelled)
	must(t, cancelled.CancelAppointment.Status == "CANCELLED" && cancelled.CancelAppointment.CancelReason == "patient called", "%+v", cancelled)

	r = s.as("doctor", cancel, map[string]any{"id": a.ID, "r": "again"})
	must(t, r.hasCode("CONFLICT"), "cancel twice: %s", describe(r))
	r = s.as("reception", checkIn, map[string]any{"id": a.ID})
	must(t, r.hasCode("CONFLICT"), "check in a cancelled one: %s", describe(r))

	// The cancelled slot is free again.
	s.as("reception", bookMutation, bookingInput(d.patients[1], d.doctor, start, end)).decode(t, &booked)

	// Today's appointment can be checked in, once.
	now := time.Now().UTC().Add(10 * time.Minute).Truncate(time.Minute)
	s.as("reception", bookMutation, bookingInput(d.patients[2], d.nurse, now.Format(time.RFC3339), now.Add(20*time.Minute).Format(time.RFC3339))).decode(t, &booked)
	var checked struct{ CheckInAppointment struct{ Status string } }
	s.as("nurse", checkIn, map[string]any{"id": booked.BookAppointment.ID}).decode(t, &checked)
	must(t, checked.CheckInAppointment.Status == "CHECKED_IN", "%+v", checked)
	r = s.as("nurse", checkIn, map[string]any{"id": booked.BookAppointment.ID})
	must(t, r.hasCode("CONFLICT"), "check in twice: %s", describe(r))
	r = s.as("nurse", cancel, map[string]any{"id": booked.BookAppointment.ID, "r": "x"})
	must(t, r.hasCode("CONFLICT"), "cancel after check-in: %s", describe(r))
}

func TestOverlapsAreRefused(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	start, end := slot(4, 10)
	s.as("reception", bookMutation, bookingInput(d.patients[1], d.doctor, start, end)).decode(t, &struct{}{})

	halfPast, _ := time.Parse(time.RFC3339, start)
	overlapStart := halfPast.Add(30 * time.Minute).Format(time.RFC3339)
	overlapEnd := halfPast.Add(90 * time.Minute).Format(time.RFC3339)

	r := s.as("reception", bookMutation, bookingInput(d.patients[2], d.doctor, overlapStart, overlapEnd))
	must(t, r.hasCode("CONFLICT"), "provider double-booked: %s", describe(r))
	r = s.as("reception", bookMutation, bookingInput(d.patients[1], d.nurse, overlapStart, overlapEnd))
	must(t, r.hasCode("CONFLICT"), "patient double-booked: %s", describe(r))

	// Back to back is fine: [start, end) does not overlap [end, …).
	after := halfPast.Add(time.Hour)
	r = s.as("reception", bookMutation, bookingInput(d.patients[2], d.doctor, after.Format(time.RFC3339), after.Add(time.Hour).Format(time.RFC3339)))
	must(t, len(r.Errors) == 0, "adjacent slot: %s", describe(r))
}

// TestConcurrentDoubleBooking fires many bookings of one provider for
// overlapping times at once, for different patients: exactly one wins.
func TestConcurrentDoubleBooking(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	start, end := slot(5, 11)
	token := s.token("reception")

	const attempts = 12
	var wg sync.WaitGroup
	results := make([]response, attempts)
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.do(token, bookMutation, bookingInput(d.patients[1+i%4], d.doctor, start, end))
		}(i)
	}
	wg.Wait()
	wins, conflicts := 0, 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case r.hasCode("CONFLICT"):
			conflicts++
		default:
			t.Errorf("unexpected outcome: %s", describe(r))
		}
	}
	must(t, wins == 1 && conflicts == attempts-1, "wins %d, conflicts %d", wins, conflicts)

	var count struct{ Appointments struct{ TotalCount int } }
	s.as("admin", `query($p: ID!) { appointments(where: {providerID: $p, status: BOOKED, startAt: "`+start+`"}) { totalCount } }`,
		map[string]any{"p": d.doctor}).decode(t, &count)
	must(t, count.Appointments.TotalCount == 1, "appointments stored: %d", count.Appointments.TotalCount)
}

// TestConcurrentDoubleBookingOfPatient: one patient, many providers, one slot.
func TestConcurrentDoubleBookingOfPatient(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	start, end := slot(6, 8)
	token := s.token("reception")
	providers := []string{d.doctor, d.nurse}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := s.do(token, bookMutation, bookingInput(d.patients[3], providers[i%2], start, end))
			if len(r.Errors) == 0 {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !r.hasCode("CONFLICT") {
				t.Errorf("unexpected outcome: %s", describe(r))
			}
		}(i)
	}
	wg.Wait()
	must(t, wins == 1, "wins %d", wins)
}
