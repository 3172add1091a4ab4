package fhir

import (
	"strconv"
	"strings"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/insurancepolicy"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/observation"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/problem"
	"github.com/hmis-dev/hmis/internal/audit"
)

// Each mapping reads only elements whose GraphQL coordinate the viewer's
// role may read (gate.ok), and returns false for a row it may not return
// at all: its id, or an element FHIR requires, is not readable.

func (q *request) patient(r *ent.Patient) (any, bool) {
	g := q.gate("Patient")
	if !g.need("id") {
		return nil, false
	}
	p := fm.Patient{Id: str(fhirID(r.ID))}
	if g.ok("mrn") {
		p.Identifier = append(p.Identifier, fm.Identifier{Use: ptr(fm.IdentifierUseUsual),
			Type:   &fm.CodeableConcept{Coding: []fm.Coding{coding("http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical record number")}},
			System: str(q.h.d.MRNSystem), Value: str(r.Mrn)})
	}
	if r.NationalID != nil && g.ok("nationalID") {
		p.Identifier = append(p.Identifier, fm.Identifier{Use: ptr(fm.IdentifierUseOfficial), System: str(systemNationalID), Value: r.NationalID})
	}
	if g.ok("status") {
		p.Active = ptr(r.Status == patient.StatusACTIVE)
		if r.MergedIntoID != nil && g.ok("mergedIntoID") {
			p.Link = append(p.Link, fm.PatientLink{Other: *ref("Patient", *r.MergedIntoID), Type: fm.LinkTypeReplacedBy})
		}
	}
	name := fm.HumanName{Use: ptr(fm.NameUseOfficial)}
	if g.ok("familyName") {
		name.Family = str(r.FamilyName)
	}
	if g.ok("givenName") {
		name.Given = []string{r.GivenName}
	}
	if name.Family != nil || name.Given != nil {
		p.Name = []fm.HumanName{name}
	}
	if g.ok("sex") {
		p.Gender = ptr(map[patient.Sex]fm.AdministrativeGender{
			patient.SexFEMALE: fm.AdministrativeGenderFemale, patient.SexMALE: fm.AdministrativeGenderMale,
			patient.SexOTHER: fm.AdministrativeGenderOther, patient.SexUNKNOWN: fm.AdministrativeGenderUnknown,
		}[r.Sex])
	}
	if g.ok("birthDate") {
		p.BirthDate = date(r.BirthDate)
	}
	if r.Phone != nil && g.ok("phone") {
		p.Telecom = append(p.Telecom, fm.ContactPoint{System: ptr(fm.ContactPointSystemPhone), Value: r.Phone})
	}
	if r.Email != nil && g.ok("email") {
		p.Telecom = append(p.Telecom, fm.ContactPoint{System: ptr(fm.ContactPointSystemEmail), Value: r.Email})
	}
	var a fm.Address
	if r.AddressLine != nil && g.ok("addressLine") {
		a.Line = []string{*r.AddressLine}
	}
	if r.City != nil && g.ok("city") {
		a.City = r.City
	}
	if r.Region != nil && g.ok("region") {
		a.State = r.Region
	}
	if r.PostalCode != nil && g.ok("postalCode") {
		a.PostalCode = r.PostalCode
	}
	if r.Country != nil && g.ok("country") {
		a.Country = r.Country
	}
	if a.Line != nil || a.City != nil || a.State != nil || a.PostalCode != nil || a.Country != nil {
		p.Address = []fm.Address{a}
	}
	if r.PreferredLanguage != nil && g.ok("preferredLanguage") {
		p.Communication = []fm.PatientCommunication{{Language: concept("urn:ietf:bcp:47", *r.PreferredLanguage, ""), Preferred: ptr(true)}}
	}
	return p, true
}

func (q *request) practitioner(r *ent.Staff) (any, bool) {
	g := q.gate("Staff")
	if !g.need("id") {
		return nil, false
	}
	p := fm.Practitioner{Id: str(fhirID(r.ID))}
	if r.LicenceNumber != nil && g.ok("licenceNumber") {
		p.Identifier = []fm.Identifier{{System: str(systemLicence), Value: r.LicenceNumber}}
	}
	if g.ok("active") {
		p.Active = ptr(r.Active)
	}
	name := fm.HumanName{}
	if g.ok("familyName") {
		name.Family = str(r.FamilyName)
	}
	if g.ok("givenName") {
		name.Given = []string{r.GivenName}
	}
	if name.Family != nil || name.Given != nil {
		p.Name = []fm.HumanName{name}
	}
	if r.Phone != nil && g.ok("phone") {
		p.Telecom = append(p.Telecom, fm.ContactPoint{System: ptr(fm.ContactPointSystemPhone), Value: r.Phone})
	}
	if r.Email != nil && g.ok("email") {
		p.Telecom = append(p.Telecom, fm.ContactPoint{System: ptr(fm.ContactPointSystemEmail), Value: r.Email})
	}
	return p, true
}

func (q *request) encounter(r *ent.Encounter) (any, bool) {
	g := q.gate("Encounter")
	if !g.need("id", "status", "type") {
		return nil, false
	}
	e := fm.Encounter{Id: str(fhirID(r.ID))}
	e.Status = map[encounter.Status]fm.EncounterStatus{
		encounter.StatusIN_PROGRESS: fm.EncounterStatusInProgress, encounter.StatusFINISHED: fm.EncounterStatusFinished,
		encounter.StatusCANCELLED: fm.EncounterStatusCancelled,
	}[r.Status]
	e.Class = map[encounter.Type]fm.Coding{
		encounter.TypeOUTPATIENT: coding(systemActV3, "AMB", "ambulatory"),
		encounter.TypeINPATIENT:  coding(systemActV3, "IMP", "inpatient encounter"),
		encounter.TypeEMERGENCY:  coding(systemActV3, "EMER", "emergency"),
	}[r.Type]
	if g.ok("patientID") {
		e.Subject = ref("Patient", r.PatientID)
	}
	if g.ok("startedAt") {
		e.Period = &fm.Period{Start: instant(r.StartedAt)}
		if r.EndedAt != nil && g.ok("endedAt") {
			e.Period.End = instant(*r.EndedAt)
		}
	}
	if r.Reason != nil && g.ok("reason") {
		e.ReasonCode = []fm.CodeableConcept{textConcept(*r.Reason)}
	}
	if r.ProviderID != nil && g.ok("providerID") {
		e.Participant = []fm.EncounterParticipant{{Individual: ref("Practitioner", *r.ProviderID)}}
	}
	if r.AppointmentID != nil && g.ok("appointmentID") {
		e.Appointment = []fm.Reference{*ref("Appointment", *r.AppointmentID)}
	}
	// An inpatient stay's discharge: how the patient left, which another
	// clinic taking over their care needs first.
	if adm := r.Edges.Admission; adm != nil && adm.Disposition != nil && q.decider.Allows("Encounter.admission") && q.gate("Admission").ok("disposition") {
		audit.NoteField(q.ctx, "Encounter", "admission")
		e.Hospitalization = &fm.EncounterHospitalization{DischargeDisposition: &fm.CodeableConcept{
			Coding: []fm.Coding{coding("http://terminology.hl7.org/CodeSystem/discharge-disposition",
				map[string]string{"HOME": "home", "TRANSFERRED": "other-hcf", "DECEASED": "exp", "AGAINST_MEDICAL_ADVICE": "aadvice", "OTHER": "oth"}[adm.Disposition.String()], "")},
		}}
	}
	return e, true
}

func (q *request) condition(r *ent.Problem) (any, bool) {
	g := q.gate("Problem")
	if !g.need("id", "patientID") {
		return nil, false
	}
	c := fm.Condition{Id: str(fhirID(r.ID)), Subject: *ref("Patient", r.PatientID)}
	if g.ok("icd10Code") {
		cc := concept(systemICD10, r.Icd10Code, "")
		if g.ok("display") {
			cc.Coding[0].Display, cc.Text = str(r.Display), str(r.Display)
		}
		c.Code = &cc
	}
	if g.ok("status") {
		switch r.Status {
		case problem.StatusENTERED_IN_ERROR:
			// A condition entered in error has no clinical status (con-5).
			c.VerificationStatus = ptr(concept(systemCondVe, "entered-in-error", ""))
		case problem.StatusRESOLVED:
			c.ClinicalStatus = ptr(concept(systemCondCl, "resolved", ""))
			c.VerificationStatus = ptr(concept(systemCondVe, "confirmed", ""))
		default:
			c.ClinicalStatus = ptr(concept(systemCondCl, "active", ""))
			c.VerificationStatus = ptr(concept(systemCondVe, "confirmed", ""))
		}
	}
	c.Category = []fm.CodeableConcept{concept("http://terminology.hl7.org/CodeSystem/condition-category", "problem-list-item", "Problem List Item")}
	if r.EncounterID != nil && g.ok("encounterID") {
		c.Encounter = ref("Encounter", *r.EncounterID)
	}
	if r.OnsetDate != nil && g.ok("onsetDate") {
		c.OnsetDateTime = date(*r.OnsetDate)
	}
	if r.ResolvedDate != nil && g.ok("resolvedDate") {
		c.AbatementDateTime = date(*r.ResolvedDate)
	}
	if g.ok("createdAt") {
		c.RecordedDate = instant(r.CreatedAt)
	}
	if r.RecordedByID != nil && g.ok("recordedByID") {
		c.Recorder = ref("Practitioner", *r.RecordedByID)
	}
	if r.Note != nil && *r.Note != "" && g.ok("note") {
		c.Note = []fm.Annotation{{Text: *r.Note}}
	}
	return c, true
}

func (q *request) allergy(r *ent.Allergy) (any, bool) {
	g := q.gate("Allergy")
	if !g.need("id", "patientID") {
		return nil, false
	}
	a := fm.AllergyIntolerance{Id: str(fhirID(r.ID)), Patient: *ref("Patient", r.PatientID)}
	if g.ok("substance") {
		a.Code = ptr(textConcept(r.Substance))
	}
	if g.ok("category") {
		if c, ok := map[allergy.Category]fm.AllergyIntoleranceCategory{
			allergy.CategoryDRUG: fm.AllergyIntoleranceCategoryMedication, allergy.CategoryFOOD: fm.AllergyIntoleranceCategoryFood,
			allergy.CategoryENVIRONMENT: fm.AllergyIntoleranceCategoryEnvironment,
		}[r.Category]; ok {
			a.Category = []fm.AllergyIntoleranceCategory{c}
		}
	}
	if g.ok("status") {
		switch r.Status {
		case allergy.StatusENTERED_IN_ERROR:
			a.VerificationStatus = ptr(concept(systemAllVe, "entered-in-error", ""))
		case allergy.StatusINACTIVE:
			a.ClinicalStatus = ptr(concept(systemAllCl, "inactive", ""))
		default:
			a.ClinicalStatus = ptr(concept(systemAllCl, "active", ""))
		}
	}
	severe := r.Severity == allergy.SeveritySEVERE || r.Severity == allergy.SeverityLIFE_THREATENING
	if g.ok("severity") {
		a.Criticality = ptr(fm.AllergyIntoleranceCriticalityLow)
		if severe {
			a.Criticality = ptr(fm.AllergyIntoleranceCriticalityHigh)
		}
	}
	if r.Reaction != nil && g.ok("reaction") {
		reaction := fm.AllergyIntoleranceReaction{Manifestation: []fm.CodeableConcept{textConcept(*r.Reaction)}}
		if g.ok("severity") {
			reaction.Severity = ptr(map[allergy.Severity]fm.AllergyIntoleranceSeverity{
				allergy.SeverityMILD: fm.AllergyIntoleranceSeverityMild, allergy.SeverityMODERATE: fm.AllergyIntoleranceSeverityModerate,
				allergy.SeveritySEVERE: fm.AllergyIntoleranceSeveritySevere, allergy.SeverityLIFE_THREATENING: fm.AllergyIntoleranceSeveritySevere,
			}[r.Severity])
		}
		a.Reaction = []fm.AllergyIntoleranceReaction{reaction}
	}
	if r.OnsetDate != nil && g.ok("onsetDate") {
		a.OnsetDateTime = date(*r.OnsetDate)
	}
	if g.ok("createdAt") {
		a.RecordedDate = instant(r.CreatedAt)
	}
	if r.RecordedByID != nil && g.ok("recordedByID") {
		a.Recorder = ref("Practitioner", *r.RecordedByID)
	}
	return a, true
}

var vitalSigns = concept(systemObsCat, "vital-signs", "Vital Signs")

func (q *request) vital(r *ent.Observation) (any, bool) {
	g := q.gate("Observation")
	if !g.need("id", "status", "code") {
		return nil, false
	}
	o := fm.Observation{Id: str(fhirID(r.ID)), Category: []fm.CodeableConcept{vitalSigns}}
	o.Status = map[observation.Status]fm.ObservationStatus{
		observation.StatusFINAL: fm.ObservationStatusFinal, observation.StatusAMENDED: fm.ObservationStatusAmended,
		observation.StatusENTERED_IN_ERROR: fm.ObservationStatusEnteredInError,
	}[r.Status]
	o.Code = concept(systemLOINC, r.Code, "")
	if g.ok("display") {
		o.Code.Coding[0].Display, o.Code.Text = str(r.Display), str(r.Display)
	}
	if g.ok("patientID") {
		o.Subject = ref("Patient", r.PatientID)
	}
	if r.EncounterID != nil && g.ok("encounterID") {
		o.Encounter = ref("Encounter", *r.EncounterID)
	}
	if g.ok("effectiveAt") {
		o.EffectiveDateTime = instant(r.EffectiveAt)
	}
	if g.ok("value") {
		unit := ""
		if g.ok("unit") {
			unit = r.Unit
		}
		o.ValueQuantity = quantity(r.Value, unit)
	}
	if r.RecordedByID != nil && g.ok("recordedByID") {
		o.Performer = []fm.Reference{*ref("Practitioner", *r.RecordedByID)}
	}
	if r.ReplacesID != nil && g.ok("replacesID") {
		o.DerivedFrom = []fm.Reference{*ref("Observation", *r.ReplacesID)}
	}
	return o, true
}

var laboratory = concept(systemObsCat, "laboratory", "Laboratory")

// labObservation is a released lab result (row scope keeps unverified ones
// from roles without Drafts.LabResult): the test's LOINC code from the
// catalogue, the value in the test's UCUM unit, the flag and the range
// applied.
func (q *request) labObservation(r *ent.LabResult) (any, bool) {
	g := q.gate("LabResult")
	it := r.Edges.Item
	if !g.need("id", "status") || it == nil || it.Edges.Test == nil || !q.decider.Allows("LabResult.item") ||
		!q.decider.Allows("LabOrderItem.test") || !q.decider.Allows("LabTest.code") {
		return nil, false
	}
	audit.NoteField(q.ctx, "LabResult", "item")
	audit.NoteField(q.ctx, "LabOrderItem", "test")
	test := it.Edges.Test
	o := fm.Observation{Id: str(fhirID(r.ID)), Category: []fm.CodeableConcept{laboratory}}
	o.Status = map[labresult.Status]fm.ObservationStatus{
		labresult.StatusENTERED: fm.ObservationStatusPreliminary, labresult.StatusVERIFIED: fm.ObservationStatusFinal,
		labresult.StatusCORRECTED: fm.ObservationStatusCorrected, labresult.StatusDISCARDED: fm.ObservationStatusCancelled,
	}[r.Status]
	o.Code = concept(systemLOINC, test.Code, "")
	if q.decider.Allows("LabTest.name") {
		o.Code.Coding[0].Display, o.Code.Text = str(test.Name), str(test.Name)
	}
	if g.ok("patientID") {
		o.Subject = ref("Patient", r.PatientID)
	}
	if g.ok("enteredAt") {
		o.EffectiveDateTime = instant(r.EnteredAt)
	}
	if r.VerifiedAt != nil && g.ok("verifiedAt") {
		o.Issued = instant(*r.VerifiedAt)
	}
	if r.VerifiedByID != nil && g.ok("verifiedByID") {
		o.Performer = []fm.Reference{*ref("Practitioner", *r.VerifiedByID)}
	}
	switch {
	case r.NumericValue != nil && g.ok("numericValue"):
		unit := ""
		if r.Unit != nil && g.ok("unit") {
			unit = *r.Unit
		}
		o.ValueQuantity = quantity(*r.NumericValue, unit)
	case r.CodedValue != nil && g.ok("codedValue"):
		o.ValueCodeableConcept = ptr(textConcept(*r.CodedValue))
	case r.TextValue != nil && g.ok("textValue"):
		o.ValueString = r.TextValue
	}
	if r.Flag != nil && g.ok("flag") {
		code := map[labresult.Flag]string{labresult.FlagNORMAL: "N", labresult.FlagLOW: "L", labresult.FlagHIGH: "H",
			labresult.FlagCRITICAL_LOW: "LL", labresult.FlagCRITICAL_HIGH: "HH", labresult.FlagABNORMAL: "A"}[*r.Flag]
		o.Interpretation = []fm.CodeableConcept{concept(systemInterp, code, "")}
	}
	var rng fm.ObservationReferenceRange
	unit := ""
	if r.Unit != nil && q.decider.Allows("LabResult.unit") {
		unit = *r.Unit
	}
	if r.ReferenceLow != nil && g.ok("referenceLow") {
		rng.Low = quantity(*r.ReferenceLow, unit)
	}
	if r.ReferenceHigh != nil && g.ok("referenceHigh") {
		rng.High = quantity(*r.ReferenceHigh, unit)
	}
	if rng.Low != nil || rng.High != nil {
		o.ReferenceRange = []fm.ObservationReferenceRange{rng}
	}
	if r.Comment != nil && *r.Comment != "" && g.ok("comment") {
		o.Note = []fm.Annotation{{Text: *r.Comment}}
	}
	return o, true
}

func (q *request) medicationRequest(r *ent.MedicationOrder) (any, bool) {
	g := q.gate("MedicationOrder")
	if !g.need("id", "patientID", "status", "drug") {
		return nil, false
	}
	m := fm.MedicationRequest{Id: str(fhirID(r.ID)), Intent: "order", Subject: *ref("Patient", r.PatientID)}
	m.Status = map[medicationorder.Status]string{
		medicationorder.StatusACTIVE: "active", medicationorder.StatusCOMPLETED: "completed",
		// Superseded: replaced by another order (priorPrescription there).
		medicationorder.StatusSTOPPED: "stopped", medicationorder.StatusSUPERSEDED: "stopped",
	}[r.Status]
	m.MedicationCodeableConcept = textConcept(r.Drug)
	if r.DrugCode != nil && g.ok("drugCode") {
		m.MedicationCodeableConcept.Coding = []fm.Coding{coding(systemDrug, *r.DrugCode, r.Drug)}
	}
	if r.EncounterID != nil && g.ok("encounterID") {
		m.Encounter = ref("Encounter", *r.EncounterID)
	}
	if g.ok("createdAt") {
		m.AuthoredOn = instant(r.CreatedAt)
	}
	if g.ok("prescriberID") {
		m.Requester = ref("Practitioner", r.PrescriberID)
	}
	if r.ReplacesID != nil && g.ok("replacesID") {
		m.PriorPrescription = ref("MedicationRequest", *r.ReplacesID)
	}
	var d fm.Dosage
	var text []string
	if g.ok("doseAmount") && g.ok("doseUnit") {
		d.DoseAndRate = []fm.DosageDoseAndRate{{DoseQuantity: &fm.Quantity{Value: number(r.DoseAmount), Unit: str(r.DoseUnit)}}}
		text = append(text, strconv.FormatFloat(r.DoseAmount, 'f', -1, 64)+" "+r.DoseUnit)
	}
	if g.ok("route") {
		d.Route = ptr(concept(systemRoute, r.Route.String(), strings.ToLower(r.Route.String())))
		text = append(text, strings.ToLower(r.Route.String()))
	}
	if g.ok("frequency") {
		text = append(text, r.Frequency)
	}
	if len(text) > 0 {
		d.Text = str(strings.Join(text, " "))
	}
	if r.Instructions != nil && *r.Instructions != "" && g.ok("instructions") {
		d.PatientInstruction = r.Instructions
	}
	if d.Text != nil || d.PatientInstruction != nil {
		m.DosageInstruction = []fm.Dosage{d}
	}
	var dr fm.MedicationRequestDispenseRequest
	if g.ok("quantity") {
		dr.Quantity = &fm.Quantity{Value: number(float64(r.Quantity))}
	}
	if r.DurationDays != nil && g.ok("durationDays") {
		dr.ExpectedSupplyDuration = &fm.Duration{Value: number(float64(*r.DurationDays)), Unit: str("days"), System: str(systemUCUM), Code: str("d")}
	}
	if dr.Quantity != nil || dr.ExpectedSupplyDuration != nil {
		m.DispenseRequest = &dr
	}
	return m, true
}

func (q *request) dispense(r *ent.Dispensing) (any, bool) {
	g := q.gate("Dispensing")
	if !g.need("id", "status", "drug") || r.Edges.Drug == nil || !q.decider.Allows("Drug.genericName") {
		return nil, false
	}
	drug := r.Edges.Drug
	m := fm.MedicationDispense{Id: str(fhirID(r.ID))}
	m.Status = map[dispensing.Status]string{
		dispensing.StatusAWAITING_WITNESS: "in-progress", dispensing.StatusDISPENSED: "completed", dispensing.StatusCANCELLED: "cancelled",
	}[r.Status]
	m.MedicationCodeableConcept = fm.CodeableConcept{Coding: []fm.Coding{coding(systemDrug, drug.Code, drug.GenericName)}, Text: str(drug.GenericName)}
	if g.ok("patientID") {
		m.Subject = ref("Patient", r.PatientID)
	}
	if r.EncounterID != nil && g.ok("encounterID") {
		m.Context = ref("Encounter", *r.EncounterID)
	}
	if g.ok("orderID") {
		m.AuthorizingPrescription = []fm.Reference{*ref("MedicationRequest", r.OrderID)}
	}
	if g.ok("quantity") {
		n := r.Quantity
		if g.ok("returnedQuantity") {
			n -= r.ReturnedQuantity
		}
		m.Quantity = &fm.Quantity{Value: number(float64(n))}
	}
	if r.Status == dispensing.StatusDISPENSED && g.ok("dispensedAt") {
		m.WhenHandedOver = instant(r.DispensedAt)
	}
	if g.ok("dispensedByID") {
		m.Performer = []fm.MedicationDispensePerformer{{Actor: *ref("Practitioner", r.DispensedByID)}}
	}
	return m, true
}

// report is a lab order as a DiagnosticReport: its status from its tests',
// its results the released ones the viewer may read.
func (q *request) report(r *ent.LabOrder) (any, bool) {
	g := q.gate("LabOrder")
	if !g.need("id", "items") || !q.decider.Allows("LabOrderItem.status") {
		return nil, false
	}
	audit.NoteField(q.ctx, "LabOrderItem", "status")
	d := fm.DiagnosticReport{Id: str(fhirID(r.ID)), Category: []fm.CodeableConcept{concept(systemV20074, "LAB", "Laboratory")}}
	d.Code = concept(systemLOINC, "11502-2", "Laboratory report")
	var done, open, cancelled int
	for _, it := range r.Edges.Items {
		switch it.Status {
		case laborderitem.StatusVERIFIED, laborderitem.StatusAMENDED:
			done++
		case laborderitem.StatusCANCELLED, laborderitem.StatusREJECTED:
			cancelled++
		default:
			open++
		}
	}
	switch {
	case done > 0 && open == 0:
		d.Status = fm.DiagnosticReportStatusFinal
	case done > 0:
		d.Status = fm.DiagnosticReportStatusPartial
	case open == 0 && cancelled > 0:
		d.Status = fm.DiagnosticReportStatusCancelled
	default:
		d.Status = fm.DiagnosticReportStatusRegistered
	}
	if g.ok("patientID") {
		d.Subject = ref("Patient", r.PatientID)
	}
	if r.EncounterID != nil && g.ok("encounterID") {
		d.Encounter = ref("Encounter", *r.EncounterID)
	}
	if g.ok("orderedAt") {
		d.EffectiveDateTime = instant(r.OrderedAt)
	}
	if q.decider.Allows("LabOrderItem.results") && q.sourceAllowed(srcLabResult) && q.decider.Allows("LabResult.id") {
		for _, it := range r.Edges.Items {
			for _, res := range it.Edges.Results {
				// Row scope already left out results not released to the
				// viewer; a superseded one is not the report's.
				if res.Status == labresult.StatusVERIFIED || res.Status == labresult.StatusCORRECTED {
					d.Result = append(d.Result, *ref("Observation", res.ID))
				}
			}
		}
		if d.Result != nil {
			audit.NoteField(q.ctx, "LabOrderItem", "results")
		}
	}
	return d, true
}

func (q *request) appointment(r *ent.Appointment) (any, bool) {
	g := q.gate("Appointment")
	if !g.need("id", "status", "patientID") {
		return nil, false
	}
	a := fm.Appointment{Id: str(fhirID(r.ID))}
	a.Status = map[appointment.Status]fm.AppointmentStatus{
		appointment.StatusBOOKED: fm.AppointmentStatusBooked, appointment.StatusCHECKED_IN: fm.AppointmentStatusCheckedIn,
		appointment.StatusIN_PROGRESS: fm.AppointmentStatusArrived, appointment.StatusCOMPLETED: fm.AppointmentStatusFulfilled,
		appointment.StatusCANCELLED: fm.AppointmentStatusCancelled, appointment.StatusNO_SHOW: fm.AppointmentStatusNoshow,
	}[r.Status]
	// Start and end go together (app-2), and a booked appointment needs
	// both (app-3).
	if g.ok("startAt") && g.ok("endAt") {
		a.Start, a.End = instant(r.StartAt), instant(r.EndAt)
	} else if a.Status != fm.AppointmentStatusCancelled && a.Status != fm.AppointmentStatusNoshow {
		return nil, false
	}
	if r.Reason != "" && g.ok("reason") {
		a.Description = str(r.Reason)
	}
	if r.CancelReason != "" && g.ok("cancelReason") {
		a.CancelationReason = ptr(textConcept(r.CancelReason))
	}
	if g.ok("createdAt") {
		a.Created = instant(r.CreatedAt)
	}
	a.Participant = []fm.AppointmentParticipant{{Actor: ref("Patient", r.PatientID), Status: fm.ParticipationStatusAccepted}}
	if g.ok("providerID") {
		a.Participant = append(a.Participant, fm.AppointmentParticipant{Actor: ref("Practitioner", r.ProviderID), Status: fm.ParticipationStatusAccepted})
	}
	return a, true
}

func (q *request) coverage(r *ent.InsurancePolicy) (any, bool) {
	g := q.gate("InsurancePolicy")
	if !g.need("id", "patientID", "status", "payer") {
		return nil, false
	}
	c := fm.Coverage{Id: str(fhirID(r.ID)), Beneficiary: *ref("Patient", r.PatientID)}
	c.Status = fm.FinancialResourceStatusCodesActive
	if r.Status == insurancepolicy.StatusINACTIVE {
		c.Status = fm.FinancialResourceStatusCodesCancelled
	}
	c.Payor = []fm.Reference{{Display: str(r.Payer)}}
	if g.ok("memberNumber") {
		c.SubscriberId = str(r.MemberNumber)
	}
	if g.ok("validFrom") {
		c.Period = &fm.Period{Start: date(r.ValidFrom)}
		if r.ValidTo != nil && g.ok("validTo") {
			c.Period.End = date(*r.ValidTo)
		}
	}
	if g.ok("priority") {
		c.Order = ptr(r.Priority)
	}
	if r.PlanName != nil && g.ok("planName") {
		c.Class = []fm.CoverageClass{{Type: concept("http://terminology.hl7.org/CodeSystem/coverage-class", "plan", "Plan"), Value: *r.PlanName, Name: r.PlanName}}
	}
	return c, true
}
