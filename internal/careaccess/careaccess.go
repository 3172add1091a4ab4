package careaccess

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/breakglassaccess"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// Limits on a break-the-glass reason, in characters: long enough to say
// why, short enough to review.
const (
	MinReason = 10
	MaxReason = 1000
)

// DefaultTTL is how long an access lasts unless configured otherwise.
const DefaultTTL = 8 * time.Hour

// Topic is the event topic of break-the-glass accesses; OPENED is its only type.
const (
	Topic  = "careaccess"
	Opened = "OPENED"
)

// Change is the payload of an event: IDs only.
type Change struct {
	AccessID  string `json:"accessId"`
	PatientID string `json:"patientId"`
	StaffID   string `json:"staffId"`
}

// BreakGlassInput is the input of breakGlass.
type BreakGlassInput struct {
	PatientID string
	Reason    string
}

// Service opens break-the-glass accesses and reads the trail for them.
type Service struct {
	store *store.Store
	ttl   time.Duration
	// now is row scope's clock (authz.Enforcer.Now), so that an access
	// ends for row scope exactly when it says it does.
	now func() time.Time
	// careLimited reports whether row scope keeps a viewer to their care
	// relationships (authz.CarePatients): only they hold accesses.
	careLimited func(*auth.Viewer) bool
}

// NewService returns a Service on st whose accesses last ttl (zero:
// DefaultTTL), on row scope's clock and its idea of who is limited to
// their care relationships. (Passed in, not imported: authz's tests load
// the GraphQL layer, which loads this package.)
func NewService(st *store.Store, ttl time.Duration, now func() time.Time, careLimited func(*auth.Viewer) bool) *Service {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	return &Service{store: st, ttl: ttl, now: now, careLimited: careLimited}
}

// clinicians are who break the glass: the roles limited to their care
// relationships act through a person who answers for the access.
var clinicians = []staff.Kind{staff.KindDOCTOR, staff.KindNURSE}

// BreakGlass opens the patient's record to the viewer until the access
// expires, and announces it.
func (s *Service) BreakGlass(ctx context.Context, in BreakGlassInput) (*ent.BreakGlassAccess, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	reason := c.Text("input.reason", in.Reason, MaxReason)
	if c.Err() == nil && utf8.RuneCountInString(reason) < MinReason {
		c.Fail(apperr.BadInput("input.reason", "must say why in at least %d characters", MinReason))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.BreakGlassAccess, error) {
		clinician, err := auth.ActingStaff(ctx, tx.Staff, "break the glass", clinicians...)
		if err != nil {
			return nil, err
		}
		// The record is hidden from the viewer: that is why they are here.
		// Whether it exists is asked past row scope; the answer says no
		// more than patientHeader does.
		p, err := patients.Lock(auth.SystemContext(ctx), tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		now := s.now()
		a, err := tx.BreakGlassAccess.Create().SetPatientID(p.ID).SetStaffID(clinician.ID).
			SetUserID(auth.FromContext(ctx).UserID).SetReason(reason).
			SetCreatedAt(input.Stored(now)).SetUpdatedAt(input.Stored(now)).
			SetExpiresAt(input.Stored(now.Add(s.ttl))).Save(ctx)
		if err != nil {
			return nil, err
		}
		return a, events.Record(ctx, tx, Topic, Opened, Change{AccessID: a.ID, PatientID: p.ID, StaffID: clinician.ID})
	})
}

// Mark adds to an audit entry the break-the-glass accesses its viewer held
// to the patients it touched, as objects of type BreakGlassAccess: the
// entry's HMAC and the chain cover them like the rest of it. Only viewers
// limited to their care relationships can hold one, so nobody else pays
// for the lookup. It is the Mark of the audit trail's options.
func (s *Service) Mark(ctx context.Context, e *audit.Entry) error {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" || len(e.PatientIDs) == 0 || !s.careLimited(v) {
		return nil
	}
	at := e.OccurredAt
	if at.IsZero() {
		at = s.now()
	}
	// A context of its own: what this lookup reads belongs to no request,
	// and must not be noted in the collector of the one being audited.
	lookup, cancel := context.WithTimeout(auth.SystemContext(context.Background()), 10*time.Second)
	defer cancel()
	ids, err := s.store.Client.BreakGlassAccess.Query().Where(
		breakglassaccess.StaffID(v.StaffID),
		breakglassaccess.PatientIDIn(e.PatientIDs...),
		breakglassaccess.CreatedAtLTE(input.Stored(at)),
		breakglassaccess.ExpiresAtGT(input.Stored(at)),
	).IDs(lookup)
	if err != nil {
		return err
	}
	for _, id := range ids {
		e.ObjectTypes = append(e.ObjectTypes, ent.TypeBreakGlassAccess)
		e.ObjectIDs = append(e.ObjectIDs, id)
	}
	return nil
}

// Header returns who the patient with this MRN or ID is, past row scope,
// or nil if there is none. Exactly one of mrn and id is given.
func (s *Service) Header(ctx context.Context, mrn, id *string) (*PatientHeader, error) {
	var where []func(*ent.PatientQuery)
	switch {
	case (mrn == nil) == (id == nil):
		return nil, apperr.BadInput("mrn", "give either mrn or id")
	case id != nil:
		if err := input.ID("id", *id, input.Patient); err != nil {
			return nil, err
		}
		where = append(where, func(q *ent.PatientQuery) { q.Where(patient.ID(*id)) })
	default:
		m := strings.TrimSpace(*mrn)
		if m == "" {
			return nil, apperr.BadInput("mrn", "is required")
		}
		where = append(where, func(q *ent.PatientQuery) { q.Where(patient.Mrn(m)) })
	}
	q := s.store.Client.Patient.Query()
	for _, w := range where {
		w(q)
	}
	// Only the header's columns are read: the rest of the record stays
	// where row scope keeps it.
	p, err := q.Select(patient.FieldID, patient.FieldMrn, patient.FieldGivenName, patient.FieldFamilyName,
		patient.FieldBirthDate, patient.FieldSex).Only(auth.SystemContext(ctx))
	if ent.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	for _, f := range []string{"id", "mrn", "givenName", "familyName", "birthDate", "sex"} {
		audit.NoteCoordinate(ctx, "Patient."+f)
	}
	return &PatientHeader{ID: p.ID, Mrn: p.Mrn, GivenName: p.GivenName, FamilyName: p.FamilyName,
		BirthDate: p.BirthDate, Sex: p.Sex}, nil
}

// PatientHeader is what identifies a patient, and nothing of their record.
type PatientHeader struct {
	ID         string
	Mrn        string
	GivenName  string
	FamilyName string
	BirthDate  time.Time
	Sex        patient.Sex
}
