package charges

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/tariff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/store"
)

// AddManualChargeInput is the input of addManualCharge: something billable
// no module records (a dressing, a certificate), priced by the list.
type AddManualChargeInput struct {
	PatientID   string
	TariffCode  string
	Quantity    int
	EncounterID *string
	ServiceAt   *time.Time
}

// AddManual charges a patient for a service of the price list.
func (s *Service) AddManual(ctx context.Context, in AddManualChargeInput) (*ent.Charge, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	code := c.Text("input.tariffCode", in.TariffCode, 40)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if in.Quantity < 1 || in.Quantity > 10000 {
		return nil, apperr.BadInput("input.quantity", "must be between 1 and 10000")
	}
	at := input.Stored(s.now())
	if in.ServiceAt != nil {
		if in.ServiceAt.After(at) {
			return nil, apperr.BadInput("input.serviceAt", "must not be in the future")
		}
		at = input.Stored(*in.ServiceAt)
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Charge, error) {
		clerk, err := auth.ActingStaff(ctx, tx.Staff, "add charges", clerks...)
		if err != nil {
			return nil, err
		}
		price, err := Price(ctx, tx.Tariff, code, "", at)
		if err == errNoPrice {
			return nil, apperr.BadInput("input.tariffCode", "no price on the list for %s at %s", code, at.Format(time.RFC3339))
		} else if err != nil {
			return nil, err
		}
		if in.EncounterID != nil {
			e, err := tx.Encounter.Get(ctx, *in.EncounterID)
			if ent.IsNotFound(err) || (err == nil && e.PatientID != in.PatientID) {
				return nil, apperr.BadInput("input.encounterId", "no such encounter of this patient")
			} else if err != nil {
				return nil, err
			}
		}
		nc := newCharge{patientID: in.PatientID, source: charge.SourceTypeMANUAL, sourceID: globalid.New("man"),
			category: tariff.Category(price.Category), price: price, quantity: in.Quantity, at: at, createdBy: &clerk.ID}
		if in.EncounterID != nil {
			nc.encounterID = *in.EncounterID
		}
		nc.lockField = "input.patientId"
		return s.insert(ctx, tx, nc)
	})
}

// Reverse cancels a charge with a reason. The row stays, REVERSED, so the
// bill can always be explained; a billed charge is corrected on the
// invoice (void and reissue), not here.
func (s *Service) Reverse(ctx context.Context, id, reason string) (*ent.Charge, error) {
	var c input.Checker
	c.ID("id", id, input.Charge)
	why := c.Text("reason", reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Charge, error) {
		clerk, err := auth.ActingStaff(ctx, tx.Staff, "reverse charges", clerks...)
		if err != nil {
			return nil, err
		}
		ch, err := store.GetLocked(ctx, tx, tx.Charge.Get, id, func(c *ent.Charge) string { return c.PatientID }, "charge not found")
		if err != nil {
			return nil, err
		}
		if ch.Status != charge.StatusACTIVE {
			return nil, apperr.Conflictf("the charge is %s already", ch.Status)
		}
		if ch.InvoiceID != nil {
			return nil, apperr.Conflictf("the charge is on an invoice; void the invoice first")
		}
		out, err := tx.Charge.UpdateOne(ch).Where(charge.StatusEQ(charge.StatusACTIVE), charge.InvoiceIDIsNil()).
			SetStatus(charge.StatusREVERSED).SetReversalReason(why).SetReversedByID(clerk.ID).
			SetReversedAt(input.Stored(s.now())).Save(ctx)
		if err != nil {
			return nil, changedMeanwhile(err)
		}
		if out.Amount != 0 {
			if _, err := s.books.ReverseSource(ctx, tx, ledger.Source{Type: "CHARGE", ID: out.ID}, "Charge reversed: "+why); err != nil {
				return nil, err
			}
		}
		return out, events.Record(ctx, tx, Topic, ChargeReversed, ChargeEvent{
			ChargeID: out.ID, PatientID: out.PatientID, Category: string(out.Category), Code: out.Code, Amount: out.Amount,
		})
	})
}
