package demo

import (
	"context"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/stockmovement"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// TestSeedStocksTheFormularyItemsThatExist: with part of the formulary in
// place, the demo stocks those items (each batch's quantity its ledger's
// sum) and skips the codes that are missing; the inpatient's orders name
// only items that exist.
func TestSeedStocksTheFormularyItemsThatExist(t *testing.T) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	c := st.Client
	amox := c.Drug.Create().SetCode("AMOX500CAP").SetGenericName("amoxicillin").SetUnitOfIssue("capsule").SaveX(ctx)
	c.Drug.Create().SetCode("MORPH10INJ").SetGenericName("morphine").SetUnitOfIssue("ampoule").
		SetControlledSchedule(drug.ControlledScheduleII).SaveX(ctx)
	if err := Seed(ctx, st, "pw", time.Now()); err != nil {
		t.Fatal(err)
	}
	if n := c.StockLocation.Query().CountX(ctx); n != 3 {
		t.Fatalf("%d stock locations", n)
	}
	batches := c.StockBatch.Query().AllX(ctx)
	if len(batches) != 4 { // three amoxicillin, one morphine; the other codes do not exist here
		t.Fatalf("%d batches", len(batches))
	}
	for _, b := range batches {
		qs := c.StockMovement.Query().Where(stockmovement.BatchID(b.ID)).Select(stockmovement.FieldQuantity).IntsX(ctx)
		if len(qs) != 1 || qs[0] != b.QuantityOnHand || !b.ExpiryDate.After(time.Now()) {
			t.Fatalf("batch %s: on hand %d, ledger %v, expiry %s", b.LotNumber, b.QuantityOnHand, qs, b.ExpiryDate)
		}
	}
	orders := c.MedicationOrder.Query().Where(medicationorder.DrugIDNotNil()).AllX(ctx)
	if len(orders) != 2 || (*orders[0].DrugID != amox.ID && *orders[1].DrugID != amox.ID) {
		t.Fatalf("formulary orders: %v", orders)
	}
}
