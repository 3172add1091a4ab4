package platform

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
)

func TestReadsAndWritesOfPatientDataAreAudited(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo() // the admin's read is audited too
	target := d.Patients[2]

	s.As("nurse", `query($id: ID!) { node(id: $id) { ... on Patient { givenName birthDate } } }`, map[string]any{"id": target}).Decode(t, &struct{}{})
	start, end := harness.Slot(7, 9)
	var booked struct{ BookAppointment struct{ ID string } }
	s.As("reception", harness.BookMutation, harness.BookingInput(target, d.Doctor, start, end)).Decode(t, &booked)
	r := s.As("labtech", `query($id: ID!) { node(id: $id) { ... on Patient { mrn nationalID } } }`, map[string]any{"id": target})
	harness.Must(t, r.HasCode("FORBIDDEN"), "labtech national ID: %s", harness.Describe(r))

	rows := harness.AuditRows(t, s, map[string]any{"patientId": target})
	byActor := map[string]harness.AuditRow{}
	for _, row := range rows {
		byActor[*row.ActorName+":"+row.Operation] = row
	}
	read, ok := byActor["nurse:node"]
	harness.Must(t, ok && read.Kind == "QUERY" && read.Outcome == "ALLOWED", "nurse read: %+v", rows)
	harness.Must(t, strings.Join(read.Fields, ",") == "Patient.birthDate,Patient.givenName", "fields read: %v", read.Fields)
	harness.Must(t, read.RequestID != nil && strings.HasPrefix(*read.RequestID, "req_") && read.ClientAddr != nil && *read.ClientAddr == "127.0.0.1", "request facts: %+v", read)
	harness.Must(t, strings.Join(read.Roles, ",") == "nurse", "roles: %v", read.Roles)

	book, ok := byActor["reception:bookAppointment"]
	harness.Must(t, ok && book.Kind == "MUTATION" && book.Outcome == "ALLOWED", "booking: %+v", rows)
	harness.Must(t, slices.Contains(book.ObjectIds, booked.BookAppointment.ID), "booked appointment in object IDs: %v", book.ObjectIds)

	denied, ok := byActor["labtech:node"]
	harness.Must(t, ok && denied.Outcome == "DENIED" && slices.Contains(denied.Fields, "Patient.nationalID"), "denied read: %+v", denied)

	// A denied mutation is audited although nothing ran.
	r = s.As("hr", `mutation { registerPatient(input: {givenName: "A", familyName: "B", birthDate: "2000-01-01", sex: MALE}) { patient { id } } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "hr register: %s", harness.Describe(r))
	rows = harness.AuditRows(t, s, map[string]any{"operation": "registerPatient", "outcome": "DENIED"})
	harness.Must(t, len(rows) == 1 && *rows[0].ActorName == "hr", "denied mutation row: %+v", rows)

	// Failed sign-ins name the username tried.
	s.Do("", harness.LoginMutation, map[string]any{"u": "doctor", "p": "wrong"})
	rows = harness.AuditRows(t, s, map[string]any{"operation": "login", "outcome": "FAILED"})
	harness.Must(t, len(rows) == 1 && *rows[0].ActorName == "doctor" && *rows[0].ErrorCode == "UNAUTHENTICATED", "failed login: %+v", rows)

	// Reading the trail is itself on the trail.
	rows = harness.AuditRows(t, s, map[string]any{"operation": "auditEvents"})
	harness.Must(t, len(rows) >= 3, "reads of the audit trail: %d", len(rows))

	// Queries that touch no patient leave no row.
	before := len(harness.AuditRows(t, s, map[string]any{"actorId": byActor["nurse:node"].ActorID}))
	s.As("nurse", `{ departments { totalCount } }`, nil)
	after := len(harness.AuditRows(t, s, map[string]any{"actorId": byActor["nurse:node"].ActorID}))
	harness.Must(t, after == before, "a departments query was audited")
}

func TestAuditTrailIsAppendOnlyAndTamperEvident(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	s.Demo()
	s.As("doctor", `{ patients(first: 3) { edges { node { mrn } } } }`, nil)

	// No API changes the trail: there is no mutation for it, and ent refuses.
	ctx := auth.SystemContext(context.Background())
	_, err := s.App.Store.Client.AuditEvent.Delete().Exec(ctx)
	harness.Must(t, err != nil, "ent deleted audit events")

	_, err = s.App.Trail.Seal(ctx)
	harness.Must(t, err == nil, "seal: %v", err)
	rep, err := s.App.Trail.Verify(ctx, time.Minute)
	harness.Must(t, err == nil && rep.Checked >= 2 && rep.Checkpoints >= 1, "intact trail: %+v, %v", rep, err)

	_, err = s.App.Store.DB.Exec(`UPDATE audit_events SET actor_name = 'someone-else' WHERE seq = 2`)
	harness.Must(t, err == nil, "tamper: %v", err)
	_, err = s.App.Trail.Verify(ctx, time.Minute)
	var broken *audit.BrokenError
	harness.Must(t, asBroken(err, &broken) && broken.Seq == 2, "tampering must be found at row 2: %v", err)
}

func asBroken(err error, target **audit.BrokenError) bool {
	b, ok := err.(*audit.BrokenError)
	if ok {
		*target = b
	}
	return ok
}

// TestAuditFilterRefusesBadInput: an auditor's filter that cannot match
// anything meaningful is refused naming the field, not answered empty.
func TestAuditFilterRefusesBadInput(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	const q = `query($f: AuditEventFilter) { auditEvents(first: 5, filter: $f) { totalCount } }`
	harness.WantBadInput(t, "patientId of another type", s.As("auditor", q, map[string]any{"f": map[string]any{"patientId": "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}), "filter.patientId")
	harness.WantBadInput(t, "actorId of a patient", s.As("auditor", q, map[string]any{"f": map[string]any{"actorId": "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}), "filter.actorId")
	harness.WantBadInput(t, "to before from", s.As("auditor", q, map[string]any{"f": map[string]any{
		"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}}), "filter.to")
	var ok struct{ AuditEvents struct{ TotalCount int } }
	s.As("auditor", q, map[string]any{"f": map[string]any{"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}}).Decode(t, &ok)
}

// TestReadsThatSelectNoPatientAreAudited: a page of clinical rows read
// without asking for their patient still names, on its audit row, every
// patient whose rows were read — field collection selects only the asked
// columns, and the patient's must be among them.
func TestReadsThatSelectNoPatientAreAudited(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	for _, q := range []struct{ operation, doc string }{
		{"clinicalNotes", `{ clinicalNotes(first: 5) { edges { node { id text } } } }`},
		{"labResults", `{ labResults(first: 5) { edges { node { id numericValue } } } }`},
		{"medicationOrders", `{ medicationOrders(first: 5) { edges { node { id drug } } } }`},
		{"encounters", `{ encounters(first: 5) { edges { node { id reason } } } }`},
		{"labOrders", `{ labOrders(first: 5) { edges { node { id clinicalNotes } } } }`},
		// Patient rows nested under a non-patient parent, loaded with it.
		{"staffs", `{ staffs(first: 50) { edges { node { appointments(first: 5) { edges { node { id startAt } } } } } } }`},
	} {
		var page map[string]struct{ Edges []json.RawMessage }
		s.As("doctor", q.doc, nil).Decode(t, &page)
		harness.Must(t, len(page[q.operation].Edges) > 0, "%s: the demo has rows to read", q.operation)
		_, err := s.App.Trail.Seal(context.Background())
		harness.Must(t, err == nil, "seal: %v", err)
		rows := harness.AuditRows(t, s, map[string]any{"operation": q.operation})
		harness.Must(t, len(rows) == 1 && strings.Count(rows[0].PatientIds, "pat_") >= 1,
			"%s read %d rows of patient data: want one audit row naming their patients, got %+v", q.operation, len(page[q.operation].Edges), rows)
	}
}
