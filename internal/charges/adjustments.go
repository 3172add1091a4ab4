package charges

import (
	"context"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoiceadjustment"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/store"
)

// PostRemittance settles an invoice by its claim's remittance, in the
// transaction that records it (insurance calls it through OnRemitted):
// what the payer paid is an INSURANCE_REMITTANCE payment on the invoice,
// and what it did not pay is adjusted line by line. An adjustment whose
// code is in the patient-responsibility group (PR-…, as in the X12 835
// remittance advice) moves to the patient's balance; any other (CO-…
// contractual, OA-…, PI-…) is written off against claim adjustments.
//
// A claim a clerk drafted by hand has no invoice: its remittance is
// recorded on the claim alone, and finance posts its money by hand.
func (s *Service) PostRemittance(ctx context.Context, tx *ent.Tx, cl *ent.Claim) error {
	if cl.InvoiceID == nil {
		return nil
	}
	actor := auth.FromContext(ctx).ActorID()
	var paid int64
	if cl.TotalPaid != nil {
		paid = *cl.TotalPaid
	}
	if paid > 0 {
		if _, err := s.receive(ctx, tx, receipt{patientID: cl.PatientID, method: payment.MethodINSURANCE_REMITTANCE, amount: paid,
			key: "remittance:" + cl.ID, reference: cl.RemittanceReference, allocations: []PaymentAllocationInput{{InvoiceID: *cl.InvoiceID, Amount: paid}},
			recordedBy: actor, claimID: &cl.ID, payer: ledger.PayerInsurer}); err != nil {
			return err
		}
	}
	lines, err := tx.ClaimLine.Query().Where(claimline.ClaimID(cl.ID), claimline.AdjustmentGT(0)).
		Order(claimline.ByPosition()).All(ctx)
	if err != nil {
		return err
	}
	for _, l := range lines {
		kind := invoiceadjustment.KindPAYER_WRITE_OFF
		if l.AdjustmentCode != nil && strings.HasPrefix(*l.AdjustmentCode, "PR") {
			kind = invoiceadjustment.KindMOVED_TO_PATIENT
		}
		if err := s.adjust(ctx, tx, *cl.InvoiceID, adjustment{kind: kind, amount: *l.Adjustment, claimID: &cl.ID,
			code: l.AdjustmentCode, recordedBy: actor}); err != nil {
			return err
		}
	}
	return nil
}

type adjustment struct {
	kind       invoiceadjustment.Kind
	amount     int64
	claimID    *string
	code       *string
	reason     *string
	recordedBy string
}

// adjust records an adjustment of an issued invoice, settles the invoice
// and posts the adjustment.
func (s *Service) adjust(ctx context.Context, tx *ent.Tx, invoiceID string, a adjustment) error {
	inv, err := tx.Invoice.Get(ctx, invoiceID)
	if err != nil {
		return err
	}
	if inv.Status == invoice.StatusDRAFT || inv.Status == invoice.StatusVOID {
		return apperr.Conflictf("the invoice is %s; only an issued invoice is adjusted", inv.Status)
	}
	limit := PayerBalance(inv)
	if a.kind == invoiceadjustment.KindBAD_DEBT {
		limit = PatientBalance(inv)
	}
	if a.amount > limit {
		return apperr.BadInput("input.amount", "exceeds what is owed (%s)", input.FormatMoney(limit))
	}
	adj, err := tx.InvoiceAdjustment.Create().SetPatientID(inv.PatientID).SetInvoiceID(inv.ID).SetKind(a.kind).
		SetAmount(a.amount).SetNillableClaimID(a.claimID).SetNillableCode(a.code).SetNillableReason(a.reason).
		SetRecordedByID(a.recordedBy).Save(ctx)
	if err != nil {
		return err
	}
	now := input.Stored(s.now())
	switch a.kind {
	case invoiceadjustment.KindPAYER_WRITE_OFF:
		_, err = s.books.ClaimAdjustment(ctx, tx, adj.ID, now, a.amount, 0)
	case invoiceadjustment.KindMOVED_TO_PATIENT:
		_, err = s.books.ClaimAdjustment(ctx, tx, adj.ID, now, 0, a.amount)
	case invoiceadjustment.KindBAD_DEBT:
		_, err = s.books.WriteOff(ctx, tx, adj.ID, now, ledger.PayerPatient, a.amount)
	}
	if err != nil {
		return err
	}
	return s.settle(ctx, tx, inv, func(u *ent.InvoiceUpdateOne, inv *ent.Invoice) {
		switch a.kind {
		case invoiceadjustment.KindPAYER_WRITE_OFF:
			u.AddPayerAdjusted(a.amount)
			inv.PayerAdjusted += a.amount
		case invoiceadjustment.KindMOVED_TO_PATIENT:
			u.AddMovedToPatient(a.amount)
			inv.MovedToPatient += a.amount
		case invoiceadjustment.KindBAD_DEBT:
			u.AddWrittenOff(a.amount)
			inv.WrittenOff += a.amount
		}
	})
}

// AdjustInvoiceInput is the input of adjustInvoice.
type AdjustInvoiceInput struct {
	InvoiceID string
	Kind      invoiceadjustment.Kind
	Amount    int64
	Reason    string
}

// financeStaff settle what payments do not: a denied claim's share moved
// to the patient or written off, a patient's debt written off.
var financeStaff = []staff.Kind{staff.KindBILLING_CLERK, staff.KindADMINISTRATOR}

// AdjustInvoice settles part of an issued invoice without money: the
// payers' share that a denied claim leaves is moved to the patient
// (MOVED_TO_PATIENT) or written off (PAYER_WRITE_OFF), or the patient's
// balance is written off as bad debt (BAD_DEBT). A reason is required.
func (s *Service) AdjustInvoice(ctx context.Context, in AdjustInvoiceInput) (*ent.Invoice, error) {
	var c input.Checker
	c.ID("input.invoiceId", in.InvoiceID, input.Invoice)
	why := c.Text("input.reason", in.Reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if err := invoiceadjustment.KindValidator(in.Kind); err != nil {
		return nil, apperr.BadInput("input.kind", "is not an adjustment kind")
	}
	if in.Amount <= 0 || in.Amount > MaxPayment {
		return nil, apperr.BadInput("input.amount", "must be positive and at most %s", input.FormatMoney(MaxPayment))
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Invoice, error) {
		who, err := auth.ActingStaff(ctx, tx.Staff, "adjust invoices", financeStaff...)
		if err != nil {
			return nil, err
		}
		inv, err := lockedInvoice(ctx, tx, in.InvoiceID)
		if err != nil {
			return nil, err
		}
		if err := s.adjust(ctx, tx, inv.ID, adjustment{kind: in.Kind, amount: in.Amount, reason: &why, recordedBy: who.ID}); err != nil {
			return nil, err
		}
		return tx.Invoice.Get(ctx, inv.ID)
	})
}
