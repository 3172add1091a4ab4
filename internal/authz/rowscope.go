package authz

import (
	"context"

	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careplan"
	"github.com/hmis-dev/hmis/ent/careplanactivity"
	"github.com/hmis-dev/hmis/ent/careplangoal"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/intercept"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoicediscount"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/auth"
)

// PatientScope says which patients' rows a viewer may see.
type PatientScope int

const (
	NoPatients   PatientScope = iota // fail closed: anonymous, unknown roles, roles without patient access
	OwnRecord                        // a patient: their own record and what belongs to it
	CarePatients                     // a clinician: the patients they have a care relationship with
	AllPatients                      // roles granted AllPatientsObject, and the system
)

// AllPatientsObject is the policy object that lets a role that reads
// patients read every patient's record. It is not a GraphQL field. Roles
// without it (by default doctors and nurses) read only the patients they
// have a care relationship with (see careRelationship); a hospital where
// every clinician sees every patient grants it to them in the policy.
const AllPatientsObject = "Rows.Patient.all"

// PatientRole is the role of patients using the mobile app.
const PatientRole = "patient"

// ScopeOf returns the viewer's patient scope. A staff role that may read
// patients at all sees every patient if the policy grants it
// AllPatientsObject, and otherwise those its member of staff cares for (the
// field guard decides which fields); a patient sees their own record;
// everyone else sees none. A viewer who is no member of staff (an API key)
// in a role limited to care relationships has none, and sees no patient.
func (e *Enforcer) ScopeOf(v *auth.Viewer) PatientScope {
	switch {
	case v == nil:
		return NoPatients
	case v.System:
		return AllPatients
	}
	care := false
	p := e.live.Load()
	for _, role := range v.Roles {
		if role != PatientRole && p.assignable[role] && p.roleAllows(e, role, "Patient.id") {
			if p.roleAllows(e, role, AllPatientsObject) {
				return AllPatients
			}
			care = true
		}
	}
	switch {
	case care && v.StaffID != "":
		return CarePatients
	case v.HasRole(PatientRole) && v.PatientID != "":
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
		if keep := e.RowFilter(auth.FromContext(ctx), q.Type()); keep != nil {
			q.WhereP(keep)
		}
		return nil
	}))
}

// RowFilter returns the predicate that keeps rows of entity typ to those
// the viewer may see, or nil where they may see every row. Queries get it
// from the interceptor InstallRowScope adds; subqueries inside a where
// filter (hasPatientWith …), which no interceptor reaches, get it from
// ScopeFilters. One function, so the two can never disagree.
func (e *Enforcer) RowFilter(v *auth.Viewer, typ string) func(*sql.Selector) {
	if typ == "User" {
		// Administrators and the system see all accounts; everyone else
		// only their own (me, and the user behind their own patient record).
		switch {
		case v == nil:
			return nothing
		case v.System, e.Allows(v, "Query.users"):
			return nil
		}
		return sql.FieldEQ(user.FieldID, v.UserID)
	}
	if typ == "Payslip" {
		return e.payslipRows(v)
	}
	if keep, ok := e.workforceFilter(v, typ); ok {
		return keep
	}
	column, ok := ent.PatientColumn[typ]
	if !ok {
		return nil
	}
	var keep []func(*sql.Selector)
	switch e.ScopeOf(v) {
	case AllPatients:
	case OwnRecord:
		keep = append(keep, sql.FieldEQ(column, v.PatientID))
	case CarePatients:
		keep = append(keep, careRelationship(column, v.StaffID, e.Now().UTC()))
	default:
		return nothing
	}
	if rule, ok := draftRows[typ]; ok && !e.Allows(v, DraftsObject(rule.drafts)) {
		keep = append(keep, rule.final)
	}
	switch len(keep) {
	case 0:
		return nil
	case 1:
		return keep[0]
	}
	return func(s *sql.Selector) {
		for _, p := range keep {
			p(s)
		}
	}
}

// DraftsObject is the policy object that lets a role see the rows of
// entity typ that are not final yet: "Drafts.ClinicalNote" for draft notes,
// "Drafts.LabResult" for results not yet verified. It is not a GraphQL
// field. Without it a role — patients, integrators, billing — sees such
// rows only once signed, active or verified, because until then they may
// still be wrong.
func DraftsObject(typ string) string { return "Drafts." + typ }

// draftRule says which rows of an entity are final, and whose drafts they
// belong to: a care plan's goals are as unfinished as the plan.
type draftRule struct {
	drafts string // the entity whose Drafts object lets a role see the rest
	final  func(*sql.Selector)
}

// draftRows selects, per entity that has drafts or belongs to one, the
// rows that are final.
var draftRows = map[string]draftRule{
	"ClinicalNote": {"ClinicalNote", sql.FieldNEQ(clinicalnote.FieldStatus, clinicalnote.StatusDRAFT.String())},
	"CarePlan":     {"CarePlan", sql.FieldNEQ(careplan.FieldStatus, careplan.StatusDRAFT.String())},
	// A goal or an activity of a draft plan is a draft too.
	"CarePlanGoal":     {"CarePlan", careplangoal.HasCarePlanWith(careplan.StatusNEQ(careplan.StatusDRAFT))},
	"CarePlanActivity": {"CarePlan", careplanactivity.HasCarePlanWith(careplan.StatusNEQ(careplan.StatusDRAFT))},
	// Released results only: not ENTERED (awaiting verification), not
	// DISCARDED (entered on a specimen the lab then rejected).
	"LabResult": {"LabResult", sql.FieldIn(labresult.FieldStatus, labresult.StatusVERIFIED.String(), labresult.StatusCORRECTED.String())},
	// An invoice is the patient's once issued; a discount once approved.
	// Numbered means issued: a draft voided before it was issued stays
	// the clerk's.
	"Invoice":         {"Invoice", sql.FieldNotNull(invoice.FieldNumber)},
	"InvoiceDiscount": {"Invoice", sql.FieldEQ(invoicediscount.FieldStatus, invoicediscount.StatusAPPROVED.String())},
}

// nothing matches no row: the fail-closed scope.
func nothing(s *sql.Selector) { s.Where(sql.False()) }
