package apitest

import (
	"slices"
	"testing"
)

// Regression tests for filters that read what field rules and row scope
// hide: each request below answered, before the fix, with a count that
// depended on data the asker may not read.

// diagnose records an ICD-10 coded problem for a patient, as the doctor,
// and returns its ID.
func diagnose(t *testing.T, s *server, patientID, code string) string {
	t.Helper()
	var out struct{ RecordProblem struct{ ID string } }
	s.as("doctor", recordProblemMutation, map[string]any{"in": map[string]any{"patientId": patientID, "icd10Code": code}}).decode(t, &out)
	must(t, out.RecordProblem.ID != "", "no problem recorded")
	return out.RecordProblem.ID
}

func familyName(t *testing.T, s *server, patientID string) string {
	t.Helper()
	var out struct{ Patient struct{ FamilyName string } }
	s.as("admin", `query($id: ID!) { patient(id: $id) { familyName } }`, map[string]any{"id": patientID}).decode(t, &out)
	return out.Patient.FamilyName
}

func TestFilteringOnAFieldNeedsTheRightToReadIt(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	victim := d.patients[1]
	diagnose(t, s, victim, "B20")

	// billing may read patients but not their diagnoses: the filter is
	// refused, at the input field that reaches them, alike for a matching
	// and a missing code.
	byCode := `query($p: String!) { patients(where: {hasProblemsWith: {icd10CodeHasPrefix: $p}}) { totalCount } }`
	var answers []string
	for _, prefix := range []string{"B", "Z"} {
		r := s.as("billing", byCode, map[string]any{"p": prefix})
		must(t, len(r.Errors) == 1 && r.Errors[0].code() == "FORBIDDEN" && r.Errors[0].field() == "where.hasProblemsWith" &&
			!containsJSON(r.Data, "totalCount"), "billing filters on diagnoses: %s", describe(r))
		answers = append(answers, describe(r))
	}
	must(t, answers[0] == answers[1], "the refusal depends on the code: %v", answers)

	// At any depth, through not/and/or, and through a variable.
	r := s.as("billing", `query($w: PatientWhereInput) { patients(where: $w) { totalCount } }`, map[string]any{"w": map[string]any{
		"or": []any{map[string]any{"not": map[string]any{"hasProblemsWith": []any{map[string]any{"icd10CodeHasPrefix": "B"}}}}}}})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "FORBIDDEN" && r.Errors[0].field() == "where.or[0].not.hasProblemsWith",
		"billing filters on diagnoses in a variable: %s", describe(r))

	// The pharmacist may not read phone numbers, so may not bisect them.
	r = s.as("pharmacist", `{ patients(where: {phoneHasPrefix: "+"}) { totalCount } }`, nil)
	must(t, r.hasCode("FORBIDDEN") && r.Errors[0].field() == "where.phoneHasPrefix", "pharmacist filters on phone: %s", describe(r))

	// An ordering is a read too: a patient reads a department's name, not
	// when it was created.
	r = s.as("patient", `{ departments(first: 5, orderBy: {field: CREATED_AT}) { edges { node { name } } } }`, nil)
	must(t, r.hasCode("FORBIDDEN") && r.Errors[0].field() == "orderBy.field", "patient orders by a hidden field: %s", describe(r))
	r = s.as("patient", `{ departments(first: 5, orderBy: {field: NAME}) { edges { node { name } } } }`, nil)
	must(t, len(r.Errors) == 0, "patient orders by name: %s", describe(r))

	// hr, who has no patient access at all, gets no way in through staff.
	r = s.as("hr", `query($n: String!) { staffs(where: {hasAppointmentsWith: {hasPatientWith: {familyName: $n}}}) { totalCount } }`,
		map[string]any{"n": familyName(t, s, victim)})
	must(t, r.hasCode("FORBIDDEN"), "hr filters staff by patients: %s", describe(r))

	// A role that may read the field filters as before.
	var out struct{ Patients struct{ TotalCount int } }
	s.as("doctor", `query($id: ID!) { patients(where: {id: $id, hasProblemsWith: {icd10Code: "B20"}}) { totalCount } }`,
		map[string]any{"id": victim}).decode(t, &out)
	must(t, out.Patients.TotalCount == 1, "the doctor finds the diagnosis: %d", out.Patients.TotalCount)
}

// TestFilterSubqueriesKeepToTheViewersRows: a has… filter searches only
// the rows the viewer may see, at every depth.
func TestFilterSubqueriesKeepToTheViewersRows(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	victim := d.patients[1]
	start, end := slot(9, 9)
	s.as("reception", bookMutation, bookingInput(victim, d.doctor, start, end)).decode(t, &struct{}{})

	// The patient's attack of the review: from their own appointment to
	// the provider, to the provider's other appointments, to another
	// patient's name. Refused, and alike for a name that matches and one
	// that does not.
	attack := `query($n: String!) { appointments(where: {hasProviderWith: {hasAppointmentsWith: {hasPatientWith: {familyName: $n}}}}) { totalCount } }`
	hit := s.as("patient", attack, map[string]any{"n": familyName(t, s, victim)})
	miss := s.as("patient", attack, map[string]any{"n": "No-Such-Name"})
	must(t, describe(hit) == describe(miss), "the answer depends on another patient's name: %s / %s", describe(hit), describe(miss))

	// hr may list staff but read no appointment: whether a member of staff
	// has appointments is not hr's to ask.
	for _, where := range []string{`{hasAppointments: true}`, `{hasAppointments: false}`} {
		r := s.as("hr", `{ staffs(where: `+where+`) { totalCount } }`, nil)
		must(t, r.hasCode("FORBIDDEN") && r.Errors[0].field() == "where.hasAppointments", "hr filters staff by %s: %s", where, describe(r))
	}
	var out struct{ Staffs struct{ TotalCount int } }
	s.as("doctor", `{ staffs(where: {hasAppointments: true}) { totalCount } }`, nil).decode(t, &out)
	must(t, out.Staffs.TotalCount > 0, "the doctor sees no staff with appointments")
}

// TestWhatAFilterSearchesIsAudited: a count of patients matching a
// diagnosis, or of staff seeing a patient of some name, reads those
// patients, though it returns none of their rows.
func TestWhatAFilterSearchesIsAudited(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	victim := d.patients[1]
	diagnose(t, s, victim, "B20")
	start, end := slot(9, 9)
	s.as("reception", bookMutation, bookingInput(victim, d.doctor, start, end)).decode(t, &struct{}{})

	for _, tc := range []struct{ user, doc, operation string }{
		{"nurse", `{ patients(where: {hasProblemsWith: {icd10CodeHasPrefix: "B2"}}) { totalCount } }`, "patients"},
		{"doctor", `query($n: String!) { staffs(where: {hasAppointmentsWith: {hasPatientWith: {familyName: $n}}}) { totalCount } }`, "staffs"},
	} {
		r := s.as(tc.user, tc.doc, map[string]any{"n": familyName(t, s, victim)})
		must(t, len(r.Errors) == 0, "%s: %s", tc.user, describe(r))
		found := false
		for _, row := range auditRows(t, s, map[string]any{"patientId": victim}) {
			if row.Operation == tc.operation && row.ActorName != nil && *row.ActorName == tc.user {
				found = true
			}
		}
		must(t, found, "%s's filter over %s left no audit row for the patient it searched", tc.user, tc.operation)
	}
	// The filtered field is named on the row, as a read.
	rows := auditRows(t, s, map[string]any{"patientId": victim})
	fields := []string{}
	for _, row := range rows {
		if row.Operation == "patients" {
			fields = append(fields, row.Fields...)
		}
	}
	must(t, slices.Contains(fields, "Problem.icd10Code"), "the audit row does not name the filtered field: %v", fields)
}

// TestADeniedListDoesNotRevealItsLength: billing may read a patient but
// not their diagnoses; asking for the list's __typename used to count them.
func TestADeniedListDoesNotRevealItsLength(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	victim := d.patients[1]
	diagnose(t, s, victim, "B20")
	for _, user := range []string{"billing", "reception"} {
		r := s.as(user, `query($id: ID!) { patient(id: $id) { mrn problems { __typename } } }`, map[string]any{"id": victim})
		must(t, r.hasCode("FORBIDDEN") && !containsJSON(r.Data, "Problem"), "%s counts diagnoses: %s", user, describe(r))
	}
	r := s.as("doctor", `query($id: ID!) { patient(id: $id) { problems { __typename } } }`, map[string]any{"id": victim})
	must(t, len(r.Errors) == 0 && containsJSON(r.Data, `"Problem"`), "the doctor reads the list: %s", describe(r))
}

// TestPatientNotesAndResultsTakeFiltersAgain: the edges into entities with
// drafts lost their where argument while filters escaped row scope; with
// subqueries scoped they filter like any other list.
func TestPatientNotesAndResultsTakeFiltersAgain(t *testing.T) {
	s := newServer(t)
	own := s.demo().patients[0]
	var out struct {
		Patient struct {
			All, Verified, Hidden struct{ TotalCount int }
			Notes                 struct{ TotalCount int }
		}
	}
	s.as("patient", `query($id: ID!) { patient(id: $id) {
	  all: labResults { totalCount }
	  verified: labResults(where: {status: VERIFIED}) { totalCount }
	  hidden: labResults(where: {status: ENTERED}) { totalCount }
	  notes(where: {status: DRAFT}) { totalCount } } }`, map[string]any{"id": own}).decode(t, &out)
	p := out.Patient
	must(t, p.All.TotalCount > 0 && p.Verified.TotalCount == p.All.TotalCount && p.Hidden.TotalCount == 0 && p.Notes.TotalCount == 0,
		"the patient's filtered record: %+v", p)
}

// TestWhetherRowsExistIsARead: billing may read patients but no diagnosis;
// asking which patients have one (hasProblems), or fetching one by its ID,
// used to tell.
func TestWhetherRowsExistIsARead(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	problem := diagnose(t, s, d.patients[1], "E11.9")
	for _, where := range []string{`{hasProblems: true}`, `{hasProblems: false}`, `{not: {hasProblems: false}}`,
		`{hasProblemsWith: {}}`, `{hasEncountersWith: {hasProblems: true}}`} {
		r := s.as("billing", `{ patients(where: `+where+`) { totalCount } }`, nil)
		must(t, r.hasCode("FORBIDDEN") && !containsJSON(r.Data, "totalCount"), "billing filters patients by %s: %s", where, describe(r))
	}
	var out struct{ Patients struct{ TotalCount int } }
	s.as("doctor", `{ patients(where: {hasProblems: true}) { totalCount } }`, nil).decode(t, &out)
	must(t, out.Patients.TotalCount > 0, "the doctor finds no patient with a diagnosis")

	// A real ID of a type billing may not read answers as a made-up one.
	madeUp := problem[:len(problem)-5] + "ZZZZZ"
	for _, doc := range []string{`query($id: ID!) { node(id: $id) { id } }`, `query($id: ID!) { nodes(ids: [$id, $id]) { id } }`} {
		real := s.as("billing", doc, map[string]any{"id": problem})
		fake := s.as("billing", doc, map[string]any{"id": madeUp})
		must(t, real.hasCode("NOT_FOUND") && describe(real) == describe(fake), "billing tells a real diagnosis ID from a made-up one:\n%s\n%s", describe(real), describe(fake))
	}
	r := s.as("doctor", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": problem})
	must(t, len(r.Errors) == 0 && containsJSON(r.Data, problem), "the doctor reads the diagnosis by ID: %s", describe(r))
}

// TestALinkToAnUnreadableRowIsRefused: a single link used to tell whether
// its row exists (labtech: encounter { __typename } on a lab order), the
// fact the hasEncounter filter is refused for.
func TestALinkToAnUnreadableRowIsRefused(t *testing.T) {
	s := newServer(t)
	doc := `{ labOrders(first: 50) { edges { node { id encounter { __typename } } } } }`
	r := s.as("labtech", doc, nil)
	must(t, r.hasCode("FORBIDDEN") && !containsJSON(r.Data, `"Encounter"`), "labtech learns which orders have an encounter: %s", describe(r))
	r = s.as("doctor", doc, nil)
	must(t, len(r.Errors) == 0 && containsJSON(r.Data, `"Encounter"`), "the doctor reads the orders' encounters: %s", describe(r))
}

// TestAGoalOfADraftPlanIsADraft: a patient could read a goal of their
// draft care plan by its ID, and learn from it that the plan exists.
func TestAGoalOfADraftPlanIsADraft(t *testing.T) {
	s := newServer(t)
	own := s.demo().patients[0]
	var out struct {
		CreateCarePlan struct {
			ID    string
			Goals []struct{ ID string }
		}
	}
	s.as("doctor", `mutation($in: CreateCarePlanInput!) { createCarePlan(input: $in) { id goals { id } } }`,
		map[string]any{"in": map[string]any{"patientId": own, "title": "Weight", "goals": []map[string]any{{"description": "Lose 5 kg"}}}}).decode(t, &out)
	goal := out.CreateCarePlan.Goals[0].ID
	madeUp := goal[:len(goal)-5] + "ZZZZZ"
	node := `query($id: ID!) { node(id: $id) { id } }`
	real, fake := s.as("patient", node, map[string]any{"id": goal}), s.as("patient", node, map[string]any{"id": madeUp})
	must(t, real.hasCode("NOT_FOUND") && describe(real) == describe(fake), "the patient reads a draft plan's goal:\n%s\n%s", describe(real), describe(fake))
	r := s.as("doctor", node, map[string]any{"id": goal})
	must(t, len(r.Errors) == 0 && containsJSON(r.Data, goal), "the doctor reads the draft's goal: %s", describe(r))

	s.as("doctor", `mutation($id: ID!) { activateCarePlan(id: $id) { id } }`, map[string]any{"id": out.CreateCarePlan.ID}).decode(t, &struct{}{})
	r = s.as("patient", node, map[string]any{"id": goal})
	must(t, len(r.Errors) == 0 && containsJSON(r.Data, goal), "once active, the patient reads the goal: %s", describe(r))
}

// TestAnEmptyNestedFilterIsBadInput: ent cannot build a predicate from an
// empty nested where input; it used to answer INTERNAL.
func TestAnEmptyNestedFilterIsBadInput(t *testing.T) {
	s := newServer(t)
	r := s.as("reception", `{ appointments(where: {hasProviderWith: {}}) { totalCount } }`, nil)
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "BAD_USER_INPUT" && r.Errors[0].field() == "where.hasProviderWith",
		"an empty nested filter: %s", describe(r))
	r = s.as("reception", `{ appointments(where: {}) { totalCount } }`, nil)
	must(t, len(r.Errors) == 0, "an empty filter filters nothing: %s", describe(r))
}
