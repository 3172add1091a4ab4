package careaccess

import (
	"net/http"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// TestAccessLogCoversReports: a lab report PDF the doctor prints is in the
// patient's access log like an API read.
func TestAccessLogCoversReports(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	var orders struct {
		LabOrders struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("patient", `{ labOrders(first: 1) { edges { node { id } } } }`, nil).Decode(t, &orders)
	harness.Must(t, len(orders.LabOrders.Edges) == 1, "the demo patient's lab orders: %+v", orders)
	req, _ := http.NewRequest(http.MethodGet, s.HTTP.URL+"/reports/lab-orders/"+orders.LabOrders.Edges[0].Node.ID+".pdf", nil)
	req.Header.Set("Authorization", "Bearer "+s.Token("doctor"))
	resp, err := http.DefaultClient.Do(req)
	harness.Must(t, err == nil && resp.StatusCode == http.StatusOK, "report: %v %v", err, resp)
	resp.Body.Close()
	var log struct {
		MyAccessLog struct {
			Edges []struct {
				Node struct {
					ActorKind, ActorName, Operation string
					Fields                          []string
				}
			}
		}
	}
	s.As("patient", `{ myAccessLog(first: 100) { edges { node { actorKind actorName operation fields } } } }`, nil).Decode(t, &log)
	printed := false
	for _, e := range log.MyAccessLog.Edges {
		printed = printed || (e.Node.ActorName == "Grace Mwangi" && e.Node.ActorKind == "STAFF" && e.Node.Operation == "report:labOrder" && len(e.Node.Fields) > 0)
	}
	harness.Must(t, printed, "the printed report is not in the patient's log: %+v", log)
}
