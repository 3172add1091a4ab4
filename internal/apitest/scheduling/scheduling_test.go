package scheduling

import (
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

func TestBookCancelCheckIn(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	start, end := harness.Slot(3, 9)

	var booked struct {
		BookAppointment struct {
			ID, Status, StartAt string
			Department          struct{ ID string }
		}
	}
	s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[1], d.Doctor, start, end)).Decode(t, &booked)
	a := booked.BookAppointment
	harness.Must(t, a.Status == "BOOKED" && a.StartAt == start && a.Department.ID == d.General,
		"booked: %+v (department defaults to the provider's)", a)

	cancel := `mutation($id: ID!, $r: String!) { cancelAppointment(id: $id, input: {reason: $r}) { status cancelReason } }`
	checkIn := `mutation($id: ID!) { checkInAppointment(id: $id) { status checkedInAt } }`

	r := s.As("reception", checkIn, map[string]any{"id": a.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "check-in three days early: %s", harness.Describe(r))

	r = s.As("doctor", cancel, map[string]any{"id": a.ID, "r": ""})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.reason", "empty reason: %s", harness.Describe(r))

	var cancelled struct {
		CancelAppointment struct{ Status, CancelReason string }
	}
	s.As("doctor", cancel, map[string]any{"id": a.ID, "r": "patient called"}).Decode(t, &cancelled)
	harness.Must(t, cancelled.CancelAppointment.Status == "CANCELLED" && cancelled.CancelAppointment.CancelReason == "patient called", "%+v", cancelled)

	r = s.As("doctor", cancel, map[string]any{"id": a.ID, "r": "again"})
	harness.Must(t, r.HasCode("CONFLICT"), "cancel twice: %s", harness.Describe(r))
	r = s.As("reception", checkIn, map[string]any{"id": a.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "check in a cancelled one: %s", harness.Describe(r))

	// The cancelled slot is free again.
	s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[1], d.Doctor, start, end)).Decode(t, &booked)

	// Today's appointment can be checked in, once.
	now := time.Now().UTC().Add(10 * time.Minute).Truncate(time.Minute)
	s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[2], d.Nurse, now.Format(time.RFC3339), now.Add(20*time.Minute).Format(time.RFC3339))).Decode(t, &booked)
	var checked struct{ CheckInAppointment struct{ Status string } }
	s.As("nurse", checkIn, map[string]any{"id": booked.BookAppointment.ID}).Decode(t, &checked)
	harness.Must(t, checked.CheckInAppointment.Status == "CHECKED_IN", "%+v", checked)
	r = s.As("nurse", checkIn, map[string]any{"id": booked.BookAppointment.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "check in twice: %s", harness.Describe(r))
	r = s.As("nurse", cancel, map[string]any{"id": booked.BookAppointment.ID, "r": "x"})
	harness.Must(t, r.HasCode("CONFLICT"), "cancel after check-in: %s", harness.Describe(r))
}

func TestOverlapsAreRefused(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	start, end := harness.Slot(4, 10)
	s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[1], d.Doctor, start, end)).Decode(t, &struct{}{})

	halfPast, _ := time.Parse(time.RFC3339, start)
	overlapStart := halfPast.Add(30 * time.Minute).Format(time.RFC3339)
	overlapEnd := halfPast.Add(90 * time.Minute).Format(time.RFC3339)

	r := s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[2], d.Doctor, overlapStart, overlapEnd))
	harness.Must(t, r.HasCode("CONFLICT"), "provider double-booked: %s", harness.Describe(r))
	r = s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[1], d.Nurse, overlapStart, overlapEnd))
	harness.Must(t, r.HasCode("CONFLICT"), "patient double-booked: %s", harness.Describe(r))

	// Back to back is fine: [start, end) does not overlap [end, …).
	after := halfPast.Add(time.Hour)
	r = s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[2], d.Doctor, after.Format(time.RFC3339), after.Add(time.Hour).Format(time.RFC3339)))
	harness.Must(t, len(r.Errors) == 0, "adjacent slot: %s", harness.Describe(r))
}

// TestTimesBeyondYear9999AreRefused: 9999-12-31T22:00:00-05:00 is year
// 10000 in UTC. Accepted, it was stored as text that sorts before year
// 9999, so it slipped past the overlap and time-off checks, and every read
// of the row failed. It is refused, naming the field, and nothing is stored.
func TestTimesBeyondYear9999AreRefused(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	count := `{ appointments(first: 1) { totalCount } }`
	var before, after struct{ Appointments struct{ TotalCount int } }
	s.As("reception", count, nil).Decode(t, &before)
	r := s.As("reception", harness.BookMutation,
		harness.BookingInput(d.Patients[1], d.Doctor, "9999-12-31T22:00:00-05:00", "9999-12-31T22:30:00-05:00"))
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.startAt", "year 10000: %s", harness.Describe(r))
	s.As("reception", count, nil).Decode(t, &after)
	harness.Must(t, after.Appointments.TotalCount == before.Appointments.TotalCount, "%d appointments, %d before",
		after.Appointments.TotalCount, before.Appointments.TotalCount)
	// The last instant of year 9999 is still a time.
	r = s.As("reception", harness.BookMutation,
		harness.BookingInput(d.Patients[1], d.Doctor, "9999-12-31T23:00:00Z", "9999-12-31T23:30:00Z"))
	harness.Must(t, len(r.Errors) == 0, "year 9999: %s", harness.Describe(r))
}

// TestConcurrentDoubleBooking fires many bookings of one provider for
// overlapping times at once, for different patients: exactly one wins.
func TestConcurrentDoubleBooking(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	start, end := harness.Slot(5, 11)
	token := s.Token("reception")

	const attempts = 12
	var wg sync.WaitGroup
	results := make([]harness.Response, attempts)
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.Do(token, harness.BookMutation, harness.BookingInput(d.Patients[1+i%4], d.Doctor, start, end))
		}(i)
	}
	wg.Wait()
	wins, conflicts := 0, 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case r.HasCode("CONFLICT"):
			conflicts++
		default:
			t.Errorf("unexpected outcome: %s", harness.Describe(r))
		}
	}
	harness.Must(t, wins == 1 && conflicts == attempts-1, "wins %d, conflicts %d", wins, conflicts)

	var count struct{ Appointments struct{ TotalCount int } }
	s.As("admin", `query($p: ID!) { appointments(where: {providerID: $p, status: BOOKED, startAt: "`+start+`"}) { totalCount } }`,
		map[string]any{"p": d.Doctor}).Decode(t, &count)
	harness.Must(t, count.Appointments.TotalCount == 1, "appointments stored: %d", count.Appointments.TotalCount)
}

// TestConcurrentDoubleBookingOfPatient: one patient, many providers, one slot.
func TestConcurrentDoubleBookingOfPatient(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	start, end := harness.Slot(6, 8)
	token := s.Token("reception")
	providers := []string{d.Doctor, d.Nurse}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := s.Do(token, harness.BookMutation, harness.BookingInput(d.Patients[3], providers[i%2], start, end))
			if len(r.Errors) == 0 {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !r.HasCode("CONFLICT") {
				t.Errorf("unexpected outcome: %s", harness.Describe(r))
			}
		}(i)
	}
	wg.Wait()
	harness.Must(t, wins == 1, "wins %d", wins)
}
