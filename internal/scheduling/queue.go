package scheduling

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
)

// Queue returns the department's appointments of one hospital day (today
// when date is nil), cancelled ones left out, in order of start: who is
// expected, who is waiting, with whom and where. Patient, provider and room
// come loaded, as every front-desk view shows them.
func (s *Service) Queue(ctx context.Context, departmentID string, date *time.Time) ([]*ent.Appointment, error) {
	if err := input.ID("departmentId", departmentID, input.Department); err != nil {
		return nil, err
	}
	day := s.localDay(s.now())
	if date != nil {
		// A Date is a calendar day, read at midnight UTC; the day meant is
		// that date in the hospital's zone.
		d := date.UTC()
		day = time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, s.hospital)
	}
	next := time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, s.hospital)
	if exists, err := s.store.Client.Department.Query().Where(department.ID(departmentID)).Exist(ctx); err != nil {
		return nil, err
	} else if !exists {
		return nil, apperr.NotFoundf("department not found")
	}
	list, err := s.store.Client.Appointment.Query().
		Where(
			appointment.DepartmentID(departmentID),
			appointment.StatusNEQ(appointment.StatusCANCELLED),
			appointment.StartAtGTE(day.UTC()),
			appointment.StartAtLT(next.UTC()),
		).
		Order(ent.Asc(appointment.FieldStartAt), ent.Asc(appointment.FieldID)).
		WithPatient().
		WithProvider().
		WithRoom().
		All(ctx)
	if err != nil {
		return nil, err
	}
	return list, nil
}
