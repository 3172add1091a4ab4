// Package lab runs the laboratory: orders with one item per test,
// specimens with accession numbers, results flagged against reference
// ranges, two-person verification, amendments that keep the original, and
// critical values that a clinician must acknowledge. Released results and
// critical values are published through the outbox (topics ResultsTopic
// and CriticalTopic).
package lab

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Topics of the events the lab publishes.
const (
	ResultsTopic  = "lab.results"
	CriticalTopic = "lab.critical"
)

// LabResultEventType says why a result was published on ResultsTopic; the
// values are those of the GraphQL enum LabResultEventType.
type LabResultEventType string

const (
	ResultVerified LabResultEventType = "VERIFIED"
	ResultAmended  LabResultEventType = "AMENDED"
)

// CriticalLabResultEventType says what happened to a critical value on
// CriticalTopic; the values are those of the GraphQL enum of that name.
type CriticalLabResultEventType string

const (
	// CriticalEventType: a critical value was released; someone must act.
	CriticalEventType CriticalLabResultEventType = "CRITICAL"
	// CriticalAcknowledged: a clinician took it on, so dashboards can
	// clear the alert without polling.
	CriticalAcknowledged CriticalLabResultEventType = "ACKNOWLEDGED"
)

// ResultPayload is what an event on either topic carries: IDs only, so no
// patient data sits in the broker; subscribers load the rest through row
// scope.
type ResultPayload struct {
	PatientID string   `json:"patientId"`
	ResultID  string   `json:"resultId"`
	ItemID    string   `json:"itemId"`
	TestID    string   `json:"testId"`
	WardID    string   `json:"wardId,omitempty"`
	Notify    []string `json:"notify,omitempty"`
}

// Service runs the lab's workflow. Every change is one transaction that
// checks the state, writes conditionally on it, and records its events.
type Service struct {
	store *store.Store
	loc   *time.Location
	now   func() time.Time
}

// NewService returns a Service on st. loc is the hospital's time zone: the
// calendar day a specimen is collected on decides the patient's age band
// and the date on its label (nil: UTC).
func NewService(st *store.Store, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, loc: loc, now: func() time.Time { return input.Stored(time.Now()) }}
}

// Every step that changes an order's items, specimens or results holds the
// patient's lock, as merging does, and reads what it changes under it. Two
// steps on one patient then run one after the other, so each sees the
// other's outcome: without it a verification and a rejection of the same
// specimen could both succeed (releasing a result of a specimen the lab had
// just rejected), or deadlock on rows they update in opposite orders; and
// nothing lands on a record a concurrent merge is retiring.

func itemPatient(i *ent.LabOrderItem) string    { return i.PatientID }
func specimenPatient(s *ent.LabSpecimen) string { return s.PatientID }
func resultPatient(r *ent.LabResult) string     { return r.PatientID }

// lockedItem returns the order item id, read under its patient's lock.
func lockedItem(ctx context.Context, tx *ent.Tx, id string) (*ent.LabOrderItem, error) {
	return store.GetLocked(ctx, tx, tx.LabOrderItem.Get, id, itemPatient, "lab order item not found")
}

// lockedSpecimen returns the specimen id, read under its patient's lock.
func lockedSpecimen(ctx context.Context, tx *ent.Tx, id string) (*ent.LabSpecimen, error) {
	return store.GetLocked(ctx, tx, tx.LabSpecimen.Get, id, specimenPatient, "specimen not found")
}

// lockedResult returns the result id, read under its patient's lock.
func lockedResult(ctx context.Context, tx *ent.Tx, id string) (*ent.LabResult, error) {
	return store.GetLocked(ctx, tx, tx.LabResult.Get, id, resultPatient, "lab result not found")
}

// currentStay returns the patient's current admission with its bed, or nil.
func currentStay(ctx context.Context, client *ent.AdmissionClient, patientID string) (*ent.Admission, error) {
	stay, err := client.Query().
		Where(admission.PatientID(patientID), admission.StatusEQ(admission.StatusADMITTED)).
		WithBed().
		First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return stay, err
}

// mustTell lists who must be told of a critical result of an order: the
// clinician who ordered it and, for an inpatient, the attending doctor.
func mustTell(order *ent.LabOrder, stay *ent.Admission) []string {
	ids := []string{order.OrderedByID}
	if stay != nil && stay.AttendingID != order.OrderedByID {
		ids = append(ids, stay.AttendingID)
	}
	return ids
}

// publish records the events of a released result: always on
// ResultsTopic, and on CriticalTopic when the value is critical.
func publish(ctx context.Context, tx *ent.Tx, typ LabResultEventType, r *ent.LabResult, item *ent.LabOrderItem) error {
	order, err := tx.LabOrder.Get(ctx, item.OrderID)
	if err != nil {
		return err
	}
	stay, err := currentStay(ctx, tx.Admission, r.PatientID)
	if err != nil {
		return err
	}
	payload := ResultPayload{PatientID: r.PatientID, ResultID: r.ID, ItemID: item.ID, TestID: item.TestID}
	if stay != nil && stay.Edges.Bed != nil {
		payload.WardID = stay.Edges.Bed.WardID
	}
	if err := events.Record(ctx, tx, ResultsTopic, string(typ), payload); err != nil {
		return err
	}
	if !r.Critical {
		return nil
	}
	payload.Notify = mustTell(order, stay)
	if err := tx.LabResult.UpdateOneID(r.ID).AddNotifyIDs(payload.Notify...).Exec(ctx); err != nil {
		return err
	}
	return events.Record(ctx, tx, CriticalTopic, string(CriticalEventType), payload)
}

// publishAcknowledged tells the critical-value feed that r was taken on,
// at the ward the patient is in now.
func publishAcknowledged(ctx context.Context, tx *ent.Tx, r *ent.LabResult) error {
	item, err := tx.LabOrderItem.Get(ctx, r.ItemID)
	if err != nil {
		return err
	}
	stay, err := currentStay(ctx, tx.Admission, r.PatientID)
	if err != nil {
		return err
	}
	notify, err := r.QueryNotify().IDs(ctx)
	if err != nil {
		return err
	}
	payload := ResultPayload{PatientID: r.PatientID, ResultID: r.ID, ItemID: item.ID, TestID: item.TestID, Notify: notify}
	if stay != nil && stay.Edges.Bed != nil {
		payload.WardID = stay.Edges.Bed.WardID
	}
	return events.Record(ctx, tx, CriticalTopic, string(CriticalAcknowledged), payload)
}
