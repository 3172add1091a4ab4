// Package scheduling books, cancels and checks in appointments and keeps a
// provider or a patient from being booked twice for the same time.
package scheduling

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/store"
)

// Topic is the event topic appointment changes are published on.
const Topic = "appointments"

// EventType names what happened to an appointment.
type EventType string

const (
	Booked    EventType = "BOOKED"
	Cancelled EventType = "CANCELLED"
	CheckedIn EventType = "CHECKED_IN"
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
)

// Notifier is told after a commit that recorded events, so they go out now
// rather than at the relay's next poll.
type Notifier interface{ Poke() }

// Service runs the appointment state machine.
type Service struct {
	store  *store.Store
	notify Notifier
	now    func() time.Time
}

// NewService returns a Service on st that pokes notify after each change.
func NewService(st *store.Store, notify Notifier) *Service {
	return &Service{store: st, notify: notify, now: time.Now}
}

// providerKinds are the staff who see patients in appointments.
var providerKinds = []staff.Kind{staff.KindDOCTOR, staff.KindNURSE}

// Book creates an appointment after checking that neither the provider nor
// the patient has another one overlapping [StartAt, EndAt).
func (s *Service) Book(ctx context.Context, b Booking) (*ent.Appointment, error) {
	if err := s.validateBooking(b); err != nil {
		return nil, err
	}
	var booked *ent.Appointment
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		// Lock before reading, so the overlap check and the insert happen as
		// one step for this provider and this patient.
		if err := s.store.Lock(ctx, tx, "provider:"+b.ProviderID, "patient:"+b.PatientID); err != nil {
			return err
		}
		pat, err := tx.Patient.Get(ctx, b.PatientID)
		if ent.IsNotFound(err) {
			return apperr.BadInput("input.patientId", "no such patient")
		} else if err != nil {
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
		clash, err := tx.Appointment.Query().
			Where(
				appointment.StatusNEQ(appointment.StatusCANCELLED),
				appointment.StartAtLT(b.EndAt),
				appointment.EndAtGT(b.StartAt),
				appointment.Or(appointment.ProviderID(b.ProviderID), appointment.PatientID(b.PatientID)),
			).
			First(ctx)
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			return err
		case clash.ProviderID == b.ProviderID:
			return apperr.Conflictf("the provider already has an appointment from %s to %s", stamp(clash.StartAt), stamp(clash.EndAt))
		default:
			return apperr.Conflictf("the patient already has an appointment from %s to %s", stamp(clash.StartAt), stamp(clash.EndAt))
		}
		booked, err = tx.Appointment.Create().
			SetPatientID(pat.ID).
			SetProviderID(provider.ID).
			SetDepartmentID(departmentID).
			SetStartAt(b.StartAt.UTC()).
			SetEndAt(b.EndAt.UTC()).
			SetNillableReason(b.Reason).
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

func (s *Service) validateBooking(b Booking) error {
	switch {
	case !globalid.Valid(b.PatientID, "pat"):
		return apperr.BadInput("input.patientId", "is not a patient ID")
	case !globalid.Valid(b.ProviderID, "stf"):
		return apperr.BadInput("input.providerId", "is not a staff ID")
	case b.DepartmentID != nil && !globalid.Valid(*b.DepartmentID, "dep"):
		return apperr.BadInput("input.departmentId", "is not a department ID")
	case !b.EndAt.After(b.StartAt):
		return apperr.BadInput("input.endAt", "must be after startAt")
	case b.EndAt.Sub(b.StartAt) > MaxDuration:
		return apperr.BadInput("input.endAt", "an appointment lasts at most %s", MaxDuration)
	case b.StartAt.Before(s.now().Add(-BackdateGrace)):
		return apperr.BadInput("input.startAt", "is more than %s in the past", BackdateGrace)
	case b.Reason != nil && len(*b.Reason) > 500:
		return apperr.BadInput("input.reason", "must be at most 500 characters")
	}
	return nil
}

// Cancel cancels a booked appointment.
func (s *Service) Cancel(ctx context.Context, id string, c Cancellation) (*ent.Appointment, error) {
	if len(c.Reason) == 0 || len(c.Reason) > 500 {
		return nil, apperr.BadInput("input.reason", "is required, at most 500 characters")
	}
	return s.transition(ctx, id, appointment.StatusBOOKED, Cancelled, func(u *ent.AppointmentUpdateOne) {
		u.SetStatus(appointment.StatusCANCELLED).SetCancelReason(c.Reason).SetCancelledAt(s.now().UTC())
	})
}

// CheckIn records that the patient has arrived.
func (s *Service) CheckIn(ctx context.Context, id string) (*ent.Appointment, error) {
	return s.transition(ctx, id, appointment.StatusBOOKED, CheckedIn, func(u *ent.AppointmentUpdateOne) {
		u.SetStatus(appointment.StatusCHECKED_IN).SetCheckedInAt(s.now().UTC())
	}, func(a *ent.Appointment) error {
		if s.now().Add(CheckInOpens).Before(a.StartAt) {
			return apperr.Conflictf("check-in opens %s before the appointment", CheckInOpens)
		}
		return nil
	})
}

// transition moves an appointment from status from, applying set, after the
// extra checks pass. The update is conditional on the status still being
// from, so two concurrent transitions cannot both succeed.
func (s *Service) transition(ctx context.Context, id string, from appointment.Status, event EventType,
	set func(*ent.AppointmentUpdateOne), checks ...func(*ent.Appointment) error) (*ent.Appointment, error) {
	if !globalid.Valid(id, "apt") {
		return nil, apperr.BadInput("id", "is not an appointment ID")
	}
	var changed *ent.Appointment
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		current, err := tx.Appointment.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("appointment not found")
		} else if err != nil {
			return err
		}
		if current.Status != from {
			return apperr.Conflictf("the appointment is %s; only a %s one can be %s", current.Status, from, pastTense(event))
		}
		for _, check := range checks {
			if err := check(current); err != nil {
				return err
			}
		}
		u := tx.Appointment.UpdateOneID(id).Where(appointment.StatusEQ(from))
		set(u)
		changed, err = u.Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the appointment changed meanwhile; reload it")
		} else if err != nil {
			return err
		}
		return record(ctx, tx, event, changed)
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

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func pastTense(e EventType) string {
	switch e {
	case Cancelled:
		return "cancelled"
	case CheckedIn:
		return "checked in"
	}
	return string(e)
}
