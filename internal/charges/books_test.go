package charges

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoiceadjustment"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/refund"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/tariff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/ledger"
)

// insure gives p a policy of a plan covering 70 % of items with a 1.00
// co-payment a line.
func (f *fixture) insure(p *ent.Patient) {
	f.t.Helper()
	f.seq++
	py := f.c.Payer.Create().SetCode(fmt.Sprintf("PAY%d", f.seq)).SetName("Payer").SetKind(payer.KindINSURER).SaveX(f.sys)
	pl := f.c.InsurancePlan.Create().SetPayerID(py.ID).SetCode(fmt.Sprintf("PLAN%d", f.seq)).SetName("Plan").SaveX(f.sys)
	v := f.c.PlanVersion.Create().SetPlanID(pl.ID).SetEffectiveFrom(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)).SaveX(f.sys)
	f.c.CoverageRule.Create().SetVersionID(v.ID).SetCategory("ITEM").SetCoveredPercent(70).SetLineCopay(100).ExecX(f.sys)
	f.c.InsurancePolicy.Create().SetPatientID(p.ID).SetPayer("Payer").SetMemberNumber("M1").
		SetValidFrom(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)).SetPlanID(pl.ID).ExecX(f.sys)
}

// approver is a second clerk, who may approve the first one's discounts.
func (f *fixture) approver() context.Context {
	m := f.c.Staff.Create().SetGivenName("A").SetFamilyName("Approver").SetKind(staff.KindBILLING_CLERK).SetDepartment(f.dep).SaveX(f.sys)
	return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + m.ID[4:], Username: "approver", Roles: []string{"finance_officer"}, StaffID: m.ID})
}

// TestLedgerReconcilesWithBillingAfterRandomOperations runs four hundred
// random billing operations — charges, reversals, invoices with discounts
// and insurance, payments spread over invoices, credit applied and
// refunded, refunds of payments, voids, remittance-like adjustments and
// bad debt — and then checks the books against billing's own records: the
// trial balance sums to zero, unbilled services are the active charges on
// no issued invoice, the patients' and insurers' receivables are the
// invoices' balances, and deposits are the patients' credit.
func TestLedgerReconcilesWithBillingAfterRandomOperations(t *testing.T) {
	f := setup(t)
	f.svc.SetTaxRate(750)
	books := ledger.NewService(f.st, time.UTC)
	second := f.approver()
	f.price("ITEM-A", tariff.CategoryITEM, "", 1999)
	f.price("ITEM-B", tariff.CategoryITEM, "", 25050)
	patients := []*ent.Patient{f.patient(), f.patient(), f.patient()}
	f.insure(patients[0])
	f.insure(patients[1])
	rng := rand.New(rand.NewPCG(7, 11))
	pick := func(xs []string) string { return xs[rng.IntN(len(xs))] }
	key := 0
	next := func() string { key++; return fmt.Sprintf("k%d", key) }
	refused := 0
	for i := 0; i < 400; i++ {
		p := patients[rng.IntN(len(patients))]
		var err error
		issued := f.c.Invoice.Query().Where(invoice.PatientID(p.ID), invoice.StatusIn(invoice.StatusISSUED, invoice.StatusPARTIALLY_PAID)).IDsX(f.sys)
		drafts := f.c.Invoice.Query().Where(invoice.PatientID(p.ID), invoice.StatusEQ(invoice.StatusDRAFT)).IDsX(f.sys)
		switch op := rng.IntN(16); {
		case op <= 2:
			_, err = f.svc.AddManual(f.clerk, AddManualChargeInput{PatientID: p.ID, TariffCode: pick([]string{"ITEM-A", "ITEM-B"}), Quantity: 1 + rng.IntN(3)})
		case op == 3:
			if ids := f.c.Charge.Query().Where(charge.PatientID(p.ID), charge.InvoiceIDIsNil(), charge.StatusEQ(charge.StatusACTIVE)).IDsX(f.sys); len(ids) > 0 {
				_, err = f.svc.Reverse(f.clerk, pick(ids), "wrong")
			}
		case op == 4:
			day := f.now
			var inv *ent.Invoice
			if inv, err = f.svc.CreateInvoice(f.clerk, CreateInvoiceInput{PatientID: p.ID, PeriodFrom: &day, PeriodTo: &day}); err == nil && rng.IntN(2) == 0 {
				var d *ent.InvoiceDiscount
				if d, err = f.svc.RequestDiscount(f.clerk, RequestInvoiceDiscountInput{InvoiceID: inv.ID, Amount: 1 + rng.Int64N(500), Reason: "x"}); err == nil {
					_, err = f.svc.ApproveDiscount(second, d.ID)
				}
			}
		case op == 5 && len(drafts) > 0:
			_, err = f.svc.Issue(f.clerk, pick(drafts))
		case op == 6 || op >= 11:
			hold := rng.IntN(2) == 0
			in := RecordPaymentInput{PatientID: p.ID, Method: payment.MethodCASH, Amount: 1 + rng.Int64N(20000), IdempotencyKey: next(), HoldExcessAsCredit: &hold}
			if len(issued) > 0 && rng.IntN(3) > 0 {
				id := pick(issued)
				in.InvoiceID = &id
			}
			_, err = f.svc.RecordPayment(f.clerk, in)
		case op == 7 && len(issued) > 0:
			_, err = f.svc.ApplyCredit(f.clerk, ApplyCreditInput{InvoiceID: pick(issued), Amount: 1 + rng.Int64N(3000), IdempotencyKey: next()})
		case op == 8:
			in := RefundPaymentInput{PatientID: p.ID, Method: refund.MethodCASH, Amount: 1 + rng.Int64N(3000), Reason: "x", IdempotencyKey: next()}
			if ps := f.c.Payment.Query().Where(payment.PatientID(p.ID), payment.AllocatedGT(0), payment.MethodEQ(payment.MethodCASH)).IDsX(f.sys); len(ps) > 0 && rng.IntN(2) == 0 {
				id := pick(ps)
				in.PaymentID = &id
			}
			_, err = f.svc.Refund(f.clerk, in)
		case op == 9 && len(issued) > 0:
			kind := []invoiceadjustment.Kind{invoiceadjustment.KindBAD_DEBT, invoiceadjustment.KindPAYER_WRITE_OFF, invoiceadjustment.KindMOVED_TO_PATIENT}[rng.IntN(3)]
			_, err = f.svc.AdjustInvoice(f.clerk, AdjustInvoiceInput{InvoiceID: pick(issued), Kind: kind, Amount: 1 + rng.Int64N(2000), Reason: "x"})
		case op == 10 && rng.IntN(2) == 0:
			all := append(append([]string{}, issued...), drafts...)
			if len(all) > 0 {
				_, err = f.svc.Void(f.clerk, pick(all), "redo")
			}
		}
		if err != nil {
			// Refusals are part of the walk (more than a balance, a paid
			// invoice voided); they must be the API's refusals, not faults.
			if c := apperr.CodeOf(err); c != apperr.BadUserInput && c != apperr.Conflict {
				t.Fatalf("step %d: %v", i, err)
			}
			refused++
		}
	}
	tb, err := books.TrialBalance(f.sys, f.now.AddDate(0, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range tb.Rows {
		got[r.Account.Code] = r.Balance
	}
	if tb.TotalDebit != tb.TotalCredit {
		t.Fatalf("trial balance %d / %d", tb.TotalDebit, tb.TotalCredit)
	}
	// Billing's own view of the same money, computed from its rows.
	var unbilled, patientOwes, payersOwe, credit int64
	for _, c := range f.c.Charge.Query().Where(charge.StatusEQ(charge.StatusACTIVE)).WithInvoice().AllX(f.sys) {
		if c.Edges.Invoice == nil || c.Edges.Invoice.Status == invoice.StatusDRAFT || c.Edges.Invoice.Status == invoice.StatusVOID {
			unbilled += c.Amount
		}
	}
	statuses := map[invoice.Status]int{}
	for _, inv := range f.c.Invoice.Query().AllX(f.sys) {
		statuses[inv.Status]++
		patientOwes += PatientBalance(inv)
		payersOwe += PayerBalance(inv)
	}
	for _, p := range patients {
		c, err := Credit(f.sys, f.c.Payment, f.c.Refund, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if c < 0 {
			t.Errorf("patient %s holds negative credit %d", p.ID, c)
		}
		credit += c
	}
	want := map[string]int64{ledger.UnbilledReceivables: unbilled, ledger.PatientReceivables: patientOwes,
		ledger.InsurerReceivables: payersOwe, ledger.PatientDeposits: credit}
	for code, w := range want {
		if got[code] != w {
			t.Errorf("account %s = %d, billing says %d", code, got[code], w)
		}
	}
	// The walk must have reached the states it is meant to test.
	if statuses[invoice.StatusPAID] == 0 || statuses[invoice.StatusPARTIALLY_PAID]+statuses[invoice.StatusISSUED] == 0 ||
		statuses[invoice.StatusVOID] == 0 || payersOwe == 0 && got[ledger.ClaimAdjustments] == 0 || refused > 250 {
		t.Fatalf("the walk is too narrow: %v, payers owe %d, %d refused", statuses, payersOwe, refused)
	}
	t.Logf("invoices %v; unbilled %d, patients owe %d, payers owe %d, credit %d; %d refusals", statuses, unbilled, patientOwes, payersOwe, credit, refused)
}
