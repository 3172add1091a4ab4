package apitest

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/globalid"
)

// labState describes everything of an order the lab's mutations change, as
// the admin sees it, so that a refused mutation can be shown to have
// changed nothing.
func labState(t testing.TB, s *server, orderID string) string {
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
	s.as("admin", `query($id: ID!) { node(id: $id) { ... on LabOrder {
	  items { id status specimen { id } results { id status } }
	  specimens { id status } } } }`, map[string]any{"id": orderID}).decode(t, &out)
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

func labOrderCount(t testing.TB, s *server, patientID string) int {
	t.Helper()
	var out struct {
		Node struct{ LabOrders struct{ TotalCount int } }
	}
	s.as("admin", `query($id: ID!) { node(id: $id) { ... on Patient { labOrders { totalCount } } } }`,
		map[string]any{"id": patientID}).decode(t, &out)
	return out.Node.LabOrders.TotalCount
}

// TestLabRefusalsOverHTTP: a transition from the wrong state is CONFLICT,
// bad input is BAD_USER_INPUT naming the field, and neither changes
// anything.
func TestLabRefusalsOverHTTP(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	cat := desk.cat
	pat := d.patients[1]

	// Orders.
	orders := labOrderCount(t, s, pat)
	var enc struct{ StartEncounter struct{ ID string } }
	s.as("nurse", startEncounterMutation, map[string]any{"in": map[string]any{
		"patientId": d.patients[2], "type": "OUTPATIENT", "departmentId": d.general, "reason": "Dysuria"}}).decode(t, &enc)
	for _, tc := range []struct {
		name  string
		in    map[string]any
		field string
	}{
		{"a malformed test ID", map[string]any{"testIds": []string{"garbage"}}, "input.testIds.0"},
		{"a panel among the tests", map[string]any{"testIds": []string{cat.potassium.ID, cat.panel.ID}}, "input.testIds.1"},
		{"an unknown test", map[string]any{"testIds": []string{cat.potassium.ID, globalid.New("lbt")}}, "input.testIds.1"},
		{"an unknown panel", map[string]any{"testIds": []string{cat.potassium.ID}, "panelIds": []string{globalid.New("lbp")}}, "input.panelIds.0"},
		{"nothing to order", map[string]any{"testIds": []string{}, "panelIds": []string{}}, "input.testIds"},
		{"notes too long", map[string]any{"testIds": []string{cat.potassium.ID}, "clinicalNotes": strings.Repeat("x", 2001)}, "input.clinicalNotes"},
		{"another patient's encounter", map[string]any{"testIds": []string{cat.potassium.ID}, "encounterId": enc.StartEncounter.ID}, "input.encounterId"},
		{"not a patient", map[string]any{"patientId": d.doctor, "testIds": []string{cat.potassium.ID}}, "input.patientId"},
	} {
		in := map[string]any{"patientId": pat}
		for k, v := range tc.in {
			in[k] = v
		}
		wantBadInput(t, tc.name, s.as("doctor", labOrderMutation, map[string]any{"in": in}), tc.field)
	}
	for _, user := range []string{"nurse", "labtech", "patient", "reception"} {
		r := s.as(user, labOrderMutation, map[string]any{"in": map[string]any{"patientId": pat, "testIds": []string{cat.potassium.ID}}})
		must(t, r.hasCode("FORBIDDEN"), "%s orders: %s", user, describe(r))
	}
	must(t, labOrderCount(t, s, pat) == orders, "refused orders created some: %d, was %d", labOrderCount(t, s, pat), orders)

	o := desk.order(pat, []string{cat.potassium.ID, cat.urineProtein.ID, cat.haemoglobin.ID}, nil, nil)
	kItem, upItem, hbItem := o.item(t, cat.potassium.ID), o.item(t, cat.urineProtein.ID), o.item(t, cat.haemoglobin.ID)

	// refused runs a request that must fail with code (and, for
	// BAD_USER_INPUT, field) and leave the order as it was.
	refused := func(what, user, doc string, vars map[string]any, code, field string) {
		t.Helper()
		before := labState(t, s, o.ID)
		r := s.as(user, doc, vars)
		must(t, len(r.Errors) == 1 && r.Errors[0].code() == code && r.Errors[0].field() == field,
			"%s: want %s %s, got %s", what, code, field, describe(r))
		after := labState(t, s, o.ID)
		must(t, after == before, "%s changed the order:\n%s\nwas\n%s", what, after, before)
	}
	enter := func(item string, in map[string]any) map[string]any { return map[string]any{"item": item, "in": in} }
	collect := func(in map[string]any) map[string]any { return map[string]any{"in": in} }

	refused("enter before collection", "labtech", enterMutation, enter(kItem, potassium(4)), "CONFLICT", "")
	refused("collect in the future", "nurse", collectMutation, collect(map[string]any{"itemIds": []string{kItem},
		"collectedAt": time.Now().UTC().Add(time.Hour).Format(time.RFC3339)}), "BAD_USER_INPUT", "input.collectedAt")
	refused("collect before the order", "nurse", collectMutation, collect(map[string]any{"itemIds": []string{kItem},
		"collectedAt": time.Now().UTC().Add(-24 * time.Hour).Format(time.RFC3339)}), "BAD_USER_INPUT", "input.collectedAt")
	refused("serum and urine in one container", "nurse", collectMutation, collect(map[string]any{"itemIds": []string{kItem, upItem}}),
		"BAD_USER_INPUT", "input.itemIds.1")
	refused("an item twice", "nurse", collectMutation, collect(map[string]any{"itemIds": []string{kItem, kItem}}),
		"BAD_USER_INPUT", "input.itemIds.1")
	refused("a malformed item", "nurse", collectMutation, collect(map[string]any{"itemIds": []string{"bad"}}),
		"BAD_USER_INPUT", "input.itemIds.0")
	refused("no items", "nurse", collectMutation, collect(map[string]any{"itemIds": []string{}}), "BAD_USER_INPUT", "input.itemIds")
	refused("the pharmacist collects", "pharmacist", collectMutation, collect(map[string]any{"itemIds": []string{kItem}}), "FORBIDDEN", "")

	kSpec := desk.collect("nurse", kItem)
	refused("collect twice", "nurse", collectMutation, collect(map[string]any{"itemIds": []string{kItem}}), "CONFLICT", "")
	refused("enter before receipt", "labtech", enterMutation, enter(kItem, potassium(4)), "CONFLICT", "")
	refused("the nurse receives", "nurse", receiveMutation, map[string]any{"id": kSpec.ID}, "FORBIDDEN", "")
	desk.receive("labtech", kSpec.ID)
	refused("receive twice", "labtech", receiveMutation, map[string]any{"id": kSpec.ID}, "CONFLICT", "")
	refused("receive garbage", "labtech", receiveMutation, map[string]any{"id": "bad"}, "BAD_USER_INPUT", "id")

	refused("a coded value for a numeric test", "labtech", enterMutation,
		enter(kItem, map[string]any{"codedValue": "NEGATIVE"}), "BAD_USER_INPUT", "input.numericValue")
	refused("two values", "labtech", enterMutation,
		enter(kItem, map[string]any{"numericValue": 4, "textValue": "four"}), "BAD_USER_INPUT", "input.numericValue")
	refused("no value", "labtech", enterMutation, enter(kItem, map[string]any{}), "BAD_USER_INPUT", "input.numericValue")
	refused("a comment too long", "labtech", enterMutation,
		enter(kItem, map[string]any{"numericValue": 4, "comment": strings.Repeat("x", 4001)}), "BAD_USER_INPUT", "input.comment")
	refused("the nurse enters", "nurse", enterMutation, enter(kItem, potassium(4)), "FORBIDDEN", "")

	upSpec := desk.collect("nurse", upItem)
	desk.receive("labtech", upSpec.ID)
	refused("a code the test does not have", "labtech", enterMutation,
		enter(upItem, map[string]any{"codedValue": "PURPLE"}), "BAD_USER_INPUT", "input.codedValue")
	abnormal := ""
	for _, c := range cat.urineProtein.ResultCodes {
		normal := false
		for _, n := range cat.urineProtein.NormalCodes {
			normal = normal || n == c
		}
		if !normal && abnormal == "" {
			abnormal = c
		}
	}
	must(t, abnormal != "", "urine protein has no abnormal answer: %+v", cat.urineProtein)
	up := desk.enter("labtech", upItem, map[string]any{"codedValue": abnormal})
	must(t, up.CodedValue != nil && *up.CodedValue == abnormal && up.flag() == "ABNORMAL" && up.NumericValue == nil &&
		up.Unit == nil && !up.Critical, "coded result: %+v", up)

	refused("enter twice", "labtech2", enterMutation, enter(upItem, map[string]any{"codedValue": abnormal}), "CONFLICT", "")
	refused("cancel a resulted item", "doctor", cancelItemMutation, map[string]any{"id": upItem, "r": "not needed"}, "CONFLICT", "")
	refused("cancel without a reason", "doctor", cancelItemMutation, map[string]any{"id": kItem, "r": "  "}, "BAD_USER_INPUT", "reason")
	refused("amend an entered result", "labtech2", amendMutation,
		map[string]any{"id": up.ID, "in": map[string]any{"codedValue": "NEGATIVE", "reason": "misread"}}, "CONFLICT", "")
	// To a nurse a result not yet verified does not exist.
	refused("acknowledge an unverified result", "nurse", acknowledgeMutation, map[string]any{"id": up.ID}, "NOT_FOUND", "")
	refused("reject a specimen whose tests are resulted", "labtech", rejectMutation,
		map[string]any{"id": upSpec.ID, "in": map[string]any{"reason": "CONTAMINATED"}}, "CONFLICT", "")
	refused("verify an order", "labtech2", verifyMutation, map[string]any{"id": o.ID}, "BAD_USER_INPUT", "id")

	desk.verify("labtech2", up.ID)
	refused("verify twice", "labtech", verifyMutation, map[string]any{"id": up.ID}, "CONFLICT", "")
	refused("amend without a reason", "labtech", amendMutation,
		map[string]any{"id": up.ID, "in": map[string]any{"codedValue": "NEGATIVE", "reason": " "}}, "BAD_USER_INPUT", "input.reason")
	refused("amend with a bad code", "labtech", amendMutation,
		map[string]any{"id": up.ID, "in": map[string]any{"codedValue": "PURPLE", "reason": "misread"}}, "BAD_USER_INPUT", "input.codedValue")
	refused("acknowledge a result that is not critical", "nurse", acknowledgeMutation, map[string]any{"id": up.ID}, "CONFLICT", "")

	// Rejection sends an item back to be collected again.
	hbSpec := desk.collect("nurse", hbItem)
	refused("reject for OTHER without a note", "labtech", rejectMutation,
		map[string]any{"id": hbSpec.ID, "in": map[string]any{"reason": "OTHER", "note": " "}}, "BAD_USER_INPUT", "input.note")
	var rejected struct{ RejectLabSpecimen specimenOut }
	s.as("labtech", rejectMutation, map[string]any{"id": hbSpec.ID, "in": map[string]any{"reason": "CLOTTED"}}).decode(t, &rejected)
	must(t, rejected.RejectLabSpecimen.Status == "REJECTED" && *rejected.RejectLabSpecimen.RejectionReason == "CLOTTED" &&
		len(rejected.RejectLabSpecimen.Items) == 1 && rejected.RejectLabSpecimen.Items[0].Status == "REJECTED", "rejected: %+v", rejected)
	refused("reject twice", "labtech", rejectMutation, map[string]any{"id": hbSpec.ID, "in": map[string]any{"reason": "CLOTTED"}}, "CONFLICT", "")
	refused("receive a rejected specimen", "labtech", receiveMutation, map[string]any{"id": hbSpec.ID}, "CONFLICT", "")
	again := desk.collect("nurse", hbItem)
	must(t, again.ID != hbSpec.ID && again.AccessionNumber != hbSpec.AccessionNumber && again.Status == "COLLECTED" &&
		again.Items[0].Status == "COLLECTED", "recollected: %+v (first %+v)", again, hbSpec)

	var cancelled struct {
		CancelLabOrderItem struct {
			ID, Status   string
			CancelReason *string
			CancelledBy  *struct{ ID string }
		}
	}
	s.as("doctor", cancelItemMutation, map[string]any{"id": hbItem, "r": "Duplicate request"}).decode(t, &cancelled)
	c := cancelled.CancelLabOrderItem
	must(t, c.Status == "CANCELLED" && *c.CancelReason == "Duplicate request" && c.CancelledBy.ID == d.doctor, "cancelled: %+v", c)
	refused("cancel twice", "labtech", cancelItemMutation, map[string]any{"id": hbItem, "r": "again"}, "CONFLICT", "")
	refused("collect a cancelled item", "nurse", collectMutation, collect(map[string]any{"itemIds": []string{hbItem}}), "CONFLICT", "")
	refused("enter a cancelled item", "labtech", enterMutation, enter(hbItem, potassium(12)), "CONFLICT", "")
}
