package pharmacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/hook"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Topics of the events the pharmacy publishes.
const (
	// DispensingTopic carries DispensingEvent: what billing charges for.
	DispensingTopic = "pharmacy.dispensing"
	// StockLowTopic and ExpiringTopic carry StockAlert.
	StockLowTopic = "pharmacy.stock_low"
	ExpiringTopic = "pharmacy.batch_expiring"
)

// Event types on DispensingTopic.
const (
	// Dispensed: the quantity left the pharmacy for the patient (for a
	// controlled drug, once witnessed).
	Dispensed = "DISPENSED"
	// Returned: unused units came back to stock; billing credits them.
	Returned = "RETURNED"
)

// Event types of the stock alerts; the values are those of the GraphQL enum
// StockAlertType.
const (
	AlertLow      = "LOW"
	AlertExpiring = "EXPIRING"
)

// DispensingEvent is the payload of an event on DispensingTopic, the
// interface between the pharmacy and billing (issue #13). It carries IDs
// and numbers only, no patient data.
//
// A consumer must be idempotent by the event's ID (events.Event.ID), not by
// DispensingID: the relay publishes each outbox row exactly once under one
// ID, but a consumer that crashes after charging and before saving its
// cursor sees the same event again after resubscribing with its old
// `after`, so it keeps the IDs it has applied (or a unique key on them)
// and skips repeats. One dispensing has one DISPENSED event and may have
// several RETURNED events, each for the quantity of that return only.
type DispensingEvent struct {
	DispensingID string `json:"dispensingId"`
	OrderID      string `json:"orderId"`
	DrugID       string `json:"drugId"`
	PatientID    string `json:"patientId"`
	EncounterID  string `json:"encounterId,omitempty"`
	LocationID   string `json:"locationId"`
	// Quantity is in units of issue: dispensed, or returned by this event.
	Quantity int `json:"quantity"`
	// Lines say which batches the quantity came from (or went back to)
	// at which unit cost, since one dispensing may span lots bought at
	// different prices.
	Lines []DispensingEventLine `json:"lines"`
	// TotalCost is the sum of the lines' quantity × unit cost, in minor
	// units.
	TotalCost int64 `json:"totalCost"`
}

// DispensingEventLine is one batch's share of a DispensingEvent.
type DispensingEventLine struct {
	BatchID  string `json:"batchId"`
	Quantity int    `json:"quantity"`
	UnitCost int64  `json:"unitCost"`
}

// StockAlert is the payload of StockLowTopic and ExpiringTopic: a drug at a
// location fell below its reorder level, or a batch is about to expire.
type StockAlert struct {
	LocationID   string `json:"locationId"`
	DrugID       string `json:"drugId"`
	BatchID      string `json:"batchId,omitempty"`
	OnHand       int    `json:"onHand"`
	ReorderLevel int    `json:"reorderLevel"`
}

// DefaultExpiryWarning is how long before its expiry date a batch is
// announced on batchExpiring: three months leaves time to use it up, move
// it to where it is used, or return it to the supplier.
const DefaultExpiryWarning = 90 * 24 * time.Hour

// Limits on what a stock input may say.
const (
	MaxQuantity = 1_000_000
	// MaxOnHand bounds one batch, so that its value (units × MaxUnitCost)
	// and a location's total stay far inside int64 minor units.
	MaxOnHand       = 10_000_000
	MaxUnitCost     = 100_000_000_00 // a hundred million in major units
	MaxReasonLength = 500
	MaxWithinDays   = 3650
)

// Service runs the pharmacy's stock and dispensing.
type Service struct {
	store *store.Store
	loc   *time.Location
	now   func() time.Time
	// ExpiryWarning is how far ahead batchExpiring looks.
	ExpiryWarning time.Duration
}

// NewService returns a Service on st. loc is the hospital's time zone,
// which decides what "today" is for expiry dates (nil: UTC).
func NewService(st *store.Store, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, loc: loc, now: func() time.Time { return input.Stored(time.Now()) },
		ExpiryWarning: DefaultExpiryWarning}
}

// today is the hospital's calendar date now, as midnight UTC (how Date
// fields are stored).
func (s *Service) today() time.Time { return input.Today(s.now(), s.loc) }

// ErrLedgerAppendOnly refuses an update or delete of a ledger row.
var ErrLedgerAppendOnly = errors.New("the stock ledger is append-only")

// ProtectLedger makes ent refuse every update and delete of a stock ledger
// row, so a correction is always a new ADJUSTMENT row and on-hand stays
// the ledger's sum.
func ProtectLedger(client *ent.Client) {
	client.StockMovement.Use(hook.On(func(ent.Mutator) ent.Mutator {
		return hook.StockMovementFunc(func(_ context.Context, m *ent.StockMovementMutation) (ent.Value, error) {
			return nil, fmt.Errorf("pharmacy: %s refused: %w", m.Op(), ErrLedgerAppendOnly)
		})
	}, ent.OpUpdate|ent.OpUpdateOne|ent.OpDelete|ent.OpDeleteOne))
}

// stockKey is the lock of one item's stock at one location: every writer of
// its batches holds it, so a check of what is on the shelf and the write
// that follows see the same quantity. The conditional update in move is
// the second line of defence.
func stockKey(locationID, drugID string) string { return "stock:" + locationID + ":" + drugID }
