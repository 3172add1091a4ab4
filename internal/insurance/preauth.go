package insurance

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/preauthorization"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Doctors ask for a pre-authorization as the service's prescriber; the
// billing office (or an administrator, as the policy admits) asks, and
// records the payer's answer.
var (
	requesters = []staff.Kind{staff.KindDOCTOR, staff.KindBILLING_CLERK}
	clerks     = []staff.Kind{staff.KindBILLING_CLERK, staff.KindADMINISTRATOR}
)

// RequestPreAuthorization asks the payer of an active policy for consent.
func (s *Service) RequestPreAuthorization(ctx context.Context, in RequestPreAuthorizationInput) (*ent.PreAuthorization, error) {
	var c input.Checker
	c.ID("input.policyId", in.PolicyID, input.InsurancePolicy)
	if c.Err() == nil && preauthorization.CategoryValidator(in.Category) != nil {
		c.Fail(apperr.BadInput("input.category", "is not a service category"))
	}
	cd := optionalCode(&c, "input.serviceCode", in.ServiceCode)
	reason := c.OptionalText("input.reason", in.Reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PreAuthorization, error) {
		who, err := auth.ActingStaff(ctx, tx.Staff, "request pre-authorizations", requesters...)
		if err != nil {
			return nil, err
		}
		p, err := activePolicy(ctx, tx, "input.policyId", in.PolicyID)
		if err != nil {
			return nil, err
		}
		if p.PlanID == nil {
			return nil, apperr.BadInput("input.policyId", "the policy is linked to no plan; link it first")
		}
		return tx.PreAuthorization.Create().SetPatientID(p.PatientID).SetPolicyID(p.ID).SetCategory(in.Category).
			SetNillableServiceCode(cd).SetNillableReason(reason).SetRequestedByID(who.ID).Save(ctx)
	})
}

// ApprovePreAuthorization records the payer's approval.
func (s *Service) ApprovePreAuthorization(ctx context.Context, id string, in ApprovePreAuthorizationInput) (*ent.PreAuthorization, error) {
	var c input.Checker
	c.ID("id", id, input.PreAuthorization)
	ref := c.Text("input.payerReference", in.PayerReference, 64)
	if c.Err() == nil && in.ValidFrom.IsZero() {
		c.Fail(apperr.BadInput("input.validFrom", "is required"))
	}
	if c.Err() == nil && (in.ValidTo.IsZero() || input.Date(in.ValidTo).Before(input.Date(in.ValidFrom))) {
		c.Fail(apperr.BadInput("input.validTo", "must not be before validFrom"))
	}
	if c.Err() == nil && in.ApprovedAmount == nil && in.ApprovedQuantity == nil {
		c.Fail(apperr.BadInput("input.approvedAmount", "give the amount approved, the quantity, or both"))
	}
	if in.ApprovedAmount != nil {
		amount(&c, "input.approvedAmount", *in.ApprovedAmount)
	}
	if c.Err() == nil && in.ApprovedQuantity != nil && (*in.ApprovedQuantity < 1 || *in.ApprovedQuantity > MaxQuantity) {
		c.Fail(apperr.BadInput("input.approvedQuantity", "must be 1 to %d", MaxQuantity))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return s.decide(ctx, id, func(u *ent.PreAuthorizationUpdateOne) {
		u.SetStatus(preauthorization.StatusAPPROVED).SetPayerReference(ref).
			SetValidFrom(input.Date(in.ValidFrom)).SetValidTo(input.Date(in.ValidTo)).
			SetNillableApprovedAmount(in.ApprovedAmount).SetNillableApprovedQuantity(in.ApprovedQuantity)
	})
}

// DenyPreAuthorization records the payer's refusal.
func (s *Service) DenyPreAuthorization(ctx context.Context, id, reason string) (*ent.PreAuthorization, error) {
	var c input.Checker
	c.ID("id", id, input.PreAuthorization)
	why := c.Text("reason", reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return s.decide(ctx, id, func(u *ent.PreAuthorizationUpdateOne) {
		u.SetStatus(preauthorization.StatusDENIED).SetReason(why)
	})
}

func (s *Service) decide(ctx context.Context, id string, set func(*ent.PreAuthorizationUpdateOne)) (*ent.PreAuthorization, error) {
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PreAuthorization, error) {
		who, err := auth.ActingStaff(ctx, tx.Staff, "record a payer's decision", clerks...)
		if err != nil {
			return nil, err
		}
		p, err := store.GetLocked(ctx, tx, tx.PreAuthorization.Get, id,
			func(p *ent.PreAuthorization) string { return p.PatientID }, "pre-authorization not found")
		if err != nil {
			return nil, err
		}
		if p.Status != preauthorization.StatusREQUESTED {
			return nil, apperr.Conflictf("the pre-authorization is %s; only a REQUESTED one is decided", p.Status)
		}
		u := tx.PreAuthorization.UpdateOne(p).Where(preauthorization.StatusEQ(preauthorization.StatusREQUESTED)).SetDecidedByID(who.ID)
		set(u)
		out, err := u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the pre-authorization was decided by someone else meanwhile; reload it")
		}
		return out, err
	})
}
