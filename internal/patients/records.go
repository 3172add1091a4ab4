package patients

import (
	"context"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/insurancepolicy"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/patientidentifier"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// UpdatePatientContactInput changes a contact: an omitted field is kept, a
// null one cleared.
type UpdatePatientContactInput struct {
	Name             graphql.Omittable[*string]
	Relationship     graphql.Omittable[*string]
	Phone            graphql.Omittable[*string]
	Email            graphql.Omittable[*string]
	Address          graphql.Omittable[*string]
	NextOfKin        graphql.Omittable[*bool]
	EmergencyContact graphql.Omittable[*bool]
}

var errMergedMeanwhile = apperr.Conflictf("the patient was merged into another record meanwhile; reload it")

// lockedPatient takes the patient's lock and loads the patient through row
// scope — one the viewer may not see is not found — refusing a merged one:
// its record lives on in the survivor, which is the one to change.
func lockedPatient(ctx context.Context, tx *ent.Tx, id string) (*ent.Patient, error) {
	if err := lockIgnoringMerged(ctx, tx, id); err != nil {
		return nil, err
	}
	p, err := tx.Patient.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("patient not found")
	} else if err != nil {
		return nil, err
	}
	if p.Status == patient.StatusMERGED {
		return nil, apperr.Conflictf("the patient was merged into %s; change that record", deref(p.MergedIntoID))
	}
	return p, nil
}

func contactPatient(c *ent.PatientContact) string       { return c.PatientID }
func identifierPatient(i *ent.PatientIdentifier) string { return i.PatientID }
func policyPatient(p *ent.InsurancePolicy) string       { return p.PatientID }

// AddContact adds a next of kin or emergency contact to a patient.
func (s *Service) AddContact(ctx context.Context, patientID string, in PatientContactInput) (*ent.PatientContact, error) {
	v := validator{now: s.now()}
	v.ID("patientId", patientID, input.Patient)
	v.contactPerson("input.", &in)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PatientContact, error) {
		if _, err := lockedPatient(ctx, tx, patientID); err != nil {
			return nil, err
		}
		return tx.PatientContact.Create().SetPatientID(patientID).SetName(in.Name).SetRelationship(in.Relationship).
			SetNillablePhone(in.Phone).SetNillableEmail(in.Email).SetNillableAddress(in.Address).
			SetNextOfKin(in.NextOfKin).SetEmergencyContact(in.EmergencyContact).
			Save(ctx)
	})
}

// UpdateContact changes a contact; the result must still be reachable by
// phone or email.
func (s *Service) UpdateContact(ctx context.Context, id string, c UpdatePatientContactInput) (*ent.PatientContact, error) {
	if err := input.ID("id", id, input.PatientContact); err != nil {
		return nil, err
	}
	for field, o := range map[string]graphql.Omittable[*string]{"input.name": c.Name, "input.relationship": c.Relationship} {
		if val, ok := o.ValueOK(); ok && val == nil {
			return nil, apperr.BadInput(field, "is required and cannot be cleared")
		}
	}
	for field, o := range map[string]graphql.Omittable[*bool]{"input.nextOfKin": c.NextOfKin, "input.emergencyContact": c.EmergencyContact} {
		if val, ok := o.ValueOK(); ok && val == nil {
			return nil, apperr.BadInput(field, "is true or false and cannot be cleared")
		}
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PatientContact, error) {
		current, err := store.GetLocked(ctx, tx, tx.PatientContact.Get, id, contactPatient, "contact not found")
		if err != nil {
			return nil, err
		}
		next := PatientContactInput{
			Name: current.Name, Relationship: current.Relationship, Phone: current.Phone, Email: current.Email,
			Address: current.Address, NextOfKin: current.NextOfKin, EmergencyContact: current.EmergencyContact,
		}
		if val, ok := c.Name.ValueOK(); ok {
			next.Name = *val
		}
		if val, ok := c.Relationship.ValueOK(); ok {
			next.Relationship = *val
		}
		if val, ok := c.Phone.ValueOK(); ok {
			next.Phone = val
		}
		if val, ok := c.Email.ValueOK(); ok {
			next.Email = val
		}
		if val, ok := c.Address.ValueOK(); ok {
			next.Address = val
		}
		if val, ok := c.NextOfKin.ValueOK(); ok {
			next.NextOfKin = *val
		}
		if val, ok := c.EmergencyContact.ValueOK(); ok {
			next.EmergencyContact = *val
		}
		v := validator{now: s.now()}
		v.contactPerson("input.", &next)
		if err := v.Err(); err != nil {
			return nil, err
		}
		u := tx.PatientContact.UpdateOneID(id).SetName(next.Name).SetRelationship(next.Relationship).
			SetNextOfKin(next.NextOfKin).SetEmergencyContact(next.EmergencyContact)
		assignOptional(u.SetPhone, u.ClearPhone, next.Phone)
		assignOptional(u.SetEmail, u.ClearEmail, next.Email)
		assignOptional(u.SetAddress, u.ClearAddress, next.Address)
		return u.Save(ctx)
	})
}

func assignOptional[U any](setter func(string) U, clearer func() U, val *string) {
	if val == nil {
		clearer()
	} else {
		setter(*val)
	}
}

// RemoveContact deletes a contact and returns its ID.
func (s *Service) RemoveContact(ctx context.Context, id string) (string, error) {
	if err := input.ID("id", id, input.PatientContact); err != nil {
		return "", err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (string, error) {
		// Through row scope first: a contact the viewer cannot see is not found.
		if _, err := store.GetLocked(ctx, tx, tx.PatientContact.Get, id, contactPatient, "contact not found"); err != nil {
			return "", err
		}
		return id, tx.PatientContact.DeleteOneID(id).Exec(ctx)
	})
}

// AddIdentifier gives a patient an identifier no other patient has.
func (s *Service) AddIdentifier(ctx context.Context, patientID string, in PatientIdentifierInput) (*ent.PatientIdentifier, error) {
	v := validator{now: s.now()}
	v.ID("patientId", patientID, input.Patient)
	v.identifier("input.", &in)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PatientIdentifier, error) {
		if _, err := lockedPatient(ctx, tx, patientID); err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, identifierLockKey(in)); err != nil {
			return nil, err
		}
		keys, err := s.keys()
		if err != nil {
			return nil, err
		}
		holder, err := tx.PatientIdentifier.Query().
			Where(patientidentifier.System(in.System), identifierValueIs(keys, in.Value)).
			Only(auth.SystemContext(ctx))
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			return nil, err
		case holder.PatientID == patientID:
			return nil, apperr.Conflictf("the patient already has this identifier")
		default:
			return nil, apperr.BadInput("input.value", "already identifies another patient")
		}
		return tx.PatientIdentifier.Create().SetPatientID(patientID).SetSystem(in.System).SetValue(in.Value).Save(ctx)
	})
}

// RemoveIdentifier deletes an identifier and returns its ID.
func (s *Service) RemoveIdentifier(ctx context.Context, id string) (string, error) {
	if err := input.ID("id", id, input.PatientIdentifier); err != nil {
		return "", err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (string, error) {
		if _, err := store.GetLocked(ctx, tx, tx.PatientIdentifier.Get, id, identifierPatient, "identifier not found"); err != nil {
			return "", err
		}
		return id, tx.PatientIdentifier.DeleteOneID(id).Exec(ctx)
	})
}

// AddInsurancePolicy adds an active policy to a patient.
func (s *Service) AddInsurancePolicy(ctx context.Context, patientID string, in InsurancePolicyInput) (*ent.InsurancePolicy, error) {
	v := validator{now: s.now()}
	v.ID("patientId", patientID, input.Patient)
	v.policy("input.", &in)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.InsurancePolicy, error) {
		if _, err := lockedPatient(ctx, tx, patientID); err != nil {
			return nil, err
		}
		if err := policyClash(ctx, tx, patientID, "", in.Payer, in.MemberNumber, in.Priority, in.ValidFrom, in.ValidTo); err != nil {
			return nil, err
		}
		return tx.InsurancePolicy.Create().SetPatientID(patientID).SetPayer(in.Payer).SetMemberNumber(in.MemberNumber).
			SetNillablePlanName(in.PlanName).SetValidFrom(in.ValidFrom).SetNillableValidTo(in.ValidTo).SetPriority(in.Priority).
			Save(ctx)
	})
}

// UpdateInsurancePolicyValidity changes when an active policy covers the patient.
func (s *Service) UpdateInsurancePolicyValidity(ctx context.Context, id string, in InsurancePolicyValidityInput) (*ent.InsurancePolicy, error) {
	if err := input.ID("id", id, input.InsurancePolicy); err != nil {
		return nil, err
	}
	v := validator{now: s.now()}
	v.validity("input.", &in.ValidFrom, &in.ValidTo)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.changePolicy(ctx, id, func(tx *ent.Tx, p *ent.InsurancePolicy) error {
		if p.Status != insurancepolicy.StatusACTIVE {
			return apperr.Conflictf("the policy is %s; only an active policy's validity can change", p.Status)
		}
		return policyClash(ctx, tx, p.PatientID, p.ID, p.Payer, p.MemberNumber, p.Priority, in.ValidFrom, in.ValidTo)
	}, func(u *ent.InsurancePolicyUpdateOne) {
		u.SetValidFrom(in.ValidFrom)
		if in.ValidTo == nil {
			u.ClearValidTo()
		} else {
			u.SetValidTo(*in.ValidTo)
		}
	})
}

// DeactivateInsurancePolicy ends an active policy. It stays on the record,
// INACTIVE, for the claims already made against it.
func (s *Service) DeactivateInsurancePolicy(ctx context.Context, id string) (*ent.InsurancePolicy, error) {
	if err := input.ID("id", id, input.InsurancePolicy); err != nil {
		return nil, err
	}
	return s.changePolicy(ctx, id, func(_ *ent.Tx, p *ent.InsurancePolicy) error {
		if p.Status != insurancepolicy.StatusACTIVE {
			return apperr.Conflictf("the policy is already %s", p.Status)
		}
		return nil
	}, func(u *ent.InsurancePolicyUpdateOne) { u.SetStatus(insurancepolicy.StatusINACTIVE) })
}

// changePolicy updates an active policy after check passes, holding its
// patient's lock so that the clash check sees every sibling policy.
func (s *Service) changePolicy(ctx context.Context, id string, check func(*ent.Tx, *ent.InsurancePolicy) error,
	set func(*ent.InsurancePolicyUpdateOne)) (*ent.InsurancePolicy, error) {
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.InsurancePolicy, error) {
		p, err := store.GetLocked(ctx, tx, tx.InsurancePolicy.Get, id, policyPatient, "insurance policy not found")
		if err != nil {
			return nil, err
		}
		if err := check(tx, p); err != nil {
			return nil, err
		}
		u := tx.InsurancePolicy.UpdateOneID(id).Where(insurancepolicy.StatusEQ(insurancepolicy.StatusACTIVE))
		set(u)
		changed, err := u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the policy changed meanwhile; reload it")
		}
		return changed, err
	})
}

// policyClash refuses a policy that would overlap one of the patient's
// other active policies with the same cover or the same priority: billing
// must know which policy to claim against first.
func policyClash(ctx context.Context, tx *ent.Tx, patientID, exceptID, payer, member string, priority int, from time.Time, to *time.Time) error {
	others, err := tx.InsurancePolicy.Query().
		Where(insurancepolicy.PatientID(patientID), insurancepolicy.StatusEQ(insurancepolicy.StatusACTIVE), insurancepolicy.IDNEQ(exceptID)).
		All(ctx)
	if err != nil {
		return err
	}
	for _, o := range others {
		if !overlaps(o.ValidFrom, o.ValidTo, from, to) {
			continue
		}
		if samePolicy(o.Payer, o.MemberNumber, payer, member) {
			return apperr.Conflictf("the patient already has this policy for overlapping dates")
		}
		if o.Priority == priority {
			return apperr.Conflictf("another active policy has priority %d for overlapping dates; deactivate it or choose another priority", priority)
		}
	}
	return nil
}
