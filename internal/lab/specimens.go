package lab

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// CollectLabSpecimenInput is the input of collectLabSpecimen.
type CollectLabSpecimenInput struct {
	ItemIDs     []string
	CollectedAt *time.Time
}

// RejectLabSpecimenInput is the input of rejectLabSpecimen.
type RejectLabSpecimenInput struct {
	Reason labspecimen.RejectionReason
	Note   *string
}

// collectedAtSlack tolerates clocks of handheld devices a little ahead.
const collectedAtSlack = 5 * time.Minute

// Collect records one specimen taken for items of one order and moves them
// to COLLECTED. A nurse, doctor or lab technician collects.
func (s *Service) Collect(ctx context.Context, in CollectLabSpecimenInput) (*ent.LabSpecimen, error) {
	var c input.Checker
	switch {
	case len(in.ItemIDs) == 0:
		c.Fail(apperr.BadInput("input.itemIds", "name at least one item"))
	case len(in.ItemIDs) > MaxTestsPerOrder:
		c.Fail(apperr.BadInput("input.itemIds", "name at most %d items", MaxTestsPerOrder))
	}
	seen := map[string]bool{}
	for i, id := range in.ItemIDs {
		field := fmt.Sprintf("input.itemIds.%d", i)
		switch {
		case !input.LabOrderItem.Valid(id):
			c.ID(field, id, input.LabOrderItem)
		case seen[id]:
			c.Fail(apperr.BadInput(field, "is listed twice"))
		}
		seen[id] = true
	}
	now := s.now()
	collectedAt := now
	if in.CollectedAt != nil {
		collectedAt = input.Stored(*in.CollectedAt)
		if collectedAt.After(now.Add(collectedAtSlack)) {
			c.Fail(apperr.BadInput("input.collectedAt", "cannot be in the future"))
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (out *ent.LabSpecimen, err error) {
		who, err := auth.ActingStaff(ctx, tx.Staff, "collect specimens", staff.KindNURSE, staff.KindDOCTOR, staff.KindLAB_TECHNICIAN)
		if err != nil {
			return nil, err
		}
		// The specimen will belong to the items' patient: hold the record
		// still, so a merge does not move the items from under it.
		if err := lockPatientOf(ctx, tx, in.ItemIDs[0]); err != nil {
			return nil, err
		}
		items, err := tx.LabOrderItem.Query().Where(laborderitem.IDIn(in.ItemIDs...)).WithTest().All(ctx)
		if err != nil {
			return nil, err
		}
		byID := map[string]*ent.LabOrderItem{}
		for _, it := range items {
			byID[it.ID] = it
		}
		first := byID[in.ItemIDs[0]]
		for i, id := range in.ItemIDs {
			it, ok := byID[id]
			field := fmt.Sprintf("input.itemIds.%d", i)
			switch {
			case !ok:
				return nil, apperr.BadInput(field, "no such lab order item")
			case it.OrderID != first.OrderID:
				return nil, apperr.BadInput(field, "belongs to another order; one specimen serves one order")
			case it.Edges.Test.SpecimenType != first.Edges.Test.SpecimenType:
				return nil, apperr.BadInput(field, "runs on %s, not %s; collect it in its own container",
					it.Edges.Test.SpecimenType, first.Edges.Test.SpecimenType)
			}
			if err := from(it.Status, "collected", laborderitem.StatusORDERED, laborderitem.StatusREJECTED); err != nil {
				return nil, err
			}
		}
		order, err := tx.LabOrder.Get(ctx, first.OrderID)
		if err != nil {
			return nil, err
		}
		if collectedAt.Before(order.OrderedAt.Add(-collectedAtSlack)) {
			return nil, apperr.BadInput("input.collectedAt", "is before the order was placed")
		}
		accession, err := newAccession(ctx, tx, collectedAt.In(s.loc))
		if err != nil {
			return nil, err
		}
		out, err = tx.LabSpecimen.Create().
			SetPatientID(first.PatientID).
			SetOrderID(first.OrderID).
			SetAccessionNumber(accession).
			SetSpecimenType(labspecimen.SpecimenType(first.Edges.Test.SpecimenType)).
			SetCollectedByID(who.ID).
			SetCollectedAt(collectedAt).
			Save(ctx)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			err := tx.LabOrderItem.UpdateOne(it).
				Where(laborderitem.StatusEQ(it.Status)).
				SetStatus(laborderitem.StatusCOLLECTED).
				SetSpecimenID(out.ID).
				Exec(ctx)
			if err := changedMeanwhile(err); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
}

// Receive records that the lab has the specimen: it and its collected items
// become RECEIVED.
func (s *Service) Receive(ctx context.Context, id string) (*ent.LabSpecimen, error) {
	if err := input.ID("id", id, input.LabSpecimen); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (out *ent.LabSpecimen, err error) {
		who, err := auth.ActingStaff(ctx, tx.Staff, "receive specimens", staff.KindLAB_TECHNICIAN)
		if err != nil {
			return nil, err
		}
		sp, err := lockedSpecimen(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if sp.Status != labspecimen.StatusCOLLECTED {
			return nil, apperr.Conflictf("the specimen is %s; only a COLLECTED one can be received", sp.Status)
		}
		live, err := tx.LabOrderItem.Query().
			Where(laborderitem.SpecimenID(sp.ID), laborderitem.StatusEQ(laborderitem.StatusCOLLECTED)).
			Exist(ctx)
		if err != nil {
			return nil, err
		}
		if !live {
			return nil, apperr.Conflictf("every test on the specimen was cancelled; there is nothing to receive it for")
		}
		out, err = tx.LabSpecimen.UpdateOne(sp).
			Where(labspecimen.StatusEQ(labspecimen.StatusCOLLECTED)).
			SetStatus(labspecimen.StatusRECEIVED).
			SetReceivedByID(who.ID).
			SetReceivedAt(s.now()).
			Save(ctx)
		if err != nil {
			return out, changedMeanwhile(err)
		}
		return out, tx.LabOrderItem.Update().
			Where(laborderitem.SpecimenID(sp.ID), laborderitem.StatusEQ(laborderitem.StatusCOLLECTED)).
			SetStatus(laborderitem.StatusRECEIVED).
			Exec(ctx)
	})
}

// Reject records that the lab cannot use the specimen. Its items not yet
// verified become REJECTED, which lets them be collected again, and a
// result entered on it but not verified is DISCARDED: a mislabeled tube's
// value belongs to someone else and must never be released. Verified
// results are already out; they are corrected by amendment.
func (s *Service) Reject(ctx context.Context, id string, in RejectLabSpecimenInput) (*ent.LabSpecimen, error) {
	var c input.Checker
	c.ID("id", id, input.LabSpecimen)
	if err := labspecimen.RejectionReasonValidator(in.Reason); err != nil {
		c.Fail(apperr.BadInput("input.reason", "is not a rejection reason"))
	}
	note := c.OptionalText("input.note", in.Note, MaxReason)
	if in.Reason == labspecimen.RejectionReasonOTHER && note == nil {
		c.Fail(apperr.BadInput("input.note", "is required when the reason is OTHER"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (out *ent.LabSpecimen, err error) {
		who, err := auth.ActingStaff(ctx, tx.Staff, "reject specimens", staff.KindLAB_TECHNICIAN)
		if err != nil {
			return nil, err
		}
		sp, err := lockedSpecimen(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if sp.Status == labspecimen.StatusREJECTED {
			return nil, apperr.Conflictf("the specimen is already REJECTED")
		}
		open := laborderitem.StatusIn(laborderitem.StatusCOLLECTED, laborderitem.StatusRECEIVED, laborderitem.StatusRESULTED)
		pending, err := tx.LabOrderItem.Query().Where(laborderitem.SpecimenID(sp.ID), open).Count(ctx)
		if err != nil {
			return nil, err
		}
		if pending == 0 {
			return nil, apperr.Conflictf("every test on the specimen is verified or cancelled; correct a result by amending it")
		}
		out, err = tx.LabSpecimen.UpdateOne(sp).
			Where(labspecimen.StatusEQ(sp.Status)).
			SetStatus(labspecimen.StatusREJECTED).
			SetRejectionReason(in.Reason).
			SetNillableRejectionNote(note).
			SetRejectedByID(who.ID).
			SetRejectedAt(s.now()).
			Save(ctx)
		if err != nil {
			return out, changedMeanwhile(err)
		}
		// Items first: an entry racing this waits on their rows and then
		// finds the item REJECTED; one that committed first is caught here
		// and its result discarded below.
		rejected, err := tx.LabOrderItem.Query().Where(laborderitem.SpecimenID(sp.ID), open).IDs(ctx)
		if err != nil {
			return nil, err
		}
		if err := tx.LabOrderItem.Update().
			Where(laborderitem.IDIn(rejected...), open).
			SetStatus(laborderitem.StatusREJECTED).
			Exec(ctx); err != nil {
			return nil, err
		}
		return out, tx.LabResult.Update().
			Where(labresult.ItemIDIn(rejected...), labresult.StatusEQ(labresult.StatusENTERED)).
			SetStatus(labresult.StatusDISCARDED).
			Exec(ctx)
	})
}

// SpecimenByAccession finds a specimen by the number on its label.
func (s *Service) SpecimenByAccession(ctx context.Context, client *ent.Client, accession string) (*ent.LabSpecimen, error) {
	// Typed by hand from a label, letters Crockford's alphabet leaves out
	// are read as the digits they look like.
	accession = strings.NewReplacer("O", "0", "I", "1", "L", "1").Replace(strings.ToUpper(strings.TrimSpace(accession)))
	switch {
	case accession == "":
		return nil, apperr.BadInput("accessionNumber", "is required")
	case len(accession) > 20:
		return nil, apperr.BadInput("accessionNumber", "is not an accession number")
	}
	sp, err := client.LabSpecimen.Query().Where(labspecimen.AccessionNumber(accession)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return sp, err
}

// lockPatientOf locks the patient of the order item itemID; an item that
// does not exist is left to the caller to report, naming its field.
func lockPatientOf(ctx context.Context, tx *ent.Tx, itemID string) error {
	item, err := tx.LabOrderItem.Get(ctx, itemID)
	if ent.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	return store.LockPatient(ctx, tx, item.PatientID)
}

// accessionAlphabet is Crockford's base 32: no I, L, O or U, so a number
// read off a label or typed by hand is not misread.
const accessionAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newAccession returns an unused accession number: the collection date in
// the hospital's time zone (YYMMDD, so labels sort and read by day) and six random characters,
// about a billion per day. The uniqueness constraint is the guarantee; the
// lookup only makes a clash a retry rather than an error.
func newAccession(ctx context.Context, tx *ent.Tx, at time.Time) (string, error) {
	for range 5 {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		var sb strings.Builder
		sb.WriteString(at.Format("060102"))
		for _, x := range b {
			sb.WriteByte(accessionAlphabet[int(x)%len(accessionAlphabet)])
		}
		n := sb.String()
		taken, err := tx.LabSpecimen.Query().Where(labspecimen.AccessionNumber(n)).Exist(ctx)
		if err != nil {
			return "", err
		}
		if !taken {
			return n, nil
		}
	}
	return "", fmt.Errorf("no free accession number after 5 tries")
}
