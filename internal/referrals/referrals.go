package referrals

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/referral"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/patients"
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

// Service runs referrals and care-team membership. It needs only the ent
// client, so the GraphQL layer can make one per request.
type Service struct {
	client *ent.Client
	now    func() time.Time
}

// NewService returns a Service on client.
func NewService(client *ent.Client) *Service { return &Service{client: client, now: time.Now} }

// Refer sends a referral from the viewer and the viewer's department.
func (s *Service) Refer(ctx context.Context, in ReferPatientInput) (*ent.Referral, error) {
	if err := validateReferral(&in); err != nil {
		return nil, err
	}
	var created *ent.Referral
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		me, err := viewerStaff(ctx, tx)
		if err != nil {
			return err
		}
		if me.DepartmentID == "" {
			return apperr.Denied("a referral is sent from a department, and you belong to none")
		}
		if err := checkPatient(ctx, tx, in.PatientID); err != nil {
			return err
		}
		if ok, err := tx.Department.Query().Where(department.ID(in.ToDepartmentID)).Exist(ctx); err != nil {
			return err
		} else if !ok {
			return apperr.BadInput("input.toDepartmentId", "no such department")
		}
		if in.ToStaffID != nil {
			if err := checkProvider(ctx, tx, me, in.ToDepartmentID, *in.ToStaffID); err != nil {
				return err
			}
		}
		if in.EncounterID != nil {
			enc, err := tx.Encounter.Get(ctx, *in.EncounterID)
			if ent.IsNotFound(err) {
				return apperr.BadInput("input.encounterId", "no such encounter")
			} else if err != nil {
				return err
			}
			if enc.PatientID != in.PatientID {
				return apperr.BadInput("input.encounterId", "is not an encounter of this patient")
			}
		}
		created, err = tx.Referral.Create().
			SetPatientID(in.PatientID).
			SetFromStaffID(me.ID).
			SetFromDepartmentID(me.DepartmentID).
			SetToDepartmentID(in.ToDepartmentID).
			SetNillableToStaffID(in.ToStaffID).
			SetNillableEncounterID(in.EncounterID).
			SetReason(in.Reason).
			SetPriority(in.Priority).
			Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return created.Unwrap(), nil
}

func validateReferral(in *ReferPatientInput) error {
	in.Reason = strings.TrimSpace(in.Reason)
	if in.Priority == "" {
		in.Priority = referral.DefaultPriority
	}
	switch {
	case !globalid.Valid(in.PatientID, "pat"):
		return apperr.BadInput("input.patientId", "is not a patient ID")
	case !globalid.Valid(in.ToDepartmentID, "dep"):
		return apperr.BadInput("input.toDepartmentId", "is not a department ID")
	case in.ToStaffID != nil && !globalid.Valid(*in.ToStaffID, "stf"):
		return apperr.BadInput("input.toStaffId", "is not a staff ID")
	case in.EncounterID != nil && !globalid.Valid(*in.EncounterID, "enc"):
		return apperr.BadInput("input.encounterId", "is not an encounter ID")
	case in.Reason == "" || len(in.Reason) > MaxReason:
		return apperr.BadInput("input.reason", "is required, at most %d characters", MaxReason)
	case referral.PriorityValidator(in.Priority) != nil:
		return apperr.BadInput("input.priority", "is not a referral priority")
	}
	return nil
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
	if err := validateNote("note", note, false); err != nil {
		return nil, err
	}
	return s.respond(ctx, id, referral.StatusREQUESTED, referral.StatusACCEPTED, func(ctx context.Context, tx *ent.Tx, me *ent.Staff, current *ent.Referral, u *ent.ReferralUpdateOne) error {
		now := s.now().UTC()
		u.SetRespondedAt(now).SetNillableResponseNote(note)
		if current.ToStaffID == nil {
			u.SetToStaffID(me.ID)
		}
		// The patient's row lock keeps two acceptances by one clinician,
		// or an acceptance and addCareTeamMember, from both adding them.
		if err := lockPatient(ctx, tx, current.PatientID); err != nil {
			return err
		}
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
	if err := validateNote("reason", &reason, true); err != nil {
		return nil, err
	}
	return s.respond(ctx, id, referral.StatusREQUESTED, referral.StatusDECLINED, func(_ context.Context, _ *ent.Tx, _ *ent.Staff, _ *ent.Referral, u *ent.ReferralUpdateOne) error {
		u.SetRespondedAt(s.now().UTC()).SetResponseNote(reason)
		return nil
	})
}

// Complete closes an ACCEPTED referral once the patient has been seen.
func (s *Service) Complete(ctx context.Context, id string, note *string) (*ent.Referral, error) {
	if err := validateNote("note", note, false); err != nil {
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
	if err := validateNote("reason", &reason, true); err != nil {
		return nil, err
	}
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
	if !globalid.Valid(id, "ref") {
		return nil, apperr.BadInput("id", "is not a referral ID")
	}
	var changed *ent.Referral
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		me, err := viewerStaff(ctx, tx)
		if err != nil {
			return err
		}
		current, err := tx.Referral.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("referral not found")
		} else if err != nil {
			return err
		}
		if err := check(me, current); err != nil {
			return err
		}
		u := tx.Referral.UpdateOneID(id).Where(referral.StatusEQ(current.Status)).SetStatus(to)
		if err := apply(ctx, tx, me, current, u); err != nil {
			return err
		}
		changed, err = u.Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the referral changed meanwhile; reload it")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return changed.Unwrap(), nil
}

func receives(me *ent.Staff, r *ent.Referral) bool {
	return (r.ToStaffID != nil && *r.ToStaffID == me.ID) ||
		(me.DepartmentID != "" && me.DepartmentID == r.ToDepartmentID)
}

func validateNote(field string, note *string, required bool) error {
	if note == nil {
		if required {
			return apperr.BadInput(field, "is required")
		}
		return nil
	}
	*note = strings.TrimSpace(*note)
	if (required && *note == "") || len(*note) > MaxNote {
		return apperr.BadInput(field, "is required, at most %d characters", MaxNote)
	}
	return nil
}

// Incoming returns the viewer's work list: referrals to the viewer, or to
// the viewer's department, other than their own.
func (s *Service) Incoming(ctx context.Context, f IncomingFilter) (*ent.ReferralQuery, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return nil, apperr.Denied("only members of staff receive referrals")
	}
	me, err := s.client.Staff.Get(ctx, v.StaffID)
	if ent.IsNotFound(err) {
		return nil, apperr.Denied("only members of staff receive referrals")
	} else if err != nil {
		return nil, err
	}
	mine := referral.ToStaffID(me.ID)
	if me.DepartmentID != "" {
		mine = referral.Or(mine, referral.ToDepartmentID(me.DepartmentID))
	}
	q := s.client.Referral.Query().Where(mine, referral.FromStaffIDNEQ(me.ID))
	if f.Status != nil {
		q.Where(referral.StatusEQ(*f.Status))
	}
	if f.Priority != nil {
		q.Where(referral.PriorityEQ(*f.Priority))
	}
	return q, nil
}

// viewerStaff returns the viewer's staff record: referrals and care teams
// are acted on by people, never by keys or the system.
func viewerStaff(ctx context.Context, tx *ent.Tx) (*ent.Staff, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return nil, apperr.Denied("only a member of staff can do this")
	}
	me, err := tx.Staff.Get(ctx, v.StaffID)
	if ent.IsNotFound(err) {
		return nil, apperr.Denied("only a member of staff can do this")
	} else if err != nil {
		return nil, err
	}
	if !me.Active {
		return nil, apperr.Denied("only an active member of staff can do this")
	}
	return me, nil
}

func checkPatient(ctx context.Context, tx *ent.Tx, id string) error {
	_, err := patients.Active(ctx, tx.Patient, "input.patientId", id)
	return err
}

// lockPatient holds the patient's row until the transaction ends, so that
// care-team checks and writes for one patient happen one at a time.
func lockPatient(ctx context.Context, tx *ent.Tx, id string) error {
	_, err := tx.Patient.Query().Where(patient.ID(id), forUpdate).Only(ctx)
	return err
}

// forUpdate locks the selected rows on PostgreSQL. SQLite needs no row
// locks: its write transactions start immediate and run one at a time.
func forUpdate(s *sql.Selector) {
	if s.Dialect() == dialect.Postgres {
		s.ForUpdate()
	}
}

func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context, tx *ent.Tx) error) error {
	tx, err := s.client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
