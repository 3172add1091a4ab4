package charges

import (
	"context"
	"fmt"
	"math/big"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoicecounter"
	"github.com/hmis-dev/hmis/ent/invoicediscount"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// Event types on Topic about invoices.
const (
	InvoiceIssued = "INVOICE_ISSUED"
	InvoiceVoided = "INVOICE_VOIDED"
)

// InvoiceEvent is the payload of the invoice events on Topic: what the
// ledger posts (receivable against revenue, discount and tax) and the
// insurance engine splits.
type InvoiceEvent struct {
	InvoiceID string   `json:"invoiceId"`
	PatientID string   `json:"patientId"`
	Number    string   `json:"number"`
	ChargeIDs []string `json:"chargeIds"`
	Subtotal  int64    `json:"subtotal"`
	Discount  int64    `json:"discount"`
	Tax       int64    `json:"tax"`
	Total     int64    `json:"total"`
}

// SetTaxRate sets the tax rate new invoices take, in hundredths of a
// percent (1600 is 16 %); none by default.
func (s *Service) SetTaxRate(basisPoints int) { s.taxBP = basisPoints }

// Totals computes an invoice's totals from its lines and approved
// discounts: tax on what is left after discounts, half a minor unit
// rounded up.
func Totals(lines []int64, discounts int64, taxBP int) (subtotal, tax, total int64) {
	for _, l := range lines {
		subtotal += l
	}
	taxable := subtotal - discounts
	if taxable > 0 && taxBP > 0 {
		tax = (taxable*int64(taxBP) + 5000) / 10000
	}
	return subtotal, tax, taxable + tax
}

// bigTotal is Totals in arbitrary precision, for the exactness test and as
// an overflow guard: an int64 of minor units holds any real hospital bill.
func bigTotal(lines []int64) *big.Int {
	t := new(big.Int)
	for _, l := range lines {
		t.Add(t, big.NewInt(l))
	}
	return t
}

// CreateInvoiceInput is the input of createInvoice.
type CreateInvoiceInput struct {
	PatientID   string
	EncounterID *string
	PeriodFrom  *time.Time
	PeriodTo    *time.Time
}

// CreateInvoice puts a patient's unbilled charges of an encounter or a
// period on a new DRAFT invoice.
func (s *Service) CreateInvoice(ctx context.Context, in CreateInvoiceInput) (*ent.Invoice, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	if err := c.Err(); err != nil {
		return nil, err
	}
	byPeriod := in.PeriodFrom != nil || in.PeriodTo != nil
	switch {
	case in.EncounterID != nil && byPeriod:
		return nil, apperr.BadInput("input.encounterId", "give an encounter or a period, not both")
	case in.EncounterID == nil && !byPeriod:
		return nil, apperr.BadInput("input.encounterId", "give an encounter or a period")
	case byPeriod && (in.PeriodFrom == nil || in.PeriodTo == nil):
		return nil, apperr.BadInput("input.periodTo", "a period needs both dates")
	case byPeriod && in.PeriodTo.Before(*in.PeriodFrom):
		return nil, apperr.BadInput("input.periodTo", "must not be before periodFrom")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Invoice, error) {
		clerk, err := auth.ActingStaff(ctx, tx.Staff, "make invoices", clerks...)
		if err != nil {
			return nil, err
		}
		if _, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID); err != nil {
			return nil, err
		}
		q := tx.Charge.Query().Where(charge.PatientID(in.PatientID), charge.StatusEQ(charge.StatusACTIVE), charge.InvoiceIDIsNil())
		create := tx.Invoice.Create().SetPatientID(in.PatientID).SetCreatedByID(clerk.ID).SetTaxRateBasisPoints(s.taxBP)
		if in.EncounterID != nil {
			q.Where(charge.EncounterID(*in.EncounterID))
			create.SetEncounterID(*in.EncounterID)
		} else {
			from := s.dayStart(*in.PeriodFrom)
			to := s.dayStart(*in.PeriodTo).AddDate(0, 0, 1)
			q.Where(charge.ServiceAtGTE(from), charge.ServiceAtLT(to))
			create.SetPeriodFrom(input.Date(*in.PeriodFrom)).SetPeriodTo(input.Date(*in.PeriodTo))
		}
		lines, err := q.All(ctx)
		if err != nil {
			return nil, err
		}
		if len(lines) == 0 {
			return nil, apperr.Conflictf("the patient has no unbilled charges there")
		}
		inv, err := create.Save(ctx)
		if err != nil {
			return nil, err
		}
		ids := make([]string, len(lines))
		for i, l := range lines {
			ids[i] = l.ID
		}
		// Conditional on still unbilled: the patient's lock makes a race
		// impossible, and the count proves it.
		n, err := tx.Charge.Update().Where(charge.IDIn(ids...), charge.InvoiceIDIsNil(), charge.StatusEQ(charge.StatusACTIVE)).
			SetInvoiceID(inv.ID).Save(ctx)
		if err != nil {
			return nil, err
		}
		if n != len(ids) {
			return nil, apperr.Conflictf("the charges changed meanwhile; try again")
		}
		return s.retotal(ctx, tx, inv)
	})
}

// dayStart is the first moment of t's calendar date in the hospital's zone.
func (s *Service) dayStart(t time.Time) time.Time {
	d := input.Date(t)
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, s.loc)
}

// retotal writes an invoice's totals from its lines and approved discounts.
func (s *Service) retotal(ctx context.Context, tx *ent.Tx, inv *ent.Invoice) (*ent.Invoice, error) {
	lines, err := tx.Charge.Query().Where(charge.InvoiceID(inv.ID), charge.StatusEQ(charge.StatusACTIVE)).All(ctx)
	if err != nil {
		return nil, err
	}
	amounts := make([]int64, len(lines))
	for i, l := range lines {
		amounts[i] = l.Amount
	}
	if !bigTotal(amounts).IsInt64() {
		return nil, apperr.Conflictf("the invoice's total is out of range")
	}
	ds, err := tx.InvoiceDiscount.Query().Where(invoicediscount.InvoiceID(inv.ID), invoicediscount.StatusEQ(invoicediscount.StatusAPPROVED)).All(ctx)
	if err != nil {
		return nil, err
	}
	var discount int64
	for _, d := range ds {
		discount += d.Amount
	}
	subtotal, tax, total := Totals(amounts, discount, inv.TaxRateBasisPoints)
	if discount > subtotal {
		return nil, apperr.Conflictf("the discounts (%d) would exceed the invoice's subtotal (%d)", discount, subtotal)
	}
	return tx.Invoice.UpdateOne(inv).SetSubtotal(subtotal).SetDiscountTotal(discount).SetTaxTotal(tax).SetTotal(total).Save(ctx)
}

func lockedInvoice(ctx context.Context, tx *ent.Tx, id string) (*ent.Invoice, error) {
	return store.GetLocked(ctx, tx, tx.Invoice.Get, id, func(i *ent.Invoice) string { return i.PatientID }, "invoice not found")
}

// RequestInvoiceDiscountInput is the input of requestInvoiceDiscount.
type RequestInvoiceDiscountInput struct {
	InvoiceID string
	Amount    int64
	Reason    string
}

// RequestDiscount asks for a discount on a draft invoice.
func (s *Service) RequestDiscount(ctx context.Context, in RequestInvoiceDiscountInput) (*ent.InvoiceDiscount, error) {
	var c input.Checker
	c.ID("input.invoiceId", in.InvoiceID, input.Invoice)
	reason := c.Text("input.reason", in.Reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if in.Amount <= 0 {
		return nil, apperr.BadInput("input.amount", "must be positive")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.InvoiceDiscount, error) {
		clerk, err := auth.ActingStaff(ctx, tx.Staff, "ask for discounts", clerks...)
		if err != nil {
			return nil, err
		}
		inv, err := lockedInvoice(ctx, tx, in.InvoiceID)
		if err != nil {
			return nil, err
		}
		if inv.Status != invoice.StatusDRAFT {
			return nil, apperr.Conflictf("the invoice is %s; only a DRAFT takes discounts", inv.Status)
		}
		if in.Amount > inv.Subtotal-inv.DiscountTotal {
			return nil, apperr.BadInput("input.amount", "exceeds what is left of the invoice (%d)", inv.Subtotal-inv.DiscountTotal)
		}
		return tx.InvoiceDiscount.Create().SetInvoiceID(inv.ID).SetAmount(in.Amount).SetReason(reason).
			SetRequestedByID(clerk.ID).Save(ctx)
	})
}

// ApproveDiscount approves a requested discount. The approver is someone
// other than who asked for it.
func (s *Service) ApproveDiscount(ctx context.Context, id string) (*ent.InvoiceDiscount, error) {
	if err := input.ID("id", id, input.InvoiceDiscount); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.InvoiceDiscount, error) {
		approver, err := auth.ActingStaff(ctx, tx.Staff, "approve discounts", clerks...)
		if err != nil {
			return nil, err
		}
		d, err := tx.InvoiceDiscount.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("discount not found")
		} else if err != nil {
			return nil, err
		}
		inv, err := lockedInvoice(ctx, tx, d.InvoiceID)
		if err != nil {
			return nil, err
		}
		if d.RequestedByID == approver.ID {
			return nil, apperr.Denied("a discount is approved by someone other than who asked for it")
		}
		if d.Status != invoicediscount.StatusREQUESTED {
			return nil, apperr.Conflictf("the discount is %s already", d.Status)
		}
		if inv.Status != invoice.StatusDRAFT {
			return nil, apperr.Conflictf("the invoice is %s; only a DRAFT takes discounts", inv.Status)
		}
		out, err := tx.InvoiceDiscount.UpdateOne(d).Where(invoicediscount.StatusEQ(invoicediscount.StatusREQUESTED)).
			SetStatus(invoicediscount.StatusAPPROVED).SetApprovedByID(approver.ID).SetApprovedAt(input.Stored(s.now())).Save(ctx)
		if err != nil {
			return nil, changedMeanwhile(err)
		}
		if _, err := s.retotal(ctx, tx, inv); err != nil {
			return nil, err
		}
		return out, nil
	})
}

// Issue numbers a draft and issues it. The number is the year's counter
// advanced in this transaction, under a lock every issuer takes, so
// numbers follow each other with no gap even when many issue at once.
func (s *Service) Issue(ctx context.Context, id string) (*ent.Invoice, error) {
	if err := input.ID("id", id, input.Invoice); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Invoice, error) {
		clerk, err := auth.ActingStaff(ctx, tx.Staff, "issue invoices", clerks...)
		if err != nil {
			return nil, err
		}
		inv, err := lockedInvoice(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if inv.Status != invoice.StatusDRAFT {
			return nil, apperr.Conflictf("the invoice is %s; only a DRAFT can be issued", inv.Status)
		}
		if inv, err = s.retotal(ctx, tx, inv); err != nil {
			return nil, err
		}
		now := input.Stored(s.now())
		number, err := s.nextNumber(ctx, tx, now.In(s.loc).Year())
		if err != nil {
			return nil, err
		}
		out, err := tx.Invoice.UpdateOne(inv).Where(invoice.StatusEQ(invoice.StatusDRAFT)).
			SetStatus(invoice.StatusISSUED).SetNumber(number).SetIssuedAt(now).SetIssuedByID(clerk.ID).Save(ctx)
		if err != nil {
			return nil, changedMeanwhile(err)
		}
		return out, s.invoiceEvent(ctx, tx, InvoiceIssued, out)
	})
}

func (s *Service) nextNumber(ctx context.Context, tx *ent.Tx, year int) (string, error) {
	if err := s.store.Lock(ctx, tx, fmt.Sprintf("invoice-number:%d", year)); err != nil {
		return "", err
	}
	c, err := tx.InvoiceCounter.Query().Where(invoicecounter.Year(year)).Only(ctx)
	next := 1
	switch {
	case ent.IsNotFound(err):
		err = tx.InvoiceCounter.Create().SetYear(year).SetLast(1).Exec(ctx)
	case err == nil:
		next = c.Last + 1
		var n int
		n, err = tx.InvoiceCounter.Update().Where(invoicecounter.Year(year), invoicecounter.Last(c.Last)).SetLast(next).Save(ctx)
		if err == nil && n != 1 {
			err = apperr.Conflictf("another invoice took the number; try again")
		}
	}
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("INV-%d-%06d", year, next), nil
}

// Void voids an invoice with a reason and puts its charges back to
// unbilled, for the invoice that replaces it. One with payments on it is
// refunded first.
func (s *Service) Void(ctx context.Context, id, reason string) (*ent.Invoice, error) {
	var c input.Checker
	c.ID("id", id, input.Invoice)
	why := c.Text("reason", reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Invoice, error) {
		clerk, err := auth.ActingStaff(ctx, tx.Staff, "void invoices", clerks...)
		if err != nil {
			return nil, err
		}
		inv, err := lockedInvoice(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if inv.Status == invoice.StatusVOID {
			return nil, apperr.Conflictf("the invoice is VOID already")
		}
		if inv.Paid != 0 {
			return nil, apperr.Conflictf("the invoice has payments on it; refund them first")
		}
		lines, err := tx.Charge.Query().Where(charge.InvoiceID(inv.ID)).IDs(ctx)
		if err != nil {
			return nil, err
		}
		if err := tx.Charge.Update().Where(charge.InvoiceID(inv.ID)).ClearInvoiceID().Exec(ctx); err != nil {
			return nil, err
		}
		out, err := tx.Invoice.UpdateOne(inv).Where(invoice.StatusEQ(inv.Status), invoice.Paid(0)).
			SetStatus(invoice.StatusVOID).SetVoidReason(why).SetVoidedAt(input.Stored(s.now())).SetVoidedByID(clerk.ID).Save(ctx)
		if err != nil {
			return nil, changedMeanwhile(err)
		}
		if inv.Status == invoice.StatusDRAFT {
			return out, nil // never issued: nothing was posted
		}
		return out, events.Record(ctx, tx, Topic, InvoiceVoided, InvoiceEvent{
			InvoiceID: out.ID, PatientID: out.PatientID, Number: deref(out.Number), ChargeIDs: lines,
			Subtotal: out.Subtotal, Discount: out.DiscountTotal, Tax: out.TaxTotal, Total: out.Total,
		})
	})
}

func (s *Service) invoiceEvent(ctx context.Context, tx *ent.Tx, typ string, inv *ent.Invoice) error {
	lines, err := tx.Charge.Query().Where(charge.InvoiceID(inv.ID), charge.StatusEQ(charge.StatusACTIVE)).IDs(ctx)
	if err != nil {
		return err
	}
	return events.Record(ctx, tx, Topic, typ, InvoiceEvent{
		InvoiceID: inv.ID, PatientID: inv.PatientID, Number: deref(inv.Number), ChargeIDs: lines,
		Subtotal: inv.Subtotal, Discount: inv.DiscountTotal, Tax: inv.TaxTotal, Total: inv.Total,
	})
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
