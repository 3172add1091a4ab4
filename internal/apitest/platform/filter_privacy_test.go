package platform

import (
	"fmt"
	"slices"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// Regression tests for filters that read what field rules and row scope
// hide: each request below answered, before the fix, with a count that
// depended on data the asker may not read.

// diagnose records an ICD-10 coded problem for a patient, as the doctor,
// and returns its ID.
func diagnose(t *testing.T, s *harness.Server, patientID, code string) string {
	t.Helper()
	var out struct{ RecordProblem struct{ ID string } }
	s.As("doctor", harness.RecordProblemMutation, map[string]any{"in": map[string]any{"patientId": patientID, "icd10Code": code}}).Decode(t, &out)
	harness.Must(t, out.RecordProblem.ID != "", "no problem recorded")
	return out.RecordProblem.ID
}

func familyName(t *testing.T, s *harness.Server, patientID string) string {
	t.Helper()
	var out struct{ Patient struct{ FamilyName string } }
	s.As("admin", `query($id: ID!) { patient(id: $id) { familyName } }`, map[string]any{"id": patientID}).Decode(t, &out)
	return out.Patient.FamilyName
}

func TestFilteringOnAFieldNeedsTheRightToReadIt(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	victim := d.Patients[1]
	diagnose(t, s, victim, "B20")

	// billing may read patients but not their diagnoses: the filter is
	// refused, at the input field that reaches them, alike for a matching
	// and a missing code.
	byCode := `query($p: String!) { patients(where: {hasProblemsWith: {icd10CodeHasPrefix: $p}}) { totalCount } }`
	var answers []string
	for _, prefix := range []string{"B", "Z"} {
		r := s.As("billing", byCode, map[string]any{"p": prefix})
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN" && r.Errors[0].Field() == "where.hasProblemsWith" &&
			!harness.ContainsJSON(r.Data, "totalCount"), "billing filters on diagnoses: %s", harness.Describe(r))
		answers = append(answers, harness.Describe(r))
	}
	harness.Must(t, answers[0] == answers[1], "the refusal depends on the code: %v", answers)

	// At any depth, through not/and/or, and through a variable.
	r := s.As("billing", `query($w: PatientWhereInput) { patients(where: $w) { totalCount } }`, map[string]any{"w": map[string]any{
		"or": []any{map[string]any{"not": map[string]any{"hasProblemsWith": []any{map[string]any{"icd10CodeHasPrefix": "B"}}}}}}})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN" && r.Errors[0].Field() == "where.or[0].not.hasProblemsWith",
		"billing filters on diagnoses in a variable: %s", harness.Describe(r))

	// The pharmacist may not read where patients live, so may not bisect it.
	// (Phone numbers are encrypted at rest and offer no filter at all.)
	r = s.As("pharmacist", `{ patients(where: {cityHasPrefix: "N"}) { totalCount } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN") && r.Errors[0].Field() == "where.cityHasPrefix", "pharmacist filters on city: %s", harness.Describe(r))

	// An ordering is a read too: a patient reads a department's name, not
	// when it was created.
	r = s.As("patient", `{ departments(first: 5, orderBy: {field: CREATED_AT}) { edges { node { name } } } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN") && r.Errors[0].Field() == "orderBy.field", "patient orders by a hidden field: %s", harness.Describe(r))
	r = s.As("patient", `{ departments(first: 5, orderBy: {field: NAME}) { edges { node { name } } } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "patient orders by name: %s", harness.Describe(r))

	// hr, who has no patient access at all, gets no way in through staff.
	r = s.As("hr", `query($n: String!) { staffs(where: {hasAppointmentsWith: {hasPatientWith: {familyName: $n}}}) { totalCount } }`,
		map[string]any{"n": familyName(t, s, victim)})
	harness.Must(t, r.HasCode("FORBIDDEN"), "hr filters staff by patients: %s", harness.Describe(r))

	// A role that may read the field filters as before.
	var out struct{ Patients struct{ TotalCount int } }
	s.As("doctor", `query($id: ID!) { patients(where: {id: $id, hasProblemsWith: {icd10Code: "B20"}}) { totalCount } }`,
		map[string]any{"id": victim}).Decode(t, &out)
	harness.Must(t, out.Patients.TotalCount == 1, "the doctor finds the diagnosis: %d", out.Patients.TotalCount)
}

// TestFilterSubqueriesKeepToTheViewersRows: a has… filter searches only
// the rows the viewer may see, at every depth.
func TestFilterSubqueriesKeepToTheViewersRows(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	victim := d.Patients[1]
	start, end := harness.Slot(9, 9)
	s.As("reception", harness.BookMutation, harness.BookingInput(victim, d.Doctor, start, end)).Decode(t, &struct{}{})

	// The patient's attack of the review: from their own appointment to
	// the provider, to the provider's other appointments, to another
	// patient's name. Refused, and alike for a name that matches and one
	// that does not.
	attack := `query($n: String!) { appointments(where: {hasProviderWith: {hasAppointmentsWith: {hasPatientWith: {familyName: $n}}}}) { totalCount } }`
	hit := s.As("patient", attack, map[string]any{"n": familyName(t, s, victim)})
	miss := s.As("patient", attack, map[string]any{"n": "No-Such-Name"})
	harness.Must(t, harness.Describe(hit) == harness.Describe(miss), "the answer depends on another patient's name: %s / %s", harness.Describe(hit), harness.Describe(miss))

	// hr may list staff but read no appointment: whether a member of staff
	// has appointments is not hr's to ask.
	for _, where := range []string{`{hasAppointments: true}`, `{hasAppointments: false}`} {
		r := s.As("hr", `{ staffs(where: `+where+`) { totalCount } }`, nil)
		harness.Must(t, r.HasCode("FORBIDDEN") && r.Errors[0].Field() == "where.hasAppointments", "hr filters staff by %s: %s", where, harness.Describe(r))
	}
	var out struct{ Staffs struct{ TotalCount int } }
	s.As("doctor", `{ staffs(where: {hasAppointments: true}) { totalCount } }`, nil).Decode(t, &out)
	harness.Must(t, out.Staffs.TotalCount > 0, "the doctor sees no staff with appointments")
}

// TestWhatAFilterSearchesIsAudited: a count of patients matching a
// diagnosis, or of staff seeing a patient of some name, reads those
// patients, though it returns none of their rows.
func TestWhatAFilterSearchesIsAudited(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	victim := d.Patients[1]
	diagnose(t, s, victim, "B20")
	start, end := harness.Slot(9, 9)
	s.As("reception", harness.BookMutation, harness.BookingInput(victim, d.Doctor, start, end)).Decode(t, &struct{}{})

	for _, tc := range []struct{ user, doc, operation string }{
		{"nurse", `{ patients(where: {hasProblemsWith: {icd10CodeHasPrefix: "B2"}}) { totalCount } }`, "patients"},
		{"doctor", `query($n: String!) { staffs(where: {hasAppointmentsWith: {hasPatientWith: {familyName: $n}}}) { totalCount } }`, "staffs"},
	} {
		r := s.As(tc.user, tc.doc, map[string]any{"n": familyName(t, s, victim)})
		harness.Must(t, len(r.Errors) == 0, "%s: %s", tc.user, harness.Describe(r))
		found := false
		for _, row := range harness.AuditRows(t, s, map[string]any{"patientId": victim}) {
			if row.Operation == tc.operation && row.ActorName != nil && *row.ActorName == tc.user {
				found = true
			}
		}
		harness.Must(t, found, "%s's filter over %s left no audit row for the patient it searched", tc.user, tc.operation)
	}
	// The filtered field is named on the row, as a read.
	rows := harness.AuditRows(t, s, map[string]any{"patientId": victim})
	fields := []string{}
	for _, row := range rows {
		if row.Operation == "patients" {
			fields = append(fields, row.Fields...)
		}
	}
	harness.Must(t, slices.Contains(fields, "Problem.icd10Code"), "the audit row does not name the filtered field: %v", fields)
}

// TestADeniedListDoesNotRevealItsLength: billing may read a patient but
// not their diagnoses; asking for the list's __typename used to count them.
func TestADeniedListDoesNotRevealItsLength(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	victim := d.Patients[1]
	diagnose(t, s, victim, "B20")
	for _, user := range []string{"billing", "reception"} {
		r := s.As(user, `query($id: ID!) { patient(id: $id) { mrn problems { __typename } } }`, map[string]any{"id": victim})
		harness.Must(t, r.HasCode("FORBIDDEN") && !harness.ContainsJSON(r.Data, "Problem"), "%s counts diagnoses: %s", user, harness.Describe(r))
	}
	r := s.As("doctor", `query($id: ID!) { patient(id: $id) { problems { __typename } } }`, map[string]any{"id": victim})
	harness.Must(t, len(r.Errors) == 0 && harness.ContainsJSON(r.Data, `"Problem"`), "the doctor reads the list: %s", harness.Describe(r))
}

// TestPatientNotesAndResultsTakeFiltersAgain: the edges into entities with
// drafts lost their where argument while filters escaped row scope; with
// subqueries scoped they filter like any other list.
func TestPatientNotesAndResultsTakeFiltersAgain(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	own := s.Demo().Patients[0]
	var out struct {
		Patient struct {
			All, Verified, Hidden struct{ TotalCount int }
			Notes                 struct{ TotalCount int }
		}
	}
	s.As("patient", `query($id: ID!) { patient(id: $id) {
	  all: labResults { totalCount }
	  verified: labResults(where: {status: VERIFIED}) { totalCount }
	  hidden: labResults(where: {status: ENTERED}) { totalCount }
	  notes(where: {status: DRAFT}) { totalCount } } }`, map[string]any{"id": own}).Decode(t, &out)
	p := out.Patient
	harness.Must(t, p.All.TotalCount > 0 && p.Verified.TotalCount == p.All.TotalCount && p.Hidden.TotalCount == 0 && p.Notes.TotalCount == 0,
		"the patient's filtered record: %+v", p)
}

// TestWhetherRowsExistIsARead: billing may read patients but no diagnosis;
// asking which patients have one (hasProblems), or fetching one by its ID,
// used to tell.
func TestWhetherRowsExistIsARead(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	problem := diagnose(t, s, d.Patients[1], "E11.9")
	for _, where := range []string{`{hasProblems: true}`, `{hasProblems: false}`, `{not: {hasProblems: false}}`,
		`{hasProblemsWith: {}}`, `{hasEncountersWith: {hasProblems: true}}`} {
		r := s.As("billing", `{ patients(where: `+where+`) { totalCount } }`, nil)
		harness.Must(t, r.HasCode("FORBIDDEN") && !harness.ContainsJSON(r.Data, "totalCount"), "billing filters patients by %s: %s", where, harness.Describe(r))
	}
	var out struct{ Patients struct{ TotalCount int } }
	s.As("doctor", `{ patients(where: {hasProblems: true}) { totalCount } }`, nil).Decode(t, &out)
	harness.Must(t, out.Patients.TotalCount > 0, "the doctor finds no patient with a diagnosis")

	// A real ID of a type billing may not read answers as a made-up one.
	madeUp := problem[:len(problem)-5] + "ZZZZZ"
	for _, doc := range []string{`query($id: ID!) { node(id: $id) { id } }`, `query($id: ID!) { nodes(ids: [$id, $id]) { id } }`} {
		real := s.As("billing", doc, map[string]any{"id": problem})
		fake := s.As("billing", doc, map[string]any{"id": madeUp})
		harness.Must(t, real.HasCode("NOT_FOUND") && harness.Describe(real) == harness.Describe(fake), "billing tells a real diagnosis ID from a made-up one:\n%s\n%s", harness.Describe(real), harness.Describe(fake))
	}
	r := s.As("doctor", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": problem})
	harness.Must(t, len(r.Errors) == 0 && harness.ContainsJSON(r.Data, problem), "the doctor reads the diagnosis by ID: %s", harness.Describe(r))
}

// TestALinkToAnUnreadableRowIsRefused: a single link used to tell whether
// its row exists (labtech: encounter { __typename } on a lab order), the
// fact the hasEncounter filter is refused for.
func TestALinkToAnUnreadableRowIsRefused(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	doc := `{ labOrders(first: 50) { edges { node { id encounter { __typename } } } } }`
	r := s.As("labtech", doc, nil)
	harness.Must(t, r.HasCode("FORBIDDEN") && !harness.ContainsJSON(r.Data, `"Encounter"`), "labtech learns which orders have an encounter: %s", harness.Describe(r))
	r = s.As("doctor", doc, nil)
	harness.Must(t, len(r.Errors) == 0 && harness.ContainsJSON(r.Data, `"Encounter"`), "the doctor reads the orders' encounters: %s", harness.Describe(r))
}

// TestAGoalOfADraftPlanIsADraft: a patient could read a goal of their
// draft care plan by its ID, and learn from it that the plan exists.
func TestAGoalOfADraftPlanIsADraft(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	own := s.Demo().Patients[0]
	var out struct {
		CreateCarePlan struct {
			ID    string
			Goals []struct{ ID string }
		}
	}
	s.As("doctor", `mutation($in: CreateCarePlanInput!) { createCarePlan(input: $in) { id goals { id } } }`,
		map[string]any{"in": map[string]any{"patientId": own, "title": "Weight", "goals": []map[string]any{{"description": "Lose 5 kg"}}}}).Decode(t, &out)
	goal := out.CreateCarePlan.Goals[0].ID
	madeUp := goal[:len(goal)-5] + "ZZZZZ"
	node := `query($id: ID!) { node(id: $id) { id } }`
	real, fake := s.As("patient", node, map[string]any{"id": goal}), s.As("patient", node, map[string]any{"id": madeUp})
	harness.Must(t, real.HasCode("NOT_FOUND") && harness.Describe(real) == harness.Describe(fake), "the patient reads a draft plan's goal:\n%s\n%s", harness.Describe(real), harness.Describe(fake))
	r := s.As("doctor", node, map[string]any{"id": goal})
	harness.Must(t, len(r.Errors) == 0 && harness.ContainsJSON(r.Data, goal), "the doctor reads the draft's goal: %s", harness.Describe(r))

	s.As("doctor", `mutation($id: ID!) { activateCarePlan(id: $id) { id } }`, map[string]any{"id": out.CreateCarePlan.ID}).Decode(t, &struct{}{})
	r = s.As("patient", node, map[string]any{"id": goal})
	harness.Must(t, len(r.Errors) == 0 && harness.ContainsJSON(r.Data, goal), "once active, the patient reads the goal: %s", harness.Describe(r))
}

// TestAnEmptyNestedFilterIsBadInput: ent cannot build a predicate from an
// empty nested where input; it used to answer INTERNAL.
func TestAnEmptyNestedFilterIsBadInput(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	r := s.As("reception", `{ appointments(where: {hasProviderWith: {}}) { totalCount } }`, nil)
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "BAD_USER_INPUT" && r.Errors[0].Field() == "where.hasProviderWith",
		"an empty nested filter: %s", harness.Describe(r))
	r = s.As("reception", `{ appointments(where: {}) { totalCount } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "an empty filter filters nothing: %s", harness.Describe(r))
}

// TestAnOversizedFilterIsRefusedByName: thousands of or-terms, or not
// nested hundreds deep, get BAD_USER_INPUT on the argument before any SQL,
// instead of seconds of the database's work and an internal error.
func TestAnOversizedFilterIsRefusedByName(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	terms := make([]map[string]any, 1000)
	for i := range terms {
		terms[i] = map[string]any{"mrn": fmt.Sprint(i)}
	}
	deep := map[string]any{"mrn": "1"}
	for range 300 {
		deep = map[string]any{"not": deep}
	}
	for name, where := range map[string]any{"wide": map[string]any{"or": terms}, "deep": deep} {
		r := s.As("doctor", `query($w: PatientWhereInput) { patients(first: 1, where: $w) { totalCount } }`, map[string]any{"w": where})
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "BAD_USER_INPUT" && r.Errors[0].Field() == "where",
			"%s filter: %s", name, harness.Describe(r))
	}
	// An ordinary search still runs.
	r := s.As("doctor", `{ patients(first: 1, where: {or: [{familyName: "A"}, {not: {mrn: "1"}}]}) { totalCount } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "ordinary filter: %s", harness.Describe(r))
}
