package harness

import (
	"testing"
	"time"
)

// Slot returns a start and end an hour long, days from now, at a fixed
// hour (UTC), so bookings of one test never depend on the time it runs.
func Slot(days, hour int) (string, string) {
	start := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, days).Add(time.Duration(hour) * time.Hour)
	return start.Format(time.RFC3339), start.Add(time.Hour).Format(time.RFC3339)
}

// BookMutation books from variable in (see BookingInput).
const BookMutation = `mutation($in: BookAppointmentInput!) {
  bookAppointment(input: $in) { id status startAt endAt patient { id } provider { id } department { id } }
}`

// BookingInput is BookMutation's variables.
func BookingInput(patientID, providerID, start, end string) map[string]any {
	return map[string]any{"in": map[string]any{
		"patientId": patientID, "providerId": providerID, "startAt": start, "endAt": end, "reason": "check-up",
	}}
}

// Booker books appointments in slots that never overlap each other or the
// demo's own appointments (which are in the next two days).
type Booker struct {
	T    testing.TB
	S    *Server
	User string
	n    int
}

// Book books the next free slot and returns the appointment's ID.
func (b *Booker) Book(patientID, providerID string) string {
	b.T.Helper()
	start, end := Slot(3+b.n/8, 8+b.n%8)
	b.n++
	var out struct{ BookAppointment struct{ ID string } }
	b.S.As(b.User, BookMutation, BookingInput(patientID, providerID, start, end)).Decode(b.T, &out)
	return out.BookAppointment.ID
}

// AppointmentChangedSubscription takes departmentId, providerId and after.
const AppointmentChangedSubscription = `subscription($departmentId: ID, $providerId: ID, $after: String) {
  appointmentChanged(departmentId: $departmentId, providerId: $providerId, after: $after) {
    eventId type occurredAt
    appointment { id status patient { id } provider { id } }
  }
}`

// AppointmentEvent is one appointmentChanged event.
type AppointmentEvent struct {
	EventID     string
	Type        string
	OccurredAt  string
	Appointment struct {
		ID, Status string
		Patient    struct{ ID string }
		Provider   struct{ ID string }
	}
}

// AppointmentFeed is one appointmentChanged subscription; its probes are
// appointment IDs.
type AppointmentFeed = Feed[AppointmentEvent]

// SubscribeAppointments opens a connection to s as credential ("" for
// anonymous) and subscribes with args (departmentId, providerId, after).
func SubscribeAppointments(t testing.TB, s *Server, proto, credential string, args map[string]any) *AppointmentFeed {
	t.Helper()
	c := s.DialWS(t, proto)
	c.Init(credential)
	return SubscribeAppointmentsOn(t, c, args)
}

// SubscribeAppointmentsOn subscribes on a connection already open.
func SubscribeAppointmentsOn(t testing.TB, c *WSClient, args map[string]any) *AppointmentFeed {
	t.Helper()
	return SubscribeOn(t, c, AppointmentChangedSubscription, args, func(ev AppointmentEvent) string { return ev.Appointment.ID })
}
