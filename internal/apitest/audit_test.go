package apitest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
)

type auditRow struct {
	Seq        *int // null until the sealer has chained the row
	Operation  string
	Kind       string
	Outcome    string
	ErrorCode  *string
	ActorID    *string
	ActorName  *string
	Roles      []string
	ObjectIds  []string
	PatientIds string
	Fields     []string
	ClientAddr *string
	RequestID  *string
}

func auditRows(t *testing.T, s *server, filter map[string]any) []auditRow {
	t.Helper()
	var out struct {
		AuditEvents struct{ Edges []struct{ Node auditRow } }
	}
	s.as("auditor", `query($f: AuditEventFilter) { auditEvents(first: 100, filter: $f) { edges { node {
	  seq operation kind outcome errorCode actorID actorName roles objectIds patientIds fields clientAddr requestID } } } }`,
		map[string]any{"f": filter}).decode(t, &out)
	rows := make([]auditRow, len(out.AuditEvents.Edges))
	for i, e := range out.AuditEvents.Edges {
		rows[i] = e.Node
	}
	return rows
}

func TestReadsAndWritesOfPatientDataAreAudited(t *testing.T) {
	s := newServer(t)
	d := s.demo() // the admin's read is audited too
	target := d.patients[2]

	s.as("nurse", `query($id: ID!) { node(id: $id) { ... on Patient { givenName birthDate } } }`, map[string]any{"id": target}).decode(t, &struct{}{})
	start, end := slot(7, 9)
	var booked struct{ BookAppointment struct{ ID string } }
	s.as("reception", bookMutation, bookingInput(target, d.doctor, start, end)).decode(t, &booked)
	r := s.as("labtech", `query($id: ID!) { node(id: $id) { ... on Patient { mrn nationalID } } }`, map[string]any{"id": target})
	must(t, r.hasCode("FORBIDDEN"), "labtech national ID: %s", describe(r))

	rows := auditRows(t, s, map[string]any{"patientId": target})
	byActor := map[string]auditRow{}
	for _, row := range rows {
		byActor[*row.ActorName+":"+row.Operation] = row
	}
	read, ok := byActor["nurse:node"]
	must(t, ok && read.Kind == "QUERY" && read.Outcome == "ALLOWED", "nurse read: %+v", rows)
	must(t, strings.Join(read.Fields, ",") == "Patient.birthDate,Patient.givenName", "fields read: %v", read.Fields)
	must(t, read.RequestID != nil && strings.HasPrefix(*read.RequestID, "req_") && read.ClientAddr != nil && *read.ClientAddr == "127.0.0.1", "request facts: %+v", read)
	must(t, strings.Join(read.Roles, ",") == "nurse", "roles: %v", read.Roles)

	book, ok := byActor["reception:bookAppointment"]
	must(t, ok && book.Kind == "MUTATION" && book.Outcome == "ALLOWED", "booking: %+v", rows)
	must(t, contains(book.ObjectIds, booked.BookAppointment.ID), "booked appointment in object IDs: %v", book.ObjectIds)

	denied, ok := byActor["labtech:node"]
	must(t, ok && denied.Outcome == "DENIED" && contains(denied.Fields, "Patient.nationalID"), "denied read: %+v", denied)

	// A denied mutation is audited although nothing ran.
	r = s.as("hr", `mutation { registerPatient(input: {givenName: "A", familyName: "B", birthDate: "2000-01-01", sex: MALE}) { patient { id } } }`, nil)
	must(t, r.hasCode("FORBIDDEN"), "hr register: %s", describe(r))
	rows = auditRows(t, s, map[string]any{"operation": "registerPatient", "outcome": "DENIED"})
	must(t, len(rows) == 1 && *rows[0].ActorName == "hr", "denied mutation row: %+v", rows)

	// Failed sign-ins name the username tried.
	s.do("", loginMutation, map[string]any{"u": "doctor", "p": "wrong"})
	rows = auditRows(t, s, map[string]any{"operation": "login", "outcome": "FAILED"})
	must(t, len(rows) == 1 && *rows[0].ActorName == "doctor" && *rows[0].ErrorCode == "UNAUTHENTICATED", "failed login: %+v", rows)

	// Reading the trail is itself on the trail.
	rows = auditRows(t, s, map[string]any{"operation": "auditEvents"})
	must(t, len(rows) >= 3, "reads of the audit trail: %d", len(rows))

	// Queries that touch no patient leave no row.
	before := len(auditRows(t, s, map[string]any{"actorId": byActor["nurse:node"].ActorID}))
	s.as("nurse", `{ departments { totalCount } }`, nil)
	after := len(auditRows(t, s, map[string]any{"actorId": byActor["nurse:node"].ActorID}))
	must(t, after == before, "a departments query was audited")
}

func TestAuditTrailIsAppendOnlyAndTamperEvident(t *testing.T) {
	s := newServer(t)
	s.demo()
	s.as("doctor", `{ patients(first: 3) { edges { node { mrn } } } }`, nil)

	// No API changes the trail: there is no mutation for it, and ent refuses.
	ctx := auth.SystemContext(context.Background())
	_, err := s.app.Store.Client.AuditEvent.Delete().Exec(ctx)
	must(t, err != nil, "ent deleted audit events")

	_, err = s.app.Trail.Seal(ctx)
	must(t, err == nil, "seal: %v", err)
	rep, err := s.app.Trail.Verify(ctx, time.Minute)
	must(t, err == nil && rep.Checked >= 2 && rep.Checkpoints >= 1, "intact trail: %+v, %v", rep, err)

	_, err = s.app.Store.DB.Exec(`UPDATE audit_events SET actor_name = 'someone-else' WHERE seq = 2`)
	must(t, err == nil, "tamper: %v", err)
	_, err = s.app.Trail.Verify(ctx, time.Minute)
	var broken *audit.BrokenError
	must(t, asBroken(err, &broken) && broken.Seq == 2, "tampering must be found at row 2: %v", err)
}

func asBroken(err error, target **audit.BrokenError) bool {
	b, ok := err.(*audit.BrokenError)
	if ok {
		*target = b
	}
	return ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
