package charges

import (
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// billedVisit is an outpatient visit of the demo patient, insured at 80 %
// of consultations, 100 % of lab tests after a 5.00 co-payment and 50 % of
// drugs, that saw a doctor, had a potassium test and was dispensed
// paracetamol: the charges it produced, invoiced and issued.
type billedVisit struct {
	s         *harness.Server
	patient   string
	encounter string
	invoice   invoiceOut
}

type invoiceOut struct {
	ID, Status, Subtotal, PayerTotal, PatientTotal, Total string
	PatientBalance, PayerBalance, Paid                    string
	Number                                                *string
	Lines                                                 []struct {
		Code, Category, Amount, PayerShare string
	}
	Claims []struct {
		ID, Status, TotalClaimed string
		DiagnosisCodes           []string
		Lines                    []struct{ ID, ServiceCode, AmountClaimed string }
	}
}

const invoiceFields = `id number status subtotal payerTotal patientTotal total paid patientBalance payerBalance
  lines { code category amount payerShare }
  claims { id status totalClaimed diagnosisCodes lines { id serviceCode amountClaimed } }`

func newBilledVisit(t *testing.T) billedVisit {
	t.Helper()
	s := harness.NewServer(t)
	d := s.Demo()
	s.CaptureCharges()
	v := billedVisit{s: s, patient: d.Patients[0]}
	do := func(user, doc string, vars map[string]any, out any) {
		t.Helper()
		r := s.As(user, doc, vars)
		harness.Must(t, len(r.Errors) == 0, "%s: %s\n%s", user, harness.Describe(r), doc)
		if out != nil {
			r.Decode(t, out)
		}
	}

	// The payer, its plan, and the patient's policy linked to it.
	var payer struct{ CreatePayer struct{ ID string } }
	do("finance_officer", `mutation { createPayer(input: {code: "NHIF", name: "National Health Insurance Fund", kind: GOVERNMENT}) { id } }`, nil, &payer)
	var plan struct{ CreateInsurancePlan struct{ ID string } }
	do("finance_officer", `mutation($payer: ID!) { createInsurancePlan(input: {payerId: $payer, code: "NHIF-CIVIL", name: "Civil servants"}) { id } }`,
		map[string]any{"payer": payer.CreatePayer.ID}, &plan)
	do("finance_officer", `mutation($plan: ID!) { addPlanVersion(input: {planId: $plan, effectiveFrom: "2026-01-01",
	  rules: [{category: CONSULTATION, coveredPercent: 80}, {category: LAB, coveredPercent: 100, lineCopay: "5.00"},
	          {category: DRUG, coveredPercent: 50}]}) { id } }`, map[string]any{"plan": plan.CreateInsurancePlan.ID}, nil)
	var policy struct{ AddInsurancePolicy struct{ ID string } }
	do("reception", `mutation($p: ID!) { addInsurancePolicy(patientId: $p, input: {payer: "NHIF", memberNumber: "NH-778", validFrom: "2026-01-01"}) { id } }`,
		map[string]any{"p": v.patient}, &policy)
	do("billing_clerk", `mutation($id: ID!, $plan: ID) { linkInsurancePolicyToPlan(policyId: $id, planId: $plan) { id } }`,
		map[string]any{"id": policy.AddInsurancePolicy.ID, "plan": plan.CreateInsurancePlan.ID}, nil)

	// Stock and prices: paracetamol at 0.40 a tablet, so 0.50 with the markup.
	var drugs struct {
		Formulary struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	do("pharmacist", `{ formulary(first: 1, where: {code: "PARA500TAB"}) { edges { node { id } } } }`, nil, &drugs)
	var locations struct {
		StockLocations struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	do("pharmacist", `{ stockLocations(first: 1, where: {kind: PHARMACY}) { edges { node { id } } } }`, nil, &locations)
	pharmacy := locations.StockLocations.Edges[0].Node.ID
	do("pharmacist", `mutation($in: ReceiveStockInput!) { receiveStock(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"locationId": pharmacy, "drugId": drugs.Formulary.Edges[0].Node.ID, "lotNumber": "BILL-1",
		"expiryDate": time.Now().AddDate(1, 0, 0).Format(time.DateOnly), "quantity": 100, "unitCost": "0.40"}}, nil)
	cat := harness.EnsureLabCatalog(t, s)
	do("billing_clerk", `mutation($in: SetTariffPriceInput!) { setTariffPrice(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"code": "LAB-K-VISIT", "name": "Potassium", "category": "LAB", "refId": cat.Potassium.ID, "price": "30.00"}}, nil)
	do("billing_clerk", `mutation { seedPriceList(input: {consultationFee: "50.00", bedDayFee: "200.00"}) }`, nil, nil)

	// The visit: a walk-in seen by the doctor, a diagnosis, a lab test, a
	// prescription dispensed, and the encounter finished.
	var enc struct{ StartEncounter struct{ ID string } }
	do("doctor", `mutation($p: ID!, $dep: ID!, $doc: ID!) { startEncounter(input: {patientId: $p, type: OUTPATIENT, departmentId: $dep,
	  providerId: $doc, reason: "Palpitations"}) { id } }`, map[string]any{"p": v.patient, "dep": d.General, "doc": d.Doctor}, &enc)
	v.encounter = enc.StartEncounter.ID
	do("doctor", `mutation($p: ID!, $e: ID!) { recordProblem(input: {patientId: $p, encounterId: $e, icd10Code: "J20.9"}) { status } }`,
		map[string]any{"p": v.patient, "e": v.encounter}, nil)
	lab := harness.NewLabDesk(t, s)
	order := lab.Order(v.patient, []string{cat.Potassium.ID}, nil, map[string]any{"encounterId": v.encounter})
	item := order.Item(t, cat.Potassium.ID)
	sp := lab.Collect("nurse", item)
	lab.Receive("labtech", sp.ID)
	lab.Verify("labtech2", lab.Enter("labtech", item, harness.Potassium(4.1)).ID)
	var rx struct{ PrescribeMedication struct{ ID string } }
	do("doctor", `mutation($p: ID!, $e: ID!) { prescribeMedication(input: {patientId: $p, encounterId: $e, drugCode: "PARA500TAB",
	  doseAmount: 500, doseUnit: "mg", route: ORAL, frequency: "TID", durationDays: 4, quantity: 12}) { id } }`,
		map[string]any{"p": v.patient, "e": v.encounter}, &rx)
	do("pharmacist", `mutation($o: ID!) { dispenseMedication(input: {orderId: $o}) { id } }`, map[string]any{"o": rx.PrescribeMedication.ID}, nil)
	do("doctor", `mutation($e: ID!) { finishEncounter(id: $e) { status } }`, map[string]any{"e": v.encounter}, nil)

	// Billing captures the three charges from the modules' events.
	var charges struct {
		Charges struct {
			Edges []struct{ Node struct{ Code, Amount string } }
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		do("billing_clerk", `query($e: String!) { charges(first: 10, where: {encounterID: $e}) { edges { node { code amount } } } }`,
			map[string]any{"e": v.encounter}, &charges)
		if len(charges.Charges.Edges) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	harness.Must(t, len(charges.Charges.Edges) == 3, "captured %+v", charges)

	var created struct{ CreateInvoice invoiceOut }
	do("billing_clerk", `mutation($p: ID!, $e: ID!) { createInvoice(input: {patientId: $p, encounterId: $e}) { `+invoiceFields+` } }`,
		map[string]any{"p": v.patient, "e": v.encounter}, &created)
	var issued struct{ IssueInvoice invoiceOut }
	do("billing_clerk", `mutation($id: ID!) { issueInvoice(id: $id) { `+invoiceFields+` } }`, map[string]any{"id": created.CreateInvoice.ID}, &issued)
	v.invoice = issued.IssueInvoice
	return v
}

// The Done-when of billing: a visit's invoice is split between the insurer
// and the patient, the patient pays their share in the app, the claim is submitted and
// remitted with an adjustment, the invoice ends PAID and the ledger
// balances with nothing left owed on it.
func TestOutpatientVisitIsSplitPaidClaimedAndRemitted(t *testing.T) {
	t.Parallel()
	v := newBilledVisit(t)
	s := v.s
	inv := v.invoice
	// Consultation 50.00 (80 %: 40.00), potassium 30.00 (100 % after 5.00:
	// 25.00), 12 tablets at 0.50 = 6.00 (50 %: 3.00).
	harness.Must(t, inv.Status == "ISSUED" && inv.Subtotal == "86.00" && inv.PayerTotal == "68.00" && inv.PatientTotal == "18.00" &&
		inv.PatientBalance == "18.00" && inv.PayerBalance == "68.00", "issued %+v", inv)
	harness.Must(t, len(inv.Claims) == 1 && inv.Claims[0].Status == "DRAFT" && inv.Claims[0].TotalClaimed == "68.00" &&
		len(inv.Claims[0].Lines) == 3 && len(inv.Claims[0].DiagnosisCodes) == 1 && inv.Claims[0].DiagnosisCodes[0] == "J20.9",
		"claim %+v", inv.Claims)

	// The patient pays their share in the app, through the payment
	// provider; the demo's simulated provider confirms it as a real one's
	// signed callback would.
	var checkout struct {
		PayMyInvoice struct{ ID, Status string }
	}
	s.As("patient", `mutation($i: ID!) { payMyInvoice(input: {invoiceId: $i, amount: "18.00", method: MOBILE_MONEY}) { id status } }`,
		map[string]any{"i": inv.ID}).Decode(t, &checkout)
	harness.Must(t, checkout.PayMyInvoice.Status == "PENDING", "checkout %+v", checkout)
	r := s.As("patient", `mutation($id: ID!) { simulatePaymentCompletion(checkoutId: $id, succeed: true) { status paymentID } }`,
		map[string]any{"id": checkout.PayMyInvoice.ID})
	harness.Must(t, len(r.Errors) == 0, "the provider's confirmation: %s", harness.Describe(r))
	var balance struct{ MyBalance struct{ Owed string } }
	s.As("patient", `{ myBalance { owed } }`, nil).Decode(t, &balance)
	harness.Must(t, balance.MyBalance.Owed == "0.00", "the patient still owes %s", balance.MyBalance.Owed)

	// The patient app sees the bill and what is left to pay, but not the
	// staff behind it nor the claim's diagnoses.
	var mine struct {
		Invoices struct {
			Edges []struct {
				Node struct{ Number, PatientTotal, PatientBalance string }
			}
		}
	}
	s.As("patient", `{ invoices(first: 5) { edges { node { number patientTotal patientBalance } } } }`, nil).Decode(t, &mine)
	harness.Must(t, len(mine.Invoices.Edges) == 1 && mine.Invoices.Edges[0].Node.PatientBalance == "0.00" &&
		mine.Invoices.Edges[0].Node.PatientTotal == "18.00", "the patient's invoices: %+v", mine)
	for _, doc := range []string{
		`{ invoices(first: 5) { edges { node { createdByID } } } }`,
		`{ payments(first: 5) { edges { node { recordedByID } } } }`,
		`{ invoices(first: 5) { edges { node { claims { diagnosisCodes } } } } }`,
	} {
		r := s.As("patient", doc, nil)
		harness.Must(t, r.HasCode("FORBIDDEN"), "the patient reading %s: %s", doc, harness.Describe(r))
	}
	r = s.As("doctor", `{ invoices(first: 5) { edges { node { id } } } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "a doctor reading invoices: %s", harness.Describe(r))

	// The clerk submits the claim; the payer approves all but 2.00 of
	// the lab line and pays what it approved.
	cl := inv.Claims[0]
	r = s.As("billing_clerk", `mutation($id: ID!) { submitClaim(id: $id) { status } }`, map[string]any{"id": cl.ID})
	harness.Must(t, len(r.Errors) == 0, "submit: %s", harness.Describe(r))
	decide, remit := []map[string]any{}, []map[string]any{}
	for _, l := range cl.Lines {
		approved, code := l.AmountClaimed, any(nil)
		if l.AmountClaimed == "25.00" {
			approved, code = "23.00", "CO-45"
		}
		decide = append(decide, map[string]any{"lineId": l.ID, "amountApproved": approved, "reasonCode": code})
		remit = append(remit, map[string]any{"lineId": l.ID, "amountPaid": approved})
	}
	r = s.As("billing_clerk", `mutation($id: ID!, $in: AdjudicateClaimInput!) { adjudicateClaim(id: $id, input: $in) { status } }`,
		map[string]any{"id": cl.ID, "in": map[string]any{"lines": decide}})
	harness.Must(t, len(r.Errors) == 0, "adjudicate: %s", harness.Describe(r))
	r = s.As("billing_clerk", `mutation($id: ID!, $in: RecordRemittanceInput!) { recordRemittance(id: $id, input: $in) { status totalPaid } }`,
		map[string]any{"id": cl.ID, "in": map[string]any{"reference": "RA-77", "lines": remit}})
	harness.Must(t, len(r.Errors) == 0, "remit: %s", harness.Describe(r))

	var after struct{ Node invoiceOut }
	s.As("billing_clerk", `query($id: ID!) { node(id: $id) { ... on Invoice { `+invoiceFields+` } } }`, map[string]any{"id": inv.ID}).Decode(t, &after)
	harness.Must(t, after.Node.Status == "PAID" && after.Node.PatientBalance == "0.00" && after.Node.PayerBalance == "0.00" &&
		after.Node.Paid == "84.00", "after remittance %+v", after.Node)

	// The ledger balances, and nothing is left owed or unbilled.
	var tb struct {
		TrialBalance struct {
			TotalDebit, TotalCredit string
			Rows                    []struct {
				Balance string
				Account struct{ Code string }
			}
		}
	}
	s.As("finance_officer", `query($d: Date!) { trialBalance(asOf: $d) { totalDebit totalCredit rows { balance account { code } } } }`,
		map[string]any{"d": time.Now().AddDate(0, 0, 1).Format(time.DateOnly)}).Decode(t, &tb)
	got := map[string]string{}
	for _, row := range tb.TrialBalance.Rows {
		got[row.Account.Code] = row.Balance
	}
	harness.Must(t, tb.TrialBalance.TotalDebit == tb.TrialBalance.TotalCredit, "trial balance %+v", tb)
	for code, want := range map[string]string{"1090": "0.00", "1100": "0.00", "1110": "0.00", "4100": "50.00", "4200": "30.00",
		"4300": "6.00", "5300": "2.00", "1030": "18.00", "1010": "66.00"} {
		harness.Must(t, got[code] == want || (want == "0.00" && got[code] == ""), "account %s = %q, want %s (all %v)", code, got[code], want, got)
	}
}
