package referrals

import (
	"context"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/breakglassaccess"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
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
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.ID("input.staffId", in.StaffID, input.Staff)
	if c.Err() == nil && careteammember.RoleValidator(in.Role) != nil {
		c.Fail(apperr.BadInput("input.role", "is not a care-team role"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.CareTeamMember, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "keep care teams", actors...)
		if err != nil {
			return nil, err
		}
		if _, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID); err != nil {
			return nil, err
		}
		// Membership is a care relationship that lasts: joining the team on
		// the strength of a break-the-glass access would outlive the access.
		// A colleague who has a relationship, or an admin, adds them.
		if in.StaffID == actor.ID {
			broken, err := tx.BreakGlassAccess.Query().
				Where(breakglassaccess.PatientID(in.PatientID), breakglassaccess.StaffID(actor.ID),
					breakglassaccess.ExpiresAtGT(s.now().UTC())).
				Exist(ctx)
			if err != nil {
				return nil, err
			}
			if broken {
				return nil, apperr.Denied("a break-the-glass access does not let you add yourself to the care team; a colleague on it or an admin can")
			}
		}
		m, err := tx.Staff.Get(ctx, in.StaffID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.staffId", "no such member of staff")
		} else if err != nil {
			return nil, err
		}
		if !m.Active {
			return nil, apperr.BadInput("input.staffId", "is no longer active")
		}
		if kinds, ok := roleKinds[in.Role]; ok && !hasKind(kinds, m.Kind) {
			return nil, apperr.BadInput("input.role", "%s needs a member of staff of kind %s", in.Role, kindNames(kinds))
		}
		exists, err := tx.CareTeamMember.Query().
			Where(careteammember.PatientID(in.PatientID), careteammember.StaffID(in.StaffID),
				careteammember.RoleEQ(in.Role), careteammember.UntilIsNil()).
			Exist(ctx)
		if err != nil {
			return nil, err
		}
		if exists {
			return nil, apperr.Conflictf("this member of staff is already on the care team as %s", in.Role)
		}
		return tx.CareTeamMember.Create().SetPatientID(in.PatientID).SetStaffID(in.StaffID).
			SetRole(in.Role).SetSince(s.now().UTC()).Save(ctx)
	})
}

// EndCareTeamMembership ends an active membership now. The row stays, so
// the team's history is kept.
func (s *Service) EndCareTeamMembership(ctx context.Context, id string) (*ent.CareTeamMember, error) {
	if err := input.ID("id", id, input.CareTeamMember); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.CareTeamMember, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "keep care teams", actors...); err != nil {
			return nil, err
		}
		current, err := store.GetLocked(ctx, tx, tx.CareTeamMember.Get, id, func(m *ent.CareTeamMember) string { return m.PatientID }, "care-team membership not found")
		if err != nil {
			return nil, err
		}
		if current.Until != nil {
			return nil, apperr.Conflictf("the membership has already ended")
		}
		ended, err := tx.CareTeamMember.UpdateOneID(id).Where(careteammember.UntilIsNil()).SetUntil(s.now().UTC()).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the membership has already ended")
		}
		return ended, err
	})
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
