package apitest

import (
	"context"
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

func sealListAudit(t *testing.T, s *server) []sealListedRow {
	t.Helper()
	var out struct {
		AuditEvents struct {
			Edges []struct{ Node sealListedRow }
		}
	}
	s.as("auditor", sealAuditEventsQuery, nil).decode(t, &out)
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
	s := newServer(t)
	d := s.demo()
	for _, p := range d.patients[:4] {
		s.as("nurse", `query($id: ID!) { node(id: $id) { ... on Patient { givenName } } }`, map[string]any{"id": p})
	}
	before := sealListAudit(t, s)
	must(t, len(before) >= 6, "rows listed: %d", len(before))
	sealedSeen, lastSeq := false, 0
	for i, r := range before {
		if r.Seq == nil {
			must(t, !sealedSeen, "unsealed row %s listed after sealed ones: %+v", r.ID, before)
			must(t, r.Hash == nil && r.KeyID == nil, "unsealed row %s has a hash or key: %+v", r.ID, r)
			continue
		}
		must(t, r.Hash != nil && len(*r.Hash) == 64 && r.KeyID != nil, "sealed row %s lacks hash or key: %+v", r.ID, r)
		must(t, !sealedSeen || *r.Seq == lastSeq-1, "row %d: seq %d after %d, want chain order", i, *r.Seq, lastSeq)
		sealedSeen, lastSeq = true, *r.Seq
	}

	_, err := s.app.Trail.Seal(context.Background())
	must(t, err == nil, "seal: %v", err)
	after := sealListAudit(t, s)
	// The read just made is newest, and may not be sealed yet.
	must(t, len(after) == len(before)+1, "rows after sealing: %d, before %d", len(after), len(before))
	for i, r := range before {
		got := after[i+1]
		must(t, got.ID == r.ID, "position %d: %s after sealing, %s before: sealing changed the order", i, got.ID, r.ID)
		must(t, got.Seq != nil && (r.Seq == nil || *r.Seq == *got.Seq), "row %s: seq %v before, %v after", r.ID, r.Seq, got.Seq)
	}
	rep, err := s.app.Trail.Verify(auth.SystemContext(context.Background()), time.Minute)
	must(t, err == nil && rep.Checked >= int64(len(before)), "verify: %+v %v", rep, err)
}

// A request spends one statement on its audit row: an audited read of a
// patient costs exactly one statement more than an unaudited read of a
// department through the same path. The relay polls through the same
// counter, so the least of a few runs is taken.
func TestAuditCostsOneStatementPerRequest(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	token := s.token("nurse")
	const read = `query($id: ID!) { node(id: $id) { id } }`
	cost := func(id string) int64 {
		var least int64 = -1
		for range 5 {
			before := s.app.Store.Statements()
			r := s.do(token, read, map[string]any{"id": id})
			must(t, len(r.Errors) == 0, "read %s: %s", id, describe(r))
			if n := s.app.Store.Statements() - before; least < 0 || n < least {
				least = n
			}
		}
		return least
	}
	audited, plain := cost(d.patients[2]), cost(d.cardiology)
	must(t, audited-plain == 1, "an audited read took %d statements, an unaudited one %d: want exactly one audit statement", audited, plain)
}

// While audit rows cannot be written, a query is withheld with INTERNAL,
// but a subscription event waits and arrives once they can: never as an
// error, never unaudited.
func TestSubscriptionEventWaitsOutAnAuditOutage(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	b := &booker{t: t, s: s, user: "reception"}
	f := subscribeAppointments(t, s, wsProtocols[0], s.token("doctor"), map[string]any{"providerId": d.doctor})
	awaitLive(t, func() string { return b.book(d.patients[3], d.doctor) }, f)
	nurse := s.token("nurse")

	db := s.app.Store.DB
	_, err := db.Exec(`ALTER TABLE audit_events RENAME TO audit_events_away`)
	must(t, err == nil, "take the audit table away: %v", err)
	restored := false
	restore := func() {
		if !restored {
			_, err := db.Exec(`ALTER TABLE audit_events_away RENAME TO audit_events`)
			must(t, err == nil, "bring the audit table back: %v", err)
			restored = true
		}
	}
	defer restore()

	r := s.do(nurse, `query($id: ID!) { node(id: $id) { ... on Patient { givenName } } }`, map[string]any{"id": d.patients[2]})
	must(t, r.hasCode("INTERNAL") && !containsData(r), "a query during the outage: %s", describe(r))

	// The booking commits (its own response is withheld: it is a
	// mutation), and its event reaches the feed's resolver.
	start, end := slot(20, 9)
	r = s.as("reception", bookMutation, bookingInput(d.patients[1], d.doctor, start, end))
	must(t, r.hasCode("INTERNAL"), "booking during the outage: %s", describe(r))
	_, early := f.c.resultWithin(f.id, 1500*time.Millisecond)
	must(t, !early, "an event was delivered while it could not be audited")

	restore()
	ev := f.next()
	must(t, ev.Type == "BOOKED" && ev.Appointment.Patient.ID == d.patients[1], "held-back event: %+v", ev)
	rows := auditRows(t, s, map[string]any{"operation": "appointmentChanged", "patientId": d.patients[1]})
	must(t, len(rows) >= 1 && rows[0].Kind == "SUBSCRIPTION", "audit row of the delivered event: %+v", rows)
}

func containsData(r response) bool { return len(r.Data) > 0 && string(r.Data) != "null" }
