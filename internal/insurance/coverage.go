package insurance

import (
	"context"
	"strconv"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/claim"
	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/insurancepolicy"
	"github.com/hmis-dev/hmis/ent/planversion"
	"github.com/hmis-dev/hmis/ent/preauthorization"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// CheckLines validates lines to split, naming the field of the first bad one.
func CheckLines(field string, lines []CoverageLineInput) error {
	var c input.Checker
	if len(lines) == 0 || len(lines) > MaxLines {
		return apperr.BadInput(field, "must hold 1 to %d lines", MaxLines)
	}
	for i, l := range lines {
		f := field + "[" + strconv.Itoa(i) + "]"
		code(&c, f+".serviceCode", l.ServiceCode)
		if c.Err() == nil && claimline.CategoryValidator(l.Category) != nil {
			c.Fail(apperr.BadInput(f+".category", "is not a service category"))
		}
		if c.Err() == nil && l.ServiceDate.IsZero() {
			c.Fail(apperr.BadInput(f+".serviceDate", "is required"))
		}
		if c.Err() == nil && (l.Quantity < 1 || l.Quantity > MaxQuantity) {
			c.Fail(apperr.BadInput(f+".quantity", "must be 1 to %d", MaxQuantity))
		}
		amount(&c, f+".amount", l.Amount)
	}
	return c.Err()
}

// Estimate is coverageEstimate: the split of lines by the patient's active
// policies as they stand, recording nothing.
func (s *Service) Estimate(ctx context.Context, patientID string, lines []CoverageLineInput) (*CoverageEstimate, error) {
	if err := input.ID("patientId", patientID, input.Patient); err != nil {
		return nil, err
	}
	if err := CheckLines("lines", lines); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*CoverageEstimate, error) {
		if _, err := tx.Patient.Get(ctx, patientID); ent.IsNotFound(err) {
			return nil, apperr.BadInput("patientId", "no such patient")
		} else if err != nil {
			return nil, err
		}
		est, err := SplitLines(ctx, tx, patientID, lines)
		return &est, err
	})
}

// SplitLines loads the patient's coverage in tx and splits the lines: what
// invoicing calls, in its own transaction, to divide an invoice.
func SplitLines(ctx context.Context, tx *ent.Tx, patientID string, lines []CoverageLineInput) (CoverageEstimate, error) {
	covs, err := LoadCoverages(ctx, tx, patientID, lines)
	if err != nil {
		return CoverageEstimate{}, err
	}
	days := append([]CoverageLineInput(nil), lines...)
	for i := range days {
		days[i].ServiceDate = input.Date(days[i].ServiceDate)
	}
	return Split(covs, days), nil
}

// LoadCoverages reads what Split needs about the patient's active policies:
// their plans' versions and rules, their approved pre-authorizations, and
// what each plan has been claimed for in the plan years the lines fall in.
//
// A plan's use in a year is the sum over the patient's claims on it that
// are not DENIED or CANCELLED: the amount paid once remitted, approved once adjudicated,
// claimed before that. A claim still in DRAFT counts, since it is about to
// be sent.
func LoadCoverages(ctx context.Context, tx *ent.Tx, patientID string, lines []CoverageLineInput) ([]Coverage, error) {
	policies, err := tx.InsurancePolicy.Query().
		Where(insurancepolicy.PatientID(patientID), insurancepolicy.StatusEQ(insurancepolicy.StatusACTIVE)).
		WithPlan(func(q *ent.InsurancePlanQuery) {
			q.WithVersions(func(q *ent.PlanVersionQuery) {
				q.WithRules().Order(ent.Asc(planversion.FieldEffectiveFrom))
			})
		}).All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Coverage, 0, len(policies))
	for _, p := range policies {
		c := Coverage{PolicyID: p.ID, Priority: p.Priority, ValidFrom: p.ValidFrom, ValidTo: p.ValidTo, PlanYearStartMonth: 1}
		plan := p.Edges.Plan
		if plan == nil || !plan.Active {
			out = append(out, c)
			continue
		}
		c.Linked, c.PayerID, c.PlanYearStartMonth = true, plan.PayerID, plan.PlanYearStartMonth
		for _, v := range plan.Edges.Versions {
			t := Terms{EffectiveFrom: v.EffectiveFrom, AnnualLimit: v.AnnualLimit, VisitCopay: v.VisitCopay}
			for _, r := range v.Edges.Rules {
				t.Rules = append(t.Rules, Rule{Category: string(r.Category), ServiceCode: deref(r.ServiceCode),
					CoveredPercent: r.CoveredPercent, LineCopay: r.LineCopay, Excluded: r.Excluded, RequiresPreauth: r.RequiresPreauthorization})
			}
			c.Versions = append(c.Versions, t)
		}
		auths, err := tx.PreAuthorization.Query().Where(preauthorization.PolicyID(p.ID),
			preauthorization.StatusEQ(preauthorization.StatusAPPROVED)).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, a := range auths {
			if a.ValidFrom == nil || a.ValidTo == nil {
				continue
			}
			pa := PreAuth{ID: a.ID, Category: string(a.Category), ServiceCode: deref(a.ServiceCode),
				ValidFrom: *a.ValidFrom, ValidTo: *a.ValidTo, Amount: a.ApprovedAmount, Quantity: a.ApprovedQuantity}
			if err := deductClaimed(ctx, tx, p.ID, &pa); err != nil {
				return nil, err
			}
			c.PreAuths = append(c.PreAuths, pa)
		}
		if c.Used, err = usedByYear(ctx, tx, patientID, plan.ID, plan.PlanYearStartMonth, lines); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

func usedByYear(ctx context.Context, tx *ent.Tx, patientID, planID string, startMonth int, lines []CoverageLineInput) (map[time.Time]int64, error) {
	years := map[time.Time]bool{}
	for _, l := range lines {
		years[planYear(dateOf(l.ServiceDate), startMonth)] = true
	}
	used := make(map[time.Time]int64, len(years))
	for start := range years {
		claimed, err := tx.ClaimLine.Query().Where(
			claimline.PatientID(patientID),
			claimline.ServiceDateGTE(start), claimline.ServiceDateLT(start.AddDate(1, 0, 0)),
			claimline.HasClaimWith(claim.StatusNotIn(claim.StatusDENIED, claim.StatusCANCELLED),
				claim.HasPolicyWith(insurancepolicy.PlanID(planID))),
		).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, l := range claimed {
			used[start] += lineUse(l)
		}
	}
	return used, nil
}

// deductClaimed takes off a pre-authorization what the policy's claims
// (not DENIED) have already used of it: the lines of its service, or
// category, in its validity.
func deductClaimed(ctx context.Context, tx *ent.Tx, policyID string, pa *PreAuth) error {
	if pa.Amount == nil && pa.Quantity == nil {
		return nil
	}
	where := []predicate.ClaimLine{
		claimline.CategoryEQ(claimline.Category(pa.Category)),
		claimline.ServiceDateGTE(dateOf(pa.ValidFrom)), claimline.ServiceDateLT(dateOf(pa.ValidTo).AddDate(0, 0, 1)),
		claimline.HasClaimWith(claim.PolicyID(policyID), claim.StatusNotIn(claim.StatusDENIED, claim.StatusCANCELLED)),
	}
	if pa.ServiceCode != "" {
		where = append(where, claimline.ServiceCode(pa.ServiceCode))
	}
	used, err := tx.ClaimLine.Query().Where(where...).All(ctx)
	if err != nil {
		return err
	}
	for _, l := range used {
		if pa.Amount != nil {
			a := *pa.Amount - lineUse(l)
			pa.Amount = &a
		}
		if pa.Quantity != nil {
			q := *pa.Quantity - l.Quantity
			pa.Quantity = &q
		}
	}
	return nil
}

// lineUse is what a claim line holds of the payer's money: paid once
// remitted, approved once adjudicated, claimed before that.
func lineUse(l *ent.ClaimLine) int64 {
	switch {
	case l.AmountPaid != nil:
		return *l.AmountPaid
	case l.AmountApproved != nil:
		return *l.AmountApproved
	}
	return l.AmountClaimed
}
