package lab

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// postHL7 posts an ER7 message to /hl7/v2 with credential and returns the
// status and body.
func postHL7(t testing.TB, s *harness.Server, credential, msg string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.HTTP.URL+"/hl7/v2", strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "x-application/hl7-v2+er7")
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	res, err := s.HTTP.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// TestAnalyzerResultIsEnteredAndVerifiedByATechnician is the issue's
// "done when": the administrator registers a chemistry analyzer and issues
// its key, a potassium sample is ordered, collected and received, the
// analyzer posts its ORU^R01, the result is ENTERED by the instrument, and
// a lab technician verifies it.
func TestAnalyzerResultIsEnteredAndVerifiedByATechnician(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	k := desk.Cat.Potassium

	var reg struct {
		RegisterLabInstrument struct{ ID, Name, Dialect string }
	}
	s.As("admin", `mutation($in: RegisterLabInstrumentInput!) { registerLabInstrument(input: $in) { id name dialect } }`,
		map[string]any{"in": map[string]any{"name": "Chemistry c311", "sendingApplication": "cobas", "sendingFacility": "CHEM", "dialect": "COBAS"}}).
		Decode(t, &reg)
	var key struct {
		CreateLabInstrumentKey struct {
			Secret     string
			Instrument struct{ ID string }
		}
	}
	s.As("admin", `mutation($id: ID!) { createLabInstrumentKey(id: $id) { secret instrument { id } } }`,
		map[string]any{"id": reg.RegisterLabInstrument.ID}).Decode(t, &key)
	secret := key.CreateLabInstrumentKey.Secret
	harness.Must(t, strings.HasPrefix(secret, "hmis_"), "key: %+v", key)

	item := desk.Received(d.Patients[0], k.ID)
	var node struct {
		Node struct {
			Specimen struct{ AccessionNumber string }
		}
	}
	s.As("labtech", `query($id: ID!) { node(id: $id) { ... on LabOrderItem { specimen { accessionNumber } } } }`,
		map[string]any{"id": item}).Decode(t, &node)
	acc := node.Node.Specimen.AccessionNumber
	msg := "MSH|^~\\&|cobas|CHEM|HMIS|HOSP|20261206101500||ORU^R01^ORU_R01|K-1|P|2.5.1\r\n" +
		"PID|1||MRN\r\n" +
		"OBR|1|||" + k.Code + "^Potassium^LN\r\n" +
		"SPM|1|" + acc + "||SER\r\n" +
		"OBX|1|NM|" + k.Code + "^Potassium^LN||4.2|" + *k.Unit + "|||||F\r\n"

	// Nobody but an instrument posts: not anonymous, not a technician.
	status, _ := postHL7(t, s, "", msg)
	harness.Must(t, status == http.StatusUnauthorized, "anonymous: %d", status)
	status, _ = postHL7(t, s, s.Token("labtech"), msg)
	harness.Must(t, status == http.StatusForbidden, "labtech: %d", status)

	status, ack := postHL7(t, s, secret, msg)
	harness.Must(t, status == http.StatusOK && strings.Contains(ack, "\rMSA|AA|K-1\r") && strings.HasPrefix(ack, "MSH|^~\\&|HMIS|HOSP|cobas|CHEM|"),
		"ack %d %q", status, ack)

	// The key posts messages and reads nothing.
	harness.Must(t, harness.DeniedByGuard(s.Do(secret, `{ labTests { totalCount } }`, nil), "lab_instrument"), "the key reads the catalog")

	var read struct {
		Node struct {
			Status  string
			Results []struct {
				ID, Status   string
				NumericValue float64
				Flag         *string
				EnteredBy    *struct{ ID string }
				Instrument   *struct{ ID, Name string }
			}
		}
	}
	itemQuery := `query($id: ID!) { node(id: $id) { ... on LabOrderItem { status results { id status numericValue flag enteredBy { id } instrument { id name } } } } }`
	s.As("labtech", itemQuery, map[string]any{"id": item}).Decode(t, &read)
	rs := read.Node.Results
	harness.Must(t, read.Node.Status == "RESULTED" && len(rs) == 1 && rs[0].Status == "ENTERED" && rs[0].NumericValue == 4.2 &&
		rs[0].EnteredBy == nil && rs[0].Instrument != nil && rs[0].Instrument.Name == "Chemistry c311" && rs[0].Flag != nil,
		"entered: %+v", read)

	// The same message again: the same ACK, nothing entered twice.
	status, again := postHL7(t, s, secret, msg)
	harness.Must(t, status == http.StatusOK && again == ack, "duplicate answered %q, first %q", again, ack)

	v := desk.Verify("labtech2", rs[0].ID)
	harness.Must(t, v.Status == "VERIFIED", "verified: %+v", v)
	s.As("labtech", itemQuery, map[string]any{"id": item}).Decode(t, &read)
	harness.Must(t, read.Node.Status == "VERIFIED" && len(read.Node.Results) == 1, "after verification: %+v", read)
}

// A message that cannot be entered is kept for the lab, raw text and all,
// and only the lab reads it.
func TestUnmatchedAnalyzerMessageWaitsForTheLab(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	var reg struct{ RegisterLabInstrument struct{ ID string } }
	s.As("admin", `mutation { registerLabInstrument(input: {name: "XN", sendingApplication: "XN-550", sendingFacility: "LAB1", dialect: SYSMEX, codeMap: ["WBC=6690-2"]}) { id } }`, nil).
		Decode(t, &reg)
	var key struct{ CreateLabInstrumentKey struct{ Secret string } }
	s.As("admin", `mutation($id: ID!) { createLabInstrumentKey(id: $id) { secret } }`, map[string]any{"id": reg.RegisterLabInstrument.ID}).Decode(t, &key)
	msg := "MSH|^~\\&|XN-550|LAB1|||20261206101500||ORU^R01|S-9|P|2.3.1\rOBR|1||NO-SUCH-SAMPLE\rOBX|1|NM|^^^WBC^1||7.1|10*3/uL|||||F\r"
	status, ack := postHL7(t, s, key.CreateLabInstrumentKey.Secret, msg)
	harness.Must(t, status == http.StatusOK && strings.Contains(ack, "\rMSA|AE|S-9\r") && strings.Contains(ack, "NO-SUCH-SAMPLE"), "ack %d %q", status, ack)

	list := `{ unmatchedInstrumentMessages { totalCount edges { node { id status controlID raw error instrument { name } } } } }`
	var out struct {
		UnmatchedInstrumentMessages struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ID, Status, ControlID, Raw, Error string
					Instrument                        struct{ Name string }
				}
			}
		}
	}
	s.As("labtech", list, nil).Decode(t, &out)
	u := out.UnmatchedInstrumentMessages
	harness.Must(t, u.TotalCount == 1 && u.Edges[0].Node.Status == "UNMATCHED" && u.Edges[0].Node.Raw == msg &&
		u.Edges[0].Node.ControlID == "S-9" && u.Edges[0].Node.Instrument.Name == "XN", "unmatched: %+v", out)
	harness.Must(t, harness.DeniedByGuard(s.As("doctor", list, nil), "doctor"), "a doctor lists the lab's messages")

	r := s.As("labtech2", `mutation($id: ID!) { resolveInstrumentMessage(id: $id, input: {action: DISCARD}) { id } }`,
		map[string]any{"id": u.Edges[0].Node.ID})
	harness.WantBadInput(t, "discard without a reason", r, "input.reason")
	var done struct {
		ResolveInstrumentMessage struct{ Status, ResolutionNote string }
	}
	s.As("labtech2", `mutation($id: ID!) { resolveInstrumentMessage(id: $id, input: {action: DISCARD, reason: "QC sample"}) { status resolutionNote } }`,
		map[string]any{"id": u.Edges[0].Node.ID}).Decode(t, &done)
	harness.Must(t, done.ResolveInstrumentMessage.Status == "DISCARDED", "discarded: %+v", done)
	s.As("labtech", list, nil).Decode(t, &out)
	harness.Must(t, out.UnmatchedInstrumentMessages.TotalCount == 0, "still listed: %+v", out)
}
