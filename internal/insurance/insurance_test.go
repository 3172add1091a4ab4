package insurance

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/claim"
	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/coveragerule"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc                  *Service
	c                    *ent.Client
	sys                  context.Context
	clerk, doctor, nurse context.Context
	patient              *ent.Patient
	policy               *ent.InsurancePolicy
	plan                 *ent.InsurancePlan
	encounter            *ent.Encounter
}

func ptr[T any](v T) *T { return &v }

func setup(t *testing.T) fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	dep := c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	as := func(kind staff.Kind, role string) context.Context {
		s := c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(kind).SetDepartment(dep).SaveX(sys)
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + s.ID, Username: role, Roles: []string{role}, StaffID: s.ID})
	}
	f := fixture{svc: NewService(st, time.UTC), c: c, sys: sys,
		clerk: as(staff.KindBILLING_CLERK, "billing_clerk"), doctor: as(staff.KindDOCTOR, "doctor"), nurse: as(staff.KindNURSE, "nurse")}
	f.patient = c.Patient.Create().SetMrn("100000009").SetGivenName("P").SetFamilyName("Q").
		SetBirthDate(d(1970, 1, 1)).SetSex(patient.SexFEMALE).SaveX(sys)
	f.policy = c.InsurancePolicy.Create().SetPatient(f.patient).SetPayer("nhif (free text)").SetMemberNumber("M1").
		SetValidFrom(d(2026, 1, 1)).SaveX(sys)
	f.encounter = c.Encounter.Create().SetPatient(f.patient).SetType(encounter.TypeOUTPATIENT).SetStartedAt(d(2026, 3, 10)).SaveX(sys)
	c.Problem.Create().SetPatient(f.patient).SetEncounterID(f.encounter.ID).SetIcd10Code("J18.9").SetDisplay("Pneumonia").SaveX(sys)
	c.Problem.Create().SetPatient(f.patient).SetEncounterID(f.encounter.ID).SetIcd10Code("F32.9").SetDisplay("Depression").SaveX(sys)

	py, err := f.svc.CreatePayer(sys, CreatePayerInput{Code: "nhif", Name: "National Health Insurance Fund", Kind: payer.KindGOVERNMENT})
	if err != nil {
		t.Fatal(err)
	}
	if f.plan, err = f.svc.CreatePlan(sys, CreateInsurancePlanInput{PayerID: py.ID, Code: "NHIF-CIVIL", Name: "Civil servants", PlanYearStartMonth: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.AddPlanVersion(sys, AddPlanVersionInput{PlanID: f.plan.ID, EffectiveFrom: d(2026, 1, 1), AnnualLimit: ptr[int64](20000),
		Rules: []CoverageRuleInput{
			{Category: coveragerule.CategoryCONSULTATION, CoveredPercent: 80},
			{Category: coveragerule.CategoryLAB, CoveredPercent: 100, LineCopay: 500},
			{Category: coveragerule.CategoryPROCEDURE, ServiceCode: ptr("MRI"), CoveredPercent: 100, RequiresPreauthorization: true},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

func estimateLines() []CoverageLineInput {
	return []CoverageLineInput{
		{ServiceCode: "CONS-GEN", Category: claimline.CategoryCONSULTATION, ServiceDate: d(2026, 3, 10), Quantity: 1, Amount: 10000},
		{ServiceCode: "FBC", Category: claimline.CategoryLAB, ServiceDate: d(2026, 3, 10), Quantity: 1, Amount: 3000},
		{ServiceCode: "MRI", Category: claimline.CategoryPROCEDURE, ServiceDate: d(2026, 3, 10), Quantity: 1, Amount: 50000},
	}
}

func TestEstimateLinksTheFreeTextPolicyAndLoadsItsRules(t *testing.T) {
	f := setup(t)
	// Before the link the policy is there but splits nothing.
	est, err := f.svc.Estimate(f.clerk, f.patient.ID, estimateLines())
	if err != nil {
		t.Fatal(err)
	}
	if est.PayerTotal != 0 || est.Lines[0].Steps[0].Reason != ReasonPolicyNotInForce {
		t.Fatalf("unlinked policy: %+v", est.Lines[0])
	}
	p, err := f.svc.LinkPolicy(f.clerk, f.policy.ID, &f.plan.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Payer != "nhif (free text)" || p.PlanID == nil || *p.PlanID != f.plan.ID {
		t.Fatalf("linked policy %+v: the free-text payer stays and the plan is set", p)
	}
	est, err = f.svc.Estimate(f.clerk, f.patient.ID, estimateLines())
	if err != nil {
		t.Fatal(err)
	}
	// 80 % of 100.00; 100 % of 30.00 after a 5.00 co-payment; MRI without
	// a pre-authorization.
	want := [][2]int64{{8000, 2000}, {2500, 500}, {0, 50000}}
	for i, w := range want {
		if l := est.Lines[i]; l.PayerShare != w[0] || l.PatientShare != w[1] {
			t.Errorf("line %d: %d/%d, want %d/%d (%+v)", i, l.PayerShare, l.PatientShare, w[0], w[1], l.Steps)
		}
	}
	if est.Lines[2].Steps[0].Reason != ReasonPreauthMissing {
		t.Errorf("MRI: %s", est.Lines[2].Steps[0].Reason)
	}

	// An approved pre-authorization lets the MRI through, up to the limit
	// left: 200.00 a year less the 105.00 of the two lines before it.
	pa, err := f.svc.RequestPreAuthorization(f.doctor, RequestPreAuthorizationInput{PolicyID: f.policy.ID, Category: "PROCEDURE", ServiceCode: ptr("mri")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ApprovePreAuthorization(f.clerk, pa.ID, ApprovePreAuthorizationInput{PayerReference: "PA-1",
		ValidFrom: d(2026, 3, 1), ValidTo: d(2026, 3, 31), ApprovedQuantity: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	est, err = f.svc.Estimate(f.clerk, f.patient.ID, estimateLines())
	if err != nil {
		t.Fatal(err)
	}
	if l := est.Lines[2]; l.PayerShare != 9500 || l.Steps[0].Reason != ReasonLimitExhausted {
		t.Fatalf("MRI with a pre-authorization: %+v", l)
	}

	// A claim of the MRI uses the pre-authorization's one scan up.
	if _, err := f.svc.CreateClaim(f.clerk, CreateClaimInput{PolicyID: f.policy.ID, Lines: []ClaimLineInput{
		{ServiceCode: "MRI", Category: "PROCEDURE", ServiceDate: d(2026, 3, 10), Quantity: 1, AmountClaimed: 1}}}); err != nil {
		t.Fatal(err)
	}
	est, err = f.svc.Estimate(f.clerk, f.patient.ID, estimateLines()[2:])
	if err != nil {
		t.Fatal(err)
	}
	if l := est.Lines[0]; l.PayerShare != 0 || l.Steps[0].Reason != ReasonPreauthMissing {
		t.Fatalf("MRI after the claim of one: %+v", l)
	}

	// Claims count against the limit: 0.01 + 150.00 claimed leaves 49.99.
	if _, err := f.svc.CreateClaim(f.clerk, CreateClaimInput{PolicyID: f.policy.ID, Lines: []ClaimLineInput{
		{ServiceCode: "CONS-GEN", Category: "CONSULTATION", ServiceDate: d(2026, 2, 1), Quantity: 1, AmountClaimed: 15000}}}); err != nil {
		t.Fatal(err)
	}
	est, err = f.svc.Estimate(f.clerk, f.patient.ID, estimateLines()[:1])
	if err != nil {
		t.Fatal(err)
	}
	if l := est.Lines[0]; l.PayerShare != 4999 || l.Steps[0].Reason != ReasonLimitExhausted {
		t.Fatalf("after a claim: %+v", l)
	}
}

func TestEstimateRefusesBadInput(t *testing.T) {
	f := setup(t)
	bad := func(mut func([]CoverageLineInput)) []CoverageLineInput {
		l := estimateLines()
		mut(l)
		return l
	}
	for field, lines := range map[string][]CoverageLineInput{
		"lines":                nil,
		"lines[0].amount":      bad(func(l []CoverageLineInput) { l[0].Amount = -1 }),
		"lines[1].serviceCode": bad(func(l []CoverageLineInput) { l[1].ServiceCode = "a b" }),
		"lines[2].category":    bad(func(l []CoverageLineInput) { l[2].Category = "SPA" }),
		"lines[0].quantity":    bad(func(l []CoverageLineInput) { l[0].Quantity = 0 }),
		"lines[0].serviceDate": bad(func(l []CoverageLineInput) { l[0].ServiceDate = time.Time{} }),
	} {
		if _, err := f.svc.Estimate(f.clerk, f.patient.ID, lines); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if _, err := f.svc.Estimate(f.clerk, "pat_01JUNKUNKNOWN0000000000000", estimateLines()); !isBadInput(err, "patientId") {
		t.Errorf("unknown patient: %v", err)
	}
}

func TestPlanRulesRefuseBadInputAndNeverChange(t *testing.T) {
	f := setup(t)
	cases := map[string]AddPlanVersionInput{
		"input.planId":                  {PlanID: "pat_x", EffectiveFrom: d(2027, 1, 1)},
		"input.rules[0].coveredPercent": {PlanID: f.plan.ID, EffectiveFrom: d(2027, 1, 1), Rules: []CoverageRuleInput{{Category: "LAB", CoveredPercent: 101}}},
		"input.rules[1]":                {PlanID: f.plan.ID, EffectiveFrom: d(2027, 1, 1), Rules: []CoverageRuleInput{{Category: "LAB"}, {Category: "LAB"}}},
		"input.rules[0].lineCopay":      {PlanID: f.plan.ID, EffectiveFrom: d(2027, 1, 1), Rules: []CoverageRuleInput{{Category: "LAB", LineCopay: -5}}},
		"input.annualLimit":             {PlanID: f.plan.ID, EffectiveFrom: d(2027, 1, 1), AnnualLimit: ptr(MaxAmount + 1)},
		"input.effectiveFrom":           {PlanID: f.plan.ID},
	}
	for field, in := range cases {
		if _, err := f.svc.AddPlanVersion(f.sys, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if _, err := f.svc.AddPlanVersion(f.sys, AddPlanVersionInput{PlanID: f.plan.ID, EffectiveFrom: d(2026, 1, 1)}); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("a second version of the same date: %v", err)
	}
	if n := f.c.PlanVersion.Query().CountX(f.sys); n != 1 {
		t.Errorf("%d versions after refusals, want 1", n)
	}
	if _, err := f.svc.CreatePayer(f.sys, CreatePayerInput{Code: "NHIF", Name: "Again", Kind: payer.KindINSURER}); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("a taken payer code: %v", err)
	}
	if _, err := f.svc.CreatePayer(f.sys, CreatePayerInput{Code: "X", Name: " ", Kind: payer.KindINSURER}); !isBadInput(err, "input.name") {
		t.Errorf("an empty name: %v", err)
	}
}

func TestPreAuthorizationStates(t *testing.T) {
	f := setup(t)
	if _, err := f.svc.RequestPreAuthorization(f.doctor, RequestPreAuthorizationInput{PolicyID: f.policy.ID, Category: "PROCEDURE"}); !isBadInput(err, "input.policyId") {
		t.Fatalf("an unlinked policy: %v", err)
	}
	f.svc.LinkPolicy(f.clerk, f.policy.ID, &f.plan.ID)
	if _, err := f.svc.RequestPreAuthorization(f.nurse, RequestPreAuthorizationInput{PolicyID: f.policy.ID, Category: "PROCEDURE"}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a nurse: %v", err)
	}
	pa, err := f.svc.RequestPreAuthorization(f.doctor, RequestPreAuthorizationInput{PolicyID: f.policy.ID, Category: "PROCEDURE", ServiceCode: ptr("MRI")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ApprovePreAuthorization(f.doctor, pa.ID, ApprovePreAuthorizationInput{PayerReference: "R", ValidFrom: d(2026, 3, 1), ValidTo: d(2026, 3, 2), ApprovedAmount: ptr[int64](1)}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a doctor deciding for the payer: %v", err)
	}
	for field, in := range map[string]ApprovePreAuthorizationInput{
		"input.validTo":          {PayerReference: "R", ValidFrom: d(2026, 3, 2), ValidTo: d(2026, 3, 1), ApprovedAmount: ptr[int64](1)},
		"input.approvedAmount":   {PayerReference: "R", ValidFrom: d(2026, 3, 1), ValidTo: d(2026, 3, 2)},
		"input.payerReference":   {PayerReference: "", ValidFrom: d(2026, 3, 1), ValidTo: d(2026, 3, 2), ApprovedAmount: ptr[int64](1)},
		"input.approvedQuantity": {PayerReference: "R", ValidFrom: d(2026, 3, 1), ValidTo: d(2026, 3, 2), ApprovedQuantity: ptr(0)},
	} {
		if _, err := f.svc.ApprovePreAuthorization(f.clerk, pa.ID, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if _, err := f.svc.DenyPreAuthorization(f.clerk, pa.ID, "not medically necessary"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ApprovePreAuthorization(f.clerk, pa.ID, ApprovePreAuthorizationInput{PayerReference: "R", ValidFrom: d(2026, 3, 1), ValidTo: d(2026, 3, 2), ApprovedAmount: ptr[int64](1)}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("approving a denied one: %v", err)
	}
}

func (f fixture) claim(t *testing.T) *ent.Claim {
	t.Helper()
	if _, err := f.svc.LinkPolicy(f.clerk, f.policy.ID, &f.plan.ID); err != nil {
		t.Fatal(err)
	}
	cl, err := f.svc.CreateClaim(f.clerk, CreateClaimInput{PolicyID: f.policy.ID, EncounterID: &f.encounter.ID, DiagnosisCodes: []string{"J18.9"},
		Lines: []ClaimLineInput{
			{ServiceCode: "CONS-GEN", Category: "CONSULTATION", ServiceDate: d(2026, 3, 10), Quantity: 1, AmountClaimed: 8000},
			{ServiceCode: "FBC", Category: "LAB", ServiceDate: d(2026, 3, 10), Quantity: 1, AmountClaimed: 2500},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (f fixture) lines(cl *ent.Claim) []*ent.ClaimLine {
	return f.c.ClaimLine.Query().Where(claimline.ClaimID(cl.ID)).Order(ent.Asc(claimline.FieldPosition)).AllX(f.sys)
}

func TestClaimLifecycle(t *testing.T) {
	f := setup(t)
	cl := f.claim(t)
	if cl.Status != claim.StatusDRAFT || cl.TotalClaimed != 10500 || len(cl.DiagnosisCodes) != 1 || cl.PayerID == "" {
		t.Fatalf("created %+v", cl)
	}
	ls := f.lines(cl)
	remit := RecordRemittanceInput{Reference: "RA-1", Lines: []RemittanceLineInput{{LineID: ls[0].ID, AmountPaid: 8000}, {LineID: ls[1].ID, AmountPaid: 2000, AdjustmentCode: ptr("CO-45")}}}
	if _, err := f.svc.RecordRemittance(f.clerk, cl.ID, remit); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("remitting a draft: %v", err)
	}
	decide := AdjudicateClaimInput{Lines: []ClaimLineDecisionInput{{LineID: ls[0].ID, AmountApproved: 8000}, {LineID: ls[1].ID, AmountApproved: 2000, ReasonCode: ptr("co-45")}}}
	if _, err := f.svc.AdjudicateClaim(f.clerk, cl.ID, decide); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("adjudicating a draft: %v", err)
	}
	if cl, err := f.svc.SubmitClaim(f.clerk, cl.ID); err != nil || cl.Status != claim.StatusSUBMITTED || cl.SubmittedAt == nil {
		t.Fatalf("submit: %v %+v", err, cl)
	}
	if _, err := f.svc.SubmitClaim(f.clerk, cl.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("submitting twice: %v", err)
	}
	for field, in := range map[string]AdjudicateClaimInput{
		"input.lines":                   {Lines: decide.Lines[:1]},
		"input.lines[1].lineId":         {Lines: []ClaimLineDecisionInput{decide.Lines[0], decide.Lines[0]}},
		"input.lines[0].amountApproved": {Lines: []ClaimLineDecisionInput{{LineID: ls[0].ID, AmountApproved: 8001}, decide.Lines[1]}},
		"input.lines[1].reasonCode":     {Lines: []ClaimLineDecisionInput{decide.Lines[0], {LineID: ls[1].ID, AmountApproved: 2000}}},
		"input.denialCode":              {Lines: []ClaimLineDecisionInput{{LineID: ls[0].ID, AmountApproved: 0, ReasonCode: ptr("50")}, {LineID: ls[1].ID, AmountApproved: 0, ReasonCode: ptr("50")}}},
	} {
		if _, err := f.svc.AdjudicateClaim(f.clerk, cl.ID, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if got := f.c.Claim.GetX(f.sys, cl.ID); got.Status != claim.StatusSUBMITTED || got.TotalApproved != nil || f.lines(cl)[0].AmountApproved != nil {
		t.Fatalf("a refused decision changed the claim: %+v", got)
	}
	adj, err := f.svc.AdjudicateClaim(f.clerk, cl.ID, decide)
	if err != nil {
		t.Fatal(err)
	}
	if adj.Status != claim.StatusPARTIALLY_APPROVED || *adj.TotalApproved != 10000 {
		t.Fatalf("adjudicated %+v", adj)
	}
	over := RecordRemittanceInput{Reference: "RA-1", Lines: []RemittanceLineInput{{LineID: ls[0].ID, AmountPaid: 8000}, {LineID: ls[1].ID, AmountPaid: 2001}}}
	if _, err := f.svc.RecordRemittance(f.clerk, cl.ID, over); !isBadInput(err, "input.lines[1].amountPaid") {
		t.Fatalf("paying more than approved: %v", err)
	}
	paid, err := f.svc.RecordRemittance(f.clerk, cl.ID, remit)
	if err != nil {
		t.Fatal(err)
	}
	ls = f.lines(cl)
	if paid.Status != claim.StatusPAID || *paid.TotalPaid != 10000 || *ls[1].Adjustment != 500 || *ls[1].AdjustmentCode != "CO-45" || *ls[0].Adjustment != 0 {
		t.Fatalf("paid %+v, lines %+v %+v", paid, ls[0], ls[1])
	}
	if _, err := f.svc.ResubmitClaim(f.clerk, cl.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("resubmitting a paid claim: %v", err)
	}
}

func TestDeniedClaimIsResubmittedAsANewVersion(t *testing.T) {
	f := setup(t)
	cl := f.claim(t)
	f.svc.SubmitClaim(f.clerk, cl.ID)
	ls := f.lines(cl)
	denied, err := f.svc.AdjudicateClaim(f.clerk, cl.ID, AdjudicateClaimInput{DenialCode: ptr("197"), Lines: []ClaimLineDecisionInput{
		{LineID: ls[0].ID, AmountApproved: 0, ReasonCode: ptr("197")}, {LineID: ls[1].ID, AmountApproved: 0, ReasonCode: ptr("197")}}})
	if err != nil || denied.Status != claim.StatusDENIED || *denied.DenialCode != "197" {
		t.Fatalf("deny: %v %+v", err, denied)
	}
	next, err := f.svc.ResubmitClaim(f.clerk, cl.ID)
	if err != nil {
		t.Fatal(err)
	}
	if next.Version != 2 || *next.PreviousID != cl.ID || next.Status != claim.StatusDRAFT || next.TotalClaimed != cl.TotalClaimed || len(f.lines(next)) != 2 {
		t.Fatalf("resubmitted %+v", next)
	}
	if _, err := f.svc.ResubmitClaim(f.clerk, cl.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("resubmitting twice: %v", err)
	}
	if got := f.c.Claim.GetX(f.sys, cl.ID); got.Status != claim.StatusDENIED {
		t.Fatalf("the denied claim changed: %s", got.Status)
	}
}

func TestCreateClaimRefusesBadInput(t *testing.T) {
	f := setup(t)
	f.svc.LinkPolicy(f.clerk, f.policy.ID, &f.plan.ID)
	good := func() CreateClaimInput {
		return CreateClaimInput{PolicyID: f.policy.ID, EncounterID: &f.encounter.ID, DiagnosisCodes: []string{"J18.9"},
			Lines: []ClaimLineInput{{ServiceCode: "FBC", Category: "LAB", ServiceDate: d(2026, 3, 10), Quantity: 1, AmountClaimed: 2500}}}
	}
	cases := map[string]func(*CreateClaimInput){
		"input.policyId":               func(in *CreateClaimInput) { in.PolicyID = f.patient.ID },
		"input.lines":                  func(in *CreateClaimInput) { in.Lines = nil },
		"input.lines[0].amountClaimed": func(in *CreateClaimInput) { in.Lines[0].AmountClaimed = -3 },
		"input.lines[0].quantity":      func(in *CreateClaimInput) { in.Lines[0].Quantity = 0 },
		"input.diagnosisCodes[0]":      func(in *CreateClaimInput) { in.DiagnosisCodes = []string{"pneumonia"} },
		"input.encounterId":            func(in *CreateClaimInput) { in.EncounterID = nil },
	}
	for field, mut := range cases {
		in := good()
		mut(&in)
		if _, err := f.svc.CreateClaim(f.clerk, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	// A code the encounter does not carry is not the claim's to add.
	in := good()
	in.DiagnosisCodes = []string{"J18.9", "E11.9"}
	if _, err := f.svc.CreateClaim(f.clerk, in); !isBadInput(err, "input.diagnosisCodes[1]") {
		t.Errorf("a diagnosis not on the encounter: %v", err)
	}
	if _, err := f.svc.CreateClaim(f.doctor, good()); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("a doctor: %v", err)
	}
	if n := f.c.Claim.Query().CountX(f.sys); n != 0 {
		t.Errorf("%d claims after refusals", n)
	}
}

// Two clerks post the same remittance at once: it is recorded once, the
// other is refused, and the paid amounts are not doubled.
func TestConcurrentRemittanceIsPostedOnce(t *testing.T) {
	f := setup(t)
	cl := f.claim(t)
	f.svc.SubmitClaim(f.clerk, cl.ID)
	ls := f.lines(cl)
	if _, err := f.svc.AdjudicateClaim(f.clerk, cl.ID, AdjudicateClaimInput{Lines: []ClaimLineDecisionInput{
		{LineID: ls[0].ID, AmountApproved: 8000}, {LineID: ls[1].ID, AmountApproved: 2500}}}); err != nil {
		t.Fatal(err)
	}
	remit := RecordRemittanceInput{Reference: "RA-9", Lines: []RemittanceLineInput{{LineID: ls[0].ID, AmountPaid: 8000}, {LineID: ls[1].ID, AmountPaid: 2500}}}
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			_, errs[i] = f.svc.RecordRemittance(f.clerk, cl.ID, remit)
		}(i)
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apperr.CodeOf(err) != apperr.Conflict:
			t.Errorf("a losing remittance: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d remittances recorded, want 1", ok)
	}
	if got := f.c.Claim.GetX(f.sys, cl.ID); got.Status != claim.StatusPAID || *got.TotalPaid != 10500 {
		t.Fatalf("claim after the race: %+v", got)
	}
}
