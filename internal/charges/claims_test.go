package charges

import (
	"context"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/claim"
	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/tariff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/insurance"
	"github.com/hmis-dev/hmis/internal/store"
)

// An insured patient's invoice: a dispensing with a return is claimed for
// what the patient kept; voiding cancels the draft claim and the reissue
// drafts a new one; the remittance pays the invoice, moves a PR adjustment
// to the patient, and a settled claim keeps the invoice from being voided.
func TestInvoiceClaimsFollowTheSplitAndTheRemittanceSettlesIt(t *testing.T) {
	f := setup(t)
	claims := insurance.NewService(f.st, time.UTC)
	claims.OnRemitted(f.svc.PostRemittance)
	p := f.patient()
	f.insure(p) // items: 70 % after a 1.00 co-payment a line
	f.price("ITEM-A", tariff.CategoryITEM, "", 1999)
	capture := func(c newCharge) {
		t.Helper()
		c.patientID, c.category, c.at = p.ID, tariff.CategoryITEM, f.now
		if _, err := store.Tx(f.sys, f.st, func(ctx context.Context, tx *ent.Tx) (*ent.Charge, error) { return f.svc.insert(ctx, tx, c) }); err != nil {
			t.Fatal(err)
		}
	}
	capture(newCharge{source: charge.SourceTypeDISPENSING, sourceID: "dsp_1", code: "DRUG-X", description: "X", unitPrice: 200, quantity: 10})
	capture(newCharge{source: charge.SourceTypeDISPENSING_RETURN, sourceID: "dsp_1", day: "evt_1", code: "DRUG-X", description: "Returned: X", unitPrice: 200, quantity: -4})
	if _, err := f.svc.AddManual(f.clerk, AddManualChargeInput{PatientID: p.ID, TariffCode: "ITEM-A", Quantity: 1}); err != nil {
		t.Fatal(err)
	}
	issue := func() *ent.Invoice {
		t.Helper()
		day := f.now
		inv, err := f.svc.CreateInvoice(f.clerk, CreateInvoiceInput{PatientID: p.ID, PeriodFrom: &day, PeriodTo: &day})
		if err != nil {
			t.Fatal(err)
		}
		if inv, err = f.svc.Issue(f.clerk, inv.ID); err != nil {
			t.Fatal(err)
		}
		return inv
	}
	inv := issue()
	// 6 units kept: 12.00 less 1.00 at 70 % = 7.70; ITEM-A 19.99 less 1.00 at 70 % = 13.29.
	if inv.Subtotal != 3199 || inv.PayerTotal != 2099 || inv.PatientTotal != 1100 || inv.Status != invoice.StatusISSUED {
		t.Fatalf("issued %+v", inv)
	}
	first := f.c.Claim.Query().Where(claim.InvoiceID(inv.ID)).WithLines(func(q *ent.ClaimLineQuery) { q.Order(claimline.ByPosition()) }).OnlyX(f.sys)
	if first.TotalClaimed != 2099 || len(first.Edges.Lines) != 2 || first.Edges.Lines[0].Quantity != 6 || first.Edges.Lines[0].AmountClaimed != 770 {
		t.Fatalf("claim %+v lines %+v", first, first.Edges.Lines)
	}

	if _, err := f.svc.Void(f.clerk, inv.ID, "wrong period"); err != nil {
		t.Fatal(err)
	}
	if got := f.c.Claim.GetX(f.sys, first.ID); got.Status != claim.StatusCANCELLED {
		t.Fatalf("the void left the draft claim %s", got.Status)
	}
	inv = issue()
	cl := f.c.Claim.Query().Where(claim.InvoiceID(inv.ID)).OnlyX(f.sys)
	if cl.ID == first.ID || cl.TotalClaimed != 2099 || inv.PayerTotal != 2099 {
		t.Fatalf("reissued: %+v, claim %+v", inv, cl)
	}

	if _, err := claims.SubmitClaim(f.clerk, cl.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Void(f.clerk, inv.ID, "x"); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("voiding behind a submitted claim: %v", err)
	}
	lines := f.c.ClaimLine.Query().Where(claimline.ClaimID(cl.ID)).Order(claimline.ByPosition()).AllX(f.sys)
	pr := "PR-1"
	if _, err := claims.AdjudicateClaim(f.clerk, cl.ID, insurance.AdjudicateClaimInput{Lines: []insurance.ClaimLineDecisionInput{
		{LineID: lines[0].ID, AmountApproved: 770}, {LineID: lines[1].ID, AmountApproved: 1000, ReasonCode: &pr}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := claims.RecordRemittance(f.clerk, cl.ID, insurance.RecordRemittanceInput{Reference: "RA-1", Lines: []insurance.RemittanceLineInput{
		{LineID: lines[0].ID, AmountPaid: 770}, {LineID: lines[1].ID, AmountPaid: 1000}}}); err != nil {
		t.Fatal(err)
	}
	inv = f.c.Invoice.GetX(f.sys, inv.ID)
	if PayerBalance(inv) != 0 || inv.PayerPaid != 1770 || inv.MovedToPatient != 329 || PatientBalance(inv) != 1429 || inv.Status != invoice.StatusPARTIALLY_PAID {
		t.Fatalf("after the remittance %+v", inv)
	}
	remitted := f.c.Payment.Query().Where(payment.ClaimID(cl.ID)).OnlyX(f.sys)
	if remitted.Method != payment.MethodINSURANCE_REMITTANCE || remitted.Amount != 1770 {
		t.Fatalf("remittance payment %+v", remitted)
	}
	if _, err := f.svc.RecordPayment(f.clerk, RecordPaymentInput{PatientID: p.ID, InvoiceID: &inv.ID, Method: payment.MethodCASH,
		Amount: 1429, IdempotencyKey: "rest"}); err != nil {
		t.Fatal(err)
	}
	if got := f.c.Invoice.GetX(f.sys, inv.ID); got.Status != invoice.StatusPAID || got.Paid != 1770+1429 {
		t.Fatalf("paid %+v", got)
	}
}
