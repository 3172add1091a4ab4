package ledger

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// The postings of billing, one helper per business event of the issue. Each
// takes the caller's transaction and posts once per event ID.

// Payer is who owes a receivable.
type Payer string

const (
	PayerPatient Payer = "PATIENT"
	PayerInsurer Payer = "INSURER"
)

func receivable(p Payer) string {
	if p == PayerInsurer {
		return InsurerReceivables
	}
	return PatientReceivables
}

// Method is how money came in or went out.
type Method string

const (
	MethodCash         Method = "CASH"
	MethodCard         Method = "CARD"
	MethodBankTransfer Method = "BANK_TRANSFER"
	MethodMobileMoney  Method = "MOBILE_MONEY"
	// MethodInsuranceRemittance is an insurer's payment, into the bank.
	MethodInsuranceRemittance Method = "INSURANCE_REMITTANCE"
	// MethodCredit is the patient's credit held in deposits.
	MethodCredit Method = "CREDIT"
)

func moneyAccount(m Method) (string, error) {
	switch m {
	case MethodCash:
		return Cash, nil
	case MethodCard:
		return CardClearing, nil
	case MethodBankTransfer, MethodInsuranceRemittance:
		return Bank, nil
	case MethodMobileMoney:
		return MobileMoneyClearing, nil
	case MethodCredit:
		return PatientDeposits, nil
	}
	return "", apperr.BadInput("method", "is not a payment method")
}

func positive(field string, amount int64) error {
	if amount <= 0 {
		return apperr.BadInput(field, "must be above zero")
	}
	return nil
}

// Charge is a captured charge. Revenue is earned when the service is given,
// before anyone knows who will pay it: the charge is owed to the hospital
// as an unbilled service until an invoice says by whom. Amount is negative
// for a return, which takes the revenue back.
type Charge struct {
	ID           string
	Date         time.Time
	Category     string // LAB, PHARMACY, CONSULTATION, BED_DAY, PROCEDURE, ...
	DepartmentID string
	Amount       int64
	Memo         string
}

// ChargeCaptured posts Dr unbilled services / Cr revenue(category), or the
// other way round for a return.
func (s *Service) ChargeCaptured(ctx context.Context, tx *ent.Tx, c Charge) (*ent.JournalEntry, error) {
	if c.Amount == 0 {
		return nil, apperr.BadInput("amount", "must not be zero")
	}
	unbilled := Line{AccountCode: UnbilledReceivables}
	revenue := Line{AccountCode: RevenueAccount(c.Category), DepartmentID: c.DepartmentID}
	if c.Amount > 0 {
		unbilled.Debit, revenue.Credit = c.Amount, c.Amount
	} else {
		unbilled.Credit, revenue.Debit = -c.Amount, -c.Amount
	}
	return s.Post(ctx, tx, Entry{Source: Source{"CHARGE", c.ID}, Date: c.Date, Memo: memo(c.Memo, "Charge "+c.ID),
		Lines: []Line{unbilled, revenue}, IntoOpenPeriod: true})
}

// Invoice is an issued invoice: its lines leave unbilled services and
// become owed by the patient and the payers, its discounts are an expense,
// and its tax is owed to the tax authority.
type Invoice struct {
	ID           string
	Date         time.Time
	Subtotal     int64 // the lines, as captured
	PayerShare   int64
	Discount     int64
	Tax          int64
	PatientShare int64 // Subtotal - PayerShare - Discount + Tax
	Memo         string
}

// InvoiceIssued posts Dr patient receivables, Dr insurer receivables, Dr
// discounts allowed / Cr unbilled services, Cr tax payable. The lines
// captured negative (returns) are in Subtotal already, so it may be what
// is left of a visit after a return; an invoice of nothing posts nothing.
func (s *Service) InvoiceIssued(ctx context.Context, tx *ent.Tx, inv Invoice) (*ent.JournalEntry, error) {
	if inv.Subtotal < 0 || inv.PayerShare < 0 || inv.Discount < 0 || inv.Tax < 0 || inv.PatientShare < 0 ||
		inv.PatientShare != inv.Subtotal-inv.PayerShare-inv.Discount+inv.Tax {
		return nil, apperr.BadInput("amount", "the invoice's shares do not add up to its lines")
	}
	var lines []Line
	add := func(code string, debit, credit int64) {
		if debit != 0 || credit != 0 {
			lines = append(lines, Line{AccountCode: code, Debit: debit, Credit: credit})
		}
	}
	add(PatientReceivables, inv.PatientShare, 0)
	add(InsurerReceivables, inv.PayerShare, 0)
	add(DiscountsAllowed, inv.Discount, 0)
	add(UnbilledReceivables, 0, inv.Subtotal)
	add(TaxPayable, 0, inv.Tax)
	if len(lines) == 0 {
		return nil, nil
	}
	return s.Post(ctx, tx, Entry{Source: Source{"INVOICE", inv.ID}, Date: inv.Date, Memo: memo(inv.Memo, "Invoice "+inv.ID),
		Lines: lines, IntoOpenPeriod: true})
}

// Payment is money received: Applied settles the payer's receivable, and
// HeldAsCredit (an overpayment or a deposit) becomes the patient's credit.
type Payment struct {
	ID           string
	Date         time.Time
	Method       Method
	Payer        Payer
	Applied      int64
	HeldAsCredit int64
}

// PaymentReceived posts Dr cash/bank/clearing / Cr receivable (and Cr
// patient deposits for what is held as credit). Paying from credit
// (MethodCredit) moves the credit onto the receivable.
func (s *Service) PaymentReceived(ctx context.Context, tx *ent.Tx, p Payment) (*ent.JournalEntry, error) {
	acct, err := moneyAccount(p.Method)
	if err != nil {
		return nil, err
	}
	if p.Applied < 0 || p.HeldAsCredit < 0 || p.Applied+p.HeldAsCredit <= 0 {
		return nil, apperr.BadInput("amount", "must be above zero")
	}
	if p.Method == MethodCredit && p.HeldAsCredit > 0 {
		return nil, apperr.BadInput("method", "credit cannot be held from credit")
	}
	lines := []Line{{AccountCode: acct, Debit: p.Applied + p.HeldAsCredit}}
	if p.Applied > 0 {
		lines = append(lines, Line{AccountCode: receivable(p.Payer), Credit: p.Applied})
	}
	if p.HeldAsCredit > 0 {
		lines = append(lines, Line{AccountCode: PatientDeposits, Credit: p.HeldAsCredit})
	}
	return s.Post(ctx, tx, Entry{Source: Source{"PAYMENT", p.ID}, Date: p.Date, Memo: "Payment " + p.ID + " (" + string(p.Method) + ")",
		Lines: lines, IntoOpenPeriod: true})
}

// Refund posts Dr patient deposits (a refund of credit) or Dr patient
// receivables (money given back on a settled bill) / Cr the money account.
func (s *Service) Refund(ctx context.Context, tx *ent.Tx, refundID string, date time.Time, method Method, amount int64, fromCredit bool) (*ent.JournalEntry, error) {
	acct, err := moneyAccount(method)
	if err != nil || method == MethodCredit {
		return nil, apperr.BadInput("method", "is not a method money is refunded by")
	}
	if err := positive("amount", amount); err != nil {
		return nil, err
	}
	from := PatientReceivables
	if fromCredit {
		from = PatientDeposits
	}
	return s.Post(ctx, tx, Entry{Source: Source{"REFUND", refundID}, Date: date, Memo: "Refund " + refundID,
		Lines: []Line{{AccountCode: from, Debit: amount}, {AccountCode: acct, Credit: amount}}, IntoOpenPeriod: true})
}

// CreditRestored gives a payment made from credit back to the credit: Dr
// patient receivables (the invoice owes it again) / Cr patient deposits.
func (s *Service) CreditRestored(ctx context.Context, tx *ent.Tx, refundID string, date time.Time, amount int64) (*ent.JournalEntry, error) {
	if err := positive("amount", amount); err != nil {
		return nil, err
	}
	return s.Post(ctx, tx, Entry{Source: Source{"REFUND", refundID}, Date: date, Memo: "Credit restored " + refundID,
		Lines: []Line{{AccountCode: PatientReceivables, Debit: amount}, {AccountCode: PatientDeposits, Credit: amount}}, IntoOpenPeriod: true})
}

// ClaimAdjustment settles an insurer's receivable that will not be paid:
// Disallowed is written off against claim adjustments (contractual), and
// ToPatient moves to the patient's receivable (a denied item they owe).
func (s *Service) ClaimAdjustment(ctx context.Context, tx *ent.Tx, adjustmentID string, date time.Time, disallowed, toPatient int64) (*ent.JournalEntry, error) {
	if disallowed < 0 || toPatient < 0 || disallowed+toPatient <= 0 {
		return nil, apperr.BadInput("amount", "must be above zero")
	}
	var lines []Line
	if disallowed > 0 {
		lines = append(lines, Line{AccountCode: ClaimAdjustments, Debit: disallowed})
	}
	if toPatient > 0 {
		lines = append(lines, Line{AccountCode: PatientReceivables, Debit: toPatient})
	}
	lines = append(lines, Line{AccountCode: InsurerReceivables, Credit: disallowed + toPatient})
	return s.Post(ctx, tx, Entry{Source: Source{"CLAIM_ADJUSTMENT", adjustmentID}, Date: date,
		Memo: "Claim adjustment " + adjustmentID, Lines: lines, IntoOpenPeriod: true})
}

// WriteOff posts Dr bad-debt write-offs / Cr receivable.
func (s *Service) WriteOff(ctx context.Context, tx *ent.Tx, writeOffID string, date time.Time, payer Payer, amount int64) (*ent.JournalEntry, error) {
	if err := positive("amount", amount); err != nil {
		return nil, err
	}
	return s.Post(ctx, tx, Entry{Source: Source{"WRITE_OFF", writeOffID}, Date: date, Memo: "Write-off " + writeOffID,
		Lines:          []Line{{AccountCode: BadDebtWriteOffs, Debit: amount}, {AccountCode: receivable(payer), Credit: amount}},
		IntoOpenPeriod: true})
}

func memo(m, fallback string) string {
	if m == "" {
		return fallback
	}
	return m
}
