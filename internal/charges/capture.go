package charges

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/bedassignment"
	"github.com/hmis-dev/hmis/ent/billingcursor"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/tariff"
	admissions "github.com/hmis-dev/hmis/internal/admission"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/lab"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/pharmacy"
	"github.com/hmis-dev/hmis/internal/store"
)

// Topics are the topics a Consumer reads, in the order it catches up on them.
var Topics = []string{ehr.EncountersTopic, lab.ResultsTopic, pharmacy.DispensingTopic, admissions.Topic}

// Apply captures the charges of one event and saves the topic's cursor, in
// one transaction. An event applied before (its charge exists) adds
// nothing, so Apply may see any event any number of times.
func (s *Service) Apply(ctx context.Context, ev events.Event) error {
	_, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (struct{}, error) {
		if err := s.capture(ctx, tx, ev); err != nil {
			return struct{}{}, fmt.Errorf("charges: event %s on %s: %w", ev.ID, ev.Topic, err)
		}
		return struct{}{}, saveCursor(ctx, tx, ev.Topic, ev.ID)
	})
	return err
}

func saveCursor(ctx context.Context, tx *ent.Tx, topic, id string) error {
	n, err := tx.BillingCursor.Update().Where(billingcursor.Topic(topic)).SetAfter(id).Save(ctx)
	if err != nil || n > 0 {
		return err
	}
	return tx.BillingCursor.Create().SetTopic(topic).SetAfter(id).Exec(ctx)
}

// Cursor returns the ID of the last event of topic applied, or "".
func (s *Service) Cursor(ctx context.Context, topic string) (string, error) {
	c, err := s.store.Client.BillingCursor.Query().Where(billingcursor.Topic(topic)).Only(ctx)
	if ent.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return c.After, nil
}

func (s *Service) capture(ctx context.Context, tx *ent.Tx, ev events.Event) error {
	switch {
	case ev.Topic == ehr.EncountersTopic && ev.Type == ehr.EncounterFinished:
		var p ehr.EncounterEvent
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return err
		}
		return s.chargeEncounter(ctx, tx, p)
	case ev.Topic == lab.ResultsTopic && ev.Type == string(lab.ResultVerified):
		var p lab.ResultPayload
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return err
		}
		return s.chargeLabItem(ctx, tx, p)
	case ev.Topic == pharmacy.DispensingTopic && ev.Type == pharmacy.Dispensed:
		var p pharmacy.DispensingEvent
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return err
		}
		return s.chargeDispensing(ctx, tx, p)
	case ev.Topic == pharmacy.DispensingTopic && ev.Type == pharmacy.Returned:
		var p pharmacy.DispensingEvent
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return err
		}
		return s.creditReturn(ctx, tx, ev.ID, p)
	case ev.Topic == admissions.Topic && ev.Type == string(admissions.Discharged):
		var p admissions.Change
		if err := json.Unmarshal(ev.Payload, &p); err != nil {
			return err
		}
		return s.catchUpBed(ctx, tx, p.BedID)
	}
	return nil // an event billing has nothing to charge for (an amendment, a bed cleaned)
}

// newCharge is a charge about to be captured, keyed by its source.
type newCharge struct {
	patientID   string
	source      charge.SourceType
	sourceID    string
	day         string
	encounterID string
	admissionID string
	// departmentID is whose revenue the charge is, when the source says.
	departmentID string
	category     tariff.Category
	price        *ent.Tariff
	// code, description and unitPrice are used when price is nil.
	code, description string
	unitPrice         int64
	quantity          int
	at                time.Time
	createdBy         *string
	// lockField names the patient in an error; "patientId" for captures.
	lockField string
}

// insert writes c unless its source already has a charge, under the
// patient's lock: the lock orders captures of one patient, so the lookup
// and the insert cannot race another capture of the same source, and a
// merge moves the charge with the rest of the record.
func (s *Service) insert(ctx context.Context, tx *ent.Tx, c newCharge) (*ent.Charge, error) {
	field := c.lockField
	if field == "" {
		field = "patientId"
		// A capture follows a merge: what was done for the retired
		// record is charged to the one that survived it. A merge between
		// this read and the lock fails the lock, and the retry follows it.
		for range 5 {
			p, err := tx.Patient.Get(ctx, c.patientID)
			if err != nil || p.Status != patient.StatusMERGED || p.MergedIntoID == nil {
				break
			}
			c.patientID = *p.MergedIntoID
		}
	}
	if _, err := patients.Lock(ctx, tx, field, c.patientID); err != nil {
		return nil, err
	}
	exists, err := tx.Charge.Query().Where(charge.SourceTypeEQ(c.source), charge.SourceID(c.sourceID), charge.Day(c.day)).Exist(ctx)
	if err != nil || exists {
		return nil, err
	}
	create := tx.Charge.Create().SetPatientID(c.patientID).SetSourceType(c.source).SetSourceID(c.sourceID).SetDay(c.day).
		SetCategory(charge.Category(c.category)).SetQuantity(c.quantity).SetServiceAt(input.Stored(c.at)).SetNillableCreatedByID(c.createdBy)
	if c.encounterID != "" {
		create.SetEncounterID(c.encounterID)
	}
	if c.admissionID != "" {
		create.SetAdmissionID(c.admissionID)
	}
	if c.departmentID != "" {
		create.SetDepartmentID(c.departmentID)
	}
	unit := c.unitPrice
	if c.price != nil {
		unit = c.price.Price
		create.SetTariffID(c.price.ID).SetCode(c.price.Code).SetDescription(c.price.Name)
	} else {
		create.SetCode(c.code).SetDescription(c.description)
	}
	out, err := create.SetUnitPrice(unit).SetAmount(int64(c.quantity) * unit).Save(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.accrue(ctx, tx, out); err != nil {
		return nil, err
	}
	return out, events.Record(ctx, tx, Topic, ChargeCaptured, ChargeEvent{
		ChargeID: out.ID, PatientID: out.PatientID, Category: string(out.Category), Code: out.Code, Amount: out.Amount,
	})
}

// accrue posts a charge's revenue as an unbilled service, in the
// transaction that captures it; a line at zero (not on the price list yet)
// posts nothing.
func (s *Service) accrue(ctx context.Context, tx *ent.Tx, c *ent.Charge) error {
	if c.Amount == 0 {
		return nil
	}
	_, err := s.books.ChargeCaptured(ctx, tx, ledger.Charge{ID: c.ID, Date: c.ServiceAt, Category: ledgerCategory(c.Category),
		DepartmentID: deref(c.DepartmentID), Amount: c.Amount, Memo: c.Code + " " + c.Description})
	return err
}

// ledgerCategory maps a charge's category to the ledger's revenue
// categories: drugs and items are the pharmacy's revenue.
func ledgerCategory(c charge.Category) string {
	switch c {
	case charge.CategoryDRUG, charge.CategoryITEM:
		return "PHARMACY"
	}
	return string(c)
}

// lookup prices a module's row, nil when the list has no price for it.
func lookup(ctx context.Context, tx *ent.Tx, cat tariff.Category, ref string, at time.Time) (*ent.Tariff, error) {
	t, err := priceOf(ctx, tx.Tariff, cat, ref, "", at)
	if err == errNoPrice {
		return nil, nil
	}
	return t, err
}

func (s *Service) chargeEncounter(ctx context.Context, tx *ent.Tx, p ehr.EncounterEvent) error {
	e, err := tx.Encounter.Get(ctx, p.EncounterID)
	if err != nil {
		return err
	}
	at := s.now()
	if e.EndedAt != nil {
		at = *e.EndedAt
	}
	price, err := lookup(ctx, tx, tariff.CategoryCONSULTATION, p.DepartmentID, at)
	if err != nil {
		return err
	}
	// A department without a price on the list still gets its line, at
	// zero, so the clerk sees what to price instead of a silent gap.
	_, err = s.insert(ctx, tx, newCharge{patientID: e.PatientID, source: charge.SourceTypeENCOUNTER, sourceID: e.ID,
		encounterID: e.ID, departmentID: p.DepartmentID, category: tariff.CategoryCONSULTATION, price: price, code: "CONSULTATION",
		description: "Consultation (not on the price list)", quantity: 1, at: at})
	return err
}

func (s *Service) chargeLabItem(ctx context.Context, tx *ent.Tx, p lab.ResultPayload) error {
	item, err := tx.LabOrderItem.Get(ctx, p.ItemID)
	if err != nil {
		return err
	}
	order, err := tx.LabOrder.Get(ctx, item.OrderID)
	if err != nil {
		return err
	}
	test, err := tx.LabTest.Get(ctx, item.TestID)
	if err != nil {
		return err
	}
	at := s.now()
	if r, err := tx.LabResult.Get(ctx, p.ResultID); err == nil && r.VerifiedAt != nil {
		at = *r.VerifiedAt
	}
	price, err := lookup(ctx, tx, tariff.CategoryLAB, test.ID, at)
	if err != nil {
		return err
	}
	c := newCharge{patientID: item.PatientID, source: charge.SourceTypeLAB_ITEM, sourceID: item.ID,
		category: tariff.CategoryLAB, price: price, code: "LAB-" + test.Code, description: test.Name,
		unitPrice: test.Price, quantity: 1, at: at}
	if order.EncounterID != nil {
		c.encounterID = *order.EncounterID
	}
	_, err = s.insert(ctx, tx, c)
	return err
}

func (s *Service) chargeDispensing(ctx context.Context, tx *ent.Tx, p pharmacy.DispensingEvent) error {
	if p.Quantity <= 0 {
		return nil
	}
	d, err := tx.Dispensing.Get(ctx, p.DispensingID)
	if err != nil {
		return err
	}
	at := d.CreatedAt
	var price *ent.Tariff
	if p.DrugID != "" {
		if price, err = lookup(ctx, tx, tariff.CategoryDRUG, p.DrugID, at); err != nil {
			return err
		}
	}
	code, name := "DRUG", "Medication"
	if p.DrugID != "" {
		if dr, err := tx.Drug.Get(ctx, p.DrugID); err == nil {
			code, name = "DRUG-"+dr.Code, dr.GenericName
		}
	}
	// Without a price on the list a drug is charged at its average cost
	// per unit in this dispensing plus the markup.
	avg := (p.TotalCost + int64(p.Quantity)/2) / int64(p.Quantity)
	_, err = s.insert(ctx, tx, newCharge{patientID: d.PatientID, source: charge.SourceTypeDISPENSING, sourceID: d.ID,
		encounterID: p.EncounterID, category: tariff.CategoryDRUG, price: price, code: code, description: name,
		unitPrice: withMarkup(avg, s.markup), quantity: p.Quantity, at: at})
	return err
}

// creditReturn credits returned units at the unit price they were charged
// at. A dispensing may have several returns, so each is keyed by the ID of
// its event (in the day column), which the relay keeps stable.
func (s *Service) creditReturn(ctx context.Context, tx *ent.Tx, eventID string, p pharmacy.DispensingEvent) error {
	if p.Quantity <= 0 {
		return nil
	}
	orig, err := tx.Charge.Query().Where(charge.SourceTypeEQ(charge.SourceTypeDISPENSING), charge.SourceID(p.DispensingID)).Only(ctx)
	if ent.IsNotFound(err) {
		// The dispensing's own event comes first on the topic, so its
		// charge exists unless it was never charged; nothing to credit.
		return nil
	} else if err != nil {
		return err
	}
	_, err = s.insert(ctx, tx, newCharge{patientID: orig.PatientID, source: charge.SourceTypeDISPENSING_RETURN,
		sourceID: p.DispensingID, day: eventID, encounterID: p.EncounterID, category: tariff.CategoryDRUG,
		code: orig.Code, description: "Returned: " + orig.Description, unitPrice: orig.UnitPrice,
		quantity: -p.Quantity, at: s.now()})
	return err
}

// catchUpBed charges the bed-days of the stay that ended in a bed with
// the event: the discharge event carries the bed, not the stay. One
// transaction locks one patient, so only the newest stay discharged from
// the bed is caught up (a later one has its own event); the daily sweep
// covers any other.
func (s *Service) catchUpBed(ctx context.Context, tx *ent.Tx, bedID string) error {
	a, err := tx.Admission.Query().
		Where(admission.BedID(bedID), admission.StatusEQ(admission.StatusDISCHARGED)).
		Order(admission.ByDischargedAt(entsql.OrderDesc())).First(ctx)
	if ent.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	return s.chargeStay(ctx, tx, a)
}

// bedDays lists the calendar days a stay is charged for, by the rule in
// the package documentation; a running stay is charged up to yesterday and
// for its day of admission.
func (s *Service) bedDays(a *ent.Admission) []time.Time {
	first := input.Date(a.AdmittedAt.In(s.loc))
	var end time.Time // exclusive
	if a.DischargedAt != nil {
		end = input.Date(a.DischargedAt.In(s.loc))
		if !end.After(first) {
			end = first.AddDate(0, 0, 1)
		}
	} else {
		end = input.Today(s.now(), s.loc)
		if !end.After(first) {
			end = first.AddDate(0, 0, 1)
		}
	}
	var days []time.Time
	for d := first; d.Before(end); d = d.AddDate(0, 0, 1) {
		days = append(days, d)
	}
	return days
}

// chargeStay charges every bed-day of a stay not charged yet.
func (s *Service) chargeStay(ctx context.Context, tx *ent.Tx, a *ent.Admission) error {
	assignments, err := tx.BedAssignment.Query().Where(bedassignment.AdmissionID(a.ID)).
		Order(bedassignment.ByFromAt()).WithBed().All(ctx)
	if err != nil {
		return err
	}
	for _, day := range s.bedDays(a) {
		// The end of the day, as a moment in the hospital's zone.
		endOfDay := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, s.loc).AddDate(0, 0, 1)
		wardID := ""
		for _, as := range assignments {
			if as.FromAt.Before(endOfDay) && as.Edges.Bed != nil {
				wardID = as.Edges.Bed.WardID
			}
		}
		if wardID == "" {
			b, err := tx.Bed.Get(ctx, a.BedID)
			if err != nil {
				return err
			}
			wardID = b.WardID
		}
		price, err := lookup(ctx, tx, tariff.CategoryBED_DAY, wardID, endOfDay.Add(-time.Second))
		if err != nil {
			return err
		}
		ward, err := tx.Ward.Get(ctx, wardID)
		if err != nil {
			return err
		}
		if _, err := s.insert(ctx, tx, newCharge{patientID: a.PatientID, source: charge.SourceTypeBED_DAY, sourceID: a.ID,
			day: day.Format(time.DateOnly), admissionID: a.ID, departmentID: ward.DepartmentID, category: tariff.CategoryBED_DAY, price: price,
			code: "BED-DAY", description: "Bed-day (not on the price list)", quantity: 1, at: endOfDay.Add(-time.Second)}); err != nil {
			return err
		}
	}
	return nil
}
