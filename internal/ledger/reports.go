package ledger

import (
	"context"
	"database/sql"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/journalline"
	"github.com/hmis-dev/hmis/ent/ledgeraccount"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// TrialBalanceRow is one account's totals.
type TrialBalanceRow struct {
	Account *ent.LedgerAccount
	Debit   int64
	Credit  int64
	Balance int64
}

// TrialBalance is every account's totals up to a date.
type TrialBalance struct {
	AsOf        time.Time
	Rows        []*TrialBalanceRow
	TotalDebit  int64
	TotalCredit int64
}

// AccountLedgerLine is a line of an account's ledger.
type AccountLedgerLine struct {
	Entry          *ent.JournalEntry
	EntryDate      time.Time
	Memo           string
	Debit          int64
	Credit         int64
	RunningBalance int64
}

// AccountLedger is an account's lines over a range of dates.
type AccountLedger struct {
	Account        *ent.LedgerAccount
	From, To       time.Time
	OpeningBalance int64
	Lines          []*AccountLedgerLine
	ClosingBalance int64
}

// MaxLedgerLines bounds accountLedger; a longer range is asked for in parts.
const MaxLedgerLines = 5000

// signed is an account's balance in the sense of its normal side.
func signed(a *ent.LedgerAccount, debit, credit int64) int64 {
	if a.NormalBalance == ledgeraccount.NormalBalanceDEBIT {
		return debit - credit
	}
	return credit - debit
}

// TrialBalance sums every account's lines dated up to asOf. Accounts with no
// line are listed with zeros, so the chart is complete.
func (s *Service) TrialBalance(ctx context.Context, asOf time.Time) (*TrialBalance, error) {
	asOf = input.Date(asOf)
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*TrialBalance, error) {
		var sums []struct {
			AccountID string `json:"account_id"`
			Debit     int64  `json:"debit"`
			Credit    int64  `json:"credit"`
		}
		err := tx.JournalLine.Query().Where(journalline.EntryDateLTE(asOf)).
			GroupBy(journalline.FieldAccountID).
			Aggregate(ent.As(ent.Sum(journalline.FieldDebit), "debit"), ent.As(ent.Sum(journalline.FieldCredit), "credit")).
			Scan(ctx, &sums)
		if err != nil {
			return nil, err
		}
		accounts, err := tx.LedgerAccount.Query().Order(ent.Asc(ledgeraccount.FieldCode)).All(ctx)
		if err != nil {
			return nil, err
		}
		by := map[string]int{}
		for i, x := range sums {
			by[x.AccountID] = i
		}
		tb := &TrialBalance{AsOf: asOf}
		for _, a := range accounts {
			row := &TrialBalanceRow{Account: a}
			if i, ok := by[a.ID]; ok {
				row.Debit, row.Credit = sums[i].Debit, sums[i].Credit
			} else if !a.Active {
				continue
			}
			row.Balance = signed(a, row.Debit, row.Credit)
			tb.TotalDebit += row.Debit
			tb.TotalCredit += row.Credit
			tb.Rows = append(tb.Rows, row)
		}
		return tb, nil
	})
}

// AccountLedger lists an account's lines dated from..to, oldest first (in
// posting order within a day), with the balance after each.
func (s *Service) AccountLedger(ctx context.Context, accountID string, from, to time.Time) (*AccountLedger, error) {
	if err := input.ID("accountId", accountID, input.LedgerAccount); err != nil {
		return nil, err
	}
	from, to = input.Date(from), input.Date(to)
	if to.Before(from) {
		return nil, apperr.BadInput("to", "is before from")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*AccountLedger, error) {
		a, err := tx.LedgerAccount.Get(ctx, accountID)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("no ledger account %s", accountID)
		} else if err != nil {
			return nil, err
		}
		var before []struct {
			Debit  sql.NullInt64 `json:"debit"`
			Credit sql.NullInt64 `json:"credit"`
		}
		err = tx.JournalLine.Query().Where(journalline.AccountID(accountID), journalline.EntryDateLT(from)).
			Aggregate(ent.As(ent.Sum(journalline.FieldDebit), "debit"), ent.As(ent.Sum(journalline.FieldCredit), "credit")).
			Scan(ctx, &before)
		if err != nil {
			return nil, err
		}
		out := &AccountLedger{Account: a, From: from, To: to}
		if len(before) == 1 {
			out.OpeningBalance = signed(a, before[0].Debit.Int64, before[0].Credit.Int64)
		}
		// Line IDs are ULIDs, so within a day they sort in posting order.
		lines, err := tx.JournalLine.Query().
			Where(journalline.AccountID(accountID), journalline.EntryDateGTE(from), journalline.EntryDateLTE(to)).
			Order(ent.Asc(journalline.FieldEntryDate), ent.Asc(journalline.FieldID)).
			Limit(MaxLedgerLines + 1).WithEntry().All(ctx)
		if err != nil {
			return nil, err
		}
		if len(lines) > MaxLedgerLines {
			return nil, apperr.BadInput("to", "the range holds more than %d lines; ask for a shorter one", MaxLedgerLines)
		}
		bal := out.OpeningBalance
		for _, l := range lines {
			bal += signed(a, l.Debit, l.Credit)
			out.Lines = append(out.Lines, &AccountLedgerLine{
				Entry: l.Edges.Entry, EntryDate: l.EntryDate, Memo: l.Edges.Entry.Memo,
				Debit: l.Debit, Credit: l.Credit, RunningBalance: bal,
			})
		}
		out.ClosingBalance = bal
		return out, nil
	})
}
