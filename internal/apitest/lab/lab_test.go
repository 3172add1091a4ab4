package lab

import (
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const (
	rejectMutation = `mutation($id: ID!, $in: RejectLabSpecimenInput!) {
  rejectLabSpecimen(id: $id, input: $in) { id status rejectionReason rejectionNote items { id status } }
}`
	cancelItemMutation = `mutation($id: ID!, $r: String!) {
  cancelLabOrderItem(id: $id, reason: $r) { id status cancelReason cancelledBy { id } }
}`
	byAccessionQuery = `query($a: String!) {
  labSpecimenByAccession(accessionNumber: $a) { id accessionNumber status patient { id } items { id status test { id } } }
}`
)

// wardsAndCardiologist returns the demo's ward IDs by code and the
// attending doctor of its inpatient (Patients[3], in CCU-01).
func wardsAndCardiologist(t testing.TB, s *harness.Server) (map[string]string, string) {
	t.Helper()
	var out struct {
		BedBoard []struct {
			Ward struct{ ID, Code string }
			Beds []struct {
				Bed       struct{ Code string }
				Admission *struct{ Attending struct{ ID string } }
			}
		}
	}
	s.As("admin", `{ bedBoard { ward { id code } beds { bed { code } admission { attending { id } } } } }`, nil).Decode(t, &out)
	wards, attending := map[string]string{}, ""
	for _, w := range out.BedBoard {
		wards[w.Ward.Code] = w.Ward.ID
		for _, b := range w.Beds {
			if b.Bed.Code == "CCU-01" && b.Admission != nil {
				attending = b.Admission.Attending.ID
			}
		}
	}
	harness.Must(t, wards["CCU"] != "" && wards["MED-A"] != "" && attending != "", "demo wards: %+v", out)
	return wards, attending
}

// labWards is the bedside scene: Patients[0] admitted to MED-A by the
// doctor, the demo's inpatient Patients[3] in the CCU under the
// cardiologist, and potassium values for each.
type labWards struct {
	Wards                map[string]string
	Cardiologist         string
	MedA, CCU            string
	MedValues, CCUValues harness.PotassiumValues
}

// setUpLabWards admits Patients[0] to MED-A-01 and reads each patient's
// potassium values.
func setUpLabWards(t testing.TB, s *harness.Server, d harness.DemoIDs, desk *harness.LabDesk) labWards {
	t.Helper()
	w := labWards{MedA: d.Patients[0], CCU: d.Patients[3]}
	w.Wards, w.Cardiologist = wardsAndCardiologist(t, s)
	harness.Admit(t, s, "reception", w.MedA, s.Layout().Beds["MED-A-01"], d.Doctor)
	pf := harness.Facts(t, s, w.MedA)
	_, w.MedValues = desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	pf = harness.Facts(t, s, w.CCU)
	_, w.CCUValues = desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	return w
}

// staffID is the staff record of a demo user.
func staffID(t testing.TB, s *harness.Server, user string) string {
	t.Helper()
	var out struct {
		Me struct{ Staff struct{ ID string } }
	}
	s.As(user, `{ me { staff { id } } }`, nil).Decode(t, &out)
	harness.Must(t, out.Me.Staff.ID != "", "%s has no staff record", user)
	return out.Me.Staff.ID
}

func parseTime(t testing.TB, what, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s %q: %v", what, s, err)
	}
	return at
}

// wholeMinutes is how many whole minutes lie between two API timestamps.
func wholeMinutes(t testing.TB, from, to string) int {
	t.Helper()
	return int(parseTime(t, "to", to).Sub(parseTime(t, "from", from)) / time.Minute)
}

// Crockford base 32 after a YYMMDD date.
var accessionPattern = regexp.MustCompile(`^[0-9]{6}[0-9A-HJKMNP-TV-Z]{6}$`)

// TestLabWorkflowOverHTTP follows one order through the lab as the issue
// describes it, through GraphQL only: the doctor orders for an admitted
// patient, the nurse collects, the lab receives, one technician enters,
// another verifies, and the patient reads the result.
func TestLabWorkflowOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	cat := desk.Cat
	own := d.Patients[0] // the patient user's record
	stay := harness.Admit(t, s, "reception", own, s.Layout().Beds["MED-A-01"], d.Doctor)
	harness.Must(t, stay.Status == "ADMITTED", "admitted: %+v", stay)
	pf := harness.Facts(t, s, own)
	kRange, kv := cat.PotassiumFor(t, pf.Sex, pf.Birth)
	labtech, labtech2 := staffID(t, s, "labtech"), staffID(t, s, "labtech2")
	demoRows := existingLab(t, s)

	// The doctor orders potassium and haemoglobin, and the metabolic
	// panel, which holds potassium again.
	notes := "Vomiting for two days; on furosemide"
	o := desk.Order(own, []string{cat.Haemoglobin.ID, cat.Potassium.ID}, []string{cat.Panel.ID},
		map[string]any{"priority": "STAT", "clinicalNotes": notes})
	harness.Must(t, o.Priority == "STAT" && o.ClinicalNotes != nil && *o.ClinicalNotes == notes &&
		o.Patient.ID == own && o.OrderedBy.ID == d.Doctor, "order: %+v", o)
	want := map[string]bool{cat.Haemoglobin.ID: true, cat.Potassium.ID: true}
	for _, pt := range cat.Panel.Tests {
		want[pt.ID] = true
	}
	harness.Must(t, len(o.Items) == len(want), "%d items for %d distinct tests: %+v", len(o.Items), len(want), o.Items)
	seen := map[string]bool{}
	for _, it := range o.Items {
		harness.Must(t, want[it.Test.ID] && !seen[it.Test.ID], "item %+v: unexpected or twice", it)
		seen[it.Test.ID] = true
		harness.Must(t, it.Status == "ORDERED" && it.OrderedAt == o.OrderedAt, "new item: %+v", it)
		alone := it.Test.ID == cat.Haemoglobin.ID || it.Test.ID == cat.Potassium.ID
		harness.Must(t, (it.Panel == nil) == alone, "item %s: ordered alone %v, panel %+v", it.Test.Code, alone, it.Panel)
		harness.Must(t, alone || it.Panel.ID == cat.Panel.ID, "item %s panel %+v", it.Test.Code, it.Panel)
	}
	kItem, hbItem := o.Item(t, cat.Potassium.ID), o.Item(t, cat.Haemoglobin.ID)

	// The nurse collects one container per specimen type.
	var serumItems []string
	for _, it := range o.Items {
		if it.Test.SpecimenType == cat.Potassium.SpecimenType {
			serumItems = append(serumItems, it.ID)
		}
	}
	before := time.Now().UTC()
	kSpec := desk.Collect("nurse", serumItems...)
	hbSpec := desk.Collect("nurse", hbItem)
	after := time.Now().UTC()
	for _, sp := range []harness.LabSpecimen{kSpec, hbSpec} {
		harness.Must(t, accessionPattern.MatchString(sp.AccessionNumber), "accession number %q", sp.AccessionNumber)
		day := sp.AccessionNumber[:6]
		harness.Must(t, day == before.Format("060102") || day == after.Format("060102"), "accession %s is not dated today", sp.AccessionNumber)
		harness.Must(t, sp.Status == "COLLECTED" && sp.CollectedBy != nil && sp.CollectedBy.ID == d.Nurse && sp.Patient.ID == own, "specimen: %+v", sp)
		for _, it := range sp.Items {
			harness.Must(t, it.Status == "COLLECTED", "collected item: %+v", sp.Items)
		}
	}
	harness.Must(t, kSpec.AccessionNumber != hbSpec.AccessionNumber, "two specimens share accession number %s", kSpec.AccessionNumber)
	harness.Must(t, len(kSpec.Items) == len(serumItems) && len(hbSpec.Items) == 1 && kSpec.SpecimenType == cat.Potassium.SpecimenType &&
		hbSpec.SpecimenType == cat.Haemoglobin.SpecimenType, "containers: %+v / %+v", kSpec, hbSpec)

	// The lab scans the label: typed in lower case with spaces, it still
	// finds the specimen.
	var found struct {
		LabSpecimenByAccession *harness.LabSpecimen
	}
	s.As("labtech", byAccessionQuery, map[string]any{"a": " " + strings.ToLower(kSpec.AccessionNumber) + " "}).Decode(t, &found)
	harness.Must(t, found.LabSpecimenByAccession != nil && found.LabSpecimenByAccession.ID == kSpec.ID &&
		found.LabSpecimenByAccession.Status == "COLLECTED", "by accession: %+v", found.LabSpecimenByAccession)
	s.As("labtech", byAccessionQuery, map[string]any{"a": "000000AAAAAA"}).Decode(t, &found)
	harness.Must(t, found.LabSpecimenByAccession == nil, "an unknown accession number found %+v", found.LabSpecimenByAccession)

	rec := desk.Receive("labtech", kSpec.ID)
	harness.Must(t, rec.Status == "RECEIVED" && rec.ReceivedAt != nil && rec.ReceivedBy != nil && rec.ReceivedBy.ID == labtech,
		"received: %+v", rec)
	for _, it := range rec.Items {
		harness.Must(t, it.Status == "RECEIVED", "received items: %+v", rec.Items)
	}
	desk.Receive("labtech", hbSpec.ID)

	// labtech enters potassium; it waits for a second person.
	res := desk.Enter("labtech", kItem, map[string]any{"numericValue": kv.Normal, "comment": "Sample clear"})
	harness.Must(t, res.Status == "ENTERED" && res.NumericValue != nil && *res.NumericValue == kv.Normal && res.FlagOrNone() == "NORMAL" &&
		!res.Critical && res.VerifiedAt == nil && res.VerifiedBy == nil && res.EnteredBy.ID == labtech && res.Patient.ID == own,
		"entered: %+v", res)
	harness.Must(t, res.JudgedBy(kRange), "entered %+v, want the range %+v", res, kRange)
	harness.Must(t, (res.Unit == nil) == (cat.Potassium.Unit == nil) && (res.Unit == nil || *res.Unit == *cat.Potassium.Unit),
		"unit %v, want the test's %v", res.Unit, cat.Potassium.Unit)
	harness.Must(t, res.Item.ID == kItem && res.Item.Status == "RESULTED" && res.Item.TurnaroundMinutes == nil, "item once entered: %+v", res.Item)

	r := s.As("labtech", harness.LabVerifyMutation, map[string]any{"id": res.ID})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN", "labtech verifies their own entry: %s", harness.Describe(r))
	harness.Must(t, desk.Read("labtech", res.ID).Status == "ENTERED", "a refused verification changed the result")

	v := desk.Verify("labtech2", res.ID)
	harness.Must(t, v.ID == res.ID && v.Status == "VERIFIED" && v.VerifiedBy != nil && v.VerifiedBy.ID == labtech2 &&
		v.VerifiedAt != nil && v.EnteredBy.ID == labtech && v.FlagOrNone() == "NORMAL", "verified: %+v", v)
	harness.Must(t, v.Item.Status == "VERIFIED" && v.Item.VerifiedAt != nil && *v.Item.VerifiedAt == *v.VerifiedAt, "verified item: %+v", v.Item)
	harness.Must(t, v.Item.TurnaroundMinutes != nil && *v.Item.TurnaroundMinutes == wholeMinutes(t, v.Item.OrderedAt, *v.VerifiedAt),
		"turnaround %v from %s to %s", v.Item.TurnaroundMinutes, v.Item.OrderedAt, *v.VerifiedAt)

	// Haemoglobin is judged by the range of the patient's sex: a value
	// normal for a woman but low for a man tells which one applied.
	hbRange := cat.Haemoglobin.RangeFor(t, pf.Sex, pf.Birth)
	otherSex := map[string]string{"FEMALE": "MALE", "MALE": "FEMALE"}[pf.Sex]
	hbOther := cat.Haemoglobin.RangeFor(t, otherSex, pf.Birth)
	harness.Must(t, hbRange.Sex != nil && *hbRange.Sex == pf.Sex, "haemoglobin has no range for %s: %+v", pf.Sex, cat.Haemoglobin.ReferenceRanges)
	hbValue := cat.Haemoglobin.Round((*hbRange.Low + *hbOther.Low) / 2)
	harness.Must(t, pf.Sex == "FEMALE" && hbValue >= *hbRange.Low && hbValue < *hbOther.Low,
		"%v g/dL does not tell the %s range %+v from the other %+v", hbValue, pf.Sex, hbRange, hbOther)
	hb := desk.Enter("labtech2", hbItem, map[string]any{"numericValue": hbValue})
	harness.Must(t, hb.FlagOrNone() == "NORMAL" && hb.JudgedBy(hbRange), "haemoglobin %v: %+v, want the range %+v", hbValue, hb, hbRange)
	hb = desk.Verify("labtech", hb.ID)
	harness.Must(t, hb.Status == "VERIFIED" && hb.VerifiedBy.ID == labtech, "haemoglobin verified: %+v", hb)

	// The patient reads their verified results, and the order's progress.
	var mine struct {
		LabResults struct {
			Edges []struct {
				Node struct {
					ID, Status, Flag string
					NumericValue     float64
					Item             struct{ Test struct{ Code string } }
				}
			}
		}
		LabOrders struct {
			Edges []struct {
				Node struct {
					ID, Priority string
					Items        []struct{ ID, Status string }
				}
			}
		}
	}
	s.As("patient", `{
	  labResults(first: 50) { edges { node { id status flag numericValue item { test { code } } } } }
	  labOrders(first: 50) { edges { node { id priority items { id status } } } }
	}`, nil).Decode(t, &mine)
	got := map[string]string{}
	for _, e := range mine.LabResults.Edges {
		if !demoRows[e.Node.ID] {
			got[e.Node.ID] = e.Node.Status + " " + e.Node.Flag
		}
	}
	harness.Must(t, len(got) == 2 && got[v.ID] == "VERIFIED NORMAL" && got[hb.ID] == "VERIFIED NORMAL", "the patient's results: %v", got)
	statuses, orders := map[string]string{}, 0
	for _, e := range mine.LabOrders.Edges {
		if demoRows[e.Node.ID] {
			continue
		}
		orders++
		harness.Must(t, e.Node.ID == o.ID && e.Node.Priority == "STAT", "the patient's orders: %+v", mine.LabOrders)
		for _, it := range e.Node.Items {
			statuses[it.ID] = it.Status
		}
	}
	harness.Must(t, orders == 1, "the patient has %d new orders, want 1: %+v", orders, mine.LabOrders)
	harness.Must(t, statuses[kItem] == "VERIFIED" && statuses[hbItem] == "VERIFIED", "the patient's items: %v", statuses)
	for _, id := range serumItems {
		if id != kItem {
			harness.Must(t, statuses[id] == "RECEIVED", "a panel item not resulted yet: %v", statuses)
		}
	}
}

// TestLabAmendmentOverHTTP: a correction is entered by one lab technician
// and released by another. Until then the original is the released result
// and the correction is as invisible outside the lab as any unverified
// result; once verified, the original stays, CORRECTED, and the item is
// AMENDED.
func TestLabAmendmentOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	own := d.Patients[0]
	pf := harness.Facts(t, s, own)
	kRange, kv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	labtech, labtech2 := staffID(t, s, "labtech"), staffID(t, s, "labtech2")
	demoRows := existingLab(t, s)

	orig := desk.Released(own, desk.Cat.Potassium.ID, harness.Potassium(kv.Normal))
	reason := "Transcription error: value of the next sample"
	fix := desk.Amend("labtech", orig.ID, map[string]any{"numericValue": kv.High, "comment": "Rechecked", "reason": reason})
	harness.Must(t, fix.ID != orig.ID && fix.Status == "ENTERED" && fix.NumericValue != nil && *fix.NumericValue == kv.High &&
		fix.FlagOrNone() == "HIGH" && fix.JudgedBy(kRange) && fix.AmendReason != nil && *fix.AmendReason == reason &&
		fix.Comment != nil && *fix.Comment == "Rechecked", "amendment: %+v", fix)
	harness.Must(t, fix.EnteredBy.ID == labtech && fix.VerifiedBy == nil && fix.VerifiedAt == nil,
		"the amendment waits for a second person: %+v", fix)
	harness.Must(t, fix.Replaces != nil && fix.Replaces.ID == orig.ID && fix.Replaces.Status == "VERIFIED", "replaces: %+v", fix.Replaces)
	harness.Must(t, fix.Item.ID == orig.Item.ID && fix.Item.Status == "VERIFIED", "item while the amendment waits: %+v", fix.Item)

	// Until it is verified the original is what everyone outside the lab
	// reads, with nothing pointing to a replacement they cannot see.
	for _, user := range []string{"doctor", "patient"} {
		old := desk.Read(user, orig.ID)
		harness.Must(t, old.Status == "VERIFIED" && old.ReplacedBy == nil && *old.NumericValue == kv.Normal,
			"%s reads the original while the amendment waits: %+v", user, old)
		r := s.As(user, harness.LabResultQuery, map[string]any{"id": fix.ID})
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "NOT_FOUND", "%s reads the waiting amendment: %s", user, harness.Describe(r))
	}
	old := desk.Read("labtech2", orig.ID)
	harness.Must(t, old.Status == "VERIFIED" && old.ReplacedBy != nil && old.ReplacedBy.ID == fix.ID,
		"the lab sees the amendment waiting on the original: %+v", old)

	count := func() int {
		var out struct {
			Node struct{ Results []struct{ ID string } }
		}
		s.As("labtech", `query($id: ID!) { node(id: $id) { ... on LabOrderItem { results { id } } } }`,
			map[string]any{"id": orig.Item.ID}).Decode(t, &out)
		return len(out.Node.Results)
	}
	harness.Must(t, count() == 2, "the item's results while the amendment waits: %d", count())
	for _, user := range []string{"labtech", "labtech2"} {
		r := s.As(user, harness.LabAmendMutation, map[string]any{"id": orig.ID, "in": map[string]any{"numericValue": kv.Normal, "reason": "again"}})
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "CONFLICT", "%s amends while an amendment waits: %s", user, harness.Describe(r))
	}
	r := s.As("labtech", harness.LabVerifyMutation, map[string]any{"id": fix.ID})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN", "the amender verifies their own amendment: %s", harness.Describe(r))
	r = s.As("doctor", harness.LabAmendMutation, map[string]any{"id": orig.ID, "in": map[string]any{"numericValue": 4, "reason": "x"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a doctor amends: %s", harness.Describe(r))
	r = s.As("doctor", harness.LabVerifyMutation, map[string]any{"id": fix.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a doctor verifies an amendment: %s", harness.Describe(r))
	harness.Must(t, count() == 2 && desk.Read("labtech", fix.ID).Status == "ENTERED" && desk.Read("labtech", orig.ID).Status == "VERIFIED",
		"refusals changed the amendment or the original")

	v := desk.Verify("labtech2", fix.ID)
	harness.Must(t, v.ID == fix.ID && v.Status == "VERIFIED" && v.VerifiedBy != nil && v.VerifiedBy.ID == labtech2 && v.VerifiedAt != nil &&
		v.EnteredBy.ID == labtech && *v.NumericValue == kv.High, "verified amendment: %+v", v)
	harness.Must(t, v.Replaces != nil && v.Replaces.ID == orig.ID && v.Replaces.Status == "CORRECTED", "replaces once verified: %+v", v.Replaces)
	harness.Must(t, v.Item.Status == "AMENDED", "item after amendment: %+v", v.Item)
	// Turnaround is to the first verified result; a correction does not
	// move it.
	harness.Must(t, v.Item.VerifiedAt != nil && *v.Item.VerifiedAt == *orig.VerifiedAt &&
		*v.Item.TurnaroundMinutes == *orig.Item.TurnaroundMinutes, "item timing after amendment: %+v, was %+v", v.Item, orig.Item)

	old = desk.Read("doctor", orig.ID)
	harness.Must(t, old.Status == "CORRECTED" && old.ReplacedBy != nil && old.ReplacedBy.ID == fix.ID &&
		*old.NumericValue == kv.Normal && old.VerifiedAt != nil && *old.VerifiedAt == *orig.VerifiedAt, "the original: %+v", old)

	r = s.As("labtech2", harness.LabAmendMutation, map[string]any{"id": orig.ID, "in": map[string]any{"numericValue": 4, "reason": "again"}})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "CONFLICT", "amend a corrected result: %s", harness.Describe(r))
	r = s.As("labtech", harness.LabVerifyMutation, map[string]any{"id": fix.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "verify an amendment twice: %s", harness.Describe(r))

	// The patient sees both: what was released, and what replaced it.
	patientResults := func() map[string]string {
		var mine struct {
			LabResults struct {
				Edges []struct {
					Node struct {
						ID, Status string
						Replaces   *struct{ ID string }
					}
				}
			}
		}
		s.As("patient", `{ labResults(first: 50) { edges { node { id status replaces { id } } } } }`, nil).Decode(t, &mine)
		got := map[string]string{}
		for _, e := range mine.LabResults.Edges {
			if !demoRows[e.Node.ID] {
				got[e.Node.ID] = e.Node.Status
			}
		}
		return got
	}
	got := patientResults()
	harness.Must(t, len(got) == 2 && got[orig.ID] == "CORRECTED" && got[fix.ID] == "VERIFIED", "the patient's results: %v", got)

	// A correction is amended like any released result, by the other
	// technician this time, and verified by the first.
	again := desk.Amend("labtech2", fix.ID, map[string]any{"numericValue": kv.Normal, "reason": "Wrong sample after all"})
	harness.Must(t, again.Status == "ENTERED" && again.Replaces != nil && again.Replaces.ID == fix.ID && again.Replaces.Status == "VERIFIED",
		"second amendment: %+v", again)
	got = patientResults()
	harness.Must(t, len(got) == 2 && got[fix.ID] == "VERIFIED", "the patient's results while the second amendment waits: %v", got)
	again = desk.Verify("labtech", again.ID)
	harness.Must(t, again.Status == "VERIFIED" && again.Replaces.Status == "CORRECTED" && again.Item.Status == "AMENDED", "second amendment: %+v", again)
	got = patientResults()
	harness.Must(t, len(got) == 3 && got[orig.ID] == "CORRECTED" && got[fix.ID] == "CORRECTED" && got[again.ID] == "VERIFIED",
		"the patient's results after two amendments: %v", got)
}

// TestLabConcurrentAmendmentsOneWaits: of two technicians amending the
// same result at once, one correction waits for verification and the
// other is told CONFLICT.
func TestLabConcurrentAmendmentsOneWaits(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	tokens := map[string]string{"labtech": s.Token("labtech"), "labtech2": s.Token("labtech2")}
	for round := 0; round < 5; round++ {
		orig := desk.Released(d.Patients[1], desk.Cat.Potassium.ID, harness.Potassium(4.0))
		results := map[string]harness.Response{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for user, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := s.Do(tok, harness.LabAmendMutation, map[string]any{"id": orig.ID,
					"in": map[string]any{"numericValue": 4.0 + float64(len(user))/10, "reason": "Re-run by " + user}})
				mu.Lock()
				results[user] = r
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		winner := ""
		for user, r := range results {
			switch {
			case len(r.Errors) == 0:
				harness.Must(t, winner == "", "round %d: both %s and %s entered an amendment", round, winner, user)
				winner = user
			case len(r.Errors) != 1 || r.Errors[0].Code() != "CONFLICT":
				t.Fatalf("round %d: %s: want CONFLICT, got %s", round, user, harness.Describe(r))
			}
		}
		harness.Must(t, winner != "", "round %d: neither amendment succeeded: %v", round, results)
		var out struct {
			Node struct {
				Status  string
				Results []struct {
					ID, Status string
					Replaces   *struct{ ID string }
				}
			}
		}
		s.As("labtech", `query($id: ID!) { node(id: $id) { ... on LabOrderItem { status results { id status replaces { id } } } } }`,
			map[string]any{"id": orig.Item.ID}).Decode(t, &out)
		waiting := 0
		for _, r := range out.Node.Results {
			if r.ID != orig.ID {
				harness.Must(t, r.Status == "ENTERED" && r.Replaces != nil && r.Replaces.ID == orig.ID, "round %d: %+v", round, r)
				waiting++
			}
		}
		harness.Must(t, out.Node.Status == "VERIFIED" && waiting == 1, "round %d: item after the race (winner %s): %+v", round, winner, out.Node)
	}
}

const unacknowledgedQuery = `query($w: ID, $after: Cursor, $first: Int) {
  unacknowledgedCriticalResults(wardId: $w, after: $after, first: $first) {
    totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { id flag critical verifiedAt patient { id } notify { id } item { test { code } } } }
  }
}`

type unackNode struct {
	ID, Flag, VerifiedAt string
	Critical             bool
	Patient              struct{ ID string }
	Notify               []struct{ ID string }
	Item                 struct{ Test struct{ Code string } }
}

type unackOut struct {
	UnacknowledgedCriticalResults struct {
		TotalCount int
		PageInfo   struct {
			HasNextPage, HasPreviousPage bool
			StartCursor, EndCursor       *string
		}
		Edges []struct {
			Cursor string
			Node   unackNode
		}
	}
}

func (u unackOut) nodes() []unackNode {
	out := make([]unackNode, len(u.UnacknowledgedCriticalResults.Edges))
	for i, e := range u.UnacknowledgedCriticalResults.Edges {
		out[i] = e.Node
	}
	return out
}

func TestLabCriticalValuesOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	wards, cardiologist := wardsAndCardiologist(t, s)
	harness.Must(t, cardiologist != d.Doctor, "the inpatient's attending is the ordering doctor")
	inpatient := d.Patients[3] // in the CCU
	medA := d.Patients[0]
	harness.Admit(t, s, "reception", medA, s.Layout().Beds["MED-A-01"], d.Doctor)
	pf := harness.Facts(t, s, inpatient)
	_, kv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	pfA := harness.Facts(t, s, medA)
	_, kvA := desk.Cat.PotassiumFor(t, pfA.Sex, pfA.Birth)

	normal := desk.Released(inpatient, desk.Cat.Potassium.ID, harness.Potassium(kv.Normal))
	harness.Must(t, !normal.Critical && normal.FlagOrNone() == "NORMAL", "normal: %+v", normal)
	crit := desk.Released(inpatient, desk.Cat.Potassium.ID, harness.Potassium(kv.CriticalHigh))
	harness.Must(t, crit.Critical && crit.FlagOrNone() == "CRITICAL_HIGH" && crit.AcknowledgedAt == nil, "critical: %+v", crit)
	// At the panic limit itself it is a panic value too.
	low := desk.Released(medA, desk.Cat.Potassium.ID, harness.Potassium(kvA.CriticalLow))
	harness.Must(t, low.Critical && low.FlagOrNone() == "CRITICAL_LOW", "at the critical low limit: %+v", low)

	// Unpaged, the connection holds every row and says so.
	list := func(user string, ward any) []unackNode {
		t.Helper()
		var out unackOut
		s.As(user, unacknowledgedQuery, map[string]any{"w": ward}).Decode(t, &out)
		c := out.UnacknowledgedCriticalResults
		harness.Must(t, c.TotalCount == len(c.Edges) && !c.PageInfo.HasNextPage && !c.PageInfo.HasPreviousPage,
			"%s: an unpaged list of %d says totalCount %d, pageInfo %+v", user, len(c.Edges), c.TotalCount, c.PageInfo)
		for _, n := range out.nodes() {
			harness.Must(t, n.Critical && n.VerifiedAt != "" && n.Item.Test.Code == desk.Cat.Potassium.Code, "%s: listed %+v", user, n)
		}
		return out.nodes()
	}
	ccu := list("nurse", wards["CCU"])
	harness.Must(t, len(ccu) == 1 && ccu[0].ID == crit.ID && ccu[0].Patient.ID == inpatient && ccu[0].Flag == "CRITICAL_HIGH",
		"the CCU's unacknowledged criticals: %+v", ccu)
	notify := harness.IDs(ccu[0].Notify, func(x struct{ ID string }) string { return x.ID })
	sort.Strings(notify)
	wantNotify := []string{d.Doctor, cardiologist}
	sort.Strings(wantNotify)
	harness.Must(t, strings.Join(notify, ",") == strings.Join(wantNotify, ","),
		"notify %v, want the ordering doctor %s and the attending %s", notify, d.Doctor, cardiologist)
	medList := list("doctor", wards["MED-A"])
	harness.Must(t, len(medList) == 1 && medList[0].ID == low.ID, "MED-A's unacknowledged criticals: %+v", medList)
	// For the MED-A patient the ordering doctor is also the attending: told once.
	harness.Must(t, len(medList[0].Notify) == 1 && medList[0].Notify[0].ID == d.Doctor, "notify for MED-A: %+v", medList[0].Notify)
	all := list("labtech", nil)
	harness.Must(t, len(all) == 2 && all[0].ID == crit.ID && all[1].ID == low.ID, "all unacknowledged, oldest first: %+v", all)

	r := s.As("labtech", harness.LabAcknowledgeMutation, map[string]any{"id": crit.ID})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN", "labtech acknowledges: %s", harness.Describe(r))
	r = s.As("patient", unacknowledgedQuery, map[string]any{"w": nil})
	harness.Must(t, r.HasCode("FORBIDDEN"), "the patient lists criticals: %s", harness.Describe(r))
	r = s.As("nurse", harness.LabAcknowledgeMutation, map[string]any{"id": normal.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "acknowledge a normal result: %s", harness.Describe(r))
	harness.WantBadInput(t, "acknowledge garbage", s.As("nurse", harness.LabAcknowledgeMutation, map[string]any{"id": "bad"}), "id")
	harness.Must(t, len(list("nurse", wards["CCU"])) == 1, "refused acknowledgements took it off the list")

	var acked struct{ AcknowledgeCriticalResult harness.LabResult }
	s.As("nurse", harness.LabAcknowledgeMutation, map[string]any{"id": crit.ID}).Decode(t, &acked)
	a := acked.AcknowledgeCriticalResult
	harness.Must(t, a.AcknowledgedBy != nil && a.AcknowledgedBy.ID == d.Nurse && a.AcknowledgedAt != nil && a.AcknowledgeMinutes != nil,
		"acknowledged: %+v", a)
	harness.Must(t, !parseTime(t, "acknowledgedAt", *a.AcknowledgedAt).Before(parseTime(t, "verifiedAt", *a.VerifiedAt)) &&
		*a.AcknowledgeMinutes == wholeMinutes(t, *a.VerifiedAt, *a.AcknowledgedAt),
		"acknowledged at %s, %d minutes after %s", *a.AcknowledgedAt, *a.AcknowledgeMinutes, *a.VerifiedAt)
	harness.Must(t, a.Status == "VERIFIED" && a.Critical && len(a.Notify) == 2, "still a verified critical: %+v", a)

	harness.Must(t, len(list("nurse", wards["CCU"])) == 0, "acknowledged, still listed for the CCU")
	all = list("doctor", nil)
	harness.Must(t, len(all) == 1 && all[0].ID == low.ID, "after acknowledging: %+v", all)

	r = s.As("doctor", harness.LabAcknowledgeMutation, map[string]any{"id": crit.ID})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "CONFLICT", "acknowledge twice: %s", harness.Describe(r))
	again := desk.Read("doctor", crit.ID)
	harness.Must(t, again.AcknowledgedBy != nil && again.AcknowledgedBy.ID == d.Nurse && *again.AcknowledgedAt == *a.AcknowledgedAt,
		"a second acknowledgement changed the first: %+v", again)

	// A critical value corrected to a normal one: while the correction
	// waits, the original is still the released value and still waits for
	// a clinician; once verified, nobody is to act on the original any more.
	fix := desk.Amend("labtech", low.ID, map[string]any{"numericValue": kvA.Normal, "reason": "Drip arm sample"})
	all = list("doctor", nil)
	harness.Must(t, len(all) == 1 && all[0].ID == low.ID, "while the correction waits: %+v", all)
	r = s.As("nurse", harness.LabAcknowledgeMutation, map[string]any{"id": fix.ID})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "NOT_FOUND", "acknowledge a correction not yet verified: %s", harness.Describe(r))
	fix = desk.Verify("labtech2", fix.ID)
	harness.Must(t, !fix.Critical && fix.Replaces != nil && fix.Replaces.Status == "CORRECTED", "verified correction: %+v", fix)
	harness.Must(t, len(list("doctor", nil)) == 0, "a corrected critical is still listed: %+v", list("doctor", nil))
	for what, id := range map[string]string{"the corrected critical": low.ID, "its normal correction": fix.ID} {
		r = s.As("nurse", harness.LabAcknowledgeMutation, map[string]any{"id": id})
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "CONFLICT", "acknowledge %s: %s", what, harness.Describe(r))
	}
	lowNow := desk.Read("doctor", low.ID)
	harness.Must(t, lowNow.Status == "CORRECTED" && lowNow.AcknowledgedAt == nil && lowNow.AcknowledgedBy == nil,
		"refused acknowledgement of a corrected critical: %+v", lowNow)

	// A critical value corrected to another one is a new panic value: it
	// waits for its own acknowledgement, told to the same people.
	fix2 := desk.Verify("labtech", desk.Amend("labtech2", crit.ID, map[string]any{
		"numericValue": desk.Cat.Potassium.Round(kv.CriticalHigh + 1), "reason": "Dilution factor"}).ID)
	harness.Must(t, fix2.Critical && fix2.FlagOrNone() == "CRITICAL_HIGH" && fix2.AcknowledgedAt == nil, "critical correction: %+v", fix2)
	ccu = list("nurse", wards["CCU"])
	harness.Must(t, len(ccu) == 1 && ccu[0].ID == fix2.ID, "the CCU after a critical correction: %+v", ccu)
	notify = harness.IDs(ccu[0].Notify, func(x struct{ ID string }) string { return x.ID })
	sort.Strings(notify)
	harness.Must(t, strings.Join(notify, ",") == strings.Join(wantNotify, ","), "notify for the correction %v, want %v", notify, wantNotify)
	r = s.As("doctor", harness.LabAcknowledgeMutation, map[string]any{"id": crit.ID})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "CONFLICT", "acknowledge a corrected, acknowledged critical: %s", harness.Describe(r))
	s.As("doctor", harness.LabAcknowledgeMutation, map[string]any{"id": fix2.ID}).Decode(t, &acked)
	harness.Must(t, acked.AcknowledgeCriticalResult.AcknowledgedBy != nil && acked.AcknowledgeCriticalResult.AcknowledgedBy.ID == d.Doctor,
		"acknowledged correction: %+v", acked.AcknowledgeCriticalResult)
	harness.Must(t, len(list("nurse", nil)) == 0, "every critical acknowledged or corrected, still listed: %+v", list("nurse", nil))
}

// TestLabConcurrentEntryOneWins: two technicians entering the same item at
// once get one result between them; the other is told CONFLICT.
func TestLabConcurrentEntryOneWins(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	tokens := map[string]string{"labtech": s.Token("labtech"), "labtech2": s.Token("labtech2")}
	techs := map[string]string{staffID(t, s, "labtech"): "labtech", staffID(t, s, "labtech2"): "labtech2"}
	for round := 0; round < 5; round++ {
		item := desk.Received(d.Patients[1], desk.Cat.Potassium.ID)
		results := map[string]harness.Response{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for user, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := s.Do(tok, harness.LabEnterMutation, map[string]any{"item": item, "in": harness.Potassium(4.0 + float64(len(user))/10)})
				mu.Lock()
				results[user] = r
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		winner := ""
		for user, r := range results {
			switch {
			case len(r.Errors) == 0:
				harness.Must(t, winner == "", "round %d: both %s and %s entered a result", round, winner, user)
				winner = user
			case len(r.Errors) != 1 || r.Errors[0].Code() != "CONFLICT":
				t.Fatalf("round %d: %s: want CONFLICT, got %s", round, user, harness.Describe(r))
			}
		}
		harness.Must(t, winner != "", "round %d: neither entry succeeded: %v", round, results)

		var out struct {
			Node struct {
				Status  string
				Results []struct {
					ID, Status string
					EnteredBy  struct{ ID string }
				}
			}
		}
		s.As("labtech", `query($id: ID!) { node(id: $id) { ... on LabOrderItem { status results { id status enteredBy { id } } } } }`,
			map[string]any{"id": item}).Decode(t, &out)
		harness.Must(t, out.Node.Status == "RESULTED" && len(out.Node.Results) == 1 && techs[out.Node.Results[0].EnteredBy.ID] == winner,
			"round %d: item after the race (winner %s): %+v", round, winner, out.Node)
	}
}
