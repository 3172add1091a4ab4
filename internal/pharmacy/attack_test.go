package pharmacy

import (
	"testing"

	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/internal/apperr"
)

// The cases below were found by trying the API as an attacker would.

// TestNoWitnessReleasesADrugItsOrderNoLongerAsksFor: a controlled
// dispensing waiting for its witness cannot be released once the order was
// stopped or replaced; cancelling it puts the units back.
func TestNoWitnessReleasesADrugItsOrderNoLongerAsksFor(t *testing.T) {
	f := setup(t)
	morphine := f.drug("MORPH10INJ", 0, ptr(drug.ControlledScheduleII))
	b := f.receive(f.pharmacy, morphine, "M1", 100, 10, 500)
	for _, status := range []medicationorder.Status{medicationorder.StatusSTOPPED, medicationorder.StatusSUPERSEDED} {
		o := f.order(f.patient(), morphine, 2)
		d, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: o.ID})
		if err != nil || d.Status != dispensing.StatusAWAITING_WITNESS {
			t.Fatalf("dispense: %v %v", d, err)
		}
		f.client.MedicationOrder.UpdateOne(o).SetStatus(status).ExecX(f.system)
		_, err = f.svc.Witness(f.nurse, d.ID)
		wantCode(t, err, apperr.Conflict, "")
		if got := f.client.Dispensing.GetX(f.system, d.ID); got.Status != dispensing.StatusAWAITING_WITNESS || got.WitnessedByID != nil {
			t.Fatalf("%s order: the refused witness changed the dispensing: %+v", status, got)
		}
		if _, err := f.svc.Cancel(f.nurse, d.ID, "order "+string(status)); err != nil {
			t.Fatal(err)
		}
	}
	if on := f.batch(b.ID).QuantityOnHand; on != 10 {
		t.Fatalf("on hand %d after both were cancelled, want 10", on)
	}
	f.ledgerAgrees()
}

// TestALotKeepsOneExpiryAndCostWhereverItGoes: a lot received elsewhere
// with another expiry is refused, and a transfer never joins units to a
// batch of other expiry or cost (which would relabel them).
func TestALotKeepsOneExpiryAndCostWhereverItGoes(t *testing.T) {
	f := setup(t)
	amlo := f.drug("AMLO5TAB", 0, nil)
	src := f.receive(f.main, amlo, "LOT-X", 2, 100, 100)
	_, err := f.svc.Receive(f.pharmacist, ReceiveStockInput{LocationID: f.pharmacy.ID, DrugID: amlo.ID, LotNumber: "LOT-X",
		ExpiryDate: f.today().AddDate(5, 0, 0), Quantity: 1, UnitCost: 50000})
	wantCode(t, err, apperr.BadUserInput, "input.expiryDate")

	// Same expiry, another price: received, but a transfer will not merge them.
	f.receive(f.pharmacy, amlo, "LOT-X", 2, 1, 50000)
	_, err = f.svc.Transfer(f.pharmacist, TransferStockInput{BatchID: src.ID, ToLocationID: f.pharmacy.ID, Quantity: 100})
	wantCode(t, err, apperr.Conflict, "")
	if on := f.batch(src.ID).QuantityOnHand; on != 100 {
		t.Fatalf("the refused transfer moved units: %d left", on)
	}
	f.ledgerAgrees()
}

// TestLotNumbersAreOneWhateverTheirSpelling: case, spaces and invisible
// characters do not make another lot, and a recall finds every unit.
func TestLotNumbersAreOneWhateverTheirSpelling(t *testing.T) {
	f := setup(t)
	amlo := f.drug("AMLO5TAB", 0, nil)
	a := f.receive(f.pharmacy, amlo, "aml-1", 100, 10, 100)
	b := f.receive(f.pharmacy, amlo, " AML-1\u200b", 100, 5, 100)
	if a.ID != b.ID || a.LotNumber != "AML-1" || f.batch(a.ID).QuantityOnHand != 15 {
		t.Fatalf("two spellings made %s (%s) and %s (%s)", a.ID, a.LotNumber, b.ID, b.LotNumber)
	}
	p := f.patient()
	if _, err := f.svc.Dispense(f.pharmacist, DispenseMedicationInput{OrderID: f.order(p, amlo, 3).ID}); err != nil {
		t.Fatal(err)
	}
	found, err := f.svc.Recall(f.system, f.client, "Aml-1")
	if err != nil || len(found) != 1 || found[0].Patient.ID != p.ID || found[0].Quantity != 3 {
		t.Fatalf("recall: %+v, %v", found, err)
	}
}

// TestStockLimitsKeepValuesExact: a batch cannot grow past MaxOnHand, so
// that no value overflows.
func TestStockLimitsKeepValuesExact(t *testing.T) {
	f := setup(t)
	big := f.drug("BIG", 0, nil)
	var id string
	for range MaxOnHand / MaxQuantity {
		id = f.receive(f.main, big, "B1", 100, MaxQuantity, MaxUnitCost).ID
	}
	_, err := f.svc.Receive(f.pharmacist, ReceiveStockInput{LocationID: f.main.ID, DrugID: big.ID, LotNumber: "B1",
		ExpiryDate: f.today().AddDate(0, 0, 100), Quantity: 1, UnitCost: MaxUnitCost})
	wantCode(t, err, apperr.Conflict, "")
	if on := f.batch(id).QuantityOnHand; on != MaxOnHand {
		t.Fatalf("on hand %d, want %d", on, MaxOnHand)
	}
	levels, err := f.svc.Levels(f.system, f.client, &f.main.ID)
	if err != nil || len(levels) != 1 || levels[0].Value != int64(MaxOnHand)*MaxUnitCost {
		t.Fatalf("levels: %+v, %v", levels, err)
	}
}

// TestLocationCodesIgnoreCase: "pha" is the pharmacy's PHA, not a second
// pharmacy that would make every dispensing ambiguous.
func TestLocationCodesIgnoreCase(t *testing.T) {
	f := setup(t)
	_, err := f.svc.CreateLocation(f.pharmacist, CreateStockLocationInput{Code: "pha", Name: "Another", Kind: "PHARMACY"})
	wantCode(t, err, apperr.BadUserInput, "input.code")
}

// TestControlledStockIsCountedMovedAndTakenBackByPharmacists: a
// technician may not change the books of a controlled drug alone.
func TestControlledStockIsCountedMovedAndTakenBackByPharmacists(t *testing.T) {
	f := setup(t)
	morphine := f.drug("MORPH10INJ", 0, ptr(drug.ControlledScheduleII))
	b := f.receive(f.pharmacy, morphine, "M1", 100, 10, 500)
	_, err := f.svc.Adjust(f.technician, AdjustStockInput{BatchID: b.ID, CountedQuantity: 1, Reason: "count"})
	wantCode(t, err, apperr.Forbidden, "")
	_, err = f.svc.Transfer(f.technician, TransferStockInput{BatchID: b.ID, ToLocationID: f.ward.ID, Quantity: 5})
	wantCode(t, err, apperr.Forbidden, "")
	d, err := f.svc.Dispense(f.technician, DispenseMedicationInput{OrderID: f.order(f.patient(), morphine, 2).ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Witness(f.pharmacist, d.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.Return(f.technician, d.ID, 1, nil)
	wantCode(t, err, apperr.Forbidden, "")
	if on := f.batch(b.ID).QuantityOnHand; on != 8 {
		t.Fatalf("on hand %d, want 8", on)
	}
	if _, err := f.svc.Adjust(f.pharmacist, AdjustStockInput{BatchID: b.ID, CountedQuantity: 7, Reason: "broken ampoule"}); err != nil {
		t.Fatal(err)
	}
	f.ledgerAgrees()
}
