// Package scheduling runs the appointment book: providers' working hours
// and time off, rooms, slot search, and each appointment's course from
// booking to completion, keeping a provider, a patient or a room from being
// booked twice for the same time.
package scheduling

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// Topic is the event topic appointment changes are published on.
const Topic = "appointments"

// EventType names what happened to an appointment.
type EventType string

const (
	Booked      EventType = "BOOKED"
	Cancelled   EventType = "CANCELLED"
	CheckedIn   EventType = "CHECKED_IN"
	Rescheduled EventType = "RESCHEDULED"
	Started     EventType = "STARTED"
	Completed   EventType = "COMPLETED"
	NoShow      EventType = "NO_SHOW"
)

// Change is the payload of an appointment event. It carries IDs only: a
// subscriber loads the appointment through row scope before showing it.
type Change struct {
	AppointmentID string `json:"appointmentId"`
	PatientID     string `json:"patientId"`
	ProviderID    string `json:"providerId"`
	DepartmentID  string `json:"departmentId"`
}

// Booking is the input of bookAppointment.
type Booking struct {
	PatientID    string
	ProviderID   string
	DepartmentID *string
	StartAt      time.Time
	EndAt        time.Time
	Reason       *string
	// RoomID books a room of the appointment's department as well.
	RoomID *string
}

// Rescheduling is the input of rescheduleAppointment: new times, and a
// room that, omitted, stays as it was and, null, is given up.
type Rescheduling struct {
	StartAt time.Time
	EndAt   time.Time
	RoomID  graphql.Omittable[*string]
}

// Cancellation is the input of cancelAppointment.
type Cancellation struct {
	Reason string
}

// Limits on what a booking may ask for.
const (
	MaxDuration = 8 * time.Hour
	// Walk-ins are booked as they arrive, so a start a little in the past is fine.
	BackdateGrace = time.Hour
	// Check-in opens this long before the start, for patients who come early.
	CheckInOpens = 12 * time.Hour
	// NoShowGrace is how long after its end a booked appointment whose
	// patient never checked in waits before the sweeper marks it NO_SHOW:
	// long enough for a late patient to be seen after all.
	NoShowGrace = time.Hour
)

// Notifier is told after a commit that recorded events, so they go out now
// rather than at the relay's next poll.
type Notifier interface{ Poke() }

// Service runs the appointment state machine.
type Service struct {
	store  *store.Store
	notify Notifier
	// hospital is the time zone working hours and calendar days are in.
	hospital *time.Location
	now      func() time.Time
}

// NewService returns a Service on st that pokes notify after each change
// and reads working hours and dates in the hospital's time zone.
func NewService(st *store.Store, notify Notifier, hospital *time.Location) *Service {
	if hospital == nil {
		hospital = time.UTC
	}
	return &Service{store: st, notify: notify, hospital: hospital, now: time.Now}
}

// providerKinds are the staff who see patients in appointments.
var providerKinds = []staff.Kind{staff.KindDOCTOR, staff.KindNURSE}

// freeingStatuses are the statuses of appointments that no longer hold
// their time: it may be booked again.
var freeingStatuses = []appointment.Status{appointment.StatusCANCELLED, appointment.StatusNO_SHOW}

// holdsTime matches appointments that keep their provider, patient and
// room busy.
func holdsTime() predicate.Appointment { return appointment.StatusNotIn(freeingStatuses...) }

// Book creates an appointment after checking that neither the provider nor
// the patient (nor the room, if one is asked for) has another one
// overlapping [StartAt, EndAt), and that the provider works then.
func (s *Service) Book(ctx context.Context, b Booking) (*ent.Appointment, error) {
	// Stored times are UTC, and SQLite compares them as text.
	b.StartAt, b.EndAt = b.StartAt.UTC(), b.EndAt.UTC()
	if err := s.validateBooking(b); err != nil {
		return nil, err
	}
	var booked *ent.Appointment
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		// Lock before reading, so the overlap check and the insert happen as
		// one step for this provider, this patient and this room.
		if err := s.store.Lock(ctx, tx, lockKeys(b.ProviderID, b.PatientID, b.RoomID)...); err != nil {
			return err
		}
		pat, err := patients.Active(ctx, tx.Patient, "input.patientId", b.PatientID)
		if err != nil {
			return err
		}
		provider, err := tx.Staff.Get(ctx, b.ProviderID)
		if ent.IsNotFound(err) {
			return apperr.BadInput("input.providerId", "no such member of staff")
		} else if err != nil {
			return err
		}
		if !provider.Active {
			return apperr.BadInput("input.providerId", "is no longer active")
		}
		if !isProviderKind(provider.Kind) {
			return apperr.BadInput("input.providerId", "is not a doctor or nurse")
		}
		departmentID := provider.DepartmentID
		if b.DepartmentID != nil {
			departmentID = *b.DepartmentID
			if exists, err := tx.Department.Query().Where(department.ID(departmentID)).Exist(ctx); err != nil {
				return err
			} else if !exists {
				return apperr.BadInput("input.departmentId", "no such department")
			}
		}
		if departmentID == "" {
			return apperr.BadInput("input.departmentId", "is required: the provider belongs to no department")
		}
		if err := s.checkPlacement(ctx, tx, placement{
			patientID: pat.ID, providerID: provider.ID, departmentID: departmentID,
			roomID: b.RoomID, start: b.StartAt, end: b.EndAt,
		}); err != nil {
			return err
		}
		booked, err = tx.Appointment.Create().
			SetPatientID(pat.ID).
			SetProviderID(provider.ID).
			SetDepartmentID(departmentID).
			SetStartAt(b.StartAt.UTC()).
			SetEndAt(b.EndAt.UTC()).
			SetNillableReason(b.Reason).
			SetNillableRoomID(b.RoomID).
			Save(ctx)
		if err != nil {
			return err
		}
		return record(ctx, tx, Booked, booked)
	})
	if err != nil {
		return nil, err
	}
	s.notify.Poke()
	return booked.Unwrap(), nil
}

// lockKeys names what a booking must hold still while it checks and writes.
func lockKeys(providerID, patientID string, roomID *string) []string {
	keys := []string{"provider:" + providerID, "patient:" + patientID}
	if roomID != nil {
		keys = append(keys, "room:"+*roomID)
	}
	return keys
}

// placement is where and when an appointment is to be, as Book and
// Reschedule check it.
type placement struct {
	// appointmentID is the appointment being moved, which cannot clash
	// with itself; empty for a new one.
	appointmentID                       string
	patientID, providerID, departmentID string
	roomID                              *string
	start, end                          time.Time
}

// checkPlacement refuses a room that cannot be used, a time the provider
// does not work or is away, and any overlap with another appointment of the
// same provider, patient or room. The caller holds the locks of lockKeys.
func (s *Service) checkPlacement(ctx context.Context, tx *ent.Tx, p placement) error {
	if p.roomID != nil {
		room, err := tx.Room.Get(ctx, *p.roomID)
		switch {
		case ent.IsNotFound(err):
			return apperr.BadInput("input.roomId", "no such room")
		case err != nil:
			return err
		case !room.Active:
			return apperr.BadInput("input.roomId", "is out of service")
		case room.DepartmentID != p.departmentID:
			return apperr.BadInput("input.roomId", "belongs to another department")
		}
	}
	if err := s.checkProviderWorks(ctx, tx, p.providerID, p.start, p.end); err != nil {
		return err
	}
	who := []predicate.Appointment{appointment.ProviderID(p.providerID), appointment.PatientID(p.patientID)}
	if p.roomID != nil {
		who = append(who, appointment.RoomID(*p.roomID))
	}
	q := tx.Appointment.Query().Where(
		holdsTime(),
		appointment.StartAtLT(p.end),
		appointment.EndAtGT(p.start),
		appointment.Or(who...),
	)
	if p.appointmentID != "" {
		q.Where(appointment.IDNEQ(p.appointmentID))
	}
	clash, err := q.First(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil
	case err != nil:
		return err
	case clash.ProviderID == p.providerID:
		return apperr.Conflictf("the provider already has an appointment from %s to %s", stamp(clash.StartAt), stamp(clash.EndAt))
	case clash.PatientID == p.patientID:
		return apperr.Conflictf("the patient already has an appointment from %s to %s", stamp(clash.StartAt), stamp(clash.EndAt))
	default:
		return apperr.Conflictf("the room is booked from %s to %s", stamp(clash.StartAt), stamp(clash.EndAt))
	}
}

func (s *Service) validateBooking(b Booking) error {
	switch {
	case !globalid.Valid(b.PatientID, "pat"):
		return apperr.BadInput("input.patientId", "is not a patient ID")
	case !globalid.Valid(b.ProviderID, "stf"):
		return apperr.BadInput("input.providerId", "is not a staff ID")
	case b.DepartmentID != nil && !globalid.Valid(*b.DepartmentID, "dep"):
		return apperr.BadInput("input.departmentId", "is not a department ID")
	case b.RoomID != nil && !globalid.Valid(*b.RoomID, "rom"):
		return apperr.BadInput("input.roomId", "is not a room ID")
	case b.Reason != nil && len(*b.Reason) > 500:
		return apperr.BadInput("input.reason", "must be at most 500 characters")
	}
	return s.validateTimes(b.StartAt, b.EndAt)
}

func (s *Service) validateTimes(start, end time.Time) error {
	switch {
	case !end.After(start):
		return apperr.BadInput("input.endAt", "must be after startAt")
	case end.Sub(start) > MaxDuration:
		return apperr.BadInput("input.endAt", "an appointment lasts at most %s", MaxDuration)
	case start.Before(s.now().Add(-BackdateGrace)):
		return apperr.BadInput("input.startAt", "is more than %s in the past", BackdateGrace)
	}
	return nil
}

// Reschedule moves a booked appointment to another time and, optionally,
// another room, under the same checks as a booking.
func (s *Service) Reschedule(ctx context.Context, id string, r Rescheduling) (*ent.Appointment, error) {
	if !globalid.Valid(id, "apt") {
		return nil, apperr.BadInput("id", "is not an appointment ID")
	}
	newRoom, roomGiven := r.RoomID.ValueOK()
	if roomGiven && newRoom != nil && !globalid.Valid(*newRoom, "rom") {
		return nil, apperr.BadInput("input.roomId", "is not a room ID")
	}
	r.StartAt, r.EndAt = r.StartAt.UTC(), r.EndAt.UTC()
	if err := s.validateTimes(r.StartAt, r.EndAt); err != nil {
		return nil, err
	}
	var moved *ent.Appointment
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		current, err := tx.Appointment.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("appointment not found")
		} else if err != nil {
			return err
		}
		room := current.RoomID
		if roomGiven {
			room = newRoom
		}
		if err := s.store.Lock(ctx, tx, lockKeys(current.ProviderID, current.PatientID, room)...); err != nil {
			return err
		}
		// Read again under the locks: a concurrent change may have landed
		// between the first read and taking them.
		if current, err = tx.Appointment.Get(ctx, id); err != nil {
			return err
		}
		if current.Status != appointment.StatusBOOKED {
			return apperr.Conflictf("the appointment is %s; only a BOOKED one can be rescheduled", current.Status)
		}
		if !roomGiven && !sameRoom(room, current.RoomID) {
			// The room kept is not the one locked.
			return apperr.Conflictf("the appointment changed meanwhile; reload it")
		}
		if err := s.checkPlacement(ctx, tx, placement{
			appointmentID: current.ID, patientID: current.PatientID, providerID: current.ProviderID,
			departmentID: current.DepartmentID, roomID: room, start: r.StartAt, end: r.EndAt,
		}); err != nil {
			return err
		}
		u := tx.Appointment.UpdateOneID(id).Where(appointment.StatusEQ(appointment.StatusBOOKED)).
			SetStartAt(r.StartAt.UTC()).SetEndAt(r.EndAt.UTC())
		if room != nil {
			u.SetRoomID(*room)
		} else {
			u.ClearRoomID()
		}
		moved, err = u.Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the appointment changed meanwhile; reload it")
		} else if err != nil {
			return err
		}
		return record(ctx, tx, Rescheduled, moved)
	})
	if err != nil {
		return nil, err
	}
	s.notify.Poke()
	return moved.Unwrap(), nil
}

// Cancel cancels a booked appointment.
func (s *Service) Cancel(ctx context.Context, id string, c Cancellation) (*ent.Appointment, error) {
	if len(c.Reason) == 0 || len(c.Reason) > 500 {
		return nil, apperr.BadInput("input.reason", "is required, at most 500 characters")
	}
	return s.transition(ctx, id, step{
		from: appointment.StatusBOOKED, event: Cancelled,
		set: func(u *ent.AppointmentUpdateOne, now time.Time) {
			u.SetStatus(appointment.StatusCANCELLED).SetCancelReason(c.Reason).SetCancelledAt(now)
		},
	})
}

// CheckIn records that the patient has arrived.
func (s *Service) CheckIn(ctx context.Context, id string) (*ent.Appointment, error) {
	return s.transition(ctx, id, step{
		from: appointment.StatusBOOKED, event: CheckedIn,
		check: func(a *ent.Appointment, now time.Time) error {
			if now.Add(CheckInOpens).Before(a.StartAt) {
				return apperr.Conflictf("check-in opens %s before the appointment", CheckInOpens)
			}
			return nil
		},
		set: func(u *ent.AppointmentUpdateOne, now time.Time) {
			u.SetStatus(appointment.StatusCHECKED_IN).SetCheckedInAt(now)
		},
	})
}

// Start begins the consultation of a checked-in patient and opens its
// outpatient encounter, which the clinical record of the visit hangs on.
func (s *Service) Start(ctx context.Context, id string) (*ent.Appointment, error) {
	return s.transition(ctx, id, step{
		from: appointment.StatusCHECKED_IN, event: Started,
		set: func(u *ent.AppointmentUpdateOne, now time.Time) {
			u.SetStatus(appointment.StatusIN_PROGRESS).SetStartedAt(now)
		},
		then: func(ctx context.Context, tx *ent.Tx, a *ent.Appointment) error {
			c := tx.Encounter.Create().
				SetPatientID(a.PatientID).
				SetType(encounter.TypeOUTPATIENT).
				SetAppointmentID(a.ID).
				SetProviderID(a.ProviderID).
				SetDepartmentID(a.DepartmentID).
				SetStartedAt(*a.StartedAt)
			if a.Reason != "" {
				c.SetReason(a.Reason)
			}
			err := c.Exec(ctx)
			if ent.IsConstraintError(err) {
				return apperr.Conflictf("the appointment already has an encounter")
			}
			return err
		},
	})
}

// Complete ends the consultation and finishes its encounter.
func (s *Service) Complete(ctx context.Context, id string) (*ent.Appointment, error) {
	return s.transition(ctx, id, step{
		from: appointment.StatusIN_PROGRESS, event: Completed,
		set: func(u *ent.AppointmentUpdateOne, now time.Time) {
			u.SetStatus(appointment.StatusCOMPLETED).SetCompletedAt(now)
		},
		then: func(ctx context.Context, tx *ent.Tx, a *ent.Appointment) error {
			// An encounter the record has cancelled meanwhile stays cancelled.
			return tx.Encounter.Update().
				Where(encounter.AppointmentID(a.ID), encounter.StatusEQ(encounter.StatusIN_PROGRESS)).
				SetStatus(encounter.StatusFINISHED).
				SetEndedAt(*a.CompletedAt).
				Exec(ctx)
		},
	})
}

// MarkNoShow records that the patient of a booked appointment never came.
// Until the appointment has ended they still might.
func (s *Service) MarkNoShow(ctx context.Context, id string) (*ent.Appointment, error) {
	return s.transition(ctx, id, step{
		from: appointment.StatusBOOKED, event: NoShow,
		check: func(a *ent.Appointment, now time.Time) error {
			if now.Before(a.EndAt) {
				return apperr.Conflictf("the appointment has not ended yet; it ends at %s", stamp(a.EndAt))
			}
			return nil
		},
		set: func(u *ent.AppointmentUpdateOne, _ time.Time) { u.SetStatus(appointment.StatusNO_SHOW) },
	})
}

// step is one move of the appointment state machine.
type step struct {
	from  appointment.Status
	event EventType
	// check refuses the move for the appointment as it is now.
	check func(a *ent.Appointment, now time.Time) error
	set   func(u *ent.AppointmentUpdateOne, now time.Time)
	// then makes what goes with the move, in the same transaction.
	then func(ctx context.Context, tx *ent.Tx, changed *ent.Appointment) error
}

// transition makes st to the appointment id. The update is conditional on
// the status still being st.from, so two concurrent transitions cannot both
// succeed.
func (s *Service) transition(ctx context.Context, id string, st step) (*ent.Appointment, error) {
	if !globalid.Valid(id, "apt") {
		return nil, apperr.BadInput("id", "is not an appointment ID")
	}
	// PostgreSQL keeps microseconds: what is returned must equal what is stored.
	now := s.now().UTC().Truncate(time.Microsecond)
	var changed *ent.Appointment
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		current, err := tx.Appointment.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("appointment not found")
		} else if err != nil {
			return err
		}
		if current.Status != st.from {
			return apperr.Conflictf("the appointment is %s; only a %s one can be %s", current.Status, st.from, pastTense(st.event))
		}
		if st.check != nil {
			if err := st.check(current, now); err != nil {
				return err
			}
		}
		u := tx.Appointment.UpdateOneID(id).Where(appointment.StatusEQ(st.from))
		st.set(u, now)
		changed, err = u.Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the appointment changed meanwhile; reload it")
		} else if err != nil {
			return err
		}
		if st.then != nil {
			if err := st.then(ctx, tx, changed); err != nil {
				return err
			}
		}
		return record(ctx, tx, st.event, changed)
	})
	if err != nil {
		return nil, err
	}
	s.notify.Poke()
	return changed.Unwrap(), nil
}

func record(ctx context.Context, tx *ent.Tx, typ EventType, a *ent.Appointment) error {
	return events.Record(ctx, tx, Topic, string(typ), Change{
		AppointmentID: a.ID, PatientID: a.PatientID, ProviderID: a.ProviderID, DepartmentID: a.DepartmentID,
	})
}

func isProviderKind(k staff.Kind) bool {
	for _, pk := range providerKinds {
		if k == pk {
			return true
		}
	}
	return false
}

func sameRoom(a, b *string) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func pastTense(e EventType) string {
	switch e {
	case Cancelled:
		return "cancelled"
	case CheckedIn:
		return "checked in"
	case Rescheduled:
		return "rescheduled"
	case Started:
		return "started"
	case Completed:
		return "completed"
	case NoShow:
		return "marked a no-show"
	}
	return string(e)
}
