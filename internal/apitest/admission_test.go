package apitest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/events"
)

func init() {
	addProbes(map[string]string{
		"Query.bedBoard":                `{ bedBoard(wardId: "bad") { __typename } }`,
		"Mutation.createWard":           `mutation { createWard(input: {departmentId: "bad", code: "X", name: "X"}) { __typename } }`,
		"Mutation.addBed":               `mutation { addBed(wardId: "bad", code: "X") { __typename } }`,
		"Mutation.admitPatient":         `mutation { admitPatient(input: {patientId: "bad", bedId: "bad", attendingId: "bad", reason: "x", admissionType: ELECTIVE}) { __typename } }`,
		"Mutation.transferPatient":      `mutation { transferPatient(admissionId: "bad", input: {toBedId: "bad", reason: "x"}) { __typename } }`,
		"Mutation.dischargePatient":     `mutation { dischargePatient(admissionId: "bad", input: {summary: "x", disposition: HOME}) { __typename } }`,
		"Mutation.markBedCleaned":       `mutation { markBedCleaned(bedId: "bad") { __typename } }`,
		"Mutation.setBedOutOfService":   `mutation { setBedOutOfService(bedId: "bad", reason: "x") { __typename } }`,
		"Mutation.returnBedToService":   `mutation { returnBedToService(bedId: "bad") { __typename } }`,
		"Subscription.bedStatusChanged": "", // over WebSocket: see TestBedStatusChangedAuthorization
	})
}

// wardLayout is the demo's wards and beds by code: MED-A-01…06 (MED-A-02
// CLEANING) and CCU-01…04 (CCU-01 occupied by the demo inpatient,
// patients[3]).
type wardLayout struct {
	wards map[string]string
	beds  map[string]string
}

func (s *server) layout() wardLayout {
	s.t.Helper()
	var out struct {
		BedBoard []struct {
			Ward struct{ ID, Code string }
			Beds []struct{ Bed struct{ ID, Code string } }
		}
	}
	s.as("admin", `{ bedBoard { ward { id code } beds { bed { id code } } } }`, nil).decode(s.t, &out)
	l := wardLayout{wards: map[string]string{}, beds: map[string]string{}}
	for _, w := range out.BedBoard {
		l.wards[w.Ward.Code] = w.Ward.ID
		for _, b := range w.Beds {
			l.beds[b.Bed.Code] = b.Bed.ID
		}
	}
	if len(l.wards) != 2 || len(l.beds) != 10 {
		s.t.Fatalf("demo wards incomplete: %+v", l)
	}
	return l
}

// morePatients adds n patients straight into the database, for tests that
// need more than the demo's five.
func morePatients(t testing.TB, s *server, n int) []string {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	ids := make([]string, n)
	for i := range ids {
		p, err := s.app.Store.Client.Patient.Create().SetMrn(fmt.Sprintf("9%08d", i)).SetGivenName(fmt.Sprintf("Extra%02d", i)).
			SetFamilyName("Inpatient").SetBirthDate(time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexOTHER).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = p.ID
	}
	return ids
}

const admitMutation = `mutation($in: AdmitPatientInput!) {
  admitPatient(input: $in) { id status admissionType reason admittedAt patient { id } attending { id } bed { id code status } }
}`

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

func admitInput(patientID, bedID, attendingID string) map[string]any {
	return map[string]any{"in": map[string]any{
		"patientId": patientID, "bedId": bedID, "attendingId": attendingID, "reason": "Community-acquired pneumonia",
		"admissionType": "EMERGENCY",
	}}
}

type admissionOut struct {
	ID, Status, AdmissionType, Reason, AdmittedAt string
	DischargedAt                                  *string
	DischargeSummary, Disposition                 *string
	Patient, Attending                            struct{ ID string }
	Bed                                           struct{ ID, Code, Status string }
	BedHistory                                    []struct {
		Bed          struct{ Code string }
		FromAt       string
		ToAt, Reason *string
	}
}

func admit(t testing.TB, s *server, user, patientID, bedID, attendingID string) admissionOut {
	t.Helper()
	var out struct{ AdmitPatient admissionOut }
	s.as(user, admitMutation, admitInput(patientID, bedID, attendingID)).decode(t, &out)
	return out.AdmitPatient
}

// bedStatus reads one bed's status through the board.
func bedStatus(t testing.TB, s *server, bedID string) string {
	t.Helper()
	var out struct{ Node struct{ Status string } }
	s.as("admin", `query($id: ID!) { node(id: $id) { ... on Bed { status } } }`, map[string]any{"id": bedID}).decode(t, &out)
	return out.Node.Status
}

func TestAdmitTransferDischargeOverHTTP(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	l := s.layout()

	// The admissions office admits.
	a := admit(t, s, "reception", d.patients[1], l.beds["MED-A-01"], d.doctor)
	must(t, a.Status == "ADMITTED" && a.AdmissionType == "EMERGENCY" && a.Patient.ID == d.patients[1] && a.Attending.ID == d.doctor &&
		a.Bed.Code == "MED-A-01" && a.Bed.Status == "OCCUPIED", "admitted: %+v", a)
	admittedAt, err := time.Parse(time.RFC3339Nano, a.AdmittedAt)
	must(t, err == nil && time.Since(admittedAt) < time.Hour && admittedAt.Location() == time.UTC, "admittedAt %q", a.AdmittedAt)

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
	s.as("doctor", `query($id: ID!) { node(id: $id) { ... on Admission { encounter { type status provider { id } department { id } } } } }`,
		map[string]any{"id": a.ID}).decode(t, &enc)
	must(t, enc.Node.Encounter.Type == "INPATIENT" && enc.Node.Encounter.Status == "IN_PROGRESS" &&
		enc.Node.Encounter.Provider.ID == d.doctor && enc.Node.Encounter.Department.ID == d.general, "encounter: %+v", enc)

	// A nurse moves the patient to the coronary care unit; the history keeps both beds.
	var moved struct{ TransferPatient admissionOut }
	s.as("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.beds["CCU-02"], "reason": "Arrhythmia"}}).
		decode(t, &moved)
	m := moved.TransferPatient
	must(t, m.Bed.Code == "CCU-02" && m.Bed.Status == "OCCUPIED" && len(m.BedHistory) == 2, "transferred: %+v", m)
	first, second := m.BedHistory[0], m.BedHistory[1]
	if first.Bed.Code != "MED-A-01" {
		first, second = second, first
	}
	must(t, first.Bed.Code == "MED-A-01" && first.ToAt != nil && second.Bed.Code == "CCU-02" && second.ToAt == nil &&
		*first.ToAt == second.FromAt && second.Reason != nil && *second.Reason == "Arrhythmia", "history: %+v", m.BedHistory)
	must(t, bedStatus(t, s, l.beds["MED-A-01"]) == "CLEANING", "the bed left behind needs cleaning")

	// The admissions office may not discharge: that is a clinician's act.
	discharge := map[string]any{"id": a.ID, "in": map[string]any{"summary": "Treated with antibiotics; stable.", "disposition": "HOME"}}
	r := s.as("reception", dischargeMutation, discharge)
	must(t, r.hasCode("FORBIDDEN"), "reception discharging: %s", describe(r))

	var out struct{ DischargePatient admissionOut }
	s.as("doctor", dischargeMutation, discharge).decode(t, &out)
	dis := out.DischargePatient
	must(t, dis.Status == "DISCHARGED" && dis.DischargedAt != nil && *dis.Disposition == "HOME" &&
		dis.Bed.Code == "CCU-02" && dis.Bed.Status == "CLEANING", "discharged: %+v", dis)

	s.as("doctor", `query($id: ID!) { node(id: $id) { ... on Admission { encounter { type status provider { id } department { id } } } } }`,
		map[string]any{"id": a.ID}).decode(t, &enc)
	must(t, enc.Node.Encounter.Status == "FINISHED", "the encounter ends with the stay: %+v", enc)

	r = s.as("doctor", dischargeMutation, discharge)
	must(t, r.hasCode("CONFLICT"), "discharge twice: %s", describe(r))
	r = s.as("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.beds["CCU-03"], "reason": "x"}})
	must(t, r.hasCode("CONFLICT"), "transfer a discharged stay: %s", describe(r))

	// The bed is cleaned before the next patient.
	r = s.as("reception", admitMutation, admitInput(d.patients[2], l.beds["CCU-02"], d.doctor))
	must(t, r.hasCode("CONFLICT"), "admit into a bed being cleaned: %s", describe(r))
	var cleaned struct{ MarkBedCleaned struct{ Status string } }
	s.as("nurse", cleanedMutation, map[string]any{"bed": l.beds["CCU-02"]}).decode(t, &cleaned)
	must(t, cleaned.MarkBedCleaned.Status == "FREE", "cleaned: %+v", cleaned)
	again := admit(t, s, "doctor", d.patients[1], l.beds["CCU-02"], d.doctor)
	must(t, again.Status == "ADMITTED" && again.ID != a.ID, "readmitted: %+v", again)
}

func TestBedTransitionsOverHTTP(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	l := s.layout()
	type bed struct {
		Status string
		Note   *string
	}
	var out struct {
		MarkBedCleaned, SetBedOutOfService, ReturnBedToService bed
	}
	free, cleaning, occupied := l.beds["MED-A-01"], l.beds["MED-A-02"], l.beds["CCU-01"]

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
		r := s.as("nurse", c.doc, c.vars)
		must(t, r.hasCode("CONFLICT"), "%s: %s", c.name, describe(r))
	}
	must(t, bedStatus(t, s, free) == "FREE" && bedStatus(t, s, cleaning) == "CLEANING" && bedStatus(t, s, occupied) == "OCCUPIED",
		"refusals changed a bed")

	s.as("reception", outOfServiceMutation, map[string]any{"bed": cleaning, "r": "Broken rail"}).decode(t, &out)
	must(t, out.SetBedOutOfService.Status == "OUT_OF_SERVICE" && *out.SetBedOutOfService.Note == "Broken rail", "%+v", out)
	r := s.as("nurse", cleanedMutation, map[string]any{"bed": cleaning})
	must(t, r.hasCode("CONFLICT"), "clean an OUT_OF_SERVICE bed: %s", describe(r))
	r = s.as("nurse", outOfServiceMutation, map[string]any{"bed": cleaning, "r": "x"})
	must(t, r.hasCode("CONFLICT"), "take an OUT_OF_SERVICE bed out again: %s", describe(r))
	r = s.as("reception", admitMutation, admitInput(d.patients[1], cleaning, d.doctor))
	must(t, r.hasCode("CONFLICT"), "admit into an OUT_OF_SERVICE bed: %s", describe(r))
	s.as("nurse", returnMutation, map[string]any{"bed": cleaning}).decode(t, &out)
	must(t, out.ReturnBedToService.Status == "FREE" && out.ReturnBedToService.Note == nil, "%+v", out)

	s.as("nurse", outOfServiceMutation, map[string]any{"bed": free, "r": "Deep clean"}).decode(t, &out)
	must(t, out.SetBedOutOfService.Status == "OUT_OF_SERVICE", "%+v", out)

	// Bad input names the field; an unknown bed is not found.
	r = s.as("nurse", outOfServiceMutation, map[string]any{"bed": l.beds["MED-A-03"], "r": "  "})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "reason", "blank reason: %s", describe(r))
	r = s.as("nurse", cleanedMutation, map[string]any{"bed": l.wards["CCU"]})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "bedId", "a ward ID: %s", describe(r))
	r = s.as("nurse", cleanedMutation, map[string]any{"bed": "bed_01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	must(t, r.hasCode("NOT_FOUND"), "unknown bed: %s", describe(r))
	must(t, bedStatus(t, s, l.beds["MED-A-03"]) == "FREE", "bad input changed the bed")

	// Doctors admit and discharge but do not run housekeeping.
	r = s.as("doctor", returnMutation, map[string]any{"bed": free})
	must(t, r.hasCode("FORBIDDEN"), "doctor returning a bed to service: %s", describe(r))
	must(t, bedStatus(t, s, free) == "OUT_OF_SERVICE", "a forbidden mutation changed the bed")
}

func TestAdmissionBadInputChangesNothing(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	l := s.layout()
	future := time.Now().UTC().Add(2 * time.Hour).Format(time.RFC3339)
	cases := []struct {
		field  string
		change func(in map[string]any)
	}{
		{"input.patientId", func(in map[string]any) { in["patientId"] = "pat_x" }},
		{"input.patientId", func(in map[string]any) { in["patientId"] = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.bedId", func(in map[string]any) { in["bedId"] = l.wards["MED-A"] }},
		{"input.attendingId", func(in map[string]any) { in["attendingId"] = d.nurse }},
		{"input.reason", func(in map[string]any) { in["reason"] = " " }},
		{"input.admittedAt", func(in map[string]any) { in["admittedAt"] = future }},
		{"input.admittedAt", func(in map[string]any) { in["admittedAt"] = "yesterday" }},
		// An enum that does not coerce is named by its variable path.
		{"in.admissionType", func(in map[string]any) { in["admissionType"] = "WALK_IN" }},
	}
	count := func() int {
		var out struct{ Admissions struct{ TotalCount int } }
		s.as("admin", `{ admissions { totalCount } }`, nil).decode(t, &out)
		return out.Admissions.TotalCount
	}
	before := count()
	for _, c := range cases {
		vars := admitInput(d.patients[1], l.beds["MED-A-01"], d.doctor)
		c.change(vars["in"].(map[string]any))
		r := s.as("reception", admitMutation, vars)
		must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == c.field, "want %s: %s", c.field, describe(r))
	}
	must(t, count() == before && bedStatus(t, s, l.beds["MED-A-01"]) == "FREE", "bad input changed something")

	r := s.as("reception", admitMutation, admitInput(d.patients[3], l.beds["MED-A-01"], d.doctor))
	must(t, r.hasCode("CONFLICT"), "admit the demo inpatient again: %s", describe(r))
	must(t, count() == before && bedStatus(t, s, l.beds["MED-A-01"]) == "FREE", "a conflict changed something")
}

// TestConcurrentAdmissionsOneBed: patients race for one bed; exactly one
// gets it.
func TestConcurrentAdmissionsOneBed(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	l := s.layout()
	contenders := morePatients(t, s, 8)
	target := l.beds["MED-A-04"]
	token := s.token("reception")
	results := make([]response, len(contenders))
	var wg sync.WaitGroup
	for i, p := range contenders {
		wg.Go(func() { results[i] = s.do(token, admitMutation, admitInput(p, target, d.doctor)) })
	}
	wg.Wait()
	won := 0
	for i, r := range results {
		switch {
		case len(r.Errors) == 0:
			won++
		case !r.hasCode("CONFLICT") || len(r.Errors) != 1:
			t.Errorf("contender %d: want success or CONFLICT, got %s", i, describe(r))
		}
	}
	must(t, won == 1, "%d admissions into one bed succeeded", won)
	var out struct{ Admissions struct{ TotalCount int } }
	s.as("admin", `query($bed: ID!) { admissions(where: {bedID: $bed, status: ADMITTED}) { totalCount } }`,
		map[string]any{"bed": target}).decode(t, &out)
	must(t, out.Admissions.TotalCount == 1 && bedStatus(t, s, target) == "OCCUPIED", "the bed holds %d stays", out.Admissions.TotalCount)
}

// TestConcurrentAdmissionsOnePatient: one patient is admitted into several
// beds at once; exactly one admission stands and the other beds stay FREE.
func TestConcurrentAdmissionsOnePatient(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	l := s.layout()
	beds := []string{l.beds["MED-A-01"], l.beds["MED-A-03"], l.beds["MED-A-04"], l.beds["MED-A-05"], l.beds["MED-A-06"],
		l.beds["CCU-02"], l.beds["CCU-03"], l.beds["CCU-04"]}
	token := s.token("nurse")
	results := make([]response, len(beds))
	var wg sync.WaitGroup
	for i, b := range beds {
		wg.Go(func() { results[i] = s.do(token, admitMutation, admitInput(d.patients[2], b, d.doctor)) })
	}
	wg.Wait()
	won := ""
	for i, r := range results {
		switch {
		case len(r.Errors) == 0:
			must(t, won == "", "two admissions of one patient: into %s and %s", won, beds[i])
			won = beds[i]
		case !r.hasCode("CONFLICT") || len(r.Errors) != 1:
			t.Errorf("bed %d: want success or CONFLICT, got %s", i, describe(r))
		}
	}
	must(t, won != "", "no admission succeeded")
	for _, b := range beds {
		want := "FREE"
		if b == won {
			want = "OCCUPIED"
		}
		must(t, bedStatus(t, s, b) == want, "bed %s is %s, want %s", b, bedStatus(t, s, b), want)
	}
	var out struct{ Admissions struct{ TotalCount int } }
	s.as("admin", `query($p: ID!) { admissions(where: {patientID: $p}) { totalCount } }`,
		map[string]any{"p": d.patients[2]}).decode(t, &out)
	must(t, out.Admissions.TotalCount == 1, "the patient has %d stays", out.Admissions.TotalCount)
}

func TestBedBoard(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	l := s.layout()
	admit(t, s, "reception", d.patients[1], l.beds["MED-A-05"], d.doctor)

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
	s.as("nurse", board, nil).decode(t, &all)
	must(t, len(all.BedBoard) == 2 && all.BedBoard[0].Ward.Code == "CCU" && all.BedBoard[1].Ward.Code == "MED-A",
		"wards by code: %+v", all.BedBoard)
	ccu, med := all.BedBoard[0], all.BedBoard[1]
	must(t, ccu.Ward.Department.Code == "CAR" && ccu.Occupied == 1 && ccu.Free == 3 && len(ccu.Beds) == 4, "CCU: %+v", ccu)
	must(t, med.Occupied == 1 && med.Cleaning == 1 && med.Free == 4 && med.OutOfService == 0 && len(med.Beds) == 6, "MED-A: %+v", med)
	for i, b := range med.Beds {
		must(t, b.Bed.Code == fmt.Sprintf("MED-A-%02d", i+1) && b.Bed.Ward.Code == "MED-A", "beds by code: %+v", med.Beds)
		must(t, (b.Admission != nil) == (b.Bed.Status == "OCCUPIED"), "%s: admission %+v with status %s", b.Bed.Code, b.Admission, b.Bed.Status)
	}
	must(t, med.Beds[1].Bed.Status == "CLEANING", "MED-A-02: %+v", med.Beds[1])
	mine := med.Beds[4]
	must(t, mine.Admission != nil && mine.Admission.Patient.ID == d.patients[1] && mine.Admission.Attending.ID == d.doctor &&
		mine.Admission.Status == "ADMITTED", "MED-A-05: %+v", mine)
	must(t, ccu.Beds[0].Admission != nil && ccu.Beds[0].Admission.Patient.ID == d.patients[3] &&
		ccu.Beds[0].Admission.Patient.FamilyName == "Njoroge", "CCU-01: %+v", ccu.Beds[0])

	var one boardOut
	s.as("reception", board, map[string]any{"ward": l.wards["CCU"]}).decode(t, &one)
	must(t, len(one.BedBoard) == 1 && one.BedBoard[0].Ward.Code == "CCU", "one ward: %+v", one)

	r := s.as("nurse", board, map[string]any{"ward": "wrd_01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	must(t, r.hasCode("NOT_FOUND"), "unknown ward: %s", describe(r))
	r = s.as("nurse", board, map[string]any{"ward": l.beds["CCU-01"]})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "wardId", "a bed ID as a ward: %s", describe(r))

	// Set-up: an administrator adds a ward and a bed, which join the board.
	var ward struct{ CreateWard struct{ ID, Code string } }
	s.as("admin", `mutation($in: CreateWardInput!) { createWard(input: $in) { id code } }`,
		map[string]any{"in": map[string]any{"departmentId": d.cardiology, "code": "CCU-B", "name": "Coronary Care B"}}).decode(t, &ward)
	r = s.as("admin", `mutation($in: CreateWardInput!) { createWard(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"departmentId": d.cardiology, "code": "CCU-B", "name": "Again"}})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.code", "duplicate ward code: %s", describe(r))
	var added struct{ AddBed struct{ Code, Status string } }
	s.as("admin", `mutation($w: ID!) { addBed(wardId: $w, code: "CCU-B-01") { code status } }`,
		map[string]any{"w": ward.CreateWard.ID}).decode(t, &added)
	must(t, added.AddBed.Status == "FREE", "new bed: %+v", added)
	r = s.as("nurse", `mutation($w: ID!) { addBed(wardId: $w, code: "CCU-B-02") { code } }`, map[string]any{"w": ward.CreateWard.ID})
	must(t, r.hasCode("FORBIDDEN"), "a nurse adding beds: %s", describe(r))
	s.as("nurse", board, map[string]any{"ward": ward.CreateWard.ID}).decode(t, &one)
	must(t, len(one.BedBoard) == 1 && len(one.BedBoard[0].Beds) == 1 && one.BedBoard[0].Free == 1, "new ward's board: %+v", one)
}

// TestPatientSeesOwnStaysOnly: the patient reads their own admissions and
// bed history, nobody else's, and neither the bed board nor its events.
func TestPatientSeesOwnStaysOnly(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	l := s.layout()
	own := admit(t, s, "reception", d.patients[0], l.beds["MED-A-01"], d.doctor)
	var theirs struct {
		Admissions struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.as("doctor", `query($p: ID!) { admissions(where: {patientID: $p}) { edges { node { id } } } }`,
		map[string]any{"p": d.patients[3]}).decode(t, &theirs)
	must(t, len(theirs.Admissions.Edges) == 1, "the demo inpatient's stay: %+v", theirs)
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
	s.as("patient", `{ admissions { totalCount edges { node { id status reason patient { id } bedHistory { fromAt } encounter { type } } } } }`, nil).
		decode(t, &mine)
	must(t, mine.Admissions.TotalCount == 1 && mine.Admissions.Edges[0].Node.ID == own.ID &&
		mine.Admissions.Edges[0].Node.Patient.ID == d.patients[0] && len(mine.Admissions.Edges[0].Node.BedHistory) == 1 &&
		mine.Admissions.Edges[0].Node.Encounter.Type == "INPATIENT", "own stays: %+v", mine)

	r := s.as("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": other})
	must(t, r.hasCode("NOT_FOUND"), "another patient's stay by node: %s", describe(r))
	r = s.as("patient", `query($p: ID!) { admissions(where: {patientID: $p}) { totalCount } }`, map[string]any{"p": d.patients[3]})
	var none struct{ Admissions struct{ TotalCount int } }
	r.decode(t, &none)
	must(t, none.Admissions.TotalCount == 0, "another patient's stays by filter: %s", describe(r))
	r = s.as("patient", `{ bedBoard { __typename } }`, nil)
	must(t, r.hasCode("FORBIDDEN"), "the patient's bed board: %s", describe(r))
	r = s.as("patient", `mutation($id: ID!, $in: DischargePatientInput!) { dischargePatient(admissionId: $id, input: $in) { id } }`,
		map[string]any{"id": own.ID, "in": map[string]any{"summary": "I feel fine", "disposition": "HOME"}})
	must(t, r.hasCode("FORBIDDEN"), "a patient discharging themselves: %s", describe(r))
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

// bedFeed is one bedStatusChanged subscription on its own connection.
type bedFeed struct {
	t  testing.TB
	c  *wsClient
	id string
	// probeBed is the bed awaitBedsLive toggles; its events are not part
	// of what a test asserts.
	probeBed string
}

func subscribeBeds(t testing.TB, s *server, proto, credential, probeBed string, args map[string]any) *bedFeed {
	t.Helper()
	c := s.dialWS(t, proto)
	c.init(credential)
	return &bedFeed{t: t, c: c, id: c.start(bedStatusChangedSubscription, args), probeBed: probeBed}
}

func (f *bedFeed) next() bedEvent {
	f.t.Helper()
	for {
		if ev := f.decode(f.c.result(f.id)); ev.Bed.ID != f.probeBed {
			return ev
		}
	}
}

func (f *bedFeed) decode(r opResult) bedEvent {
	f.t.Helper()
	if r.kind != "next" {
		f.t.Fatalf("%s: want an event, got %s: %v", f.c.proto, r.kind, r.resp.Errors)
	}
	var out struct{ BedStatusChanged bedEvent }
	r.resp.decode(f.t, &out)
	ev := out.BedStatusChanged
	must(f.t, events.ValidID(ev.EventID), "eventId %q is not an event ID", ev.EventID)
	_, err := time.Parse(time.RFC3339, ev.OccurredAt)
	must(f.t, err == nil, "occurredAt %q: %v", ev.OccurredAt, err)
	return ev
}

// awaitBedsLive returns once every feed is receiving, proven as awaitLive
// proves it for appointments: by probe events, here from taking probeBed out
// of service and back, until each feed has heard one.
func awaitBedsLive(t testing.TB, s *server, probeBed string, feeds ...*bedFeed) {
	t.Helper()
	waiting := append([]*bedFeed(nil), feeds...)
	out := false
	for attempt := 0; len(waiting) > 0; attempt++ {
		if attempt == 20 {
			t.Fatalf("%d subscription(s) received none of %d probe events", len(waiting), attempt)
		}
		if out {
			s.as("admin", returnMutation, map[string]any{"bed": probeBed}).decode(t, &struct{}{})
		} else {
			s.as("admin", outOfServiceMutation, map[string]any{"bed": probeBed, "r": "probe"}).decode(t, &struct{}{})
		}
		out = !out
		var still []*bedFeed
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
			must(t, ev.Bed.ID == probeBed, "%s: event %s for bed %s arrived before any probe", f.c.proto, ev.Type, ev.Bed.Code)
		}
		waiting = still
	}
}

func TestBedStatusChangedLive(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			d := s.demo()
			l := s.layout()
			probe := l.beds["MED-A-06"]
			ward := subscribeBeds(t, s, proto, s.token("nurse"), probe, map[string]any{"wardId": l.wards["MED-A"]})
			all := subscribeBeds(t, s, proto, s.token("reception"), probe, nil)
			awaitBedsLive(t, s, probe, ward, all)

			a := admit(t, s, "reception", d.patients[1], l.beds["MED-A-01"], d.doctor)
			s.as("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.beds["CCU-02"], "reason": "Arrhythmia"}}).
				decode(t, &struct{}{})
			s.as("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.beds["MED-A-03"], "reason": "Stable"}}).
				decode(t, &struct{}{})
			s.as("doctor", dischargeMutation, map[string]any{"id": a.ID, "in": map[string]any{"summary": "Well", "disposition": "HOME"}}).
				decode(t, &struct{}{})
			s.as("nurse", cleanedMutation, map[string]any{"bed": l.beds["MED-A-03"]}).decode(t, &struct{}{})

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
					ev := feed.f.next()
					must(t, ev.Type == want.typ && ev.Bed.Code == want.bed && ev.Status == want.status &&
						ev.PreviousStatus != nil && *ev.PreviousStatus == want.previous,
						"%s feed: want %+v, got %+v", feed.name, want, ev)
					occupied := want.status == "OCCUPIED"
					must(t, (ev.Admission != nil) == occupied, "%s feed, %s: admission %+v", feed.name, want.typ, ev.Admission)
					if occupied {
						must(t, ev.Admission.ID == a.ID && ev.Admission.Patient.ID == d.patients[1], "%s: %+v", want.typ, ev.Admission)
					}
					must(t, last == "" || events.CompareIDs(last, ev.EventID) < 0, "event IDs must increase: %s then %s", last, ev.EventID)
					last = ev.EventID
				}
			}
		})
	}
}

func TestBedStatusChangedResume(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	l := s.layout()
	probe := l.beds["MED-A-06"]
	f := subscribeBeds(t, s, protoTransportWS, s.token("nurse"), probe, nil)
	awaitBedsLive(t, s, probe, f)

	a := admit(t, s, "reception", d.patients[1], l.beds["MED-A-01"], d.doctor)
	seen := f.next()
	must(t, seen.Type == "ADMITTED" && seen.Bed.Code == "MED-A-01", "want the admission, got %+v", seen)
	f.c.close()

	s.as("nurse", transferMutation, map[string]any{"id": a.ID, "in": map[string]any{"toBedId": l.beds["MED-A-03"], "reason": "Window bed"}}).
		decode(t, &struct{}{})
	s.as("nurse", cleanedMutation, map[string]any{"bed": l.beds["MED-A-01"]}).decode(t, &struct{}{})

	g := subscribeBeds(t, s, protoTransportWS, s.token("nurse"), probe, map[string]any{"after": seen.EventID})
	last := seen.EventID
	for i, want := range []struct{ typ, bed, status, nowStatus string }{
		// The replayed events carry the status they caused; the bed is
		// loaded as it is now.
		{"TRANSFERRED_OUT", "MED-A-01", "CLEANING", "FREE"},
		{"TRANSFERRED_IN", "MED-A-03", "OCCUPIED", "OCCUPIED"},
		{"CLEANED", "MED-A-01", "FREE", "FREE"},
	} {
		ev := g.next()
		must(t, ev.Type == want.typ && ev.Bed.Code == want.bed && ev.Status == want.status && ev.Bed.Status == want.nowStatus,
			"replayed event %d: want %+v, got %+v", i, want, ev)
		must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
		last = ev.EventID
	}
	// With a cursor the subscription is gap-free from the start, so the
	// live event needs no probe to be heard.
	s.as("doctor", dischargeMutation, map[string]any{"id": a.ID, "in": map[string]any{"summary": "Well", "disposition": "HOME"}}).
		decode(t, &struct{}{})
	ev := g.next()
	must(t, ev.Type == "DISCHARGED" && ev.Bed.Code == "MED-A-03" && ev.Admission == nil, "live after the replay: %+v", ev)
	must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)

	c := s.dialWS(t, protoTransportWS)
	c.init(s.token("nurse"))
	errs := c.failure(c.start(bedStatusChangedSubscription, map[string]any{"after": "yesterday"}))
	must(t, len(errs) == 1 && errs[0].code() == "BAD_USER_INPUT" && errs[0].field() == "after", "bad cursor: %v", errs)
	errs = c.failure(c.start(bedStatusChangedSubscription, map[string]any{"wardId": l.beds["CCU-01"]}))
	must(t, len(errs) == 1 && errs[0].code() == "BAD_USER_INPUT" && errs[0].field() == "wardId", "a bed ID as a ward: %v", errs)
}

func TestBedStatusChangedAuthorization(t *testing.T) {
	for _, proto := range wsProtocols {
		t.Run(proto, func(t *testing.T) {
			s := newServer(t)
			for _, user := range []string{"patient", "labtech", "pharmacist", "billing", "hr", "auditor", ""} {
				credential, who := "", "anonymous"
				if user != "" {
					credential, who = s.token(user), user
				}
				c := s.dialWS(t, proto)
				c.init(credential)
				errs := c.failure(c.start(bedStatusChangedSubscription, nil))
				must(t, len(errs) == 1 && errs[0].code() == deniedCode(who), "%s: want %s, got %v", who, deniedCode(who), errs)
				c.close()
			}
		})
	}
}
