package patients

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/patients"
)

// addPatients registers n patients through the domain service.
func addPatients(b testing.TB, s *harness.Server, n int) {
	ctx := auth.SystemContext(context.Background())
	svc := patients.NewService(s.App.Store)
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
	s := harness.NewServer(b)
	addPatients(b, s, 100)
	token := s.Token("doctor")
	before := s.App.Enforcer.Evaluations()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := s.Do(token, pageOf100, nil); len(r.Errors) > 0 {
			b.Fatal(harness.Describe(r))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(s.App.Enforcer.Evaluations()-before)/float64(b.N), "casbin-evals/op")
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
	s := harness.NewServer(b)
	addPatients(b, s, 100)
	token := s.Token("doctor")
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if r := s.Do(token, filteredPageOf100, nil); len(r.Errors) > 0 {
			b.Fatal(harness.Describe(r))
		}
	}
}
