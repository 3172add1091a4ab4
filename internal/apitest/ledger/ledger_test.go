// Package ledger tests the general ledger through the API, as a finance
// officer's and an auditor's frontends use it.
package ledger

import (
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const post = `mutation($in: PostJournalEntryInput!) {
  postJournalEntry(input: $in) { id period entryDate total memo postedBy lines { position debit credit account { code } } }
}`

type entry struct {
	ID, Period, EntryDate, Total, Memo, PostedBy string
	Lines                                        []struct {
		Position      int
		Debit, Credit string
		Account       struct{ Code string }
	}
}

func accounts(t *testing.T, s *harness.Server) map[string]string {
	t.Helper()
	var out struct {
		LedgerAccounts struct {
			Edges []struct{ Node struct{ ID, Code string } }
		}
	}
	s.As("finance_officer", `{ ledgerAccounts(first: 100, orderBy: {field: CODE}) { edges { node { id code } } } }`, nil).Decode(t, &out)
	ids := map[string]string{}
	for _, e := range out.LedgerAccounts.Edges {
		ids[e.Node.Code] = e.Node.ID
	}
	harness.Must(t, ids["1000"] != "" && ids["4200"] != "" && ids["2000"] != "", "seeded chart: %v", ids)
	return ids
}

func manual(key, date string, lines ...map[string]any) map[string]any {
	return map[string]any{"in": map[string]any{"entryDate": date, "memo": "Opening cash float", "idempotencyKey": key, "lines": lines}}
}

func TestFinanceOfficerKeepsTheBooks(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	acct := accounts(t, s)

	// Unbalanced, one-sided and malformed entries are refused naming the field.
	for _, c := range []struct {
		vars  map[string]any
		field string
	}{
		{manual("k1", "2025-03-10", map[string]any{"accountId": acct["1000"], "debit": "100.00"},
			map[string]any{"accountId": acct["3000"], "credit": "90.00"}), "input.lines"},
		{manual("k1", "2025-03-10", map[string]any{"accountId": acct["1000"], "debit": "100.00"}), "input.lines"},
		{manual("k1", "2025-03-10", map[string]any{"accountId": acct["1000"], "debit": "100.00", "credit": "1.00"},
			map[string]any{"accountId": acct["3000"], "credit": "99.00"}), "input.lines[0].credit"},
		{manual("k1", "2025-03-10", map[string]any{"accountId": "pat_x", "debit": "100.00"},
			map[string]any{"accountId": acct["3000"], "credit": "100.00"}), "input.lines[0].accountId"},
	} {
		r := s.As("finance_officer", post, c.vars)
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == c.field, "want %s: %s", c.field, harness.Describe(r))
	}

	vars := manual("float-2025-03", "2025-03-10", map[string]any{"accountId": acct["1000"], "debit": "250.00"},
		map[string]any{"accountId": acct["3000"], "credit": "250.00"})
	var first struct{ PostJournalEntry entry }
	s.As("finance_officer", post, vars).Decode(t, &first)
	e := first.PostJournalEntry
	harness.Must(t, e.Period == "2025-03" && e.Total == "250.00" && len(e.Lines) == 2 && e.Lines[0].Account.Code == "1000" &&
		e.Lines[0].Debit == "250.00" && e.Lines[1].Credit == "250.00", "entry %+v", e)
	// The same key posts once.
	var again struct{ PostJournalEntry entry }
	s.As("finance_officer", post, vars).Decode(t, &again)
	harness.Must(t, again.PostJournalEntry.ID == e.ID, "a retry posted %s after %s", again.PostJournalEntry.ID, e.ID)

	// Close March: a posting dated in it is refused; reopen with a reason.
	var closed struct {
		CloseAccountingPeriod struct{ Period, Status string }
	}
	s.As("finance_officer", `mutation { closeAccountingPeriod(period: "2025-03") { period status } }`, nil).Decode(t, &closed)
	harness.Must(t, closed.CloseAccountingPeriod.Status == "CLOSED", "close: %+v", closed)
	late := manual("late", "2025-03-31", map[string]any{"accountId": acct["1000"], "debit": "1.00"},
		map[string]any{"accountId": acct["3000"], "credit": "1.00"})
	r := s.As("finance_officer", post, late)
	harness.Must(t, r.HasCode("CONFLICT"), "posting into a closed period: %s", harness.Describe(r))
	r = s.As("finance_officer", `mutation { reopenAccountingPeriod(period: "2025-03", reason: "") { status } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "reason", "reopen without reason: %s", harness.Describe(r))
	s.As("finance_officer", `mutation { reopenAccountingPeriod(period: "2025-03", reason: "late invoice") { status reopenReason } }`, nil).
		Decode(t, &struct{}{})
	s.As("finance_officer", post, late).Decode(t, &struct{}{})

	// Reverse the float: the reversal is dated today and mirrors the lines.
	var rev struct {
		ReverseJournalEntry struct {
			ReversesID *string
			Reason     *string
			Lines      []struct{ Debit, Credit string }
		}
	}
	s.As("finance_officer", `mutation($id: ID!) { reverseJournalEntry(id: $id, reason: "counted twice") { reversesID reason lines { debit credit } } }`,
		map[string]any{"id": e.ID}).Decode(t, &rev)
	harness.Must(t, rev.ReverseJournalEntry.ReversesID != nil && *rev.ReverseJournalEntry.ReversesID == e.ID &&
		rev.ReverseJournalEntry.Lines[0].Credit == "250.00", "reversal %+v", rev)
	r = s.As("finance_officer", `mutation($id: ID!) { reverseJournalEntry(id: $id, reason: "again") { id } }`, map[string]any{"id": e.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "second reversal: %s", harness.Describe(r))

	// The trial balance at the end of March, read by the auditor.
	var tb struct {
		TrialBalance struct {
			TotalDebit, TotalCredit string
			Rows                    []struct {
				Account                struct{ Code string }
				Debit, Credit, Balance string
			}
		}
	}
	s.As("auditor", `{ trialBalance(asOf: "2025-03-31") { totalDebit totalCredit rows { account { code } debit credit balance } } }`, nil).
		Decode(t, &tb)
	harness.Must(t, tb.TrialBalance.TotalDebit == "251.00" && tb.TrialBalance.TotalCredit == "251.00", "totals %+v", tb.TrialBalance)
	for _, row := range tb.TrialBalance.Rows {
		if row.Account.Code == "1000" {
			harness.Must(t, row.Balance == "251.00", "cash %+v", row)
		}
		if row.Account.Code == "3000" {
			harness.Must(t, row.Balance == "251.00", "equity %+v", row)
		}
	}

	// Cash's ledger for March with its running balance.
	var led struct {
		AccountLedger struct {
			OpeningBalance, ClosingBalance string
			Lines                          []struct{ EntryDate, Debit, RunningBalance string }
		}
	}
	s.As("auditor", `query($a: ID!) { accountLedger(accountId: $a, from: "2025-03-01", to: "2025-03-31") {
	  openingBalance closingBalance lines { entryDate debit runningBalance } } }`, map[string]any{"a": acct["1000"]}).Decode(t, &led)
	l := led.AccountLedger
	harness.Must(t, l.OpeningBalance == "0.00" && len(l.Lines) == 2 && l.Lines[0].RunningBalance == "250.00" &&
		l.Lines[1].RunningBalance == "251.00" && l.ClosingBalance == "251.00", "cash ledger %+v", l)

	// Journal entries, filtered and paged.
	var je struct {
		JournalEntries struct {
			TotalCount int
			Edges      []struct{ Node struct{ SourceType string } }
			PageInfo   struct{ HasNextPage bool }
		}
	}
	s.As("auditor", `{ journalEntries(first: 1, where: {sourceType: "MANUAL"}, orderBy: {field: POSTED_AT}) {
	  totalCount edges { node { sourceType } } pageInfo { hasNextPage } } }`, nil).Decode(t, &je)
	harness.Must(t, je.JournalEntries.TotalCount == 2 && len(je.JournalEntries.Edges) == 1 && je.JournalEntries.PageInfo.HasNextPage,
		"journal entries %+v", je)

	// A finance officer adds an account; a code is taken once.
	add := `mutation { createLedgerAccount(input: {code: "4150-physio", name: "Revenue: physiotherapy", type: REVENUE}) { code normalBalance } }`
	var acc struct {
		CreateLedgerAccount struct{ Code, NormalBalance string }
	}
	s.As("finance_officer", add, nil).Decode(t, &acc)
	harness.Must(t, acc.CreateLedgerAccount.Code == "4150-PHYSIO" && acc.CreateLedgerAccount.NormalBalance == "CREDIT", "%+v", acc)
	harness.Must(t, s.As("finance_officer", add, nil).HasCode("CONFLICT"), "duplicate account code")
}

// The auditor reads and changes nothing; billing and patients read nothing.
func TestLedgerAccess(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	read := `{ trialBalance(asOf: "2025-01-31") { totalDebit } }`
	harness.Must(t, len(s.As("auditor", read, nil).Errors) == 0, "auditor reads the trial balance")
	for _, who := range []string{"billing", "patient", "doctor"} {
		r := s.As(who, read, nil)
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s read the trial balance: %s", who, harness.Describe(r))
	}
	r := s.As("auditor", `mutation { closeAccountingPeriod(period: "2025-01") { status } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "auditor closed a period: %s", harness.Describe(r))
}
