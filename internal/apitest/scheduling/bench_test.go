package scheduling

import (
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// BenchmarkBookAppointment books consecutive slots for one provider: the
// overlap check, locks, outbox row and audit row of each.
func BenchmarkBookAppointment(b *testing.B) {
	s := harness.NewServer(b)
	d := s.Demo()
	token := s.Token("reception")
	base := time.Now().UTC().Truncate(time.Hour).Add(30 * 24 * time.Hour)
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		start := base.Add(time.Duration(i) * 15 * time.Minute)
		i++
		r := s.Do(token, harness.BookMutation, harness.BookingInput(d.Patients[i%5], d.Doctor,
			start.Format(time.RFC3339), start.Add(15*time.Minute).Format(time.RFC3339)))
		if len(r.Errors) > 0 {
			b.Fatal(harness.Describe(r))
		}
	}
}
