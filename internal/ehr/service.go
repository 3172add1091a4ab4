package ehr

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Service keeps the health record: every change is one transaction that
// checks the rules, writes, and records its events.
type Service struct {
	store *store.Store
	loc   *time.Location
	now   func() time.Time
}

// NewService returns a Service on st. loc is the hospital's time zone,
// which decides what "today" is when a date is left out (nil: UTC).
func NewService(st *store.Store, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, loc: loc, now: func() time.Time { return input.Stored(time.Now()) }}
}

// loadEncounter returns the encounter an item is recorded in, which must be
// the same patient's and not cancelled.
func loadEncounter(ctx context.Context, tx *ent.Tx, field string, id *string, patientID string) (*string, error) {
	if id == nil {
		return nil, nil
	}
	e, err := tx.Encounter.Get(ctx, *id)
	if ent.IsNotFound(err) {
		return nil, apperr.BadInput(field, "no such encounter")
	} else if err != nil {
		return nil, err
	}
	switch {
	case e.PatientID != patientID:
		return nil, apperr.BadInput(field, "is another patient's encounter")
	case e.Status == encounter.StatusCANCELLED:
		return nil, apperr.BadInput(field, "was cancelled")
	}
	return &e.ID, nil
}

// recorder is the member of staff a change is attributed to; nil for the
// system or an API key, which act for no person.
func recorder(ctx context.Context) *string {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return nil
	}
	id := v.StaffID
	return &id
}

// today is the hospital's calendar date, as midnight UTC like a Date input.
func (s *Service) today() time.Time { return input.Today(s.now(), s.loc) }

// latestToday is the calendar date somewhere on Earth is already at: a date
// after it is in the future wherever the client is, so refusing it never
// refuses a clinician whose "today" is ahead of the server's.
func (s *Service) latestToday() time.Time {
	return input.Date(s.now().UTC().Add(14 * time.Hour))
}

// pastDate checks that d, if given, is not in the future.
func pastDate(c *input.Checker, field string, d *time.Time, latestToday time.Time) {
	if d != nil && d.After(latestToday) {
		c.Fail(apperr.BadInput(field, "cannot be in the future"))
	}
}

// notBeforeBirth checks a date of the patient's own life.
func notBeforeBirth(field string, d *time.Time, p *ent.Patient) error {
	if d != nil && d.Before(p.BirthDate) {
		return apperr.BadInput(field, "is before the patient's birth date")
	}
	return nil
}
