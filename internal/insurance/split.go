package insurance

import (
	"fmt"
	"sort"
	"time"
)

// Coverage is one of the patient's policies as the split engine sees it:
// everything the split needs, loaded beforehand, so that Split itself reads
// nothing and gives the same answer for the same arguments.
type Coverage struct {
	PolicyID string
	PayerID  string
	// Priority ranks the policies: 1 pays first, 2 pays from what 1 left.
	Priority  int
	ValidFrom time.Time
	ValidTo   *time.Time
	// Linked is false for a policy whose plan is not known (a free-text
	// payer only): it is in force but the hospital cannot split by it.
	Linked             bool
	PlanYearStartMonth int
	Versions           []Terms
	// Used is what the payer has already paid or been claimed for, by the
	// first day of the plan year, for the annual limit.
	Used     map[time.Time]int64
	PreAuths []PreAuth
}

// Terms are a plan's rules from EffectiveFrom on.
type Terms struct {
	EffectiveFrom time.Time
	AnnualLimit   *int64
	VisitCopay    int64
	Rules         []Rule
}

// Rule covers a category, or one service code (ServiceCode not empty).
type Rule struct {
	Category        string
	ServiceCode     string
	CoveredPercent  int
	LineCopay       int64
	Excluded        bool
	RequiresPreauth bool
}

// PreAuth is an approved pre-authorization: for one service code, or for a
// whole category when ServiceCode is empty. Amount and Quantity, when set,
// are what is left of it.
type PreAuth struct {
	ID          string
	Category    string
	ServiceCode string
	ValidFrom   time.Time
	ValidTo     time.Time
	Amount      *int64
	Quantity    *int
}

// Split divides each line between the payers of the patient's policies and
// the patient.
//
// The lines are taken in the order given, as one visit: an annual limit or a
// pre-authorization used up by one line is used up for the next, and a
// policy's visit co-payment is charged once, on the first line it covers.
// The policies are taken by priority (then ID): each pays from what the ones
// before it left, by its own rules.
//
// Rounding: a payer's share is its percentage of the line after co-payment,
// rounded down to the minor unit; the patient's share is the rest of the
// line. So the shares are whole minor units and always sum to the line's
// amount, and the odd minor unit falls to the patient, never to the payer.
func Split(coverages []Coverage, lines []CoverageLineInput) CoverageEstimate {
	ordered := append([]Coverage(nil), coverages...)
	sort.SliceStable(ordered, func(i, j int) bool {
		if ordered[i].Priority != ordered[j].Priority {
			return ordered[i].Priority < ordered[j].Priority
		}
		return ordered[i].PolicyID < ordered[j].PolicyID
	})
	states := make([]*coverageState, len(ordered))
	for i := range ordered {
		states[i] = newState(&ordered[i])
	}
	out := CoverageEstimate{Lines: make([]CoverageLineSplit, 0, len(lines))}
	for _, l := range lines {
		ls := CoverageLineSplit{ServiceCode: l.ServiceCode, Category: l.Category, ServiceDate: l.ServiceDate, Amount: l.Amount}
		left := l.Amount
		if len(states) == 0 {
			ls.Steps = append(ls.Steps, CoverageStep{Reason: ReasonNoPolicy, Detail: "the patient has no active policy"})
		}
		for _, st := range states {
			step := st.split(l, left)
			left -= step.PayerAmount
			ls.Steps = append(ls.Steps, step)
		}
		ls.PayerShare = l.Amount - left
		ls.PatientShare = left
		out.PayerTotal += ls.PayerShare
		out.PatientTotal += ls.PatientShare
		out.Lines = append(out.Lines, ls)
	}
	return out
}

// coverageState is what a policy has left while one Split runs.
type coverageState struct {
	c          *Coverage
	used       map[time.Time]int64
	preauths   []PreAuth
	visitTaken bool
}

func newState(c *Coverage) *coverageState {
	st := &coverageState{c: c, used: map[time.Time]int64{}}
	for k, v := range c.Used {
		st.used[k] = v
	}
	for _, p := range c.PreAuths {
		// Copies, since using them up must not change the caller's.
		if p.Amount != nil {
			a := *p.Amount
			p.Amount = &a
		}
		if p.Quantity != nil {
			q := *p.Quantity
			p.Quantity = &q
		}
		st.preauths = append(st.preauths, p)
	}
	return st
}

func (st *coverageState) split(l CoverageLineInput, base int64) CoverageStep {
	c := st.c
	pid, payer := c.PolicyID, c.PayerID
	step := CoverageStep{PolicyID: &pid, PayerID: &payer}
	day := dateOf(l.ServiceDate)
	if day.Before(dateOf(c.ValidFrom)) || (c.ValidTo != nil && day.After(dateOf(*c.ValidTo))) {
		step.Reason, step.Detail = ReasonPolicyNotInForce, "the policy is not valid on the service date"
		return step
	}
	if !c.Linked {
		step.Reason, step.Detail = ReasonPolicyNotInForce, "the policy is linked to no plan"
		return step
	}
	terms := c.termsOn(day)
	if terms == nil {
		step.Reason, step.Detail = ReasonNotCovered, "the plan has no terms in force on the service date"
		return step
	}
	rule := terms.ruleFor(string(l.Category), l.ServiceCode)
	if rule == nil {
		step.Reason, step.Detail = ReasonNotCovered, "the plan has no rule for the service"
		return step
	}
	if rule.Excluded {
		step.Reason, step.Detail = ReasonNotCovered, "the plan excludes the service"
		return step
	}
	var auth *PreAuth
	if rule.RequiresPreauth {
		if auth = st.preauthFor(l, day); auth == nil {
			step.Reason, step.Detail = ReasonPreauthMissing, "the service needs a pre-authorization and none approved is left for it"
			return step
		}
	}
	step.CoveredPercent = rule.CoveredPercent
	copay := rule.LineCopay
	if !st.visitTaken {
		copay += terms.VisitCopay
		st.visitTaken = true
	}
	step.Copay = min(copay, base)
	pay := percentOf(base-step.Copay, rule.CoveredPercent)
	step.Reason, step.Detail = ReasonCovered, fmt.Sprintf("%d%% covered", rule.CoveredPercent)
	if step.Copay > 0 {
		step.Detail += " after the co-payment"
	}
	if auth != nil && auth.Amount != nil && pay > *auth.Amount {
		pay = *auth.Amount
		step.Detail += "; capped at the pre-authorized amount"
	}
	if terms.AnnualLimit != nil {
		year := planYear(day, c.PlanYearStartMonth)
		room := max(*terms.AnnualLimit-st.used[year], 0)
		if pay > room {
			pay = room
			step.Reason, step.Detail = ReasonLimitExhausted, fmt.Sprintf("%d%% covered, cut to what is left of the annual limit", rule.CoveredPercent)
		}
		st.used[year] += pay
	}
	if auth != nil {
		if auth.Amount != nil {
			*auth.Amount -= pay
		}
		if auth.Quantity != nil {
			*auth.Quantity -= max(l.Quantity, 1)
		}
	}
	step.PayerAmount = pay
	return step
}

func (c *Coverage) termsOn(day time.Time) *Terms {
	var best *Terms
	for i := range c.Versions {
		v := &c.Versions[i]
		if dateOf(v.EffectiveFrom).After(day) {
			continue
		}
		if best == nil || v.EffectiveFrom.After(best.EffectiveFrom) {
			best = v
		}
	}
	return best
}

// ruleFor prefers the service code's own rule to its category's.
func (t *Terms) ruleFor(category, code string) *Rule {
	var general *Rule
	for i := range t.Rules {
		r := &t.Rules[i]
		if r.Category != category {
			continue
		}
		if r.ServiceCode == code && code != "" {
			return r
		}
		if r.ServiceCode == "" {
			general = r
		}
	}
	return general
}

// preauthFor prefers an authorization for the code to one for its category.
func (st *coverageState) preauthFor(l CoverageLineInput, day time.Time) *PreAuth {
	var found *PreAuth
	for i := range st.preauths {
		p := &st.preauths[i]
		if p.Category != string(l.Category) || (p.ServiceCode != "" && p.ServiceCode != l.ServiceCode) {
			continue
		}
		if day.Before(dateOf(p.ValidFrom)) || day.After(dateOf(p.ValidTo)) {
			continue
		}
		if (p.Amount != nil && *p.Amount <= 0) || (p.Quantity != nil && *p.Quantity < max(l.Quantity, 1)) {
			continue
		}
		if found == nil || (found.ServiceCode == "" && p.ServiceCode != "") {
			found = p
		}
	}
	return found
}

// percentOf is floor(amount × percent / 100) without overflowing int64 for
// any amount a line can hold.
func percentOf(amount int64, percent int) int64 {
	p := int64(percent)
	return amount/100*p + amount%100*p/100
}

// planYear is the first day of the plan year that day falls in.
func planYear(day time.Time, startMonth int) time.Time {
	if startMonth < 1 || startMonth > 12 {
		startMonth = 1
	}
	y := day.Year()
	if int(day.Month()) < startMonth {
		y--
	}
	return time.Date(y, time.Month(startMonth), 1, 0, 0, 0, 0, time.UTC)
}

func dateOf(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}
