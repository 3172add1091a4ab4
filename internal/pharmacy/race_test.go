package pharmacy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// TestConcurrentDispensingNeverTakesStockBelowZero has many pharmacists
// dispense the last units at once, for different patients (so no patient
// lock orders them): exactly as many units as were on the shelf leave it,
// the others are refused with CONFLICT, and the ledger agrees.
func TestConcurrentDispensingNeverTakesStockBelowZero(t *testing.T) {
	f := setup(t)
	amox := f.drug("AMOX500CAP", 0, nil)
	a := f.receive(f.pharmacy, amox, "A", 30, 4, 100)
	b := f.receive(f.pharmacy, amox, "B", 60, 7, 100)
	const workers = 24
	orders := make([]*ent.MedicationOrder, workers)
	for i := range orders {
		orders[i] = f.order(f.patient(), amox, 2)
	}
	who := []context.Context{f.pharmacist, f.pharmacist2, f.technician}
	errs := make([]error, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = f.svc.Dispense(who[i%len(who)], DispenseMedicationInput{OrderID: orders[i].ID, Quantity: ptr(2)})
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case apperr.CodeOf(err) == apperr.Conflict:
		default:
			t.Fatalf("dispensing failed otherwise than as a conflict: %v", err)
		}
	}
	// 11 units: five dispensings of 2, and one unit left that no one's 2 fits.
	if ok != 5 {
		t.Fatalf("%d dispensings of 2 from 11 units succeeded, want 5", ok)
	}
	left := f.batch(a.ID).QuantityOnHand + f.batch(b.ID).QuantityOnHand
	if left != 1 || f.batch(a.ID).QuantityOnHand < 0 || f.batch(b.ID).QuantityOnHand < 0 {
		t.Fatalf("left on the shelf: A %d, B %d", f.batch(a.ID).QuantityOnHand, f.batch(b.ID).QuantityOnHand)
	}
	n := f.client.Dispensing.Query().Where(dispensing.StatusEQ(dispensing.StatusDISPENSED)).CountX(f.system)
	if n != 5 {
		t.Fatalf("%d dispensings stored", n)
	}
	f.ledgerAgrees()
}

// TestConcurrentWitnessesOneWins has two witnesses confirm one controlled
// dispensing at once, and a cancel race them: exactly one wins.
func TestConcurrentWitnessesOneWins(t *testing.T) {
	f := setup(t)
	morphine := f.drug("MORPH10INJ", 0, ptr(drug.ControlledScheduleII))
	b := f.receive(f.pharmacy, morphine, "M", 90, 10, 100)
	for round := range 5 {
		o := f.order(f.patient(), morphine, 1)
		d, err := f.svc.Dispense(f.technician, DispenseMedicationInput{OrderID: o.ID})
		if err != nil {
			t.Fatal(err)
		}
		errs := make([]error, 3)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, run := range []func() error{
			func() error { _, err := f.svc.Witness(f.nurse, d.ID); return err },
			func() error { _, err := f.svc.Witness(f.pharmacist, d.ID); return err },
			func() error { _, err := f.svc.Cancel(f.pharmacist2, d.ID, "refused"); return err },
		} {
			wg.Add(1)
			go func() { defer wg.Done(); <-start; errs[i] = run() }()
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			} else if apperr.CodeOf(err) != apperr.Conflict {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if won != 1 {
			t.Fatalf("round %d: %d of the witnesses and the cancel won", round, won)
		}
	}
	if got := f.batch(b.ID).QuantityOnHand; got < 5 || got > 10 {
		t.Fatalf("on hand %d", got)
	}
	f.ledgerAgrees()
}

// TestLedgerPropertyOnHandIsTheLedgerSum runs thousands of random stock
// operations — receipts, transfers, counts, dispensings (some controlled,
// witnessed or cancelled), returns, write-offs — while the calendar moves
// on, and checks after every batch of them that each batch's quantity on
// hand is the sum of its ledger rows and never negative, and that no order
// has more dispensed than prescribed.
func TestLedgerPropertyOnHandIsTheLedgerSum(t *testing.T) {
	ops := 3000
	if testenv.UsingPostgres() {
		ops = 2000
	}
	if testing.Short() {
		ops = 300
	}
	f := setup(t)
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 42))
	drugs := []*ent.Drug{
		f.drug("AMOX500CAP", 30, nil), f.drug("PARA500TAB", 50, nil),
		f.drug("MORPH10INJ", 5, ptr(drug.ControlledScheduleII)),
	}
	locs := []*ent.StockLocation{f.main, f.pharmacy, f.ward}
	staffs := []context.Context{f.pharmacist, f.pharmacist2, f.technician}
	base := f.today()
	var orders []*ent.MedicationOrder
	var batches []string
	var dispensings []string
	done := map[string]int{}
	pick := func(ids []string) string { return ids[rng.IntN(len(ids))] }
	for i := range ops {
		actor := staffs[rng.IntN(len(staffs))]
		var err error
		op := ""
		switch r := rng.IntN(100); {
		case r < 18:
			op = "receive"
			d := drugs[rng.IntN(len(drugs))]
			lot := rng.IntN(12)
			var b *ent.StockBatch
			// A lot has one expiry and cost wherever it is.
			b, err = f.svc.Receive(actor, ReceiveStockInput{LocationID: locs[rng.IntN(len(locs))].ID, DrugID: d.ID,
				LotNumber: fmt.Sprintf("%s-%d", d.Code, lot), ExpiryDate: base.AddDate(0, 0, 5+lot*9), Quantity: 1 + rng.IntN(40),
				UnitCost: int64(100 + lot)})
			if err == nil {
				batches = append(batches, b.ID)
			}
		case r < 30 && len(batches) > 0:
			op = "transfer"
			var b *ent.StockBatch
			b, err = f.svc.Transfer(actor, TransferStockInput{BatchID: pick(batches), ToLocationID: locs[rng.IntN(len(locs))].ID, Quantity: 1 + rng.IntN(15)})
			if err == nil {
				batches = append(batches, b.ID)
			}
		case r < 38 && len(batches) > 0:
			op = "adjust"
			_, err = f.svc.Adjust(actor, AdjustStockInput{BatchID: pick(batches), CountedQuantity: rng.IntN(30), Reason: "stock-take"})
		case r < 48:
			op = "order"
			orders = append(orders, f.order(f.patient(), drugs[rng.IntN(len(drugs))], 1+rng.IntN(12)))
		case r < 72 && len(orders) > 0:
			op = "dispense"
			var d *ent.Dispensing
			d, err = f.svc.Dispense(actor, DispenseMedicationInput{OrderID: orders[rng.IntN(len(orders))].ID, Quantity: ptr(1 + rng.IntN(6))})
			if err == nil {
				dispensings = append(dispensings, d.ID)
			}
		case r < 80 && len(dispensings) > 0:
			op = "witness"
			_, err = f.svc.Witness(f.nurse, pick(dispensings))
		case r < 84 && len(dispensings) > 0:
			op = "cancel"
			_, err = f.svc.Cancel(f.nurse, pick(dispensings), "refused")
		case r < 93 && len(dispensings) > 0:
			op = "return"
			_, err = f.svc.Return(actor, pick(dispensings), 1+rng.IntN(4), nil)
		case r < 96:
			op = "write-off"
			_, err = f.svc.WriteOffExpired(actor, nil)
		default:
			op = "tomorrow"
			f.now = f.now.AddDate(0, 0, 1)
		}
		switch code := apperr.CodeOf(err); {
		case err == nil:
			done[op]++
		case code == apperr.Conflict || code == apperr.BadUserInput:
		case code == apperr.Forbidden && actor == f.technician:
			// A technician may not change the books of a controlled drug.
		default:
			t.Fatalf("op %d %s: %v", i, op, err)
		}
		if i%250 == 249 {
			f.ledgerAgrees()
		}
	}
	f.ledgerAgrees()
	if len(orders) > 0 {
		taken, err := Committed(f.system, f.client, orders)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range orders {
			if taken[o.ID] > o.Quantity || taken[o.ID] < 0 {
				t.Fatalf("order %s: %d of %d dispensed", o.ID, taken[o.ID], o.Quantity)
			}
		}
	}
	t.Logf("succeeded: %v", done)
	for _, op := range []string{"receive", "transfer", "adjust", "dispense", "witness", "cancel", "return", "write-off"} {
		if done[op] == 0 && ops >= 1000 {
			t.Errorf("no %s succeeded: the run did not exercise it", op)
		}
	}
}
