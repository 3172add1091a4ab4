package patientapp

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"golang.org/x/text/encoding/charmap"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/globalid"
)

type pdfResponse struct {
	status int
	header http.Header
	body   []byte
}

func getInvoicePDF(t *testing.T, s *harness.Server, credential, id string) pdfResponse {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.HTTP.URL+"/reports/invoices/"+id+".pdf", nil)
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		t.Fatalf("get invoice: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return pdfResponse{resp.StatusCode, resp.Header, b}
}

func (r pdfResponse) code() string {
	var out struct{ Errors []harness.GQLError }
	if json.Unmarshal(r.body, &out) != nil || len(out.Errors) == 0 {
		return ""
	}
	return out.Errors[0].Code()
}

// shown matches a literal string a content stream shows with Tj; the
// invoice's own text needs no octal escapes (cp1252, no control bytes).
var (
	shown    = regexp.MustCompile(`\(((?:\\.|[^\\)])*)\)\s*Tj`)
	unescape = regexp.MustCompile(`\\(.)`)
)

// pdfText is the text the PDF's pages show, joined by newlines.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	api.DisableConfigDir()
	var texts []string
	err := api.ExtractContent(bytes.NewReader(pdf), nil, func(r io.Reader, _ int) error {
		content, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		for _, m := range shown.FindAllSubmatch(content, -1) {
			s, err := charmap.Windows1252.NewDecoder().String(string(unescape.ReplaceAll(m[1], []byte("$1"))))
			if err != nil {
				return err
			}
			texts = append(texts, s)
		}
		return nil
	}, nil)
	if err != nil {
		t.Fatalf("extract PDF content: %v", err)
	}
	return strings.Join(texts, "\n")
}

func TestPrintableInvoice(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	b := newBilling(t, s)
	tokenB := secondPatientUser(t, s, d.Patients[1])
	inv, number := b.issued(d.Patients[0], 2)
	draft := b.draft(d.Patients[0], 1)
	invB, _ := b.issued(d.Patients[1], 1)
	var paid struct{ RecordPayment struct{ ID string } }
	s.As("cashier", `mutation($in: RecordPaymentInput!) { recordPayment(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"patientId": d.Patients[0], "invoiceId": inv, "method": "CASH", "amount": "25.00", "idempotencyKey": "till-1-0001",
		"reference": "TILL-0001"}}).Decode(t, &paid)

	for _, who := range []string{"billing_clerk", "cashier", "auditor", "patient"} {
		r := getInvoicePDF(t, s, s.Token(who), inv)
		harness.Must(t, r.status == http.StatusOK && bytes.HasPrefix(r.body, []byte("%PDF-")), "%s: %d %.200s", who, r.status, r.body)
		harness.Must(t, r.header.Get("Content-Type") == "application/pdf" && r.header.Get("Cache-Control") == "no-store",
			"%s: headers %v", who, r.header)
		if who != "patient" {
			continue
		}
		text := pdfText(t, r.body)
		for _, want := range []string{"HMIS Hospital", "Invoice " + number, "Kamau, Wanjiru", "100000009",
			"ITEM-CERT", "Medical certificate", "30.00", "60.00", "Tax (0 %)", "Insurance (payer share)", "Patient share",
			"Cash", "TILL-0001", "25.00", "Balance due from the patient", "35.00", "Page 1 of"} {
			harness.Must(t, strings.Contains(text, want), "the invoice lacks %q; it shows:\n%s", want, text)
		}
	}
	// The clerk prints a draft, marked as such; the patient does not see it.
	r := getInvoicePDF(t, s, s.Token("billing_clerk"), draft)
	harness.Must(t, r.status == http.StatusOK && strings.Contains(pdfText(t, r.body), "DRAFT"), "clerk's draft: %d", r.status)

	foreign := getInvoicePDF(t, s, s.Token("patient"), invB)
	missing := getInvoicePDF(t, s, s.Token("patient"), globalid.New("inv"))
	harness.Must(t, foreign.status == http.StatusNotFound && bytes.Equal(foreign.body, missing.body),
		"another patient's invoice: %d %s / missing: %s", foreign.status, foreign.body, missing.body)
	harness.Must(t, !bytes.Contains(foreign.body, []byte("Otieno")), "refusal names the patient: %s", foreign.body)
	r = getInvoicePDF(t, s, s.Token("patient"), draft)
	harness.Must(t, r.status == http.StatusNotFound, "patient's own draft: %d %s", r.status, r.body)
	r = getInvoicePDF(t, s, tokenB, invB)
	harness.Must(t, r.status == http.StatusOK, "patient B's own invoice: %d %s", r.status, r.body)

	for _, role := range []string{"doctor", "nurse", "labtech", "hr"} {
		r = getInvoicePDF(t, s, s.Token(role), inv)
		harness.Must(t, r.status == http.StatusForbidden && r.code() == "FORBIDDEN", "%s: %d %s", role, r.status, r.body)
	}
	r = getInvoicePDF(t, s, "", inv)
	harness.Must(t, r.status == http.StatusUnauthorized && r.code() == "UNAUTHENTICATED", "anonymous: %d %s", r.status, r.body)
	r = getInvoicePDF(t, s, s.Token("billing_clerk"), "inv_nope")
	harness.Must(t, r.status == http.StatusBadRequest && r.code() == "BAD_USER_INPUT", "malformed: %d %s", r.status, r.body)

	// Each print is audited, with the invoice and the fields shown.
	rows := harness.AuditRows(t, s, map[string]any{"operation": "report:invoice"})
	allowed, denied := 0, 0
	for _, row := range rows {
		switch row.Outcome {
		case "ALLOWED":
			allowed++
			harness.Must(t, len(row.ObjectIds) == 1 && len(row.Fields) > 0, "audit row %+v", row)
		case "DENIED":
			denied++
		}
	}
	harness.Must(t, allowed == 6 && denied == 5, "audited %d allowed, %d denied: %+v", allowed, denied, rows)
}
