package apitest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
)

func init() {
	addProbes(map[string]string{
		"Query.searchIcd10":                      `{ searchIcd10(text: "") { __typename } }`,
		"Mutation.startEncounter":                `mutation { startEncounter(input: {patientId: "bad", type: OUTPATIENT, departmentId: "bad", reason: "x"}) { __typename } }`,
		"Mutation.finishEncounter":               `mutation { finishEncounter(id: "bad") { __typename } }`,
		"Mutation.cancelEncounter":               `mutation { cancelEncounter(id: "bad", reason: "x") { __typename } }`,
		"Mutation.recordProblem":                 `mutation { recordProblem(input: {patientId: "bad", icd10Code: "I10"}) { __typename } }`,
		"Mutation.resolveProblem":                `mutation { resolveProblem(id: "bad") { __typename } }`,
		"Mutation.markProblemEnteredInError":     `mutation { markProblemEnteredInError(id: "bad") { __typename } }`,
		"Mutation.recordAllergy":                 `mutation { recordAllergy(input: {patientId: "bad", substance: "x", category: DRUG, severity: MILD}) { __typename } }`,
		"Mutation.updateAllergy":                 `mutation { updateAllergy(id: "bad", input: {}) { __typename } }`,
		"Mutation.recordVitals":                  `mutation { recordVitals(input: {patientId: "bad", heartRate: 70}) { __typename } }`,
		"Mutation.recordObservation":             `mutation { recordObservation(input: {patientId: "bad", code: "2339-0", display: "Glucose", value: 1, unit: "mg/dL"}) { __typename } }`,
		"Mutation.amendObservation":              `mutation { amendObservation(id: "bad", input: {value: 1, reason: "x"}) { __typename } }`,
		"Mutation.markObservationEnteredInError": `mutation { markObservationEnteredInError(id: "bad", reason: "x") { __typename } }`,
		"Mutation.recordHistoryItem":             `mutation { recordHistoryItem(input: {patientId: "bad", category: SOCIAL, description: "x"}) { __typename } }`,
		"Mutation.markHistoryItemEnteredInError": `mutation { markHistoryItemEnteredInError(id: "bad") { __typename } }`,
		"Subscription.vitalsRecorded":            "", // over WebSocket: see TestVitalsRecordedAuthorization
	})
}

// seedICD10 loads the ICD-10 catalog into s's database, as the server does
// after migrating; loading it twice changes nothing.
func seedICD10(t testing.TB, s *server) {
	t.Helper()
	if err := ehr.SeedICD10(auth.SystemContext(context.Background()), s.app.Store.Client); err != nil {
		t.Fatalf("seed ICD-10: %v", err)
	}
}

const (
	startEncounterMutation = `mutation($in: StartEncounterInput!) {
  startEncounter(input: $in) { id status type reason startedAt endedAt patient { id } department { id } provider { id } }
}`
	finishEncounterMutation = `mutation($id: ID!) { finishEncounter(id: $id) { id status endedAt } }`
	cancelEncounterMutation = `mutation($id: ID!, $r: String!) { cancelEncounter(id: $id, reason: $r) { id status endedAt } }`
	recordVitalsMutation    = `mutation($in: RecordVitalsInput!) {
  recordVitals(input: $in) { id code display value unit status effectiveAt recordedBy { id } encounter { id } }
}`
	amendObservationMutation = `mutation($id: ID!, $v: Float!, $r: String!) {
  amendObservation(id: $id, input: {value: $v, reason: $r}) { id value status amendReason replaces { id status value } }
}`
	recordAllergyMutation = `mutation($in: RecordAllergyInput!) { recordAllergy(input: $in) { id substance status reaction severity } }`
	updateAllergyMutation = `mutation($id: ID!, $in: UpdateAllergyInput!) { updateAllergy(id: $id, input: $in) { id substance status reaction severity } }`
	recordProblemMutation = `mutation($in: RecordProblemInput!) { recordProblem(input: $in) { id icd10Code display status recordedBy { id } } }`
)

type encounterResult struct {
	ID, Status, Type, StartedAt string
	Reason                      *string
	EndedAt                     *string
	Patient, Department         struct{ ID string }
	Provider                    *struct{ ID string }
}

type observationResult struct {
	ID, Code, Display, Unit, Status, EffectiveAt string
	Value                                        float64
	RecordedBy                                   *struct{ ID string }
	Encounter                                    *struct{ ID string }
}

// recordVitals records vital signs as user and returns the observations.
func recordVitals(t testing.TB, s *server, user string, in map[string]any) []observationResult {
	t.Helper()
	var out struct{ RecordVitals []observationResult }
	s.as(user, recordVitalsMutation, map[string]any{"in": in}).decode(t, &out)
	return out.RecordVitals
}

// chartCounts counts the items of each part of a patient's record, as the
// admin sees them.
func chartCounts(t testing.TB, s *server, patientID string) string {
	t.Helper()
	var out struct {
		Patient struct {
			Problems, Allergies, History []struct{ ID string }
			Encounters, Observations     struct{ TotalCount int }
		}
	}
	s.as("admin", `query($id: ID!) { patient(id: $id) {
	  problems { id } allergies { id } history { id }
	  encounters { totalCount } observations { totalCount } } }`, map[string]any{"id": patientID}).decode(t, &out)
	p := out.Patient
	return fmt.Sprintf("problems=%d allergies=%d history=%d encounters=%d observations=%d",
		len(p.Problems), len(p.Allergies), len(p.History), p.Encounters.TotalCount, p.Observations.TotalCount)
}

func wantBadInput(t testing.TB, what string, r response, field string) {
	t.Helper()
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "BAD_USER_INPUT" && r.Errors[0].field() == field,
		"%s: want BAD_USER_INPUT on %s, got %s", what, field, describe(r))
}

func TestEncounterLifecycle(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	start := func(user, typ string) response {
		return s.as(user, startEncounterMutation, map[string]any{"in": map[string]any{
			"patientId": d.patients[1], "type": typ, "departmentId": d.general, "providerId": d.doctor, "reason": "Fever for three days",
		}})
	}
	var started struct{ StartEncounter encounterResult }
	start("nurse", "OUTPATIENT").decode(t, &started)
	e := started.StartEncounter
	must(t, e.Status == "IN_PROGRESS" && e.Type == "OUTPATIENT" && e.Patient.ID == d.patients[1] && e.Department.ID == d.general &&
		e.Provider != nil && e.Provider.ID == d.doctor && e.EndedAt == nil && *e.Reason == "Fever for three days", "started: %+v", e)

	// Vitals taken during the visit belong to it.
	obs := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[1], "encounterId": e.ID, "temperature": 38.9, "heartRate": 104})
	must(t, len(obs) == 2 && obs[0].Encounter != nil && obs[0].Encounter.ID == e.ID && obs[0].RecordedBy != nil && obs[0].RecordedBy.ID == d.nurse,
		"vitals in the encounter: %+v", obs)

	var finished struct{ FinishEncounter encounterResult }
	s.as("nurse", finishEncounterMutation, map[string]any{"id": e.ID}).decode(t, &finished)
	must(t, finished.FinishEncounter.Status == "FINISHED" && finished.FinishEncounter.EndedAt != nil, "finished: %+v", finished)
	r := s.as("nurse", finishEncounterMutation, map[string]any{"id": e.ID})
	must(t, r.hasCode("CONFLICT"), "finish twice: %s", describe(r))
	r = s.as("doctor", cancelEncounterMutation, map[string]any{"id": e.ID, "r": "wrong patient"})
	must(t, r.hasCode("CONFLICT"), "cancel a finished encounter: %s", describe(r))
	r = s.as("doctor", recordVitalsMutation, map[string]any{"in": map[string]any{"patientId": d.patients[2], "encounterId": e.ID, "heartRate": 80}})
	wantBadInput(t, "vitals in another patient's encounter", r, "input.encounterId")

	start("doctor", "EMERGENCY").decode(t, &started)
	emergency := started.StartEncounter
	must(t, emergency.Type == "EMERGENCY", "emergency: %+v", emergency)
	r = s.as("nurse", cancelEncounterMutation, map[string]any{"id": emergency.ID, "r": "left"})
	must(t, r.hasCode("FORBIDDEN"), "a nurse cancels: %s", describe(r))
	var cancelled struct{ CancelEncounter encounterResult }
	s.as("doctor", cancelEncounterMutation, map[string]any{"id": emergency.ID, "r": "registered twice"}).decode(t, &cancelled)
	must(t, cancelled.CancelEncounter.Status == "CANCELLED", "cancelled: %+v", cancelled)
	r = s.as("nurse", finishEncounterMutation, map[string]any{"id": emergency.ID})
	must(t, r.hasCode("CONFLICT"), "finish a cancelled encounter: %s", describe(r))

	before := chartCounts(t, s, d.patients[1])
	wantBadInput(t, "inpatient", start("doctor", "INPATIENT"), "input.type")
	r = s.as("doctor", startEncounterMutation, map[string]any{"in": map[string]any{
		"patientId": d.patients[1], "type": "OUTPATIENT", "departmentId": d.general, "providerId": d.labtech, "reason": "x"}})
	wantBadInput(t, "a lab technician as provider", r, "input.providerId")
	r = s.as("doctor", startEncounterMutation, map[string]any{"in": map[string]any{
		"patientId": d.patients[1], "type": "OUTPATIENT", "departmentId": d.general, "reason": "  "}})
	wantBadInput(t, "no reason", r, "input.reason")
	must(t, chartCounts(t, s, d.patients[1]) == before, "refused starts changed the record: %s, was %s", chartCounts(t, s, d.patients[1]), before)

	for _, user := range []string{"reception", "pharmacist", "patient", "billing"} {
		r := start(user, "OUTPATIENT")
		must(t, r.hasCode("FORBIDDEN"), "%s starts an encounter: %s", user, describe(r))
	}
}

func TestConcurrentEncounterEndsOneWins(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	var started struct{ StartEncounter encounterResult }
	s.as("doctor", startEncounterMutation, map[string]any{"in": map[string]any{
		"patientId": d.patients[2], "type": "EMERGENCY", "departmentId": d.general, "reason": "Fall"}}).decode(t, &started)
	token := s.token("doctor")
	const n = 10
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				results[i] = s.do(token, finishEncounterMutation, map[string]any{"id": started.StartEncounter.ID})
			} else {
				results[i] = s.do(token, cancelEncounterMutation, map[string]any{"id": started.StartEncounter.ID, "r": "left"})
			}
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case !r.hasCode("CONFLICT"):
			t.Errorf("unexpected outcome: %s", describe(r))
		}
	}
	must(t, wins == 1, "%d of %d concurrent ends won, want exactly 1", wins, n)
}

func TestProblemsAndICD10Search(t *testing.T) {
	s := newServer(t)
	seedICD10(t, s)
	d := s.demo()

	var found struct {
		SearchIcd10 []struct{ Code, Display string }
	}
	s.as("doctor", `{ searchIcd10(text: "e11", first: 5) { code display } }`, nil).decode(t, &found)
	must(t, len(found.SearchIcd10) > 0 && found.SearchIcd10[0].Code == "E11.9" &&
		found.SearchIcd10[0].Display == "Type 2 diabetes mellitus without complications", "e11: %+v", found)
	s.as("reception", `{ searchIcd10(text: "atrial fibrillation") { code display } }`, nil).decode(t, &found)
	must(t, len(found.SearchIcd10) == 1 && found.SearchIcd10[0].Code == "I48.91", "atrial fibrillation: %+v", found)
	wantBadInput(t, "first 1000", s.as("doctor", `{ searchIcd10(text: "asthma", first: 1000) { code } }`, nil), "first")
	r := s.as("patient", `{ searchIcd10(text: "asthma") { code } }`, nil)
	must(t, r.hasCode("FORBIDDEN"), "a patient searches the catalog: %s", describe(r))

	type problemResult struct {
		ID, Icd10Code, Display, Status string
		RecordedBy                     *struct{ ID string }
	}
	var recorded struct{ RecordProblem problemResult }
	s.as("doctor", recordProblemMutation, map[string]any{"in": map[string]any{
		"patientId": d.patients[1], "icd10Code": "j18.9", "onsetDate": time.Now().UTC().AddDate(0, 0, -2).Format("2006-01-02"),
	}}).decode(t, &recorded)
	p := recorded.RecordProblem
	must(t, p.Icd10Code == "J18.9" && p.Display == "Pneumonia, unspecified organism" && p.Status == "ACTIVE" &&
		p.RecordedBy != nil && p.RecordedBy.ID == d.doctor, "recorded: %+v", p)

	before := chartCounts(t, s, d.patients[1])
	r = s.as("doctor", recordProblemMutation, map[string]any{"in": map[string]any{"patientId": d.patients[1], "icd10Code": "Q99.9"}})
	wantBadInput(t, "a code outside the catalog", r, "input.icd10Code")
	r = s.as("doctor", recordProblemMutation, map[string]any{"in": map[string]any{"patientId": d.patients[1], "icd10Code": "I10", "onsetDate": "2999-01-01"}})
	wantBadInput(t, "onset in the future", r, "input.onsetDate")
	r = s.as("nurse", recordProblemMutation, map[string]any{"in": map[string]any{"patientId": d.patients[1], "icd10Code": "I10"}})
	must(t, r.hasCode("FORBIDDEN"), "a nurse diagnoses: %s", describe(r))
	must(t, chartCounts(t, s, d.patients[1]) == before, "refused problems changed the record")

	const resolve = `mutation($id: ID!, $on: Date) { resolveProblem(id: $id, resolvedDate: $on) { id status resolvedDate } }`
	var resolved struct {
		ResolveProblem struct{ Status, ResolvedDate string }
	}
	today := time.Now().UTC().Format("2006-01-02")
	s.as("doctor", resolve, map[string]any{"id": p.ID, "on": today}).decode(t, &resolved)
	must(t, resolved.ResolveProblem.Status == "RESOLVED" && resolved.ResolveProblem.ResolvedDate == today, "resolved: %+v", resolved)
	r = s.as("doctor", resolve, map[string]any{"id": p.ID})
	must(t, r.hasCode("CONFLICT"), "resolve twice: %s", describe(r))
	const withdraw = `mutation($id: ID!) { markProblemEnteredInError(id: $id) { id status } }`
	r = s.as("doctor", withdraw, map[string]any{"id": p.ID})
	must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), "ENTERED_IN_ERROR"), "withdraw: %s", describe(r))
	r = s.as("doctor", withdraw, map[string]any{"id": p.ID})
	must(t, r.hasCode("CONFLICT"), "withdraw twice: %s", describe(r))
}

func TestAllergiesOverHTTP(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	type allergyResult struct {
		ID, Substance, Status, Severity string
		Reaction                        *string
	}
	var recorded struct{ RecordAllergy allergyResult }
	s.as("pharmacist", recordAllergyMutation, map[string]any{"in": map[string]any{
		"patientId": d.patients[2], "substance": " Aspirin ", "category": "DRUG", "reaction": "Wheeze", "severity": "MODERATE",
	}}).decode(t, &recorded)
	a := recorded.RecordAllergy
	must(t, a.Substance == "Aspirin" && a.Status == "ACTIVE" && *a.Reaction == "Wheeze", "recorded: %+v", a)

	before := chartCounts(t, s, d.patients[2])
	r := s.as("nurse", recordAllergyMutation, map[string]any{"in": map[string]any{
		"patientId": d.patients[2], "substance": "aspirin", "category": "DRUG", "severity": "SEVERE"}})
	must(t, r.hasCode("CONFLICT"), "a second active aspirin allergy: %s", describe(r))
	r = s.as("nurse", recordAllergyMutation, map[string]any{"in": map[string]any{
		"patientId": d.patients[2], "substance": "", "category": "FOOD", "severity": "MILD"}})
	wantBadInput(t, "no substance", r, "input.substance")
	must(t, chartCounts(t, s, d.patients[2]) == before, "refused allergies changed the record")

	// Omitted fields are kept and a null reaction is cleared.
	var updated struct{ UpdateAllergy allergyResult }
	s.as("doctor", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"reaction": nil}}).decode(t, &updated)
	must(t, updated.UpdateAllergy.Reaction == nil && updated.UpdateAllergy.Severity == "MODERATE" && updated.UpdateAllergy.Status == "ACTIVE",
		"reaction cleared: %+v", updated)
	wantBadInput(t, "severity null", s.as("doctor", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"severity": nil}}), "input.severity")
	s.as("doctor", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"status": "ENTERED_IN_ERROR"}}).decode(t, &updated)
	must(t, updated.UpdateAllergy.Status == "ENTERED_IN_ERROR", "withdrawn: %+v", updated)
	r = s.as("doctor", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"status": "ACTIVE"}})
	must(t, r.hasCode("CONFLICT"), "revive an allergy entered in error: %s", describe(r))
	r = s.as("pharmacist", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"severity": "MILD"}})
	must(t, r.hasCode("FORBIDDEN"), "a pharmacist updates: %s", describe(r))
}

func TestConcurrentDuplicateAllergiesOneWins(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	users := []string{"doctor", "nurse", "pharmacist"}
	tokens := map[string]string{}
	for _, u := range users {
		tokens[u] = s.token(u)
	}
	const n = 9
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.do(tokens[users[i%3]], recordAllergyMutation, map[string]any{"in": map[string]any{
				"patientId": d.patients[4], "substance": []string{"Latex", "latex", "LATEX"}[i%3], "category": "ENVIRONMENT", "severity": "MODERATE"}})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case !r.hasCode("CONFLICT"):
			t.Errorf("unexpected outcome: %s", describe(r))
		}
	}
	must(t, wins == 1, "%d of %d concurrent recordings won, want exactly 1", wins, n)
	must(t, strings.Contains(chartCounts(t, s, d.patients[4]), "allergies=1 "), "allergies: %s", chartCounts(t, s, d.patients[4]))
}

func TestVitalsValidationAndAmendment(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	taken := time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Second).Format(time.RFC3339)
	obs := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[1], "effectiveAt": taken,
		"heartRate": 88, "systolicBp": 135, "diastolicBp": 85, "temperature": 37.2, "spo2": 96, "respiratoryRate": 18, "weight": 64.2, "height": 168})
	must(t, len(obs) == 8, "8 observations, got %+v", obs)
	units := map[string]string{}
	for _, o := range obs {
		units[o.Code] = o.Unit
		must(t, o.Status == "FINAL" && o.EffectiveAt == taken && o.RecordedBy != nil && o.RecordedBy.ID == d.nurse, "observation %+v", o)
	}
	for code, unit := range map[string]string{"8867-4": "/min", "8480-6": "mm[Hg]", "8462-4": "mm[Hg]", "8310-5": "Cel",
		"59408-5": "%", "9279-1": "/min", "29463-7": "kg", "8302-2": "cm"} {
		must(t, units[code] == unit, "%s in %q, want %q", code, units[code], unit)
	}

	before := chartCounts(t, s, d.patients[1])
	for _, tc := range []struct {
		in    map[string]any
		field string
	}{
		{map[string]any{"heartRate": 400}, "input.heartRate"},
		{map[string]any{"systolicBp": 80, "diastolicBp": 90}, "input.systolicBp"},
		{map[string]any{"temperature": 99.1}, "input.temperature"},
		{map[string]any{"spo2": 120}, "input.spo2"},
		{map[string]any{"respiratoryRate": 200}, "input.respiratoryRate"},
		{map[string]any{"weight": 0}, "input.weight"},
		{map[string]any{"height": 1.7}, "input.height"},
		{map[string]any{"heartRate": 70, "temperature": 370}, "input.temperature"},
		{map[string]any{}, "input"},
	} {
		tc.in["patientId"] = d.patients[1]
		wantBadInput(t, fmt.Sprint(tc.in), s.as("nurse", recordVitalsMutation, map[string]any{"in": tc.in}), tc.field)
	}
	must(t, chartCounts(t, s, d.patients[1]) == before, "refused vitals changed the record: %s, was %s", chartCounts(t, s, d.patients[1]), before)

	var weight observationResult
	for _, o := range obs {
		if o.Code == "29463-7" {
			weight = o
		}
	}
	type amendResult struct {
		ID, Status  string
		Value       float64
		AmendReason *string
		Replaces    *struct {
			ID, Status string
			Value      float64
		}
	}
	var amended struct{ AmendObservation amendResult }
	s.as("nurse", amendObservationMutation, map[string]any{"id": weight.ID, "v": 46.2, "r": "read the wrong line of the chart"}).decode(t, &amended)
	a := amended.AmendObservation
	must(t, a.ID != weight.ID && a.Status == "FINAL" && a.Value == 46.2 && a.AmendReason != nil && a.Replaces != nil &&
		a.Replaces.ID == weight.ID && a.Replaces.Status == "AMENDED" && a.Replaces.Value == 64.2, "amended: %+v", a)
	r := s.as("doctor", amendObservationMutation, map[string]any{"id": weight.ID, "v": 47, "r": "again"})
	must(t, r.hasCode("CONFLICT"), "amend an amended observation: %s", describe(r))

	// The old value stays in the record, marked, and leads to its replacement.
	var old struct {
		Node struct {
			Status     string
			Value      float64
			ReplacedBy *struct{ ID string }
		}
	}
	s.as("doctor", `query($id: ID!) { node(id: $id) { ... on Observation { status value replacedBy { id } } } }`,
		map[string]any{"id": weight.ID}).decode(t, &old)
	must(t, old.Node.Status == "AMENDED" && old.Node.Value == 64.2 && old.Node.ReplacedBy != nil && old.Node.ReplacedBy.ID == a.ID, "old: %+v", old)

	const withdraw = `mutation($id: ID!, $r: String!) { markObservationEnteredInError(id: $id, reason: $r) { id status amendReason } }`
	r = s.as("nurse", withdraw, map[string]any{"id": a.ID, "r": "weighed the wrong patient"})
	must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), "ENTERED_IN_ERROR"), "withdraw: %s", describe(r))
	r = s.as("nurse", withdraw, map[string]any{"id": a.ID, "r": "again"})
	must(t, r.hasCode("CONFLICT"), "withdraw twice: %s", describe(r))
	r = s.as("pharmacist", withdraw, map[string]any{"id": obs[0].ID, "r": "x"})
	must(t, r.hasCode("FORBIDDEN"), "a pharmacist withdraws a vital sign: %s", describe(r))

	var glucose struct{ RecordObservation observationResult }
	s.as("nurse", `mutation { recordObservation(input: {patientId: "`+d.patients[1]+`", code: "2339-0",
	  display: "Glucose [Mass/volume] in Blood", value: 142, unit: "mg/dL"}) { id code value unit status } }`, nil).decode(t, &glucose)
	must(t, glucose.RecordObservation.Code == "2339-0" && glucose.RecordObservation.Unit == "mg/dL", "glucose: %+v", glucose)
	r = s.as("nurse", `mutation { recordObservation(input: {patientId: "`+d.patients[1]+`", code: "2339-9",
	  display: "Glucose", value: 142, unit: "mg/dL"}) { id } }`, nil)
	wantBadInput(t, "a wrong LOINC check digit", r, "input.code")
}

func TestConcurrentAmendmentsOneWins(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	obs := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[2], "respiratoryRate": 14})
	tokens := []string{s.token("nurse"), s.token("doctor")}
	const n = 10
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.do(tokens[i%2], amendObservationMutation, map[string]any{"id": obs[0].ID, "v": 20 + i, "r": "recounted"})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case !r.hasCode("CONFLICT"):
			t.Errorf("unexpected outcome: %s", describe(r))
		}
	}
	must(t, wins == 1, "%d of %d concurrent amendments won, want exactly 1", wins, n)
	must(t, strings.Contains(chartCounts(t, s, d.patients[2]), "observations=2"), "observations: %s", chartCounts(t, s, d.patients[2]))
}

func TestHistoryItems(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	const record = `mutation($in: RecordHistoryItemInput!) { recordHistoryItem(input: $in) { id category description relation date status } }`
	var out struct {
		RecordHistoryItem struct {
			ID, Category, Description, Status string
			Relation, Date                    *string
		}
	}
	s.as("nurse", record, map[string]any{"in": map[string]any{
		"patientId": d.patients[1], "category": "SURGERY", "description": "Appendectomy", "date": "2015-08-01"}}).decode(t, &out)
	h := out.RecordHistoryItem
	must(t, h.Category == "SURGERY" && h.Status == "ACTIVE" && *h.Date == "2015-08-01" && h.Relation == nil, "recorded: %+v", h)
	wantBadInput(t, "relation outside family history", s.as("nurse", record, map[string]any{"in": map[string]any{
		"patientId": d.patients[1], "category": "SOCIAL", "description": "Smokes", "relation": "father"}}), "input.relation")
	r := s.as("pharmacist", record, map[string]any{"in": map[string]any{"patientId": d.patients[1], "category": "SOCIAL", "description": "x"}})
	must(t, r.hasCode("FORBIDDEN"), "a pharmacist takes history: %s", describe(r))

	const withdraw = `mutation($id: ID!) { markHistoryItemEnteredInError(id: $id) { id status } }`
	r = s.as("nurse", withdraw, map[string]any{"id": h.ID})
	must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), "ENTERED_IN_ERROR"), "withdraw: %s", describe(r))
	r = s.as("doctor", withdraw, map[string]any{"id": h.ID})
	must(t, r.hasCode("CONFLICT"), "withdraw twice: %s", describe(r))
}

// TestHealthRecordRowScope: the patient reads their own record, amended
// values included, and reaches nothing of another patient's; they write
// nothing, not even to their own record.
func TestHealthRecordRowScope(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	own, other := d.patients[0], d.patients[1]
	mine := recordVitals(t, s, "nurse", map[string]any{"patientId": own, "heartRate": 70})
	theirs := recordVitals(t, s, "nurse", map[string]any{"patientId": other, "heartRate": 90})
	var amended struct{ AmendObservation struct{ ID string } }
	s.as("nurse", amendObservationMutation, map[string]any{"id": mine[0].ID, "v": 72, "r": "recounted"}).decode(t, &amended)

	var chart struct {
		Patient struct {
			Allergies    []struct{ Substance string }
			Problems     []struct{ Icd10Code string }
			Observations struct {
				Edges []struct{ Node struct{ ID, Status string } }
			}
		}
	}
	s.as("patient", `query($id: ID!) { patient(id: $id) { allergies { substance } problems { icd10Code }
	  observations(first: 50) { edges { node { id status } } } } }`, map[string]any{"id": own}).decode(t, &chart)
	statuses := map[string]string{}
	for _, e := range chart.Patient.Observations.Edges {
		statuses[e.Node.ID] = e.Node.Status
	}
	must(t, len(chart.Patient.Allergies) == 1 && len(chart.Patient.Problems) == 1, "own chart: %+v", chart)
	must(t, statuses[mine[0].ID] == "AMENDED" && statuses[amended.AmendObservation.ID] == "FINAL", "own observations: %v", statuses)

	r := s.as("patient", `query($id: ID!) { node(id: $id) { ... on Observation { value } } }`, map[string]any{"id": theirs[0].ID})
	must(t, r.hasCode("NOT_FOUND"), "another patient's observation: %s", describe(r))
	r = s.as("patient", `query($id: ID!) { patient(id: $id) { observations { totalCount } } }`, map[string]any{"id": other})
	must(t, r.hasCode("NOT_FOUND"), "another patient's chart: %s", describe(r))

	for name, doc := range map[string]string{
		"recordVitals":  `mutation($p: ID!) { recordVitals(input: {patientId: $p, heartRate: 60}) { id } }`,
		"recordAllergy": `mutation($p: ID!) { recordAllergy(input: {patientId: $p, substance: "Nuts", category: FOOD, severity: MILD}) { id } }`,
		"recordHistoryItem": `mutation($p: ID!) { recordHistoryItem(input: {patientId: $p, category: SOCIAL,
		  description: "Runs"}) { id } }`,
	} {
		r := s.as("patient", doc, map[string]any{"p": own})
		must(t, r.hasCode("FORBIDDEN"), "the patient calls %s on their own record: %s", name, describe(r))
	}
}

const vitalsSubscription = `subscription($patientId: ID, $wardId: ID, $after: String) {
  vitalsRecorded(patientId: $patientId, wardId: $wardId, after: $after) {
    eventId type occurredAt patient { id } observations { id code value unit status }
  }
}`

type vitalsEvent struct {
	EventID, Type, OccurredAt string
	Patient                   struct{ ID string }
	Observations              []struct {
		ID, Code, Unit, Status string
		Value                  float64
	}
}

// vitalsFeed is one vitalsRecorded subscription on its own connection.
type vitalsFeed struct {
	t  testing.TB
	c  *wsClient
	id string
	// probes are the observations awaitVitalsLive recorded; their events
	// are not part of what a test asserts, whenever they arrive.
	probes map[string]bool
}

func subscribeVitals(t testing.TB, s *server, proto, credential string, args map[string]any) *vitalsFeed {
	t.Helper()
	c := s.dialWS(t, proto)
	c.init(credential)
	return &vitalsFeed{t: t, c: c, id: c.start(vitalsSubscription, args), probes: map[string]bool{}}
}

func (f *vitalsFeed) next() vitalsEvent {
	f.t.Helper()
	for {
		if ev := f.decode(f.c.result(f.id)); !f.probes[ev.Observations[0].ID] {
			return ev
		}
	}
}

func (f *vitalsFeed) decode(r opResult) vitalsEvent {
	f.t.Helper()
	if r.kind != "next" {
		f.t.Fatalf("%s: want an event, got %s: %v", f.c.proto, r.kind, r.resp.Errors)
	}
	var out struct{ VitalsRecorded vitalsEvent }
	r.resp.decode(f.t, &out)
	ev := out.VitalsRecorded
	must(f.t, events.ValidID(ev.EventID), "eventId %q is not an event ID", ev.EventID)
	_, err := time.Parse(time.RFC3339, ev.OccurredAt)
	must(f.t, err == nil && len(ev.Observations) > 0, "event %+v: %v", ev, err)
	return ev
}

// awaitVitalsLive returns once every feed is receiving, proven as
// awaitLive proves it: probe records vital signs every feed can see until
// each has heard of them. probe returns the first observation's ID.
func awaitVitalsLive(t testing.TB, probe func() string, feeds ...*vitalsFeed) {
	t.Helper()
	waiting := append([]*vitalsFeed(nil), feeds...)
	for attempt := 0; len(waiting) > 0; attempt++ {
		if attempt == 20 {
			t.Fatalf("%d subscription(s) received none of %d probe events", len(waiting), attempt)
		}
		id := probe()
		for _, f := range feeds {
			f.probes[id] = true
		}
		var still []*vitalsFeed
		for _, f := range waiting {
			r, ok := f.c.resultWithin(f.id, 500*time.Millisecond)
			if !ok {
				if err := f.c.closeErr(); err != nil {
					t.Fatalf("%s: connection closed while waiting for a probe: %v", f.c.proto, err)
				}
				still = append(still, f)
				continue
			}
			ev := f.decode(r)
			must(t, f.probes[ev.Observations[0].ID], "%s: event for %s arrived before any probe", f.c.proto, ev.Observations[0].ID)
		}
		waiting = still
	}
}

// vitalsProbe records a heart rate for patientID as the nurse.
func vitalsProbe(t testing.TB, s *server, patientID string) func() string {
	return func() string {
		return recordVitals(t, s, "nurse", map[string]any{"patientId": patientID, "heartRate": 75})[0].ID
	}
}

func TestVitalsRecordedPatientFilter(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			d := s.demo()
			f := subscribeVitals(t, s, proto, s.token("doctor"), map[string]any{"patientId": d.patients[1]})
			awaitVitalsLive(t, vitalsProbe(t, s, d.patients[1]), f)

			others := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[2], "heartRate": 120})
			wanted := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[1], "systolicBp": 142, "diastolicBp": 91, "spo2": 94})
			ev := f.next()
			must(t, ev.Type == "RECORDED" && ev.Patient.ID == d.patients[1] && len(ev.Observations) == 3,
				"want the 3 signs of %s together (not %s's), got %+v", d.patients[1], others[0].ID, ev)
			for i, o := range ev.Observations {
				must(t, o.ID == wanted[i].ID && o.Status == "FINAL", "observation %d: %+v, want %s", i, o, wanted[i].ID)
			}

			var amended struct{ AmendObservation struct{ ID string } }
			s.as("nurse", amendObservationMutation, map[string]any{"id": wanted[2].ID, "v": 98, "r": "probe slipped"}).decode(t, &amended)
			ev = f.next()
			must(t, ev.Type == "AMENDED" && len(ev.Observations) == 1 && ev.Observations[0].ID == amended.AmendObservation.ID &&
				ev.Observations[0].Value == 98, "amendment event: %+v", ev)
		})
	}
}

func TestVitalsRecordedWardFilter(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	var wards struct {
		Wards struct {
			Edges []struct{ Node struct{ ID, Code string } }
		}
	}
	s.as("admin", `{ wards(first: 10) { edges { node { id code } } } }`, nil).decode(t, &wards)
	ccu := ""
	for _, e := range wards.Wards.Edges {
		if e.Node.Code == "CCU" {
			ccu = e.Node.ID
		}
	}
	must(t, ccu != "", "the demo has a coronary care unit: %+v", wards)
	// The demo's inpatient, patients[3], is in the CCU; patients[1] is not admitted.
	inpatient, outpatient := d.patients[3], d.patients[1]
	f := subscribeVitals(t, s, protoTransportWS, s.token("nurse"), map[string]any{"wardId": ccu})
	awaitVitalsLive(t, vitalsProbe(t, s, inpatient), f)

	recordVitals(t, s, "nurse", map[string]any{"patientId": outpatient, "heartRate": 66})
	bedside := recordVitals(t, s, "nurse", map[string]any{"patientId": inpatient, "heartRate": 131, "respiratoryRate": 24})
	ev := f.next()
	must(t, ev.Patient.ID == inpatient && len(ev.Observations) == 2 && ev.Observations[0].ID == bedside[0].ID,
		"the ward's feed: want %s's signs only, got %+v", inpatient, ev)
}

func TestVitalsRecordedResume(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	f := subscribeVitals(t, s, protoTransportWS, s.token("doctor"), nil)
	awaitVitalsLive(t, vitalsProbe(t, s, d.patients[4]), f)

	first := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[1], "heartRate": 61})
	seen := f.next()
	must(t, seen.Observations[0].ID == first[0].ID, "want %s, got %+v", first[0].ID, seen)
	f.c.close()

	missed := []string{
		recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[2], "heartRate": 62})[0].ID,
		recordVitals(t, s, "doctor", map[string]any{"patientId": d.patients[1], "temperature": 37.9})[0].ID,
	}
	g := subscribeVitals(t, s, protoTransportWS, s.token("doctor"), map[string]any{"after": seen.EventID})
	last := seen.EventID
	for i, want := range missed {
		ev := g.next()
		must(t, ev.Observations[0].ID == want, "replayed event %d is for %s, want %s", i, ev.Observations[0].ID, want)
		must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
		last = ev.EventID
	}
	// With a cursor the subscription is gap-free from the start: no probe needed.
	live := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[3], "spo2": 93})[0].ID
	ev := g.next()
	must(t, ev.Observations[0].ID == live && events.CompareIDs(last, ev.EventID) < 0, "after the replay want the live %s, got %+v", live, ev)
}

func TestVitalsRecordedRowScope(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	own := subscribeVitals(t, s, protoTransportWS, s.token("patient"), nil)
	// A member of staff hears both, which shows that the other patient's
	// event was published and the patient's feed left it out.
	staff := subscribeVitals(t, s, protoTransportWS, s.token("doctor"), nil)
	awaitVitalsLive(t, vitalsProbe(t, s, d.patients[0]), own, staff)

	others := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[1], "heartRate": 99})[0].ID
	mine := recordVitals(t, s, "nurse", map[string]any{"patientId": d.patients[0], "heartRate": 71})[0].ID
	ev := own.next()
	must(t, ev.Observations[0].ID == mine && ev.Patient.ID == d.patients[0],
		"the patient's first event is for %s, want their own %s (another patient's %s must not reach them)", ev.Observations[0].ID, mine, others)
	for _, want := range []string{others, mine} {
		ev := staff.next()
		must(t, ev.Observations[0].ID == want, "staff feed: want %s, got %+v", want, ev)
	}
}

func TestVitalsRecordedAuthorization(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			for _, user := range []string{"labtech", "pharmacist", "reception", "billing", "hr", "auditor", ""} {
				credential, who := "", "anonymous"
				if user != "" {
					credential, who = s.token(user), user
				}
				c := s.dialWS(t, proto)
				c.init(credential)
				errs := c.failure(c.start(vitalsSubscription, nil))
				must(t, len(errs) == 1 && errs[0].code() == deniedCode(who), "%s: want %s, got %v", who, deniedCode(who), errs)
				c.close()
			}
			c := s.dialWS(t, proto)
			c.init(s.token("nurse"))
			for _, tc := range []struct {
				args  map[string]any
				field string
			}{
				{map[string]any{"after": "not-an-id"}, "after"},
				{map[string]any{"patientId": "garbage"}, "patientId"},
				{map[string]any{"wardId": "garbage"}, "wardId"},
			} {
				errs := c.failure(c.start(vitalsSubscription, tc.args))
				must(t, len(errs) == 1 && errs[0].code() == "BAD_USER_INPUT" && errs[0].field() == tc.field,
					"%v: want BAD_USER_INPUT on %s, got %v", tc.args, tc.field, errs)
			}
		})
	}
}
