package apitest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/patients"
)

// addPatients registers n patients through the domain service.
func addPatients(b testing.TB, s *server, n int) {
	ctx := auth.SystemContext(context.Background())
	svc := patients.NewService(s.app.Store)
	for i := 0; i < n; i++ {
		city := "Nairobi"
		if _, err := svc.Register(ctx, patients.Registration{
			GivenName: fmt.Sprintf("Given%03d", i), FamilyName: "Bench", Sex: patient.SexOTHER,
			BirthDate: time.Date(1980, 1, 1+i%28, 0, 0, 0, 0, time.UTC), City: &city,
		}); err != nil {
			b.Fatal(err)
		}
	}
}

const pageOf100 = `{ patients(first: 100) { totalCount edges { node {
  id mrn givenName familyName birthDate sex phone email city country nationalID createdAt
  appointments(first: 5) { edges { node { id startAt status } } } } } } }`

// BenchmarkPatientsPage100 is a staff portal's patient list: 100 patients,
// 12 fields each and their next appointments, through HTTP, the field guard
// (about 2,000 guarded fields), row scope and the audit row it writes.
func BenchmarkPatientsPage100(b *testing.B) {
	s := newServer(b)
	addPatients(b, s, 100)
	token := s.token("doctor")
	before := s.app.Enforcer.Evaluations()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := s.do(token, pageOf100, nil); len(r.Errors) > 0 {
			b.Fatal(describe(r))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(s.app.Enforcer.Evaluations()-before)/float64(b.N), "casbin-evals/op")
}

// filteredPageOf100 is the same page asked through filters: one at the
// root that searches patient data in a subquery, and one on every
// patient's appointments, each read-checked, scoped and audited.
const filteredPageOf100 = `{ patients(first: 100, where: {familyName: "Bench", not: {hasProblemsWith: {icd10CodeHasPrefix: "B"}}}) {
  totalCount edges { node {
  id mrn givenName familyName birthDate sex phone email city country nationalID createdAt
  appointments(first: 5, where: {statusIn: [BOOKED, CHECKED_IN]}, orderBy: {field: START_AT}) { edges { node { id startAt status } } } } } } }`

// BenchmarkPatientsPage100Filtered measures what guarding filters costs,
// beside BenchmarkPatientsPage100.
func BenchmarkPatientsPage100Filtered(b *testing.B) {
	s := newServer(b)
	addPatients(b, s, 100)
	token := s.token("doctor")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := s.do(token, filteredPageOf100, nil); len(r.Errors) > 0 {
			b.Fatal(describe(r))
		}
	}
}

// BenchmarkBookAppointment books consecutive slots for one provider: the
// overlap check, locks, outbox row and audit row of each.
func BenchmarkBookAppointment(b *testing.B) {
	s := newServer(b)
	d := s.demo()
	token := s.token("reception")
	base := time.Now().UTC().Truncate(time.Hour).Add(30 * 24 * time.Hour)
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := base.Add(time.Duration(i) * 15 * time.Minute)
		i++
		r := s.do(token, bookMutation, bookingInput(d.patients[i%5], d.doctor,
			start.Format(time.RFC3339), start.Add(15*time.Minute).Format(time.RFC3339)))
		if len(r.Errors) > 0 {
			b.Fatal(describe(r))
		}
	}
}

// BenchmarkLabResultToDashboard measures what a bedside dashboard waits for:
// from a second technician's verifyLabResult request to the result arriving
// on a ward's labResultVerified subscription — the mutation, its outbox row
// and audit row, the relay, the broker and the subscription's row-scoped
// load. Each iteration's result is entered beforehand, off the clock.
func BenchmarkLabResultToDashboard(b *testing.B) {
	s := newServer(b)
	d := s.demo()
	desk := newLabDesk(b, s)
	w := setUpLabWards(b, s, d, desk)
	feed := subscribeLab(b, s, wsProtocols[0], s.token("nurse"), labResultVerifiedSubscription, map[string]any{"wardId": w.wards["MED-A"]})
	awaitLabLive(b, desk.probe(w.medA, w.medValues.normal), feed)
	verifier := s.token("labtech2")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		entered := desk.entered(w.medA, desk.cat.potassium.ID, potassium(w.medValues.normal))
		b.StartTimer()
		if r := s.do(verifier, verifyMutation, map[string]any{"id": entered.ID}); len(r.Errors) > 0 {
			b.Fatal(describe(r))
		}
		if ev := feed.next(); ev.Result.ID != entered.ID {
			b.Fatalf("dashboard got %s, want %s", ev.Result.ID, entered.ID)
		}
	}
}
