package ehr

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
)

// seedICD10 loads the ICD-10 catalog into s's database, as the server does
// after migrating; loading it twice changes nothing.
func seedICD10(t testing.TB, s *harness.Server) {
	t.Helper()
	if err := ehr.SeedICD10(auth.SystemContext(context.Background()), s.App.Store.Client); err != nil {
		t.Fatalf("seed ICD-10: %v", err)
	}
}

const (
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
func recordVitals(t testing.TB, s *harness.Server, user string, in map[string]any) []observationResult {
	t.Helper()
	var out struct{ RecordVitals []observationResult }
	s.As(user, recordVitalsMutation, map[string]any{"in": in}).Decode(t, &out)
	return out.RecordVitals
}

// chartCounts counts the items of each part of a patient's record, as the
// admin sees them.
func chartCounts(t testing.TB, s *harness.Server, patientID string) string {
	t.Helper()
	var out struct {
		Patient struct {
			Problems, Allergies, History []struct{ ID string }
			Encounters, Observations     struct{ TotalCount int }
		}
	}
	s.As("admin", `query($id: ID!) { patient(id: $id) {
	  problems { id } allergies { id } history { id }
	  encounters { totalCount } observations { totalCount } } }`, map[string]any{"id": patientID}).Decode(t, &out)
	p := out.Patient
	return fmt.Sprintf("problems=%d allergies=%d history=%d encounters=%d observations=%d",
		len(p.Problems), len(p.Allergies), len(p.History), p.Encounters.TotalCount, p.Observations.TotalCount)
}

func TestEncounterLifecycle(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	start := func(user, typ string) harness.Response {
		return s.As(user, harness.StartEncounterMutation, map[string]any{"in": map[string]any{
			"patientId": d.Patients[1], "type": typ, "departmentId": d.General, "providerId": d.Doctor, "reason": "Fever for three days",
		}})
	}
	var started struct{ StartEncounter encounterResult }
	start("nurse", "OUTPATIENT").Decode(t, &started)
	e := started.StartEncounter
	harness.Must(t, e.Status == "IN_PROGRESS" && e.Type == "OUTPATIENT" && e.Patient.ID == d.Patients[1] && e.Department.ID == d.General &&
		e.Provider != nil && e.Provider.ID == d.Doctor && e.EndedAt == nil && *e.Reason == "Fever for three days", "started: %+v", e)

	// Vitals taken during the visit belong to it.
	obs := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[1], "encounterId": e.ID, "temperature": 38.9, "heartRate": 104})
	harness.Must(t, len(obs) == 2 && obs[0].Encounter != nil && obs[0].Encounter.ID == e.ID && obs[0].RecordedBy != nil && obs[0].RecordedBy.ID == d.Nurse,
		"vitals in the encounter: %+v", obs)

	var finished struct{ FinishEncounter encounterResult }
	s.As("nurse", finishEncounterMutation, map[string]any{"id": e.ID}).Decode(t, &finished)
	harness.Must(t, finished.FinishEncounter.Status == "FINISHED" && finished.FinishEncounter.EndedAt != nil, "finished: %+v", finished)
	r := s.As("nurse", finishEncounterMutation, map[string]any{"id": e.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "finish twice: %s", harness.Describe(r))
	r = s.As("doctor", cancelEncounterMutation, map[string]any{"id": e.ID, "r": "wrong patient"})
	harness.Must(t, r.HasCode("CONFLICT"), "cancel a finished encounter: %s", harness.Describe(r))
	r = s.As("doctor", recordVitalsMutation, map[string]any{"in": map[string]any{"patientId": d.Patients[2], "encounterId": e.ID, "heartRate": 80}})
	harness.WantBadInput(t, "vitals in another patient's encounter", r, "input.encounterId")

	start("doctor", "EMERGENCY").Decode(t, &started)
	emergency := started.StartEncounter
	harness.Must(t, emergency.Type == "EMERGENCY", "emergency: %+v", emergency)
	r = s.As("nurse", cancelEncounterMutation, map[string]any{"id": emergency.ID, "r": "left"})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a nurse cancels: %s", harness.Describe(r))
	var cancelled struct{ CancelEncounter encounterResult }
	s.As("doctor", cancelEncounterMutation, map[string]any{"id": emergency.ID, "r": "registered twice"}).Decode(t, &cancelled)
	harness.Must(t, cancelled.CancelEncounter.Status == "CANCELLED", "cancelled: %+v", cancelled)
	r = s.As("nurse", finishEncounterMutation, map[string]any{"id": emergency.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "finish a cancelled encounter: %s", harness.Describe(r))

	before := chartCounts(t, s, d.Patients[1])
	harness.WantBadInput(t, "inpatient", start("doctor", "INPATIENT"), "input.type")
	r = s.As("doctor", harness.StartEncounterMutation, map[string]any{"in": map[string]any{
		"patientId": d.Patients[1], "type": "OUTPATIENT", "departmentId": d.General, "providerId": d.Labtech, "reason": "x"}})
	harness.WantBadInput(t, "a lab technician as provider", r, "input.providerId")
	r = s.As("doctor", harness.StartEncounterMutation, map[string]any{"in": map[string]any{
		"patientId": d.Patients[1], "type": "OUTPATIENT", "departmentId": d.General, "reason": "  "}})
	harness.WantBadInput(t, "no reason", r, "input.reason")
	harness.Must(t, chartCounts(t, s, d.Patients[1]) == before, "refused starts changed the record: %s, was %s", chartCounts(t, s, d.Patients[1]), before)

	for _, user := range []string{"reception", "pharmacist", "patient", "billing"} {
		r := start(user, "OUTPATIENT")
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s starts an encounter: %s", user, harness.Describe(r))
	}
}

func TestConcurrentEncounterEndsOneWins(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	var started struct{ StartEncounter encounterResult }
	s.As("doctor", harness.StartEncounterMutation, map[string]any{"in": map[string]any{
		"patientId": d.Patients[2], "type": "EMERGENCY", "departmentId": d.General, "reason": "Fall"}}).Decode(t, &started)
	token := s.Token("doctor")
	const n = 10
	results := make([]harness.Response, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				results[i] = s.Do(token, finishEncounterMutation, map[string]any{"id": started.StartEncounter.ID})
			} else {
				results[i] = s.Do(token, cancelEncounterMutation, map[string]any{"id": started.StartEncounter.ID, "r": "left"})
			}
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case !r.HasCode("CONFLICT"):
			t.Errorf("unexpected outcome: %s", harness.Describe(r))
		}
	}
	harness.Must(t, wins == 1, "%d of %d concurrent ends won, want exactly 1", wins, n)
}

func TestProblemsAndICD10Search(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	seedICD10(t, s)
	d := s.Demo()

	var found struct {
		SearchIcd10 []struct{ Code, Display string }
	}
	s.As("doctor", `{ searchIcd10(text: "e11", first: 5) { code display } }`, nil).Decode(t, &found)
	harness.Must(t, len(found.SearchIcd10) > 0 && found.SearchIcd10[0].Code == "E11.9" &&
		found.SearchIcd10[0].Display == "Type 2 diabetes mellitus without complications", "e11: %+v", found)
	s.As("reception", `{ searchIcd10(text: "atrial fibrillation") { code display } }`, nil).Decode(t, &found)
	harness.Must(t, len(found.SearchIcd10) == 1 && found.SearchIcd10[0].Code == "I48.91", "atrial fibrillation: %+v", found)
	harness.WantBadInput(t, "first 1000", s.As("doctor", `{ searchIcd10(text: "asthma", first: 1000) { code } }`, nil), "first")
	r := s.As("patient", `{ searchIcd10(text: "asthma") { code } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient searches the catalog: %s", harness.Describe(r))

	type problemResult struct {
		ID, Icd10Code, Display, Status string
		RecordedBy                     *struct{ ID string }
	}
	var recorded struct{ RecordProblem problemResult }
	s.As("doctor", harness.RecordProblemMutation, map[string]any{"in": map[string]any{
		"patientId": d.Patients[1], "icd10Code": "j18.9", "onsetDate": time.Now().UTC().AddDate(0, 0, -2).Format("2006-01-02"),
	}}).Decode(t, &recorded)
	p := recorded.RecordProblem
	harness.Must(t, p.Icd10Code == "J18.9" && p.Display == "Pneumonia, unspecified organism" && p.Status == "ACTIVE" &&
		p.RecordedBy != nil && p.RecordedBy.ID == d.Doctor, "recorded: %+v", p)

	before := chartCounts(t, s, d.Patients[1])
	r = s.As("doctor", harness.RecordProblemMutation, map[string]any{"in": map[string]any{"patientId": d.Patients[1], "icd10Code": "Q99.9"}})
	harness.WantBadInput(t, "a code outside the catalog", r, "input.icd10Code")
	r = s.As("doctor", harness.RecordProblemMutation, map[string]any{"in": map[string]any{"patientId": d.Patients[1], "icd10Code": "I10", "onsetDate": "2999-01-01"}})
	harness.WantBadInput(t, "onset in the future", r, "input.onsetDate")
	r = s.As("nurse", harness.RecordProblemMutation, map[string]any{"in": map[string]any{"patientId": d.Patients[1], "icd10Code": "I10"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a nurse diagnoses: %s", harness.Describe(r))
	harness.Must(t, chartCounts(t, s, d.Patients[1]) == before, "refused problems changed the record")

	const resolve = `mutation($id: ID!, $on: Date) { resolveProblem(id: $id, resolvedDate: $on) { id status resolvedDate } }`
	var resolved struct {
		ResolveProblem struct{ Status, ResolvedDate string }
	}
	today := time.Now().UTC().Format("2006-01-02")
	s.As("doctor", resolve, map[string]any{"id": p.ID, "on": today}).Decode(t, &resolved)
	harness.Must(t, resolved.ResolveProblem.Status == "RESOLVED" && resolved.ResolveProblem.ResolvedDate == today, "resolved: %+v", resolved)
	r = s.As("doctor", resolve, map[string]any{"id": p.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "resolve twice: %s", harness.Describe(r))
	const withdraw = `mutation($id: ID!) { markProblemEnteredInError(id: $id) { id status } }`
	r = s.As("doctor", withdraw, map[string]any{"id": p.ID})
	harness.Must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), "ENTERED_IN_ERROR"), "withdraw: %s", harness.Describe(r))
	r = s.As("doctor", withdraw, map[string]any{"id": p.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "withdraw twice: %s", harness.Describe(r))
}

func TestAllergiesOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	type allergyResult struct {
		ID, Substance, Status, Severity string
		Reaction                        *string
	}
	var recorded struct{ RecordAllergy allergyResult }
	s.As("pharmacist", recordAllergyMutation, map[string]any{"in": map[string]any{
		"patientId": d.Patients[2], "substance": " Aspirin ", "category": "DRUG", "reaction": "Wheeze", "severity": "MODERATE",
	}}).Decode(t, &recorded)
	a := recorded.RecordAllergy
	harness.Must(t, a.Substance == "Aspirin" && a.Status == "ACTIVE" && *a.Reaction == "Wheeze", "recorded: %+v", a)

	before := chartCounts(t, s, d.Patients[2])
	r := s.As("nurse", recordAllergyMutation, map[string]any{"in": map[string]any{
		"patientId": d.Patients[2], "substance": "aspirin", "category": "DRUG", "severity": "SEVERE"}})
	harness.Must(t, r.HasCode("CONFLICT"), "a second active aspirin allergy: %s", harness.Describe(r))
	r = s.As("nurse", recordAllergyMutation, map[string]any{"in": map[string]any{
		"patientId": d.Patients[2], "substance": "", "category": "FOOD", "severity": "MILD"}})
	harness.WantBadInput(t, "no substance", r, "input.substance")
	harness.Must(t, chartCounts(t, s, d.Patients[2]) == before, "refused allergies changed the record")

	// Omitted fields are kept and a null reaction is cleared.
	var updated struct{ UpdateAllergy allergyResult }
	s.As("doctor", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"reaction": nil}}).Decode(t, &updated)
	harness.Must(t, updated.UpdateAllergy.Reaction == nil && updated.UpdateAllergy.Severity == "MODERATE" && updated.UpdateAllergy.Status == "ACTIVE",
		"reaction cleared: %+v", updated)
	harness.WantBadInput(t, "severity null", s.As("doctor", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"severity": nil}}), "input.severity")
	s.As("doctor", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"status": "ENTERED_IN_ERROR"}}).Decode(t, &updated)
	harness.Must(t, updated.UpdateAllergy.Status == "ENTERED_IN_ERROR", "withdrawn: %+v", updated)
	r = s.As("doctor", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"status": "ACTIVE"}})
	harness.Must(t, r.HasCode("CONFLICT"), "revive an allergy entered in error: %s", harness.Describe(r))
	r = s.As("pharmacist", updateAllergyMutation, map[string]any{"id": a.ID, "in": map[string]any{"severity": "MILD"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a pharmacist updates: %s", harness.Describe(r))
}

func TestConcurrentDuplicateAllergiesOneWins(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	users := []string{"doctor", "nurse", "pharmacist"}
	tokens := map[string]string{}
	for _, u := range users {
		tokens[u] = s.Token(u)
	}
	const n = 9
	results := make([]harness.Response, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.Do(tokens[users[i%3]], recordAllergyMutation, map[string]any{"in": map[string]any{
				"patientId": d.Patients[4], "substance": []string{"Latex", "latex", "LATEX"}[i%3], "category": "ENVIRONMENT", "severity": "MODERATE"}})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case !r.HasCode("CONFLICT"):
			t.Errorf("unexpected outcome: %s", harness.Describe(r))
		}
	}
	harness.Must(t, wins == 1, "%d of %d concurrent recordings won, want exactly 1", wins, n)
	harness.Must(t, strings.Contains(chartCounts(t, s, d.Patients[4]), "allergies=1 "), "allergies: %s", chartCounts(t, s, d.Patients[4]))
}

func TestVitalsValidationAndAmendment(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	taken := time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Second).Format(time.RFC3339)
	obs := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[1], "effectiveAt": taken,
		"heartRate": 88, "systolicBp": 135, "diastolicBp": 85, "temperature": 37.2, "spo2": 96, "respiratoryRate": 18, "weight": 64.2, "height": 168})
	harness.Must(t, len(obs) == 8, "8 observations, got %+v", obs)
	units := map[string]string{}
	for _, o := range obs {
		units[o.Code] = o.Unit
		harness.Must(t, o.Status == "FINAL" && o.EffectiveAt == taken && o.RecordedBy != nil && o.RecordedBy.ID == d.Nurse, "observation %+v", o)
	}
	for code, unit := range map[string]string{"8867-4": "/min", "8480-6": "mm[Hg]", "8462-4": "mm[Hg]", "8310-5": "Cel",
		"59408-5": "%", "9279-1": "/min", "29463-7": "kg", "8302-2": "cm"} {
		harness.Must(t, units[code] == unit, "%s in %q, want %q", code, units[code], unit)
	}

	before := chartCounts(t, s, d.Patients[1])
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
		tc.in["patientId"] = d.Patients[1]
		harness.WantBadInput(t, fmt.Sprint(tc.in), s.As("nurse", recordVitalsMutation, map[string]any{"in": tc.in}), tc.field)
	}
	harness.Must(t, chartCounts(t, s, d.Patients[1]) == before, "refused vitals changed the record: %s, was %s", chartCounts(t, s, d.Patients[1]), before)

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
	s.As("nurse", amendObservationMutation, map[string]any{"id": weight.ID, "v": 46.2, "r": "read the wrong line of the chart"}).Decode(t, &amended)
	a := amended.AmendObservation
	harness.Must(t, a.ID != weight.ID && a.Status == "FINAL" && a.Value == 46.2 && a.AmendReason != nil && a.Replaces != nil &&
		a.Replaces.ID == weight.ID && a.Replaces.Status == "AMENDED" && a.Replaces.Value == 64.2, "amended: %+v", a)
	r := s.As("doctor", amendObservationMutation, map[string]any{"id": weight.ID, "v": 47, "r": "again"})
	harness.Must(t, r.HasCode("CONFLICT"), "amend an amended observation: %s", harness.Describe(r))

	// The old value stays in the record, marked, and leads to its replacement.
	var old struct {
		Node struct {
			Status     string
			Value      float64
			ReplacedBy *struct{ ID string }
		}
	}
	s.As("doctor", `query($id: ID!) { node(id: $id) { ... on Observation { status value replacedBy { id } } } }`,
		map[string]any{"id": weight.ID}).Decode(t, &old)
	harness.Must(t, old.Node.Status == "AMENDED" && old.Node.Value == 64.2 && old.Node.ReplacedBy != nil && old.Node.ReplacedBy.ID == a.ID, "old: %+v", old)

	const withdraw = `mutation($id: ID!, $r: String!) { markObservationEnteredInError(id: $id, reason: $r) { id status amendReason } }`
	r = s.As("nurse", withdraw, map[string]any{"id": a.ID, "r": "weighed the wrong patient"})
	harness.Must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), "ENTERED_IN_ERROR"), "withdraw: %s", harness.Describe(r))
	r = s.As("nurse", withdraw, map[string]any{"id": a.ID, "r": "again"})
	harness.Must(t, r.HasCode("CONFLICT"), "withdraw twice: %s", harness.Describe(r))
	r = s.As("pharmacist", withdraw, map[string]any{"id": obs[0].ID, "r": "x"})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a pharmacist withdraws a vital sign: %s", harness.Describe(r))

	var glucose struct{ RecordObservation observationResult }
	s.As("nurse", `mutation { recordObservation(input: {patientId: "`+d.Patients[1]+`", code: "2339-0",
	  display: "Glucose [Mass/volume] in Blood", value: 142, unit: "mg/dL"}) { id code value unit status } }`, nil).Decode(t, &glucose)
	harness.Must(t, glucose.RecordObservation.Code == "2339-0" && glucose.RecordObservation.Unit == "mg/dL", "glucose: %+v", glucose)
	r = s.As("nurse", `mutation { recordObservation(input: {patientId: "`+d.Patients[1]+`", code: "2339-9",
	  display: "Glucose", value: 142, unit: "mg/dL"}) { id } }`, nil)
	harness.WantBadInput(t, "a wrong LOINC check digit", r, "input.code")
}

func TestConcurrentAmendmentsOneWins(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	obs := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[2], "respiratoryRate": 14})
	tokens := []string{s.Token("nurse"), s.Token("doctor")}
	const n = 10
	results := make([]harness.Response, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.Do(tokens[i%2], amendObservationMutation, map[string]any{"id": obs[0].ID, "v": 20 + i, "r": "recounted"})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case !r.HasCode("CONFLICT"):
			t.Errorf("unexpected outcome: %s", harness.Describe(r))
		}
	}
	harness.Must(t, wins == 1, "%d of %d concurrent amendments won, want exactly 1", wins, n)
	harness.Must(t, strings.Contains(chartCounts(t, s, d.Patients[2]), "observations=2"), "observations: %s", chartCounts(t, s, d.Patients[2]))
}

func TestHistoryItems(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	const record = `mutation($in: RecordHistoryItemInput!) { recordHistoryItem(input: $in) { id category description relation date status } }`
	var out struct {
		RecordHistoryItem struct {
			ID, Category, Description, Status string
			Relation, Date                    *string
		}
	}
	s.As("nurse", record, map[string]any{"in": map[string]any{
		"patientId": d.Patients[1], "category": "SURGERY", "description": "Appendectomy", "date": "2015-08-01"}}).Decode(t, &out)
	h := out.RecordHistoryItem
	harness.Must(t, h.Category == "SURGERY" && h.Status == "ACTIVE" && *h.Date == "2015-08-01" && h.Relation == nil, "recorded: %+v", h)
	harness.WantBadInput(t, "relation outside family history", s.As("nurse", record, map[string]any{"in": map[string]any{
		"patientId": d.Patients[1], "category": "SOCIAL", "description": "Smokes", "relation": "father"}}), "input.relation")
	r := s.As("pharmacist", record, map[string]any{"in": map[string]any{"patientId": d.Patients[1], "category": "SOCIAL", "description": "x"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a pharmacist takes history: %s", harness.Describe(r))

	const withdraw = `mutation($id: ID!) { markHistoryItemEnteredInError(id: $id) { id status } }`
	r = s.As("nurse", withdraw, map[string]any{"id": h.ID})
	harness.Must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), "ENTERED_IN_ERROR"), "withdraw: %s", harness.Describe(r))
	r = s.As("doctor", withdraw, map[string]any{"id": h.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "withdraw twice: %s", harness.Describe(r))
}

// TestHealthRecordRowScope: the patient reads their own record, amended
// values included, and reaches nothing of another patient's; they write
// nothing, not even to their own record.
func TestHealthRecordRowScope(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	own, other := d.Patients[0], d.Patients[1]
	mine := recordVitals(t, s, "nurse", map[string]any{"patientId": own, "heartRate": 70})
	theirs := recordVitals(t, s, "nurse", map[string]any{"patientId": other, "heartRate": 90})
	var amended struct{ AmendObservation struct{ ID string } }
	s.As("nurse", amendObservationMutation, map[string]any{"id": mine[0].ID, "v": 72, "r": "recounted"}).Decode(t, &amended)

	var chart struct {
		Patient struct {
			Allergies    []struct{ Substance string }
			Problems     []struct{ Icd10Code string }
			Observations struct {
				Edges []struct{ Node struct{ ID, Status string } }
			}
		}
	}
	s.As("patient", `query($id: ID!) { patient(id: $id) { allergies { substance } problems { icd10Code }
	  observations(first: 50) { edges { node { id status } } } } }`, map[string]any{"id": own}).Decode(t, &chart)
	statuses := map[string]string{}
	for _, e := range chart.Patient.Observations.Edges {
		statuses[e.Node.ID] = e.Node.Status
	}
	harness.Must(t, len(chart.Patient.Allergies) == 1 && len(chart.Patient.Problems) == 1, "own chart: %+v", chart)
	harness.Must(t, statuses[mine[0].ID] == "AMENDED" && statuses[amended.AmendObservation.ID] == "FINAL", "own observations: %v", statuses)

	r := s.As("patient", `query($id: ID!) { node(id: $id) { ... on Observation { value } } }`, map[string]any{"id": theirs[0].ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's observation: %s", harness.Describe(r))
	r = s.As("patient", `query($id: ID!) { patient(id: $id) { observations { totalCount } } }`, map[string]any{"id": other})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's chart: %s", harness.Describe(r))

	for name, doc := range map[string]string{
		"recordVitals":  `mutation($p: ID!) { recordVitals(input: {patientId: $p, heartRate: 60}) { id } }`,
		"recordAllergy": `mutation($p: ID!) { recordAllergy(input: {patientId: $p, substance: "Nuts", category: FOOD, severity: MILD}) { id } }`,
		"recordHistoryItem": `mutation($p: ID!) { recordHistoryItem(input: {patientId: $p, category: SOCIAL,
		  description: "Runs"}) { id } }`,
	} {
		r := s.As("patient", doc, map[string]any{"p": own})
		harness.Must(t, r.HasCode("FORBIDDEN"), "the patient calls %s on their own record: %s", name, harness.Describe(r))
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

// vitalsFeed is one vitalsRecorded subscription; its probes are
// observation IDs.
type vitalsFeed = harness.Feed[vitalsEvent]

func subscribeVitals(t testing.TB, s *harness.Server, proto, credential string, args map[string]any) *vitalsFeed {
	t.Helper()
	return harness.Subscribe(t, s, proto, credential, vitalsSubscription, args, func(ev vitalsEvent) string {
		if len(ev.Observations) == 0 {
			return ""
		}
		return ev.Observations[0].ID
	})
}

// vitalsProbe records a heart rate for patientID as the nurse.
func vitalsProbe(t testing.TB, s *harness.Server, patientID string) func() string {
	return func() string {
		return recordVitals(t, s, "nurse", map[string]any{"patientId": patientID, "heartRate": 75})[0].ID
	}
}

func TestVitalsRecordedPatientFilter(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			d := s.Demo()
			f := subscribeVitals(t, s, proto, s.Token("doctor"), map[string]any{"patientId": d.Patients[1]})
			harness.AwaitLive(t, vitalsProbe(t, s, d.Patients[1]), f)

			others := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[2], "heartRate": 120})
			wanted := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[1], "systolicBp": 142, "diastolicBp": 91, "spo2": 94})
			ev := f.Next()
			harness.Must(t, ev.Type == "RECORDED" && ev.Patient.ID == d.Patients[1] && len(ev.Observations) == 3,
				"want the 3 signs of %s together (not %s's), got %+v", d.Patients[1], others[0].ID, ev)
			for i, o := range ev.Observations {
				harness.Must(t, o.ID == wanted[i].ID && o.Status == "FINAL", "observation %d: %+v, want %s", i, o, wanted[i].ID)
			}

			var amended struct{ AmendObservation struct{ ID string } }
			s.As("nurse", amendObservationMutation, map[string]any{"id": wanted[2].ID, "v": 98, "r": "probe slipped"}).Decode(t, &amended)
			ev = f.Next()
			harness.Must(t, ev.Type == "AMENDED" && len(ev.Observations) == 1 && ev.Observations[0].ID == amended.AmendObservation.ID &&
				ev.Observations[0].Value == 98, "amendment event: %+v", ev)
		})
	}
}

func TestVitalsRecordedWardFilter(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	var wards struct {
		Wards struct {
			Edges []struct{ Node struct{ ID, Code string } }
		}
	}
	s.As("admin", `{ wards(first: 10) { edges { node { id code } } } }`, nil).Decode(t, &wards)
	ccu := ""
	for _, e := range wards.Wards.Edges {
		if e.Node.Code == "CCU" {
			ccu = e.Node.ID
		}
	}
	harness.Must(t, ccu != "", "the demo has a coronary care unit: %+v", wards)
	// The demo's inpatient, patients[3], is in the CCU; patients[1] is not admitted.
	inpatient, outpatient := d.Patients[3], d.Patients[1]
	f := subscribeVitals(t, s, harness.ProtoTransportWS, s.Token("nurse"), map[string]any{"wardId": ccu})
	harness.AwaitLive(t, vitalsProbe(t, s, inpatient), f)

	recordVitals(t, s, "nurse", map[string]any{"patientId": outpatient, "heartRate": 66})
	bedside := recordVitals(t, s, "nurse", map[string]any{"patientId": inpatient, "heartRate": 131, "respiratoryRate": 24})
	ev := f.Next()
	harness.Must(t, ev.Patient.ID == inpatient && len(ev.Observations) == 2 && ev.Observations[0].ID == bedside[0].ID,
		"the ward's feed: want %s's signs only, got %+v", inpatient, ev)
}

func TestVitalsRecordedResume(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	f := subscribeVitals(t, s, harness.ProtoTransportWS, s.Token("doctor"), nil)
	harness.AwaitLive(t, vitalsProbe(t, s, d.Patients[4]), f)

	first := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[1], "heartRate": 61})
	seen := f.Next()
	harness.Must(t, seen.Observations[0].ID == first[0].ID, "want %s, got %+v", first[0].ID, seen)
	f.Conn.Close()

	missed := []string{
		recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[2], "heartRate": 62})[0].ID,
		recordVitals(t, s, "doctor", map[string]any{"patientId": d.Patients[1], "temperature": 37.9})[0].ID,
	}
	g := subscribeVitals(t, s, harness.ProtoTransportWS, s.Token("doctor"), map[string]any{"after": seen.EventID})
	last := seen.EventID
	for i, want := range missed {
		ev := g.Next()
		harness.Must(t, ev.Observations[0].ID == want, "replayed event %d is for %s, want %s", i, ev.Observations[0].ID, want)
		harness.Must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
		last = ev.EventID
	}
	// With a cursor the subscription is gap-free from the start: no probe needed.
	live := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[3], "spo2": 93})[0].ID
	ev := g.Next()
	harness.Must(t, ev.Observations[0].ID == live && events.CompareIDs(last, ev.EventID) < 0, "after the replay want the live %s, got %+v", live, ev)
}

func TestVitalsRecordedRowScope(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	own := subscribeVitals(t, s, harness.ProtoTransportWS, s.Token("patient"), nil)
	// A member of staff hears both, which shows that the other patient's
	// event was published and the patient's feed left it out.
	staff := subscribeVitals(t, s, harness.ProtoTransportWS, s.Token("doctor"), nil)
	harness.AwaitLive(t, vitalsProbe(t, s, d.Patients[0]), own, staff)

	others := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[1], "heartRate": 99})[0].ID
	mine := recordVitals(t, s, "nurse", map[string]any{"patientId": d.Patients[0], "heartRate": 71})[0].ID
	ev := own.Next()
	harness.Must(t, ev.Observations[0].ID == mine && ev.Patient.ID == d.Patients[0],
		"the patient's first event is for %s, want their own %s (another patient's %s must not reach them)", ev.Observations[0].ID, mine, others)
	for _, want := range []string{others, mine} {
		ev := staff.Next()
		harness.Must(t, ev.Observations[0].ID == want, "staff feed: want %s, got %+v", want, ev)
	}
}

func TestVitalsRecordedAuthorization(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			for _, user := range []string{"labtech", "pharmacist", "reception", "billing", "hr", "auditor", ""} {
				credential, who := "", "anonymous"
				if user != "" {
					credential, who = s.Token(user), user
				}
				c := s.DialWS(t, proto)
				c.Init(credential)
				errs := c.Failure(c.Start(vitalsSubscription, nil))
				harness.Must(t, len(errs) == 1 && errs[0].Code() == harness.DeniedCode(who), "%s: want %s, got %v", who, harness.DeniedCode(who), errs)
				c.Close()
			}
			c := s.DialWS(t, proto)
			c.Init(s.Token("nurse"))
			for _, tc := range []struct {
				args  map[string]any
				field string
			}{
				{map[string]any{"after": "not-an-id"}, "after"},
				{map[string]any{"patientId": "garbage"}, "patientId"},
				{map[string]any{"wardId": "garbage"}, "wardId"},
			} {
				errs := c.Failure(c.Start(vitalsSubscription, tc.args))
				harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT" && errs[0].Field() == tc.field,
					"%v: want BAD_USER_INPUT on %s, got %v", tc.args, tc.field, errs)
			}
		})
	}
}
