package lab

import (
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// BenchmarkLabResultToDashboard measures what a bedside dashboard waits for:
// from a second technician's verifyLabResult request to the result arriving
// on a ward's labResultVerified subscription — the mutation, its outbox row
// and audit row, the relay, the broker and the subscription's row-scoped
// load. Each iteration's result is entered beforehand, off the clock.
func BenchmarkLabResultToDashboard(b *testing.B) {
	s := harness.NewServer(b)
	d := s.Demo()
	desk := harness.NewLabDesk(b, s)
	w := setUpLabWards(b, s, d, desk)
	feed := subscribeLab(b, s, harness.WSProtocols[0], s.Token("nurse"), labResultVerifiedSubscription, map[string]any{"wardId": w.Wards["MED-A"]})
	harness.AwaitLive(b, desk.Probe(w.MedA, w.MedValues.Normal), feed)
	verifier := s.Token("labtech2")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		entered := desk.Entered(w.MedA, desk.Cat.Potassium.ID, harness.Potassium(w.MedValues.Normal))
		b.StartTimer()
		if r := s.Do(verifier, harness.LabVerifyMutation, map[string]any{"id": entered.ID}); len(r.Errors) > 0 {
			b.Fatal(harness.Describe(r))
		}
		if ev := feed.Next(); ev.Result.ID != entered.ID {
			b.Fatalf("dashboard got %s, want %s", ev.Result.ID, entered.ID)
		}
	}
}
