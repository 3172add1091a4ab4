package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/ent/stockmovement"
	"github.com/hmis-dev/hmis/ent/ward"
)

// demoStock is what the demo pharmacy has on its shelves: item code,
// location, lot, days to expiry, units and unit cost in minor units. One
// amoxicillin lot expires soon, so first-expiry-first-out and the expiry
// alerts have something to show.
var demoStock = []struct {
	code, location, lot string
	days, units         int
	cost                int64
}{
	{"AMOX500CAP", "PHA", "AMX-24A", 45, 12, 850},
	{"AMOX500CAP", "PHA", "AMX-25C", 400, 200, 900},
	{"AMOX500CAP", "MAIN", "AMX-25C", 400, 1000, 900},
	{"COAMOX625TAB", "PHA", "CAM-25B", 300, 100, 2400},
	{"PARA500TAB", "PHA", "PAR-25F", 500, 500, 150},
	{"PARA500TAB", "MAIN", "PAR-25F", 500, 5000, 150},
	{"MORPH10INJ", "PHA", "MOR-25A", 250, 20, 3500},
	{"CEFTRI1GINJ", "PHA", "CEF-25D", 200, 50, 4200},
	{"SYR5ML", "MAIN", "SYR-25K", 900, 2000, 40},
	{"SYR5ML", "MED-A-STORE", "SYR-25K", 900, 200, 40},
}

// seedPharmacy gives the demo hospital a main store, a pharmacy and a ward
// store, stock of the formulary items that exist (a formulary without one
// of the codes simply has none of it), and, for the demo inpatient,
// orders to dispense: amoxicillin, and morphine, which needs a witness.
func seedPharmacy(ctx context.Context, tx *ent.Tx, now time.Time, pharmacist, doctor *ent.Staff, inpatient *ent.Patient) error {
	medA, err := tx.Ward.Query().Where(ward.Code("MED-A")).Only(ctx)
	if err != nil {
		return fmt.Errorf("seed pharmacy: %w", err)
	}
	locs := map[string]*ent.StockLocation{}
	for _, l := range []struct {
		code, name string
		kind       stocklocation.Kind
		ward       *string
	}{
		{"MAIN", "Main store", stocklocation.KindMAIN_STORE, nil},
		{"PHA", "Pharmacy", stocklocation.KindPHARMACY, nil},
		{"MED-A-STORE", "Medical Ward A store", stocklocation.KindWARD_STORE, &medA.ID},
	} {
		if locs[l.code], err = tx.StockLocation.Create().SetCode(l.code).SetName(l.name).SetKind(l.kind).
			SetNillableWardID(l.ward).Save(ctx); err != nil {
			return fmt.Errorf("seed stock location: %w", err)
		}
	}
	today := now.UTC().Truncate(24 * time.Hour)
	for _, s := range demoStock {
		d, err := tx.Drug.Query().Where(drug.Code(s.code)).Only(ctx)
		if ent.IsNotFound(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("seed stock: %w", err)
		}
		loc := locs[s.location]
		// Received the ordinary way: a batch and its RECEIPT row, so the
		// ledger's sum is the quantity on hand from the start.
		b, err := tx.StockBatch.Create().SetDrugID(d.ID).SetLocationID(loc.ID).SetLotNumber(s.lot).
			SetExpiryDate(today.AddDate(0, 0, s.days)).SetQuantityOnHand(s.units).SetUnitCost(s.cost).
			SetSupplier("Demo Pharma Distributors").Save(ctx)
		if err != nil {
			return fmt.Errorf("seed stock: %w", err)
		}
		if err := tx.StockMovement.Create().SetBatchID(b.ID).SetDrugID(d.ID).SetLocationID(loc.ID).
			SetKind(stockmovement.KindRECEIPT).SetQuantity(s.units).SetActorID(pharmacist.ID).Exec(ctx); err != nil {
			return fmt.Errorf("seed stock: %w", err)
		}
	}
	for _, o := range []struct {
		code, name string
		dose       float64
		unit       string
		route      medicationorder.Route
		frequency  string
		quantity   int
	}{
		{"AMOX500CAP", "Amoxicillin 500 mg capsule", 500, "mg", medicationorder.RouteORAL, "TID", 21},
		{"MORPH10INJ", "Morphine 10 mg/mL injection", 5, "mg", medicationorder.RouteIV, "q4h PRN", 2},
	} {
		d, err := tx.Drug.Query().Where(drug.Code(o.code)).Only(ctx)
		if ent.IsNotFound(err) {
			continue
		} else if err != nil {
			return fmt.Errorf("seed pharmacy order: %w", err)
		}
		if err := tx.MedicationOrder.Create().SetPatient(inpatient).SetDrug(o.name).SetDrugCode(o.code).SetDrugID(d.ID).
			SetDoseAmount(o.dose).SetDoseUnit(o.unit).SetRoute(o.route).SetFrequency(o.frequency).SetQuantity(o.quantity).
			SetPrescriberID(doctor.ID).Exec(ctx); err != nil {
			return fmt.Errorf("seed pharmacy order: %w", err)
		}
	}
	return nil
}
