package authz

import (
	"context"

	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/intercept"
	"github.com/hmis-dev/hmis/ent/patient"
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

// InstallRowScope adds to client the interceptors that filter every query —
// lists, node(id:), edges, eager loads, exports — to the rows the viewer in
// the query's context may see. Another patient's record then behaves as if
// it did not exist. Every entity that belongs to a patient gets a line here.
func InstallRowScope(client *ent.Client, e *Enforcer) {
	client.Patient.Intercept(intercept.TraversePatient(func(ctx context.Context, q *ent.PatientQuery) error {
		q.Where(patientScoped(ctx, e, patient.ID))
		return nil
	}))
	client.Appointment.Intercept(intercept.TraverseAppointment(func(ctx context.Context, q *ent.AppointmentQuery) error {
		q.Where(patientScoped(ctx, e, appointment.PatientID))
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

// patientScoped returns the predicate that keeps a query to the rows of the
// patients the viewer may see; ofPatient selects one patient's rows.
func patientScoped[P ~func(*sql.Selector)](ctx context.Context, e *Enforcer, ofPatient func(string) P) P {
	v := auth.FromContext(ctx)
	switch e.ScopeOf(v) {
	case AllPatients:
		return func(*sql.Selector) {}
	case OwnRecord:
		return ofPatient(v.PatientID)
	}
	return nothing
}

// nothing matches no row: the fail-closed scope.
func nothing(s *sql.Selector) { s.Where(sql.False()) }
