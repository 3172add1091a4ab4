package charges

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// PaymentRecorded is the event type on Topic of a payment.
const PaymentRecorded = "PAYMENT_RECORDED"

// PaymentEvent is the payload of PaymentRecorded: what the ledger posts
// (cash or bank against the receivable, and the patient's credit).
type PaymentEvent struct {
	PaymentID string `json:"paymentId"`
	PatientID string `json:"patientId"`
	InvoiceID string `json:"invoiceId,omitempty"`
	Method    string `json:"method"`
	Amount    int64  `json:"amount"`
	Allocated int64  `json:"allocated"`
	Credited  int64  `json:"credited"`
}

// RecordPaymentInput is the input of recordPayment.
type RecordPaymentInput struct {
	PatientID          string
	InvoiceID          *string
	Method             payment.Method
	Amount             int64
	IdempotencyKey     string
	Reference          *string
	HoldExcessAsCredit *bool
}

// cashiers take money.
var cashiers = []staff.Kind{staff.KindBILLING_CLERK, staff.KindADMINISTRATOR}

// RecordPayment records money received. A payment whose idempotency key
// was recorded before is not recorded again: the first one is returned, so
// a client retrying after a lost answer pays once. An amount above the
// invoice's balance is refused unless the excess is explicitly held as
// credit; a payment with no invoice is a deposit, all credit.
func (s *Service) RecordPayment(ctx context.Context, in RecordPaymentInput) (*ent.Payment, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.invoiceId", in.InvoiceID, input.Invoice)
	key := c.Text("input.idempotencyKey", in.IdempotencyKey, 100)
	ref := c.OptionalText("input.reference", in.Reference, 100)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if err := payment.MethodValidator(in.Method); err != nil {
		return nil, apperr.BadInput("input.method", "is not a payment method")
	}
	if in.Amount <= 0 || in.Amount > MaxPayment {
		return nil, apperr.BadInput("input.amount", "must be positive and at most %d.00", MaxPayment/100)
	}
	hold := in.HoldExcessAsCredit != nil && *in.HoldExcessAsCredit
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Payment, error) {
		cashier, err := auth.ActingStaff(ctx, tx.Staff, "record payments", cashiers...)
		if err != nil {
			return nil, err
		}
		// The patient's lock orders two retries of one payment: the
		// second finds the first's row.
		if _, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID); err != nil {
			return nil, err
		}
		if prev, err := tx.Payment.Query().Where(payment.IdempotencyKey(key)).Only(ctx); err == nil {
			if prev.PatientID != in.PatientID || prev.Amount != in.Amount || prev.Method != in.Method {
				return nil, apperr.BadInput("input.idempotencyKey", "was used for another payment")
			}
			return prev, nil
		} else if !ent.IsNotFound(err) {
			return nil, err
		}
		create := tx.Payment.Create().SetPatientID(in.PatientID).SetMethod(in.Method).SetAmount(in.Amount).
			SetIdempotencyKey(key).SetNillableReference(ref).SetRecordedByID(cashier.ID).SetReceivedAt(input.Stored(s.now()))
		allocated, credited := int64(0), in.Amount
		if in.InvoiceID != nil {
			inv, err := tx.Invoice.Get(ctx, *in.InvoiceID)
			if ent.IsNotFound(err) || (err == nil && inv.PatientID != in.PatientID) {
				return nil, apperr.BadInput("input.invoiceId", "no such invoice of this patient")
			} else if err != nil {
				return nil, err
			}
			if inv.Status != invoice.StatusISSUED && inv.Status != invoice.StatusPARTIALLY_PAID {
				return nil, apperr.Conflictf("the invoice is %s; only an issued one with a balance takes payments", inv.Status)
			}
			balance := inv.Total - inv.Paid
			allocated = min(in.Amount, balance)
			credited = in.Amount - allocated
			if credited > 0 && !hold {
				return nil, apperr.BadInput("input.amount", "exceeds the invoice's balance (%d); set holdExcessAsCredit to keep the excess as credit", balance)
			}
			status := invoice.StatusPARTIALLY_PAID
			if inv.Paid+allocated == inv.Total {
				status = invoice.StatusPAID
			}
			if err := tx.Invoice.UpdateOne(inv).Where(invoice.Paid(inv.Paid), invoice.StatusEQ(inv.Status)).
				AddPaid(allocated).SetStatus(status).Exec(ctx); err != nil {
				return nil, changedMeanwhile(err)
			}
			create.SetInvoiceID(inv.ID)
		}
		out, err := create.SetAllocated(allocated).SetCredited(credited).Save(ctx)
		if err != nil {
			return nil, err
		}
		return out, events.Record(ctx, tx, Topic, PaymentRecorded, PaymentEvent{
			PaymentID: out.ID, PatientID: out.PatientID, InvoiceID: deref(out.InvoiceID), Method: string(out.Method),
			Amount: out.Amount, Allocated: allocated, Credited: credited,
		})
	})
}

// Credit is what a patient holds as credit: deposits and overpayments kept.
func Credit(ctx context.Context, client *ent.PaymentClient, patientID string) (int64, error) {
	ps, err := client.Query().Where(payment.PatientID(patientID)).All(ctx)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range ps {
		sum += p.Credited
	}
	return sum, nil
}
