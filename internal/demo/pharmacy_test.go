package demo

import (
	"context"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/stockbatch"
	"github.com/hmis-dev/hmis/ent/stockmovement"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// TestSeedStocksTheFormularyItems: the demo (which seeds the formulary
// first) stocks the items it names, each batch's quantity its ledger's sum,
// and the inpatient's orders name formulary items.
func TestSeedStocksTheFormularyItems(t *testing.T) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	c := st.Client
	if err := Seed(ctx, st, "pw", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := c.StockLocation.Query().CountX(ctx); n != 3 {
		t.Fatalf("%d stock locations", n)
	}
	for _, code := range []string{"AMOX500CAP", "COAMOX625TAB", "PARA500TAB", "MORPH10INJ", "CEFTRI1GINJ", "SYR5ML"} {
		if n := c.StockBatch.Query().Where(stockbatch.HasDrugWith(drug.Code(code))).CountX(ctx); n == 0 {
			t.Errorf("no stock of %s", code)
		}
	}
	batches := c.StockBatch.Query().AllX(ctx)
	for _, b := range batches {
		qs := c.StockMovement.Query().Where(stockmovement.BatchID(b.ID)).Select(stockmovement.FieldQuantity).IntsX(ctx)
		if len(qs) != 1 || qs[0] != b.QuantityOnHand || !b.ExpiryDate.After(time.Now()) {
			t.Fatalf("batch %s: on hand %d, ledger %v, expiry %s", b.LotNumber, b.QuantityOnHand, qs, b.ExpiryDate)
		}
	}
	// The outpatient's amlodipine, and the inpatient's amoxicillin and morphine to dispense.
	for _, code := range []string{"AMLO5TAB", "AMOX500CAP", "MORPH10INJ"} {
		if n := c.MedicationOrder.Query().Where(medicationorder.HasFormularyDrugWith(drug.Code(code))).CountX(ctx); n != 1 {
			t.Errorf("%d orders of %s", n, code)
		}
	}
	if n := c.MedicationOrder.Query().Where(medicationorder.DrugIDIsNil()).CountX(ctx); n != 0 {
		t.Errorf("%d free-text orders in the demo", n)
	}
}
