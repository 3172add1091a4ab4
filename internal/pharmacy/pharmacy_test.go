package pharmacy

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/stockmovement"
	"github.com/hmis-dev/hmis/internal/apperr"
)

func TestReceiveTransferAdjustKeepTheLedger(t *testing.T) {
	f := setup(t)
	amox := f.drug("AMOX500CAP", 0, nil)
	b := f.receive(f.main, amox, "LOT-A", 200, 100, 1250)
	if b.QuantityOnHand != 100 || b.UnitCost != 1250 {
		t.Fatalf("received batch: %+v", b)
	}
	// The same lot again tops the batch up.
	if again := f.receive(f.main, amox, "LOT-A", 200, 20, 1250); again.ID != b.ID || again.QuantityOnHand != 120 {
		t.Fatalf("second receipt of the lot: %+v", again)
	}
	moved, err := f.svc.Transfer(f.technician, TransferStockInput{BatchID: b.ID, ToLocationID: f.pharmacy.ID, Quantity: 30})
	if err != nil {
		t.Fatal(err)
	}
	if moved.LocationID != f.pharmacy.ID || moved.QuantityOnHand != 30 || moved.LotNumber != "LOT-A" || !moved.ExpiryDate.Equal(b.ExpiryDate) {
		t.Fatalf("transferred batch: %+v", moved)
	}
	if got := f.batch(b.ID).QuantityOnHand; got != 90 {
		t.Fatalf("source after transfer: %d, want 90", got)
	}
	counted, err := f.svc.Adjust(f.technician, AdjustStockInput{BatchID: b.ID, CountedQuantity: 87, Reason: "3 capsules crushed"})
	if err != nil {
		t.Fatal(err)
	}
	if counted.QuantityOnHand != 87 {
		t.Fatalf("after count: %d", counted.QuantityOnHand)
	}
	adj := f.client.StockMovement.Query().Where(stockmovement.KindEQ(stockmovement.KindADJUSTMENT)).OnlyX(f.system)
	if adj.Quantity != -3 || adj.Reason == nil || *adj.Reason != "3 capsules crushed" || adj.ActorID == nil {
		t.Fatalf("adjustment row: %+v", adj)
	}
	out := f.client.StockMovement.Query().Where(stockmovement.KindEQ(stockmovement.KindTRANSFER_OUT)).OnlyX(f.system)
	in := f.client.StockMovement.Query().Where(stockmovement.KindEQ(stockmovement.KindTRANSFER_IN)).OnlyX(f.system)
	if out.TransferID == nil || in.TransferID == nil || *out.TransferID != *in.TransferID || out.Quantity != -30 || in.Quantity != 30 {
		t.Fatalf("transfer rows: %+v / %+v", out, in)
	}
	f.ledgerAgrees()
}

func TestBadStockInputNamesTheFieldAndChangesNothing(t *testing.T) {
	f := setup(t)
	amox := f.drug("AMOX500CAP", 0, nil)
	b := f.receive(f.main, amox, "LOT-A", 200, 10, 100)
	good := ReceiveStockInput{LocationID: f.main.ID, DrugID: amox.ID, LotNumber: "LOT-B", ExpiryDate: f.today().AddDate(1, 0, 0), Quantity: 5, UnitCost: 100}
	cases := []struct {
		name, field string
		run         func() error
	}{
		{"receive: location", "input.locationId", func() error { in := good; in.LocationID = "x"; _, err := f.svc.Receive(f.pharmacist, in); return err }},
		{"receive: blank lot", "input.lotNumber", func() error { in := good; in.LotNumber = "  "; _, err := f.svc.Receive(f.pharmacist, in); return err }},
		{"receive: zero quantity", "input.quantity", func() error { in := good; in.Quantity = 0; _, err := f.svc.Receive(f.pharmacist, in); return err }},
		{"receive: negative cost", "input.unitCost", func() error { in := good; in.UnitCost = -1; _, err := f.svc.Receive(f.pharmacist, in); return err }},
		{"receive: expired", "input.expiryDate", func() error {
			in := good
			in.ExpiryDate = f.today()
			_, err := f.svc.Receive(f.pharmacist, in)
			return err
		}},
		{"receive: lot with another expiry", "input.expiryDate", func() error {
			in := good
			in.LotNumber = "LOT-A"
			_, err := f.svc.Receive(f.pharmacist, in)
			return err
		}},
		{"transfer: more than on hand", "input.quantity", func() error {
			_, err := f.svc.Transfer(f.pharmacist, TransferStockInput{BatchID: b.ID, ToLocationID: f.pharmacy.ID, Quantity: 11})
			return err
		}},
		{"transfer: same place", "input.toLocationId", func() error {
			_, err := f.svc.Transfer(f.pharmacist, TransferStockInput{BatchID: b.ID, ToLocationID: f.main.ID, Quantity: 1})
			return err
		}},
		{"adjust: no reason", "input.reason", func() error {
			_, err := f.svc.Adjust(f.pharmacist, AdjustStockInput{BatchID: b.ID, CountedQuantity: 3, Reason: " "})
			return err
		}},
		{"adjust: negative count", "input.countedQuantity", func() error {
			_, err := f.svc.Adjust(f.pharmacist, AdjustStockInput{BatchID: b.ID, CountedQuantity: -1, Reason: "x"})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantCode(t, c.run(), apperr.BadUserInput, c.field) })
	}
	if n := f.client.StockMovement.Query().CountX(f.system); n != 1 {
		t.Fatalf("refused inputs wrote ledger rows: %d rows, want the one receipt", n)
	}
	if got := f.batch(b.ID).QuantityOnHand; got != 10 {
		t.Fatalf("refused inputs changed the batch: %d", got)
	}
	// A doctor keeps no stock.
	_, err := f.svc.Receive(f.doctor, good)
	wantCode(t, err, apperr.Forbidden, "")
}

func TestDispenseFirstExpiryFirstOutAcrossBatchesNeverExpired(t *testing.T) {
	f := setup(t)
	amox := f.drug("AMOX500CAP", 0, nil)
	late := f.receive(f.pharmacy, amox, "LATE", 300, 50, 300)
	soon := f.receive(f.pharmacy, amox, "SOON", 20, 5, 200)
	old := f.receive(f.pharmacy, amox, "OLD", 3, 40, 100)
	// Time passes: OLD is now expired and must never be dispensed.
	f.now = f.now.AddDate(0, 0, 5)
	p := f.patient()
	o := f.order(p, amox, 21)

	d1, err := f.svc.Dispense(f.technician, DispenseMedicationInput{OrderID: o.ID, Quantity: ptr(8)})
	if err != nil {
		t.Fatal(err)
	}
	if d1.Status != dispensing.StatusDISPENSED || d1.Quantity != 8 || d1.PatientID != p.ID {
		t.Fatalf("dispensing: %+v", d1)
	}
	if f.batch(soon.ID).QuantityOnHand != 0 || f.batch(late.ID).QuantityOnHand != 47 || f.batch(old.ID).QuantityOnHand != 40 {
		t.Fatalf("FEFO: soon %d late %d old %d", f.batch(soon.ID).QuantityOnHand, f.batch(late.ID).QuantityOnHand, f.batch(old.ID).QuantityOnHand)
	}
	lines := d1.QueryLines().AllX(f.system)
	byBatch := map[string]int{}
	for _, l := range lines {
		byBatch[l.BatchID] = l.Quantity
	}
	if len(lines) != 2 || byBatch[soon.ID] != 5 || byBatch[late.ID] != 3 {
		t.Fatalf("lines: %v", byBatch)
	}
	taken, err := Committed(f.system, f.client, []*ent.MedicationOrder{o})
	if err != nil || taken[o.ID] != 8 {
		t.Fatalf("committed %v %v", taken, err)
	}
	if st := f.client.MedicationOrder.GetX(f.system, o.ID).Status; st != medicationorder.StatusACTIVE {
		t.Fatalf("partly dispensed order is %s", st)
	}
	// More than the order has left is refused.
	_, err = f.svc.Dispense(f.technician, DispenseMedicationInput{OrderID: o.ID, Quantity: ptr(14)})
	wantCode(t, err, apperr.BadUserInput, "input.quantity")
	// The rest, without a quantity: the order completes.
	d2, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID, LocationID: &f.pharmacy.ID})
	if err != nil {
		t.Fatal(err)
	}
	if d2.Quantity != 13 || f.batch(late.ID).QuantityOnHand != 34 {
		t.Fatalf("second dispensing %d, late lot left %d", d2.Quantity, f.batch(late.ID).QuantityOnHand)
	}
	if st := f.client.MedicationOrder.GetX(f.system, o.ID).Status; st != medicationorder.StatusCOMPLETED {
		t.Fatalf("fully dispensed order is %s", st)
	}
	_, err = f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID})
	wantCode(t, err, apperr.Conflict, "")

	// The events carry what billing needs, per batch and cost.
	types, payloads := f.events(DispensingTopic)
	if len(types) != 2 || types[0] != Dispensed {
		t.Fatalf("events: %v", types)
	}
	var ev DispensingEvent
	if err := json.Unmarshal(payloads[0], &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DispensingID != d1.ID || ev.DrugID != amox.ID || ev.PatientID != p.ID || ev.Quantity != 8 ||
		ev.TotalCost != 5*200+3*300 || len(ev.Lines) != 2 {
		t.Fatalf("event: %+v", ev)
	}
	f.ledgerAgrees()
}

func TestDispenseRefusals(t *testing.T) {
	f := setup(t)
	amox := f.drug("AMOX500CAP", 0, nil)
	f.receive(f.pharmacy, amox, "A", 100, 5, 100)
	p := f.patient()

	free := f.order(p, nil, 10)
	_, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: free.ID})
	wantCode(t, err, apperr.Conflict, "")
	if !strings.Contains(err.Error(), "free text") {
		t.Fatalf("free-text refusal does not say why: %v", err)
	}
	o := f.order(p, amox, 10)
	_, err = f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID})
	wantCode(t, err, apperr.Conflict, "") // 10 wanted, 5 usable
	_, err = f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID, LocationID: &f.main.ID})
	wantCode(t, err, apperr.BadUserInput, "input.locationId")
	_, err = f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: "med_bad"})
	wantCode(t, err, apperr.BadUserInput, "input.orderId")
	_, err = f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID, Quantity: ptr(0)})
	wantCode(t, err, apperr.BadUserInput, "input.quantity")
	_, err = f.svc.Dispense(f.nurse, DispenseMedicationInput{OrderID: o.ID, Quantity: ptr(1)})
	wantCode(t, err, apperr.Forbidden, "")
	stopped := f.order(p, amox, 1)
	f.client.MedicationOrder.UpdateOne(stopped).SetStatus(medicationorder.StatusSTOPPED).ExecX(f.system)
	_, err = f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: stopped.ID})
	wantCode(t, err, apperr.Conflict, "")
	if n := f.client.Dispensing.Query().CountX(f.system); n != 0 {
		t.Fatalf("refusals made %d dispensings", n)
	}
	f.ledgerAgrees()
}

func TestControlledDrugNeedsASecondPersonsWitness(t *testing.T) {
	f := setup(t)
	morphine := f.drug("MORPH10INJ", 0, ptr(drug.ControlledScheduleII))
	b := f.receive(f.pharmacy, morphine, "M1", 100, 10, 500)
	p := f.patient()
	o := f.order(p, morphine, 4)

	d, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID, Quantity: ptr(2)})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status != dispensing.StatusAWAITING_WITNESS || f.batch(b.ID).QuantityOnHand != 8 {
		t.Fatalf("controlled dispensing: %s, on hand %d", d.Status, f.batch(b.ID).QuantityOnHand)
	}
	if types, _ := f.events(DispensingTopic); len(types) != 0 {
		t.Fatalf("announced before the witness: %v", types)
	}
	// Not the dispenser, not a technician.
	_, err = f.svc.Witness(f.pharmacist, d.ID)
	wantCode(t, err, apperr.Forbidden, "")
	_, err = f.svc.Witness(f.technician, d.ID)
	wantCode(t, err, apperr.Forbidden, "")
	w, err := f.svc.Witness(f.nurse, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != dispensing.StatusDISPENSED || w.WitnessedByID == nil || w.WitnessedAt == nil {
		t.Fatalf("witnessed: %+v", w)
	}
	_, err = f.svc.Witness(f.pharmacist2, d.ID)
	wantCode(t, err, apperr.Conflict, "")
	if types, _ := f.events(DispensingTopic); len(types) != 1 || types[0] != Dispensed {
		t.Fatalf("events after witness: %v", types)
	}

	// A refused witness: the units go back to their batch.
	d2, err := f.svc.Dispense(f.technician, DispenseMedicationInput{OrderID: o.ID})
	if err != nil {
		t.Fatal(err)
	}
	if f.batch(b.ID).QuantityOnHand != 6 {
		t.Fatalf("on hand while awaiting: %d", f.batch(b.ID).QuantityOnHand)
	}
	_, err = f.svc.Cancel(f.pharmacist2, d2.ID, "")
	wantCode(t, err, apperr.BadUserInput, "reason")
	c, err := f.svc.Cancel(f.pharmacist2, d2.ID, "count does not match the register")
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != dispensing.StatusCANCELLED || f.batch(b.ID).QuantityOnHand != 8 {
		t.Fatalf("cancelled: %s, on hand %d", c.Status, f.batch(b.ID).QuantityOnHand)
	}
	// The order has those units left again and is still ACTIVE.
	taken, _ := Committed(f.system, f.client, []*ent.MedicationOrder{o})
	if taken[o.ID] != 2 || f.client.MedicationOrder.GetX(f.system, o.ID).Status != medicationorder.StatusACTIVE {
		t.Fatalf("after cancel: committed %d", taken[o.ID])
	}
	// Dispensed in full and witnessed: the order completes at the witness.
	d3, err := f.svc.Dispense(f.technician, DispenseMedicationInput{OrderID: o.ID})
	if err != nil {
		t.Fatal(err)
	}
	if f.client.MedicationOrder.GetX(f.system, o.ID).Status != medicationorder.StatusACTIVE {
		t.Fatal("order completed before the witness")
	}
	if _, err := f.svc.Witness(f.pharmacist, d3.ID); err != nil {
		t.Fatal(err)
	}
	if f.client.MedicationOrder.GetX(f.system, o.ID).Status != medicationorder.StatusCOMPLETED {
		t.Fatal("order not completed after the witness")
	}
	f.ledgerAgrees()
}

func TestReturnPutsUnusedStockBackToItsBatch(t *testing.T) {
	f := setup(t)
	para := f.drug("PARA500TAB", 0, nil)
	a := f.receive(f.pharmacy, para, "A", 30, 4, 10)
	b := f.receive(f.pharmacy, para, "B", 60, 20, 12)
	p := f.patient()
	o := f.order(p, para, 10)
	d, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Return(f.technician, d.ID, 11, nil)
	wantCode(t, err, apperr.BadUserInput, "quantity")
	r, err := f.svc.Return(f.technician, d.ID, 7, ptr("discharged early"))
	if err != nil {
		t.Fatal(err)
	}
	// Lot B (6 dispensed) takes its 6 back first, then lot A 1.
	if r.ReturnedQuantity != 7 || f.batch(b.ID).QuantityOnHand != 20 || f.batch(a.ID).QuantityOnHand != 1 {
		t.Fatalf("after return: returned %d, A %d, B %d", r.ReturnedQuantity, f.batch(a.ID).QuantityOnHand, f.batch(b.ID).QuantityOnHand)
	}
	_, err = f.svc.Return(f.technician, d.ID, 4, nil)
	wantCode(t, err, apperr.BadUserInput, "quantity")
	types, payloads := f.events(DispensingTopic)
	if len(types) != 2 || types[1] != Returned {
		t.Fatalf("events: %v", types)
	}
	var ev DispensingEvent
	if err := json.Unmarshal(payloads[1], &ev); err != nil || ev.Quantity != 7 || ev.TotalCost != 6*12+1*10 {
		t.Fatalf("return event %+v %v", ev, err)
	}
	if n := f.movements(stockmovement.KindRETURN); n != 2 {
		t.Fatalf("RETURN rows: %d", n)
	}
	f.ledgerAgrees()
}

func TestRecallTraceFindsEveryPatientOfALot(t *testing.T) {
	f := setup(t)
	amox := f.drug("AMOX500CAP", 0, nil)
	f.receive(f.pharmacy, amox, "BAD-LOT", 30, 5, 10)
	f.receive(f.pharmacy, amox, "GOOD-LOT", 90, 50, 10)
	p1, p2, p3 := f.patient(), f.patient(), f.patient()
	if _, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: f.order(p1, amox, 3).ID}); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(3600e9)
	d2, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: f.order(p2, amox, 6).ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: f.order(p3, amox, 4).ID}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.Recall(f.system, f.client, "BAD-LOT")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Patient.ID != p1.ID || got[0].Quantity != 3 || got[1].Patient.ID != p2.ID || got[1].Quantity != 2 ||
		got[1].Dispensing.ID != d2.ID || got[1].Batch.LotNumber != "BAD-LOT" {
		t.Fatalf("recall: %+v", got)
	}
	// Units given back did not stay with the patient.
	if _, err := f.svc.Return(f.pharmacist, d2.ID, 6, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = f.svc.Recall(f.system, f.client, "BAD-LOT")
	if len(got) != 1 || got[0].Patient.ID != p1.ID {
		t.Fatalf("recall after return: %+v", got)
	}
	_, err = f.svc.Recall(f.system, f.client, " ")
	wantCode(t, err, apperr.BadUserInput, "lotNumber")
}

func TestStockAlertsLowOncePerCrossingAndExpiringOncePerBatch(t *testing.T) {
	f := setup(t)
	para := f.drug("PARA500TAB", 10, nil)
	b := f.receive(f.pharmacy, para, "P1", 400, 12, 10)
	p := f.patient()
	o := f.order(p, para, 5)
	if _, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID, Quantity: ptr(1)}); err != nil {
		t.Fatal(err)
	}
	if types, _ := f.events(StockLowTopic); len(types) != 0 {
		t.Fatalf("low at 11 of 10: %v", types)
	}
	for range 2 {
		if _, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID, Quantity: ptr(1)}); err != nil {
			t.Fatal(err)
		}
	}
	types, payloads := f.events(StockLowTopic)
	if len(types) != 1 || types[0] != AlertLow {
		t.Fatalf("low alerts: %v", types)
	}
	var a StockAlert
	if err := json.Unmarshal(payloads[0], &a); err != nil || a.OnHand != 9 || a.ReorderLevel != 10 || a.LocationID != f.pharmacy.ID {
		t.Fatalf("alert %+v %v", a, err)
	}
	// Back above and below again: a second crossing, a second alert.
	if _, err := f.svc.Adjust(f.pharmacist, AdjustStockInput{BatchID: b.ID, CountedQuantity: 15, Reason: "found a box"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Adjust(f.pharmacist, AdjustStockInput{BatchID: b.ID, CountedQuantity: 2, Reason: "water damage"}); err != nil {
		t.Fatal(err)
	}
	if types, _ := f.events(StockLowTopic); len(types) != 2 {
		t.Fatalf("low alerts after a second crossing: %v", types)
	}

	// A batch received inside the warning is announced at once; others
	// when the scan finds them inside it, each once.
	near := f.receive(f.ward, para, "NEAR", 30, 5, 10)
	if types, _ := f.events(ExpiringTopic); len(types) != 1 {
		t.Fatalf("expiring alerts on receipt: %v", types)
	}
	if n, err := f.svc.ScanExpiring(f.system); err != nil || n != 0 {
		t.Fatalf("scan found %d (%v); the only batch inside the warning was announced", n, err)
	}
	f.now = f.now.AddDate(0, 0, 400-89)
	if n, err := f.svc.ScanExpiring(f.system); err != nil || n != 1 {
		t.Fatalf("scan after the clock moved: %d, %v", n, err)
	}
	if n, _ := f.svc.ScanExpiring(f.system); n != 0 {
		t.Fatalf("second scan announced again: %d", n)
	}
	if f.batch(near.ID).ExpiryAlertedAt == nil {
		t.Fatal("near batch not marked")
	}
	// Expiring lists it; writing off expired stock zeroes it.
	exp, err := f.svc.Expiring(f.system, f.client, 0, &f.ward.ID)
	if err != nil || len(exp) != 1 || exp[0].ID != near.ID {
		t.Fatalf("expiring: %v %v", exp, err)
	}
	gone, err := f.svc.WriteOffExpired(f.technician, nil)
	if err != nil || len(gone) != 1 || gone[0].QuantityOnHand != 0 {
		t.Fatalf("write-off: %v %v", gone, err)
	}
	_, err = f.svc.Expiring(f.system, f.client, -1, nil)
	wantCode(t, err, apperr.BadUserInput, "withinDays")
	f.ledgerAgrees()
}

func TestLevelsValuationAndQueue(t *testing.T) {
	f := setup(t)
	para := f.drug("PARA500TAB", 100, nil)
	amox := f.drug("AMOX500CAP", 0, nil)
	f.receive(f.pharmacy, para, "P1", 100, 40, 25)
	f.receive(f.pharmacy, amox, "A1", 100, 10, 300)
	f.receive(f.main, amox, "A2", 100, 1000, 290)
	levels, err := f.svc.Levels(f.system, f.client, &f.pharmacy.ID)
	if err != nil || len(levels) != 2 {
		t.Fatalf("levels %v %v", levels, err)
	}
	if levels[0].Drug.ID != amox.ID || levels[0].Value != 3000 || levels[1].OnHand != 40 || !levels[1].Low || levels[0].Low {
		t.Fatalf("levels: %+v %+v", levels[0], levels[1])
	}
	low, _ := f.svc.Low(f.system, f.client, nil)
	if len(low) != 1 || low[0].Drug.ID != para.ID {
		t.Fatalf("low: %+v", low)
	}
	val, err := f.svc.Valuation(f.system, f.client)
	if err != nil || len(val) != 2 || val[0].Location.ID != f.main.ID || val[0].Value != 290_000 || val[1].Value != 40*25+3000 {
		t.Fatalf("valuation %+v %v", val, err)
	}
	p := f.patient()
	full := f.order(p, amox, 2)
	part := f.order(p, amox, 5)
	untouched := f.order(p, nil, 1)
	for _, in := range []DispenseMedicationInput{{OrderID: full.ID}, {OrderID: part.ID, Quantity: ptr(2)}} {
		if _, err := f.svc.Dispense(f.pharmacist, in); err != nil {
			t.Fatal(err)
		}
	}
	q, err := f.svc.Queue(f.system, f.client, nil)
	if err != nil || len(q) != 2 || q[0].ID != part.ID || q[1].ID != untouched.ID {
		t.Fatalf("queue %v %v", q, err)
	}
}

func TestLedgerIsAppendOnly(t *testing.T) {
	f := setup(t)
	amox := f.drug("AMOX500CAP", 0, nil)
	f.receive(f.main, amox, "A", 100, 5, 1)
	row := f.client.StockMovement.Query().FirstX(f.system)
	err := f.client.StockMovement.UpdateOne(row).Exec(f.system)
	if !errors.Is(err, ErrLedgerAppendOnly) {
		t.Fatalf("update of a ledger row: %v", err)
	}
	if _, err := f.client.StockMovement.Delete().Exec(f.system); !errors.Is(err, ErrLedgerAppendOnly) {
		t.Fatalf("delete of ledger rows: %v", err)
	}
}
