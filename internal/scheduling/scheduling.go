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
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
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

// Service runs the appointment state machine.
type Service struct {
	store *store.Store
	// hospital is the time zone working hours and calendar days are in.
	hospital *time.Location
	now      func() time.Time
}

// NewService returns a Service on st that reads working hours and dates in
// the hospital's time zone.
func NewService(st *store.Store, hospital *time.Location) *Service {
	if hospital == nil {
		hospital = time.UTC
	}
	return &Service{store: st, hospital: hospital, now: time.Now}
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
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (booked *ent.Appointment, err error) {
		// Lock before reading, so the overlap check and the insert happen as
		// one step for this patient, this provider and this room.
		pat, err := patients.Lock(ctx, tx, "input.patientId", b.PatientID)
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, lockKeys(b.ProviderID, b.RoomID)...); err != nil {
			return nil, err
		}
		provider, err := tx.Staff.Get(ctx, b.ProviderID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.providerId", "no such member of staff")
		} else if err != nil {
			return nil, err
		}
		if !provider.Active {
			return nil, apperr.BadInput("input.providerId", "is no longer active")
		}
		if !isProviderKind(provider.Kind) {
			return nil, apperr.BadInput("input.providerId", "is not a doctor or nurse")
		}
		departmentID := provider.DepartmentID
		if b.DepartmentID != nil {
			departmentID = *b.DepartmentID
			if exists, err := tx.Department.Query().Where(department.ID(departmentID)).Exist(ctx); err != nil {
				return nil, err
			} else if !exists {
				return nil, apperr.BadInput("input.departmentId", "no such department")
			}
		}
		if departmentID == "" {
			return nil, apperr.BadInput("input.departmentId", "is required: the provider belongs to no department")
		}
		if err := s.checkPlacement(ctx, tx, placement{
			patientID: pat.ID, providerID: provider.ID, departmentID: departmentID,
			roomID: b.RoomID, start: b.StartAt, end: b.EndAt,
		}); err != nil {
			return nil, err
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
			return nil, err
		}
		// The answer's patient and provider are the rows just read under
		// the locks: a client asking for them costs no statement more.
		booked.Edges.Patient, booked.Edges.Provider = pat, provider
		return booked, record(ctx, tx, Booked, booked)
	})
}

// lockKeys names what a booking must hold still, besides the patient, while
// it checks and writes.
func lockKeys(providerID string, roomID *string) []string {
	keys := []string{"provider:" + providerID}
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
	var c input.Checker
	c.ID("input.patientId", b.PatientID, input.Patient)
	c.ID("input.providerId", b.ProviderID, input.Staff)
	c.OptionalID("input.departmentId", b.DepartmentID, input.Department)
	c.OptionalID("input.roomId", b.RoomID, input.Room)
	if b.Reason != nil {
		c.Fail(input.Length("input.reason", *b.Reason, 500))
	}
	if err := c.Err(); err != nil {
		return err
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
	if err := input.ID("id", id, input.Appointment); err != nil {
		return nil, err
	}
	newRoom, roomGiven := r.RoomID.ValueOK()
	if roomGiven && newRoom != nil {
		if err := input.ID("input.roomId", *newRoom, input.Room); err != nil {
			return nil, err
		}
	}
	r.StartAt, r.EndAt = r.StartAt.UTC(), r.EndAt.UTC()
	if err := s.validateTimes(r.StartAt, r.EndAt); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (moved *ent.Appointment, err error) {
		current, err := lockedAppointment(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		room := current.RoomID
		if roomGiven {
			room = newRoom
		}
		if err := s.store.Lock(ctx, tx, lockKeys(current.ProviderID, room)...); err != nil {
			return nil, err
		}
		// Read again under the locks: a concurrent change may have landed
		// between the first read and taking them.
		if current, err = tx.Appointment.Get(ctx, id); err != nil {
			return nil, err
		}
		if current.Status != appointment.StatusBOOKED {
			return nil, apperr.Conflictf("the appointment is %s; only a BOOKED one can be rescheduled", current.Status)
		}
		if !roomGiven && !sameRoom(room, current.RoomID) {
			// The room kept is not the one locked.
			return nil, apperr.Conflictf("the appointment changed meanwhile; reload it")
		}
		if err := s.checkPlacement(ctx, tx, placement{
			appointmentID: current.ID, patientID: current.PatientID, providerID: current.ProviderID,
			departmentID: current.DepartmentID, roomID: room, start: r.StartAt, end: r.EndAt,
		}); err != nil {
			return nil, err
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
			return nil, apperr.Conflictf("the appointment changed meanwhile; reload it")
		} else if err != nil {
			return nil, err
		}
		return moved, record(ctx, tx, Rescheduled, moved)
	})
}

// Cancel cancels a booked appointment.
func (s *Service) Cancel(ctx context.Context, id string, c Cancellation) (*ent.Appointment, error) {
	reason, err := input.Text("input.reason", c.Reason, 500)
	if err != nil {
		return nil, err
	}
	return s.transition(ctx, id, step{
		from: appointment.StatusBOOKED, event: Cancelled,
		set: func(u *ent.AppointmentUpdateOne, now time.Time) {
			u.SetStatus(appointment.StatusCANCELLED).SetCancelReason(reason).SetCancelledAt(now)
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
			open, err := tx.Encounter.Query().
				Where(encounter.AppointmentID(a.ID), encounter.StatusEQ(encounter.StatusIN_PROGRESS)).All(ctx)
			if err != nil {
				return err
			}
			for _, e := range open {
				if err := tx.Encounter.Update().Where(encounter.ID(e.ID), encounter.StatusEQ(encounter.StatusIN_PROGRESS)).
					SetStatus(encounter.StatusFINISHED).SetEndedAt(*a.CompletedAt).Exec(ctx); err != nil {
					return err
				}
				// The same announcement as finishing it from the record, so
				// that billing charges the consultation either way.
				if err := events.Record(ctx, tx, ehr.EncountersTopic, ehr.EncounterFinished, ehr.EncounterEvent{
					EncounterID: e.ID, PatientID: e.PatientID, DepartmentID: derefString(e.DepartmentID), Type: string(e.Type),
				}); err != nil {
					return err
				}
			}
			return nil
		},
	})
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
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
	if err := input.ID("id", id, input.Appointment); err != nil {
		return nil, err
	}
	now := input.Stored(s.now())
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (changed *ent.Appointment, err error) {
		current, err := lockedAppointment(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if current.Status != st.from {
			return nil, apperr.Conflictf("the appointment is %s; only a %s one can be %s", current.Status, st.from, pastTense(st.event))
		}
		if st.check != nil {
			if err := st.check(current, now); err != nil {
				return nil, err
			}
		}
		u := tx.Appointment.UpdateOneID(id).Where(appointment.StatusEQ(st.from))
		st.set(u, now)
		changed, err = u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the appointment changed meanwhile; reload it")
		} else if err != nil {
			return nil, err
		}
		if st.then != nil {
			if err := st.then(ctx, tx, changed); err != nil {
				return nil, err
			}
		}
		return changed, record(ctx, tx, st.event, changed)
	})
}

// lockedAppointment reads an appointment under its patient's lock.
func lockedAppointment(ctx context.Context, tx *ent.Tx, id string) (*ent.Appointment, error) {
	return store.GetLocked(ctx, tx, tx.Appointment.Get, id, func(a *ent.Appointment) string { return a.PatientID }, "appointment not found")
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

// stamp writes a time into a message as the API writes times, fractions of
// a second included: a clash at 10:00:00.5 must not read as one at 10:00.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

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
