// Package lab runs the laboratory: orders with one item per test,
// specimens with accession numbers, results flagged against reference
// ranges, two-person verification, amendments that keep the original, and
// critical values that a clinician must acknowledge. Released results and
// critical values are published through the outbox (topics ResultsTopic
// and CriticalTopic).
package lab

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/events"
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

// Notifier is told after a commit that recorded events, so they go out now
// rather than at the relay's next poll.
type Notifier interface{ Poke() }

// Service runs the lab's workflow. Every change is one transaction that
// checks the state, writes conditionally on it, and records its events.
type Service struct {
	store  *store.Store
	notify Notifier
	loc    *time.Location
	now    func() time.Time
}

// NewService returns a Service on st that pokes notify (if not nil) after
// each commit that published something. loc is the hospital's time zone:
// the calendar day a specimen is collected on decides the patient's age
// band and the date on its label (nil: UTC).
func NewService(st *store.Store, notify Notifier, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, notify: notify, loc: loc, now: func() time.Time { return storable(time.Now()) }}
}

// lockPatient holds the patient's record for the rest of the transaction,
// as merging does, so that a row created for the patient cannot land on a
// record a concurrent merge is retiring.
func (s *Service) lockPatient(ctx context.Context, tx *ent.Tx, patientID string) error {
	return s.store.Lock(ctx, tx, "patient:"+patientID)
}

// Every step that changes an order's items, specimens or results first
// locks the patient, then reads what it changes. Two steps on one patient
// then run one after the other, so each sees the other's outcome: without
// it a verification and a rejection of the same specimen could both
// succeed (releasing a result of a specimen the lab had just rejected), or
// deadlock on rows they update in opposite orders.

// lockedItem returns the order item id, read after locking its patient.
func (s *Service) lockedItem(ctx context.Context, tx *ent.Tx, id string) (*ent.LabOrderItem, error) {
	if err := s.lockPatientOf(ctx, tx, id); err != nil {
		return nil, err
	}
	return loadItem(ctx, tx, id)
}

// lockedSpecimen returns the specimen id, read after locking its patient.
func (s *Service) lockedSpecimen(ctx context.Context, tx *ent.Tx, id string) (*ent.LabSpecimen, error) {
	sp, err := loadSpecimen(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := s.lockPatient(ctx, tx, sp.PatientID); err != nil {
		return nil, err
	}
	return loadSpecimen(ctx, tx, id)
}

// lockedResult returns the result id, read after locking its patient.
func (s *Service) lockedResult(ctx context.Context, tx *ent.Tx, id string) (*ent.LabResult, error) {
	r, err := loadResult(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if err := s.lockPatient(ctx, tx, r.PatientID); err != nil {
		return nil, err
	}
	return loadResult(ctx, tx, id)
}

// lockPatientOf locks the patient an order item belongs to. Callers read
// the item again after the lock, as a merge may have moved it meanwhile.
func (s *Service) lockPatientOf(ctx context.Context, tx *ent.Tx, itemID string) error {
	item, err := tx.LabOrderItem.Get(ctx, itemID)
	if ent.IsNotFound(err) {
		return nil // reported by the caller, with the field
	} else if err != nil {
		return err
	}
	return s.lockPatient(ctx, tx, item.PatientID)
}

// storable rounds t down to what every database keeps (PostgreSQL stores
// microseconds), so what a mutation returns equals what is read back.
func storable(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// inTx runs fn in one transaction and, if it published, pokes the relay.
func (s *Service) inTx(ctx context.Context, publishes bool, fn func(ctx context.Context, tx *ent.Tx) error) error {
	if err := s.store.InTx(ctx, fn); err != nil {
		return err
	}
	if publishes && s.notify != nil {
		s.notify.Poke()
	}
	return nil
}

// committed detaches an entity a transaction returned from it: the
// resolvers load its edges after the commit, which through the finished
// transaction fails with "transaction has already been committed".
func committed[T interface{ Unwrap() T }](v T, err error) (T, error) {
	if err != nil {
		var none T
		return none, err
	}
	return v.Unwrap(), nil
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

// checker gathers the first input error of a mutation.
type checker struct{ err error }

func (c *checker) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// text checks a required free-text input and returns it trimmed.
func (c *checker) text(field, s string, max int) string {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		c.fail(apperr.BadInput(field, "is required"))
	case utf8.RuneCountInString(s) > max:
		c.fail(apperr.BadInput(field, "must be at most %d characters", max))
	}
	return s
}

// optional checks an optional free-text input: blank counts as absent.
func (c *checker) optional(field string, s *string, max int) *string {
	if s == nil {
		return nil
	}
	t := strings.TrimSpace(*s)
	if t == "" {
		return nil
	}
	if utf8.RuneCountInString(t) > max {
		c.fail(apperr.BadInput(field, "must be at most %d characters", max))
	}
	return &t
}
