package charges

import (
	"context"
	"strconv"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/paymentallocation"
	"github.com/hmis-dev/hmis/ent/refund"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// PaymentRecorded is the event type on Topic of a payment.
const PaymentRecorded = "PAYMENT_RECORDED"

// PaymentEvent is the payload of PaymentRecorded: IDs and amounts.
type PaymentEvent struct {
	PaymentID  string   `json:"paymentId"`
	PatientID  string   `json:"patientId"`
	InvoiceIDs []string `json:"invoiceIds,omitempty"`
	Method     string   `json:"method"`
	Amount     int64    `json:"amount"`
	Allocated  int64    `json:"allocated"`
	Credited   int64    `json:"credited"`
}

// PaymentAllocationInput is the part of a payment that goes to one invoice.
type PaymentAllocationInput struct {
	InvoiceID string
	Amount    int64
}

// RecordPaymentInput is the input of recordPayment.
type RecordPaymentInput struct {
	PatientID          string
	InvoiceID          *string
	Allocations        []*PaymentAllocationInput
	Method             payment.Method
	Amount             int64
	IdempotencyKey     string
	Reference          *string
	HoldExcessAsCredit *bool
}

// cashiers take money.
var cashiers = []staff.Kind{staff.KindBILLING_CLERK, staff.KindADMINISTRATOR}

// MaxAllocations bounds the invoices one payment is spread over.
const MaxAllocations = 50

// receipt is a payment about to be recorded, whoever takes it.
type receipt struct {
	patientID   string
	method      payment.Method
	amount      int64
	key         string
	reference   *string
	allocations []PaymentAllocationInput
	// toBalance: the whole payment goes to this invoice, up to its
	// balance; the rest is credit (if hold) or refused.
	toBalance  *string
	hold       bool
	recordedBy string
	claimID    *string
	// payer: whose balance the payment settles (an insurer's remittance
	// settles the payers' share).
	payer ledger.Payer
}

// RecordPayment records money received. A payment whose idempotency key
// was recorded before is not recorded again: the first one is returned, so
// a client retrying after a lost answer pays once; the same key with other
// content is refused. The payment goes to one invoice (invoiceId, up to its
// balance), to several (allocations), or to none (a deposit). More than
// the invoices' balances is refused unless the excess is explicitly held
// as credit.
func (s *Service) RecordPayment(ctx context.Context, in RecordPaymentInput) (*ent.Payment, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.invoiceId", in.InvoiceID, input.Invoice)
	key := c.Text("input.idempotencyKey", in.IdempotencyKey, 100)
	ref := c.OptionalText("input.reference", in.Reference, 100)
	allocs := make([]PaymentAllocationInput, 0, len(in.Allocations))
	if len(in.Allocations) > MaxAllocations {
		c.Fail(apperr.BadInput("input.allocations", "must hold at most %d invoices", MaxAllocations))
	}
	for i, a := range in.Allocations {
		f := "input.allocations[" + strconv.Itoa(i) + "]"
		if a == nil {
			c.Fail(apperr.BadInput(f, "must not be null"))
			continue
		}
		c.ID(f+".invoiceId", a.InvoiceID, input.Invoice)
		if c.Err() == nil && (a.Amount <= 0 || a.Amount > MaxPayment) {
			c.Fail(apperr.BadInput(f+".amount", "must be positive and at most %s", input.FormatMoney(MaxPayment)))
		}
		allocs = append(allocs, *a)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	if in.InvoiceID != nil && len(allocs) > 0 {
		return nil, apperr.BadInput("input.allocations", "give invoiceId or allocations, not both")
	}
	if err := payment.MethodValidator(in.Method); err != nil || in.Method == payment.MethodCREDIT || in.Method == payment.MethodINSURANCE_REMITTANCE {
		return nil, apperr.BadInput("input.method", "is not a method money is received by here (credit is applied with applyCredit, remittances with recordRemittance)")
	}
	if in.Amount <= 0 || in.Amount > MaxPayment {
		return nil, apperr.BadInput("input.amount", "must be positive and at most %s", input.FormatMoney(MaxPayment))
	}
	if err := clientKey(key); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Payment, error) {
		cashier, err := auth.ActingStaff(ctx, tx.Staff, "record payments", cashiers...)
		if err != nil {
			return nil, err
		}
		return s.receive(ctx, tx, receipt{patientID: in.PatientID, method: in.Method, amount: in.Amount, key: key,
			reference: ref, allocations: allocs, toBalance: in.InvoiceID, hold: in.HoldExcessAsCredit != nil && *in.HoldExcessAsCredit,
			recordedBy: cashier.ID, payer: ledger.PayerPatient})
	})
}

// ApplyCreditInput is the input of applyCredit.
type ApplyCreditInput struct {
	InvoiceID      string
	Amount         int64
	IdempotencyKey string
}

// ApplyCredit pays an invoice's patient balance from the patient's credit:
// a payment by CREDIT, which moves no money.
func (s *Service) ApplyCredit(ctx context.Context, in ApplyCreditInput) (*ent.Payment, error) {
	var c input.Checker
	c.ID("input.invoiceId", in.InvoiceID, input.Invoice)
	key := c.Text("input.idempotencyKey", in.IdempotencyKey, 100)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if in.Amount <= 0 || in.Amount > MaxPayment {
		return nil, apperr.BadInput("input.amount", "must be positive and at most %s", input.FormatMoney(MaxPayment))
	}
	if err := clientKey(key); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Payment, error) {
		cashier, err := auth.ActingStaff(ctx, tx.Staff, "apply credit", cashiers...)
		if err != nil {
			return nil, err
		}
		inv, err := tx.Invoice.Get(ctx, in.InvoiceID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.invoiceId", "no such invoice")
		} else if err != nil {
			return nil, err
		}
		return s.receive(ctx, tx, receipt{patientID: inv.PatientID, method: payment.MethodCREDIT, amount: in.Amount, key: key,
			allocations: []PaymentAllocationInput{{InvoiceID: inv.ID, Amount: in.Amount}}, recordedBy: cashier.ID, payer: ledger.PayerPatient})
	})
}

// OnlinePayment is a patient's payment that a payment provider confirmed.
type OnlinePayment struct {
	PatientID string
	InvoiceID string
	Method    payment.Method
	Amount    int64
	// Provider and ProviderReference name the provider's transaction;
	// together they are the payment's idempotency key, so a confirmation
	// delivered twice records one payment.
	Provider          string
	ProviderReference string
}

// ReceiveOnlinePayment records a payment a provider confirmed for the
// patient's invoice. The caller has checked the provider's signature; the
// payment is recorded by the provider, not by a person, and goes to the
// invoice up to its balance, the rest held as credit (the money has moved
// already and cannot be refused).
func (s *Service) ReceiveOnlinePayment(ctx context.Context, p OnlinePayment) (*ent.Payment, error) {
	if p.Amount <= 0 || p.Amount > MaxPayment {
		return nil, apperr.BadInput("amount", "must be positive and at most %s", input.FormatMoney(MaxPayment))
	}
	if p.Method != payment.MethodCARD && p.Method != payment.MethodMOBILE_MONEY {
		return nil, apperr.BadInput("method", "an online payment is by card or mobile money")
	}
	key := "online:" + p.Provider + ":" + p.ProviderReference
	if len(key) > 100 || p.Provider == "" || p.ProviderReference == "" {
		return nil, apperr.BadInput("providerReference", "must be given and short")
	}
	ref := p.ProviderReference
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Payment, error) {
		r := receipt{patientID: p.PatientID, method: p.Method, amount: p.Amount, key: key, reference: &ref,
			toBalance: &p.InvoiceID, hold: true, recordedBy: "provider:" + p.Provider, payer: ledger.PayerPatient}
		// The invoice may have been paid at the till or voided while the
		// patient was paying: the money has moved, so it is kept as the
		// patient's credit rather than refused.
		// A provider's reference is one transaction of theirs, signed by
		// them: a second confirmation of it is the same payment.
		if _, err := patients.Lock(ctx, tx, "patientId", p.PatientID); err != nil {
			return nil, err
		}
		if prev, err := tx.Payment.Query().Where(payment.IdempotencyKey(key)).Only(ctx); err == nil {
			if prev.PatientID != p.PatientID || prev.Amount != p.Amount {
				return nil, apperr.BadInput("providerReference", "confirms another payment")
			}
			return prev, nil
		} else if !ent.IsNotFound(err) {
			return nil, err
		}
		inv, err := tx.Invoice.Get(ctx, p.InvoiceID)
		if err != nil && !ent.IsNotFound(err) {
			return nil, err
		}
		if inv == nil || inv.PatientID != p.PatientID ||
			(inv.Status != invoice.StatusISSUED && inv.Status != invoice.StatusPARTIALLY_PAID) || PatientBalance(inv) <= 0 {
			r.toBalance = nil
		}
		return s.receive(ctx, tx, r)
	})
}

// receive records a payment in tx under the patient's lock and posts it.
func (s *Service) receive(ctx context.Context, tx *ent.Tx, r receipt) (*ent.Payment, error) {
	// The patient's lock orders two retries of one payment: the second
	// finds the first's row.
	if _, err := patients.Lock(ctx, tx, "input.patientId", r.patientID); err != nil {
		return nil, err
	}
	if prev, err := tx.Payment.Query().Where(payment.IdempotencyKey(r.key)).WithAllocations().Only(ctx); err == nil {
		if !sameReceipt(prev, r) {
			return nil, apperr.BadInput("input.idempotencyKey", "was used for another payment")
		}
		return prev, nil
	} else if !ent.IsNotFound(err) {
		return nil, err
	}
	allocs := r.allocations
	if r.toBalance != nil {
		inv, err := s.payableInvoice(ctx, tx, "input.invoiceId", *r.toBalance, r.patientID)
		if err != nil {
			return nil, err
		}
		a := min(r.amount, s.balance(inv, r.payer))
		if a <= 0 {
			return nil, apperr.Conflictf("the invoice has no balance left to pay")
		}
		allocs = []PaymentAllocationInput{{InvoiceID: inv.ID, Amount: a}}
	}
	var allocated int64
	seen := map[string]bool{}
	invoices := make([]*ent.Invoice, len(allocs))
	for i, a := range allocs {
		f := "input.allocations[" + strconv.Itoa(i) + "]"
		invoiceField, amountField := f+".invoiceId", f+".amount"
		if r.toBalance != nil {
			invoiceField, amountField = "input.invoiceId", "input.amount"
		}
		if seen[a.InvoiceID] {
			return nil, apperr.BadInput(invoiceField, "names an invoice twice")
		}
		seen[a.InvoiceID] = true
		inv, err := s.payableInvoice(ctx, tx, invoiceField, a.InvoiceID, r.patientID)
		if err != nil {
			return nil, err
		}
		if b := s.balance(inv, r.payer); a.Amount > b {
			return nil, apperr.BadInput(amountField, "exceeds the invoice's balance (%s)", input.FormatMoney(b))
		}
		allocated += a.Amount
		invoices[i] = inv
	}
	if allocated > r.amount {
		return nil, apperr.BadInput("input.allocations", "allocate more (%s) than the payment (%s)", input.FormatMoney(allocated), input.FormatMoney(r.amount))
	}
	credited := r.amount - allocated
	if r.method == payment.MethodCREDIT {
		have, err := Credit(ctx, tx.Payment, tx.Refund, r.patientID)
		if err != nil {
			return nil, err
		}
		if r.amount > have {
			return nil, apperr.BadInput("input.amount", "exceeds the patient's credit (%s)", input.FormatMoney(have))
		}
	} else if deposit := len(allocs) == 0 && r.toBalance == nil; credited > 0 && !r.hold && !deposit {
		return nil, apperr.BadInput("input.amount", "exceeds what it pays (%s); set holdExcessAsCredit to keep the excess as credit", input.FormatMoney(allocated))
	}
	out, err := tx.Payment.Create().SetPatientID(r.patientID).SetMethod(r.method).SetAmount(r.amount).
		SetIdempotencyKey(r.key).SetNillableReference(r.reference).SetRecordedByID(r.recordedBy).
		SetReceivedAt(input.Stored(s.now())).SetNillableClaimID(r.claimID).SetAllocated(allocated).SetCredited(credited).Save(ctx)
	if ent.IsConstraintError(err) {
		// The key's first use was for another patient, at the same moment.
		return nil, apperr.BadInput("input.idempotencyKey", "was used for another payment")
	} else if err != nil {
		return nil, err
	}
	ids := make([]string, len(allocs))
	for i, a := range allocs {
		ids[i] = a.InvoiceID
		if err := tx.PaymentAllocation.Create().SetPatientID(r.patientID).SetPaymentID(out.ID).SetInvoiceID(a.InvoiceID).
			SetAmount(a.Amount).Exec(ctx); err != nil {
			return nil, err
		}
		if err := s.settle(ctx, tx, invoices[i], func(u *ent.InvoiceUpdateOne, inv *ent.Invoice) {
			u.AddPaid(a.Amount)
			inv.Paid += a.Amount
			if r.payer == ledger.PayerInsurer {
				u.AddPayerPaid(a.Amount)
				inv.PayerPaid += a.Amount
			} else {
				u.AddPatientPaid(a.Amount)
				inv.PatientPaid += a.Amount
			}
		}); err != nil {
			return nil, err
		}
	}
	if _, err := s.books.PaymentReceived(ctx, tx, ledger.Payment{ID: out.ID, Date: out.ReceivedAt, Method: ledger.Method(r.method),
		Payer: r.payer, Applied: allocated, HeldAsCredit: credited}); err != nil {
		return nil, err
	}
	return out, events.Record(ctx, tx, Topic, PaymentRecorded, PaymentEvent{
		PaymentID: out.ID, PatientID: out.PatientID, InvoiceIDs: ids, Method: string(out.Method),
		Amount: out.Amount, Allocated: allocated, Credited: credited,
	})
}

// sameReceipt tells whether a payment recorded under a key is the one a
// retry with that key describes.
func sameReceipt(p *ent.Payment, r receipt) bool {
	if p.PatientID != r.patientID || p.Amount != r.amount || p.Method != r.method {
		return false
	}
	if p.Credited > 0 && !r.hold && (r.toBalance != nil || len(r.allocations) > 0) {
		return false // without holdExcessAsCredit the retry would not have kept an excess as credit
	}
	if r.toBalance != nil {
		return len(p.Edges.Allocations) == 1 && p.Edges.Allocations[0].InvoiceID == *r.toBalance
	}
	if len(p.Edges.Allocations) != len(r.allocations) {
		return false
	}
	want := map[string]int64{}
	for _, a := range r.allocations {
		want[a.InvoiceID] = a.Amount
	}
	for _, a := range p.Edges.Allocations {
		if want[a.InvoiceID] != a.Amount {
			return false
		}
	}
	return true
}

// clientKey refuses a client's idempotency key in the spaces billing keys
// its own payments by, so that no client can take a remittance's or a
// provider's key before it arrives.
func clientKey(key string) error {
	for _, reserved := range []string{"remittance:", "online:"} {
		if strings.HasPrefix(strings.ToLower(key), reserved) {
			return apperr.BadInput("input.idempotencyKey", "must not start with %q, which billing keeps for its own payments", reserved)
		}
	}
	return nil
}

// payableInvoice reads an invoice of the patient that takes payments.
func (s *Service) payableInvoice(ctx context.Context, tx *ent.Tx, field, id, patientID string) (*ent.Invoice, error) {
	inv, err := tx.Invoice.Get(ctx, id)
	if ent.IsNotFound(err) || (err == nil && inv.PatientID != patientID) {
		return nil, apperr.BadInput(field, "no such invoice of this patient")
	} else if err != nil {
		return nil, err
	}
	if inv.Status != invoice.StatusISSUED && inv.Status != invoice.StatusPARTIALLY_PAID {
		return nil, apperr.Conflictf("the invoice is %s; only an issued one with a balance takes payments", inv.Status)
	}
	return inv, nil
}

// balance is what payer still owes on an invoice.
func (s *Service) balance(inv *ent.Invoice, payer ledger.Payer) int64 {
	if payer == ledger.PayerInsurer {
		return PayerBalance(inv)
	}
	return PatientBalance(inv)
}

// settle changes an invoice's amounts and sets the status they give it,
// conditional on the amounts read: the patient's lock makes a race
// impossible, and the condition proves it.
func (s *Service) settle(ctx context.Context, tx *ent.Tx, inv *ent.Invoice, change func(*ent.InvoiceUpdateOne, *ent.Invoice)) error {
	u := tx.Invoice.UpdateOne(inv).Where(invoice.Paid(inv.Paid), invoice.StatusEQ(inv.Status), invoice.WrittenOff(inv.WrittenOff),
		invoice.PayerAdjusted(inv.PayerAdjusted), invoice.MovedToPatient(inv.MovedToPatient))
	next := *inv
	change(u, &next)
	if err := u.SetStatus(settled(&next)).Exec(ctx); err != nil {
		return changedMeanwhile(err)
	}
	*inv = next
	inv.Status = settled(&next)
	return nil
}

// Credit is what a patient holds as credit: deposits and overpayments
// kept, less the credit applied to invoices and refunded.
func Credit(ctx context.Context, payments *ent.PaymentClient, refunds *ent.RefundClient, patientID string) (int64, error) {
	ps, err := payments.Query().Where(payment.PatientID(patientID)).All(ctx)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range ps {
		sum += p.Credited
		if p.Method == payment.MethodCREDIT {
			sum -= p.Amount
		}
	}
	rs, err := refunds.Query().Where(refund.PatientID(patientID), refund.Or(refund.PaymentIDIsNil(), refund.MethodEQ(refund.MethodCREDIT))).All(ctx)
	if err != nil {
		return 0, err
	}
	for _, r := range rs {
		if r.Method == refund.MethodCREDIT {
			sum += r.Amount // a payment from credit given back to it
		} else {
			sum -= r.Amount
		}
	}
	return sum, nil
}

// RefundPaymentInput is the input of refundPayment.
type RefundPaymentInput struct {
	PatientID string
	// PaymentID and InvoiceID name money paid on an invoice to give back;
	// without them the patient's credit is refunded.
	PaymentID      *string
	InvoiceID      *string
	Method         refund.Method
	Amount         int64
	Reason         string
	IdempotencyKey string
}

// Refund gives money back: from what a payment paid on an invoice (the
// invoice owes it again, so it can be voided and reissued) or from the
// patient's credit. Retrying with the same key refunds once.
func (s *Service) Refund(ctx context.Context, in RefundPaymentInput) (*ent.Refund, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.paymentId", in.PaymentID, input.Payment)
	c.OptionalID("input.invoiceId", in.InvoiceID, input.Invoice)
	why := c.Text("input.reason", in.Reason, 500)
	key := c.Text("input.idempotencyKey", in.IdempotencyKey, 100)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if err := refund.MethodValidator(in.Method); err != nil {
		return nil, apperr.BadInput("input.method", "is not a refund method")
	}
	if in.Amount <= 0 || in.Amount > MaxPayment {
		return nil, apperr.BadInput("input.amount", "must be positive and at most %s", input.FormatMoney(MaxPayment))
	}
	if in.InvoiceID != nil && in.PaymentID == nil {
		return nil, apperr.BadInput("input.paymentId", "is required with invoiceId: name the payment to refund")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Refund, error) {
		cashier, err := auth.ActingStaff(ctx, tx.Staff, "refund payments", cashiers...)
		if err != nil {
			return nil, err
		}
		if _, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID); err != nil {
			return nil, err
		}
		if prev, err := tx.Refund.Query().Where(refund.IdempotencyKey(key)).Only(ctx); err == nil {
			if prev.PatientID != in.PatientID || prev.Amount != in.Amount || prev.Method != in.Method || prev.Reason != why ||
				deref(prev.PaymentID) != deref(in.PaymentID) || (in.InvoiceID != nil && deref(prev.InvoiceID) != *in.InvoiceID) {
				return nil, apperr.BadInput("input.idempotencyKey", "was used for another refund")
			}
			return prev, nil
		} else if !ent.IsNotFound(err) {
			return nil, err
		}
		now := input.Stored(s.now())
		create := tx.Refund.Create().SetPatientID(in.PatientID).SetMethod(in.Method).SetAmount(in.Amount).
			SetReason(why).SetIdempotencyKey(key).SetRefundedByID(cashier.ID).SetRefundedAt(now)
		fromCredit := in.PaymentID == nil
		if fromCredit && in.Method == refund.MethodCREDIT {
			return nil, apperr.BadInput("input.method", "credit is refunded in money; CREDIT gives back a payment made from credit")
		}
		if fromCredit {
			have, err := Credit(ctx, tx.Payment, tx.Refund, in.PatientID)
			if err != nil {
				return nil, err
			}
			if in.Amount > have {
				return nil, apperr.BadInput("input.amount", "exceeds the patient's credit (%s)", input.FormatMoney(have))
			}
		} else {
			if err := s.unallocate(ctx, tx, in, create); err != nil {
				return nil, err
			}
		}
		out, err := create.Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.BadInput("input.idempotencyKey", "was used for another refund")
		} else if err != nil {
			return nil, err
		}
		if in.Method == refund.MethodCREDIT {
			_, err = s.books.CreditRestored(ctx, tx, out.ID, now, in.Amount)
		} else {
			_, err = s.books.Refund(ctx, tx, out.ID, now, ledger.Method(in.Method), in.Amount, fromCredit)
		}
		if err != nil {
			return nil, err
		}
		return out, nil
	})
}

// unallocate takes a refund out of what a payment paid on an invoice.
func (s *Service) unallocate(ctx context.Context, tx *ent.Tx, in RefundPaymentInput, create *ent.RefundCreate) error {
	p, err := tx.Payment.Query().Where(payment.ID(*in.PaymentID)).WithAllocations().Only(ctx)
	if ent.IsNotFound(err) || (err == nil && p.PatientID != in.PatientID) {
		return apperr.BadInput("input.paymentId", "no such payment of this patient")
	} else if err != nil {
		return err
	}
	switch {
	case p.Method == payment.MethodINSURANCE_REMITTANCE:
		return apperr.BadInput("input.paymentId", "a payer's remittance is not the patient's to be refunded")
	case p.Method == payment.MethodCREDIT && in.Method != refund.MethodCREDIT:
		return apperr.BadInput("input.method", "a payment from credit goes back to the credit: use CREDIT")
	case p.Method != payment.MethodCREDIT && in.Method == refund.MethodCREDIT:
		return apperr.BadInput("input.method", "CREDIT gives back only a payment made from credit")
	}
	var alloc *ent.PaymentAllocation
	for _, a := range p.Edges.Allocations {
		if in.InvoiceID == nil || a.InvoiceID == *in.InvoiceID {
			if alloc != nil {
				return apperr.BadInput("input.invoiceId", "is required: the payment went to several invoices")
			}
			alloc = a
		}
	}
	if alloc == nil {
		return apperr.BadInput("input.invoiceId", "the payment paid nothing on that invoice; refund credit without a payment")
	}
	if left := alloc.Amount - alloc.Refunded; in.Amount > left {
		return apperr.BadInput("input.amount", "exceeds what the payment paid on the invoice and is not refunded yet (%s)", input.FormatMoney(left))
	}
	n, err := tx.PaymentAllocation.Update().Where(paymentallocation.ID(alloc.ID), paymentallocation.Refunded(alloc.Refunded)).
		AddRefunded(in.Amount).Save(ctx)
	if err != nil {
		return err
	}
	if n != 1 {
		return apperr.Conflictf("the payment was refunded by someone else meanwhile; try again")
	}
	inv, err := tx.Invoice.Get(ctx, alloc.InvoiceID)
	if err != nil {
		return err
	}
	if inv.Status == invoice.StatusVOID {
		return apperr.Conflictf("the invoice is VOID")
	}
	create.SetPaymentID(p.ID).SetInvoiceID(inv.ID)
	return s.settle(ctx, tx, inv, func(u *ent.InvoiceUpdateOne, inv *ent.Invoice) {
		u.AddPaid(-in.Amount).AddPatientPaid(-in.Amount)
		inv.Paid -= in.Amount
		inv.PatientPaid -= in.Amount
	})
}
