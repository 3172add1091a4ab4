package ledger

import (
	"context"
	"regexp"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/accountingperiod"
	"github.com/hmis-dev/hmis/ent/ledgeraccount"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// CreateLedgerAccountInput is the input of createLedgerAccount.
type CreateLedgerAccountInput struct {
	Code            string
	Name            string
	Type            ledgeraccount.Type
	NormalBalance   *ledgeraccount.NormalBalance
	DepartmentID    *string
	ServiceCategory *string
}

// JournalLineInput is a line of postJournalEntry.
type JournalLineInput struct {
	AccountID    string
	Debit        *int64
	Credit       *int64
	DepartmentID *string
}

// PostJournalEntryInput is the input of postJournalEntry.
type PostJournalEntryInput struct {
	EntryDate      time.Time
	Memo           string
	Lines          []*JournalLineInput
	IdempotencyKey string
}

var (
	codePattern   = regexp.MustCompile(`^[A-Z0-9][A-Z0-9._-]*$`)
	periodPattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])$`)
)

// CreateAccount adds an account to the chart.
func (s *Service) CreateAccount(ctx context.Context, in CreateLedgerAccountInput) (*ent.LedgerAccount, error) {
	var c input.Checker
	code := strings.ToUpper(c.Text("input.code", in.Code, 32))
	if c.Err() == nil && !codePattern.MatchString(code) {
		c.Fail(apperr.BadInput("input.code", "may hold only letters, digits, '.', '-' and '_'"))
	}
	name := c.Text("input.name", in.Name, 120)
	if c.Err() == nil && ledgeraccount.TypeValidator(in.Type) != nil {
		c.Fail(apperr.BadInput("input.type", "is not an account type"))
	}
	nb := normalBalance(in.Type)
	if in.NormalBalance != nil {
		if ledgeraccount.NormalBalanceValidator(*in.NormalBalance) != nil {
			c.Fail(apperr.BadInput("input.normalBalance", "is DEBIT or CREDIT"))
		}
		nb = *in.NormalBalance
	}
	c.OptionalID("input.departmentId", in.DepartmentID, input.Department)
	category := c.OptionalText("input.serviceCategory", in.ServiceCategory, 40)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.LedgerAccount, error) {
		if in.DepartmentID != nil {
			if ok, err := tx.Department.Query().Where(departmentID(*in.DepartmentID)).Exist(ctx); err != nil {
				return nil, err
			} else if !ok {
				return nil, apperr.BadInput("input.departmentId", "no such department")
			}
		}
		a, err := tx.LedgerAccount.Create().SetCode(code).SetName(name).SetType(in.Type).SetNormalBalance(nb).
			SetNillableDepartmentID(in.DepartmentID).SetNillableServiceCategory(category).Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("the chart already has an account with code %s", code)
		}
		return a, err
	})
}

// PostManual posts a finance officer's entry, once per idempotency key.
func (s *Service) PostManual(ctx context.Context, in PostJournalEntryInput) (*ent.JournalEntry, error) {
	key, err := input.Text("input.idempotencyKey", in.IdempotencyKey, MaxSource)
	if err != nil {
		return nil, err
	}
	e := Entry{Source: Source{Type: "MANUAL", ID: key}, Date: in.EntryDate, Memo: in.Memo}
	if in.EntryDate.IsZero() {
		return nil, apperr.BadInput("input.entryDate", "is required")
	}
	// A date decades away is a typing error, not an entry: the books keep
	// the years a hospital must keep and a month ahead for accruals.
	today := input.Today(s.now(), s.loc)
	if d := input.Date(in.EntryDate); d.Before(today.AddDate(-10, 0, 0)) || d.After(today.AddDate(0, 0, 31)) {
		return nil, apperr.BadInput("input.entryDate", "must be within the last ten years and at most 31 days ahead")
	}
	for i, l := range in.Lines {
		if l == nil {
			return nil, apperr.BadInput("input.lines", "line %d is null", i)
		}
		line := Line{AccountID: l.AccountID}
		if l.AccountID == "" {
			return nil, apperr.BadInput("input.lines["+itoa(i)+"].accountId", "is required")
		}
		if l.Debit != nil {
			line.Debit = *l.Debit
		}
		if l.Credit != nil {
			line.Credit = *l.Credit
		}
		if l.DepartmentID != nil {
			line.DepartmentID = *l.DepartmentID
		}
		e.Lines = append(e.Lines, line)
	}
	if err := validate("input.", &e); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.JournalEntry, error) {
		return s.post(ctx, tx, "input.", e)
	})
}

// ReverseEntry reverses an entry in a transaction of its own.
func (s *Service) ReverseEntry(ctx context.Context, id, reason string) (*ent.JournalEntry, error) {
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.JournalEntry, error) {
		return s.Reverse(ctx, tx, id, reason)
	})
}

// ClosePeriod closes a month that has ended. It waits for the postings
// under way in the month (they hold its lock shared) and refuses the ones
// after it.
func (s *Service) ClosePeriod(ctx context.Context, period string) (*ent.AccountingPeriod, error) {
	if !periodPattern.MatchString(period) {
		return nil, apperr.BadInput("period", "is a month as YYYY-MM")
	}
	if period >= Period(input.Today(s.now(), s.loc)) {
		return nil, apperr.BadInput("period", "only a month that has ended can be closed")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.AccountingPeriod, error) {
		who, err := poster(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, periodKey(period)); err != nil {
			return nil, err
		}
		now := input.Stored(s.now())
		p, err := tx.AccountingPeriod.Query().Where(accountingperiod.Period(period)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			return tx.AccountingPeriod.Create().SetPeriod(period).SetStatus(accountingperiod.StatusCLOSED).
				SetClosedBy(who).SetClosedAt(now).Save(ctx)
		case err != nil:
			return nil, err
		case p.Status == accountingperiod.StatusCLOSED:
			return nil, apperr.Conflictf("the period %s is already closed", period)
		}
		return tx.AccountingPeriod.UpdateOne(p).SetStatus(accountingperiod.StatusCLOSED).
			SetClosedBy(who).SetClosedAt(now).Save(ctx)
	})
}

// ReopenPeriod reopens a closed month, recording who and why.
func (s *Service) ReopenPeriod(ctx context.Context, period, reason string) (*ent.AccountingPeriod, error) {
	if !periodPattern.MatchString(period) {
		return nil, apperr.BadInput("period", "is a month as YYYY-MM")
	}
	reason, err := input.Text("reason", reason, MaxMemo)
	if err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.AccountingPeriod, error) {
		who, err := poster(ctx)
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, periodKey(period)); err != nil {
			return nil, err
		}
		p, err := tx.AccountingPeriod.Query().Where(accountingperiod.Period(period)).Only(ctx)
		if ent.IsNotFound(err) || (err == nil && p.Status != accountingperiod.StatusCLOSED) {
			return nil, apperr.Conflictf("the period %s is not closed", period)
		} else if err != nil {
			return nil, err
		}
		return tx.AccountingPeriod.UpdateOne(p).SetStatus(accountingperiod.StatusOPEN).
			SetReopenedBy(who).SetReopenedAt(input.Stored(s.now())).SetReopenReason(reason).Save(ctx)
	})
}
