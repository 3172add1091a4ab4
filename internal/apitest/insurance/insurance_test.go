// Package insurance tests payers, plans, the coverage estimate and claims
// through the API, as the finance office's, the front desk's, the billing
// office's and the patient app's frontends use them.
package insurance

import (
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

type setup struct {
	s               *harness.Server
	patient, policy string
	payer, plan     string
}

// newSetup is the README's walk-through up to the estimate: a payer, its
// plan with 80 % consultations and labs at 100 % after a 5.00 co-payment,
// and the demo patient's policy linked to it.
func newSetup(t *testing.T) setup {
	t.Helper()
	s := harness.NewServer(t)
	st := setup{s: s, patient: s.Demo().Patients[0]}
	var payer struct{ CreatePayer struct{ ID string } }
	s.As("finance_officer", `mutation { createPayer(input: {code: "NHIF", name: "National Health Insurance Fund", kind: GOVERNMENT}) { id } }`, nil).
		Decode(t, &payer)
	st.payer = payer.CreatePayer.ID
	var plan struct{ CreateInsurancePlan struct{ ID string } }
	s.As("finance_officer", `mutation($payer: ID!) { createInsurancePlan(input: {payerId: $payer, code: "NHIF-CIVIL", name: "Civil servants"}) { id } }`,
		map[string]any{"payer": st.payer}).Decode(t, &plan)
	st.plan = plan.CreateInsurancePlan.ID
	var version struct{ AddPlanVersion struct{ ID string } }
	s.As("finance_officer", `mutation($plan: ID!) { addPlanVersion(input: {planId: $plan, effectiveFrom: "2026-01-01", annualLimit: "500.00",
	  rules: [{category: CONSULTATION, coveredPercent: 80}, {category: LAB, coveredPercent: 100, lineCopay: "5.00"},
	          {category: PROCEDURE, serviceCode: "MRI", coveredPercent: 100, requiresPreauthorization: true}]}) { id } }`,
		map[string]any{"plan": st.plan}).Decode(t, &version)
	var policy struct{ AddInsurancePolicy struct{ ID string } }
	s.As("reception", `mutation($p: ID!) { addInsurancePolicy(patientId: $p, input: {payer: "NHIF", memberNumber: "NH-778", validFrom: "2026-01-01"}) { id } }`,
		map[string]any{"p": st.patient}).Decode(t, &policy)
	st.policy = policy.AddInsurancePolicy.ID
	var linked struct {
		LinkInsurancePolicyToPlan struct {
			Payer string
			Plan  struct{ Code string }
		}
	}
	s.As("billing_clerk", `mutation($id: ID!, $plan: ID) { linkInsurancePolicyToPlan(policyId: $id, planId: $plan) { payer plan { code } } }`,
		map[string]any{"id": st.policy, "plan": st.plan}).Decode(t, &linked)
	harness.Must(t, linked.LinkInsurancePolicyToPlan.Payer == "NHIF" && linked.LinkInsurancePolicyToPlan.Plan.Code == "NHIF-CIVIL",
		"linked: %+v", linked)
	return st
}

const estimate = `query($p: ID!, $lines: [CoverageLineInput!]!) { coverageEstimate(patientId: $p, lines: $lines) {
  payerTotal patientTotal
  lines { serviceCode amount payerShare patientShare steps { policyId reason coveredPercent copay payerAmount detail } } } }`

type estimateOut struct {
	CoverageEstimate struct {
		PayerTotal, PatientTotal string
		Lines                    []struct {
			ServiceCode, Amount, PayerShare, PatientShare string
			Steps                                         []struct {
				PolicyID, Reason, Copay, PayerAmount string
				CoveredPercent                       int
			}
		}
	}
}

func visitLines() []map[string]any {
	return []map[string]any{
		{"serviceCode": "CONS-GEN", "category": "CONSULTATION", "serviceDate": "2026-03-10", "amount": "100.00"},
		{"serviceCode": "FBC", "category": "LAB", "serviceDate": "2026-03-10", "amount": "30.00"},
		{"serviceCode": "MRI", "category": "PROCEDURE", "serviceDate": "2026-03-10", "amount": "450.00"},
	}
}

func TestCoverageEstimateAtTheFrontDesk(t *testing.T) {
	t.Parallel()
	st := newSetup(t)
	var out estimateOut
	st.s.As("reception", estimate, map[string]any{"p": st.patient, "lines": visitLines()}).Decode(t, &out)
	e := out.CoverageEstimate
	want := []struct{ payer, patient, reason string }{{"80.00", "20.00", "COVERED"}, {"25.00", "5.00", "COVERED"}, {"0.00", "450.00", "PREAUTH_MISSING"}}
	for i, w := range want {
		l := e.Lines[i]
		harness.Must(t, l.PayerShare == w.payer && l.PatientShare == w.patient && l.Steps[0].Reason == w.reason && l.Steps[0].PolicyID == st.policy,
			"line %d: %+v", i, l)
	}
	harness.Must(t, e.PayerTotal == "105.00" && e.PatientTotal == "475.00", "totals %s / %s", e.PayerTotal, e.PatientTotal)

	// A patient without a policy pays everything.
	other := st.s.RegisterPatient("Esi", "Owusu")
	st.s.As("reception", estimate, map[string]any{"p": other, "lines": visitLines()[:1]}).Decode(t, &out)
	harness.Must(t, out.CoverageEstimate.PatientTotal == "100.00" && out.CoverageEstimate.Lines[0].Steps[0].Reason == "NO_POLICY",
		"no policy: %+v", out.CoverageEstimate)

	bad := visitLines()
	bad[1]["quantity"] = 0
	r := st.s.As("reception", estimate, map[string]any{"p": st.patient, "lines": bad})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "lines[1].quantity", "bad quantity: %s", harness.Describe(r))
}

const claimFields = `id status version totalClaimed totalApproved totalPaid denialCode lines { id amountClaimed amountApproved amountPaid adjustment adjustmentCode }`

type claimOut struct {
	ID, Status, TotalClaimed string
	Version                  int
	TotalApproved, TotalPaid *string
	DenialCode               *string
	Lines                    []struct {
		ID, AmountClaimed                      string
		AmountApproved, AmountPaid, Adjustment *string
		AdjustmentCode                         *string
	}
}

func TestClaimFromDraftToPaid(t *testing.T) {
	t.Parallel()
	st := newSetup(t)
	s := st.s
	var created struct{ CreateClaim claimOut }
	s.As("billing_clerk", `mutation($in: CreateClaimInput!) { createClaim(input: $in) { `+claimFields+` } }`, map[string]any{"in": map[string]any{
		"policyId": st.policy,
		"lines": []map[string]any{
			{"serviceCode": "CONS-GEN", "category": "CONSULTATION", "serviceDate": "2026-03-10", "amountClaimed": "80.00"},
			{"serviceCode": "FBC", "category": "LAB", "serviceDate": "2026-03-10", "amountClaimed": "25.00"},
		}}}).Decode(t, &created)
	cl := created.CreateClaim
	harness.Must(t, cl.Status == "DRAFT" && cl.TotalClaimed == "105.00" && len(cl.Lines) == 2, "created %+v", cl)

	// Out of order: a draft is not adjudicated, and nothing changes.
	decide := map[string]any{"lines": []map[string]any{
		{"lineId": cl.Lines[0].ID, "amountApproved": "80.00"},
		{"lineId": cl.Lines[1].ID, "amountApproved": "20.00", "reasonCode": "CO-45"}}}
	const adjudicate = `mutation($id: ID!, $in: AdjudicateClaimInput!) { adjudicateClaim(id: $id, input: $in) { ` + claimFields + ` } }`
	r := s.As("billing_clerk", adjudicate, map[string]any{"id": cl.ID, "in": decide})
	harness.Must(t, r.HasCode("CONFLICT"), "adjudicating a draft: %s", harness.Describe(r))

	r = s.As("billing_clerk", `mutation($id: ID!) { submitClaim(id: $id) { status } }`, map[string]any{"id": cl.ID})
	harness.Must(t, len(r.Errors) == 0, "submit: %s", harness.Describe(r))
	var adj struct{ AdjudicateClaim claimOut }
	s.As("billing_clerk", adjudicate, map[string]any{"id": cl.ID, "in": decide}).Decode(t, &adj)
	harness.Must(t, adj.AdjudicateClaim.Status == "PARTIALLY_APPROVED" && *adj.AdjudicateClaim.TotalApproved == "100.00", "adjudicated %+v", adj)

	const remit = `mutation($id: ID!, $in: RecordRemittanceInput!) { recordRemittance(id: $id, input: $in) { ` + claimFields + ` } }`
	in := map[string]any{"reference": "RA-2026-0001", "lines": []map[string]any{
		{"lineId": cl.Lines[0].ID, "amountPaid": "80.00"}, {"lineId": cl.Lines[1].ID, "amountPaid": "20.00"}}}
	var paid struct{ RecordRemittance claimOut }
	s.As("billing_clerk", remit, map[string]any{"id": cl.ID, "in": in}).Decode(t, &paid)
	p := paid.RecordRemittance
	harness.Must(t, p.Status == "PAID" && *p.TotalPaid == "100.00" && *p.Lines[1].Adjustment == "5.00" && *p.Lines[1].AdjustmentCode == "CO-45",
		"paid %+v", p)
	r = s.As("billing_clerk", remit, map[string]any{"id": cl.ID, "in": in})
	harness.Must(t, r.HasCode("CONFLICT"), "a second remittance: %s", harness.Describe(r))

	// The patient sees where their claim stands, not its lines.
	var mine struct {
		Claims struct {
			Edges []struct {
				Node struct{ ID, Status, TotalPaid string }
			}
		}
	}
	s.As("patient", `{ claims(first: 10) { edges { node { id status totalPaid } } } }`, nil).Decode(t, &mine)
	harness.Must(t, len(mine.Claims.Edges) == 1 && mine.Claims.Edges[0].Node.Status == "PAID", "the patient's claims: %+v", mine)
	r = s.As("patient", `{ claims(first: 10) { edges { node { id diagnosisCodes } } } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "the patient reading diagnosis codes: %s", harness.Describe(r))
	r = s.As("patient", `mutation($id: ID!) { submitClaim(id: $id) { status } }`, map[string]any{"id": cl.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "the patient submitting: %s", harness.Describe(r))
	// And their policy's coverage.
	var cover struct {
		Patient struct {
			InsurancePolicies []struct {
				Plan *struct {
					Versions []struct {
						Rules []struct {
							Category       string
							CoveredPercent int
						}
					}
				}
			}
		}
	}
	s.As("patient", `query($p: ID!) { patient(id: $p) { insurancePolicies { plan { versions { rules { category coveredPercent } } } } } }`,
		map[string]any{"p": st.patient}).Decode(t, &cover)
	harness.Must(t, len(cover.Patient.InsurancePolicies) == 1 && cover.Patient.InsurancePolicies[0].Plan != nil &&
		len(cover.Patient.InsurancePolicies[0].Plan.Versions[0].Rules) == 3, "the patient's coverage: %+v", cover)
}

func TestPreAuthorizationLetsTheServiceThrough(t *testing.T) {
	t.Parallel()
	st := newSetup(t)
	s := st.s
	var req struct{ RequestPreAuthorization struct{ ID, Status string } }
	s.As("doctor", `mutation($in: RequestPreAuthorizationInput!) { requestPreAuthorization(input: $in) { id status } }`,
		map[string]any{"in": map[string]any{"policyId": st.policy, "category": "PROCEDURE", "serviceCode": "MRI", "reason": "Suspected disc herniation"}}).
		Decode(t, &req)
	harness.Must(t, req.RequestPreAuthorization.Status == "REQUESTED", "requested %+v", req)
	const approve = `mutation($id: ID!, $in: ApprovePreAuthorizationInput!) { approvePreAuthorization(id: $id, input: $in) { status approvedAmount } }`
	in := map[string]any{"payerReference": "PA-5521", "validFrom": "2026-03-01", "validTo": "2026-03-31", "approvedAmount": "400.00"}
	r := s.As("doctor", approve, map[string]any{"id": req.RequestPreAuthorization.ID, "in": in})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a doctor approving: %s", harness.Describe(r))
	r = s.As("billing_clerk", approve, map[string]any{"id": req.RequestPreAuthorization.ID, "in": in})
	harness.Must(t, len(r.Errors) == 0, "approve: %s", harness.Describe(r))
	var out estimateOut
	s.As("reception", estimate, map[string]any{"p": st.patient, "lines": visitLines()[2:]}).Decode(t, &out)
	l := out.CoverageEstimate.Lines[0]
	harness.Must(t, l.PayerShare == "400.00" && l.PatientShare == "50.00" && l.Steps[0].Reason == "COVERED", "MRI: %+v", l)
}

func TestPlansAreTheFinanceOfficersAndInputIsChecked(t *testing.T) {
	t.Parallel()
	st := newSetup(t)
	s := st.s
	r := s.As("billing_clerk", `mutation { createPayer(input: {code: "AAR", name: "AAR", kind: INSURER}) { id } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "a clerk adding a payer: %s", harness.Describe(r))
	r = s.As("finance_officer", `mutation($plan: ID!) { addPlanVersion(input: {planId: $plan, effectiveFrom: "2027-01-01",
	  rules: [{category: LAB, coveredPercent: 120}]}) { id } }`, map[string]any{"plan": st.plan})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.rules[0].coveredPercent", "120 %%: %s", harness.Describe(r))
	r = s.As("finance_officer", `mutation($plan: ID!) { addPlanVersion(input: {planId: $plan, effectiveFrom: "2026-01-01", rules: []}) { id } }`,
		map[string]any{"plan": st.plan})
	harness.Must(t, r.HasCode("CONFLICT"), "a second version of the same day: %s", harness.Describe(r))
	var plans struct {
		InsurancePlans struct {
			Edges []struct {
				Node struct {
					Versions []struct{ EffectiveFrom string }
				}
			}
		}
	}
	s.As("auditor", `{ insurancePlans(first: 5) { edges { node { versions { effectiveFrom } } } } }`, nil).Decode(t, &plans)
	harness.Must(t, len(plans.InsurancePlans.Edges) == 1 && len(plans.InsurancePlans.Edges[0].Node.Versions) == 1, "plans: %+v", plans)
}
