package fhir

import (
	"strings"

	"entgo.io/ent/dialect/sql"
	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/insurancepolicy"
	"github.com/hmis-dev/hmis/ent/laborder"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/observation"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/ent/problem"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/audit"
)

// The sources, by the GraphQL coordinates that reach them: a role reads a
// FHIR type exactly when it could read the same rows through GraphQL.
var (
	srcPatient      = &source{"Patient", []string{"Query.patients"}}
	srcStaff        = &source{"Staff", []string{"Query.staffs"}}
	srcEncounter    = &source{"Encounter", []string{"Query.encounters"}}
	srcProblem      = &source{"Problem", []string{"Query.patients", "Patient.problems"}}
	srcAllergy      = &source{"Allergy", []string{"Query.patients", "Patient.allergies"}}
	srcVital        = &source{"Observation", []string{"Query.patients", "Patient.observations"}}
	srcLabResult    = &source{"LabResult", []string{"Query.labResults"}}
	srcMedication   = &source{"MedicationOrder", []string{"Query.medicationOrders"}}
	srcDispensing   = &source{"Dispensing", []string{"Query.dispensings"}}
	srcLabOrder     = &source{"LabOrder", []string{"Query.labOrders"}}
	srcAppointment  = &source{"Appointment", []string{"Query.appointments"}}
	srcInsurancePol = &source{"InsurancePolicy", []string{"Query.patients", "Patient.insurancePolicies"}}
)

const (
	tokenParam     = "token"
	referenceParam = "reference"
	dateParam      = "date"
)

var patientParams = map[string]string{"patient": referenceParam, "subject": referenceParam}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// kinds are the served resource types, by name.
var kinds = map[string]*kind{
	"Patient":            {name: "Patient", sources: []*source{srcPatient}, params: map[string]string{"identifier": tokenParam}, load: loadPatients},
	"Practitioner":       {name: "Practitioner", sources: []*source{srcStaff}, params: map[string]string{"identifier": tokenParam}, load: loadPractitioners},
	"Encounter":          {name: "Encounter", sources: []*source{srcEncounter}, params: with(patientParams, "date", dateParam), load: loadEncounters},
	"Condition":          {name: "Condition", sources: []*source{srcProblem}, params: with(patientParams, "code", tokenParam), load: loadConditions},
	"AllergyIntolerance": {name: "AllergyIntolerance", sources: []*source{srcAllergy}, params: patientParams, load: loadAllergies},
	"Observation": {name: "Observation", sources: []*source{srcVital, srcLabResult},
		params: with(patientParams, "code", tokenParam, "date", dateParam, "category", tokenParam), load: loadObservations},
	"MedicationRequest":  {name: "MedicationRequest", sources: []*source{srcMedication}, params: patientParams, load: loadMedicationRequests},
	"MedicationDispense": {name: "MedicationDispense", sources: []*source{srcDispensing}, params: patientParams, load: loadDispenses},
	"DiagnosticReport":   {name: "DiagnosticReport", sources: []*source{srcLabOrder}, params: with(patientParams, "date", dateParam), load: loadReports},
	"Appointment":        {name: "Appointment", sources: []*source{srcAppointment}, params: with(patientParams, "date", dateParam), load: loadAppointments},
	"Coverage":           {name: "Coverage", sources: []*source{srcInsurancePol}, params: with(patientParams, "beneficiary", referenceParam), load: loadCoverages},
}

// everythingOrder is the order of a patient's $everything, after the
// patient: the types that belong to one patient.
var everythingOrder = []string{"Encounter", "Condition", "AllergyIntolerance", "Observation", "MedicationRequest",
	"MedicationDispense", "DiagnosticReport", "Appointment", "Coverage"}

// kindNames lists the served types in a stable order.
func kindNames() []string {
	return append([]string{"Patient", "Practitioner"}, everythingOrder...)
}

func resourceType(v any) string {
	switch v.(type) {
	case fm.Patient:
		return "Patient"
	case fm.Practitioner:
		return "Practitioner"
	case fm.Encounter:
		return "Encounter"
	case fm.Condition:
		return "Condition"
	case fm.AllergyIntolerance:
		return "AllergyIntolerance"
	case fm.Observation:
		return "Observation"
	case fm.MedicationRequest:
		return "MedicationRequest"
	case fm.MedicationDispense:
		return "MedicationDispense"
	case fm.DiagnosticReport:
		return "DiagnosticReport"
	case fm.Appointment:
		return "Appointment"
	case fm.Coverage:
		return "Coverage"
	}
	return ""
}

// gate asks the policy about the GraphQL coordinates of one type's
// elements, and notes each one emitted for the audit row, as the field
// guard does for a GraphQL selection.
type gate struct {
	q   *request
	typ string
}

func (q *request) gate(typ string) gate { return gate{q: q, typ: typ} }

// ok reports whether the element from field may be emitted, noting it.
func (g gate) ok(field string) bool {
	if !g.q.decider.Allows(g.typ + "." + field) {
		return false
	}
	audit.NoteField(g.q.ctx, g.typ, field)
	return true
}

// need reports whether every field may be read: those a resource cannot
// be valid FHIR without. A resource missing one is not returned.
func (g gate) need(fields ...string) bool {
	for _, f := range fields {
		if !g.q.decider.Allows(g.typ + "." + f) {
			return false
		}
	}
	for _, f := range fields {
		audit.NoteField(g.q.ctx, g.typ, f)
	}
	return true
}

// filters are the common criteria as predicates on any table: the IDs of
// prefix asked for, the patient, the date range on dateCol, and the page.
func filters(p *params, prefix, patientCol, dateCol string) []func(*sql.Selector) {
	var out []func(*sql.Selector)
	if len(p.ids) > 0 {
		var ids []string
		for _, id := range p.ids {
			if strings.HasPrefix(id, prefix+"_") {
				ids = append(ids, id)
			}
		}
		if len(ids) == 0 {
			return []func(*sql.Selector){none}
		}
		out = append(out, sql.FieldIn("id", ids...))
	}
	if p.patient != "" {
		if patientCol == "" {
			return []func(*sql.Selector){none}
		}
		out = append(out, sql.FieldEQ(patientCol, p.patient))
	}
	if p.after != "" {
		out = append(out, sql.FieldGT("id", p.after))
	}
	if dateCol != "" && p.from != nil {
		out = append(out, sql.FieldGTE(dateCol, *p.from))
	}
	if dateCol != "" && p.to != nil {
		out = append(out, sql.FieldLT(dateCol, *p.to))
	}
	return out
}

func none(s *sql.Selector) { s.Where(sql.False()) }

// preds converts the criteria to one entity's predicate type.
func preds[P ~func(*sql.Selector)](fs []func(*sql.Selector)) []P {
	out := make([]P, len(fs))
	for i, f := range fs {
		out[i] = P(f)
	}
	return out
}

func prefixOf(typ string) string { return ent.PrefixByType[typ] }

func loadPatients(q *request, p *params) ([]item, error) {
	qq := q.h.d.Client.Patient.Query().Where(preds[predicate.Patient](filters(p, prefixOf("Patient"), patient.FieldID, ""))...)
	if p.identifier != nil {
		qq.Where(patient.MrnIn(p.identifier...))
	}
	rows, err := qq.Order(patient.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.patient(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

func loadPractitioners(q *request, p *params) ([]item, error) {
	if p.patient != "" {
		return nil, nil
	}
	qq := q.h.d.Client.Staff.Query().Where(preds[predicate.Staff](filters(p, prefixOf("Staff"), "", ""))...)
	if p.identifier != nil {
		qq.Where(staff.LicenceNumberIn(p.identifier...))
	}
	rows, err := qq.Order(staff.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.practitioner(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

func loadEncounters(q *request, p *params) ([]item, error) {
	rows, err := q.h.d.Client.Encounter.Query().
		Where(preds[predicate.Encounter](filters(p, prefixOf("Encounter"), encounter.FieldPatientID, encounter.FieldStartedAt))...).
		WithAdmission().Order(encounter.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.encounter(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

func loadConditions(q *request, p *params) ([]item, error) {
	qq := q.h.d.Client.Problem.Query().Where(preds[predicate.Problem](filters(p, prefixOf("Problem"), problem.FieldPatientID, ""))...)
	if p.codes != nil {
		qq.Where(problem.Icd10CodeIn(p.codes...))
	}
	rows, err := qq.Order(problem.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.condition(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

func loadAllergies(q *request, p *params) ([]item, error) {
	rows, err := q.h.d.Client.Allergy.Query().Where(preds[predicate.Allergy](filters(p, prefixOf("Allergy"), allergy.FieldPatientID, ""))...).
		Order(allergy.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.allergy(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

// loadObservations reads vital signs and lab results, each from its own
// table if the viewer may read it, one statement each (plus the lab
// results' items and tests, one each).
func loadObservations(q *request, p *params) ([]item, error) {
	var out []item
	if q.sourceAllowed(srcVital) && (p.category == "" || p.category == "vital-signs") {
		qq := q.h.d.Client.Observation.Query().
			Where(preds[predicate.Observation](filters(p, prefixOf("Observation"), observation.FieldPatientID, observation.FieldEffectiveAt))...)
		if p.codes != nil {
			qq.Where(observation.CodeIn(p.codes...))
		}
		rows, err := qq.Order(observation.ByID()).Limit(p.limit + 1).All(q.ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if res, ok := q.vital(r); ok {
				out = append(out, item{r.ID, res})
			}
		}
	}
	if q.sourceAllowed(srcLabResult) && (p.category == "" || p.category == "laboratory") {
		qq := q.h.d.Client.LabResult.Query().
			Where(preds[predicate.LabResult](filters(p, prefixOf("LabResult"), labresult.FieldPatientID, labresult.FieldEnteredAt))...)
		if p.codes != nil {
			qq.Where(labresult.HasItemWith(laborderitem.HasTestWith(labtest.CodeIn(p.codes...))))
		}
		rows, err := qq.WithItem(func(iq *ent.LabOrderItemQuery) { iq.WithTest() }).
			Order(labresult.ByID()).Limit(p.limit + 1).All(q.ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			if res, ok := q.labObservation(r); ok {
				out = append(out, item{r.ID, res})
			}
		}
	}
	return out, nil
}

func loadMedicationRequests(q *request, p *params) ([]item, error) {
	rows, err := q.h.d.Client.MedicationOrder.Query().
		Where(preds[predicate.MedicationOrder](filters(p, prefixOf("MedicationOrder"), medicationorder.FieldPatientID, ""))...).
		Order(medicationorder.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.medicationRequest(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

func loadDispenses(q *request, p *params) ([]item, error) {
	rows, err := q.h.d.Client.Dispensing.Query().
		Where(preds[predicate.Dispensing](filters(p, prefixOf("Dispensing"), dispensing.FieldPatientID, ""))...).
		WithDrug().Order(dispensing.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.dispense(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

func loadReports(q *request, p *params) ([]item, error) {
	rows, err := q.h.d.Client.LabOrder.Query().
		Where(preds[predicate.LabOrder](filters(p, prefixOf("LabOrder"), laborder.FieldPatientID, laborder.FieldOrderedAt))...).
		WithItems(func(iq *ent.LabOrderItemQuery) { iq.WithTest().WithResults() }).
		Order(laborder.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.report(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

func loadAppointments(q *request, p *params) ([]item, error) {
	rows, err := q.h.d.Client.Appointment.Query().
		Where(preds[predicate.Appointment](filters(p, prefixOf("Appointment"), appointment.FieldPatientID, appointment.FieldStartAt))...).
		Order(appointment.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.appointment(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}

func loadCoverages(q *request, p *params) ([]item, error) {
	rows, err := q.h.d.Client.InsurancePolicy.Query().
		Where(preds[predicate.InsurancePolicy](filters(p, prefixOf("InsurancePolicy"), insurancepolicy.FieldPatientID, ""))...).
		Order(insurancepolicy.ByID()).Limit(p.limit + 1).All(q.ctx)
	if err != nil {
		return nil, err
	}
	var out []item
	for _, r := range rows {
		if res, ok := q.coverage(r); ok {
			out = append(out, item{r.ID, res})
		}
	}
	return out, nil
}
