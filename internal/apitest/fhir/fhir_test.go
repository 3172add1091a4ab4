// Package fhir_test drives the FHIR R4 API over HTTP as an integrator's
// system would, and parses every answer with google/fhir's R4 parser,
// which validates cardinalities, required elements, codes and reference
// types.
package fhir_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

var r4 = func() *jsonformat.Unmarshaller {
	u, err := jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
	if err != nil {
		panic(err)
	}
	return u
}()

// get fetches path with credential and checks that the answer is valid R4.
func get(t *testing.T, s *harness.Server, credential, path string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.HTTP.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	return send(t, req)
}

func send(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
		t.Fatalf("%s %s: content type %q, body %s", req.Method, req.URL.Path, ct, body)
	}
	if _, err := r4.Unmarshal(body); err != nil {
		t.Fatalf("%s %s: not valid R4: %v\n%s", req.Method, req.URL, err, body)
	}
	var out map[string]any
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, out
}

// entries returns a Bundle's resources.
func entries(b map[string]any) []map[string]any {
	var out []map[string]any
	list, _ := b["entry"].([]any)
	for _, e := range list {
		out = append(out, e.(map[string]any)["resource"].(map[string]any))
	}
	return out
}

func ofType(b map[string]any, typ string) []map[string]any {
	var out []map[string]any
	for _, r := range entries(b) {
		if r["resourceType"] == typ {
			out = append(out, r)
		}
	}
	return out
}

func link(b map[string]any, rel string) string {
	list, _ := b["link"].([]any)
	for _, l := range list {
		if m := l.(map[string]any); m["relation"] == rel {
			return m["url"].(string)
		}
	}
	return ""
}

// fid is an HMIS ID as the FHIR API writes it ("-" for "_").
func fid(id string) string { return strings.Replace(id, "_", "-", 1) }

func issueCode(oo map[string]any) string {
	if oo["resourceType"] != "OperationOutcome" {
		return ""
	}
	return oo["issue"].([]any)[0].(map[string]any)["code"].(string)
}

func apiKey(t *testing.T, s *harness.Server, in map[string]any) string {
	t.Helper()
	var out struct {
		CreateAPIKey struct{ Secret string } `json:"createApiKey"`
	}
	s.As("admin", harness.CreateAPIKeyMutation, map[string]any{"in": in}).Decode(t, &out)
	return out.CreateAPIKey.Secret
}

func TestEverythingIsAnR4BundleOfThePatientsRecord(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	key := apiKey(t, s, map[string]any{"name": "hie", "role": "integrator", "scopes": []string{"system/*.read"}})
	own := d.Patients[0] // the patient user's record: a visit, vitals, a problem, an allergy, a prescription, lab results

	status, b := get(t, s, key, "/fhir/R4/Patient/"+own+"/$everything")
	harness.Must(t, status == http.StatusOK && b["type"] == "searchset", "$everything: %d %v", status, b)
	harness.Must(t, len(ofType(b, "Patient")) == 1 && ofType(b, "Patient")[0]["id"] == fid(own), "the patient first: %v", entries(b)[0])
	for _, typ := range []string{"Encounter", "Condition", "AllergyIntolerance", "Observation", "MedicationRequest", "DiagnosticReport"} {
		harness.Must(t, len(ofType(b, typ)) > 0, "$everything has no %s", typ)
	}
	for _, r := range entries(b) {
		if r["resourceType"] == "Patient" {
			continue
		}
		subject := r["subject"]
		if subject == nil {
			subject = r["patient"]
		}
		if subject != nil {
			harness.Must(t, subject.(map[string]any)["reference"] == "Patient/"+fid(own), "%s %v is another patient's", r["resourceType"], r["id"])
		}
	}
	// Vitals in LOINC and UCUM; lab results with their tests' LOINC codes.
	var vital, lab bool
	for _, o := range ofType(b, "Observation") {
		code := o["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)
		harness.Must(t, code["system"] == "http://loinc.org", "observation code system %v", code["system"])
		cat := o["category"].([]any)[0].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"]
		if code["code"] == "8480-6" && cat == "vital-signs" {
			q := o["valueQuantity"].(map[string]any)
			vital = q["system"] == "http://unitsofmeasure.org" && q["code"] == "mm[Hg]"
		}
		if cat == "laboratory" {
			lab = true
		}
	}
	harness.Must(t, vital && lab, "vital signs in UCUM %v, lab results %v", vital, lab)
	cond := ofType(b, "Condition")[0]["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)
	harness.Must(t, cond["system"] == "http://hl7.org/fhir/sid/icd-10" && cond["code"] == "I10", "condition code %v", cond)

	// The integrator's role may not read national IDs: left out.
	for _, id := range ofType(b, "Patient")[0]["identifier"].([]any) {
		harness.Must(t, id.(map[string]any)["system"] != "urn:hmis:national-id", "national ID shown to the integrator")
	}

	// Audited like a GraphQL read: the patient, the fields.
	rows := harness.AuditRows(t, s, map[string]any{"operation": "fhir:everything"})
	harness.Must(t, len(rows) == 1 && strings.Contains(rows[0].PatientIds, own) && rows[0].Outcome == "ALLOWED" &&
		slices.Contains(rows[0].Fields, "Problem.icd10Code"), "audit rows %+v", rows)
}

// dischargedReferral builds the second clinic's case: a patient admitted
// and discharged with a diagnosis and a prescription, referred to a
// clinician of another clinic, who is registered as staff of HMIS so that
// the referral can name them.
func dischargedReferral(t *testing.T, s *harness.Server, d harness.DemoIDs) (patientID, clinicianID string) {
	t.Helper()
	patientID = s.RegisterPatient("Amina", "Otieno")
	stay := harness.Admit(t, s, "reception", patientID, s.Layout().Beds["MED-A-01"], d.Doctor)
	s.As("doctor", `mutation($in: RecordProblemInput!) { recordProblem(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"patientId": patientID, "icd10Code": "J18.9"}}).Decode(t, &struct{}{})
	s.As("doctor", `mutation($in: PrescribeMedicationInput!) { prescribeMedication(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"patientId": patientID, "drug": "Amoxicillin", "doseAmount": 500, "doseUnit": "mg",
			"route": "ORAL", "frequency": "TID", "durationDays": 7, "quantity": 21}}).Decode(t, &struct{}{})
	s.As("doctor", `mutation($id: ID!, $in: DischargePatientInput!) { dischargePatient(admissionId: $id, input: $in) { id } }`,
		map[string]any{"id": stay.ID, "in": map[string]any{"summary": "Recovered", "disposition": "HOME"}}).Decode(t, &struct{}{})
	var staff struct{ CreateStaff struct{ ID string } }
	s.As("admin", `mutation($in: CreateStaffInput!) { createStaff(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"givenName": "Grace", "familyName": "Mwangi", "kind": "DOCTOR", "departmentId": d.General,
		"employmentType": "CONTRACT", "startDate": "2026-01-01", "position": "Riverside Clinic GP"}}).Decode(t, &staff)
	clinicianID = staff.CreateStaff.ID
	s.As("doctor", `mutation($in: ReferPatientInput!) { referPatient(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"patientId": patientID, "toDepartmentId": d.General, "toStaffId": clinicianID, "reason": "Follow-up after pneumonia"}}).
		Decode(t, &struct{}{})
	return patientID, clinicianID
}

func TestASecondClinicReadsTheDischargedPatientItWasReferred(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	patientID, clinicianID := dischargedReferral(t, s, d)
	clinic := apiKey(t, s, map[string]any{"name": "riverside", "role": "external_clinic", "staffId": clinicianID,
		"scopes": []string{"user/Patient.read", "user/Encounter.read", "user/Condition.read", "user/MedicationRequest.read"}})

	q := "?patient=" + patientID
	status, enc := get(t, s, clinic, "/fhir/R4/Encounter"+q)
	harness.Must(t, status == http.StatusOK && len(entries(enc)) == 1, "encounters: %d %v", status, enc)
	e := entries(enc)[0]
	harness.Must(t, e["status"] == "finished" && e["class"].(map[string]any)["code"] == "IMP", "the discharged stay: %v", e)
	status, cond := get(t, s, clinic, "/fhir/R4/Condition"+q+"&code=http://hl7.org/fhir/sid/icd-10|J18.9")
	harness.Must(t, status == http.StatusOK && len(entries(cond)) == 1, "conditions: %d %v", status, cond)
	status, meds := get(t, s, clinic, "/fhir/R4/MedicationRequest"+q)
	harness.Must(t, status == http.StatusOK && len(entries(meds)) == 1 &&
		entries(meds)[0]["medicationCodeableConcept"].(map[string]any)["text"] == "Amoxicillin", "medications: %d %v", status, meds)
	status, _ = get(t, s, clinic, "/fhir/R4/Encounter/"+e["id"].(string))
	harness.Must(t, status == http.StatusOK, "read of the encounter: %d", status)

	// Nobody else's record: a search finds nothing, a read is a 404 like
	// an ID that does not exist.
	other := d.Patients[0]
	for _, path := range []string{"/fhir/R4/Encounter?patient=" + other, "/fhir/R4/Condition?patient=" + other,
		"/fhir/R4/MedicationRequest?patient=" + other, "/fhir/R4/Patient?identifier=" + url.QueryEscape("MRN"), "/fhir/R4/Encounter"} {
		status, b := get(t, s, clinic, path)
		for _, r := range entries(b) {
			subject, _ := r["subject"].(map[string]any)
			harness.Must(t, r["id"] == fid(patientID) || subject["reference"] == "Patient/"+fid(patientID), "%s: another patient's %v", path, r)
		}
		harness.Must(t, status == http.StatusOK, "%s: %d", path, status)
	}
	status, missing := get(t, s, clinic, "/fhir/R4/Patient/pat_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	status2, hidden := get(t, s, clinic, "/fhir/R4/Patient/"+other)
	harness.Must(t, status == http.StatusNotFound && status2 == http.StatusNotFound && issueCode(hidden) == "not-found" &&
		hidden["issue"].([]any)[0].(map[string]any)["diagnostics"] == missing["issue"].([]any)[0].(map[string]any)["diagnostics"],
		"another patient: %d %v, a missing one: %d %v", status2, hidden, status, missing)

	// The scopes narrow the role: no Observation scope, no observations.
	status, oo := get(t, s, clinic, "/fhir/R4/Observation"+q)
	harness.Must(t, status == http.StatusForbidden && issueCode(oo) == "forbidden", "observations without a scope: %d %v", status, oo)

	// The integrator, with every patient, sees the same stay.
	integrator := apiKey(t, s, map[string]any{"name": "hie", "role": "integrator"})
	status, all := get(t, s, integrator, "/fhir/R4/Encounter"+q)
	harness.Must(t, status == http.StatusOK && len(entries(all)) == 1, "integrator: %d %v", status, all)
	status, all = get(t, s, integrator, "/fhir/R4/Encounter?patient="+other)
	harness.Must(t, status == http.StatusOK && len(entries(all)) > 0, "integrator, another patient: %d %v", status, all)
}

func TestPagingFollowsNextLinksOverEveryMatch(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	key := apiKey(t, s, map[string]any{"name": "hie", "role": "integrator"})
	_, whole := get(t, s, key, "/fhir/R4/Observation?patient="+d.Patients[0]+"&_count=100")
	want := len(entries(whole))
	harness.Must(t, want > 3, "the demo patient has %d observations", want)
	seen := map[string]bool{}
	next := "/fhir/R4/Observation?patient=" + d.Patients[0] + "&_count=2"
	for pages := 0; next != ""; pages++ {
		harness.Must(t, pages <= want, "paging does not end")
		_, b := get(t, s, key, strings.TrimPrefix(next, s.HTTP.URL))
		harness.Must(t, len(entries(b)) <= 2, "page of %d", len(entries(b)))
		harness.Must(t, b["total"] == nil, "a total is given")
		for _, r := range entries(b) {
			harness.Must(t, !seen[r["id"].(string)], "%v twice", r["id"])
			seen[r["id"].(string)] = true
		}
		next = link(b, "next")
	}
	harness.Must(t, len(seen) == want, "paged %d of %d", len(seen), want)

	_, vitals := get(t, s, key, "/fhir/R4/Observation?patient="+d.Patients[0]+"&code=http://loinc.org|8867-4,8480-6&category=vital-signs")
	harness.Must(t, len(entries(vitals)) == 2, "code search: %v", vitals)
	_, none := get(t, s, key, "/fhir/R4/Observation?patient="+d.Patients[0]+"&date=lt2000-01-01")
	harness.Must(t, len(entries(none)) == 0, "date search: %v", none)
}

func TestErrorsAreOperationOutcomes(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	key := apiKey(t, s, map[string]any{"name": "hie", "role": "integrator"})
	for _, c := range []struct {
		credential, path string
		status           int
		issue            string
	}{
		{"", "/fhir/R4/Patient", http.StatusUnauthorized, "login"},
		{"hmis_bad_key", "/fhir/R4/Patient", http.StatusUnauthorized, "login"},
		{key, "/fhir/R4/Basic", http.StatusNotFound, "not-supported"},
		{key, "/fhir/R4/Patient?name=x", http.StatusBadRequest, "invalid"},
		{key, "/fhir/R4/Observation?date=yesterday", http.StatusBadRequest, "invalid"},
		{key, "/fhir/R4/Patient?_cursor=bm90LWEtY3Vyc29y", http.StatusBadRequest, "invalid"},
		// _count=0 used to index a page of -1 and kill the request, unaudited.
		{key, "/fhir/R4/Observation?_count=0", http.StatusBadRequest, "invalid"},
		// A dropped modifier inverted the search: code:not=X returned X.
		{key, "/fhir/R4/Observation?code:not=8480-6", http.StatusBadRequest, "invalid"},
		{key, "/fhir/R4/Patient?identifier:missing=true", http.StatusBadRequest, "invalid"},
		{key, "/fhir/R4/Encounter/enc_01ARZ3NDEKTSV4RRFFQ69G5FAV", http.StatusNotFound, "not-found"},
		{key, "/fhir/R4/Encounter/'%20OR%201=1", http.StatusNotFound, "not-found"},
		{s.Token("hr"), "/fhir/R4/Patient", http.StatusForbidden, "forbidden"},
	} {
		status, oo := get(t, s, c.credential, c.path)
		harness.Must(t, status == c.status && issueCode(oo) == c.issue, "%s: %d %v, want %d %s", c.path, status, oo, c.status, c.issue)
	}
	req, _ := http.NewRequest(http.MethodPost, s.HTTP.URL+"/fhir/R4/Patient", strings.NewReader(`{"resourceType":"Patient"}`))
	req.Header.Set("Authorization", "Bearer "+key)
	status, oo := send(t, req)
	harness.Must(t, status == http.StatusMethodNotAllowed && issueCode(oo) == "not-supported", "POST: %d %v", status, oo)

	// The metadata are public and list what is served.
	status, cs := get(t, s, "", "/fhir/R4/metadata")
	harness.Must(t, status == http.StatusOK && cs["resourceType"] == "CapabilityStatement" && cs["fhirVersion"] == "4.0.1", "metadata: %d", status)

	// A refusal is audited as one.
	rows := harness.AuditRows(t, s, map[string]any{"operation": "fhir:search:Patient", "outcome": "DENIED"})
	harness.Must(t, len(rows) >= 1, "denied search not audited: %+v", rows)
	_ = d
}

func TestAPIKeyScopesAreChecked(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	for _, bad := range [][]string{{"patient/*.delete-all"}, {"Patient.read"}, {"user/*.read", "system/patient.read"},
		{"patient/*.read"}, {"system/*.write"}} {
		r := s.As("admin", harness.CreateAPIKeyMutation, map[string]any{"in": map[string]any{"name": "x", "role": "integrator", "scopes": bad}})
		harness.WantBadInput(t, "scopes "+strings.Join(bad, " "), r, "input.scopes")
	}
	r := s.As("admin", harness.CreateAPIKeyMutation, map[string]any{"in": map[string]any{"name": "x", "role": "integrator", "staffId": "stf_nope"}})
	harness.WantBadInput(t, "staffId", r, "input.staffId")
	key := apiKey(t, s, map[string]any{"name": "obs", "role": "integrator", "scopes": []string{"system/Observation.rs"}})
	status, _ := get(t, s, key, "/fhir/R4/Observation?_count=1")
	harness.Must(t, status == http.StatusOK, "v2 scope rs: %d", status)
	status, _ = get(t, s, key, "/fhir/R4/Patient?_count=1")
	harness.Must(t, status == http.StatusForbidden, "Patient outside the scopes: %d", status)
	// On GraphQL the scopes could not narrow the role: the key is refused there.
	r = s.Do(key, `{ patients(first: 1) { totalCount } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN") && (len(r.Data) == 0 || string(r.Data) == "null"), "scoped key on GraphQL: %s", harness.Describe(r))
	unscoped := apiKey(t, s, map[string]any{"name": "plain", "role": "integrator"})
	r = s.Do(unscoped, `{ patients(first: 1) { totalCount } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "a key without scopes keeps its GraphQL access: %s", harness.Describe(r))
}

// TestADelegatedKeyChangesNothing: a key acting for a member of staff reads
// as them through GraphQL, but every mutation is refused before it runs.
func TestADelegatedKeyChangesNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	key := apiKey(t, s, map[string]any{"name": "clinic", "role": "external_clinic", "staffId": s.Demo().Doctor})
	r := s.Do(key, `{ patients(first: 1) { totalCount } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "the key reads as the doctor: %s", harness.Describe(r))
	r = s.Do(key, `mutation { logout }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN") && (len(r.Data) == 0 || string(r.Data) == "null"), "a delegated key ran a mutation: %s", harness.Describe(r))
}

// TestEveryRoleReadsTheTypesItsGraphQLQueriesAllow is the FHIR side of the
// role table: for every role, a type is served (200) exactly when the role
// may call the GraphQL coordinates that reach it, and refused (403, an
// audited denial) otherwise.
func TestEveryRoleReadsTheTypesItsGraphQLQueriesAllow(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	enforcer := s.App.Enforcer
	reaches := map[string][][]string{
		"Patient":            {{"Query.patients", "Patient.id"}},
		"Practitioner":       {{"Query.staffs", "Staff.id"}},
		"Encounter":          {{"Query.encounters", "Encounter.id"}},
		"Condition":          {{"Query.patients", "Patient.problems", "Problem.id"}},
		"AllergyIntolerance": {{"Query.patients", "Patient.allergies", "Allergy.id"}},
		"Observation":        {{"Query.patients", "Patient.observations", "Observation.id"}, {"Query.labResults", "LabResult.id"}},
		"MedicationRequest":  {{"Query.medicationOrders", "MedicationOrder.id"}},
		"MedicationDispense": {{"Query.dispensings", "Dispensing.id"}},
		"DiagnosticReport":   {{"Query.labOrders", "LabOrder.id"}},
		"Appointment":        {{"Query.appointments", "Appointment.id"}},
		"Coverage":           {{"Query.patients", "Patient.insurancePolicies", "InsurancePolicy.id"}},
	}
	roles := enforcer.Roles()
	creds := harness.Credentials(t, s, roles)
	for _, role := range roles {
		for typ, paths := range reaches {
			want := false
			for _, path := range paths {
				all := true
				for _, c := range path {
					all = all && enforcer.RoleAllows(role, c)
				}
				want = want || all
			}
			status, b := get(t, s, creds[role], "/fhir/R4/"+typ+"?_count=1")
			switch {
			case want && status != http.StatusOK, !want && (status != http.StatusForbidden || issueCode(b) != "forbidden"):
				t.Errorf("%s reading %s: %d %v, want allowed=%v", role, typ, status, b, want)
			}
		}
	}
}

// TestEverythingReadsEachTypeOnce: $everything costs the same number of
// statements however long the record is (no query per row).
func TestEverythingReadsEachTypeOnce(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	key := apiKey(t, s, map[string]any{"name": "hie", "role": "integrator"})
	patientID := s.RegisterPatient("Baraka", "Mutua")
	statements := func() (int64, int) {
		// The fewest of several runs: the audit sealer and the outbox
		// relay run statements of their own meanwhile.
		least, entries := int64(-1), 0
		for range 6 {
			before := s.App.Store.Statements()
			_, b := get(t, s, key, "/fhir/R4/Patient/"+patientID+"/$everything")
			if n := s.App.Store.Statements() - before; least < 0 || n < least {
				least = n
			}
			entries = len(b["entry"].([]any))
		}
		return least, entries
	}
	record := func(n int) {
		for i := range n {
			s.As("nurse", `mutation($in: RecordObservationInput!) { recordObservation(input: $in) { id } }`,
				map[string]any{"in": map[string]any{"patientId": patientID, "code": "8867-4", "display": "Heart rate",
					"value": 60 + i, "unit": "/min"}}).Decode(t, &struct{}{})
		}
	}
	s.CareFor(patientID, d.Nurse)
	record(1)
	few, small := statements()
	record(6)
	many, large := statements()
	harness.Must(t, large > small && few == many, "%d statements for %d resources, %d for %d", few, small, many, large)
}
