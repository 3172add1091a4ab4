package apitest

import (
	"math"
	"net/http"
	"strings"
	"testing"
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
func readLabView(t testing.TB, s *server, credential, patientID string, old map[string]bool) labView {
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
	s.do(credential, labViewQuery, map[string]any{"p": patientID}).decode(t, &out)
	v := labView{results: map[string]string{}, charted: map[string]string{}, itemized: map[string]string{},
		orders: map[string]string{}, items: map[string]string{}}
	must(t, out.LabResults.TotalCount == len(out.LabResults.Edges), "totalCount %d for %d results", out.LabResults.TotalCount, len(out.LabResults.Edges))
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
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	old := existingLab(t, s)
	own, other := d.patients[0], d.patients[1]
	k := desk.cat.potassium.ID
	ownDone := desk.released(own, k, potassium(4.1))
	otherDone := desk.released(other, k, potassium(4.2))
	ownDraft := desk.entered(own, k, potassium(4.3))
	otherDraft := desk.entered(other, k, potassium(4.4))
	must(t, ownDraft.Status == "ENTERED" && otherDraft.Status == "ENTERED", "drafts: %+v %+v", ownDraft, otherDraft)
	creds := credentials(t, s, []string{"patient", "doctor", "nurse", "integrator", "labtech", "labtech2", "billing", "reception"})

	nodeStatus := func(credential, id string) response {
		return s.do(credential, `query($id: ID!) { node(id: $id) { id ... on LabResult { status } } }`, map[string]any{"id": id})
	}

	// The patient: their own verified result, nothing else.
	pv := readLabView(t, s, creds["patient"], own, old)
	must(t, len(pv.results) == 1 && pv.results[ownDone.ID] == "VERIFIED", "the patient's labResults: %v (own verified %s)", pv.results, ownDone.ID)
	must(t, len(pv.charted) == 1 && pv.charted[ownDone.ID] == "VERIFIED", "the patient's record: %v", pv.charted)
	must(t, len(pv.itemized) == 1 && pv.itemized[ownDone.ID] == "VERIFIED", "the results of the patient's items: %v", pv.itemized)
	must(t, len(pv.orders) == 2 && len(pv.items) == 2, "the patient's orders %v and items %v: want their own two", pv.orders, pv.items)
	for id, p := range pv.orders {
		must(t, p == own, "the patient sees order %s of %s", id, p)
	}
	for id, p := range pv.items {
		must(t, p == own, "the patient sees item %s of %s", id, p)
	}
	for what, id := range map[string]string{
		"their own unverified result": ownDraft.ID, "another patient's result": otherDone.ID, "another patient's draft": otherDraft.ID,
		"another patient's item": otherDone.Item.ID,
	} {
		r := nodeStatus(creds["patient"], id)
		must(t, len(r.Errors) == 1 && r.Errors[0].code() == "NOT_FOUND", "the patient reads %s by node: %s", what, describe(r))
	}
	r := s.do(creds["patient"], `query($p: ID!) { patient(id: $p) { labResults { totalCount } } }`, map[string]any{"p": other})
	must(t, r.hasCode("NOT_FOUND"), "the patient reads another patient's results: %s", describe(r))
	r = s.do(creds["patient"], byAccessionQuery, map[string]any{"a": "000000AAAAAA"})
	must(t, r.hasCode("FORBIDDEN"), "the patient looks up a specimen: %s", describe(r))

	// Clinicians and integrators: everyone's verified results, no drafts.
	for _, user := range []string{"doctor", "nurse", "integrator"} {
		v := readLabView(t, s, creds[user], own, old)
		for name, paths := range map[string]map[string]string{"labResults": v.results, "patient.labResults": v.charted, "item.results": v.itemized} {
			must(t, paths[ownDone.ID] == "VERIFIED", "%s: %s lacks the verified %s: %v", user, name, ownDone.ID, paths)
			must(t, paths[ownDraft.ID] == "", "%s: %s shows the unverified %s: %v", user, name, ownDraft.ID, paths)
		}
		must(t, v.results[otherDone.ID] == "VERIFIED" && v.results[otherDraft.ID] == "", "%s: other patient's results %v", user, v.results)
		must(t, len(v.orders) == 4 && len(v.items) == 4, "%s sees %d orders and %d items, want all 4", user, len(v.orders), len(v.items))
		r := nodeStatus(creds[user], ownDraft.ID)
		must(t, len(r.Errors) == 1 && r.Errors[0].code() == "NOT_FOUND", "%s reads a draft by node: %s", user, describe(r))
		r = nodeStatus(creds[user], ownDone.ID)
		must(t, len(r.Errors) == 0, "%s reads a verified result by node: %s", user, describe(r))
	}

	// The lab sees its drafts, which it must, to verify them.
	for _, user := range []string{"labtech", "labtech2"} {
		v := readLabView(t, s, creds[user], own, old)
		must(t, v.results[ownDraft.ID] == "ENTERED" && v.results[otherDraft.ID] == "ENTERED" && v.results[ownDone.ID] == "VERIFIED" &&
			v.charted[ownDraft.ID] == "ENTERED" && v.itemized[otherDraft.ID] == "ENTERED", "%s: %v / %v / %v", user, v.results, v.charted, v.itemized)
		r := nodeStatus(creds[user], ownDraft.ID)
		must(t, len(r.Errors) == 0 && containsJSON(r.Data, `"status":"ENTERED"`), "%s reads a draft by node: %s", user, describe(r))
	}

	// Billing and reception have no business with results at all.
	for _, user := range []string{"billing", "reception"} {
		for _, doc := range []string{`{ labResults(first: 1) { totalCount } }`, `{ labOrders(first: 1) { totalCount } }`} {
			r := s.do(creds[user], doc, nil)
			must(t, len(r.Errors) == 1 && r.Errors[0].code() == "FORBIDDEN", "%s: %s: %s", user, doc, describe(r))
		}
	}

	// Once verified, the draft reaches the patient.
	desk.verify("labtech2", ownDraft.ID)
	pv = readLabView(t, s, creds["patient"], own, old)
	must(t, len(pv.results) == 2 && pv.results[ownDraft.ID] == "VERIFIED", "after verification: %v", pv.results)
}

// existingLab is every lab order, item and result the server holds now
// (the demo's), for tests to tell them from their own.
func existingLab(t testing.TB, s *server) map[string]bool {
	t.Helper()
	type conn struct {
		TotalCount int
		Edges      []struct{ Node struct{ ID string } }
	}
	var out struct{ LabOrders, LabOrderItems, LabResults conn }
	s.as("admin", `{ labOrders(first: 100) { totalCount edges { node { id } } }
	  labOrderItems(first: 100) { totalCount edges { node { id } } }
	  labResults(first: 100) { totalCount edges { node { id } } } }`, nil).decode(t, &out)
	old := map[string]bool{}
	for _, c := range []conn{out.LabOrders, out.LabOrderItems, out.LabResults} {
		must(t, c.TotalCount == len(c.Edges), "more lab rows than a page: %d", c.TotalCount)
		for _, e := range c.Edges {
			old[e.Node.ID] = true
		}
	}
	return old
}

func containsJSON(raw []byte, fragment string) bool {
	return len(raw) > 0 && strings.Contains(string(raw), fragment)
}

// draftWhereInputs are the filters of entities some roles see only once
// released. Row scope applies where such an entity is queried, not inside
// another query's filter, so no other filter may lead to one of these.
var draftWhereInputs = map[string]string{
	"LabResultWhereInput":    "LabResultConnection",
	"ClinicalNoteWhereInput": "ClinicalNoteConnection",
	"CarePlanWhereInput":     "CarePlanConnection",
}

type introspectedType struct {
	Name, Kind string
	OfType     *introspectedType
}

func (t *introspectedType) named() string {
	for t != nil && t.OfType != nil {
		t = t.OfType
	}
	if t == nil {
		return ""
	}
	return t.Name
}

// TestLabNoFilterReachesDraftRows reads the schema as a client does: a filter
// of a draft entity is only ever the filter of a query returning that
// entity, where row scope applies, and no other filter leads to it.
func TestLabNoFilterReachesDraftRows(t *testing.T) {
	s := newServer(t)
	var out struct {
		Schema struct {
			Types []struct {
				Name, Kind  string
				InputFields []struct {
					Name string
					Type introspectedType
				}
				Fields []struct {
					Name string
					Type introspectedType
					Args []struct {
						Name string
						Type introspectedType
					}
				}
			}
		} `json:"__schema"`
	}
	s.as("admin", `{ __schema { types { name kind
	  inputFields { name type { ...T } }
	  fields { name type { ...T } args { name type { ...T } } } } } }
	fragment T on __Type { name kind ofType { name kind ofType { name kind ofType { name kind } } } }`, nil).decode(t, &out)
	seen := map[string]bool{}
	for _, typ := range out.Schema.Types {
		seen[typ.Name] = true
		for _, f := range typ.InputFields {
			to := f.Type.named()
			if _, draft := draftWhereInputs[to]; draft && to != typ.Name {
				t.Errorf("%s.%s filters by %s: row scope does not reach inside it", typ.Name, f.Name, to)
			}
		}
		for _, f := range typ.Fields {
			for _, a := range f.Args {
				to := a.Type.named()
				if returns, draft := draftWhereInputs[to]; draft && (typ.Name != "Query" || f.Type.named() != returns) {
					t.Errorf("%s.%s(%s: %s) returns %s: a draft filter only belongs on the root query of its own rows",
						typ.Name, f.Name, a.Name, to, f.Type.named())
				}
			}
		}
	}
	must(t, seen["LabResultWhereInput"] && seen["LabOrderItemWhereInput"] && seen["PatientWhereInput"],
		"the schema lacks the types this test is about: %v", seen)
}

// TestLabUnverifiedValuesUnreachableThroughFilters: a patient, a clinician
// or an integrator cannot learn a value awaiting verification, a first
// result or a correction, by asking which rows match a filter: the filters
// that reached results from other entities are gone from the schema, and
// those left on labResults count only released results.
func TestLabUnverifiedValuesUnreachableThroughFilters(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	k := desk.cat.potassium
	own := d.patients[0] // the patient user's record
	pf := facts(t, s, own)
	_, kv := desk.cat.potassiumFor(t, pf.sex, pf.birth)
	labtech := staffID(t, s, "labtech")
	creds := credentials(t, s, []string{"patient", "doctor", "nurse", "integrator", "labtech", "labtech2"})
	outside := []string{"patient", "doctor", "nurse", "integrator"}

	// Two secrets: a critical first result, and a correction of a released
	// one. Neither value is held by any other result of the patient.
	secret := k.round(kv.criticalHigh + 0.3)
	draft := desk.entered(own, k.ID, potassium(secret))
	orig := desk.released(own, k.ID, potassium(kv.normal))
	fixValue := kv.high
	fix := desk.amend("labtech", orig.ID, map[string]any{"numericValue": fixValue, "reason": "Re-run"})
	must(t, draft.Status == "ENTERED" && draft.Critical && fix.Status == "ENTERED", "drafts: %+v / %+v", draft, fix)
	half := math.Pow(10, -float64(k.Decimals)) / 2

	// The filters that bisected a value from an order, an item, a specimen
	// or a patient no longer exist: the document is refused before
	// anything is read, alike whether the threshold is above or below the
	// value.
	for _, doc := range []string{
		`query($x: Float) { labOrderItems(where: {hasResultsWith: {numericValueGT: $x}}) { totalCount } }`,
		`{ labOrderItems(where: {hasResults: true}) { totalCount } }`,
		`query($x: Float) { labOrders(where: {hasItemsWith: {hasResultsWith: {numericValueGT: $x}}}) { totalCount } }`,
		`query($x: Float) { labSpecimens(where: {hasItemsWith: {hasResultsWith: {numericValueGT: $x}}}) { totalCount } }`,
		`query($x: Float) { patients(where: {hasLabResultsWith: {numericValueGT: $x}}) { totalCount } }`,
		`query($x: Float) { patients(where: {hasLabOrdersWith: {hasItemsWith: {hasResultsWith: {numericValueGT: $x}}}}) { totalCount } }`,
		`query($x: Float) { labResults(where: {hasReplacedByWith: {numericValueGT: $x}}) { totalCount } }`,
		`query($x: Float) { labResults(where: {hasReplacesWith: {numericValueGT: $x}}) { totalCount } }`,
		`query($x: Float) { labResults(where: {hasItemWith: {hasResultsWith: {numericValueGT: $x}}}) { totalCount } }`,
	} {
		for _, user := range []string{"patient", "doctor", "integrator"} {
			below := s.do(creds[user], doc, map[string]any{"x": secret - 1})
			above := s.do(creds[user], doc, map[string]any{"x": secret + 1})
			must(t, below.Status == http.StatusOK && len(below.Errors) == 1 &&
				below.Errors[0].code() == "BAD_USER_INPUT" && strings.Contains(below.Errors[0].Message, "is not defined by type") &&
				string(below.Data) == "null", "%s: %s\n%s", user, doc, describe(below))
			must(t, describe(below) == describe(above), "%s: the answer depends on the threshold: %s\n%s", user, describe(below), describe(above))
		}
	}
	// The same through a variable of the filter's type.
	for _, tc := range []struct{ doc, field string }{
		{`query($w: LabOrderItemWhereInput) { labOrderItems(where: $w) { totalCount } }`, "hasResultsWith"},
		{`query($w: PatientWhereInput) { patients(where: $w) { totalCount } }`, "hasLabResultsWith"},
		{`query($w: LabResultWhereInput) { labResults(where: $w) { totalCount } }`, "hasReplacesWith"},
	} {
		r := s.do(creds["patient"], tc.doc, map[string]any{"w": map[string]any{
			tc.field: []any{map[string]any{"numericValueGT": secret - 1}}}})
		wantBadInput(t, tc.field+" in a variable", r, "w."+tc.field)
		must(t, string(r.Data) == "null", "%s in a variable read something: %s", tc.field, describe(r))
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
		"above a threshold":      {map[string]any{"numericValueGT": kv.normal + half, "hasItemWith": theirItems}, 2, 2},
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
		s.do(credential, `query($w: LabResultWhereInput) { labResults(where: $w) { totalCount } }`, map[string]any{"w": where}).decode(t, &out)
		return out.LabResults.TotalCount
	}
	for name, f := range filters {
		must(t, count(creds["labtech"], f.where) == f.lab, "the lab counts %d for %s, want %d", count(creds["labtech"], f.where), name, f.lab)
		for _, user := range outside {
			n := count(creds[user], f.where)
			must(t, n == 0, "%s counts %d unverified results by %s", user, n, name)
		}
	}

	// A bare threshold over every result the viewer may see: released
	// results of other tests lie above it too, so compare counts.
	above := map[string]any{"numericValueGTE": secret - half}
	released := map[string]int{}
	for _, user := range outside {
		released[user] = count(creds[user], above)
	}
	must(t, count(creds["labtech"], above) == released["doctor"]+1,
		"the lab counts %d at or above %v, the doctor %d: want one more, the draft", count(creds["labtech"], above), secret, released["doctor"])

	desk.verify("labtech2", draft.ID)
	desk.verify("labtech2", fix.ID)
	for name, f := range filters {
		for _, user := range outside {
			n := count(creds[user], f.where)
			must(t, n == f.after, "once released, %s counts %d by %s, want %d", user, n, name, f.after)
		}
	}
	for _, user := range outside {
		n := count(creds[user], above)
		must(t, n == released[user]+1, "once released, %s counts %d at or above %v, want %d", user, n, secret, released[user]+1)
	}
}
