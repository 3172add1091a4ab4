package admission

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
)

// morePatients adds n patients straight into the database, for tests that
// need more than the demo's five.
func morePatients(t testing.TB, s *harness.Server, n int) []string {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	ids := make([]string, n)
	for i := range ids {
		p, err := s.App.Store.Client.Patient.Create().SetMrn(fmt.Sprintf("9%08d", i)).SetGivenName(fmt.Sprintf("Extra%02d", i)).
			SetFamilyName("Inpatient").SetBirthDate(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexOTHER).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	return ids
}

const transferMutation = `mutation($id: ID!, $in: TransferPatientInput!) {
  transferPatient(admissionId: $id, input: $in) { id status bed { id code status } bedHistory { bed { code } fromAt toAt reason } }
}`

const dischargeMutation = `mutation($id: ID!, $in: DischargePatientInput!) {
  dischargePatient(admissionId: $id, input: $in) { id status dischargedAt dischargeSummary disposition bed { code status } }
}`

const (
	cleanedMutation      = `mutation($bed: ID!) { markBedCleaned(bedId: $bed) { id code status note } }`
	outOfServiceMutation = `mutation($bed: ID!, $r: String!) { setBedOutOfService(bedId: $bed, reason: $r) { id code status note } }`
	returnMutation       = `mutation($bed: ID!) { returnBedToService(bedId: $bed) { id code status note } }`
)

// bedStatus reads one bed's status through the board.
func bedStatus(t testing.TB, s *harness.Server, bedID string) string {
	t.Helper()
	var out struct{ Node struct{ Status string } }
	s.As("admin", `query($id: ID!) { node(id: $id) { ... on Bed { status } } }`, map[string]any{"id": bedID}).Decode(t, &out)
	return out.Node.Status
}

func TestAdmitTransferDischargeOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	l := s.Layout()

	// The admissions office admits.
	a := harness.Admit(t, s, "reception", d.Patients[1], l.Beds["MED-A-01"], d.Doctor)
	harness.Must(t, a.Status == "ADMITTED" && a.AdmissionType == "EMERGENCY" && a.Patient.ID == d.Patients[1] && a.Attending.ID == d.Doctor &&
		a.Bed.Code == "MED-A-01" && a.Bed.Status == "OCCUPIED", "admitted: %+v", a)
	admittedAt, err := time.Parse(time.RFC3339Nano, a.AdmittedAt)
	harness.Must(t, err == nil && time.Since(admittedAt) < time.Hour && admittedAt.Location() == time.UTC, "admittedAt %q", a.AdmittedAt)

	// The doctor sees the inpatient encounter it opened.
	var enc struct {
		Node struct {
			Encounter struct {
				Type, Status string
				Provider     struct{ ID string }
				Department   struct{ ID string }
			}
		}
	}
	s.As("doctor", `query($id: ID!) { node(id: $id) { ... on Admission { encounter { type status provider { id } department { id } } } } }`,
		map[string]any{"id": a.ID}).Decode(t, &enc)
	harness.Must(t, enc.Node.Encounter.Type == "INPATIENT" && enc.Node.Encounter.Status == "IN_PROGRESS" &&
		enc.Node.Encounter.Provider.ID == d.Doctor && enc.Node.Encounter.Department.ID == d.General, "encounter: %+v", enc)

	// A nurse moves the patient to the coronary care unit; the history keeps both beds.
	var moved struct{ TransferPatient harness.Admission }
	s.As("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.Beds["CCU-02"], "reason": "Arrhythmia"}}).
		Decode(t, &moved)
	m := moved.TransferPatient
	harness.Must(t, m.Bed.Code == "CCU-02" && m.Bed.Status == "OCCUPIED" && len(m.BedHistory) == 2, "transferred: %+v", m)
	first, second := m.BedHistory[0], m.BedHistory[1]
	if first.Bed.Code != "MED-A-01" {
		first, second = second, first
	}
	harness.Must(t, first.Bed.Code == "MED-A-01" && first.ToAt != nil && second.Bed.Code == "CCU-02" && second.ToAt == nil &&
		*first.ToAt == second.FromAt && second.Reason != nil && *second.Reason == "Arrhythmia", "history: %+v", m.BedHistory)
	harness.Must(t, bedStatus(t, s, l.Beds["MED-A-01"]) == "CLEANING", "the bed left behind needs cleaning")

	// The admissions office may not discharge: that is a clinician's act.
	discharge := map[string]any{"id": a.ID, "in": map[string]any{"summary": "Treated with antibiotics; stable.", "disposition": "HOME"}}
	r := s.As("reception", dischargeMutation, discharge)
	harness.Must(t, r.HasCode("FORBIDDEN"), "reception discharging: %s", harness.Describe(r))

	var out struct{ DischargePatient harness.Admission }
	s.As("doctor", dischargeMutation, discharge).Decode(t, &out)
	dis := out.DischargePatient
	harness.Must(t, dis.Status == "DISCHARGED" && dis.DischargedAt != nil && *dis.Disposition == "HOME" &&
		dis.Bed.Code == "CCU-02" && dis.Bed.Status == "CLEANING", "discharged: %+v", dis)

	s.As("doctor", `query($id: ID!) { node(id: $id) { ... on Admission { encounter { type status provider { id } department { id } } } } }`,
		map[string]any{"id": a.ID}).Decode(t, &enc)
	harness.Must(t, enc.Node.Encounter.Status == "FINISHED", "the encounter ends with the stay: %+v", enc)

	r = s.As("doctor", dischargeMutation, discharge)
	harness.Must(t, r.HasCode("CONFLICT"), "discharge twice: %s", harness.Describe(r))
	r = s.As("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.Beds["CCU-03"], "reason": "x"}})
	harness.Must(t, r.HasCode("CONFLICT"), "transfer a discharged stay: %s", harness.Describe(r))

	// The bed is cleaned before the next patient.
	r = s.As("reception", harness.AdmitMutation, harness.AdmitInput(d.Patients[2], l.Beds["CCU-02"], d.Doctor))
	harness.Must(t, r.HasCode("CONFLICT"), "admit into a bed being cleaned: %s", harness.Describe(r))
	var cleaned struct{ MarkBedCleaned struct{ Status string } }
	s.As("nurse", cleanedMutation, map[string]any{"bed": l.Beds["CCU-02"]}).Decode(t, &cleaned)
	harness.Must(t, cleaned.MarkBedCleaned.Status == "FREE", "cleaned: %+v", cleaned)
	again := harness.Admit(t, s, "doctor", d.Patients[1], l.Beds["CCU-02"], d.Doctor)
	harness.Must(t, again.Status == "ADMITTED" && again.ID != a.ID, "readmitted: %+v", again)
}

func TestBedTransitionsOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	l := s.Layout()
	type bed struct {
		Status string
		Note   *string
	}
	var out struct {
		MarkBedCleaned, SetBedOutOfService, ReturnBedToService bed
	}
	free, cleaning, occupied := l.Beds["MED-A-01"], l.Beds["MED-A-02"], l.Beds["CCU-01"]

	refused := []struct {
		name, doc string
		vars      map[string]any
	}{
		{"clean a FREE bed", cleanedMutation, map[string]any{"bed": free}},
		{"clean an OCCUPIED bed", cleanedMutation, map[string]any{"bed": occupied}},
		{"return a FREE bed to service", returnMutation, map[string]any{"bed": free}},
		{"return a CLEANING bed to service", returnMutation, map[string]any{"bed": cleaning}},
		{"take an OCCUPIED bed out of service", outOfServiceMutation, map[string]any{"bed": occupied, "r": "leaking"}},
	}
	for _, c := range refused {
		r := s.As("nurse", c.doc, c.vars)
		harness.Must(t, r.HasCode("CONFLICT"), "%s: %s", c.name, harness.Describe(r))
	}
	harness.Must(t, bedStatus(t, s, free) == "FREE" && bedStatus(t, s, cleaning) == "CLEANING" && bedStatus(t, s, occupied) == "OCCUPIED",
		"refusals changed a bed")

	s.As("reception", outOfServiceMutation, map[string]any{"bed": cleaning, "r": "Broken rail"}).Decode(t, &out)
	harness.Must(t, out.SetBedOutOfService.Status == "OUT_OF_SERVICE" && *out.SetBedOutOfService.Note == "Broken rail", "%+v", out)
	r := s.As("nurse", cleanedMutation, map[string]any{"bed": cleaning})
	harness.Must(t, r.HasCode("CONFLICT"), "clean an OUT_OF_SERVICE bed: %s", harness.Describe(r))
	r = s.As("nurse", outOfServiceMutation, map[string]any{"bed": cleaning, "r": "x"})
	harness.Must(t, r.HasCode("CONFLICT"), "take an OUT_OF_SERVICE bed out again: %s", harness.Describe(r))
	r = s.As("reception", harness.AdmitMutation, harness.AdmitInput(d.Patients[1], cleaning, d.Doctor))
	harness.Must(t, r.HasCode("CONFLICT"), "admit into an OUT_OF_SERVICE bed: %s", harness.Describe(r))
	s.As("nurse", returnMutation, map[string]any{"bed": cleaning}).Decode(t, &out)
	harness.Must(t, out.ReturnBedToService.Status == "FREE" && out.ReturnBedToService.Note == nil, "%+v", out)

	s.As("nurse", outOfServiceMutation, map[string]any{"bed": free, "r": "Deep clean"}).Decode(t, &out)
	harness.Must(t, out.SetBedOutOfService.Status == "OUT_OF_SERVICE", "%+v", out)

	// Bad input names the field; an unknown bed is not found.
	r = s.As("nurse", outOfServiceMutation, map[string]any{"bed": l.Beds["MED-A-03"], "r": "  "})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "reason", "blank reason: %s", harness.Describe(r))
	r = s.As("nurse", cleanedMutation, map[string]any{"bed": l.Wards["CCU"]})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "bedId", "a ward ID: %s", harness.Describe(r))
	r = s.As("nurse", cleanedMutation, map[string]any{"bed": "bed_01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown bed: %s", harness.Describe(r))
	harness.Must(t, bedStatus(t, s, l.Beds["MED-A-03"]) == "FREE", "bad input changed the bed")

	// Doctors admit and discharge but do not run housekeeping.
	r = s.As("doctor", returnMutation, map[string]any{"bed": free})
	harness.Must(t, r.HasCode("FORBIDDEN"), "doctor returning a bed to service: %s", harness.Describe(r))
	harness.Must(t, bedStatus(t, s, free) == "OUT_OF_SERVICE", "a forbidden mutation changed the bed")
}

func TestAdmissionBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	l := s.Layout()
	future := time.Now().UTC().Add(2 * time.Hour).Format(time.RFC3339)
	cases := []struct {
		field  string
		change func(in map[string]any)
	}{
		{"input.patientId", func(in map[string]any) { in["patientId"] = "pat_x" }},
		{"input.patientId", func(in map[string]any) { in["patientId"] = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.bedId", func(in map[string]any) { in["bedId"] = l.Wards["MED-A"] }},
		{"input.attendingId", func(in map[string]any) { in["attendingId"] = d.Nurse }},
		{"input.reason", func(in map[string]any) { in["reason"] = " " }},
		{"input.admittedAt", func(in map[string]any) { in["admittedAt"] = future }},
		{"input.admittedAt", func(in map[string]any) { in["admittedAt"] = "yesterday" }},
		// An enum that does not coerce is named by its variable path.
		{"in.admissionType", func(in map[string]any) { in["admissionType"] = "WALK_IN" }},
	}
	count := func() int {
		var out struct{ Admissions struct{ TotalCount int } }
		s.As("admin", `{ admissions { totalCount } }`, nil).Decode(t, &out)
		return out.Admissions.TotalCount
	}
	before := count()
	for _, c := range cases {
		vars := harness.AdmitInput(d.Patients[1], l.Beds["MED-A-01"], d.Doctor)
		c.change(vars["in"].(map[string]any))
		r := s.As("reception", harness.AdmitMutation, vars)
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == c.field, "want %s: %s", c.field, harness.Describe(r))
	}
	harness.Must(t, count() == before && bedStatus(t, s, l.Beds["MED-A-01"]) == "FREE", "bad input changed something")

	r := s.As("reception", harness.AdmitMutation, harness.AdmitInput(d.Patients[3], l.Beds["MED-A-01"], d.Doctor))
	harness.Must(t, r.HasCode("CONFLICT"), "admit the demo inpatient again: %s", harness.Describe(r))
	harness.Must(t, count() == before && bedStatus(t, s, l.Beds["MED-A-01"]) == "FREE", "a conflict changed something")
}

// TestConcurrentAdmissionsOneBed: patients race for one bed; exactly one
// gets it.
func TestConcurrentAdmissionsOneBed(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	l := s.Layout()
	contenders := morePatients(t, s, 8)
	target := l.Beds["MED-A-04"]
	token := s.Token("reception")
	results := make([]harness.Response, len(contenders))
	var wg sync.WaitGroup
	for i, p := range contenders {
		wg.Go(func() { results[i] = s.Do(token, harness.AdmitMutation, harness.AdmitInput(p, target, d.Doctor)) })
	}
	wg.Wait()
	won := 0
	for i, r := range results {
		switch {
		case len(r.Errors) == 0:
			won++
		case !r.HasCode("CONFLICT") || len(r.Errors) != 1:
			t.Errorf("contender %d: want success or CONFLICT, got %s", i, harness.Describe(r))
		}
	}
	harness.Must(t, won == 1, "%d admissions into one bed succeeded", won)
	var out struct{ Admissions struct{ TotalCount int } }
	s.As("admin", `query($bed: ID!) { admissions(where: {bedID: $bed, status: ADMITTED}) { totalCount } }`,
		map[string]any{"bed": target}).Decode(t, &out)
	harness.Must(t, out.Admissions.TotalCount == 1 && bedStatus(t, s, target) == "OCCUPIED", "the bed holds %d stays", out.Admissions.TotalCount)
}

// TestConcurrentAdmissionsOnePatient: one patient is admitted into several
// beds at once; exactly one admission stands and the other beds stay FREE.
func TestConcurrentAdmissionsOnePatient(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	l := s.Layout()
	beds := []string{l.Beds["MED-A-01"], l.Beds["MED-A-03"], l.Beds["MED-A-04"], l.Beds["MED-A-05"], l.Beds["MED-A-06"],
		l.Beds["CCU-02"], l.Beds["CCU-03"], l.Beds["CCU-04"]}
	token := s.Token("nurse")
	results := make([]harness.Response, len(beds))
	var wg sync.WaitGroup
	for i, b := range beds {
		wg.Go(func() {
			results[i] = s.Do(token, harness.AdmitMutation, harness.AdmitInput(d.Patients[2], b, d.Doctor))
		})
	}
	wg.Wait()
	won := ""
	for i, r := range results {
		switch {
		case len(r.Errors) == 0:
			harness.Must(t, won == "", "two admissions of one patient: into %s and %s", won, beds[i])
			won = beds[i]
		case !r.HasCode("CONFLICT") || len(r.Errors) != 1:
			t.Errorf("bed %d: want success or CONFLICT, got %s", i, harness.Describe(r))
		}
	}
	harness.Must(t, won != "", "no admission succeeded")
	for _, b := range beds {
		want := "FREE"
		if b == won {
			want = "OCCUPIED"
		}
		harness.Must(t, bedStatus(t, s, b) == want, "bed %s is %s, want %s", b, bedStatus(t, s, b), want)
	}
	var out struct{ Admissions struct{ TotalCount int } }
	s.As("admin", `query($p: ID!) { admissions(where: {patientID: $p}) { totalCount } }`,
		map[string]any{"p": d.Patients[2]}).Decode(t, &out)
	harness.Must(t, out.Admissions.TotalCount == 1, "the patient has %d stays", out.Admissions.TotalCount)
}

func TestBedBoard(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	l := s.Layout()
	harness.Admit(t, s, "reception", d.Patients[1], l.Beds["MED-A-05"], d.Doctor)

	const board = `query($ward: ID) { bedBoard(wardId: $ward) {
	  ward { code name department { code } } free occupied cleaning outOfService
	  beds { bed { code status ward { code } } admission { status patient { id familyName } attending { id } } }
	} }`
	type boardOut struct {
		BedBoard []struct {
			Ward struct {
				Code, Name string
				Department struct{ Code string }
			}
			Free, Occupied, Cleaning, OutOfService int
			Beds                                   []struct {
				Bed struct {
					Code, Status string
					Ward         struct{ Code string }
				}
				Admission *struct {
					Status    string
					Patient   struct{ ID, FamilyName string }
					Attending struct{ ID string }
				}
			}
		}
	}
	var all boardOut
	s.As("nurse", board, nil).Decode(t, &all)
	harness.Must(t, len(all.BedBoard) == 2 && all.BedBoard[0].Ward.Code == "CCU" && all.BedBoard[1].Ward.Code == "MED-A",
		"wards by code: %+v", all.BedBoard)
	ccu, med := all.BedBoard[0], all.BedBoard[1]
	harness.Must(t, ccu.Ward.Department.Code == "CAR" && ccu.Occupied == 1 && ccu.Free == 3 && len(ccu.Beds) == 4, "CCU: %+v", ccu)
	harness.Must(t, med.Occupied == 1 && med.Cleaning == 1 && med.Free == 4 && med.OutOfService == 0 && len(med.Beds) == 6, "MED-A: %+v", med)
	for i, b := range med.Beds {
		harness.Must(t, b.Bed.Code == fmt.Sprintf("MED-A-%02d", i+1) && b.Bed.Ward.Code == "MED-A", "beds by code: %+v", med.Beds)
		harness.Must(t, (b.Admission != nil) == (b.Bed.Status == "OCCUPIED"), "%s: admission %+v with status %s", b.Bed.Code, b.Admission, b.Bed.Status)
	}
	harness.Must(t, med.Beds[1].Bed.Status == "CLEANING", "MED-A-02: %+v", med.Beds[1])
	mine := med.Beds[4]
	harness.Must(t, mine.Admission != nil && mine.Admission.Patient.ID == d.Patients[1] && mine.Admission.Attending.ID == d.Doctor &&
		mine.Admission.Status == "ADMITTED", "MED-A-05: %+v", mine)
	harness.Must(t, ccu.Beds[0].Admission != nil && ccu.Beds[0].Admission.Patient.ID == d.Patients[3] &&
		ccu.Beds[0].Admission.Patient.FamilyName == "Njoroge", "CCU-01: %+v", ccu.Beds[0])

	var one boardOut
	s.As("reception", board, map[string]any{"ward": l.Wards["CCU"]}).Decode(t, &one)
	harness.Must(t, len(one.BedBoard) == 1 && one.BedBoard[0].Ward.Code == "CCU", "one ward: %+v", one)

	r := s.As("nurse", board, map[string]any{"ward": "wrd_01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown ward: %s", harness.Describe(r))
	r = s.As("nurse", board, map[string]any{"ward": l.Beds["CCU-01"]})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "wardId", "a bed ID as a ward: %s", harness.Describe(r))

	// Set-up: an administrator adds a ward and a bed, which join the board.
	var ward struct{ CreateWard struct{ ID, Code string } }
	s.As("admin", `mutation($in: CreateWardInput!) { createWard(input: $in) { id code } }`,
		map[string]any{"in": map[string]any{"departmentId": d.Cardiology, "code": "CCU-B", "name": "Coronary Care B"}}).Decode(t, &ward)
	r = s.As("admin", `mutation($in: CreateWardInput!) { createWard(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"departmentId": d.Cardiology, "code": "CCU-B", "name": "Again"}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.code", "duplicate ward code: %s", harness.Describe(r))
	var added struct{ AddBed struct{ Code, Status string } }
	s.As("admin", `mutation($w: ID!) { addBed(wardId: $w, code: "CCU-B-01") { code status } }`,
		map[string]any{"w": ward.CreateWard.ID}).Decode(t, &added)
	harness.Must(t, added.AddBed.Status == "FREE", "new bed: %+v", added)
	r = s.As("nurse", `mutation($w: ID!) { addBed(wardId: $w, code: "CCU-B-02") { code } }`, map[string]any{"w": ward.CreateWard.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a nurse adding beds: %s", harness.Describe(r))
	s.As("nurse", board, map[string]any{"ward": ward.CreateWard.ID}).Decode(t, &one)
	harness.Must(t, len(one.BedBoard) == 1 && len(one.BedBoard[0].Beds) == 1 && one.BedBoard[0].Free == 1, "new ward's board: %+v", one)
}

// TestPatientSeesOwnStaysOnly: the patient reads their own admissions and
// bed history, nobody else's, and neither the bed board nor its events.
func TestPatientSeesOwnStaysOnly(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	l := s.Layout()
	own := harness.Admit(t, s, "reception", d.Patients[0], l.Beds["MED-A-01"], d.Doctor)
	var theirs struct {
		Admissions struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("doctor", `query($p: ID!) { admissions(where: {patientID: $p}) { edges { node { id } } } }`,
		map[string]any{"p": d.Patients[3]}).Decode(t, &theirs)
	harness.Must(t, len(theirs.Admissions.Edges) == 1, "the demo inpatient's stay: %+v", theirs)
	other := theirs.Admissions.Edges[0].Node.ID

	var mine struct {
		Admissions struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ID, Status, Reason string
					Patient            struct{ ID string }
					BedHistory         []struct{ FromAt string }
					Encounter          struct{ Type string }
				}
			}
		}
	}
	s.As("patient", `{ admissions { totalCount edges { node { id status reason patient { id } bedHistory { fromAt } encounter { type } } } } }`, nil).
		Decode(t, &mine)
	harness.Must(t, mine.Admissions.TotalCount == 1 && mine.Admissions.Edges[0].Node.ID == own.ID &&
		mine.Admissions.Edges[0].Node.Patient.ID == d.Patients[0] && len(mine.Admissions.Edges[0].Node.BedHistory) == 1 &&
		mine.Admissions.Edges[0].Node.Encounter.Type == "INPATIENT", "own stays: %+v", mine)

	r := s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": other})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's stay by node: %s", harness.Describe(r))
	r = s.As("patient", `query($p: ID!) { admissions(where: {patientID: $p}) { totalCount } }`, map[string]any{"p": d.Patients[3]})
	var none struct{ Admissions struct{ TotalCount int } }
	r.Decode(t, &none)
	harness.Must(t, none.Admissions.TotalCount == 0, "another patient's stays by filter: %s", harness.Describe(r))
	r = s.As("patient", `{ bedBoard { __typename } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "the patient's bed board: %s", harness.Describe(r))
	r = s.As("patient", `mutation($id: ID!, $in: DischargePatientInput!) { dischargePatient(admissionId: $id, input: $in) { id } }`,
		map[string]any{"id": own.ID, "in": map[string]any{"summary": "I feel fine", "disposition": "HOME"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient discharging themselves: %s", harness.Describe(r))
}

const bedStatusChangedSubscription = `subscription($wardId: ID, $after: String) {
  bedStatusChanged(wardId: $wardId, after: $after) {
    eventId type occurredAt status previousStatus
    bed { id code status ward { code } }
    admission { id status patient { id } }
  }
}`

type bedEvent struct {
	EventID, Type, OccurredAt, Status string
	PreviousStatus                    *string
	Bed                               struct {
		ID, Code, Status string
		Ward             struct{ Code string }
	}
	Admission *struct {
		ID, Status string
		Patient    struct{ ID string }
	}
}

// bedFeed is one bedStatusChanged subscription. Its probe is a bed that
// awaitBedsLive toggles; that bed's events are never part of what a test
// asserts.
type bedFeed = harness.Feed[bedEvent]

func subscribeBeds(t testing.TB, s *harness.Server, proto, credential, probeBed string, args map[string]any) *bedFeed {
	t.Helper()
	f := harness.Subscribe(t, s, proto, credential, bedStatusChangedSubscription, args, func(ev bedEvent) string { return ev.Bed.ID })
	f.Probes[probeBed] = true
	return f
}

// awaitBedsLive returns once every feed is receiving, proven as
// harness.AwaitLive proves it, by probe events, here from taking probeBed
// out of service and back, until each feed has heard one.
func awaitBedsLive(t testing.TB, s *harness.Server, probeBed string, feeds ...*bedFeed) {
	t.Helper()
	out := false
	harness.AwaitLive(t, func() string {
		if out {
			s.As("admin", returnMutation, map[string]any{"bed": probeBed}).Decode(t, &struct{}{})
		} else {
			s.As("admin", outOfServiceMutation, map[string]any{"bed": probeBed, "r": "probe"}).Decode(t, &struct{}{})
		}
		out = !out
		return probeBed
	}, feeds...)
}

func TestBedStatusChangedLive(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			d := s.Demo()
			l := s.Layout()
			probe := l.Beds["MED-A-06"]
			ward := subscribeBeds(t, s, proto, s.Token("nurse"), probe, map[string]any{"wardId": l.Wards["MED-A"]})
			all := subscribeBeds(t, s, proto, s.Token("reception"), probe, nil)
			awaitBedsLive(t, s, probe, ward, all)

			a := harness.Admit(t, s, "reception", d.Patients[1], l.Beds["MED-A-01"], d.Doctor)
			s.As("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.Beds["CCU-02"], "reason": "Arrhythmia"}}).
				Decode(t, &struct{}{})
			s.As("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.Beds["MED-A-03"], "reason": "Stable"}}).
				Decode(t, &struct{}{})
			s.As("doctor", dischargeMutation, map[string]any{"id": a.ID, "in": map[string]any{"summary": "Well", "disposition": "HOME"}}).
				Decode(t, &struct{}{})
			s.As("nurse", cleanedMutation, map[string]any{"bed": l.Beds["MED-A-03"]}).Decode(t, &struct{}{})

			type step struct{ typ, bed, status, previous string }
			everything := []step{
				{"ADMITTED", "MED-A-01", "OCCUPIED", "FREE"},
				{"TRANSFERRED_OUT", "MED-A-01", "CLEANING", "OCCUPIED"},
				{"TRANSFERRED_IN", "CCU-02", "OCCUPIED", "FREE"},
				{"TRANSFERRED_OUT", "CCU-02", "CLEANING", "OCCUPIED"},
				{"TRANSFERRED_IN", "MED-A-03", "OCCUPIED", "FREE"},
				{"DISCHARGED", "MED-A-03", "CLEANING", "OCCUPIED"},
				{"CLEANED", "MED-A-03", "FREE", "CLEANING"},
			}
			for _, feed := range []struct {
				name string
				f    *bedFeed
				ward string
			}{{"MED-A", ward, "MED-A"}, {"all wards", all, ""}} {
				last := ""
				for _, want := range everything {
					if feed.ward != "" && !strings.HasPrefix(want.bed, feed.ward+"-") {
						continue // another ward's bed: filtered out
					}
					ev := feed.f.Next()
					harness.Must(t, ev.Type == want.typ && ev.Bed.Code == want.bed && ev.Status == want.status &&
						ev.PreviousStatus != nil && *ev.PreviousStatus == want.previous,
						"%s feed: want %+v, got %+v", feed.name, want, ev)
					occupied := want.status == "OCCUPIED"
					harness.Must(t, (ev.Admission != nil) == occupied, "%s feed, %s: admission %+v", feed.name, want.typ, ev.Admission)
					if occupied {
						harness.Must(t, ev.Admission.ID == a.ID && ev.Admission.Patient.ID == d.Patients[1], "%s: %+v", want.typ, ev.Admission)
					}
					harness.Must(t, last == "" || events.CompareIDs(last, ev.EventID) < 0, "event IDs must increase: %s then %s", last, ev.EventID)
					last = ev.EventID
				}
			}
		})
	}
}

func TestBedStatusChangedResume(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	l := s.Layout()
	probe := l.Beds["MED-A-06"]
	f := subscribeBeds(t, s, harness.ProtoTransportWS, s.Token("nurse"), probe, nil)
	awaitBedsLive(t, s, probe, f)

	a := harness.Admit(t, s, "reception", d.Patients[1], l.Beds["MED-A-01"], d.Doctor)
	seen := f.Next()
	harness.Must(t, seen.Type == "ADMITTED" && seen.Bed.Code == "MED-A-01", "want the admission, got %+v", seen)
	f.Conn.Close()

	s.As("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.Beds["MED-A-03"], "reason": "Window bed"}}).
		Decode(t, &struct{}{})
	s.As("nurse", cleanedMutation, map[string]any{"bed": l.Beds["MED-A-01"]}).Decode(t, &struct{}{})

	g := subscribeBeds(t, s, harness.ProtoTransportWS, s.Token("nurse"), probe, map[string]any{"after": seen.EventID})
	last := seen.EventID
	for i, want := range []struct{ typ, bed, status, nowStatus string }{
		// The replayed events carry the status they caused; the bed is
		// loaded as it is now.
		{"TRANSFERRED_OUT", "MED-A-01", "CLEANING", "FREE"},
		{"TRANSFERRED_IN", "MED-A-03", "OCCUPIED", "OCCUPIED"},
		{"CLEANED", "MED-A-01", "FREE", "FREE"},
	} {
		ev := g.Next()
		harness.Must(t, ev.Type == want.typ && ev.Bed.Code == want.bed && ev.Status == want.status && ev.Bed.Status == want.nowStatus,
			"replayed event %d: want %+v, got %+v", i, want, ev)
		harness.Must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
		last = ev.EventID
	}
	// With a cursor the subscription is gap-free from the start, so the
	// live event needs no probe to be heard.
	s.As("doctor", dischargeMutation, map[string]any{"id": a.ID, "in": map[string]any{"summary": "Well", "disposition": "HOME"}}).
		Decode(t, &struct{}{})
	ev := g.Next()
	harness.Must(t, ev.Type == "DISCHARGED" && ev.Bed.Code == "MED-A-03" && ev.Admission == nil, "live after the replay: %+v", ev)
	harness.Must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)

	c := s.DialWS(t, harness.ProtoTransportWS)
	c.Init(s.Token("nurse"))
	errs := c.Failure(c.Start(bedStatusChangedSubscription, map[string]any{"after": "yesterday"}))
	harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT" && errs[0].Field() == "after", "bad cursor: %v", errs)
	errs = c.Failure(c.Start(bedStatusChangedSubscription, map[string]any{"wardId": l.Beds["CCU-01"]}))
	harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT" && errs[0].Field() == "wardId", "a bed ID as a ward: %v", errs)
}

func TestBedStatusChangedAuthorization(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t)
			for _, user := range []string{"patient", "labtech", "pharmacist", "billing", "hr", "auditor", ""} {
				credential, who := "", "anonymous"
				if user != "" {
					credential, who = s.Token(user), user
				}
				c := s.DialWS(t, proto)
				c.Init(credential)
				errs := c.Failure(c.Start(bedStatusChangedSubscription, nil))
				harness.Must(t, len(errs) == 1 && errs[0].Code() == harness.DeniedCode(who), "%s: want %s, got %v", who, harness.DeniedCode(who), errs)
				c.Close()
			}
		})
	}
}
