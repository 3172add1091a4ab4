package lab

import (
	"math"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// labView is what one credential reads of the lab through every path a
// frontend has: the lists, the patient's record, and the items' results.
type labView struct {
	results  map[string]string // result ID → status, from labResults
	charted  map[string]string // from patient(id){ labResults } of the first patient
	itemized map[string]string // from labOrderItems { results }
	orders   map[string]string // order ID → patient ID
	items    map[string]string // item ID → patient ID
}

const labViewQuery = `query($p: ID!) {
  labResults(first: 100) { totalCount edges { node { id status patient { id } } } }
  labOrders(first: 100) { edges { node { id patient { id } } } }
  labOrderItems(first: 100) { edges { node { id patient { id } results { id status } } } }
  patient(id: $p) { labResults(first: 100) { edges { node { id status } } } }
}`

// readLabView reads what credential sees, leaving out the rows in old.
func readLabView(t testing.TB, s *harness.Server, credential, patientID string, old map[string]bool) labView {
	t.Helper()
	type node struct {
		ID, Status string
		Patient    struct{ ID string }
		Results    []struct{ ID, Status string }
	}
	type conn struct {
		TotalCount int
		Edges      []struct{ Node node }
	}
	var out struct {
		LabResults, LabOrders, LabOrderItems conn
		Patient                              struct{ LabResults conn }
	}
	s.Do(credential, labViewQuery, map[string]any{"p": patientID}).Decode(t, &out)
	v := labView{results: map[string]string{}, charted: map[string]string{}, itemized: map[string]string{},
		orders: map[string]string{}, items: map[string]string{}}
	harness.Must(t, out.LabResults.TotalCount == len(out.LabResults.Edges), "totalCount %d for %d results", out.LabResults.TotalCount, len(out.LabResults.Edges))
	for _, e := range out.LabResults.Edges {
		if !old[e.Node.ID] {
			v.results[e.Node.ID] = e.Node.Status
		}
	}
	for _, e := range out.Patient.LabResults.Edges {
		if !old[e.Node.ID] {
			v.charted[e.Node.ID] = e.Node.Status
		}
	}
	for _, e := range out.LabOrders.Edges {
		if !old[e.Node.ID] {
			v.orders[e.Node.ID] = e.Node.Patient.ID
		}
	}
	for _, e := range out.LabOrderItems.Edges {
		if old[e.Node.ID] {
			continue
		}
		v.items[e.Node.ID] = e.Node.Patient.ID
		for _, r := range e.Node.Results {
			v.itemized[r.ID] = r.Status
		}
	}
	return v
}

// TestLabRowScopeAndDrafts: a patient reads only their own orders, items
// and results; no one outside the lab reads a result before it is
// verified, whichever path they take to it.
func TestLabRowScopeAndDrafts(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	old := existingLab(t, s)
	own, other := d.Patients[0], d.Patients[1]
	k := desk.Cat.Potassium.ID
	ownDone := desk.Released(own, k, harness.Potassium(4.1))
	otherDone := desk.Released(other, k, harness.Potassium(4.2))
	ownDraft := desk.Entered(own, k, harness.Potassium(4.3))
	otherDraft := desk.Entered(other, k, harness.Potassium(4.4))
	harness.Must(t, ownDraft.Status == "ENTERED" && otherDraft.Status == "ENTERED", "drafts: %+v %+v", ownDraft, otherDraft)
	creds := harness.Credentials(t, s, []string{"patient", "doctor", "nurse", "integrator", "labtech", "labtech2", "billing", "reception"})

	nodeStatus := func(credential, id string) harness.Response {
		return s.Do(credential, `query($id: ID!) { node(id: $id) { id ... on LabResult { status } } }`, map[string]any{"id": id})
	}

	// The patient: their own verified result, nothing else.
	pv := readLabView(t, s, creds["patient"], own, old)
	harness.Must(t, len(pv.results) == 1 && pv.results[ownDone.ID] == "VERIFIED", "the patient's labResults: %v (own verified %s)", pv.results, ownDone.ID)
	harness.Must(t, len(pv.charted) == 1 && pv.charted[ownDone.ID] == "VERIFIED", "the patient's record: %v", pv.charted)
	harness.Must(t, len(pv.itemized) == 1 && pv.itemized[ownDone.ID] == "VERIFIED", "the results of the patient's items: %v", pv.itemized)
	harness.Must(t, len(pv.orders) == 2 && len(pv.items) == 2, "the patient's orders %v and items %v: want their own two", pv.orders, pv.items)
	for id, p := range pv.orders {
		harness.Must(t, p == own, "the patient sees order %s of %s", id, p)
	}
	for id, p := range pv.items {
		harness.Must(t, p == own, "the patient sees item %s of %s", id, p)
	}
	for what, id := range map[string]string{
		"their own unverified result": ownDraft.ID, "another patient's result": otherDone.ID, "another patient's draft": otherDraft.ID,
		"another patient's item": otherDone.Item.ID,
	} {
		r := nodeStatus(creds["patient"], id)
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "NOT_FOUND", "the patient reads %s by node: %s", what, harness.Describe(r))
	}
	r := s.Do(creds["patient"], `query($p: ID!) { patient(id: $p) { labResults { totalCount } } }`, map[string]any{"p": other})
	harness.Must(t, r.HasCode("NOT_FOUND"), "the patient reads another patient's results: %s", harness.Describe(r))
	r = s.Do(creds["patient"], byAccessionQuery, map[string]any{"a": "000000AAAAAA"})
	harness.Must(t, r.HasCode("FORBIDDEN"), "the patient looks up a specimen: %s", harness.Describe(r))

	// Clinicians and integrators: everyone's verified results, no drafts.
	for _, user := range []string{"doctor", "nurse", "integrator"} {
		v := readLabView(t, s, creds[user], own, old)
		for name, paths := range map[string]map[string]string{"labResults": v.results, "patient.labResults": v.charted, "item.results": v.itemized} {
			harness.Must(t, paths[ownDone.ID] == "VERIFIED", "%s: %s lacks the verified %s: %v", user, name, ownDone.ID, paths)
			harness.Must(t, paths[ownDraft.ID] == "", "%s: %s shows the unverified %s: %v", user, name, ownDraft.ID, paths)
		}
		harness.Must(t, v.results[otherDone.ID] == "VERIFIED" && v.results[otherDraft.ID] == "", "%s: other patient's results %v", user, v.results)
		harness.Must(t, len(v.orders) == 4 && len(v.items) == 4, "%s sees %d orders and %d items, want all 4", user, len(v.orders), len(v.items))
		r := nodeStatus(creds[user], ownDraft.ID)
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "NOT_FOUND", "%s reads a draft by node: %s", user, harness.Describe(r))
		r = nodeStatus(creds[user], ownDone.ID)
		harness.Must(t, len(r.Errors) == 0, "%s reads a verified result by node: %s", user, harness.Describe(r))
	}

	// The lab sees its drafts, which it must, to verify them.
	for _, user := range []string{"labtech", "labtech2"} {
		v := readLabView(t, s, creds[user], own, old)
		harness.Must(t, v.results[ownDraft.ID] == "ENTERED" && v.results[otherDraft.ID] == "ENTERED" && v.results[ownDone.ID] == "VERIFIED" &&
			v.charted[ownDraft.ID] == "ENTERED" && v.itemized[otherDraft.ID] == "ENTERED", "%s: %v / %v / %v", user, v.results, v.charted, v.itemized)
		r := nodeStatus(creds[user], ownDraft.ID)
		harness.Must(t, len(r.Errors) == 0 && harness.ContainsJSON(r.Data, `"status":"ENTERED"`), "%s reads a draft by node: %s", user, harness.Describe(r))
	}

	// Billing and reception have no business with results at all.
	for _, user := range []string{"billing", "reception"} {
		for _, doc := range []string{`{ labResults(first: 1) { totalCount } }`, `{ labOrders(first: 1) { totalCount } }`} {
			r := s.Do(creds[user], doc, nil)
			harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN", "%s: %s: %s", user, doc, harness.Describe(r))
		}
	}

	// Once verified, the draft reaches the patient.
	desk.Verify("labtech2", ownDraft.ID)
	pv = readLabView(t, s, creds["patient"], own, old)
	harness.Must(t, len(pv.results) == 2 && pv.results[ownDraft.ID] == "VERIFIED", "after verification: %v", pv.results)
}

// existingLab is every lab order, item and result the server holds now
// (the demo's), for tests to tell them from their own.
func existingLab(t testing.TB, s *harness.Server) map[string]bool {
	t.Helper()
	type conn struct {
		TotalCount int
		Edges      []struct{ Node struct{ ID string } }
	}
	var out struct{ LabOrders, LabOrderItems, LabResults conn }
	s.As("admin", `{ labOrders(first: 100) { totalCount edges { node { id } } }
	  labOrderItems(first: 100) { totalCount edges { node { id } } }
	  labResults(first: 100) { totalCount edges { node { id } } } }`, nil).Decode(t, &out)
	old := map[string]bool{}
	for _, c := range []conn{out.LabOrders, out.LabOrderItems, out.LabResults} {
		harness.Must(t, c.TotalCount == len(c.Edges), "more lab rows than a page: %d", c.TotalCount)
		for _, e := range c.Edges {
			old[e.Node.ID] = true
		}
	}
	return old
}

// TestLabUnverifiedValuesUnreachableThroughFilters: a patient, a clinician
// or an integrator cannot learn a value awaiting verification, a first
// result or a correction, by asking which rows match a filter: the filters
// that reached results from other entities are gone from the schema, and
// those left on labResults count only released results.
func TestLabUnverifiedValuesUnreachableThroughFilters(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	k := desk.Cat.Potassium
	own := d.Patients[0] // the patient user's record
	pf := harness.Facts(t, s, own)
	_, kv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	labtech := staffID(t, s, "labtech")
	creds := harness.Credentials(t, s, []string{"patient", "doctor", "nurse", "integrator", "labtech", "labtech2"})
	outside := []string{"patient", "doctor", "nurse", "integrator"}

	// Two secrets: a critical first result, and a correction of a released
	// one. Neither value is held by any other result of the patient.
	secret := k.Round(kv.CriticalHigh + 0.3)
	draft := desk.Entered(own, k.ID, harness.Potassium(secret))
	orig := desk.Released(own, k.ID, harness.Potassium(kv.Normal))
	fixValue := kv.High
	fix := desk.Amend("labtech", orig.ID, map[string]any{"numericValue": fixValue, "reason": "Re-run"})
	harness.Must(t, draft.Status == "ENTERED" && draft.Critical && fix.Status == "ENTERED", "drafts: %+v / %+v", draft, fix)
	half := math.Pow(10, -float64(k.Decimals)) / 2

	// Filters that reach results from an order, an item, a specimen or a
	// patient search inside a subquery; the viewer's row scope applies
	// there too, so outside the lab the answer is the same whether the
	// threshold is above or below the unverified value, and the lab, which
	// sees drafts, tells the two apart.
	for _, doc := range []string{
		`query($x: Float, $k: ID) { labOrderItems(where: {hasResultsWith: {numericValueGT: $x, hasItemWith: {testID: $k}}}) { totalCount } }`,
		`query($x: Float, $k: ID) { labOrders(where: {hasItemsWith: {hasResultsWith: {numericValueGT: $x, hasItemWith: {testID: $k}}}}) { totalCount } }`,
		`query($x: Float, $k: ID) { labSpecimens(where: {hasItemsWith: {hasResultsWith: {numericValueGT: $x, hasItemWith: {testID: $k}}}}) { totalCount } }`,
		`query($x: Float, $k: ID) { patients(where: {hasLabResultsWith: {numericValueGT: $x, hasItemWith: {testID: $k}}}) { totalCount } }`,
		`query($x: Float, $k: ID) { patients(where: {hasLabOrdersWith: {hasItemsWith: {hasResultsWith: {numericValueGT: $x, hasItemWith: {testID: $k}}}}}) { totalCount } }`,
		`query($x: Float, $k: ID) { labResults(where: {hasItemWith: {hasResultsWith: {numericValueGT: $x, hasItemWith: {testID: $k}}}}) { totalCount } }`,
	} {
		for _, user := range outside {
			below := s.Do(creds[user], doc, map[string]any{"x": secret - 1, "k": k.ID})
			above := s.Do(creds[user], doc, map[string]any{"x": secret + 1, "k": k.ID})
			harness.Must(t, len(below.Errors) == 0 || below.HasCode("FORBIDDEN"), "%s: %s\n%s", user, doc, harness.Describe(below))
			harness.Must(t, harness.Describe(below) == harness.Describe(above), "%s: the answer depends on the threshold: %s\n%s", user, harness.Describe(below), harness.Describe(above))
		}
		below := s.Do(creds["labtech"], doc, map[string]any{"x": secret - 1, "k": k.ID})
		above := s.Do(creds["labtech"], doc, map[string]any{"x": secret + 1, "k": k.ID})
		harness.Must(t, len(below.Errors) == 0 && harness.Describe(below) != harness.Describe(above), "the lab cannot find its draft with %s: %s / %s", doc, harness.Describe(below), harness.Describe(above))
	}
	// Whether an item has results at all, and the edge between a result
	// and its correction, count only results the viewer may see.
	existence := `query($i: ID!) { labOrderItems(where: {id: $i, hasResults: true}) { totalCount }
	  none: labOrderItems(where: {id: $i, hasResults: false}) { totalCount } }`
	for user, want := range map[string]string{"patient": `{"labOrderItems":{"totalCount":0},"none":{"totalCount":1}}`,
		"labtech": `{"labOrderItems":{"totalCount":1},"none":{"totalCount":0}}`} {
		r := s.Do(creds[user], existence, map[string]any{"i": draft.Item.ID})
		harness.Must(t, len(r.Errors) == 0 && string(r.Data) == want, "%s: has results of an item with only a draft: %s", user, harness.Describe(r))
	}
	for _, doc := range []string{
		`query($x: Float) { labResults(where: {hasReplacedByWith: {numericValueGT: $x}}) { totalCount } }`,
		`query($x: Float) { labResults(where: {hasReplacesWith: {numericValueGT: $x}}) { totalCount } }`,
	} {
		for _, user := range outside {
			below := s.Do(creds[user], doc, map[string]any{"x": fixValue - 0.5})
			above := s.Do(creds[user], doc, map[string]any{"x": fixValue + 0.5})
			harness.Must(t, harness.Describe(below) == harness.Describe(above), "%s: the answer depends on the correction's value: %s\n%s", user, harness.Describe(below), harness.Describe(above))
		}
	}

	// What remains filters labResults, whose rows are released ones only
	// outside the lab. Each filter matches one draft; the lab's count shows
	// it does, and after release everyone's count shows it was scope, not
	// the filter, that hid it.
	type filter struct {
		where      map[string]any
		lab, after int // what the lab counts now, and everyone once released
	}
	mine := map[string]any{"id": own}
	theirItems := map[string]any{"idIn": []string{draft.Item.ID, orig.Item.ID}}
	filters := map[string]filter{
		"the exact value":        {map[string]any{"numericValue": secret}, 1, 1},
		"a bracket around it":    {map[string]any{"numericValueGTE": secret - half, "numericValueLTE": secret + half}, 1, 1},
		"above a threshold":      {map[string]any{"numericValueGT": kv.Normal + half, "hasItemWith": theirItems}, 2, 2},
		"critical results":       {map[string]any{"critical": true, "hasPatientWith": mine}, 1, 1},
		"a critical flag":        {map[string]any{"flag": "CRITICAL_HIGH", "hasPatientWith": mine}, 1, 1},
		"its item":               {map[string]any{"hasItemWith": map[string]any{"id": draft.Item.ID}}, 1, 1},
		"its item's state":       {map[string]any{"hasItemWith": map[string]any{"status": "RESULTED"}, "hasPatientWith": mine}, 1, 0},
		"awaiting verification":  {map[string]any{"status": "ENTERED"}, 2, 0},
		"not released":           {map[string]any{"statusNotIn": []string{"VERIFIED", "CORRECTED"}}, 2, 0},
		"never verified":         {map[string]any{"verifiedAtIsNil": true}, 2, 0},
		"entered, not verified":  {map[string]any{"hasEnteredByWith": map[string]any{"id": labtech}, "hasVerifiedBy": false}, 2, 0},
		"a correction of it":     {map[string]any{"replacesID": orig.ID}, 1, 1},
		"any correction":         {map[string]any{"amendReasonNotNil": true, "hasPatientWith": mine}, 1, 1},
		"the correction's value": {map[string]any{"numericValue": fixValue, "hasPatientWith": mine}, 1, 1},
		"either, or":             {map[string]any{"or": []any{map[string]any{"numericValue": secret}, map[string]any{"numericValue": fixValue}}}, 2, 2},
		"not released, negated":  {map[string]any{"not": map[string]any{"statusIn": []string{"VERIFIED", "CORRECTED"}}}, 2, 0},
	}
	count := func(credential string, where map[string]any) int {
		t.Helper()
		var out struct{ LabResults struct{ TotalCount int } }
		s.Do(credential, `query($w: LabResultWhereInput) { labResults(where: $w) { totalCount } }`, map[string]any{"w": where}).Decode(t, &out)
		return out.LabResults.TotalCount
	}
	for name, f := range filters {
		harness.Must(t, count(creds["labtech"], f.where) == f.lab, "the lab counts %d for %s, want %d", count(creds["labtech"], f.where), name, f.lab)
		for _, user := range outside {
			n := count(creds[user], f.where)
			harness.Must(t, n == 0, "%s counts %d unverified results by %s", user, n, name)
		}
	}

	// A bare threshold over every result the viewer may see: released
	// results of other tests lie above it too, so compare counts.
	above := map[string]any{"numericValueGTE": secret - half}
	released := map[string]int{}
	for _, user := range outside {
		released[user] = count(creds[user], above)
	}
	harness.Must(t, count(creds["labtech"], above) == released["doctor"]+1,
		"the lab counts %d at or above %v, the doctor %d: want one more, the draft", count(creds["labtech"], above), secret, released["doctor"])

	desk.Verify("labtech2", draft.ID)
	desk.Verify("labtech2", fix.ID)
	for name, f := range filters {
		for _, user := range outside {
			n := count(creds[user], f.where)
			harness.Must(t, n == f.after, "once released, %s counts %d by %s, want %d", user, n, name, f.after)
		}
	}
	for _, user := range outside {
		n := count(creds[user], above)
		harness.Must(t, n == released[user]+1, "once released, %s counts %d at or above %v, want %d", user, n, secret, released[user]+1)
	}
}
