package pharmacy

import (
	"context"
	"strings"
	"time"
	"unicode"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/stockbatch"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/ent/stockmovement"
	"github.com/hmis-dev/hmis/ent/ward"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// stockKeepers are who receive, move and count stock.
var stockKeepers = []staff.Kind{staff.KindPHARMACIST, staff.KindPHARMACY_TECHNICIAN}

// CreateStockLocationInput is the input of createStockLocation.
type CreateStockLocationInput struct {
	Code   string
	Name   string
	Kind   stocklocation.Kind
	WardID *string
}

// ReceiveStockInput is the input of receiveStock: a delivery of one lot.
type ReceiveStockInput struct {
	LocationID string
	DrugID     string
	LotNumber  string
	ExpiryDate time.Time
	Quantity   int
	UnitCost   int64
	Supplier   *string
}

// TransferStockInput is the input of transferStock.
type TransferStockInput struct {
	BatchID      string
	ToLocationID string
	Quantity     int
}

// AdjustStockInput is the input of adjustStock: what a stock-take counted.
type AdjustStockInput struct {
	BatchID         string
	CountedQuantity int
	Reason          string
}

// CreateLocation adds a stock location; a ward store names its ward.
func (s *Service) CreateLocation(ctx context.Context, in CreateStockLocationInput) (*ent.StockLocation, error) {
	var c input.Checker
	// Codes are compared as staff read them: "pha" is PHA.
	code := strings.ToUpper(c.Text("input.code", in.Code, 32))
	name := c.Text("input.name", in.Name, 100)
	if c.Err() == nil && stocklocation.KindValidator(in.Kind) != nil {
		c.Fail(apperr.BadInput("input.kind", "is not a kind of stock location"))
	}
	c.OptionalID("input.wardId", in.WardID, input.Ward)
	if c.Err() == nil && (in.Kind == stocklocation.KindWARD_STORE) != (in.WardID != nil) {
		c.Fail(apperr.BadInput("input.wardId", "is required for a WARD_STORE and only for one"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.StockLocation, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "set up stock locations", staff.KindPHARMACIST); err != nil {
			return nil, err
		}
		if in.WardID != nil {
			if ok, err := tx.Ward.Query().Where(ward.ID(*in.WardID)).Exist(ctx); err != nil {
				return nil, err
			} else if !ok {
				return nil, apperr.BadInput("input.wardId", "no such ward")
			}
		}
		if taken, err := tx.StockLocation.Query().Where(stocklocation.Code(code)).Exist(ctx); err != nil {
			return nil, err
		} else if taken {
			return nil, apperr.BadInput("input.code", "is the code of another location")
		}
		return tx.StockLocation.Create().SetCode(code).SetName(name).SetKind(in.Kind).SetNillableWardID(in.WardID).Save(ctx)
	})
}

// controlledByPharmacist keeps the counting, moving and taking back of a
// controlled drug to pharmacists: a technician receives and dispenses it
// (a dispensing waits for its witness) but does not change the books of
// it alone.
func controlledByPharmacist(actor *ent.Staff, d *ent.Drug, what string) error {
	if d.ControlledSchedule != nil && actor.Kind != staff.KindPHARMACIST {
		return apperr.Denied("only a pharmacist may %s a controlled drug (schedule %s)", what, *d.ControlledSchedule)
	}
	return nil
}

// LotNumber is a lot number as it is stored and searched: upper case,
// without the spaces and invisible characters a label or a scanner adds, so
// that "aml-1", "AML-1 " and "AML-1" with a zero-width space are one lot and
// a recall finds all their units.
func LotNumber(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return unicode.ToUpper(r)
	}, s)
}

// Receive books a delivery into a location: a new batch, or more of a lot
// already there (same expiry and unit cost), with a RECEIPT ledger row. A
// batch that arrives already inside the expiry warning is announced at
// once.
func (s *Service) Receive(ctx context.Context, in ReceiveStockInput) (*ent.StockBatch, error) {
	var c input.Checker
	c.ID("input.locationId", in.LocationID, input.StockLocation)
	c.ID("input.drugId", in.DrugID, input.Drug)
	lot := LotNumber(c.Text("input.lotNumber", in.LotNumber, 40))
	supplier := c.OptionalText("input.supplier", in.Supplier, 200)
	switch {
	case c.Err() != nil:
	case in.Quantity < 1 || in.Quantity > MaxQuantity:
		c.Fail(apperr.BadInput("input.quantity", "must be from 1 to %d", MaxQuantity))
	case in.UnitCost < 0 || in.UnitCost > MaxUnitCost:
		c.Fail(apperr.BadInput("input.unitCost", "must be from 0 to %d minor units", int64(MaxUnitCost)))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	expiry := input.Date(in.ExpiryDate)
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.StockBatch, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "receive stock", stockKeepers...)
		if err != nil {
			return nil, err
		}
		if !expiry.After(s.today()) {
			return nil, apperr.BadInput("input.expiryDate", "is not after today: expired stock is not received")
		}
		loc, err := activeLocation(ctx, tx, "input.locationId", in.LocationID)
		if err != nil {
			return nil, err
		}
		d, err := tx.Drug.Get(ctx, in.DrugID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.drugId", "no such formulary item")
		} else if err != nil {
			return nil, err
		}
		if !d.Active {
			return nil, apperr.BadInput("input.drugId", "is inactive and cannot be received")
		}
		if err := s.store.Lock(ctx, tx, stockKey(loc.ID, d.ID)); err != nil {
			return nil, err
		}
		// One lot has one expiry wherever it is kept, or a transfer would
		// carry units under another date.
		elsewhere, err := tx.StockBatch.Query().
			Where(stockbatch.DrugID(d.ID), stockbatch.LotNumber(lot), stockbatch.ExpiryDateNEQ(expiry)).First(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return nil, err
		} else if elsewhere != nil {
			return nil, apperr.BadInput("input.expiryDate", "lot %s is stocked with expiry %s; one lot has one expiry date", lot, elsewhere.ExpiryDate.Format(time.DateOnly))
		}
		b, err := tx.StockBatch.Query().
			Where(stockbatch.LocationID(loc.ID), stockbatch.DrugID(d.ID), stockbatch.LotNumber(lot)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			b, err = tx.StockBatch.Create().SetDrugID(d.ID).SetLocationID(loc.ID).SetLotNumber(lot).
				SetExpiryDate(expiry).SetUnitCost(in.UnitCost).SetNillableSupplier(supplier).Save(ctx)
			if err != nil {
				return nil, err
			}
		case err != nil:
			return nil, err
		case !b.ExpiryDate.Equal(expiry):
			return nil, apperr.BadInput("input.expiryDate", "lot %s is stocked here with expiry %s; one lot has one expiry date", lot, b.ExpiryDate.Format(time.DateOnly))
		case b.UnitCost != in.UnitCost:
			return nil, apperr.BadInput("input.unitCost", "lot %s is stocked here at unit cost %d; receive a different price as its own lot", lot, b.UnitCost)
		}
		id := actor.ID
		if b, err = s.move(ctx, tx, b, stockmovement.KindRECEIPT, in.Quantity, ledgerNote{actor: &id}); err != nil {
			return nil, err
		}
		if err := s.alertExpiring(ctx, tx, b, d); err != nil {
			return nil, err
		}
		return b, nil
	})
}

// Transfer moves units of a batch to another location, where they join the
// same lot (or start it): a TRANSFER_OUT and a TRANSFER_IN row sharing a
// transfer ID. Expired stock may be moved, to send it back to the store.
func (s *Service) Transfer(ctx context.Context, in TransferStockInput) (*ent.StockBatch, error) {
	var c input.Checker
	c.ID("input.batchId", in.BatchID, input.StockBatch)
	c.ID("input.toLocationId", in.ToLocationID, input.StockLocation)
	if c.Err() == nil && (in.Quantity < 1 || in.Quantity > MaxQuantity) {
		c.Fail(apperr.BadInput("input.quantity", "must be from 1 to %d", MaxQuantity))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.StockBatch, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "transfer stock", stockKeepers...)
		if err != nil {
			return nil, err
		}
		src, err := tx.StockBatch.Get(ctx, in.BatchID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.batchId", "no such batch")
		} else if err != nil {
			return nil, err
		}
		to, err := activeLocation(ctx, tx, "input.toLocationId", in.ToLocationID)
		if err != nil {
			return nil, err
		}
		if to.ID == src.LocationID {
			return nil, apperr.BadInput("input.toLocationId", "is where the batch already is")
		}
		if err := s.store.Lock(ctx, tx, stockKey(src.LocationID, src.DrugID), stockKey(to.ID, src.DrugID)); err != nil {
			return nil, err
		}
		if src, err = tx.StockBatch.Get(ctx, src.ID); err != nil {
			return nil, err
		}
		if src.QuantityOnHand < in.Quantity {
			return nil, apperr.BadInput("input.quantity", "is more than the %d units of lot %s on hand", src.QuantityOnHand, src.LotNumber)
		}
		d, err := tx.Drug.Get(ctx, src.DrugID)
		if err != nil {
			return nil, err
		}
		if err := controlledByPharmacist(actor, d, "move"); err != nil {
			return nil, err
		}
		dst, err := tx.StockBatch.Query().
			Where(stockbatch.LocationID(to.ID), stockbatch.DrugID(src.DrugID), stockbatch.LotNumber(src.LotNumber)).Only(ctx)
		if ent.IsNotFound(err) {
			dst, err = tx.StockBatch.Create().SetDrugID(src.DrugID).SetLocationID(to.ID).SetLotNumber(src.LotNumber).
				SetExpiryDate(src.ExpiryDate).SetUnitCost(src.UnitCost).SetNillableSupplier(src.Supplier).Save(ctx)
		}
		if err != nil {
			return nil, err
		}
		// Units keep their own expiry and cost: joining a batch that says
		// otherwise would relabel them.
		if !dst.ExpiryDate.Equal(src.ExpiryDate) || dst.UnitCost != src.UnitCost {
			return nil, apperr.Conflictf("lot %s is kept at the destination with expiry %s and unit cost %d, not %s and %d; correct the receipt first",
				src.LotNumber, dst.ExpiryDate.Format(time.DateOnly), dst.UnitCost, src.ExpiryDate.Format(time.DateOnly), src.UnitCost)
		}
		// Not an entity of its own: the ID only pairs the two rows.
		transfer := globalid.New("trf")
		id := actor.ID
		before, err := onHand(ctx, tx, src.LocationID, src.DrugID)
		if err != nil {
			return nil, err
		}
		if _, err := s.move(ctx, tx, src, stockmovement.KindTRANSFER_OUT, -in.Quantity, ledgerNote{actor: &id, transfer: &transfer}); err != nil {
			return nil, err
		}
		if err := s.checkLow(ctx, tx, src.LocationID, d, before, before-in.Quantity); err != nil {
			return nil, err
		}
		return s.move(ctx, tx, dst, stockmovement.KindTRANSFER_IN, in.Quantity, ledgerNote{actor: &id, transfer: &transfer})
	})
}

// Adjust records a stock-take: the batch's quantity becomes what was
// counted, through an ADJUSTMENT row of the difference, with the reason.
// A count equal to the books writes nothing.
func (s *Service) Adjust(ctx context.Context, in AdjustStockInput) (*ent.StockBatch, error) {
	var c input.Checker
	c.ID("input.batchId", in.BatchID, input.StockBatch)
	if c.Err() == nil && (in.CountedQuantity < 0 || in.CountedQuantity > MaxQuantity) {
		c.Fail(apperr.BadInput("input.countedQuantity", "must be from 0 to %d", MaxQuantity))
	}
	reason := c.Text("input.reason", in.Reason, MaxReasonLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.StockBatch, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "count stock", stockKeepers...)
		if err != nil {
			return nil, err
		}
		b, err := tx.StockBatch.Get(ctx, in.BatchID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.batchId", "no such batch")
		} else if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, stockKey(b.LocationID, b.DrugID)); err != nil {
			return nil, err
		}
		if b, err = tx.StockBatch.Get(ctx, b.ID); err != nil {
			return nil, err
		}
		diff := in.CountedQuantity - b.QuantityOnHand
		if diff == 0 {
			return b, nil
		}
		d, err := tx.Drug.Get(ctx, b.DrugID)
		if err != nil {
			return nil, err
		}
		if err := controlledByPharmacist(actor, d, "count"); err != nil {
			return nil, err
		}
		before, err := onHand(ctx, tx, b.LocationID, b.DrugID)
		if err != nil {
			return nil, err
		}
		id := actor.ID
		if b, err = s.move(ctx, tx, b, stockmovement.KindADJUSTMENT, diff, ledgerNote{actor: &id, reason: &reason}); err != nil {
			return nil, err
		}
		return b, s.checkLow(ctx, tx, b.LocationID, d, before, before+diff)
	})
}

// WriteOffExpired takes every expired batch with stock at a location (or
// at every location) to zero with an EXPIRY_WRITE_OFF row, and returns
// the batches written off.
func (s *Service) WriteOffExpired(ctx context.Context, locationID *string) ([]*ent.StockBatch, error) {
	if err := optionalID("locationId", locationID, input.StockLocation); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) ([]*ent.StockBatch, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "write off expired stock", stockKeepers...)
		if err != nil {
			return nil, err
		}
		q := tx.StockBatch.Query().Where(stockbatch.ExpiryDateLT(s.today()), stockbatch.QuantityOnHandGT(0))
		if locationID != nil {
			q.Where(stockbatch.LocationID(*locationID))
		}
		found, err := q.Order(ent.Asc(stockbatch.FieldLocationID), ent.Asc(stockbatch.FieldDrugID), ent.Asc(stockbatch.FieldID)).All(ctx)
		if err != nil {
			return nil, err
		}
		keys := make([]string, len(found))
		for i, b := range found {
			keys[i] = stockKey(b.LocationID, b.DrugID)
		}
		if err := s.store.Lock(ctx, tx, keys...); err != nil {
			return nil, err
		}
		reason := "expired"
		id := actor.ID
		out := make([]*ent.StockBatch, 0, len(found))
		for _, b := range found {
			if b, err = tx.StockBatch.Get(ctx, b.ID); err != nil {
				return nil, err
			}
			if b.QuantityOnHand == 0 {
				continue // written off meanwhile
			}
			d, err := tx.Drug.Get(ctx, b.DrugID)
			if err != nil {
				return nil, err
			}
			before, err := onHand(ctx, tx, b.LocationID, b.DrugID)
			if err != nil {
				return nil, err
			}
			n := b.QuantityOnHand
			if b, err = s.move(ctx, tx, b, stockmovement.KindEXPIRY_WRITE_OFF, -n, ledgerNote{actor: &id, reason: &reason}); err != nil {
				return nil, err
			}
			if err := s.checkLow(ctx, tx, b.LocationID, d, before, before-n); err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		return out, nil
	})
}

// ledgerNote is what a ledger row says besides the quantity.
type ledgerNote struct {
	actor, reason, dispensing, transfer *string
}

// move changes a batch's quantity by qty and writes the ledger row saying
// so, in the same transaction: the only way quantity_on_hand changes. A
// decrease is conditional on the units being there, so that whatever a
// caller read, the quantity never goes below zero.
func (s *Service) move(ctx context.Context, tx *ent.Tx, b *ent.StockBatch, kind stockmovement.Kind, qty int, note ledgerNote) (*ent.StockBatch, error) {
	u := tx.StockBatch.Update().Where(stockbatch.ID(b.ID)).AddQuantityOnHand(qty)
	if qty < 0 {
		u.Where(stockbatch.QuantityOnHandGTE(-qty))
	} else {
		u.Where(stockbatch.QuantityOnHandLTE(MaxOnHand - qty))
	}
	n, err := u.Save(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 && qty > 0 {
		return nil, apperr.Conflictf("lot %s would hold more than %d units; receive the rest as its own lot", b.LotNumber, MaxOnHand)
	}
	if n == 0 {
		return nil, apperr.Conflictf("lot %s no longer has %d units on hand; reload the stock", b.LotNumber, -qty)
	}
	if err := tx.StockMovement.Create().SetBatchID(b.ID).SetDrugID(b.DrugID).SetLocationID(b.LocationID).
		SetKind(kind).SetQuantity(qty).SetNillableActorID(note.actor).SetNillableReason(note.reason).
		SetNillableDispensingID(note.dispensing).SetNillableTransferID(note.transfer).Exec(ctx); err != nil {
		return nil, err
	}
	return tx.StockBatch.Get(ctx, b.ID)
}

// onHand is the units of an item at a location, over all its batches.
func onHand(ctx context.Context, tx *ent.Tx, locationID, drugID string) (int, error) {
	qs, err := tx.StockBatch.Query().Where(stockbatch.LocationID(locationID), stockbatch.DrugID(drugID)).
		Select(stockbatch.FieldQuantityOnHand).Ints(ctx)
	total := 0
	for _, q := range qs {
		total += q
	}
	return total, err
}

// checkLow announces on StockLowTopic when a change takes an item at a
// location from at or above its reorder level to below it: once per
// crossing, not on every dispensing while it stays low.
func (s *Service) checkLow(ctx context.Context, tx *ent.Tx, locationID string, d *ent.Drug, before, after int) error {
	if d.ReorderLevel == 0 || before < d.ReorderLevel || after >= d.ReorderLevel {
		return nil
	}
	return events.Record(ctx, tx, StockLowTopic, AlertLow, StockAlert{
		LocationID: locationID, DrugID: d.ID, OnHand: after, ReorderLevel: d.ReorderLevel,
	})
}

// activeLocation loads a location named by an input field.
func activeLocation(ctx context.Context, tx *ent.Tx, field, id string) (*ent.StockLocation, error) {
	loc, err := tx.StockLocation.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.BadInput(field, "no such stock location")
	} else if err != nil {
		return nil, err
	}
	if !loc.Active {
		return nil, apperr.BadInput(field, "is an inactive location")
	}
	return loc, nil
}

// optionalID checks an optional ID argument.
func optionalID(field string, id *string, t input.IDType) error {
	if id == nil {
		return nil
	}
	return input.ID(field, *id, t)
}
