package ledger

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/accountingperiod"
	"github.com/hmis-dev/hmis/ent/hook"
	"github.com/hmis-dev/hmis/ent/journalentry"
	"github.com/hmis-dev/hmis/ent/ledgeraccount"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Source is the business event an entry records; one entry per source.
type Source struct {
	Type string // CHARGE, DISCOUNT, PAYMENT, REFUND, CLAIM_ADJUSTMENT, WRITE_OFF, MANUAL, REVERSAL, ...
	ID   string
}

// Line is one debit or one credit. The account is named by ID or, for the
// seeded accounts billing posts to, by code.
type Line struct {
	AccountID    string
	AccountCode  string
	Debit        int64
	Credit       int64
	DepartmentID string
}

// Entry is what Post records.
type Entry struct {
	Source Source
	// Date is the accounting date (its month is the period); zero is today.
	Date  time.Time
	Memo  string
	Lines []Line
	// IntoOpenPeriod posts an entry dated in a closed period today instead
	// of refusing it, with a note naming the date it was meant for.
	IntoOpenPeriod bool

	reverses, reason string
}

// Limits on an entry.
const (
	MaxLines   = 500
	MaxMemo    = 500
	MaxSource  = 100
	maxPerLine = int64(1) << 50 // far above any real amount, far below overflow of a sum of MaxLines
)

// ErrAppendOnly is returned for any update or delete of a journal row.
var ErrAppendOnly = fmt.Errorf("journal entries are append-only; post a reversing entry")

// ProtectJournal refuses every update and delete of journal entries and
// lines, so that the books can only grow.
func ProtectJournal(client *ent.Client) {
	ops := ent.OpUpdate | ent.OpUpdateOne | ent.OpDelete | ent.OpDeleteOne
	client.JournalEntry.Use(hook.On(func(ent.Mutator) ent.Mutator {
		return hook.JournalEntryFunc(func(_ context.Context, m *ent.JournalEntryMutation) (ent.Value, error) {
			return nil, fmt.Errorf("ledger: %s refused: %w", m.Op(), ErrAppendOnly)
		})
	}, ops))
	client.JournalLine.Use(hook.On(func(ent.Mutator) ent.Mutator {
		return hook.JournalLineFunc(func(_ context.Context, m *ent.JournalLineMutation) (ent.Value, error) {
			return nil, fmt.Errorf("ledger: %s refused: %w", m.Op(), ErrAppendOnly)
		})
	}, ops))
}

// Period is the accounting period (YYYY-MM) of a date.
func Period(d time.Time) string { return d.Format("2006-01") }

func periodKey(p string) string { return "ledger-period:" + p }

// validate checks an entry's shape, naming fields under prefix ("input.").
func validate(prefix string, e *Entry) error {
	var c input.Checker
	if e.Source.Type == "" || len(e.Source.Type) > 40 {
		c.Fail(apperr.BadInput(prefix+"source.type", "is required, at most 40 characters"))
	}
	if e.Source.ID == "" || len(e.Source.ID) > MaxSource {
		c.Fail(apperr.BadInput(prefix+"source.id", "is required, at most %d characters", MaxSource))
	}
	e.Memo = c.Text(prefix+"memo", e.Memo, MaxMemo)
	if len(e.Lines) < 2 {
		c.Fail(apperr.BadInput(prefix+"lines", "an entry needs at least two lines"))
	}
	if len(e.Lines) > MaxLines {
		c.Fail(apperr.BadInput(prefix+"lines", "an entry has at most %d lines", MaxLines))
	}
	if err := c.Err(); err != nil {
		return err
	}
	var debits, credits int64
	for i, l := range e.Lines {
		f := fmt.Sprintf("%slines[%d].", prefix, i)
		switch {
		case l.AccountID == "" && l.AccountCode == "":
			return apperr.BadInput(f+"accountId", "is required")
		case l.AccountID != "" && !input.LedgerAccount.Valid(l.AccountID):
			return input.ID(f+"accountId", l.AccountID, input.LedgerAccount)
		case l.Debit < 0 || l.Debit > maxPerLine:
			return apperr.BadInput(f+"debit", "must not be negative")
		case l.Credit < 0 || l.Credit > maxPerLine:
			return apperr.BadInput(f+"credit", "must not be negative")
		case l.Debit == 0 && l.Credit == 0:
			return apperr.BadInput(f+"debit", "a line debits or credits an amount above zero")
		case l.Debit != 0 && l.Credit != 0:
			return apperr.BadInput(f+"credit", "a line debits or credits, not both")
		case l.DepartmentID != "" && !input.Department.Valid(l.DepartmentID):
			return input.ID(f+"departmentId", l.DepartmentID, input.Department)
		}
		debits += l.Debit
		credits += l.Credit
	}
	if debits != credits {
		return apperr.BadInput(prefix+"lines", "the debits (%s) and the credits (%s) do not balance", input.FormatMoney(debits), input.FormatMoney(credits))
	}
	return nil
}

// sameEntry tells whether an entry posted under a source is the one a
// retry describes: its date and each line's account and amounts. A line
// named by code has no ID to compare; billing's sources are its own rows'
// IDs and never meet a second, different entry.
func sameEntry(prev *ent.JournalEntry, date time.Time, e Entry) bool {
	if !input.Date(prev.EntryDate).Equal(date) || len(prev.Edges.Lines) != len(e.Lines) {
		return false
	}
	lines := append([]*ent.JournalLine(nil), prev.Edges.Lines...)
	sort.Slice(lines, func(i, j int) bool { return lines[i].Position < lines[j].Position })
	for i, l := range e.Lines {
		if l.AccountID != lines[i].AccountID || l.Debit != lines[i].Debit || l.Credit != lines[i].Credit {
			return false
		}
	}
	return true
}

// Post records e in tx, the caller's transaction, and returns the entry. If
// an entry of the same source exists it is returned and nothing is posted:
// a business event posts once however often it is delivered. Bad input is a
// BAD_USER_INPUT naming the field (lines[2].credit); a date in a closed
// period is a CONFLICT unless e.IntoOpenPeriod.
func (s *Service) Post(ctx context.Context, tx *ent.Tx, e Entry) (*ent.JournalEntry, error) {
	return s.post(ctx, tx, "", e)
}

func (s *Service) post(ctx context.Context, tx *ent.Tx, prefix string, e Entry) (*ent.JournalEntry, error) {
	if err := validate(prefix, &e); err != nil {
		return nil, err
	}
	who, err := poster(ctx)
	if err != nil {
		return nil, err
	}
	today := input.Today(s.now(), s.loc)
	date := today
	if !e.Date.IsZero() {
		date = input.Date(e.Date)
	}
	// The source is held first, so that two deliveries of one event wait for
	// each other and the second finds the first's entry.
	if err := s.store.Lock(ctx, tx, "ledger-source:"+e.Source.Type+":"+e.Source.ID); err != nil {
		return nil, err
	}
	if prev, err := tx.JournalEntry.Query().
		Where(journalentry.SourceType(e.Source.Type), journalentry.SourceID(e.Source.ID)).
		WithLines().Only(ctx); err == nil {
		if e.Source.Type == "MANUAL" && !sameEntry(prev, date, e) {
			return nil, apperr.BadInput(prefix+"idempotencyKey", "was used for another entry")
		}
		return prev, nil
	} else if !ent.IsNotFound(err) {
		return nil, err
	}
	var note *string
	period := Period(date)
	if err := s.store.LockShared(ctx, tx, periodKey(period)); err != nil {
		return nil, err
	}
	closed, err := isClosed(ctx, tx, period)
	if err != nil {
		return nil, err
	}
	if closed {
		if !e.IntoOpenPeriod || Period(today) == period {
			return nil, apperr.Conflictf("the accounting period %s is closed; post the correction in the open period", period)
		}
		n := fmt.Sprintf("dated %s in the closed period %s; posted on %s", date.Format("2006-01-02"), period, today.Format("2006-01-02"))
		note = &n
		date, period = today, Period(today)
		if err := s.store.LockShared(ctx, tx, periodKey(period)); err != nil {
			return nil, err
		}
		if closed, err := isClosed(ctx, tx, period); err != nil {
			return nil, err
		} else if closed {
			return nil, apperr.Conflictf("the accounting period %s is closed too", period)
		}
	}
	accounts, err := s.resolveAccounts(ctx, tx, prefix, e.Lines)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, l := range e.Lines {
		total += l.Debit
	}
	create := tx.JournalEntry.Create().SetSourceType(e.Source.Type).SetSourceID(e.Source.ID).SetMemo(e.Memo).
		SetEntryDate(date).SetPeriod(period).SetPostedBy(who).SetPostedAt(input.Stored(s.now())).
		SetTotal(total).SetNillableNote(note)
	if e.reverses != "" {
		create.SetReversesID(e.reverses).SetReason(e.reason)
	}
	entry, err := create.Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, apperr.Conflictf("the entry was posted or reversed meanwhile")
	} else if err != nil {
		return nil, err
	}
	bulk := make([]*ent.JournalLineCreate, len(e.Lines))
	for i, l := range e.Lines {
		bulk[i] = tx.JournalLine.Create().SetEntryID(entry.ID).SetAccountID(accounts[i]).SetPosition(i).
			SetDebit(l.Debit).SetCredit(l.Credit).SetEntryDate(date)
		if l.DepartmentID != "" {
			bulk[i].SetDepartmentID(l.DepartmentID)
		}
	}
	lines, err := tx.JournalLine.CreateBulk(bulk...).Save(ctx)
	if err != nil {
		return nil, err
	}
	entry.Edges.Lines = lines
	return entry, nil
}

// resolveAccounts returns the account ID of each line, refusing an account
// that does not exist or is inactive.
func (s *Service) resolveAccounts(ctx context.Context, tx *ent.Tx, prefix string, lines []Line) ([]string, error) {
	ids := make([]string, len(lines))
	cache := map[string]*ent.LedgerAccount{}
	for i, l := range lines {
		key := "id:" + l.AccountID
		q := tx.LedgerAccount.Query().Where(ledgeraccount.ID(l.AccountID))
		if l.AccountID == "" {
			key = "code:" + l.AccountCode
			q = tx.LedgerAccount.Query().Where(ledgeraccount.Code(l.AccountCode))
		}
		a, ok := cache[key]
		if !ok {
			var err error
			if a, err = q.Only(ctx); ent.IsNotFound(err) {
				a = nil
			} else if err != nil {
				return nil, err
			}
			cache[key] = a
		}
		field := fmt.Sprintf("%slines[%d].accountId", prefix, i)
		if a == nil {
			return nil, apperr.BadInput(field, "no such account")
		}
		if !a.Active {
			return nil, apperr.BadInput(field, "the account %s is inactive", a.Code)
		}
		ids[i] = a.ID
	}
	return ids, nil
}

func isClosed(ctx context.Context, tx *ent.Tx, period string) (bool, error) {
	return tx.AccountingPeriod.Query().
		Where(accountingperiod.Period(period), accountingperiod.StatusEQ(accountingperiod.StatusCLOSED)).Exist(ctx)
}

// poster names who posts: the signed-in user, or "system" for internal work.
func poster(ctx context.Context) (string, error) {
	v := auth.FromContext(ctx)
	switch {
	case v == nil:
		return "", apperr.Denied("posting to the ledger needs a signed-in user")
	case v.System:
		return "system", nil
	case v.UserID != "":
		return v.UserID, nil
	}
	return "", apperr.Denied("posting to the ledger needs a signed-in user")
}

// Reverse posts the mirror image of entry id, dated today, in tx. An entry
// is reversed once, and a reversal is not reversed (post the entry again).
func (s *Service) Reverse(ctx context.Context, tx *ent.Tx, id, reason string) (*ent.JournalEntry, error) {
	if err := input.ID("id", id, input.JournalEntry); err != nil {
		return nil, err
	}
	reason, err := input.Text("reason", reason, MaxMemo)
	if err != nil {
		return nil, err
	}
	orig, err := tx.JournalEntry.Query().Where(journalentry.ID(id)).WithLines().Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("no journal entry %s", id)
	} else if err != nil {
		return nil, err
	}
	if orig.ReversesID != nil {
		return nil, apperr.Conflictf("the entry is itself a reversal; post the original again instead")
	}
	if err := s.store.Lock(ctx, tx, "ledger-source:REVERSAL:"+id); err != nil {
		return nil, err
	}
	if done, err := tx.JournalEntry.Query().Where(journalentry.ReversesID(id)).Exist(ctx); err != nil {
		return nil, err
	} else if done {
		return nil, apperr.Conflictf("the entry has already been reversed")
	}
	lines := make([]Line, len(orig.Edges.Lines))
	for _, l := range orig.Edges.Lines {
		r := Line{AccountID: l.AccountID, Debit: l.Credit, Credit: l.Debit}
		if l.DepartmentID != nil {
			r.DepartmentID = *l.DepartmentID
		}
		lines[l.Position] = r
	}
	memo := "Reversal of " + orig.SourceType + " " + orig.SourceID + ": " + reason
	if n := []rune(memo); len(n) > MaxMemo {
		memo = string(n[:MaxMemo])
	}
	return s.post(ctx, tx, "", Entry{
		Source: Source{Type: "REVERSAL", ID: id}, Memo: memo, Lines: lines, reverses: id, reason: reason,
	})
}

// ReverseSource reverses the entry a business event posted, for billing's
// reversals (a charge reversed, a payment bounced). NOT_FOUND if the event
// posted nothing.
func (s *Service) ReverseSource(ctx context.Context, tx *ent.Tx, src Source, reason string) (*ent.JournalEntry, error) {
	e, err := tx.JournalEntry.Query().
		Where(journalentry.SourceType(src.Type), journalentry.SourceID(src.ID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("%s %s posted no journal entry", src.Type, src.ID)
	} else if err != nil {
		return nil, err
	}
	return s.Reverse(ctx, tx, e.ID, reason)
}

// Service keeps the ledger.
type Service struct {
	store *store.Store
	now   func() time.Time
	loc   *time.Location
}

// NewService returns a Service on st; loc is the hospital's time zone, in
// which "today" (the date of a reversal) is reckoned.
func NewService(st *store.Store, loc *time.Location) *Service {
	return &Service{store: st, now: time.Now, loc: loc}
}

// SetClock replaces the service's clock, for tests of dates.
func (s *Service) SetClock(now func() time.Time) { s.now = now }
