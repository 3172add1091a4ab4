package pharmacy

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/dispensingline"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/stockbatch"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/ent/stockmovement"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// DispenseMedicationInput is the input of dispenseMedication.
type DispenseMedicationInput struct {
	OrderID string
	// Quantity to issue now; all the order has left if nil. Less is a
	// partial dispensing: the order keeps the remainder.
	Quantity *int
	// LocationID is the pharmacy dispensing; if nil, the hospital's one
	// active PHARMACY location.
	LocationID *string
}

// Who does what at the counter. A pharmacy technician dispenses (a
// controlled drug then waits for a witness) but does not witness: the
// witness answers for the count of a controlled drug, which is a
// pharmacist's or a nurse's responsibility.
var (
	dispensers = []staff.Kind{staff.KindPHARMACIST, staff.KindPHARMACY_TECHNICIAN}
	witnesses  = []staff.Kind{staff.KindPHARMACIST, staff.KindNURSE}
	cancellers = []staff.Kind{staff.KindPHARMACIST, staff.KindPHARMACY_TECHNICIAN, staff.KindNURSE}
)

func orderPatient(o *ent.MedicationOrder) string { return o.PatientID }
func dispensingPatient(d *ent.Dispensing) string { return d.PatientID }

// Dispense issues an ACTIVE order's drug from the pharmacy's usable batches,
// first expiry first out, across as many batches as it takes; an expired
// batch is never used. A controlled drug's dispensing waits
// AWAITING_WITNESS (its units already off the shelf) until a second person
// confirms it with Witness, or is cancelled and its units go back. Once
// the order has had its whole quantity dispensed it is COMPLETED.
func (s *Service) Dispense(ctx context.Context, in DispenseMedicationInput) (*ent.Dispensing, error) {
	var c input.Checker
	c.ID("input.orderId", in.OrderID, input.MedicationOrder)
	c.OptionalID("input.locationId", in.LocationID, input.StockLocation)
	if c.Err() == nil && in.Quantity != nil && (*in.Quantity < 1 || *in.Quantity > MaxQuantity) {
		c.Fail(apperr.BadInput("input.quantity", "must be from 1 to %d", MaxQuantity))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Dispensing, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "dispense", dispensers...)
		if err != nil {
			return nil, err
		}
		o, err := store.GetLocked(ctx, tx, tx.MedicationOrder.Get, in.OrderID, orderPatient, "medication order not found")
		if err != nil {
			return nil, err
		}
		if o.Status != medicationorder.StatusACTIVE {
			return nil, apperr.Conflictf("the order is %s; only an ACTIVE order is dispensed", o.Status)
		}
		if o.DrugID == nil {
			return nil, apperr.Conflictf("the order names no formulary item (free text %q): it cannot be dispensed until the prescriber links it to one", o.Drug)
		}
		d, err := tx.Drug.Get(ctx, *o.DrugID)
		if err != nil {
			return nil, err
		}
		loc, err := s.pharmacy(ctx, tx, in.LocationID)
		if err != nil {
			return nil, err
		}
		taken, err := committed(ctx, tx, o.ID)
		if err != nil {
			return nil, err
		}
		remaining := o.Quantity - taken
		if remaining <= 0 {
			return nil, apperr.Conflictf("the order's %d units have all been dispensed", o.Quantity)
		}
		qty := remaining
		if in.Quantity != nil {
			if *in.Quantity > remaining {
				return nil, apperr.BadInput("input.quantity", "is more than the %d units the order has left to dispense", remaining)
			}
			qty = *in.Quantity
		}
		if err := s.store.Lock(ctx, tx, stockKey(loc.ID, d.ID)); err != nil {
			return nil, err
		}
		usable, err := tx.StockBatch.Query().
			Where(stockbatch.LocationID(loc.ID), stockbatch.DrugID(d.ID), stockbatch.QuantityOnHandGT(0),
				stockbatch.ExpiryDateGTE(s.today())).
			Order(ent.Asc(stockbatch.FieldExpiryDate), ent.Asc(stockbatch.FieldID)).
			All(ctx)
		if err != nil {
			return nil, err
		}
		available := 0
		for _, b := range usable {
			available += b.QuantityOnHand
		}
		if available < qty {
			return nil, apperr.Conflictf("%s has %d usable units of %s (unexpired); dispense at most that many", loc.Name, available, d.GenericName)
		}
		before, err := onHand(ctx, tx, loc.ID, d.ID)
		if err != nil {
			return nil, err
		}
		status := dispensing.StatusDISPENSED
		if d.ControlledSchedule != nil {
			status = dispensing.StatusAWAITING_WITNESS
		}
		now := s.now()
		disp, err := tx.Dispensing.Create().SetPatientID(o.PatientID).SetOrderID(o.ID).SetDrugID(d.ID).
			SetLocationID(loc.ID).SetNillableEncounterID(o.EncounterID).SetQuantity(qty).SetStatus(status).
			SetDispensedByID(actor.ID).SetDispensedAt(now).Save(ctx)
		if err != nil {
			return nil, err
		}
		actorID := actor.ID
		left := qty
		for _, b := range usable {
			if left == 0 {
				break
			}
			n := min(left, b.QuantityOnHand)
			if _, err := s.move(ctx, tx, b, stockmovement.KindDISPENSE, -n, ledgerNote{actor: &actorID, dispensing: &disp.ID}); err != nil {
				return nil, err
			}
			if err := tx.DispensingLine.Create().SetPatientID(o.PatientID).SetDispensingID(disp.ID).SetBatchID(b.ID).
				SetQuantity(n).SetUnitCost(b.UnitCost).Exec(ctx); err != nil {
				return nil, err
			}
			left -= n
		}
		if err := s.checkLow(ctx, tx, loc.ID, d, before, before-qty); err != nil {
			return nil, err
		}
		if status == dispensing.StatusDISPENSED {
			if err := s.released(ctx, tx, disp, o); err != nil {
				return nil, err
			}
		}
		return disp, nil
	})
}

// Witness confirms a controlled drug's dispensing as a second person: a
// pharmacist or nurse other than who dispensed it, signed in as themselves.
func (s *Service) Witness(ctx context.Context, id string) (*ent.Dispensing, error) {
	if err := input.ID("id", id, input.Dispensing); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Dispensing, error) {
		witness, err := auth.ActingStaff(ctx, tx.Staff, "witness a controlled drug", witnesses...)
		if err != nil {
			return nil, err
		}
		disp, err := awaiting(ctx, tx, id, "witnessed")
		if err != nil {
			return nil, err
		}
		if disp.DispensedByID == witness.ID {
			return nil, apperr.Denied("the witness must be a second person, not who dispensed it")
		}
		disp, err = tx.Dispensing.UpdateOne(disp).Where(dispensing.StatusEQ(dispensing.StatusAWAITING_WITNESS)).
			SetStatus(dispensing.StatusDISPENSED).SetWitnessedByID(witness.ID).SetWitnessedAt(s.now()).Save(ctx)
		if err != nil {
			return nil, changedMeanwhile(err)
		}
		o, err := tx.MedicationOrder.Get(ctx, disp.OrderID)
		if err != nil {
			return nil, err
		}
		// The prescriber may have stopped or replaced the order while the
		// units waited: releasing them now would hand out a drug no current
		// order asks for (and, after a revision, twice).
		if o.Status != medicationorder.StatusACTIVE {
			return nil, apperr.Conflictf("the order is %s now; cancel this dispensing to put its units back", o.Status)
		}
		return disp, s.released(ctx, tx, disp, o)
	})
}

// Cancel ends a dispensing still AWAITING_WITNESS, because the witness
// refused it or the dispenser withdrew it: its units go back to their
// batches (RETURN rows) and the order has them left again.
func (s *Service) Cancel(ctx context.Context, id, reason string) (*ent.Dispensing, error) {
	var c input.Checker
	c.ID("id", id, input.Dispensing)
	reason = c.Text("reason", reason, MaxReasonLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Dispensing, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "cancel a dispensing", cancellers...)
		if err != nil {
			return nil, err
		}
		disp, err := awaiting(ctx, tx, id, "cancelled")
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, stockKey(disp.LocationID, disp.DrugID)); err != nil {
			return nil, err
		}
		lines, err := tx.DispensingLine.Query().Where(dispensingline.DispensingID(disp.ID)).
			Order(ent.Asc(dispensingline.FieldID)).All(ctx)
		if err != nil {
			return nil, err
		}
		actorID := actor.ID
		for _, l := range lines {
			if _, err := s.putBack(ctx, tx, l, l.Quantity, ledgerNote{actor: &actorID, reason: &reason, dispensing: &disp.ID}); err != nil {
				return nil, err
			}
		}
		disp, err = tx.Dispensing.UpdateOne(disp).Where(dispensing.StatusEQ(dispensing.StatusAWAITING_WITNESS)).
			SetStatus(dispensing.StatusCANCELLED).SetCancelReason(reason).SetReturnedQuantity(disp.Quantity).Save(ctx)
		return disp, changedMeanwhile(err)
	})
}

// Return puts units of a DISPENSED dispensing the patient did not use back
// on the shelf, each to the batch it came from (RETURN rows), and
// announces the return for billing to credit.
func (s *Service) Return(ctx context.Context, id string, quantity int, reason *string) (*ent.Dispensing, error) {
	var c input.Checker
	c.ID("id", id, input.Dispensing)
	if c.Err() == nil && (quantity < 1 || quantity > MaxQuantity) {
		c.Fail(apperr.BadInput("quantity", "must be from 1 to %d", MaxQuantity))
	}
	reason = c.OptionalText("reason", reason, MaxReasonLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Dispensing, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "take back dispensed medication", dispensers...)
		if err != nil {
			return nil, err
		}
		disp, err := store.GetLocked(ctx, tx, tx.Dispensing.Get, id, dispensingPatient, "dispensing not found")
		if err != nil {
			return nil, err
		}
		if disp.Status != dispensing.StatusDISPENSED {
			return nil, apperr.Conflictf("the dispensing is %s; only a DISPENSED one is returned", disp.Status)
		}
		d, err := tx.Drug.Get(ctx, disp.DrugID)
		if err != nil {
			return nil, err
		}
		if err := controlledByPharmacist(actor, d, "take back"); err != nil {
			return nil, err
		}
		if left := disp.Quantity - disp.ReturnedQuantity; quantity > left {
			return nil, apperr.BadInput("quantity", "is more than the %d units dispensed and not yet returned", left)
		}
		if err := s.store.Lock(ctx, tx, stockKey(disp.LocationID, disp.DrugID)); err != nil {
			return nil, err
		}
		// The longest-dated lot goes back first: it is the one still worth
		// keeping on the shelf.
		lines, err := tx.DispensingLine.Query().Where(dispensingline.DispensingID(disp.ID)).
			Order(ent.Desc(dispensingline.FieldID)).All(ctx)
		if err != nil {
			return nil, err
		}
		actorID := actor.ID
		ev := DispensingEvent{DispensingID: disp.ID, OrderID: disp.OrderID, DrugID: disp.DrugID, PatientID: disp.PatientID,
			LocationID: disp.LocationID, Quantity: quantity}
		if disp.EncounterID != nil {
			ev.EncounterID = *disp.EncounterID
		}
		left := quantity
		for _, l := range lines {
			n := min(left, l.Quantity-l.ReturnedQuantity)
			if n <= 0 {
				continue
			}
			if _, err := s.putBack(ctx, tx, l, n, ledgerNote{actor: &actorID, reason: reason, dispensing: &disp.ID}); err != nil {
				return nil, err
			}
			ev.Lines = append(ev.Lines, DispensingEventLine{BatchID: l.BatchID, Quantity: n, UnitCost: l.UnitCost})
			ev.TotalCost += int64(n) * l.UnitCost
			left -= n
		}
		disp, err = tx.Dispensing.UpdateOne(disp).
			Where(dispensing.StatusEQ(dispensing.StatusDISPENSED), dispensing.ReturnedQuantity(disp.ReturnedQuantity)).
			AddReturnedQuantity(quantity).Save(ctx)
		if err != nil {
			return nil, changedMeanwhile(err)
		}
		return disp, events.Record(ctx, tx, DispensingTopic, Returned, ev)
	})
}

// putBack returns n units of a dispensing line to its batch.
func (s *Service) putBack(ctx context.Context, tx *ent.Tx, l *ent.DispensingLine, n int, note ledgerNote) (*ent.StockBatch, error) {
	b, err := tx.StockBatch.Get(ctx, l.BatchID)
	if err != nil {
		return nil, err
	}
	if err := tx.DispensingLine.UpdateOne(l).AddReturnedQuantity(n).Exec(ctx); err != nil {
		return nil, err
	}
	return s.move(ctx, tx, b, stockmovement.KindRETURN, n, note)
}

// released announces a dispensing that left the pharmacy and completes its
// order once the order's whole quantity is out.
func (s *Service) released(ctx context.Context, tx *ent.Tx, disp *ent.Dispensing, o *ent.MedicationOrder) error {
	lines, err := tx.DispensingLine.Query().Where(dispensingline.DispensingID(disp.ID)).
		Order(ent.Asc(dispensingline.FieldID)).All(ctx)
	if err != nil {
		return err
	}
	ev := DispensingEvent{DispensingID: disp.ID, OrderID: disp.OrderID, DrugID: disp.DrugID, PatientID: disp.PatientID,
		LocationID: disp.LocationID, Quantity: disp.Quantity}
	if disp.EncounterID != nil {
		ev.EncounterID = *disp.EncounterID
	}
	for _, l := range lines {
		ev.Lines = append(ev.Lines, DispensingEventLine{BatchID: l.BatchID, Quantity: l.Quantity, UnitCost: l.UnitCost})
		ev.TotalCost += int64(l.Quantity) * l.UnitCost
	}
	if err := events.Record(ctx, tx, DispensingTopic, Dispensed, ev); err != nil {
		return err
	}
	if o.Status != medicationorder.StatusACTIVE {
		return nil // stopped while a controlled dispensing waited: what was issued stands
	}
	out, err := dispensed(ctx, tx, o.ID, true)
	if err != nil || out < o.Quantity {
		return err
	}
	err = tx.MedicationOrder.UpdateOneID(o.ID).Where(medicationorder.StatusEQ(medicationorder.StatusACTIVE)).
		SetStatus(medicationorder.StatusCOMPLETED).SetEndedAt(s.now()).Exec(ctx)
	if ent.IsNotFound(err) {
		return nil
	}
	return err
}

// awaiting loads a dispensing under its patient's lock and refuses it
// unless AWAITING_WITNESS.
func awaiting(ctx context.Context, tx *ent.Tx, id, pastTense string) (*ent.Dispensing, error) {
	disp, err := store.GetLocked(ctx, tx, tx.Dispensing.Get, id, dispensingPatient, "dispensing not found")
	if err != nil {
		return nil, err
	}
	if disp.Status != dispensing.StatusAWAITING_WITNESS {
		return nil, apperr.Conflictf("the dispensing is %s; only one AWAITING_WITNESS can be %s", disp.Status, pastTense)
	}
	return disp, nil
}

// pharmacy is the location a dispensing takes stock from.
func (s *Service) pharmacy(ctx context.Context, tx *ent.Tx, id *string) (*ent.StockLocation, error) {
	if id != nil {
		loc, err := activeLocation(ctx, tx, "input.locationId", *id)
		if err != nil {
			return nil, err
		}
		if loc.Kind != stocklocation.KindPHARMACY {
			return nil, apperr.BadInput("input.locationId", "is a %s; medication is dispensed from a PHARMACY", loc.Kind)
		}
		return loc, nil
	}
	locs, err := tx.StockLocation.Query().
		Where(stocklocation.KindEQ(stocklocation.KindPHARMACY), stocklocation.Active(true)).Limit(2).All(ctx)
	if err != nil {
		return nil, err
	}
	switch len(locs) {
	case 0:
		return nil, apperr.BadInput("input.locationId", "is required: the hospital has no active pharmacy location")
	case 1:
	default:
		return nil, apperr.BadInput("input.locationId", "is required: the hospital has more than one pharmacy; name the one dispensing")
	}
	return locs[0], nil
}

// committed is the units of an order issued or waiting for a witness, net
// of returns: what the order no longer has left to dispense.
func committed(ctx context.Context, tx *ent.Tx, orderID string) (int, error) {
	return dispensed(ctx, tx, orderID, false)
}

// dispensed sums an order's dispensings net of returns: DISPENSED ones
// only, or (witnessedOnly false) those awaiting a witness too.
func dispensed(ctx context.Context, tx *ent.Tx, orderID string, witnessedOnly bool) (int, error) {
	statuses := []dispensing.Status{dispensing.StatusDISPENSED}
	if !witnessedOnly {
		statuses = append(statuses, dispensing.StatusAWAITING_WITNESS)
	}
	rows, err := tx.Dispensing.Query().Where(dispensing.OrderID(orderID), dispensing.StatusIn(statuses...)).All(ctx)
	total := 0
	for _, d := range rows {
		total += d.Quantity - d.ReturnedQuantity
	}
	return total, err
}

// changedMeanwhile turns a conditional update that matched no row into a
// CONFLICT.
func changedMeanwhile(err error) error {
	if ent.IsNotFound(err) {
		return apperr.Conflictf("the dispensing changed meanwhile; reload it")
	}
	return err
}
