// Package payroll tests payroll runs and payslips through the API, as
// payroll's, HR's, finance's and every member of staff's frontends use
// them.
package payroll

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
)

// lastMonth is the pay period before the current one in the hospital's
// time zone: over, so it can be approved.
func lastMonth(s *harness.Server) string {
	now := time.Now().In(s.App.Config.Location())
	return time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0).Format("2006-01")
}

// taxed is a server whose payslips pay 10 % tax on everything.
func taxed(t *testing.T) *harness.Server {
	return harness.NewServer(t, func(c *config.Config) { c.PayrollTaxBands = "0:10" })
}

type run struct {
	ID, Status, Period                              string
	GrossTotal, TaxTotal, DeductionsTotal, NetTotal string
	ComputedByID                                    string
	JournalEntryID                                  *string
	Payslips                                        []slip
}

type slip struct {
	ID, StaffID, GrossPay, Tax, OtherDeductions, NetPay, CarriedDeductions string
}

const runFields = `id status period grossTotal taxTotal deductionsTotal netTotal computedByID journalEntryID`

func runPayroll(t *testing.T, s *harness.Server, user, period string) run {
	t.Helper()
	var out struct{ RunPayroll run }
	s.As(user, `mutation($p: String!) { runPayroll(period: $p) { `+runFields+` } }`, map[string]any{"p": period}).Decode(t, &out)
	return out.RunPayroll
}

func getPDF(t *testing.T, s *harness.Server, credential, id string) (int, string, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.HTTP.URL+"/reports/payslips/"+id+".pdf", nil)
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		t.Fatalf("get payslip: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), b
}

// TestPayrollFromRunToPaid: payroll computes last month with a deduction
// HR recorded (the demo doctor earns 250000.00: tax 10 % = 25000.00,
// deduction 1000.00, net 224000.00); the one who computed it may not
// approve it; finance approves, payroll marks it paid; the ledger has the
// two entries; the approved run refuses every change.
func TestPayrollFromRunToPaid(t *testing.T) {
	t.Parallel()
	s := taxed(t)
	d := s.Demo()
	period := lastMonth(s)
	var ded struct{ RecordPayDeduction struct{ ID, Amount string } }
	s.As("hr", `mutation($in: RecordPayDeductionInput!) { recordPayDeduction(input: $in) { id amount } }`,
		map[string]any{"in": map[string]any{"staffId": d.Doctor, "period": period, "amount": "1000.00", "description": "Salary advance"}}).Decode(t, &ded)
	harness.Must(t, ded.RecordPayDeduction.Amount == "1000.00", "deduction: %+v", ded)

	r := runPayroll(t, s, "hr", period)
	harness.Must(t, r.Status == "DRAFT" && r.GrossTotal == "250000.00" && r.TaxTotal == "25000.00" &&
		r.DeductionsTotal == "1000.00" && r.NetTotal == "224000.00", "run: %+v", r)
	// HR computed it: HR may not approve it.
	resp := s.As("hr", `mutation($id: ID!) { approvePayroll(id: $id) { id } }`, map[string]any{"id": r.ID})
	harness.Must(t, resp.HasCode("FORBIDDEN"), "approved by who computed it: %s", harness.Describe(resp))
	// Payroll computes it again and may not approve at all.
	r = runPayroll(t, s, "payroll", period)
	resp = s.As("payroll", `mutation($id: ID!) { approvePayroll(id: $id) { id } }`, map[string]any{"id": r.ID})
	harness.Must(t, harness.DeniedByGuard(resp, "payroll"), "payroll approving: %s", harness.Describe(resp))

	var approved struct{ ApprovePayroll run }
	s.As("finance_officer", `mutation($id: ID!) { approvePayroll(id: $id) { `+runFields+` } }`, map[string]any{"id": r.ID}).Decode(t, &approved)
	harness.Must(t, approved.ApprovePayroll.Status == "APPROVED" && approved.ApprovePayroll.JournalEntryID != nil, "approved: %+v", approved)

	// The entry: Dr payroll expense 250000.00 / Cr tax 25000.00, payroll payable 224000.00, deductions 1000.00.
	var entry struct {
		Node struct {
			Lines []struct {
				Debit, Credit string
				Account       struct{ Code string }
			}
		}
	}
	s.As("finance_officer", `query($id: ID!) { node(id: $id) { ... on JournalEntry { lines { debit credit account { code } } } } }`,
		map[string]any{"id": *approved.ApprovePayroll.JournalEntryID}).Decode(t, &entry)
	got := map[string]string{}
	for _, l := range entry.Node.Lines {
		got[l.Account.Code] = l.Debit + "/" + l.Credit
	}
	harness.Must(t, len(got) == 4 && got["5400"] == "250000.00/0.00" && got["2100"] == "0.00/25000.00" &&
		got["2200"] == "0.00/224000.00" && got["2210"] == "0.00/1000.00", "entry lines: %v", got)

	// Immutable: nothing about the period changes any more.
	for name, doc := range map[string]string{
		"run again":        `mutation { runPayroll(period: "` + period + `") { id } }`,
		"record deduction": `mutation { recordPayDeduction(input: {staffId: "` + d.Doctor + `", period: "` + period + `", amount: "5.00", description: "Late"}) { id } }`,
		"remove deduction": `mutation { removePayDeduction(id: "` + ded.RecordPayDeduction.ID + `") }`,
	} {
		resp := s.As("hr", doc, nil)
		harness.Must(t, resp.HasCode("CONFLICT"), "%s on an approved run: %s", name, harness.Describe(resp))
	}
	var again struct{ PayrollRun run }
	s.As("payroll", `query($id: ID!) { payrollRun(id: $id) { `+runFields+` payslips { id staffID grossPay tax otherDeductions netPay carriedDeductions } } }`,
		map[string]any{"id": r.ID}).Decode(t, &again)
	harness.Must(t, again.PayrollRun.NetTotal == "224000.00" && len(again.PayrollRun.Payslips) == 1 &&
		again.PayrollRun.Payslips[0].StaffID == d.Doctor && again.PayrollRun.Payslips[0].NetPay == "224000.00" &&
		again.PayrollRun.Payslips[0].CarriedDeductions == "0.00", "after the refusals: %+v", again)

	var paid struct{ MarkPayrollPaid run }
	resp = s.As("finance_officer", `mutation($id: ID!) { markPayrollPaid(id: $id) { id } }`, map[string]any{"id": r.ID})
	harness.Must(t, harness.DeniedByGuard(resp, "finance_officer"), "finance marking paid: %s", harness.Describe(resp))
	s.As("payroll", `mutation($id: ID!) { markPayrollPaid(id: $id) { `+runFields+` } }`, map[string]any{"id": r.ID}).Decode(t, &paid)
	harness.Must(t, paid.MarkPayrollPaid.Status == "PAID", "paid: %+v", paid)
	resp = s.As("payroll", `mutation($id: ID!) { markPayrollPaid(id: $id) { id } }`, map[string]any{"id": r.ID})
	harness.Must(t, resp.HasCode("CONFLICT"), "paid twice: %s", harness.Describe(resp))
}

// TestPayslipsOwnerHRAndPayrollOnly: a payslip is its owner's once the run
// is approved, HR's and payroll's always; finance sees totals, nobody
// else's payslip; the PDF behaves alike and every read is audited.
func TestPayslipsOwnerHRAndPayrollOnly(t *testing.T) {
	t.Parallel()
	s := taxed(t)
	d := s.Demo()
	period := lastMonth(s)
	r := runPayroll(t, s, "payroll", period)
	var withSlips struct{ PayrollRun run }
	s.As("hr", `query($id: ID!) { payrollRun(id: $id) { id payslips { id staffID netPay } } }`, map[string]any{"id": r.ID}).Decode(t, &withSlips)
	harness.Must(t, len(withSlips.PayrollRun.Payslips) == 1, "payslips: %+v", withSlips)
	slipID := withSlips.PayrollRun.Payslips[0].ID

	mine := func(user string) []slip {
		var out struct{ MyPayslips []slip }
		s.As(user, `{ myPayslips { id staffID netPay } }`, nil).Decode(t, &out)
		return out.MyPayslips
	}
	// A draft is nobody's pay yet: not in myPayslips, not printable by its owner.
	harness.Must(t, len(mine("doctor")) == 0, "a draft's payslip in myPayslips")
	status, _, _ := getPDF(t, s, s.Token("doctor"), slipID)
	harness.Must(t, status == http.StatusNotFound, "owner printing a draft: %d", status)
	status, _, _ = getPDF(t, s, s.Token("payroll"), slipID)
	harness.Must(t, status == http.StatusOK, "payroll printing a draft: %d", status)

	var ok struct{ ApprovePayroll struct{ Status string } }
	s.As("hr", `mutation($id: ID!) { approvePayroll(id: $id) { status } }`, map[string]any{"id": r.ID}).Decode(t, &ok)

	got := mine("doctor")
	harness.Must(t, len(got) == 1 && got[0].ID == slipID && got[0].StaffID == d.Doctor && got[0].NetPay == "225000.00", "doctor's own: %+v", got)
	for _, user := range []string{"nurse", "hr", "payroll", "finance_officer", "admin"} {
		harness.Must(t, len(mine(user)) == 0, "%s sees the doctor's payslip in myPayslips", user)
	}
	resp := s.As("patient", `{ myPayslips { id } }`, nil)
	harness.Must(t, harness.DeniedByGuard(resp, "patient"), "patient: %s", harness.Describe(resp))

	// node(id:) answers for someone else's payslip as for none.
	read := `query($id: ID!) { node(id: $id) { ... on Payslip { id netPay } } }`
	for user, visible := range map[string]bool{"doctor": true, "hr": true, "payroll": true, "nurse": false, "finance_officer": false, "admin": false, "reception": false} {
		resp := s.As(user, read, map[string]any{"id": slipID})
		harness.Must(t, harness.ContainsJSON(resp.Data, `"netPay":"225000.00"`) == visible && (len(resp.Errors) == 0) == visible &&
			(visible || resp.HasCode("NOT_FOUND")), "%s reading the payslip: %s", user, harness.Describe(resp))
		// One that does not exist answers alike.
		resp = s.As(user, read, map[string]any{"id": "psl_01ARZ3NDEKTSV4RRFFQ69G5FAV"})
		harness.Must(t, resp.HasCode("NOT_FOUND"), "%s reading no payslip: %s", user, harness.Describe(resp))
	}
	// Totals for finance; individual payslips not.
	resp = s.As("finance_officer", `query($id: ID!) { payrollRun(id: $id) { netTotal } }`, map[string]any{"id": r.ID})
	harness.Must(t, harness.ContainsJSON(resp.Data, `"netTotal":"225000.00"`), "finance reading totals: %s", harness.Describe(resp))
	resp = s.As("finance_officer", `query($id: ID!) { payrollRun(id: $id) { payslips { id } } }`, map[string]any{"id": r.ID})
	harness.Must(t, harness.DeniedByGuard(resp, "finance_officer"), "finance reading payslips: %s", harness.Describe(resp))

	// The PDF: the owner, HR and payroll; someone else is told it does not exist.
	for user, want := range map[string]int{"doctor": 200, "hr": 200, "payroll": 200, "nurse": 404, "finance_officer": 404, "admin": 404, "patient": 403} {
		status, ctype, body := getPDF(t, s, s.Token(user), slipID)
		harness.Must(t, status == want, "%s printing the payslip: %d %s", user, status, body)
		if want == 200 {
			harness.Must(t, ctype == "application/pdf" && strings.HasPrefix(string(body), "%PDF-"), "%s: not a PDF: %s", user, ctype)
		}
	}
	status, _, _ = getPDF(t, s, s.Token("nurse"), "psl_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	harness.Must(t, status == http.StatusNotFound, "a payslip that does not exist: %d", status)
	status, _, _ = getPDF(t, s, "", slipID)
	harness.Must(t, status == http.StatusUnauthorized, "anonymous: %d", status)

	// Every read is on the audit trail, naming the payslip.
	for _, op := range []string{"myPayslips", "report:payslip", "payrollRun"} {
		rows := harness.AuditRows(t, s, map[string]any{"operation": op})
		found := false
		for _, row := range rows {
			found = found || (slices.Contains(row.Fields, "Payslip") && slices.Contains(row.ObjectIds, slipID))
		}
		harness.Must(t, found, "no audit row of %s naming the payslip: %+v", op, rows)
	}
}

// TestPayrollRoleMatrix: each payroll operation, role by role, allowed and
// denied as policies/payroll.csv says.
func TestPayrollRoleMatrix(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	allowed := map[string][]string{
		"Query.payrollRuns":           {"admin", "hr", "payroll", "finance_officer"},
		"Query.payrollRun":            {"admin", "hr", "payroll", "finance_officer"},
		"Query.payDeductions":         {"hr", "payroll"},
		"Query.myPayslips":            {"admin", "doctor", "nurse", "reception", "labtech", "pharmacist", "billing", "cashier", "finance_officer", "hr", "payroll", "auditor"},
		"Mutation.runPayroll":         {"hr", "payroll"},
		"Mutation.approvePayroll":     {"hr", "finance_officer"},
		"Mutation.markPayrollPaid":    {"payroll"},
		"Mutation.recordPayDeduction": {"hr", "payroll"},
		"Mutation.removePayDeduction": {"hr", "payroll"},
	}
	roles := []string{"admin", "doctor", "nurse", "reception", "labtech", "pharmacist", "billing", "cashier", "finance_officer", "hr", "payroll", "auditor", "patient"}
	for op, who := range allowed {
		doc := harness.PayrollProbes[op]
		for _, role := range roles {
			resp := s.As(role, doc, nil)
			denied := harness.DeniedByGuard(resp, role)
			harness.Must(t, denied != slices.Contains(who, role), "%s as %s: %s", op, role, harness.Describe(resp))
		}
		resp := s.Do("", doc, nil)
		harness.Must(t, harness.DeniedByGuard(resp, "anonymous"), "%s anonymous: %s", op, harness.Describe(resp))
	}
}

// TestBadPayrollInputNamesTheField and writes nothing.
func TestBadPayrollInputNamesTheField(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	harness.WantBadInput(t, "period", s.As("payroll", `mutation { runPayroll(period: "2026/11") { id } }`, nil), "period")
	harness.WantBadInput(t, "future", s.As("payroll", `mutation { runPayroll(period: "2199-01") { id } }`, nil), "period")
	for field, in := range map[string]map[string]any{
		"input.amount":      {"staffId": d.Doctor, "period": "2026-11", "amount": "0.00", "description": "x"},
		"input.period":      {"staffId": d.Doctor, "period": "11-2026", "amount": "1.00", "description": "x"},
		"input.staffId":     {"staffId": d.Cardiology, "period": "2026-11", "amount": "1.00", "description": "x"},
		"input.description": {"staffId": d.Doctor, "period": "2026-11", "amount": "1.00", "description": " "},
	} {
		harness.WantBadInput(t, field, s.As("hr", `mutation($in: RecordPayDeductionInput!) { recordPayDeduction(input: $in) { id } }`,
			map[string]any{"in": in}), field)
	}
	var out struct {
		PayrollRuns struct{ TotalCount int }
		Deductions  []struct{ ID string } `json:"payDeductions"`
	}
	s.As("hr", `{ payrollRuns { totalCount } payDeductions(period: "2026-11") { id } }`, nil).Decode(t, &out)
	harness.Must(t, out.PayrollRuns.TotalCount == 0 && len(out.Deductions) == 0, "refused input wrote: %+v", out)
}

// TestConcurrentRunsThroughAPI: racing runPayroll of one period leave one
// run with one payslip.
func TestConcurrentRunsThroughAPI(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	period := lastMonth(s)
	done := make(chan harness.Response, 6)
	for i := range 6 {
		user := []string{"hr", "payroll"}[i%2]
		go func() {
			done <- s.As(user, `mutation($p: String!) { runPayroll(period: $p) { id } }`, map[string]any{"p": period})
		}()
	}
	for range 6 {
		r := <-done
		for _, e := range r.Errors {
			harness.Must(t, e.Code() == "CONFLICT", "racing run: %s", harness.Describe(r))
		}
	}
	var out struct {
		PayrollRuns struct {
			TotalCount int
			Edges      []struct {
				Node struct{ Payslips []struct{ ID string } }
			}
		}
	}
	s.As("payroll", `{ payrollRuns { totalCount edges { node { payslips { id } } } } }`, nil).Decode(t, &out)
	harness.Must(t, out.PayrollRuns.TotalCount == 1 && len(out.PayrollRuns.Edges[0].Node.Payslips) == 1, "after the race: %+v", out)
}

// TestREADMEPayrollOperationsAreValid runs the README's payroll examples:
// each is valid against the schema; with placeholder IDs it is refused as
// bad input, not found or a conflict, or answers.
func TestREADMEPayrollOperationsAreValid(t *testing.T) {
	t.Parallel()
	ops := harness.READMEOperations(t, "## Staff: payroll and payslips")
	s := harness.NewServer(t)
	for _, op := range ops {
		harness.Must(t, op.Kind != ast.Subscription, "no subscription expected")
		user := "payroll"
		switch {
		case strings.Contains(op.Document, "myPayslips"):
			user = "doctor"
		case strings.Contains(op.Document, "approvePayroll"):
			user = "finance_officer"
		}
		r := s.As(user, op.Document, nil)
		for _, e := range r.Errors {
			harness.Must(t, e.Code() == "BAD_USER_INPUT" || e.Code() == "NOT_FOUND" || e.Code() == "CONFLICT",
				"README operation: %s %v\n%s", e.Code(), e, op.Document)
		}
	}
	harness.Must(t, len(ops) == 7, "%d README payroll operations found", len(ops))
}
