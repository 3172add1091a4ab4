package charges

import (
	"errors"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/store"
)

// Topic is where this package announces what it did, for the ledger and
// the insurance engine to follow.
const Topic = "billing"

// Event types on Topic.
const (
	ChargeCaptured = "CHARGE_CAPTURED"
	ChargeReversed = "CHARGE_REVERSED"
)

// ChargeEvent is the payload of the events on Topic about a charge: IDs
// and amounts, no clinical content.
type ChargeEvent struct {
	ChargeID  string `json:"chargeId"`
	PatientID string `json:"patientId"`
	Category  string `json:"category"`
	Code      string `json:"code"`
	// Amount is in minor units; negative for a return, and for a
	// reversal the amount taken back.
	Amount int64 `json:"amount"`
}

// DefaultMarkupPercent is what a drug without a price of its own is charged
// above its cost.
const DefaultMarkupPercent = 25

// Service holds the price list and the charges.
type Service struct {
	store *store.Store
	loc   *time.Location
	now   func() time.Time
	// markup is the percentage above cost a drug is priced at when the
	// price list has no row for it.
	markup int64
	// taxBP is the tax rate of new invoices in basis points; 0: none.
	taxBP int
	// books is the general ledger every charge, invoice, payment, refund
	// and adjustment posts to, in the transaction that makes it.
	books *ledger.Service
}

// NewService returns the billing service; loc is the hospital's time zone,
// which decides the calendar day of a bed-day.
func NewService(st *store.Store, loc *time.Location, markupPercent int, books *ledger.Service) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, loc: loc, now: time.Now, markup: int64(markupPercent), books: books}
}

// withMarkup prices cost plus the markup, rounding half a minor unit up.
func withMarkup(cost, percent int64) int64 { return (cost*(100+percent) + 50) / 100 }

func changedMeanwhile(err error) error {
	if ent.IsNotFound(err) {
		return apperr.Conflictf("the charge changed meanwhile; reload it")
	}
	return err
}

var errNoPrice = errors.New("charges: no price")
