package platform

import (
	"encoding/json"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"testing"
	"time"
)

// speedLeastStatements runs do five times and returns the fewest SQL
// statements one run cost: the outbox relay polls in the background
// through the same counter, and polls only ever add.
func speedLeastStatements(s *harness.Server, do func(run int)) int64 {
	var least int64 = -1
	for run := range 5 {
		before := s.App.Store.Statements()
		do(run)
		if n := s.App.Store.Statements() - before; least < 0 || n < least {
			least = n
		}
	}
	return least
}

// TestPortalQueryStatementCountIsFlat: the portal's patient search
// (speedPortalQuery) costs the same statements for a family of one patient
// as for a page of 20, each with their appointments and allergies; and
// bookAppointment costs the same for a provider with a full book as for
// one with none.
func TestPortalQueryStatementCountIsFlat(t *testing.T) {
	s := harness.NewServer(t)
	big := speedSeedN(t, s, 200, 10, "Fam") // 20 patients a family, 20 appointments a provider
	lone := speedSeedN(t, s, 1, 1, "Lone")  // one patient; providers 5… of this seeding have no appointment
	token := s.Token("doctor")
	from := big.from.Format(time.RFC3339)
	cost := func(family string, want int) int64 {
		return speedLeastStatements(s, func(int) {
			var out speedPortal
			s.Do(token, speedPortalQuery, map[string]any{"family": family, "from": from}).Decode(t, &out.Data)
			harness.Must(t, len(out.Data.Patients.Edges) == want, "%d patients of %s, want %d", len(out.Data.Patients.Edges), family, want)
			for _, e := range out.Data.Patients.Edges {
				harness.Must(t, len(e.Node.Appointments.Edges) == 3 && len(e.Node.Allergies) == 2,
					"patient %s: %d appointments, %d allergies", e.Node.ID, len(e.Node.Appointments.Edges), len(e.Node.Allergies))
			}
		})
	}
	page, one := cost(big.families[3], 20), cost(lone.families[0], 1)
	t.Logf("portal query: %d statements for 20 patients, %d for 1 (the audit row's included)", page, one)
	harness.Must(t, page == one, "statements grew with the page: %d for 1 patient, %d for 20", one, page)

	reception := s.Token("reception")
	base := big.from.Add(300 * 24 * time.Hour)
	slots := 0
	book := func(provider string) int64 {
		return speedLeastStatements(s, func(run int) {
			start := base.Add(time.Duration(slots) * time.Hour)
			slots++
			r := s.Do(reception, speedBookMutation, map[string]any{"in": speedBooking{
				PatientID: big.patients[slots], ProviderID: provider, Reason: "check-up",
				StartAt: start.Format(time.RFC3339), EndAt: start.Add(15 * time.Minute).Format(time.RFC3339)}})
			var out speedBooked
			harness.Must(t, len(r.Errors) == 0 && json.Unmarshal(r.Data, &out.Data) == nil && out.Data.BookAppointment.Status == "BOOKED",
				"booking: %s", harness.Describe(r))
			// The booking pokes the outbox relay, whose round runs through
			// the same counter: wait for it, so that every run counts one.
			speedAwaitRelay(t, s)
		})
	}
	busy, idle := book(big.providers[0]), book(lone.providers[20])
	t.Logf("bookAppointment: %d statements for a provider with 20 appointments, %d for one with none", busy, idle)
	harness.Must(t, busy == idle, "booking statements depend on the book: %d busy, %d idle", busy, idle)
}

// speedAwaitRelay waits until the outbox relay has published every event.
func speedAwaitRelay(t *testing.T, s *harness.Server) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		var pending int
		if err := s.App.Store.DB.QueryRow(`SELECT count(*) FROM outbox_events WHERE published_at IS NULL`).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			return
		}
	}
	t.Fatal("the relay did not publish the booking's event")
}
