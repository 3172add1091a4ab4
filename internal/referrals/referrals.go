package referrals

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/referral"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// ReferPatientInput is the input of referPatient.
type ReferPatientInput struct {
	PatientID      string
	ToDepartmentID string
	ToStaffID      *string
	Reason         string
	Priority       referral.Priority
	EncounterID    *string
}

// IncomingFilter narrows a work list of incoming referrals.
type IncomingFilter struct {
	Status   *referral.Status
	Priority *referral.Priority
}

// Limits on free text.
const (
	MaxReason = 2000
	MaxNote   = 1000
)

// providerKinds are the staff a referral may name as the one to see the patient.
var providerKinds = []staff.Kind{staff.KindDOCTOR, staff.KindNURSE}

// Service runs referrals and care-team membership.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st.
func NewService(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// actors are the staff who refer and keep care teams, as the policy's
// referrer and care_team_keeper roles: people, never keys or the system.
var actors = []staff.Kind{staff.KindDOCTOR, staff.KindNURSE}

// Refer sends a referral from the viewer and the viewer's department.
func (s *Service) Refer(ctx context.Context, in ReferPatientInput) (*ent.Referral, error) {
	if err := validateReferral(&in); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Referral, error) {
		me, err := auth.ActingStaff(ctx, tx.Staff, "refer patients", actors...)
		if err != nil {
			return nil, err
		}
		if me.DepartmentID == "" {
			return nil, apperr.Denied("a referral is sent from a department, and you belong to none")
		}
		if _, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID); err != nil {
			return nil, err
		}
		if ok, err := tx.Department.Query().Where(department.ID(in.ToDepartmentID)).Exist(ctx); err != nil {
			return nil, err
		} else if !ok {
			return nil, apperr.BadInput("input.toDepartmentId", "no such department")
		}
		if in.ToStaffID != nil {
			if err := checkProvider(ctx, tx, me, in.ToDepartmentID, *in.ToStaffID); err != nil {
				return nil, err
			}
		}
		if in.EncounterID != nil {
			enc, err := tx.Encounter.Get(ctx, *in.EncounterID)
			if ent.IsNotFound(err) {
				return nil, apperr.BadInput("input.encounterId", "no such encounter")
			} else if err != nil {
				return nil, err
			}
			if enc.PatientID != in.PatientID {
				return nil, apperr.BadInput("input.encounterId", "is not an encounter of this patient")
			}
		}
		return tx.Referral.Create().
			SetPatientID(in.PatientID).
			SetFromStaffID(me.ID).
			SetFromDepartmentID(me.DepartmentID).
			SetToDepartmentID(in.ToDepartmentID).
			SetNillableToStaffID(in.ToStaffID).
			SetNillableEncounterID(in.EncounterID).
			SetReason(in.Reason).
			SetPriority(in.Priority).
			Save(ctx)
	})
}

func validateReferral(in *ReferPatientInput) error {
	if in.Priority == "" {
		in.Priority = referral.DefaultPriority
	}
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.ID("input.toDepartmentId", in.ToDepartmentID, input.Department)
	c.OptionalID("input.toStaffId", in.ToStaffID, input.Staff)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	in.Reason = c.Text("input.reason", in.Reason, MaxReason)
	if c.Err() == nil && referral.PriorityValidator(in.Priority) != nil {
		c.Fail(apperr.BadInput("input.priority", "is not a referral priority"))
	}
	return c.Err()
}

// checkProvider: the named provider is an active clinician of the
// receiving department, and someone other than the referrer.
func checkProvider(ctx context.Context, tx *ent.Tx, me *ent.Staff, toDepartmentID, id string) error {
	const field = "input.toStaffId"
	if id == me.ID {
		return apperr.BadInput(field, "a referral asks someone else")
	}
	provider, err := tx.Staff.Get(ctx, id)
	if ent.IsNotFound(err) {
		return apperr.BadInput(field, "no such member of staff")
	} else if err != nil {
		return err
	}
	switch {
	case !provider.Active:
		return apperr.BadInput(field, "is no longer active")
	case !hasKind(providerKinds, provider.Kind):
		return apperr.BadInput(field, "is not a doctor or nurse")
	case provider.DepartmentID != toDepartmentID:
		return apperr.BadInput(field, "does not belong to the receiving department")
	}
	return nil
}

// Accept takes a REQUESTED referral on. The accepting clinician becomes the
// referral's provider and, unless already an active member of the
// patient's care team, joins it as CONSULTANT, in the same transaction.
func (s *Service) Accept(ctx context.Context, id string, note *string) (*ent.Referral, error) {
	note, err := validNote("note", note, false)
	if err != nil {
		return nil, err
	}
	return s.respond(ctx, id, referral.StatusREQUESTED, referral.StatusACCEPTED, func(ctx context.Context, tx *ent.Tx, me *ent.Staff, current *ent.Referral, u *ent.ReferralUpdateOne) error {
		now := s.now().UTC()
		u.SetRespondedAt(now).SetNillableResponseNote(note)
		if current.ToStaffID == nil {
			u.SetToStaffID(me.ID)
		}
		// The patient's lock, taken by move, keeps two acceptances by one
		// clinician, or an acceptance and addCareTeamMember, from both
		// adding them.
		member, err := tx.CareTeamMember.Query().
			Where(careteammember.PatientID(current.PatientID), careteammember.StaffID(me.ID), careteammember.UntilIsNil()).
			Exist(ctx)
		if err != nil || member {
			return err
		}
		return tx.CareTeamMember.Create().SetPatientID(current.PatientID).SetStaffID(me.ID).
			SetRole(careteammember.RoleCONSULTANT).SetSince(now).Exec(ctx)
	})
}

// Decline turns a REQUESTED referral down, saying why.
func (s *Service) Decline(ctx context.Context, id, reason string) (*ent.Referral, error) {
	trimmed, err := validNote("reason", &reason, true)
	if err != nil {
		return nil, err
	}
	reason = *trimmed
	return s.respond(ctx, id, referral.StatusREQUESTED, referral.StatusDECLINED, func(_ context.Context, _ *ent.Tx, _ *ent.Staff, _ *ent.Referral, u *ent.ReferralUpdateOne) error {
		u.SetRespondedAt(s.now().UTC()).SetResponseNote(reason)
		return nil
	})
}

// Complete closes an ACCEPTED referral once the patient has been seen.
func (s *Service) Complete(ctx context.Context, id string, note *string) (*ent.Referral, error) {
	note, err := validNote("note", note, false)
	if err != nil {
		return nil, err
	}
	return s.respond(ctx, id, referral.StatusACCEPTED, referral.StatusCOMPLETED, func(_ context.Context, _ *ent.Tx, _ *ent.Staff, _ *ent.Referral, u *ent.ReferralUpdateOne) error {
		u.SetNillableResponseNote(note)
		return nil
	})
}

// respond moves a referral the viewer receives from status from to to. The
// receiving side is the named provider or any member of the receiving
// department; the referrer never answers their own referral.
func (s *Service) respond(ctx context.Context, id string, from, to referral.Status,
	apply func(ctx context.Context, tx *ent.Tx, me *ent.Staff, current *ent.Referral, u *ent.ReferralUpdateOne) error) (*ent.Referral, error) {
	return s.move(ctx, id, to, func(me *ent.Staff, r *ent.Referral) error {
		switch {
		case r.FromStaffID == me.ID:
			return apperr.Denied("the referrer cannot answer their own referral")
		case !receives(me, r):
			return apperr.Denied("only the named provider or staff of the receiving department can answer this referral")
		case r.Status != from:
			return apperr.Conflictf("the referral is %s; only a %s one can become %s", r.Status, from, to)
		}
		return nil
	}, apply)
}

// Cancel withdraws a REQUESTED or ACCEPTED referral; only the referrer may.
func (s *Service) Cancel(ctx context.Context, id, reason string) (*ent.Referral, error) {
	trimmed, err := validNote("reason", &reason, true)
	if err != nil {
		return nil, err
	}
	reason = *trimmed
	return s.move(ctx, id, referral.StatusCANCELLED, func(me *ent.Staff, r *ent.Referral) error {
		switch {
		case r.FromStaffID != me.ID:
			return apperr.Denied("only the referrer can cancel a referral")
		case r.Status != referral.StatusREQUESTED && r.Status != referral.StatusACCEPTED:
			return apperr.Conflictf("the referral is %s; only a REQUESTED or ACCEPTED one can be cancelled", r.Status)
		}
		return nil
	}, func(_ context.Context, _ *ent.Tx, _ *ent.Staff, _ *ent.Referral, u *ent.ReferralUpdateOne) error {
		u.SetResponseNote(reason)
		return nil
	})
}

// move runs one referral transition: who may (check), then the update,
// conditional on the status read, so of two concurrent transitions one
// wins and the other gets CONFLICT.
func (s *Service) move(ctx context.Context, id string, to referral.Status,
	check func(me *ent.Staff, r *ent.Referral) error,
	apply func(ctx context.Context, tx *ent.Tx, me *ent.Staff, current *ent.Referral, u *ent.ReferralUpdateOne) error) (*ent.Referral, error) {
	if err := input.ID("id", id, input.Referral); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Referral, error) {
		me, err := auth.ActingStaff(ctx, tx.Staff, "answer or cancel referrals", actors...)
		if err != nil {
			return nil, err
		}
		current, err := store.GetLocked(ctx, tx, tx.Referral.Get, id, func(r *ent.Referral) string { return r.PatientID }, "referral not found")
		if err != nil {
			return nil, err
		}
		if err := check(me, current); err != nil {
			return nil, err
		}
		u := tx.Referral.UpdateOneID(id).Where(referral.StatusEQ(current.Status)).SetStatus(to)
		if err := apply(ctx, tx, me, current, u); err != nil {
			return nil, err
		}
		changed, err := u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the referral changed meanwhile; reload it")
		}
		return changed, err
	})
}

func receives(me *ent.Staff, r *ent.Referral) bool {
	return (r.ToStaffID != nil && *r.ToStaffID == me.ID) ||
		(me.DepartmentID != "" && me.DepartmentID == r.ToDepartmentID)
}

// validNote checks a required note (a reason) or, with note nil allowed,
// an optional one, returning it trimmed.
func validNote(field string, note *string, required bool) (*string, error) {
	if required {
		s, err := input.Text(field, deref(note), MaxNote)
		return &s, err
	}
	return input.OptionalText(field, note, MaxNote)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Incoming returns the viewer's work list: referrals to the viewer, or to
// the viewer's department, other than their own.
func (s *Service) Incoming(ctx context.Context, f IncomingFilter) (*ent.ReferralQuery, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return nil, apperr.Denied("only members of staff receive referrals")
	}
	me, err := s.store.Client.Staff.Get(ctx, v.StaffID)
	if ent.IsNotFound(err) {
		return nil, apperr.Denied("only members of staff receive referrals")
	} else if err != nil {
		return nil, err
	}
	mine := referral.ToStaffID(me.ID)
	if me.DepartmentID != "" {
		mine = referral.Or(mine, referral.ToDepartmentID(me.DepartmentID))
	}
	q := s.store.Client.Referral.Query().Where(mine, referral.FromStaffIDNEQ(me.ID))
	if f.Status != nil {
		q.Where(referral.StatusEQ(*f.Status))
	}
	if f.Priority != nil {
		q.Where(referral.PriorityEQ(*f.Priority))
	}
	return q, nil
}
