package scheduling

import (
	"context"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type pokes struct{ n int }

func (p *pokes) Poke() { p.n++ }

type fixture struct {
	svc      *Service
	client   *ent.Client
	notify   *pokes
	patients []*ent.Patient
	doctor   *ent.Staff
	clerk    *ent.Staff
}

func setup(t *testing.T) (context.Context, fixture) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	c := st.Client
	dep := c.Department.Create().SetCode("GEN").SetName("General").SaveX(ctx)
	f := fixture{client: c, notify: &pokes{}}
	f.doctor = c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(staff.KindDOCTOR).SetDepartment(dep).SaveX(ctx)
	f.clerk = c.Staff.Create().SetGivenName("L").SetFamilyName("O").SetKind(staff.KindBILLING_CLERK).SetDepartment(dep).SaveX(ctx)
	for i := 0; i < 2; i++ {
		f.patients = append(f.patients, c.Patient.Create().SetMrn([]string{"100000009", "100000017"}[i]).SetGivenName("P").
			SetFamilyName("Q").SetBirthDate(time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexOTHER).SaveX(ctx))
	}
	st.OnEventsCommitted(f.notify.Poke)
	f.svc = NewService(st, time.UTC)
	return ctx, f
}

func TestTransitions(t *testing.T) {
	ctx, f := setup(t)
	now := time.Now().UTC()
	f.svc.now = func() time.Time { return now }
	start := now.Add(48 * time.Hour)
	a, err := f.svc.Book(ctx, Booking{PatientID: f.patients[0].ID, ProviderID: f.doctor.ID, StartAt: start, EndAt: start.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if a.Status != appointment.StatusBOOKED || a.DepartmentID != f.doctor.DepartmentID || f.notify.n != 1 {
		t.Fatalf("booked %+v, pokes %d", a, f.notify.n)
	}
	if _, err := f.svc.CheckIn(ctx, a.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("check-in two days early: %v", err)
	}
	f.svc.now = func() time.Time { return start.Add(-time.Hour) }
	if a, err = f.svc.CheckIn(ctx, a.ID); err != nil || a.Status != appointment.StatusCHECKED_IN || a.CheckedInAt == nil {
		t.Fatalf("check-in: %+v %v", a, err)
	}
	if _, err := f.svc.Cancel(ctx, a.ID, Cancellation{Reason: "x"}); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("cancel after check-in: %v", err)
	}
	if _, err := f.svc.Cancel(ctx, "apt_01ARZ3NDEKTSV4RRFFQ69G5FAV", Cancellation{Reason: "x"}); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("cancel unknown: %v", err)
	}
}

// TestRefusedBookingRecordsNoEvent: the outbox row is written in the same
// transaction as the booking, so a refused booking publishes nothing.
func TestRefusedBookingRecordsNoEvent(t *testing.T) {
	ctx, f := setup(t)
	start := time.Now().UTC().Add(24 * time.Hour)
	if _, err := f.svc.Book(ctx, Booking{PatientID: f.patients[0].ID, ProviderID: f.doctor.ID, StartAt: start, EndAt: start.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	_, err := f.svc.Book(ctx, Booking{PatientID: f.patients[1].ID, ProviderID: f.doctor.ID, StartAt: start.Add(30 * time.Minute), EndAt: start.Add(90 * time.Minute)})
	if apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("overlap: %v", err)
	}
	_, err = f.svc.Book(ctx, Booking{PatientID: f.patients[1].ID, ProviderID: f.clerk.ID, StartAt: start, EndAt: start.Add(time.Hour)})
	if e, ok := apperr.As(err); !ok || e.Field != "input.providerId" {
		t.Fatalf("a billing clerk is no provider: %v", err)
	}
	if n := f.client.OutboxEvent.Query().CountX(ctx); n != 1 {
		t.Fatalf("%d outbox rows, want the one of the successful booking", n)
	}
	if n := f.client.Appointment.Query().CountX(ctx); n != 1 {
		t.Fatalf("%d appointments", n)
	}
}
