package lab

import (
	"fmt"
	"math"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/lab"
)

// labState describes everything of an order the lab's mutations change, as
// the admin sees it, so that a refused mutation can be shown to have
// changed nothing.
func labState(t testing.TB, s *harness.Server, orderID string) string {
	t.Helper()
	var out struct {
		Node struct {
			Items []struct {
				ID, Status string
				Specimen   *struct{ ID string }
				Results    []struct{ ID, Status string }
			}
			Specimens []struct{ ID, Status string }
		}
	}
	s.As("admin", `query($id: ID!) { node(id: $id) { ... on LabOrder {
	  items { id status specimen { id } results { id status } }
	  specimens { id status } } } }`, map[string]any{"id": orderID}).Decode(t, &out)
	var parts []string
	for _, it := range out.Node.Items {
		sp := "-"
		if it.Specimen != nil {
			sp = it.Specimen.ID
		}
		var rs []string
		for _, r := range it.Results {
			rs = append(rs, r.ID+"="+r.Status)
		}
		sort.Strings(rs)
		parts = append(parts, fmt.Sprintf("item %s=%s on %s results [%s]", it.ID, it.Status, sp, strings.Join(rs, " ")))
	}
	for _, sp := range out.Node.Specimens {
		parts = append(parts, "specimen "+sp.ID+"="+sp.Status)
	}
	sort.Strings(parts)
	return strings.Join(parts, "; ")
}

func labOrderCount(t testing.TB, s *harness.Server, patientID string) int {
	t.Helper()
	var out struct {
		Node struct{ LabOrders struct{ TotalCount int } }
	}
	s.As("admin", `query($id: ID!) { node(id: $id) { ... on Patient { labOrders { totalCount } } } }`,
		map[string]any{"id": patientID}).Decode(t, &out)
	return out.Node.LabOrders.TotalCount
}

// TestLabRefusalsOverHTTP: a transition from the wrong state is CONFLICT,
// bad input is BAD_USER_INPUT naming the field, and neither changes
// anything.
func TestLabRefusalsOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	cat := desk.Cat
	pat := d.Patients[1]

	// Orders.
	orders := labOrderCount(t, s, pat)
	var enc struct{ StartEncounter struct{ ID string } }
	s.As("nurse", harness.StartEncounterMutation, map[string]any{"in": map[string]any{
		"patientId": d.Patients[2], "type": "OUTPATIENT", "departmentId": d.General, "reason": "Dysuria"}}).Decode(t, &enc)
	for _, tc := range []struct {
		name  string
		in    map[string]any
		field string
	}{
		{"a malformed test ID", map[string]any{"testIds": []string{"garbage"}}, "input.testIds.0"},
		{"a panel among the tests", map[string]any{"testIds": []string{cat.Potassium.ID, cat.Panel.ID}}, "input.testIds.1"},
		{"an unknown test", map[string]any{"testIds": []string{cat.Potassium.ID, globalid.New("lbt")}}, "input.testIds.1"},
		{"an unknown panel", map[string]any{"testIds": []string{cat.Potassium.ID}, "panelIds": []string{globalid.New("lbp")}}, "input.panelIds.0"},
		{"nothing to order", map[string]any{"testIds": []string{}, "panelIds": []string{}}, "input.testIds"},
		{"notes too long", map[string]any{"testIds": []string{cat.Potassium.ID}, "clinicalNotes": strings.Repeat("x", 2001)}, "input.clinicalNotes"},
		{"another patient's encounter", map[string]any{"testIds": []string{cat.Potassium.ID}, "encounterId": enc.StartEncounter.ID}, "input.encounterId"},
		{"not a patient", map[string]any{"patientId": d.Doctor, "testIds": []string{cat.Potassium.ID}}, "input.patientId"},
	} {
		in := map[string]any{"patientId": pat}
		for k, v := range tc.in {
			in[k] = v
		}
		harness.WantBadInput(t, tc.name, s.As("doctor", harness.LabOrderMutation, map[string]any{"in": in}), tc.field)
	}
	for _, user := range []string{"nurse", "labtech", "patient", "reception"} {
		r := s.As(user, harness.LabOrderMutation, map[string]any{"in": map[string]any{"patientId": pat, "testIds": []string{cat.Potassium.ID}}})
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s orders: %s", user, harness.Describe(r))
	}
	harness.Must(t, labOrderCount(t, s, pat) == orders, "refused orders created some: %d, was %d", labOrderCount(t, s, pat), orders)

	o := desk.Order(pat, []string{cat.Potassium.ID, cat.UrineProtein.ID, cat.Haemoglobin.ID}, nil, nil)
	kItem, upItem, hbItem := o.Item(t, cat.Potassium.ID), o.Item(t, cat.UrineProtein.ID), o.Item(t, cat.Haemoglobin.ID)

	// refused runs a request that must fail with code (and, for
	// BAD_USER_INPUT, field) and leave the order as it was.
	refused := func(what, user, doc string, vars map[string]any, code, field string) {
		t.Helper()
		before := labState(t, s, o.ID)
		r := s.As(user, doc, vars)
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == code && r.Errors[0].Field() == field,
			"%s: want %s %s, got %s", what, code, field, harness.Describe(r))
		after := labState(t, s, o.ID)
		harness.Must(t, after == before, "%s changed the order:\n%s\nwas\n%s", what, after, before)
	}
	enter := func(item string, in map[string]any) map[string]any { return map[string]any{"item": item, "in": in} }
	collect := func(in map[string]any) map[string]any { return map[string]any{"in": in} }

	refused("enter before collection", "labtech", harness.LabEnterMutation, enter(kItem, harness.Potassium(4)), "CONFLICT", "")
	refused("collect in the future", "nurse", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{kItem},
		"collectedAt": time.Now().UTC().Add(time.Hour).Format(time.RFC3339)}), "BAD_USER_INPUT", "input.collectedAt")
	refused("collect before the order", "nurse", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{kItem},
		"collectedAt": time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)}), "BAD_USER_INPUT", "input.collectedAt")
	refused("serum and urine in one container", "nurse", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{kItem, upItem}}),
		"BAD_USER_INPUT", "input.itemIds.1")
	refused("an item twice", "nurse", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{kItem, kItem}}),
		"BAD_USER_INPUT", "input.itemIds.1")
	refused("a malformed item", "nurse", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{"bad"}}),
		"BAD_USER_INPUT", "input.itemIds.0")
	refused("no items", "nurse", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{}}), "BAD_USER_INPUT", "input.itemIds")
	refused("the pharmacist collects", "pharmacist", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{kItem}}), "FORBIDDEN", "")

	kSpec := desk.Collect("nurse", kItem)
	refused("collect twice", "nurse", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{kItem}}), "CONFLICT", "")
	refused("enter before receipt", "labtech", harness.LabEnterMutation, enter(kItem, harness.Potassium(4)), "CONFLICT", "")
	refused("the nurse receives", "nurse", harness.LabReceiveMutation, map[string]any{"id": kSpec.ID}, "FORBIDDEN", "")
	desk.Receive("labtech", kSpec.ID)
	refused("receive twice", "labtech", harness.LabReceiveMutation, map[string]any{"id": kSpec.ID}, "CONFLICT", "")
	refused("receive garbage", "labtech", harness.LabReceiveMutation, map[string]any{"id": "bad"}, "BAD_USER_INPUT", "id")

	refused("a coded value for a numeric test", "labtech", harness.LabEnterMutation,
		enter(kItem, map[string]any{"codedValue": "NEGATIVE"}), "BAD_USER_INPUT", "input.numericValue")
	refused("two values", "labtech", harness.LabEnterMutation,
		enter(kItem, map[string]any{"numericValue": 4, "textValue": "four"}), "BAD_USER_INPUT", "input.numericValue")
	refused("no value", "labtech", harness.LabEnterMutation, enter(kItem, map[string]any{}), "BAD_USER_INPUT", "input.numericValue")
	refused("a comment too long", "labtech", harness.LabEnterMutation,
		enter(kItem, map[string]any{"numericValue": 4, "comment": strings.Repeat("x", 4001)}), "BAD_USER_INPUT", "input.comment")
	refused("the nurse enters", "nurse", harness.LabEnterMutation, enter(kItem, harness.Potassium(4)), "FORBIDDEN", "")

	upSpec := desk.Collect("nurse", upItem)
	desk.Receive("labtech", upSpec.ID)
	refused("a code the test does not have", "labtech", harness.LabEnterMutation,
		enter(upItem, map[string]any{"codedValue": "PURPLE"}), "BAD_USER_INPUT", "input.codedValue")
	abnormal := ""
	for _, c := range cat.UrineProtein.ResultCodes {
		normal := false
		for _, n := range cat.UrineProtein.NormalCodes {
			normal = normal || n == c
		}
		if !normal && abnormal == "" {
			abnormal = c
		}
	}
	harness.Must(t, abnormal != "", "urine protein has no abnormal answer: %+v", cat.UrineProtein)
	up := desk.Enter("labtech", upItem, map[string]any{"codedValue": abnormal})
	harness.Must(t, up.CodedValue != nil && *up.CodedValue == abnormal && up.FlagOrNone() == "ABNORMAL" && up.NumericValue == nil &&
		up.Unit == nil && !up.Critical, "coded result: %+v", up)

	refused("enter twice", "labtech2", harness.LabEnterMutation, enter(upItem, map[string]any{"codedValue": abnormal}), "CONFLICT", "")
	refused("cancel a resulted item", "doctor", cancelItemMutation, map[string]any{"id": upItem, "r": "not needed"}, "CONFLICT", "")
	refused("cancel without a reason", "doctor", cancelItemMutation, map[string]any{"id": kItem, "r": "  "}, "BAD_USER_INPUT", "reason")
	refused("amend an entered result", "labtech2", harness.LabAmendMutation,
		map[string]any{"id": up.ID, "in": map[string]any{"codedValue": "NEGATIVE", "reason": "misread"}}, "CONFLICT", "")
	// To a nurse a result not yet verified does not exist.
	refused("acknowledge an unverified result", "nurse", harness.LabAcknowledgeMutation, map[string]any{"id": up.ID}, "NOT_FOUND", "")
	refused("verify an order", "labtech2", harness.LabVerifyMutation, map[string]any{"id": o.ID}, "BAD_USER_INPUT", "id")

	desk.Verify("labtech2", up.ID)
	refused("verify twice", "labtech", harness.LabVerifyMutation, map[string]any{"id": up.ID}, "CONFLICT", "")
	// A released result is out: rejecting its specimen now would not call
	// it back, so it is corrected by amendment instead.
	refused("reject a specimen whose tests are verified", "labtech", rejectMutation,
		map[string]any{"id": upSpec.ID, "in": map[string]any{"reason": "CONTAMINATED"}}, "CONFLICT", "")
	refused("amend without a reason", "labtech", harness.LabAmendMutation,
		map[string]any{"id": up.ID, "in": map[string]any{"codedValue": "NEGATIVE", "reason": " "}}, "BAD_USER_INPUT", "input.reason")
	refused("amend with a bad code", "labtech", harness.LabAmendMutation,
		map[string]any{"id": up.ID, "in": map[string]any{"codedValue": "PURPLE", "reason": "misread"}}, "BAD_USER_INPUT", "input.codedValue")
	refused("acknowledge a result that is not critical", "nurse", harness.LabAcknowledgeMutation, map[string]any{"id": up.ID}, "CONFLICT", "")

	// Rejection sends an item back to be collected again.
	hbSpec := desk.Collect("nurse", hbItem)
	refused("reject for OTHER without a note", "labtech", rejectMutation,
		map[string]any{"id": hbSpec.ID, "in": map[string]any{"reason": "OTHER", "note": " "}}, "BAD_USER_INPUT", "input.note")
	var rejected struct{ RejectLabSpecimen harness.LabSpecimen }
	s.As("labtech", rejectMutation, map[string]any{"id": hbSpec.ID, "in": map[string]any{"reason": "CLOTTED"}}).Decode(t, &rejected)
	harness.Must(t, rejected.RejectLabSpecimen.Status == "REJECTED" && *rejected.RejectLabSpecimen.RejectionReason == "CLOTTED" &&
		len(rejected.RejectLabSpecimen.Items) == 1 && rejected.RejectLabSpecimen.Items[0].Status == "REJECTED", "rejected: %+v", rejected)
	refused("reject twice", "labtech", rejectMutation, map[string]any{"id": hbSpec.ID, "in": map[string]any{"reason": "CLOTTED"}}, "CONFLICT", "")
	refused("receive a rejected specimen", "labtech", harness.LabReceiveMutation, map[string]any{"id": hbSpec.ID}, "CONFLICT", "")
	again := desk.Collect("nurse", hbItem)
	harness.Must(t, again.ID != hbSpec.ID && again.AccessionNumber != hbSpec.AccessionNumber && again.Status == "COLLECTED" &&
		again.Items[0].Status == "COLLECTED", "recollected: %+v (first %+v)", again, hbSpec)

	var cancelled struct {
		CancelLabOrderItem struct {
			ID, Status   string
			CancelReason *string
			CancelledBy  *struct{ ID string }
		}
	}
	s.As("doctor", cancelItemMutation, map[string]any{"id": hbItem, "r": "Duplicate request"}).Decode(t, &cancelled)
	c := cancelled.CancelLabOrderItem
	harness.Must(t, c.Status == "CANCELLED" && *c.CancelReason == "Duplicate request" && c.CancelledBy.ID == d.Doctor, "cancelled: %+v", c)
	refused("cancel twice", "labtech", cancelItemMutation, map[string]any{"id": hbItem, "r": "again"}, "CONFLICT", "")
	refused("collect a cancelled item", "nurse", harness.LabCollectMutation, collect(map[string]any{"itemIds": []string{hbItem}}), "CONFLICT", "")
	refused("enter a cancelled item", "labtech", harness.LabEnterMutation, enter(hbItem, harness.Potassium(12)), "CONFLICT", "")
	// The recollected tube holds nothing the lab is still asked to run.
	refused("receive a specimen whose every test was cancelled", "labtech", harness.LabReceiveMutation, map[string]any{"id": again.ID}, "CONFLICT", "")
	refused("reject a specimen whose every test was cancelled", "labtech", rejectMutation,
		map[string]any{"id": again.ID, "in": map[string]any{"reason": "HAEMOLYSED"}}, "CONFLICT", "")
}

// TestLabRejectAfterEntryOverHTTP: a result entered on a specimen the lab
// then rejects (a mislabeled tube holds someone else's blood) is DISCARDED:
// kept for the lab's own record, never released to anyone else, never
// verifiable; the item is collected again and resulted afresh.
func TestLabRejectAfterEntryOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	cat := desk.Cat
	own := d.Patients[0] // the patient user's record
	pf := harness.Facts(t, s, own)
	_, kv := cat.PotassiumFor(t, pf.Sex, pf.Birth)
	old := existingLab(t, s)
	creds := harness.Credentials(t, s, []string{"patient", "doctor", "nurse", "integrator", "labtech", "labtech2"})

	// Potassium and the rest of the panel share one tube; only potassium
	// is resulted before the tube is found mislabeled.
	o := desk.Order(own, []string{cat.Potassium.ID}, []string{cat.Panel.ID}, nil)
	var tube []string
	for _, it := range o.Items {
		if it.Test.SpecimenType == cat.Potassium.SpecimenType {
			tube = append(tube, it.ID)
		}
	}
	harness.Must(t, len(tube) >= 2, "the panel shares no tube with potassium: %+v", o.Items)
	kItem := o.Item(t, cat.Potassium.ID)
	sp := desk.Collect("nurse", tube...)
	desk.Receive("labtech", sp.ID)
	entered := desk.Enter("labtech", kItem, harness.Potassium(kv.High))
	harness.Must(t, entered.Status == "ENTERED" && entered.Item.Status == "RESULTED", "entered: %+v", entered)

	var rejected struct{ RejectLabSpecimen harness.LabSpecimen }
	s.As("labtech2", rejectMutation, map[string]any{"id": sp.ID, "in": map[string]any{
		"reason": "MISLABELED", "note": "Label names another patient"}}).Decode(t, &rejected)
	rj := rejected.RejectLabSpecimen
	harness.Must(t, rj.Status == "REJECTED" && rj.RejectionReason != nil && *rj.RejectionReason == "MISLABELED" && len(rj.Items) == len(tube),
		"rejected: %+v", rj)
	for _, it := range rj.Items {
		harness.Must(t, it.Status == "REJECTED", "an item of the rejected tube, resulted or not: %+v", rj.Items)
	}

	// The lab keeps what was entered, marked as never to be released.
	gone := desk.Read("labtech", entered.ID)
	harness.Must(t, gone.Status == "DISCARDED" && gone.NumericValue != nil && *gone.NumericValue == kv.High && gone.VerifiedAt == nil &&
		gone.VerifiedBy == nil && gone.Item.Status == "REJECTED", "the entered result after rejection: %+v", gone)
	inLab := readLabView(t, s, creds["labtech"], own, old)
	harness.Must(t, inLab.results[entered.ID] == "DISCARDED" && inLab.charted[entered.ID] == "DISCARDED" && inLab.itemized[entered.ID] == "DISCARDED",
		"the lab's views of the discarded result: %v / %v / %v", inLab.results, inLab.charted, inLab.itemized)

	// Outside the lab it never existed, whichever path is taken to it.
	for _, user := range []string{"doctor", "nurse", "integrator", "patient"} {
		v := readLabView(t, s, creds[user], own, old)
		harness.Must(t, v.results[entered.ID] == "" && v.charted[entered.ID] == "" && v.itemized[entered.ID] == "",
			"%s sees the discarded result: %v / %v / %v", user, v.results, v.charted, v.itemized)
		r := s.Do(creds[user], harness.LabResultQuery, map[string]any{"id": entered.ID})
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "NOT_FOUND", "%s reads the discarded result by node: %s", user, harness.Describe(r))
		var count struct{ LabResults struct{ TotalCount int } }
		s.Do(creds[user], `{ labResults(where: {statusIn: [DISCARDED, ENTERED]}) { totalCount } }`, nil).Decode(t, &count)
		harness.Must(t, count.LabResults.TotalCount == 0, "%s counts %d unreleased results", user, count.LabResults.TotalCount)
	}

	// Nobody can bring it back.
	before := labState(t, s, o.ID)
	for _, tc := range []struct{ what, user, doc, code string }{
		{"verify it", "labtech2", harness.LabVerifyMutation, "CONFLICT"},
		{"amend it", "labtech2", harness.LabAmendMutation, "CONFLICT"},
		{"acknowledge it", "doctor", harness.LabAcknowledgeMutation, "NOT_FOUND"},
	} {
		vars := map[string]any{"id": entered.ID}
		if tc.doc == harness.LabAmendMutation {
			vars["in"] = map[string]any{"numericValue": kv.Normal, "reason": "mislabeled"}
		}
		r := s.As(tc.user, tc.doc, vars)
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == tc.code, "%s: want %s, got %s", tc.what, tc.code, harness.Describe(r))
	}
	r := s.As("labtech2", harness.LabEnterMutation, map[string]any{"item": kItem, "in": harness.Potassium(kv.Normal)})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "CONFLICT", "enter on the rejected item: %s", harness.Describe(r))
	harness.Must(t, labState(t, s, o.ID) == before, "refusals changed the order:\n%s\nwas\n%s", labState(t, s, o.ID), before)

	// The printed report shows the test waiting for a new sample, whoever
	// prints it; the discarded value never reaches paper.
	rep := getLabReport(s, creds["labtech"], o.ID)
	harness.Must(t, rep.status == http.StatusOK, "report: %d %s", rep.status, rep.body)
	printed := strings.Join(pdfText(t, rep.body), "\n")
	discardedText := fmt.Sprintf("%.*f", cat.Potassium.Decimals, kv.High)
	harness.Must(t, strings.Contains(printed, "Pending — specimen rejected, to be collected again"), "the report shows:\n%s", printed)
	harness.Must(t, !strings.Contains(printed, discardedText), "the discarded value %s was printed:\n%s", discardedText, printed)

	// A fresh tube, a fresh result: only that one is ever released.
	again := desk.Collect("nurse", kItem)
	harness.Must(t, again.ID != sp.ID && again.Items[0].Status == "COLLECTED", "recollected: %+v", again)
	desk.Receive("labtech", again.ID)
	fresh := desk.Verify("labtech", desk.Enter("labtech2", kItem, harness.Potassium(kv.Normal)).ID)
	harness.Must(t, fresh.Status == "VERIFIED" && fresh.Item.Status == "VERIFIED" && *fresh.NumericValue == kv.Normal, "fresh result: %+v", fresh)
	pv := readLabView(t, s, creds["patient"], own, old)
	harness.Must(t, len(pv.results) == 1 && pv.results[fresh.ID] == "VERIFIED" && len(pv.itemized) == 1 && pv.itemized[fresh.ID] == "VERIFIED",
		"the patient's results after recollection: %v / %v", pv.results, pv.itemized)
	inLab = readLabView(t, s, creds["labtech"], own, old)
	harness.Must(t, inLab.itemized[entered.ID] == "DISCARDED" && inLab.itemized[fresh.ID] == "VERIFIED", "the lab's record of the item: %v", inLab.itemized)
}

// TestLabNumericValueBounds: a value no measurement reaches, or one that
// overflows when rounded to the test's precision, is refused naming
// input.numericValue, and nothing is written: a stored infinity broke every
// later read of the results.
func TestLabNumericValueBounds(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	pf := harness.Facts(t, s, d.Patients[1])
	_, kv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	o := desk.Order(d.Patients[1], []string{desk.Cat.Potassium.ID}, nil, nil)
	kItem := o.Item(t, desk.Cat.Potassium.ID)
	desk.Receive("labtech", desk.Collect("nurse", kItem).ID)

	huge := []float64{1e308, -1e308, math.MaxFloat64, -math.MaxFloat64, 10 * lab.MaxNumericResult, -10 * lab.MaxNumericResult}
	refused := func(what, doc string, vars map[string]any) {
		t.Helper()
		before := labState(t, s, o.ID)
		harness.WantBadInput(t, what, s.As("labtech", doc, vars), "input.numericValue")
		harness.Must(t, labState(t, s, o.ID) == before, "%s changed the order:\n%s\nwas\n%s", what, labState(t, s, o.ID), before)
	}
	for _, x := range huge {
		refused(fmt.Sprintf("enter %g", x), harness.LabEnterMutation, map[string]any{"item": kItem, "in": harness.Potassium(x)})
	}

	orig := desk.Verify("labtech2", desk.Enter("labtech", kItem, harness.Potassium(kv.Normal)).ID)
	for _, x := range huge {
		refused(fmt.Sprintf("amend to %g", x), harness.LabAmendMutation, map[string]any{"id": orig.ID,
			"in": map[string]any{"numericValue": x, "reason": "instrument interface"}})
	}
	// Nothing half-written: the original has no correction waiting, and
	// every list of results still reads.
	now := desk.Read("labtech", orig.ID)
	harness.Must(t, now.Status == "VERIFIED" && now.ReplacedBy == nil && *now.NumericValue == kv.Normal, "the original after refusals: %+v", now)
	for _, user := range []string{"labtech", "doctor", "admin"} {
		r := s.As(user, `{ labResults(first: 100) { totalCount edges { node { id numericValue flag } } } }`, nil)
		harness.Must(t, len(r.Errors) == 0, "%s lists results after refusals: %s", user, harness.Describe(r))
	}
}

// TestLabRejectRacesVerification: rejecting a specimen while its entered
// result is being verified ends one way or the other, never both and never
// in an error the client cannot act on: either the result is released and
// the rejection is a CONFLICT, or the rejection stands, the result is
// DISCARDED and the verification is a CONFLICT.
func TestLabRejectRacesVerification(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	tokens := map[string]string{"reject": s.Token("labtech"), "verify": s.Token("labtech2")}
	outcomes := map[string]int{}
	for round := 0; round < 8; round++ {
		o := desk.Order(d.Patients[1], []string{desk.Cat.Potassium.ID}, nil, nil)
		item := o.Item(t, desk.Cat.Potassium.ID)
		sp := desk.Collect("nurse", item)
		desk.Receive("labtech", sp.ID)
		res := desk.Enter("labtech", item, harness.Potassium(4.2))
		docs := map[string]struct {
			doc  string
			vars map[string]any
		}{
			"reject": {rejectMutation, map[string]any{"id": sp.ID, "in": map[string]any{"reason": "MISLABELED"}}},
			"verify": {harness.LabVerifyMutation, map[string]any{"id": res.ID}},
		}
		results := map[string]harness.Response{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for what, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := s.Do(tok, docs[what].doc, docs[what].vars)
				mu.Lock()
				results[what] = r
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		winner := ""
		for what, r := range results {
			switch {
			case len(r.Errors) == 0:
				harness.Must(t, winner == "", "round %d: both the rejection and the verification succeeded:\n%s\n%s",
					round, harness.Describe(results["reject"]), harness.Describe(results["verify"]))
				winner = what
			case len(r.Errors) != 1 || r.Errors[0].Code() != "CONFLICT":
				t.Fatalf("round %d: %s: want CONFLICT, got %s", round, what, harness.Describe(r))
			}
		}
		harness.Must(t, winner != "", "round %d: neither succeeded: %v", round, results)
		outcomes[winner]++
		state := labState(t, s, o.ID)
		want := map[string]string{
			"reject": "item " + item + "=REJECTED on " + sp.ID + " results [" + res.ID + "=DISCARDED]; specimen " + sp.ID + "=REJECTED",
			"verify": "item " + item + "=VERIFIED on " + sp.ID + " results [" + res.ID + "=VERIFIED]; specimen " + sp.ID + "=RECEIVED",
		}[winner]
		harness.Must(t, state == want, "round %d: %s won, but the order is\n%s\nwant\n%s", round, winner, state, want)
	}
	t.Logf("won: %v", outcomes)
}
