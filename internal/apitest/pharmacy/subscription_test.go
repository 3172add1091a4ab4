package pharmacy

import (
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const (
	stockLowSubscription = `subscription($locationId: ID, $after: String) {
  stockLow(locationId: $locationId, after: $after) {
    eventId type occurredAt location { id code } drug { id code } batch { id } onHand reorderLevel
  }
}`
	batchExpiringSubscription = `subscription($locationId: ID, $after: String) {
  batchExpiring(locationId: $locationId, after: $after) {
    eventId type occurredAt location { id code } drug { id code } batch { id lotNumber expiryDate } onHand reorderLevel
  }
}`
)

type stockEvent struct {
	EventID, Type, OccurredAt string
	Location                  struct{ ID, Code string }
	Drug                      struct{ ID, Code string }
	Batch                     *struct{ ID, LotNumber, ExpiryDate string }
	OnHand, ReorderLevel      int
}

// subject is the item an alert is about: each probe uses an item of its own.
func subject(ev stockEvent) string { return ev.Drug.ID }

// TestStockAlertsArriveLive: a pharmacy screen subscribed to its own
// location hears an item fall below its reorder level as the dispensing
// that takes it there commits, and a delivery that is already close to
// expiry as it is received; the main store's screen hears neither.
func TestStockAlertsArriveLive(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			k := newDesk(t)
			low := harness.Subscribe(t, k.s, proto, k.s.Token("pharmacist"), stockLowSubscription, map[string]any{"locationId": k.pharmacy}, subject)
			elsewhere := harness.Subscribe(t, k.s, proto, k.s.Token("pharmacy_technician"), stockLowSubscription, map[string]any{"locationId": k.main}, subject)
			probeAt := func(location string) func() string {
				return func() string {
					// Received below its reorder level, then one counted
					// away: a LOW alert about an item of the probe's own.
					d := k.item("Probe", 5, nil)
					b := k.receive("pharmacist", location, d, "P", 300, 5, "1")
					k.s.As("pharmacist", `mutation($b: ID!) { adjustStock(input: {batchId: $b, countedQuantity: 4, reason: "probe"}) { id } }`,
						map[string]any{"b": b.ID}).Decode(t, &struct{}{})
					return d.ID
				}
			}
			harness.AwaitLive(t, probeAt(k.pharmacy), low)
			harness.AwaitLive(t, probeAt(k.main), elsewhere)

			para := k.item("Paracetamol", 10, nil)
			k.receive("pharmacist", k.pharmacy, para, "PAR", 300, 12, "0.15")
			order := k.order(k.d.Patients[1], para, 5)
			k.dispense("pharmacy_technician", order, ptr(2)) // 10 left: not below
			low.Quiet(300 * time.Millisecond)
			k.dispense("pharmacy_technician", order, ptr(1)) // 9: below
			ev := low.Next()
			harness.Must(t, ev.Type == "LOW" && ev.Drug.ID == para.ID && ev.Location.ID == k.pharmacy && ev.OnHand == 9 &&
				ev.ReorderLevel == 10 && ev.Batch == nil, "low alert: %+v", ev)
			k.dispense("pharmacy_technician", order, ptr(1)) // still low: no second alert
			low.Quiet(500 * time.Millisecond)
			elsewhere.Quiet(200 * time.Millisecond)

			expiring := harness.Subscribe(t, k.s, proto, k.s.Token("pharmacist"), batchExpiringSubscription, map[string]any{"locationId": k.pharmacy}, subject)
			harness.AwaitLive(t, func() string {
				d := k.item("Probe", 0, nil)
				k.receive("pharmacist", k.pharmacy, d, "NEAR", 10, 1, "1")
				return d.ID
			}, expiring)
			amox := k.item("Amoxicillin", 0, nil)
			k.receive("pharmacist", k.pharmacy, amox, "FAR", 400, 50, "9.00") // outside the warning
			near := k.receive("pharmacist", k.pharmacy, amox, "NEAR", 20, 8, "9.00")
			ev = expiring.Next()
			harness.Must(t, ev.Type == "EXPIRING" && ev.Drug.ID == amox.ID && ev.Batch != nil && ev.Batch.ID == near.ID &&
				ev.Batch.LotNumber == "NEAR" && ev.OnHand == 8, "expiring alert: %+v", ev)
			expiring.Quiet(300 * time.Millisecond)
		})
	}
}

// TestStockSubscriptionsAuthorization: only the pharmacy hears stock
// alerts; a bad argument is refused naming it.
func TestStockSubscriptionsAuthorization(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			users := []string{"anonymous", "patient", "doctor", "nurse", "integrator", "reception", "billing", "labtech", "hr", "auditor"}
			creds := harness.Credentials(t, s, users)
			for _, doc := range []string{stockLowSubscription, batchExpiringSubscription} {
				for _, user := range users {
					c := s.DialWS(t, proto)
					c.Init(creds[user])
					errs := c.Failure(c.Start(doc, nil))
					harness.Must(t, len(errs) == 1 && errs[0].Code() == harness.DeniedCode(user), "%s: %.40s…: want %s, got %v", user, doc, harness.DeniedCode(user), errs)
					c.Close()
				}
			}
			c := s.DialWS(t, proto)
			c.Init(s.Token("pharmacy_technician"))
			for _, tc := range []struct {
				doc   string
				args  map[string]any
				field string
			}{
				{stockLowSubscription, map[string]any{"locationId": "garbage"}, "locationId"},
				{batchExpiringSubscription, map[string]any{"locationId": "wrd_01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "locationId"},
				{stockLowSubscription, map[string]any{"after": "not-an-id"}, "after"},
			} {
				errs := c.Failure(c.Start(tc.doc, tc.args))
				harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT" && errs[0].Field() == tc.field,
					"%v: want BAD_USER_INPUT on %s, got %v", tc.args, tc.field, errs)
			}
		})
	}
}
