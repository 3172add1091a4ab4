package charges

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/claim"
	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoicecounter"
	"github.com/hmis-dev/hmis/ent/invoicediscount"
	"github.com/hmis-dev/hmis/ent/problem"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/insurance"
	"github.com/hmis-dev/hmis/internal/ledger"
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

// retotal writes an invoice's totals from its lines, the split of the
// lines by the patient's insurance as it stands, and the approved
// discounts. A draft is retotalled as it changes and once more when it is
// issued, so the issued split is the one of the day of issue.
func (s *Service) retotal(ctx context.Context, tx *ent.Tx, inv *ent.Invoice) (*ent.Invoice, error) {
	lines, err := tx.Charge.Query().Where(charge.InvoiceID(inv.ID), charge.StatusEQ(charge.StatusACTIVE)).
		Order(charge.ByServiceAt(), charge.ByID()).All(ctx)
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
	split, err := s.split(ctx, tx, inv.PatientID, lines)
	if err != nil {
		return nil, err
	}
	ds, err := tx.InvoiceDiscount.Query().Where(invoicediscount.InvoiceID(inv.ID), invoicediscount.StatusEQ(invoicediscount.StatusAPPROVED)).All(ctx)
	if err != nil {
		return nil, err
	}
	var discount int64
	for _, d := range ds {
		discount += d.Amount
	}
	subtotal, payerTotal := int64(0), int64(0)
	for _, l := range lines {
		subtotal += l.Amount
		share := split.byCharge[l.ID]
		payerTotal += share
		if share != l.PayerShare {
			if err := tx.Charge.UpdateOne(l).SetPayerShare(share).Exec(ctx); err != nil {
				return nil, err
			}
		}
	}
	// Discounts and tax are the patient's: the payers are billed their
	// share of the lines at the price list's prices.
	_, tax, patientTotal := Totals([]int64{subtotal - payerTotal}, discount, inv.TaxRateBasisPoints)
	if discount > subtotal-payerTotal {
		return nil, apperr.Conflictf("the discounts (%s) would exceed the patient's share (%s)", input.FormatMoney(discount), input.FormatMoney(subtotal-payerTotal))
	}
	return tx.Invoice.UpdateOne(inv).SetSubtotal(subtotal).SetPayerTotal(payerTotal).SetDiscountTotal(discount).
		SetTaxTotal(tax).SetTotal(subtotal - discount + tax).SetPatientTotal(patientTotal).Save(ctx)
}

// invoiceSplit is an invoice's lines divided by the patient's insurance:
// the payers' share of each charge, and the lines each policy is claimed.
type invoiceSplit struct {
	byCharge map[string]int64
	claims   map[string][]insurance.ClaimLineInput // by policy ID
}

// split divides an invoice's charges between the patient's payers and the
// patient. A drug's returns are netted with its dispensing first, so the
// payer is billed for what the patient kept.
func (s *Service) split(ctx context.Context, tx *ent.Tx, patientID string, lines []*ent.Charge) (invoiceSplit, error) {
	out := invoiceSplit{byCharge: map[string]int64{}, claims: map[string][]insurance.ClaimLineInput{}}
	type netLine struct {
		charge   *ent.Charge // the line the payer's share is written on
		quantity int
		amount   int64
	}
	var nets []*netLine
	dispensed := map[string]*netLine{}
	for _, l := range lines {
		if l.SourceType == charge.SourceTypeDISPENSING || l.SourceType == charge.SourceTypeDISPENSING_RETURN {
			n := dispensed[l.SourceID]
			if n == nil {
				n = &netLine{}
				dispensed[l.SourceID] = n
				nets = append(nets, n)
			}
			if l.Amount > 0 {
				n.charge = l
			}
			n.quantity += l.Quantity
			n.amount += l.Amount
			continue
		}
		nets = append(nets, &netLine{charge: l, quantity: l.Quantity, amount: l.Amount})
	}
	var in []insurance.CoverageLineInput
	var of []*ent.Charge
	for _, n := range nets {
		if n.charge == nil || n.amount <= 0 || n.quantity <= 0 {
			continue
		}
		in = append(in, insurance.CoverageLineInput{ServiceCode: n.charge.Code, Category: claimline.Category(n.charge.Category),
			ServiceDate: n.charge.ServiceAt.In(s.loc), Quantity: n.quantity, Amount: n.amount})
		of = append(of, n.charge)
	}
	if len(in) == 0 {
		return out, nil
	}
	est, err := insurance.SplitLines(ctx, tx, patientID, in)
	if err != nil {
		return out, err
	}
	for i, ls := range est.Lines {
		out.byCharge[of[i].ID] = ls.PayerShare
		for _, st := range ls.Steps {
			if st.PolicyID == nil || st.PayerAmount <= 0 {
				continue
			}
			out.claims[*st.PolicyID] = append(out.claims[*st.PolicyID], insurance.ClaimLineInput{ServiceCode: in[i].ServiceCode,
				Category: in[i].Category, ServiceDate: in[i].ServiceDate, Quantity: in[i].Quantity, AmountClaimed: st.PayerAmount})
		}
	}
	return out, nil
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
		if left := inv.Subtotal - inv.PayerTotal - inv.DiscountTotal; in.Amount > left {
			return nil, apperr.BadInput("input.amount", "exceeds what is left of the patient's share (%s)", input.FormatMoney(left))
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
		if inv.Subtotal < 0 {
			return nil, apperr.Conflictf("the invoice's lines sum to less than nothing (%s): bill the returns with what they return", input.FormatMoney(inv.Subtotal))
		}
		upd := tx.Invoice.UpdateOne(inv).Where(invoice.StatusEQ(invoice.StatusDRAFT)).
			SetNumber(number).SetIssuedAt(now).SetIssuedByID(clerk.ID).SetStatus(settled(inv))
		out, err := upd.Save(ctx)
		if err != nil {
			return nil, changedMeanwhile(err)
		}
		if _, err := s.books.InvoiceIssued(ctx, tx, ledger.Invoice{ID: out.ID, Date: now, Subtotal: out.Subtotal,
			PayerShare: out.PayerTotal, Discount: out.DiscountTotal, Tax: out.TaxTotal, PatientShare: out.PatientTotal,
			Memo: "Invoice " + number}); err != nil {
			return nil, err
		}
		if err := s.claim(ctx, tx, out); err != nil {
			return nil, err
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

// claim drafts a claim to each payer with a share of an issued invoice,
// with the lines the split gave it and, for an encounter's invoice, the
// ICD-10 codes of the encounter's problems: the diagnoses the payer needs
// and nothing more of the chart. The clerk reviews and submits it.
func (s *Service) claim(ctx context.Context, tx *ent.Tx, inv *ent.Invoice) error {
	if inv.PayerTotal == 0 {
		return nil
	}
	lines, err := tx.Charge.Query().Where(charge.InvoiceID(inv.ID), charge.StatusEQ(charge.StatusACTIVE)).
		Order(charge.ByServiceAt(), charge.ByID()).All(ctx)
	if err != nil {
		return err
	}
	split, err := s.split(ctx, tx, inv.PatientID, lines)
	if err != nil {
		return err
	}
	var diagnoses []string
	if inv.EncounterID != nil {
		if diagnoses, err = tx.Problem.Query().Where(problem.EncounterID(*inv.EncounterID)).
			Unique(true).Select(problem.FieldIcd10Code).Strings(ctx); err != nil {
			return err
		}
		sort.Strings(diagnoses)
		diagnoses = diagnoses[:min(len(diagnoses), insurance.MaxDiagnoses)]
	}
	policies := make([]string, 0, len(split.claims))
	for p := range split.claims {
		policies = append(policies, p)
	}
	sort.Strings(policies)
	for _, p := range policies {
		cl, err := insurance.NewClaim(ctx, tx, insurance.CreateClaimInput{PolicyID: p, EncounterID: inv.EncounterID,
			DiagnosisCodes: diagnoses, Lines: split.claims[p]})
		if err != nil {
			return fmt.Errorf("claim of policy %s: %w", p, err)
		}
		if err := tx.Claim.UpdateOne(cl).SetInvoiceID(inv.ID).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
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
		if inv.Paid != 0 || inv.PayerAdjusted != 0 || inv.MovedToPatient != 0 || inv.WrittenOff != 0 {
			return nil, apperr.Conflictf("the invoice has payments or adjustments on it; refund them first")
		}
		sent, err := tx.Claim.Query().Where(claim.InvoiceID(inv.ID), claim.StatusNotIn(claim.StatusDRAFT, claim.StatusCANCELLED)).Count(ctx)
		if err != nil {
			return nil, err
		}
		if sent > 0 {
			return nil, apperr.Conflictf("the invoice's claim has been submitted to the payer; settle the claim first")
		}
		if err := tx.Claim.Update().Where(claim.InvoiceID(inv.ID), claim.StatusEQ(claim.StatusDRAFT)).
			SetStatus(claim.StatusCANCELLED).Exec(ctx); err != nil {
			return nil, err
		}
		lines, err := tx.Charge.Query().Where(charge.InvoiceID(inv.ID)).IDs(ctx)
		if err != nil {
			return nil, err
		}
		if err := tx.Charge.Update().Where(charge.InvoiceID(inv.ID)).ClearInvoiceID().SetPayerShare(0).Exec(ctx); err != nil {
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
		if out.Subtotal != 0 {
			if _, err := s.books.ReverseSource(ctx, tx, ledger.Source{Type: "INVOICE", ID: out.ID}, "Invoice voided: "+why); err != nil {
				return nil, err
			}
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
