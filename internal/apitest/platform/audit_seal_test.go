package platform

import (
	"context"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/auth"
)

const sealAuditEventsQuery = `{ auditEvents(first: 100) { edges { node { id seq hash keyID operation } } } }`

type sealListedRow struct {
	ID        string
	Seq       *int
	Hash      *string
	KeyID     *string
	Operation string
}

func sealListAudit(t *testing.T, s *harness.Server) []sealListedRow {
	t.Helper()
	var out struct {
		AuditEvents struct {
			Edges []struct{ Node sealListedRow }
		}
	}
	s.As("auditor", sealAuditEventsQuery, nil).Decode(t, &out)
	rows := make([]sealListedRow, len(out.AuditEvents.Edges))
	for i, e := range out.AuditEvents.Edges {
		rows[i] = e.Node
	}
	return rows
}

// auditEvents lists newest first: rows not sealed yet (seq null) before
// the sealed ones, which follow in chain order; sealing keeps that order,
// because the sealer chains rows in the order they were written.
func TestAuditEventsListUnsealedFirstThenChainOrder(t *testing.T) {
	s := harness.NewServer(t)
	d := s.Demo()
	for _, p := range d.Patients[:4] {
		s.As("nurse", `query($id: ID!) { node(id: $id) { ... on Patient { givenName } } }`, map[string]any{"id": p})
	}
	before := sealListAudit(t, s)
	harness.Must(t, len(before) >= 6, "rows listed: %d", len(before))
	sealedSeen, lastSeq := false, 0
	for i, r := range before {
		if r.Seq == nil {
			harness.Must(t, !sealedSeen, "unsealed row %s listed after sealed ones: %+v", r.ID, before)
			harness.Must(t, r.Hash == nil && r.KeyID == nil, "unsealed row %s has a hash or key: %+v", r.ID, r)
			continue
		}
		harness.Must(t, r.Hash != nil && len(*r.Hash) == 64 && r.KeyID != nil, "sealed row %s lacks hash or key: %+v", r.ID, r)
		harness.Must(t, !sealedSeen || *r.Seq == lastSeq-1, "row %d: seq %d after %d, want chain order", i, *r.Seq, lastSeq)
		sealedSeen, lastSeq = true, *r.Seq
	}

	_, err := s.App.Trail.Seal(context.Background())
	harness.Must(t, err == nil, "seal: %v", err)
	after := sealListAudit(t, s)
	// The read just made is newest, and may not be sealed yet.
	harness.Must(t, len(after) == len(before)+1, "rows after sealing: %d, before %d", len(after), len(before))
	for i, r := range before {
		got := after[i+1]
		harness.Must(t, got.ID == r.ID, "position %d: %s after sealing, %s before: sealing changed the order", i, got.ID, r.ID)
		harness.Must(t, got.Seq != nil && (r.Seq == nil || *r.Seq == *got.Seq), "row %s: seq %v before, %v after", r.ID, r.Seq, got.Seq)
	}
	rep, err := s.App.Trail.Verify(auth.SystemContext(context.Background()), time.Minute)
	harness.Must(t, err == nil && rep.Checked >= int64(len(before)), "verify: %+v %v", rep, err)
}

// A request spends one statement on its audit row: an audited read of a
// patient costs exactly one statement more than an unaudited read of a
// department through the same path. The relay polls through the same
// counter, so the least of a few runs is taken. (A doctor or nurse, kept to
// the patients they care for, spends one more: the look-up of the
// break-the-glass accesses the row must name; see TestBreakGlass….)
func TestAuditCostsOneStatementPerRequest(t *testing.T) {
	s := harness.NewServer(t)
	d := s.Demo()
	token := s.Token("reception")
	const read = `query($id: ID!) { node(id: $id) { id } }`
	cost := func(id string) int64 {
		var least int64 = -1
		for range 5 {
			before := s.App.Store.Statements()
			r := s.Do(token, read, map[string]any{"id": id})
			harness.Must(t, len(r.Errors) == 0, "read %s: %s", id, harness.Describe(r))
			if n := s.App.Store.Statements() - before; least < 0 || n < least {
				least = n
			}
		}
		return least
	}
	audited, plain := cost(d.Patients[2]), cost(d.Cardiology)
	harness.Must(t, audited-plain == 1, "an audited read took %d statements, an unaudited one %d: want exactly one audit statement", audited, plain)
}

// While audit rows cannot be written, a query is withheld with INTERNAL,
// but a subscription event waits and arrives once they can: never as an
// error, never unaudited.
func TestSubscriptionEventWaitsOutAnAuditOutage(t *testing.T) {
	s := harness.NewServer(t)
	d := s.Demo()
	b := &harness.Booker{T: t, S: s, User: "reception"}
	f := harness.SubscribeAppointments(t, s, harness.WSProtocols[0], s.Token("doctor"), map[string]any{"providerId": d.Doctor})
	harness.AwaitLive(t, func() string { return b.Book(d.Patients[3], d.Doctor) }, f)
	nurse := s.Token("nurse")

	db := s.App.Store.DB
	_, err := db.Exec(`ALTER TABLE audit_events RENAME TO audit_events_away`)
	harness.Must(t, err == nil, "take the audit table away: %v", err)
	restored := false
	restore := func() {
		if !restored {
			_, err := db.Exec(`ALTER TABLE audit_events_away RENAME TO audit_events`)
			harness.Must(t, err == nil, "bring the audit table back: %v", err)
			restored = true
		}
	}
	defer restore()

	r := s.Do(nurse, `query($id: ID!) { node(id: $id) { ... on Patient { givenName } } }`, map[string]any{"id": d.Patients[2]})
	harness.Must(t, r.HasCode("INTERNAL") && !containsData(r), "a query during the outage: %s", harness.Describe(r))

	// The booking commits (its own harness.Response is withheld: it is a
	// mutation), and its event reaches the feed's resolver.
	start, end := harness.Slot(20, 9)
	r = s.As("reception", harness.BookMutation, harness.BookingInput(d.Patients[1], d.Doctor, start, end))
	harness.Must(t, r.HasCode("INTERNAL"), "booking during the outage: %s", harness.Describe(r))
	_, early := f.Conn.ResultWithin(f.OpID, 1500*time.Millisecond)
	harness.Must(t, !early, "an event was delivered while it could not be audited")

	restore()
	ev := f.Next()
	harness.Must(t, ev.Type == "BOOKED" && ev.Appointment.Patient.ID == d.Patients[1], "held-back event: %+v", ev)
	rows := harness.AuditRows(t, s, map[string]any{"operation": "appointmentChanged", "patientId": d.Patients[1]})
	harness.Must(t, len(rows) >= 1 && rows[0].Kind == "SUBSCRIPTION", "audit row of the delivered event: %+v", rows)
}

func containsData(r harness.Response) bool { return len(r.Data) > 0 && string(r.Data) != "null" }
