package insurance

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/coveragerule"
	"github.com/hmis-dev/hmis/ent/insurancepolicy"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/planversion"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Limits beyond what the data model enforces.
const (
	// MaxAmount bounds one line, far above any hospital bill, so that sums
	// of many lines stay exact in int64.
	MaxAmount    int64 = 1_000_000_000_000
	MaxLines           = 500
	MaxRules           = 200
	MaxQuantity        = 100_000
	MaxDiagnoses       = 12
)

var (
	codePattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9._-]*$`)
	// A payer's reason or denial code: CARC-like short codes, e.g. CO-45, 197.
	reasonPattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9.-]*$`)
	icd10Pattern  = regexp.MustCompile(`^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$`)
)

// Service manages payers, plans, pre-authorizations and claims.
type Service struct {
	store *store.Store
	now   func() time.Time
	loc   *time.Location
	// remitted runs when a claim's remittance is recorded (OnRemitted).
	remitted func(ctx context.Context, tx *ent.Tx, cl *ent.Claim) error
}

// NewService returns a Service on st; loc is the hospital's time zone, in
// which "today" is a date.
func NewService(st *store.Store, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, now: time.Now, loc: loc}
}

func code(c *input.Checker, field, s string) string {
	v := strings.ToUpper(c.Text(field, s, 32))
	if c.Err() == nil && !codePattern.MatchString(v) {
		c.Fail(apperr.BadInput(field, "may hold only letters, digits, '.', '-' and '_'"))
	}
	return v
}

func optionalCode(c *input.Checker, field string, s *string) *string {
	if s == nil {
		return nil
	}
	v := code(c, field, *s)
	return &v
}

func reasonCode(c *input.Checker, field string, s *string) *string {
	if s == nil {
		return nil
	}
	v := strings.ToUpper(c.Text(field, *s, 16))
	if c.Err() == nil && !reasonPattern.MatchString(v) {
		c.Fail(apperr.BadInput(field, "may hold only letters, digits, '.' and '-'"))
	}
	return &v
}

func amount(c *input.Checker, field string, v int64) {
	if v < 0 {
		c.Fail(apperr.BadInput(field, "must not be negative"))
	} else if v > MaxAmount {
		c.Fail(apperr.BadInput(field, "must be at most %s", input.FormatMoney(MaxAmount)))
	}
}

// CreatePayer adds a payer.
func (s *Service) CreatePayer(ctx context.Context, in CreatePayerInput) (*ent.Payer, error) {
	var c input.Checker
	cd := code(&c, "input.code", in.Code)
	name := c.Text("input.name", in.Name, 200)
	if c.Err() == nil && payer.KindValidator(in.Kind) != nil {
		c.Fail(apperr.BadInput("input.kind", "is not a kind of payer"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Payer, error) {
		p, err := tx.Payer.Create().SetCode(cd).SetName(name).SetKind(in.Kind).Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("a payer with code %s exists", cd)
		}
		return p, err
	})
}

// CreatePlan adds a plan to a payer.
func (s *Service) CreatePlan(ctx context.Context, in CreateInsurancePlanInput) (*ent.InsurancePlan, error) {
	var c input.Checker
	c.ID("input.payerId", in.PayerID, input.Payer)
	cd := code(&c, "input.code", in.Code)
	name := c.Text("input.name", in.Name, 200)
	if c.Err() == nil && (in.PlanYearStartMonth < 1 || in.PlanYearStartMonth > 12) {
		c.Fail(apperr.BadInput("input.planYearStartMonth", "must be a month, 1 to 12"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.InsurancePlan, error) {
		py, err := tx.Payer.Get(ctx, in.PayerID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.payerId", "no such payer")
		} else if err != nil {
			return nil, err
		}
		if !py.Active {
			return nil, apperr.BadInput("input.payerId", "the payer is inactive")
		}
		p, err := tx.InsurancePlan.Create().SetPayerID(py.ID).SetCode(cd).SetName(name).
			SetPlanYearStartMonth(in.PlanYearStartMonth).Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("a plan with code %s exists", cd)
		}
		return p, err
	})
}

// AddPlanVersion adds a plan's terms from a date on. Versions are never
// edited, so the split of a past service can always be reproduced.
func (s *Service) AddPlanVersion(ctx context.Context, in AddPlanVersionInput) (*ent.PlanVersion, error) {
	var c input.Checker
	c.ID("input.planId", in.PlanID, input.InsurancePlan)
	if in.EffectiveFrom.IsZero() {
		c.Fail(apperr.BadInput("input.effectiveFrom", "is required"))
	}
	if in.AnnualLimit != nil {
		amount(&c, "input.annualLimit", *in.AnnualLimit)
	}
	amount(&c, "input.visitCopay", in.VisitCopay)
	if c.Err() == nil && len(in.Rules) > MaxRules {
		c.Fail(apperr.BadInput("input.rules", "must hold at most %d rules", MaxRules))
	}
	type key struct{ cat, code string }
	seen := map[key]bool{}
	codes := make([]*string, len(in.Rules))
	for i, r := range in.Rules {
		f := "input.rules[" + strconv.Itoa(i) + "]"
		if c.Err() == nil && coveragerule.CategoryValidator(r.Category) != nil {
			c.Fail(apperr.BadInput(f+".category", "is not a service category"))
		}
		codes[i] = optionalCode(&c, f+".serviceCode", r.ServiceCode)
		if c.Err() == nil && (r.CoveredPercent < 0 || r.CoveredPercent > 100) {
			c.Fail(apperr.BadInput(f+".coveredPercent", "must be 0 to 100"))
		}
		amount(&c, f+".lineCopay", r.LineCopay)
		k := key{string(r.Category), deref(codes[i])}
		if c.Err() == nil && seen[k] {
			c.Fail(apperr.BadInput(f, "repeats the rule for %s", strings.Trim(k.cat+" "+k.code, " ")))
		}
		seen[k] = true
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	from := input.Date(in.EffectiveFrom)
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PlanVersion, error) {
		if _, err := tx.InsurancePlan.Get(ctx, in.PlanID); ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.planId", "no such plan")
		} else if err != nil {
			return nil, err
		}
		if n, err := tx.PlanVersion.Query().Where(planversion.PlanID(in.PlanID), planversion.EffectiveFrom(from)).Count(ctx); err != nil {
			return nil, err
		} else if n > 0 {
			return nil, apperr.Conflictf("the plan already has a version from %s; versions are never edited", from.Format(time.DateOnly))
		}
		v, err := tx.PlanVersion.Create().SetPlanID(in.PlanID).SetEffectiveFrom(from).SetNillableAnnualLimit(in.AnnualLimit).
			SetVisitCopay(in.VisitCopay).Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("the plan already has a version from %s; versions are never edited", from.Format(time.DateOnly))
		} else if err != nil {
			return nil, err
		}
		err = tx.CoverageRule.MapCreateBulk(in.Rules, func(cr *ent.CoverageRuleCreate, i int) {
			r := in.Rules[i]
			cr.SetVersionID(v.ID).SetCategory(r.Category).SetNillableServiceCode(codes[i]).SetCoveredPercent(r.CoveredPercent).
				SetLineCopay(r.LineCopay).SetExcluded(r.Excluded).SetRequiresPreauthorization(r.RequiresPreauthorization)
		}).Exec(ctx)
		return v, err
	})
}

// LinkPolicy links a patient's policy to a plan (nil unlinks it). The
// policy's free-text payer is left as the patient gave it.
func (s *Service) LinkPolicy(ctx context.Context, policyID string, planID *string) (*ent.InsurancePolicy, error) {
	var c input.Checker
	c.ID("policyId", policyID, input.InsurancePolicy)
	c.OptionalID("planId", planID, input.InsurancePlan)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.InsurancePolicy, error) {
		p, err := store.GetLocked(ctx, tx, tx.InsurancePolicy.Get, policyID,
			func(p *ent.InsurancePolicy) string { return p.PatientID }, "insurance policy not found")
		if err != nil {
			return nil, err
		}
		u := tx.InsurancePolicy.UpdateOne(p)
		if planID == nil {
			return u.ClearPlanID().Save(ctx)
		}
		pl, err := tx.InsurancePlan.Get(ctx, *planID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("planId", "no such plan")
		} else if err != nil {
			return nil, err
		}
		if !pl.Active {
			return nil, apperr.BadInput("planId", "the plan is inactive")
		}
		return u.SetPlanID(pl.ID).Save(ctx)
	})
}

// activePolicy reads an ACTIVE policy under its patient's lock.
func activePolicy(ctx context.Context, tx *ent.Tx, field, id string) (*ent.InsurancePolicy, error) {
	p, err := store.GetLocked(ctx, tx, tx.InsurancePolicy.Get, id,
		func(p *ent.InsurancePolicy) string { return p.PatientID }, "insurance policy not found")
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil, apperr.BadInput(field, "no such insurance policy")
	} else if err != nil {
		return nil, err
	}
	if p.Status != insurancepolicy.StatusACTIVE {
		return nil, apperr.BadInput(field, "the policy is inactive")
	}
	return p, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
