package pharmacy

import (
	"context"
	"sort"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/dispensingline"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/stockbatch"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
)

// StockLevel is one item's stock at one location.
type StockLevel struct {
	Location *ent.StockLocation
	Drug     *ent.Drug
	// OnHand counts every unit on the shelf; Usable leaves out expired
	// batches, which are never dispensed.
	OnHand, Usable int
	// Value is OnHand at each batch's unit cost, in minor units.
	Value        int64
	ReorderLevel int
	Low          bool
}

// StockValuation is what the stock at one location is worth at cost.
type StockValuation struct {
	Location *ent.StockLocation
	Units    int
	Value    int64
}

// RecallEntry is one patient's receipt of a recalled lot.
type RecallEntry struct {
	Patient    *ent.Patient
	Dispensing *ent.Dispensing
	Batch      *ent.StockBatch
	Drug       *ent.Drug
	// Quantity is what the patient kept: dispensed from the lot less
	// what came back.
	Quantity    int
	DispensedAt time.Time
}

// Levels is the stock of every item that has had a batch at a location
// (or at every location), by location code then item code.
func (s *Service) Levels(ctx context.Context, client *ent.Client, locationID *string) ([]*StockLevel, error) {
	if err := optionalID("locationId", locationID, input.StockLocation); err != nil {
		return nil, err
	}
	return s.levels(ctx, client, locationID)
}

// Low is the levels below their item's reorder level.
func (s *Service) Low(ctx context.Context, client *ent.Client, locationID *string) ([]*StockLevel, error) {
	all, err := s.Levels(ctx, client, locationID)
	if err != nil {
		return nil, err
	}
	var low []*StockLevel
	for _, l := range all {
		if l.Low {
			low = append(low, l)
		}
	}
	return low, nil
}

func (s *Service) levels(ctx context.Context, client *ent.Client, locationID *string) ([]*StockLevel, error) {
	q := client.StockBatch.Query().WithDrug().WithLocation()
	if locationID != nil {
		q.Where(stockbatch.LocationID(*locationID))
	}
	batches, err := q.All(ctx)
	if err != nil {
		return nil, err
	}
	today := s.today()
	byKey := map[[2]string]*StockLevel{}
	var out []*StockLevel
	for _, b := range batches {
		k := [2]string{b.LocationID, b.DrugID}
		l := byKey[k]
		if l == nil {
			l = &StockLevel{Location: b.Edges.Location, Drug: b.Edges.Drug, ReorderLevel: b.Edges.Drug.ReorderLevel}
			byKey[k] = l
			out = append(out, l)
		}
		l.OnHand += b.QuantityOnHand
		if !b.ExpiryDate.Before(today) {
			l.Usable += b.QuantityOnHand
		}
		l.Value += int64(b.QuantityOnHand) * b.UnitCost
	}
	for _, l := range out {
		l.Low = l.OnHand < l.ReorderLevel
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Location.Code != out[j].Location.Code {
			return out[i].Location.Code < out[j].Location.Code
		}
		return out[i].Drug.Code < out[j].Drug.Code
	})
	return out, nil
}

// Expiring is the batches with stock that expire within withinDays of
// today, or have expired, soonest first.
func (s *Service) Expiring(ctx context.Context, client *ent.Client, withinDays int, locationID *string) ([]*ent.StockBatch, error) {
	if withinDays < 0 || withinDays > MaxWithinDays {
		return nil, apperr.BadInput("withinDays", "must be from 0 to %d", MaxWithinDays)
	}
	if err := optionalID("locationId", locationID, input.StockLocation); err != nil {
		return nil, err
	}
	q := client.StockBatch.Query().Where(stockbatch.QuantityOnHandGT(0),
		stockbatch.ExpiryDateLTE(s.today().AddDate(0, 0, withinDays)))
	if locationID != nil {
		q.Where(stockbatch.LocationID(*locationID))
	}
	return q.Order(ent.Asc(stockbatch.FieldExpiryDate), ent.Asc(stockbatch.FieldID)).All(ctx)
}

// Valuation is the stock of each location that holds any, at cost.
func (s *Service) Valuation(ctx context.Context, client *ent.Client) ([]*StockValuation, error) {
	levels, err := s.levels(ctx, client, nil)
	if err != nil {
		return nil, err
	}
	var out []*StockValuation
	for _, l := range levels {
		if n := len(out); n == 0 || out[n-1].Location.ID != l.Location.ID {
			out = append(out, &StockValuation{Location: l.Location})
		}
		v := out[len(out)-1]
		v.Units += l.OnHand
		v.Value += l.Value
	}
	return out, nil
}

// MaxQueue bounds pharmacyQueue.
const MaxQueue = 500

// Queue is the ACTIVE orders with units left to dispense, oldest first:
// the pharmacy's work list. Free-text orders are in it too, for the
// pharmacist to have them linked.
func (s *Service) Queue(ctx context.Context, client *ent.Client, first *int) ([]*ent.MedicationOrder, error) {
	limit := 100
	if first != nil {
		if *first < 1 || *first > MaxQueue {
			return nil, apperr.BadInput("first", "must be from 1 to %d", MaxQueue)
		}
		limit = *first
	}
	var out []*ent.MedicationOrder
	// Fully dispensed orders are COMPLETED, so few ACTIVE ones are skipped;
	// paging through them keeps one query per page whatever the backlog.
	for offset := 0; len(out) < limit; offset += MaxQueue {
		orders, err := client.MedicationOrder.Query().Where(medicationorder.StatusEQ(medicationorder.StatusACTIVE)).
			Order(ent.Asc(medicationorder.FieldCreatedAt), ent.Asc(medicationorder.FieldID)).
			Offset(offset).Limit(MaxQueue).All(ctx)
		if err != nil {
			return nil, err
		}
		taken, err := Committed(ctx, client, orders)
		if err != nil {
			return nil, err
		}
		for _, o := range orders {
			if o.Quantity > taken[o.ID] && len(out) < limit {
				out = append(out, o)
			}
		}
		if len(orders) < MaxQueue {
			break
		}
	}
	return out, nil
}

// Committed is, for each order, the units issued or awaiting a witness net
// of returns, as the viewer of ctx may see them.
func Committed(ctx context.Context, client *ent.Client, orders []*ent.MedicationOrder) (map[string]int, error) {
	ids := make([]string, len(orders))
	for i, o := range orders {
		ids[i] = o.ID
	}
	rows, err := client.Dispensing.Query().
		Where(dispensing.OrderIDIn(ids...), dispensing.StatusIn(dispensing.StatusDISPENSED, dispensing.StatusAWAITING_WITNESS)).
		All(ctx)
	out := map[string]int{}
	for _, d := range rows {
		out[d.OrderID] += d.Quantity - d.ReturnedQuantity
	}
	return out, err
}

// Recall finds every patient who received units of a lot, at any location,
// with how many they kept and when; the reads are audited as reads of
// those patients' records.
func (s *Service) Recall(ctx context.Context, client *ent.Client, lotNumber string) ([]*RecallEntry, error) {
	lot, err := input.Text("lotNumber", lotNumber, 40)
	if err != nil {
		return nil, err
	}
	lot = LotNumber(lot)
	batches, err := client.StockBatch.Query().Where(stockbatch.LotNumber(lot)).WithDrug().All(ctx)
	if err != nil || len(batches) == 0 {
		return nil, err
	}
	byID := map[string]*ent.StockBatch{}
	ids := make([]string, len(batches))
	for i, b := range batches {
		byID[b.ID] = b
		ids[i] = b.ID
	}
	lines, err := client.DispensingLine.Query().Where(dispensingline.BatchIDIn(ids...)).
		WithPatient().WithDispensing().Order(ent.Asc(dispensingline.FieldID)).All(ctx)
	if err != nil {
		return nil, err
	}
	var out []*RecallEntry
	for _, l := range lines {
		d := l.Edges.Dispensing
		kept := l.Quantity - l.ReturnedQuantity
		if d == nil || l.Edges.Patient == nil || d.Status == dispensing.StatusCANCELLED || kept <= 0 {
			continue
		}
		b := byID[l.BatchID]
		out = append(out, &RecallEntry{Patient: l.Edges.Patient, Dispensing: d, Batch: b, Drug: b.Edges.Drug,
			Quantity: kept, DispensedAt: d.DispensedAt})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].DispensedAt.Before(out[j].DispensedAt) })
	return out, nil
}
