package ledger

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/ledgeraccount"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// now is the tests' clock: mid-December, so November can be closed.
var now = time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)

type fixture struct {
	svc    *Service
	st     *store.Store
	client *ent.Client
	ctx    context.Context
	acct   map[string]*ent.LedgerAccount
}

func setup(t *testing.T) fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	if err := Seed(sys, st.Client); err != nil {
		t.Fatal(err)
	}
	// Seeding twice adds nothing.
	if err := Seed(sys, st.Client); err != nil {
		t.Fatal(err)
	}
	ProtectJournal(st.Client)
	svc := NewService(st, time.UTC)
	svc.SetClock(func() time.Time { return now })
	f := fixture{svc: svc, st: st, client: st.Client, acct: map[string]*ent.LedgerAccount{},
		ctx: auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_finance", Username: "fo", Roles: []string{"finance_officer"}})}
	all := st.Client.LedgerAccount.Query().AllX(sys)
	if len(all) != len(chart) {
		t.Fatalf("seeded %d accounts, want %d", len(all), len(chart))
	}
	for _, a := range all {
		f.acct[a.Code] = a
	}
	return f
}

func day(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }

func (f fixture) post(e Entry) (*ent.JournalEntry, error) {
	return store.Tx(f.ctx, f.st, func(ctx context.Context, tx *ent.Tx) (*ent.JournalEntry, error) {
		return f.svc.Post(ctx, tx, e)
	})
}

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

func isConflict(err error) bool { return apperr.CodeOf(err) == apperr.Conflict }

func entries(t *testing.T, f fixture) int {
	t.Helper()
	return f.client.JournalEntry.Query().CountX(auth.SystemContext(context.Background()))
}

func TestValidationNamesTheField(t *testing.T) {
	f := setup(t)
	good := func() Entry {
		return Entry{Source: Source{"TEST", "1"}, Date: day(12, 1), Memo: "m", Lines: []Line{
			{AccountCode: Cash, Debit: 100}, {AccountCode: RevenueOther, Credit: 100}}}
	}
	cases := []struct {
		name  string
		edit  func(*Entry)
		field string
	}{
		{"one line", func(e *Entry) { e.Lines = e.Lines[:1] }, "lines"},
		{"unbalanced", func(e *Entry) { e.Lines[1].Credit = 90 }, "lines"},
		{"negative debit", func(e *Entry) { e.Lines[0].Debit = -100; e.Lines[1].Credit = -100 }, "lines[0].debit"},
		{"zero line", func(e *Entry) { e.Lines = append(e.Lines, Line{AccountCode: Cash}) }, "lines[2].debit"},
		{"both sides", func(e *Entry) { e.Lines[0].Credit = 5; e.Lines[1].Debit = 5 }, "lines[0].credit"},
		{"no account", func(e *Entry) { e.Lines[1].AccountCode = "" }, "lines[1].accountId"},
		{"unknown code", func(e *Entry) { e.Lines[1].AccountCode = "9999" }, "lines[1].accountId"},
		{"malformed id", func(e *Entry) { e.Lines[0] = Line{AccountID: "pat_x", Debit: 100} }, "lines[0].accountId"},
		{"no memo", func(e *Entry) { e.Memo = "  " }, "memo"},
		{"no source", func(e *Entry) { e.Source.ID = "" }, "source.id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := good()
			c.edit(&e)
			_, err := f.post(e)
			if !isBadInput(err, c.field) {
				t.Fatalf("err = %v, want BAD_USER_INPUT on %s", err, c.field)
			}
		})
	}
	if n := entries(t, f); n != 0 {
		t.Fatalf("%d entries after refusals, want 0", n)
	}
	e, err := f.post(good())
	if err != nil {
		t.Fatal(err)
	}
	if e.Total != 100 || len(e.Edges.Lines) != 2 || e.Period != "2026-12" || e.PostedBy != "usr_finance" {
		t.Fatalf("posted %+v", e)
	}
	// Manual entries through the finance mutation name input. fields.
	_, err = f.svc.PostManual(f.ctx, PostJournalEntryInput{EntryDate: day(12, 2), Memo: "x", IdempotencyKey: "k",
		Lines: []*JournalLineInput{{AccountID: f.acct[Cash].ID, Debit: ptr(int64(5))}, {AccountID: f.acct[Bank].ID, Credit: ptr(int64(6))}}})
	if !isBadInput(err, "input.lines") {
		t.Fatalf("unbalanced manual entry: %v", err)
	}
	_, err = f.svc.PostManual(f.ctx, PostJournalEntryInput{EntryDate: day(12, 2), Memo: "x", IdempotencyKey: "k",
		Lines: []*JournalLineInput{{AccountID: f.acct[Cash].ID, Debit: ptr(int64(5))}, {AccountID: f.acct[Bank].ID, Credit: ptr(int64(-5))}}})
	if !isBadInput(err, "input.lines[1].credit") {
		t.Fatalf("negative credit: %v", err)
	}
}

func ptr[T any](v T) *T { return &v }

func TestPostIsIdempotentBySource(t *testing.T) {
	f := setup(t)
	c := Charge{ID: "chg_1", Date: day(12, 3), Category: "LAB", Amount: 1000}
	post := func() *ent.JournalEntry {
		e, err := store.Tx(f.ctx, f.st, func(ctx context.Context, tx *ent.Tx) (*ent.JournalEntry, error) {
			return f.svc.ChargeCaptured(ctx, tx, c)
		})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := post(), post()
	if a.ID != b.ID || entries(t, f) != 1 {
		t.Fatalf("a second delivery posted again: %s, %s, %d entries", a.ID, b.ID, entries(t, f))
	}
	tb, err := f.svc.TrialBalance(f.ctx, day(12, 31))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range tb.Rows {
		got[r.Account.Code] = r.Balance
	}
	if got[UnbilledReceivables] != 1000 || got[RevenueLaboratory] != 1000 {
		t.Fatalf("balances %v", got)
	}
}

func TestEntriesAreAppendOnlyAndReversedOnce(t *testing.T) {
	f := setup(t)
	e, err := f.post(Entry{Source: Source{"TEST", "r"}, Date: day(12, 1), Memo: "m", Lines: []Line{
		{AccountCode: Cash, Debit: 250}, {AccountCode: RevenueOther, Credit: 250, DepartmentID: ""}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.client.JournalEntry.UpdateOneID(e.ID).SetUpdatedAt(time.Now()).Exec(f.ctx); !errors.Is(err, ErrAppendOnly) {
		t.Fatalf("update: %v", err)
	}
	if _, err := f.client.JournalLine.Delete().Exec(f.ctx); !errors.Is(err, ErrAppendOnly) {
		t.Fatalf("delete: %v", err)
	}
	if _, err := f.svc.ReverseEntry(f.ctx, e.ID, " "); !isBadInput(err, "reason") {
		t.Fatalf("no reason: %v", err)
	}
	r, err := f.svc.ReverseEntry(f.ctx, e.ID, "posted twice by mistake")
	if err != nil {
		t.Fatal(err)
	}
	if r.ReversesID == nil || *r.ReversesID != e.ID || r.Edges.Lines[0].Credit != 250 || r.Edges.Lines[1].Debit != 250 {
		t.Fatalf("reversal %+v", r)
	}
	if _, err := f.svc.ReverseEntry(f.ctx, e.ID, "again"); !isConflict(err) {
		t.Fatalf("second reversal: %v", err)
	}
	if _, err := f.svc.ReverseEntry(f.ctx, r.ID, "undo"); !isConflict(err) {
		t.Fatalf("reversal of a reversal: %v", err)
	}
	led, err := f.svc.AccountLedger(f.ctx, f.acct[Cash].ID, day(12, 1), day(12, 31))
	if err != nil {
		t.Fatal(err)
	}
	if len(led.Lines) != 2 || led.Lines[0].RunningBalance != 250 || led.Lines[1].RunningBalance != 0 || led.ClosingBalance != 0 {
		t.Fatalf("cash ledger %+v", led)
	}
}

func TestClosedPeriodRefusesPostings(t *testing.T) {
	f := setup(t)
	nov := Entry{Source: Source{"TEST", "nov"}, Date: day(11, 20), Memo: "m", Lines: []Line{
		{AccountCode: Cash, Debit: 10}, {AccountCode: RevenueOther, Credit: 10}}}
	first, err := f.post(nov)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.ClosePeriod(f.ctx, "2026-12"); !isBadInput(err, "period") {
		t.Fatalf("closing the running month: %v", err)
	}
	if _, err := f.svc.ClosePeriod(f.ctx, "2026-13"); !isBadInput(err, "period") {
		t.Fatalf("closing a month that is none: %v", err)
	}
	p, err := f.svc.ClosePeriod(f.ctx, "2026-11")
	if err != nil || p.ClosedBy == nil || *p.ClosedBy != "usr_finance" {
		t.Fatalf("close: %v %+v", err, p)
	}
	if _, err := f.svc.ClosePeriod(f.ctx, "2026-11"); !isConflict(err) {
		t.Fatalf("closing twice: %v", err)
	}
	late := nov
	late.Source.ID = "nov-late"
	if _, err := f.post(late); !isConflict(err) {
		t.Fatalf("posting into a closed period: %v", err)
	}
	// The entry posted before the close is still found by its source.
	if again, err := f.post(nov); err != nil || again.ID != first.ID {
		t.Fatalf("re-delivery after close: %v", err)
	}
	// Reversing November's entry is dated today, in December.
	if r, err := f.svc.ReverseEntry(f.ctx, first.ID, "wrong"); err != nil || r.Period != "2026-12" {
		t.Fatalf("reversal: %v", err)
	}
	late.IntoOpenPeriod = true
	moved, err := f.post(late)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Period != "2026-12" || !moved.EntryDate.Equal(day(12, 15)) || moved.Note == nil {
		t.Fatalf("moved into the open period: %+v", moved)
	}
	if _, err := f.svc.ReopenPeriod(f.ctx, "2026-11", ""); !isBadInput(err, "reason") {
		t.Fatalf("reopen without reason: %v", err)
	}
	if p, err := f.svc.ReopenPeriod(f.ctx, "2026-11", "auditor's adjustment"); err != nil || p.ReopenReason == nil {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := f.svc.ReopenPeriod(f.ctx, "2026-11", "again"); !isConflict(err) {
		t.Fatalf("reopen an open period: %v", err)
	}
	late.Source.ID, late.IntoOpenPeriod = "nov-after-reopen", false
	if e, err := f.post(late); err != nil || e.Period != "2026-11" {
		t.Fatalf("posting after reopen: %v", err)
	}
}

// Concurrent deliveries of the same event post once; distinct events all post.
func TestConcurrentPostings(t *testing.T) {
	f := setup(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	ids := make([]string, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			e, err := f.post(Entry{Source: Source{"TEST", "same"}, Memo: "m", Lines: []Line{
				{AccountCode: Cash, Debit: 7}, {AccountCode: RevenueOther, Credit: 7}}})
			errs[i] = err
			if err == nil {
				ids[i] = e.ID
			}
		}()
		go func() {
			defer wg.Done()
			<-start
			_, errs[n+i] = f.post(Entry{Source: Source{"TEST", fmt.Sprint("distinct-", i)}, Memo: "m", Lines: []Line{
				{AccountCode: Bank, Debit: 3}, {AccountCode: RevenueOther, Credit: 3}}})
		}()
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("posting %d: %v", i, err)
		}
	}
	for _, id := range ids {
		if id != ids[0] {
			t.Fatalf("the same source posted as %s and %s", ids[0], id)
		}
	}
	if got := entries(t, f); got != n+1 {
		t.Fatalf("%d entries, want %d", got, n+1)
	}
	tb, err := f.svc.TrialBalance(f.ctx, day(12, 31))
	if err != nil {
		t.Fatal(err)
	}
	if tb.TotalDebit != 7+3*n || tb.TotalDebit != tb.TotalCredit {
		t.Fatalf("trial balance %d / %d", tb.TotalDebit, tb.TotalCredit)
	}
}

// A close racing postings: every posting either committed before the close
// (and is in the period) or was refused; none lands in a closed period.
func TestCloseRacesPostings(t *testing.T) {
	f := setup(t)
	const n = 12
	var wg sync.WaitGroup
	start := make(chan struct{})
	posted := make([]*ent.JournalEntry, n)
	errs := make([]error, n)
	var closedAt time.Time
	var closeErr error
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			posted[i], errs[i] = f.post(Entry{Source: Source{"TEST", fmt.Sprint("race-", i)}, Date: day(11, 30), Memo: "m",
				Lines: []Line{{AccountCode: Cash, Debit: 1}, {AccountCode: RevenueOther, Credit: 1}}})
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		var p *ent.AccountingPeriod
		p, closeErr = f.svc.ClosePeriod(f.ctx, "2026-11")
		if p != nil {
			closedAt = time.Now()
		}
	}()
	close(start)
	wg.Wait()
	if closeErr != nil {
		t.Fatal(closeErr)
	}
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
			if posted[i].Period != "2026-11" {
				t.Fatalf("posting %d in %s", i, posted[i].Period)
			}
		case !isConflict(err):
			t.Fatalf("posting %d: %v", i, err)
		}
	}
	if ok > 0 && closedAt.IsZero() {
		t.Fatal("the close reported no period")
	}
	// After the close, what is in November is exactly what was reported
	// posted, and nothing more can be added.
	tb, err := f.svc.TrialBalance(f.ctx, day(11, 30))
	if err != nil {
		t.Fatal(err)
	}
	if tb.TotalDebit != int64(ok) {
		t.Fatalf("November holds %d, %d postings succeeded", tb.TotalDebit, ok)
	}
	if _, err := f.post(Entry{Source: Source{"TEST", "after"}, Date: day(11, 30), Memo: "m",
		Lines: []Line{{AccountCode: Cash, Debit: 1}, {AccountCode: RevenueOther, Credit: 1}}}); !isConflict(err) {
		t.Fatalf("posting after the close: %v", err)
	}
	t.Logf("%d of %d postings made it before the close", ok, n)
}

// Thousands of random balanced postings and reversals: the trial balance
// sums to zero and each account's balance equals an independent sum.
func TestPropertyTrialBalance(t *testing.T) {
	f := setup(t)
	rng := rand.New(rand.NewPCG(13, 13))
	codes := make([]string, 0, len(chart))
	for _, a := range chart {
		codes = append(codes, a.code)
	}
	want := map[string][2]int64{} // code → debit, credit
	add := func(code string, d, c int64) {
		w := want[code]
		want[code] = [2]int64{w[0] + d, w[1] + c}
	}
	ops := 2000
	if testing.Short() {
		ops = 300
	}
	var posted []*ent.JournalEntry
	reversed := map[string]bool{}
	for i := 0; i < ops; i++ {
		err := f.st.InTx(f.ctx, func(ctx context.Context, tx *ent.Tx) error {
			if len(posted) > 0 && rng.IntN(5) == 0 {
				e := posted[rng.IntN(len(posted))]
				if reversed[e.ID] {
					return nil
				}
				if _, err := f.svc.Reverse(ctx, tx, e.ID, "random"); err != nil {
					return err
				}
				reversed[e.ID] = true
				for _, l := range e.Edges.Lines {
					code := codeOf(f, l.AccountID)
					add(code, l.Credit, l.Debit)
				}
				return nil
			}
			nl := 2 + rng.IntN(4)
			lines := make([]Line, 0, nl+1)
			var debit, credit int64
			for j := 0; j < nl; j++ {
				amt := 1 + rng.Int64N(1_000_000)
				l := Line{AccountCode: codes[rng.IntN(len(codes))]}
				if rng.IntN(2) == 0 {
					l.Debit, debit = amt, debit+amt
				} else {
					l.Credit, credit = amt, credit+amt
				}
				lines = append(lines, l)
			}
			// Balance with one more line on the short side.
			if debit > credit {
				lines = append(lines, Line{AccountCode: codes[rng.IntN(len(codes))], Credit: debit - credit})
			} else if credit > debit {
				lines = append(lines, Line{AccountCode: codes[rng.IntN(len(codes))], Debit: credit - debit})
			} else {
				lines = append(lines, Line{AccountCode: Cash, Debit: 1}, Line{AccountCode: Bank, Credit: 1})
			}
			e, err := f.svc.Post(ctx, tx, Entry{Source: Source{"TEST", fmt.Sprint("p", i)}, Date: day(12, 1+rng.IntN(15)),
				Memo: "random", Lines: lines})
			if err != nil {
				return err
			}
			posted = append(posted, e)
			for _, l := range lines {
				add(l.AccountCode, l.Debit, l.Credit)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
	tb, err := f.svc.TrialBalance(f.ctx, day(12, 31))
	if err != nil {
		t.Fatal(err)
	}
	if tb.TotalDebit != tb.TotalCredit || tb.TotalDebit == 0 {
		t.Fatalf("trial balance: debits %d, credits %d", tb.TotalDebit, tb.TotalCredit)
	}
	var signedSum int64
	for _, r := range tb.Rows {
		w := want[r.Account.Code]
		if r.Debit != w[0] || r.Credit != w[1] {
			t.Fatalf("%s: %d/%d, independently %d/%d", r.Account.Code, r.Debit, r.Credit, w[0], w[1])
		}
		wantBal := w[0] - w[1]
		if r.Account.NormalBalance == ledgeraccount.NormalBalanceCREDIT {
			wantBal = -wantBal
		}
		if r.Balance != wantBal {
			t.Fatalf("%s balance %d, want %d", r.Account.Code, r.Balance, wantBal)
		}
		signedSum += r.Debit - r.Credit
	}
	if signedSum != 0 {
		t.Fatalf("debits minus credits over all accounts = %d", signedSum)
	}
	// An account's ledger ends at its trial-balance balance.
	led, err := f.svc.AccountLedger(f.ctx, f.acct[Cash].ID, day(1, 1), day(12, 31))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range tb.Rows {
		if r.Account.Code == Cash && r.Balance != led.ClosingBalance {
			t.Fatalf("cash ledger closes at %d, trial balance %d", led.ClosingBalance, r.Balance)
		}
	}
}

func codeOf(f fixture, id string) string {
	for code, a := range f.acct {
		if a.ID == id {
			return code
		}
	}
	return ""
}

func TestTypedPostings(t *testing.T) {
	f := setup(t)
	d := day(12, 5)
	err := f.st.InTx(f.ctx, func(ctx context.Context, tx *ent.Tx) error {
		steps := []func() (*ent.JournalEntry, error){
			func() (*ent.JournalEntry, error) {
				return f.svc.ChargeCaptured(ctx, tx, Charge{ID: "c1", Date: d, Category: "PHARMACY", Amount: 1200})
			},
			func() (*ent.JournalEntry, error) {
				return f.svc.ChargeCaptured(ctx, tx, Charge{ID: "c1-return", Date: d, Category: "PHARMACY", Amount: -200})
			},
			func() (*ent.JournalEntry, error) {
				return f.svc.ChargeCaptured(ctx, tx, Charge{ID: "c2", Date: d, Category: "LAB", Amount: 500})
			},
			func() (*ent.JournalEntry, error) {
				// 1500 of lines: 500 the insurer's, 100 discounted, 50 tax.
				return f.svc.InvoiceIssued(ctx, tx, Invoice{ID: "i1", Date: d, Subtotal: 1500, PayerShare: 500, Discount: 100, Tax: 50, PatientShare: 950})
			},
			func() (*ent.JournalEntry, error) {
				return f.svc.PaymentReceived(ctx, tx, Payment{ID: "p1", Date: d, Method: MethodMobileMoney, Payer: PayerPatient, Applied: 900, HeldAsCredit: 50})
			},
			func() (*ent.JournalEntry, error) { return f.svc.Refund(ctx, tx, "r1", d, MethodCash, 50, true) },
			func() (*ent.JournalEntry, error) { return f.svc.ClaimAdjustment(ctx, tx, "a1", d, 100, 150) },
			func() (*ent.JournalEntry, error) {
				return f.svc.PaymentReceived(ctx, tx, Payment{ID: "p2", Date: d, Method: MethodInsuranceRemittance, Payer: PayerInsurer, Applied: 250})
			},
			func() (*ent.JournalEntry, error) { return f.svc.WriteOff(ctx, tx, "w1", d, PayerPatient, 150) },
		}
		for i, s := range steps {
			if _, err := s(); err != nil {
				return fmt.Errorf("step %d: %w", i, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := f.svc.TrialBalance(f.ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, r := range tb.Rows {
		got[r.Account.Code] = r.Balance
	}
	want := map[string]int64{
		UnbilledReceivables: 0, PatientReceivables: 50, InsurerReceivables: 0, RevenuePharmacy: 1000, RevenueLaboratory: 500,
		DiscountsAllowed: 100, MobileMoneyClearing: 950, PatientDeposits: 0, Cash: -50, Bank: 250, TaxPayable: 50,
		ClaimAdjustments: 100, BadDebtWriteOffs: 150,
	}
	for code, w := range want {
		if got[code] != w {
			t.Errorf("%s = %d, want %d (all: %v)", code, got[code], w, got)
		}
	}
	if tb.TotalDebit != tb.TotalCredit {
		t.Fatalf("unbalanced %d/%d", tb.TotalDebit, tb.TotalCredit)
	}
}

func TestCreateAccount(t *testing.T) {
	f := setup(t)
	a, err := f.svc.CreateAccount(f.ctx, CreateLedgerAccountInput{Code: " 4150-physio ", Name: "Revenue: physiotherapy", Type: ledgeraccount.TypeREVENUE})
	if err != nil {
		t.Fatal(err)
	}
	if a.Code != "4150-PHYSIO" || a.NormalBalance != ledgeraccount.NormalBalanceCREDIT {
		t.Fatalf("%+v", a)
	}
	if _, err := f.svc.CreateAccount(f.ctx, CreateLedgerAccountInput{Code: "4150-PHYSIO", Name: "x", Type: ledgeraccount.TypeREVENUE}); !isConflict(err) {
		t.Fatalf("duplicate code: %v", err)
	}
	if _, err := f.svc.CreateAccount(f.ctx, CreateLedgerAccountInput{Code: "4 1", Name: "x", Type: ledgeraccount.TypeREVENUE}); !isBadInput(err, "input.code") {
		t.Fatalf("bad code: %v", err)
	}
	if _, err := f.svc.CreateAccount(f.ctx, CreateLedgerAccountInput{Code: "X", Name: "x", Type: "CASH"}); !isBadInput(err, "input.type") {
		t.Fatalf("bad type: %v", err)
	}
}

// A posting under way when the close starts: the close waits for it, and
// its entry stands in the period it closes.
func TestCloseWaitsForAPostingUnderWay(t *testing.T) {
	f := setup(t)
	inside, release := make(chan struct{}), make(chan struct{})
	posting := make(chan error, 1)
	go func() {
		posting <- f.st.InTx(f.ctx, func(ctx context.Context, tx *ent.Tx) error {
			_, err := f.svc.Post(ctx, tx, Entry{Source: Source{"TEST", "under-way"}, Date: day(11, 29), Memo: "m",
				Lines: []Line{{AccountCode: Cash, Debit: 40}, {AccountCode: RevenueOther, Credit: 40}}})
			close(inside)
			<-release
			return err
		})
	}()
	<-inside
	var closed atomic.Bool
	closing := make(chan error, 1)
	go func() {
		_, err := f.svc.ClosePeriod(f.ctx, "2026-11")
		closed.Store(true)
		closing <- err
	}()
	// Give a close that does not wait every chance to finish first.
	time.Sleep(300 * time.Millisecond)
	if closed.Load() {
		t.Fatal("the period closed while a posting dated in it was under way")
	}
	close(release)
	if err := <-posting; err != nil {
		t.Fatal(err)
	}
	if err := <-closing; err != nil {
		t.Fatal(err)
	}
	tb, err := f.svc.TrialBalance(f.ctx, day(11, 30))
	if err != nil {
		t.Fatal(err)
	}
	if tb.TotalDebit != 40 {
		t.Fatalf("November holds %d, want the 40 posted before the close", tb.TotalDebit)
	}
}

// A finance officer's retry posts once; the same key for a different
// entry, or a date decades away, is refused by name and posts nothing.
func TestManualEntryKeyAndDateAreChecked(t *testing.T) {
	f := setup(t)
	entry := func(date time.Time, amount int64) PostJournalEntryInput {
		return PostJournalEntryInput{EntryDate: date, Memo: "float", IdempotencyKey: "fo-1",
			Lines: []*JournalLineInput{{AccountID: f.acct[Cash].ID, Debit: ptr(amount)}, {AccountID: f.acct[OpeningEquity].ID, Credit: ptr(amount)}}}
	}
	first, err := f.svc.PostManual(f.ctx, entry(day(12, 2), 5000))
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.PostManual(f.ctx, entry(day(12, 2), 5000))
	if err != nil || again.ID != first.ID {
		t.Fatalf("a retry: %v, %v", again, err)
	}
	if _, err := f.svc.PostManual(f.ctx, entry(day(12, 2), 6000)); !isBadInput(err, "input.idempotencyKey") {
		t.Fatalf("the key for another amount: %v", err)
	}
	for _, d := range []time.Time{time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)} {
		in := entry(d, 5000)
		in.IdempotencyKey = "fo-" + d.Format("2006")
		if _, err := f.svc.PostManual(f.ctx, in); !isBadInput(err, "input.entryDate") {
			t.Fatalf("dated %s: %v", d.Format(time.DateOnly), err)
		}
	}
	if n := entries(t, f); n != 1 {
		t.Fatalf("%d entries, want 1", n)
	}
}
