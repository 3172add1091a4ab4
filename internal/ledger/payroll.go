package ledger

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// PayrollRun is an approved payroll run's totals: gross pay is the
// hospital's expense; of it, tax is owed to the tax authority, the other
// deductions to whoever they were taken for (a lender, a union), and net
// pay to the staff.
type PayrollRun struct {
	ID                     string
	Date                   time.Time
	Gross, Tax, Deductions int64
	Net                    int64 // Gross - Tax - Deductions
	Memo                   string
}

// PayrollApproved posts Dr payroll expense / Cr tax payable, Cr payroll
// payable, Cr deductions payable, once per run. A run of nothing posts
// nothing.
func (s *Service) PayrollApproved(ctx context.Context, tx *ent.Tx, r PayrollRun) (*ent.JournalEntry, error) {
	if r.Gross < 0 || r.Tax < 0 || r.Deductions < 0 || r.Net < 0 || r.Net != r.Gross-r.Tax-r.Deductions {
		return nil, apperr.BadInput("amount", "the run's net pay, tax and deductions do not add up to its gross pay")
	}
	if r.Gross == 0 {
		return nil, nil
	}
	var lines []Line
	add := func(code string, debit, credit int64) {
		if debit != 0 || credit != 0 {
			lines = append(lines, Line{AccountCode: code, Debit: debit, Credit: credit})
		}
	}
	add(PayrollExpense, r.Gross, 0)
	add(TaxPayable, 0, r.Tax)
	add(PayrollPayable, 0, r.Net)
	add(DeductionsPayable, 0, r.Deductions)
	return s.Post(ctx, tx, Entry{Source: Source{"PAYROLL", r.ID}, Date: r.Date, Memo: memo(r.Memo, "Payroll "+r.ID),
		Lines: lines, IntoOpenPeriod: true})
}

// PayrollPaid posts Dr payroll payable / Cr bank for the net pay of a run
// paid, once per run; a run that paid nothing posts nothing.
func (s *Service) PayrollPaid(ctx context.Context, tx *ent.Tx, r PayrollRun) (*ent.JournalEntry, error) {
	if r.Net < 0 {
		return nil, apperr.BadInput("amount", "must not be negative")
	}
	if r.Net == 0 {
		return nil, nil
	}
	return s.Post(ctx, tx, Entry{Source: Source{"PAYROLL_PAYMENT", r.ID}, Date: r.Date, Memo: memo(r.Memo, "Payroll paid "+r.ID),
		Lines: []Line{{AccountCode: PayrollPayable, Debit: r.Net}, {AccountCode: Bank, Credit: r.Net}}, IntoOpenPeriod: true})
}
