// Package pharmacy tests stock and dispensing through the API, as the
// pharmacy's screens and the ward's witness would use it.
package pharmacy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/stockbatch"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

// desk is a test server with the demo's stock locations and formulary
// items of the test's own (the seeded formulary is not this package's).
type desk struct {
	t        *testing.T
	s        *harness.Server
	d        harness.DemoIDs
	sys      context.Context
	pharmacy string // the demo pharmacy's location ID
	main     string
	seq      int
}

func newDesk(t *testing.T) *desk {
	s := harness.NewServer(t)
	k := &desk{t: t, s: s, d: s.Demo(), sys: auth.SystemContext(context.Background())}
	c := s.App.Store.Client
	k.pharmacy = c.StockLocation.Query().Where(stocklocation.KindEQ(stocklocation.KindPHARMACY)).OnlyIDX(k.sys)
	k.main = c.StockLocation.Query().Where(stocklocation.KindEQ(stocklocation.KindMAIN_STORE)).OnlyIDX(k.sys)
	return k
}

// item adds a formulary item with a unique code.
// onHand is what the pharmacist reads of one item's stock at the demo
// pharmacy, which also holds the demo's own items.
func (k *desk) onHand(t *testing.T, drugID string) int {
	t.Helper()
	var levels struct {
		StockLevels []struct {
			Drug   struct{ ID string }
			OnHand int
		}
	}
	k.s.As("pharmacist", `query($l: ID) { stockLevels(locationId: $l) { drug { id } onHand } }`,
		map[string]any{"l": k.pharmacy}).Decode(t, &levels)
	for _, l := range levels.StockLevels {
		if l.Drug.ID == drugID {
			return l.OnHand
		}
	}
	t.Fatalf("no stock line for %s: %+v", drugID, levels)
	return 0
}

func (k *desk) item(name string, reorder int, schedule *drug.ControlledSchedule) *ent.Drug {
	k.seq++
	return k.s.App.Store.Client.Drug.Create().SetCode(fmt.Sprintf("T%s%d", strings.ToUpper(name[:4]), k.seq)).
		SetGenericName(name).SetUnitOfIssue("tablet").SetReorderLevel(reorder).SetNillableControlledSchedule(schedule).SaveX(k.sys)
}

// order is the demo doctor's ACTIVE order of quantity units of d for patient.
func (k *desk) order(patientID string, d *ent.Drug, quantity int) string {
	return k.s.App.Store.Client.MedicationOrder.Create().SetPatientID(patientID).SetDrug(d.GenericName).SetDrugID(d.ID).
		SetDoseAmount(1).SetDoseUnit("tablet").SetRoute(medicationorder.RouteORAL).SetFrequency("TID").
		SetQuantity(quantity).SetPrescriberID(k.d.Doctor).SaveX(k.sys).ID
}

type batch struct {
	ID, LotNumber, ExpiryDate, UnitCost string
	QuantityOnHand                      int
}

const receiveMutation = `mutation($in: ReceiveStockInput!) { receiveStock(input: $in) { id lotNumber expiryDate unitCost quantityOnHand } }`

func (k *desk) receive(user, location string, d *ent.Drug, lot string, days, quantity int, cost string) batch {
	k.t.Helper()
	var out struct{ ReceiveStock batch }
	k.s.As(user, receiveMutation, map[string]any{"in": map[string]any{
		"locationId": location, "drugId": d.ID, "lotNumber": lot,
		"expiryDate": time.Now().UTC().AddDate(0, 0, days).Format(time.DateOnly), "quantity": quantity, "unitCost": cost,
	}}).Decode(k.t, &out)
	return out.ReceiveStock
}

type dispensingOut struct {
	ID, Status string
	Quantity   int
	Patient    struct{ ID string }
	Lines      []struct {
		Quantity int
		UnitCost string
		Batch    struct{ LotNumber string }
	}
}

const dispenseMutation = `mutation($in: DispenseMedicationInput!) { dispenseMedication(input: $in) {
  id status quantity patient { id } lines { quantity unitCost batch { lotNumber } } } }`

func (k *desk) dispense(user, orderID string, quantity *int) dispensingOut {
	k.t.Helper()
	in := map[string]any{"orderId": orderID}
	if quantity != nil {
		in["quantity"] = *quantity
	}
	var out struct{ DispenseMedication dispensingOut }
	k.s.As(user, dispenseMutation, map[string]any{"in": in}).Decode(k.t, &out)
	return out.DispenseMedication
}

func ptr[T any](v T) *T { return &v }

func TestDispenseFirstExpiryFirstOutPartlyThenInFull(t *testing.T) {
	t.Parallel()
	k := newDesk(t)
	amox := k.item("Amoxicillin", 0, nil)
	k.receive("pharmacy_technician", k.pharmacy, amox, "LATE", 300, 100, "9.00")
	soon := k.receive("pharmacy_technician", k.pharmacy, amox, "SOON", 30, 6, "8.50")
	harness.Must(t, soon.QuantityOnHand == 6 && soon.UnitCost == "8.50", "received: %+v", soon)
	patient := k.d.Patients[0]
	order := k.order(patient, amox, 21)

	var queue struct {
		PharmacyQueue []struct {
			ID                                   string
			DispensedQuantity, RemainingQuantity int
		}
	}
	k.s.As("pharmacist", `{ pharmacyQueue { id dispensedQuantity remainingQuantity } }`, nil).Decode(t, &queue)
	found := false
	for _, q := range queue.PharmacyQueue {
		found = found || (q.ID == order && q.RemainingQuantity == 21 && q.DispensedQuantity == 0)
	}
	harness.Must(t, found, "the new order is not in the queue with 21 left: %+v", queue)

	d := k.dispense("pharmacy_technician", order, ptr(10))
	harness.Must(t, d.Status == "DISPENSED" && d.Quantity == 10 && d.Patient.ID == patient && len(d.Lines) == 2 &&
		d.Lines[0].Batch.LotNumber == "SOON" && d.Lines[0].Quantity == 6 && d.Lines[0].UnitCost == "8.50" &&
		d.Lines[1].Batch.LotNumber == "LATE" && d.Lines[1].Quantity == 4, "dispensing: %+v", d)

	var o struct {
		Node struct {
			Status                               string
			DispensedQuantity, RemainingQuantity int
		}
	}
	read := `query($id: ID!) { node(id: $id) { ... on MedicationOrder { status dispensedQuantity remainingQuantity } } }`
	k.s.As("doctor", read, map[string]any{"id": order}).Decode(t, &o)
	harness.Must(t, o.Node.Status == "ACTIVE" && o.Node.DispensedQuantity == 10 && o.Node.RemainingQuantity == 11, "order after a partial dispensing: %+v", o)

	// Too many is refused naming the field; the rest completes the order.
	r := k.s.As("pharmacist", dispenseMutation, map[string]any{"in": map[string]any{"orderId": order, "quantity": 12}})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "BAD_USER_INPUT" && r.Errors[0].Field() == "input.quantity", "%v", r.Errors)
	k.dispense("pharmacist", order, nil)
	k.s.As("patient", read, map[string]any{"id": order}).Decode(t, &o)
	harness.Must(t, o.Node.Status == "COMPLETED" && o.Node.RemainingQuantity == 0, "order after the rest: %+v", o)

	// The patient sees their dispensings, not where they came from.
	var mine struct {
		Dispensings struct {
			TotalCount int
			Edges      []struct{ Node struct{ Quantity int } }
		}
	}
	k.s.As("patient", `{ dispensings(first: 10) { totalCount edges { node { quantity } } } }`, nil).Decode(t, &mine)
	harness.Must(t, mine.Dispensings.TotalCount == 2, "patient's dispensings: %+v", mine)
	for _, doc := range []string{
		`{ dispensings(first: 10) { edges { node { lines { quantity } } } } }`,
		`{ dispensings(first: 10) { edges { node { location { id } } } } }`,
		`{ dispensings(first: 10) { edges { node { locationID } } } }`,
		`{ dispensings(first: 10) { edges { node { drugID } } } }`,
		`{ dispensings(first: 10) { edges { node { dispensedByID } } } }`,
		`{ dispensings(first: 10, where: {locationID: "stl_x"}) { totalCount } }`,
		`{ stockLevels { onHand } }`,
		`{ stockBatches(first: 1) { totalCount } }`,
	} {
		r := k.s.As("patient", doc, nil)
		harness.Must(t, r.HasCode("FORBIDDEN"), "patient: %s: want FORBIDDEN, got %v", doc, r.Errors)
	}
	// Another patient's are not theirs.
	other := k.order(k.d.Patients[1], amox, 1)
	k.dispense("pharmacist", other, nil)
	k.s.As("patient", `{ dispensings(first: 10) { totalCount edges { node { quantity } } } }`, nil).Decode(t, &mine)
	harness.Must(t, mine.Dispensings.TotalCount == 2, "the patient sees another's dispensing: %+v", mine)

	var levels struct {
		StockLevels []struct {
			Drug           struct{ ID string }
			OnHand, Usable int
			Value          string
			Low            bool
		}
	}
	k.s.As("pharmacy_technician", `query($l: ID) { stockLevels(locationId: $l) { drug { id } onHand usable value low } }`,
		map[string]any{"l": k.pharmacy}).Decode(t, &levels)
	// The demo pharmacy holds the demo's stock too; this test's item is one line of it.
	var mineLevels []int
	for i, l := range levels.StockLevels {
		if l.Drug.ID == amox.ID {
			mineLevels = append(mineLevels, i)
		}
	}
	harness.Must(t, len(mineLevels) == 1 && levels.StockLevels[mineLevels[0]].OnHand == 106-22 &&
		levels.StockLevels[mineLevels[0]].Value == "756.00", "levels: %+v", levels)
}

func TestFreeTextOrderAndBadInputAreRefused(t *testing.T) {
	t.Parallel()
	k := newDesk(t)
	amox := k.item("Amoxicillin", 0, nil)
	k.receive("pharmacist", k.pharmacy, amox, "A", 100, 10, "1")
	var rx struct{ PrescribeMedication struct{ ID string } }
	k.s.As("doctor", `mutation($p: ID!) { prescribeMedication(input: {patientId: $p, drug: "Grandma's cough mixture", doseAmount: 5,
	  doseUnit: "mL", route: ORAL, frequency: "TID", quantity: 1}) { id } }`, map[string]any{"p": k.d.Patients[1]}).Decode(t, &rx)
	r := k.s.As("pharmacist", dispenseMutation, map[string]any{"in": map[string]any{"orderId": rx.PrescribeMedication.ID}})
	harness.Must(t, r.HasCode("CONFLICT") && strings.Contains(r.Errors[0].Message, "free text"), "free-text order: %v", r.Errors)

	for _, tc := range []struct {
		in    map[string]any
		field string
	}{
		{map[string]any{"quantity": 0}, "input.quantity"},
		{map[string]any{"lotNumber": " "}, "input.lotNumber"},
		{map[string]any{"drugId": "bad"}, "input.drugId"},
		{map[string]any{"expiryDate": time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)}, "input.expiryDate"},
	} {
		in := map[string]any{"locationId": k.pharmacy, "drugId": amox.ID, "lotNumber": "NEW",
			"expiryDate": time.Now().UTC().AddDate(1, 0, 0).Format(time.DateOnly), "quantity": 5, "unitCost": "1.00"}
		for f, v := range tc.in {
			in[f] = v
		}
		r := k.s.As("pharmacy_technician", receiveMutation, map[string]any{"in": in})
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "BAD_USER_INPUT" && r.Errors[0].Field() == tc.field,
			"%v: want BAD_USER_INPUT on %s, got %v", tc.in, tc.field, r.Errors)
	}
	r = k.s.As("pharmacist", `mutation($b: ID!) { adjustStock(input: {batchId: $b, countedQuantity: 3, reason: ""}) { id } }`,
		map[string]any{"b": k.s.App.Store.Client.StockBatch.Query().Where(stockbatch.DrugID(amox.ID)).OnlyIDX(k.sys)})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Field() == "input.reason", "adjust without a reason: %v", r.Errors)
	harness.Must(t, k.onHand(t, amox.ID) == 10, "refusals changed the stock")
}

func TestControlledDrugWitnessedBySecondPersonWithOwnLogin(t *testing.T) {
	t.Parallel()
	k := newDesk(t)
	morphine := k.item("Morphine", 0, ptr(drug.ControlledScheduleII))
	k.receive("pharmacist", k.pharmacy, morphine, "M1", 100, 10, "35.00")
	order := k.order(k.d.Patients[3], morphine, 2)
	d := k.dispense("pharmacist", order, nil)
	harness.Must(t, d.Status == "AWAITING_WITNESS", "controlled dispensing: %+v", d)

	witness := `mutation($id: ID!) { witnessDispensing(id: $id) { id status witnessedBy { id } witnessedAt } }`
	r := k.s.As("pharmacist", witness, map[string]any{"id": d.ID})
	harness.Must(t, r.HasCode("FORBIDDEN") && strings.Contains(r.Errors[0].Message, "second person"), "self-witness: %v", r.Errors)
	r = k.s.As("pharmacy_technician", witness, map[string]any{"id": d.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "technician witness: %v", r.Errors)
	var out struct {
		WitnessDispensing struct {
			Status      string
			WitnessedBy struct{ ID string }
			WitnessedAt *string
		}
	}
	k.s.As("nurse", witness, map[string]any{"id": d.ID}).Decode(t, &out)
	harness.Must(t, out.WitnessDispensing.Status == "DISPENSED" && out.WitnessDispensing.WitnessedBy.ID == k.d.Nurse &&
		out.WitnessDispensing.WitnessedAt != nil, "witnessed: %+v", out)

	// A refused one goes back on the shelf.
	order2 := k.order(k.d.Patients[3], morphine, 3)
	d2 := k.dispense("pharmacy_technician", order2, nil)
	var cancelled struct{ CancelDispensing struct{ Status string } }
	k.s.As("nurse", `mutation($id: ID!) { cancelDispensing(id: $id, reason: "count does not match") { status } }`,
		map[string]any{"id": d2.ID}).Decode(t, &cancelled)
	harness.Must(t, cancelled.CancelDispensing.Status == "CANCELLED", "cancelled: %+v", cancelled)
	harness.Must(t, k.onHand(t, morphine.ID) == 8, "after witness and cancel")
}

func TestReturnAndRecallTraceAudited(t *testing.T) {
	t.Parallel()
	k := newDesk(t)
	para := k.item("Paracetamol", 0, nil)
	k.receive("pharmacist", k.pharmacy, para, "RECALLED-1", 60, 10, "0.15")
	k.receive("pharmacist", k.pharmacy, para, "FINE-2", 300, 100, "0.15")
	a := k.dispense("pharmacist", k.order(k.d.Patients[1], para, 4), nil)
	b := k.dispense("pharmacist", k.order(k.d.Patients[2], para, 10), nil)

	var ret struct {
		ReturnDispensedMedication struct{ ReturnedQuantity int }
	}
	k.s.As("pharmacy_technician", `mutation($id: ID!) { returnDispensedMedication(id: $id, quantity: 4, reason: "not needed") { returnedQuantity } }`,
		map[string]any{"id": b.ID}).Decode(t, &ret)
	harness.Must(t, ret.ReturnDispensedMedication.ReturnedQuantity == 4, "return: %+v", ret)
	r := k.s.As("pharmacy_technician", `mutation($id: ID!) { returnDispensedMedication(id: $id, quantity: 7) { id } }`, map[string]any{"id": b.ID})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Field() == "quantity", "returning more than is out: %v", r.Errors)

	var trace struct {
		RecallTrace []struct {
			Patient     struct{ ID, Mrn string }
			Dispensing  struct{ ID string }
			Batch       struct{ LotNumber string }
			Quantity    int
			DispensedAt string
		}
	}
	k.s.As("pharmacist", `{ recallTrace(lotNumber: "RECALLED-1") { patient { id mrn } dispensing { id } batch { lotNumber } quantity dispensedAt } }`, nil).Decode(t, &trace)
	// a took 4 of RECALLED-1; b took the other 6 and returned 4 of its 10:
	// the longest-dated lot goes back first, so b keeps its 6 from the lot.
	harness.Must(t, len(trace.RecallTrace) == 2 && trace.RecallTrace[0].Dispensing.ID == a.ID && trace.RecallTrace[0].Quantity == 4 &&
		trace.RecallTrace[1].Dispensing.ID == b.ID && trace.RecallTrace[1].Quantity == 6 && trace.RecallTrace[1].Patient.ID == k.d.Patients[2],
		"recall: %+v", trace)
	r = k.s.As("pharmacy_technician", `{ recallTrace(lotNumber: "RECALLED-1") { quantity } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "technician recall: %v", r.Errors)

	rows := harness.AuditRows(t, k.s, map[string]any{"operation": "recallTrace"})
	harness.Must(t, len(rows) >= 1, "recallTrace not audited")
	ok := false
	for _, row := range rows {
		if row.Outcome == "ALLOWED" && strings.Contains(row.PatientIds, k.d.Patients[1]) && strings.Contains(row.PatientIds, k.d.Patients[2]) {
			ok = true
		}
	}
	harness.Must(t, ok, "recallTrace's audit rows do not name both patients: %+v", rows)
}
