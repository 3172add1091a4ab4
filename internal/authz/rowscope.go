package authz

import (
	"context"

	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careplan"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/intercept"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/auth"
)

// PatientScope says which patients' rows a viewer may see.
type PatientScope int

const (
	NoPatients  PatientScope = iota // fail closed: anonymous, unknown roles, roles without patient access
	OwnRecord                       // a patient: their own record and what belongs to it
	AllPatients                     // staff whose role reads patient data, and the system
)

// PatientRole is the role of patients using the mobile app.
const PatientRole = "patient"

// ScopeOf returns the viewer's patient scope. Staff roles that may read
// patients at all see every patient (the field guard decides which fields);
// a patient sees their own record; everyone else sees none.
func (e *Enforcer) ScopeOf(v *auth.Viewer) PatientScope {
	switch {
	case v == nil:
		return NoPatients
	case v.System:
		return AllPatients
	}
	for _, role := range v.Roles {
		if role != PatientRole && e.assignable[role] && e.RoleAllows(role, "Patient.id") {
			return AllPatients
		}
	}
	if v.HasRole(PatientRole) && v.PatientID != "" {
		return OwnRecord
	}
	return NoPatients
}

// InstallRowScope adds to client the interceptor that filters every query —
// lists, node(id:), edges, eager loads, exports — to the rows the viewer in
// the query's context may see. Another patient's data then behaves as if it
// did not exist. It covers every entity in ent.PatientColumn, which code
// generation fills with each entity that has a patient_id field, so a new
// kind of patient data is scoped from the moment it exists.
func InstallRowScope(client *ent.Client, e *Enforcer) {
	client.Intercept(intercept.TraverseFunc(func(ctx context.Context, q intercept.Query) error {
		column, ok := ent.PatientColumn[q.Type()]
		if !ok {
			return nil
		}
		v := auth.FromContext(ctx)
		switch e.ScopeOf(v) {
		case AllPatients:
		case OwnRecord:
			q.WhereP(sql.FieldEQ(column, v.PatientID))
		default:
			q.WhereP(nothing)
			return nil
		}
		if final, ok := draftRows[q.Type()]; ok && !e.Allows(v, DraftsObject(q.Type())) {
			q.WhereP(final)
		}
		return nil
	}))
	// Users: administrators and the system see all accounts; everyone else
	// only their own (me, and the user behind their own patient record).
	client.User.Intercept(intercept.TraverseUser(func(ctx context.Context, q *ent.UserQuery) error {
		v := auth.FromContext(ctx)
		switch {
		case v == nil:
			q.Where(nothing)
		case v.System, e.Allows(v, "Query.users"):
		default:
			q.Where(user.ID(v.UserID))
		}
		return nil
	}))
}

// DraftsObject is the policy object that lets a role see the rows of
// entity typ that are not final yet: "Drafts.ClinicalNote" for draft notes,
// "Drafts.LabResult" for results not yet verified. It is not a GraphQL
// field. Without it a role — patients, integrators, billing — sees such
// rows only once signed, active or verified, because until then they may
// still be wrong.
func DraftsObject(typ string) string { return "Drafts." + typ }

// draftRows selects, per entity that has drafts, the rows that are final.
var draftRows = map[string]func(*sql.Selector){
	"ClinicalNote": sql.FieldNEQ(clinicalnote.FieldStatus, clinicalnote.StatusDRAFT.String()),
	"CarePlan":     sql.FieldNEQ(careplan.FieldStatus, careplan.StatusDRAFT.String()),
	// Released results only: not ENTERED (awaiting verification), not
	// DISCARDED (entered on a specimen the lab then rejected).
	"LabResult": sql.FieldIn(labresult.FieldStatus, labresult.StatusVERIFIED.String(), labresult.StatusCORRECTED.String()),
}

// nothing matches no row: the fail-closed scope.
func nothing(s *sql.Selector) { s.Where(sql.False()) }
