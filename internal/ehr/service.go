package ehr

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/patients"
)

// Notifier is told after a commit that recorded events, so they go out now
// rather than at the relay's next poll.
type Notifier interface{ Poke() }

// Service keeps the health record: every change is one transaction that
// checks the rules, writes, and records its events.
type Service struct {
	client *ent.Client
	notify Notifier
	loc    *time.Location
	now    func() time.Time
}

// NewService returns a Service writing through client. notify is poked after
// each commit that recorded events; without one the relay publishes them at
// its next poll. loc is the hospital's time zone, which decides what "today"
// is when a date is left out (nil: UTC).
func NewService(client *ent.Client, notify Notifier, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{client: client, notify: notify, loc: loc, now: func() time.Time { return storable(time.Now()) }}
}

// storable rounds t down to what every database keeps (PostgreSQL stores
// microseconds), so what a mutation returns equals what is read back later.
func storable(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// inTx runs fn in one transaction, committing if it returns nil.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context, tx *ent.Tx) error) (err error) {
	tx, err := s.client.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(ctx, tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

func (s *Service) poke() {
	if s.notify != nil {
		s.notify.Poke()
	}
}

// lockForUpdate makes a query lock the rows it reads until the transaction
// ends, so a check followed by a write (one active allergy per substance)
// cannot interleave with another transaction doing the same. SQLite needs
// no row lock: its transactions begin immediate and hold the database's
// single write lock.
func lockForUpdate(sel *sql.Selector) {
	if sel.Dialect() == dialect.Postgres {
		sel.For(sql.LockNoKeyUpdate)
	}
}

// loadPatient returns the patient clinical data is recorded for, through
// row scope. With lock, concurrent writers to the same patient's record
// take turns.
func loadPatient(ctx context.Context, tx *ent.Tx, field, id string, lock bool) (*ent.Patient, error) {
	if lock {
		return patients.Active(ctx, tx.Patient, field, id, lockForUpdate)
	}
	return patients.Active(ctx, tx.Patient, field, id)
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
func (s *Service) today() time.Time {
	y, m, d := s.now().In(s.loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// latestToday is the calendar date somewhere on Earth is already at: a date
// after it is in the future wherever the client is, so refusing it never
// refuses a clinician whose "today" is ahead of the server's.
func (s *Service) latestToday() time.Time {
	y, m, d := s.now().UTC().Add(14 * time.Hour).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// checker collects the first input error; later checks are skipped so the
// client is told about one field at a time, the first in form order.
type checker struct{ err error }

func (c *checker) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *checker) id(field, id, prefix, what string) {
	if !globalid.Valid(id, prefix) {
		c.fail(apperr.BadInput(field, "is not %s ID", what))
	}
}

func (c *checker) optionalID(field string, id *string, prefix, what string) {
	if id != nil {
		c.id(field, *id, prefix, what)
	}
}

// text trims s and checks it is present and at most max characters long.
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

// optionalText trims s, turning a blank into an absent value.
func (c *checker) optionalText(field string, s *string, max int) *string {
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

// pastDate checks that d, if given, is not in the future.
func (c *checker) pastDate(field string, d *time.Time, latestToday time.Time) {
	if d != nil && d.After(latestToday) {
		c.fail(apperr.BadInput(field, "cannot be in the future"))
	}
}

// notBeforeBirth checks a date of the patient's own life.
func notBeforeBirth(field string, d *time.Time, p *ent.Patient) error {
	if d != nil && d.Before(p.BirthDate) {
		return apperr.BadInput(field, "is before the patient's birth date")
	}
	return nil
}

func checkID(field, id, prefix, what string) error {
	var c checker
	c.id(field, id, prefix, what)
	return c.err
}
