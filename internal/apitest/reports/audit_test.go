package reports_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

// TestReportsAreAudited: a run through GraphQL and a download each leave a
// row naming the report and who ran it; a refused download is a DENIED row.
func TestReportsAreAudited(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	r := s.As("hospital_manager", `{ noShowsReport(input: {from: "2026-03-01", to: "2026-03-31"}) { name } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "%s", harness.Describe(r))
	res, _ := download(t, s, "finance_officer", "/reports/collections.csv?from=2026-03-01&to=2026-03-31")
	harness.Must(t, res.StatusCode == http.StatusOK, "download: %d", res.StatusCode)
	res, _ = download(t, s, "nurse", "/reports/collections.csv?from=2026-03-01&to=2026-03-31")
	harness.Must(t, res.StatusCode == http.StatusForbidden, "nurse's download: %d", res.StatusCode)

	ctx := auth.SystemContext(context.Background())
	q := s.App.Store.Client.AuditEvent.Query()
	gql := q.Clone().Where(auditevent.OperationEQ("noShowsReport"), auditevent.OutcomeEQ(auditevent.OutcomeALLOWED)).AllX(ctx)
	harness.Must(t, len(gql) == 1 && gql[0].ActorName == "hospital_manager", "GraphQL run's rows: %+v", gql)
	csv := q.Clone().Where(auditevent.OperationEQ("reports/collections.csv"), auditevent.KindEQ(auditevent.KindHTTP)).AllX(ctx)
	harness.Must(t, len(csv) == 2, "download rows: %d", len(csv))
	outcomes := map[auditevent.Outcome]string{}
	for _, e := range csv {
		outcomes[e.Outcome] = e.ActorName
	}
	harness.Must(t, outcomes[auditevent.OutcomeALLOWED] == "finance_officer" && outcomes[auditevent.OutcomeDENIED] == "nurse",
		"download outcomes: %v", outcomes)

	// A nurse asking for another department's report through GraphQL is
	// refused by the report's own rule, and that refusal is in the trail too.
	d := s.Demo()
	r = s.As("nurse", `query($d: ID!) { noShowsReport(input: {from: "2026-03-01", to: "2026-03-31", departmentId: $d}) { name } }`,
		map[string]any{"d": d.Cardiology})
	harness.Must(t, r.HasCode("FORBIDDEN"), "the nurse's Cardiology report: %s", harness.Describe(r))
	denied := q.Clone().Where(auditevent.OperationEQ("noShowsReport"), auditevent.OutcomeEQ(auditevent.OutcomeDENIED)).AllX(ctx)
	harness.Must(t, len(denied) == 1 && denied[0].ActorName == "nurse", "the refused run's rows: %+v", denied)
}
