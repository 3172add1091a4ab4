package reports_test

import (
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// TestREADMEReportOperationsAreValid runs the README's report examples as
// the hospital manager: each answers.
func TestREADMEReportOperationsAreValid(t *testing.T) {
	t.Parallel()
	ops := harness.READMEOperations(t, "## Reports")
	s := harness.NewServer(t)
	for _, op := range ops {
		r := s.As("hospital_manager", op.Document, nil)
		harness.Must(t, len(r.Errors) == 0, "README operation: %s\n%s", harness.Describe(r), op.Document)
	}
	harness.Must(t, len(ops) == 6, "%d README report operations found", len(ops))
}

func download(t *testing.T, s *harness.Server, user, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.HTTP.URL+path, nil)
	if user != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token(user))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

// TestCSVEqualsGraphQL: the download is the GraphQL answer's table, and is
// refused as the field is.
func TestCSVEqualsGraphQL(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	var out struct {
		CensusReport struct {
			Columns []string
			Rows    [][]*string
		}
	}
	s.As("hospital_manager", `{ censusReport(input: {from: "2026-03-01", to: "2026-03-10", bucket: DAY}) { columns rows } }`, nil).Decode(t, &out)
	res, body := download(t, s, "hospital_manager", "/reports/census.csv?from=2026-03-01&to=2026-03-10&bucket=DAY")
	harness.Must(t, res.StatusCode == http.StatusOK, "csv: %d %s", res.StatusCode, body)
	records, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	harness.Must(t, strings.Join(records[0], ",") == strings.Join(out.CensusReport.Columns, ","), "header %v vs %v", records[0], out.CensusReport.Columns)
	harness.Must(t, len(records)-1 == len(out.CensusReport.Rows), "%d csv rows, %d GraphQL rows", len(records)-1, len(out.CensusReport.Rows))
	for i, row := range out.CensusReport.Rows {
		for j, c := range row {
			want := ""
			if c != nil {
				want = *c
			}
			harness.Must(t, records[i+1][j] == want, "row %d cell %d: csv %q, GraphQL %q", i, j, records[i+1][j], want)
		}
	}

	res, _ = download(t, s, "doctor", "/reports/revenue.csv?from=2026-03-01&to=2026-03-10")
	harness.Must(t, res.StatusCode == http.StatusForbidden, "doctor's revenue csv: %d", res.StatusCode)
	res, _ = download(t, s, "", "/reports/revenue.csv?from=2026-03-01&to=2026-03-10")
	harness.Must(t, res.StatusCode == http.StatusUnauthorized, "anonymous revenue csv: %d", res.StatusCode)
	res, body = download(t, s, "finance_officer", "/reports/revenue.csv?from=2026-03-10&to=2026-03-01")
	harness.Must(t, res.StatusCode == http.StatusBadRequest && strings.Contains(body, "input.to"), "bad range: %d %s", res.StatusCode, body)
}
