package scheduling

import (
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/events"
)

// cancelMutation cancels appointment id for reason r.
const cancelMutation = `mutation($id: ID!, $r: String!) { cancelAppointment(id: $id, input: {reason: $r}) { id status } }`

func TestAppointmentChangedLive(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			d := s.Demo()
			b := &harness.Booker{T: t, S: s, User: "reception"}
			f := harness.SubscribeAppointments(t, s, proto, s.Token("doctor"), map[string]any{"providerId": d.Doctor})
			harness.AwaitLive(t, func() string { return b.Book(d.Patients[3], d.Doctor) }, f)

			nurses := b.Book(d.Patients[2], d.Nurse)
			doctors := b.Book(d.Patients[1], d.Doctor)
			booked := f.Next()
			harness.Must(t, booked.Appointment.ID == doctors,
				"first event is for appointment %s, want the doctor's %s (the nurse's %s must be filtered out)",
				booked.Appointment.ID, doctors, nurses)
			harness.Must(t, booked.Type == "BOOKED" && booked.Appointment.Status == "BOOKED" &&
				booked.Appointment.Provider.ID == d.Doctor && booked.Appointment.Patient.ID == d.Patients[1],
				"booked event: %+v", booked)

			var cancelled struct{ CancelAppointment struct{ ID, Status string } }
			s.As("reception", cancelMutation, map[string]any{"id": doctors, "r": "patient called"}).Decode(t, &cancelled)
			ev := f.Next()
			harness.Must(t, ev.Type == "CANCELLED" && ev.Appointment.ID == doctors && ev.Appointment.Status == "CANCELLED",
				"want the cancellation of %s, got %+v", doctors, ev)
			harness.Must(t, events.CompareIDs(booked.EventID, ev.EventID) < 0,
				"event IDs must increase: %s then %s", booked.EventID, ev.EventID)
		})
	}
}

func TestAppointmentChangedResume(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	b := &harness.Booker{T: t, S: s, User: "reception"}
	f := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("doctor"), nil)
	harness.AwaitLive(t, func() string { return b.Book(d.Patients[3], d.Doctor) }, f)

	first := b.Book(d.Patients[1], d.Doctor)
	seen := f.Next()
	harness.Must(t, seen.Appointment.ID == first, "want %s, got %+v", first, seen)
	f.Conn.Close()

	missed := []string{b.Book(d.Patients[2], d.Nurse), b.Book(d.Patients[1], d.Doctor)}

	g := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("doctor"), map[string]any{"after": seen.EventID})
	last := seen.EventID
	for i, want := range missed {
		ev := g.Next()
		harness.Must(t, ev.Appointment.ID == want, "replayed event %d is for %s, want %s (after %s)", i, ev.Appointment.ID, want, seen.EventID)
		harness.Must(t, ev.Type == "BOOKED", "replayed event %d: %+v", i, ev)
		harness.Must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
		last = ev.EventID
	}
	// With a cursor the subscription is gap-free from the start, so this
	// needs no probe to be sure it is heard.
	live := b.Book(d.Patients[3], d.Nurse)
	ev := g.Next()
	harness.Must(t, ev.Appointment.ID == live, "after the replay want the live %s, got %+v", live, ev)
	harness.Must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
}

func TestAppointmentChangedRowScope(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	b := &harness.Booker{T: t, S: s, User: "reception"}
	own := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("patient"), nil)
	// A member of staff hears both, which shows that the other patient's
	// event was published and the patient's feed left it out.
	staff := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("reception"), nil)
	harness.AwaitLive(t, func() string { return b.Book(d.Patients[0], d.Nurse) }, own, staff)

	others := b.Book(d.Patients[1], d.Doctor)
	patients := b.Book(d.Patients[0], d.Doctor)

	ev := own.Next()
	harness.Must(t, ev.Appointment.ID == patients,
		"the patient's first event is for %s, want their own %s (another patient's %s must not reach them)",
		ev.Appointment.ID, patients, others)
	harness.Must(t, ev.Appointment.Patient.ID == d.Patients[0], "own event: %+v", ev)

	for _, want := range []string{others, patients} {
		ev := staff.Next()
		harness.Must(t, ev.Appointment.ID == want, "staff feed: want %s, got %+v", want, ev)
	}
}

func TestAppointmentChangedBadInput(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			c := s.DialWS(t, proto)
			c.Init(s.Token("doctor"))
			for _, tc := range []struct {
				args  map[string]any
				field string
			}{
				{map[string]any{"after": "not-an-id"}, "after"},
				{map[string]any{"departmentId": "garbage"}, "departmentId"},
				{map[string]any{"providerId": "garbage"}, "providerId"},
			} {
				errs := c.Failure(c.Start(harness.AppointmentChangedSubscription, tc.args))
				harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT" && errs[0].Field() == tc.field,
					"%v: want BAD_USER_INPUT on %s, got %v", tc.args, tc.field, errs)
			}
		})
	}
}
