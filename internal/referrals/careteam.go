package referrals

import (
	"context"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// AddCareTeamMemberInput is the input of addCareTeamMember.
type AddCareTeamMemberInput struct {
	PatientID string
	StaffID   string
	Role      careteammember.Role
}

// roleKinds are the kinds of staff that may hold a care-team role; a role
// not listed (CONSULTANT, OTHER) may be held by anyone on the staff.
var roleKinds = map[careteammember.Role][]staff.Kind{
	careteammember.RoleATTENDING:    {staff.KindDOCTOR},
	careteammember.RolePRIMARY_CARE: {staff.KindDOCTOR},
	careteammember.RoleNURSE:        {staff.KindNURSE},
	careteammember.RolePHARMACIST:   {staff.KindPHARMACIST},
}

// AddCareTeamMember puts a member of staff on the patient's care team in a
// role. An active membership of the same staff in the same role is a
// CONFLICT; the same person may hold different roles at once.
func (s *Service) AddCareTeamMember(ctx context.Context, in AddCareTeamMemberInput) (*ent.CareTeamMember, error) {
	switch {
	case !globalid.Valid(in.PatientID, "pat"):
		return nil, apperr.BadInput("input.patientId", "is not a patient ID")
	case !globalid.Valid(in.StaffID, "stf"):
		return nil, apperr.BadInput("input.staffId", "is not a staff ID")
	case careteammember.RoleValidator(in.Role) != nil:
		return nil, apperr.BadInput("input.role", "is not a care-team role")
	}
	var added *ent.CareTeamMember
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if _, err := viewerStaff(ctx, tx); err != nil {
			return err
		}
		if err := checkPatient(ctx, tx, in.PatientID); err != nil {
			return err
		}
		m, err := tx.Staff.Get(ctx, in.StaffID)
		if ent.IsNotFound(err) {
			return apperr.BadInput("input.staffId", "no such member of staff")
		} else if err != nil {
			return err
		}
		if !m.Active {
			return apperr.BadInput("input.staffId", "is no longer active")
		}
		if kinds, ok := roleKinds[in.Role]; ok && !hasKind(kinds, m.Kind) {
			return apperr.BadInput("input.role", "%s needs a member of staff of kind %s", in.Role, kindNames(kinds))
		}
		if err := lockPatient(ctx, tx, in.PatientID); err != nil {
			return err
		}
		exists, err := tx.CareTeamMember.Query().
			Where(careteammember.PatientID(in.PatientID), careteammember.StaffID(in.StaffID),
				careteammember.RoleEQ(in.Role), careteammember.UntilIsNil()).
			Exist(ctx)
		if err != nil {
			return err
		}
		if exists {
			return apperr.Conflictf("this member of staff is already on the care team as %s", in.Role)
		}
		added, err = tx.CareTeamMember.Create().SetPatientID(in.PatientID).SetStaffID(in.StaffID).
			SetRole(in.Role).SetSince(s.now().UTC()).Save(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return added.Unwrap(), nil
}

// EndCareTeamMembership ends an active membership now. The row stays, so
// the team's history is kept.
func (s *Service) EndCareTeamMembership(ctx context.Context, id string) (*ent.CareTeamMember, error) {
	if !globalid.Valid(id, "ctm") {
		return nil, apperr.BadInput("id", "is not a care-team membership ID")
	}
	var ended *ent.CareTeamMember
	err := s.inTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if _, err := viewerStaff(ctx, tx); err != nil {
			return err
		}
		current, err := tx.CareTeamMember.Get(ctx, id)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("care-team membership not found")
		} else if err != nil {
			return err
		}
		if current.Until != nil {
			return apperr.Conflictf("the membership has already ended")
		}
		ended, err = tx.CareTeamMember.UpdateOneID(id).Where(careteammember.UntilIsNil()).SetUntil(s.now().UTC()).Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.Conflictf("the membership has already ended")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return ended.Unwrap(), nil
}

func hasKind(kinds []staff.Kind, k staff.Kind) bool {
	for _, want := range kinds {
		if k == want {
			return true
		}
	}
	return false
}

func kindNames(kinds []staff.Kind) string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = string(k)
	}
	return strings.Join(names, " or ")
}
