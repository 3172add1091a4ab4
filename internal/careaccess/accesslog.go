package careaccess

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"entgo.io/contrib/entgql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/apikey"
	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/ent/breakglassaccess"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// AccessActorKind says who an access log entry's actor is.
type AccessActorKind string

const (
	ActorStaff          AccessActorKind = "STAFF"
	ActorServiceAccount AccessActorKind = "SERVICE_ACCOUNT"
	ActorPatient        AccessActorKind = "PATIENT"
	ActorSystem         AccessActorKind = "SYSTEM"
)

// AccessLogEntry is one audited touch of a patient's record, as the
// patient or the privacy officer is shown it: who, when, which part, and
// whether under break-the-glass. It says nothing of other patients the
// same request touched.
type AccessLogEntry struct {
	ID         string
	OccurredAt time.Time
	ActorKind  AccessActorKind
	ActorName  string
	StaffKind  *staff.Kind
	Roles      []string
	Operation  string
	Fields     []string
	BreakGlass bool
}

// AccessLogEdge and AccessLogConnection page through a patient's log.
type AccessLogEdge struct {
	Node   *AccessLogEntry
	Cursor entgql.Cursor[string]
}

type AccessLogConnection struct {
	Edges      []*AccessLogEdge
	PageInfo   entgql.PageInfo[string]
	TotalCount int
}

// aboutPatient keeps the audit rows that touched the patient's data.
func aboutPatient(patientID string) predicate.AuditEvent {
	// The column holds ",id1,id2,": the commas keep one ID from matching
	// inside another.
	return auditevent.PatientIdsContains("," + patientID + ",")
}

// MyAccessLog pages, newest first, through the audit rows that touched the
// viewer's own record, except the viewer's own. Only a patient has one.
func (s *Service) MyAccessLog(ctx context.Context, after *entgql.Cursor[string], first *int) (*AccessLogConnection, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.PatientID == "" || v.UserID == "" {
		// Only a patient signed in to the app has a record of their own.
		return &AccessLogConnection{Edges: []*AccessLogEdge{}}, nil
	}
	conn, err := s.store.Client.AuditEvent.Query().
		Where(aboutPatient(v.PatientID), auditevent.ActorIDNEQ(v.UserID)).
		Paginate(ctx, after, first, nil, nil, ent.WithAuditEventOrder(&ent.AuditEventOrder{
			Field: ent.AuditEventOrderFieldOccurredAt, Direction: entgql.OrderDirectionDesc,
		}))
	if err != nil {
		return nil, err
	}
	// Paginate reads only the columns the GraphQL selection names, and an
	// entry's fields are not the row's: read the page's rows whole.
	ids := make([]string, len(conn.Edges))
	for i, e := range conn.Edges {
		ids[i] = e.Node.ID
	}
	whole, err := s.store.Client.AuditEvent.Query().Where(auditevent.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*ent.AuditEvent, len(whole))
	for _, r := range whole {
		byID[r.ID] = r
	}
	rows := make([]*ent.AuditEvent, len(ids))
	for i, id := range ids {
		if rows[i] = byID[id]; rows[i] == nil {
			return nil, fmt.Errorf("careaccess: audit row %s vanished", id)
		}
	}
	entries, err := s.entries(ctx, v.PatientID, v.UserID, rows)
	if err != nil {
		return nil, err
	}
	out := &AccessLogConnection{PageInfo: conn.PageInfo, TotalCount: conn.TotalCount}
	for i, e := range conn.Edges {
		out.Edges = append(out.Edges, &AccessLogEdge{Node: entries[i], Cursor: e.Cursor})
	}
	return out, nil
}

// maxReads bounds the reads listed for one access: a review screen, not an export.
const maxReads = 500

// Reads returns what the access's clinician read or changed of the
// patient's record while it ran, oldest first.
func (s *Service) Reads(ctx context.Context, a *ent.BreakGlassAccess) ([]*AccessLogEntry, error) {
	// A list loads only the columns its GraphQL selection names, and the
	// account is never one of them: read the access whole.
	a, err := s.store.Client.BreakGlassAccess.Get(auth.SystemContext(ctx), a.ID)
	if err != nil {
		return nil, err
	}
	rows, err := s.store.Client.AuditEvent.Query().Where(
		aboutPatient(a.PatientID),
		auditevent.ActorID(a.UserID),
		auditevent.OccurredAtGTE(a.CreatedAt),
		auditevent.OccurredAtLT(a.ExpiresAt),
	).Order(ent.Asc(auditevent.FieldOccurredAt), ent.Asc(auditevent.FieldID)).Limit(maxReads).All(ctx)
	if err != nil {
		return nil, err
	}
	return s.entries(ctx, a.PatientID, "", rows)
}

// entries describes audit rows for patientID's eyes; self is the patient's
// own account, if any.
func (s *Service) entries(ctx context.Context, patientID, self string, rows []*ent.AuditEvent) ([]*AccessLogEntry, error) {
	// Who the actors are and which accesses the rows ran under are read
	// past row scope: the accounts and staff are not the viewer's to list,
	// and only what is said of them here leaves.
	sys := auth.SystemContext(ctx)
	var users, keys, accesses []string
	for _, r := range rows {
		switch {
		case globalid.Valid(r.ActorID, ent.PrefixByType[ent.TypeUser]):
			users = append(users, r.ActorID)
		case globalid.Valid(r.ActorID, ent.PrefixByType[ent.TypeAPIKey]):
			keys = append(keys, r.ActorID)
		}
		for _, id := range r.ObjectIds {
			if globalid.Valid(id, ent.PrefixByType[ent.TypeBreakGlassAccess]) {
				accesses = append(accesses, id)
			}
		}
	}
	accounts := map[string]*ent.User{}
	if len(users) > 0 {
		us, err := s.store.Client.User.Query().Where(user.IDIn(users...)).WithStaff().WithPatient().All(sys)
		if err != nil {
			return nil, err
		}
		for _, u := range us {
			accounts[u.ID] = u
		}
	}
	keyNames := map[string]string{}
	if len(keys) > 0 {
		ks, err := s.store.Client.APIKey.Query().Where(apikey.IDIn(keys...)).All(sys)
		if err != nil {
			return nil, err
		}
		for _, k := range ks {
			keyNames[k.ID] = k.Name
		}
	}
	// An access to another patient, held by the same clinician in the same
	// request, does not make this patient's entry a break-the-glass one.
	ours := map[string]bool{}
	if len(accesses) > 0 {
		ids, err := s.store.Client.BreakGlassAccess.Query().
			Where(breakglassaccess.IDIn(accesses...), breakglassaccess.PatientID(patientID)).IDs(sys)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			ours[id] = true
		}
	}
	out := make([]*AccessLogEntry, len(rows))
	for i, r := range rows {
		e := &AccessLogEntry{ID: r.ID, OccurredAt: r.OccurredAt, ActorName: r.ActorName, Roles: r.Roles, Operation: r.Operation}
		if e.Roles == nil {
			e.Roles = []string{}
		}
		switch u := accounts[r.ActorID]; {
		case r.ActorID == audit.SystemActor:
			e.ActorKind, e.ActorName = ActorSystem, "system"
		case keyNames[r.ActorID] != "":
			e.ActorKind, e.ActorName = ActorServiceAccount, keyNames[r.ActorID]
		case globalid.Valid(r.ActorID, ent.PrefixByType[ent.TypeAPIKey]):
			e.ActorKind = ActorServiceAccount
		case u != nil && u.Edges.Staff != nil:
			e.ActorKind = ActorStaff
			e.ActorName = u.Edges.Staff.GivenName + " " + u.Edges.Staff.FamilyName
			kind := u.Edges.Staff.Kind
			e.StaffKind = &kind
		case u != nil && u.Edges.Patient != nil && u.Edges.Patient.ID == patientID, r.ActorID == self && self != "":
			e.ActorKind = ActorPatient
		default:
			e.ActorKind = ActorStaff
		}
		e.Fields = partsRead(r)
		for _, id := range r.ObjectIds {
			e.BreakGlass = e.BreakGlass || ours[id]
		}
		out[i] = e
	}
	return out, nil
}

// partsRead names which parts of a record a row touched: the fields the
// API resolved or was refused, or where a surface resolves no fields (a
// PDF report) the kinds of objects it names.
func partsRead(r *ent.AuditEvent) []string {
	parts := slices.Clone(r.Fields)
	if len(parts) == 0 {
		for _, t := range r.ObjectTypes {
			if t != ent.TypeBreakGlassAccess {
				parts = append(parts, t)
			}
		}
	}
	if parts == nil {
		parts = []string{}
	}
	slices.SortFunc(parts, strings.Compare)
	return slices.Compact(parts)
}
