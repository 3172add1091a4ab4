package lab

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the hospital zone below, on hosts without a zone database

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apperr"
)

func TestWorkflowTwoPersonVerification(t *testing.T) {
	f := newWorkflow(t)
	it, _ := f.received(t, f.woman, f.potassium)
	f.clock.advance(50 * time.Minute)
	r := f.enter(t, it, 4.0)
	if r.Status != labresult.StatusENTERED || *r.EnteredByID != f.tech.ID || !r.EnteredAt.Equal(wfStart.Add(50*time.Minute)) ||
		r.VerifiedByID != nil || r.VerifiedAt != nil {
		t.Fatalf("entered: %+v", r)
	}
	f.clock.advance(45 * time.Minute)
	f.unchanged(t, "verify by the technician who entered it", apperr.Forbidden, "", func() error {
		_, err := f.svc.Verify(f.as(f.tech), r.ID)
		return err
	})
	v, err := f.svc.Verify(f.as(f.tech2), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	at := wfStart.Add(95 * time.Minute)
	for _, got := range []*ent.LabResult{v, f.result(r.ID)} {
		if got.Status != labresult.StatusVERIFIED || got.VerifiedByID == nil || *got.VerifiedByID != f.tech2.ID ||
			got.VerifiedAt == nil || !got.VerifiedAt.Equal(at) || *got.EnteredByID != f.tech.ID {
			t.Fatalf("verified: %+v", got)
		}
	}
	item := f.item(it.ID)
	if item.Status != "VERIFIED" || item.VerifiedAt == nil || !item.VerifiedAt.Equal(at) ||
		item.TurnaroundMinutes == nil || *item.TurnaroundMinutes != 95 {
		t.Fatalf("verified item: %+v", item)
	}
	if f.notify.count() != 1 {
		t.Fatalf("%d pokes after one verification, want 1", f.notify.count())
	}
}

// TestWorkflowInterpretation checks that a value is judged, and kept, at
// the test's precision, against the range for the patient's sex and for
// their age when the specimen was taken.
func TestWorkflowInterpretation(t *testing.T) {
	f := newWorkflow(t)
	// The teenager's specimen is taken the day before her 18th birthday and
	// run the day after: the paediatric range applies.
	teen, _ := f.received(t, f.teen, f.potassium)
	f.clock.advance(26 * time.Hour)
	r := f.enter(t, teen, 4.9)
	wfRange(t, "at 17", r, 3.4, 4.7, 2.8, 6.0)
	wfFlag(t, "at 17", r, labresult.FlagHIGH, 4.9)
	// PostgreSQL hands times back in the session's zone; west of Greenwich
	// her birth date reads as the evening before, which must not make her
	// a day older.
	west := time.FixedZone("UTC-5", -5*60*60)
	if got := AgeInDays(f.teen.BirthDate.In(west), wfStart.In(west)); got != wfAdultFromDays-1 {
		t.Fatalf("age read in UTC-5: %d days, want %d", got, wfAdultFromDays-1)
	}
	// Collected now, after the birthday, the same value is normal for her.
	adult, _ := f.received(t, f.teen, f.potassium)
	r = f.enter(t, adult, 4.9)
	wfRange(t, "at 18", r, 3.5, 5.1, 2.5, 6.5)
	wfFlag(t, "at 18", r, labresult.FlagNORMAL, 4.9)

	// A woman and a man are judged by their own ranges, not the wider one
	// for either sex.
	for _, tc := range []struct {
		name                 string
		it                   func() (*ent.LabOrderItem, *ent.LabResult)
		low, high, cLow, cHi float64
		flag                 labresult.Flag
		value                float64
	}{
		{"woman 5.2", func() (*ent.LabOrderItem, *ent.LabResult) { return f.resulted(t, f.woman, 5.2) }, 3.5, 5.1, 2.5, 6.5, labresult.FlagHIGH, 5.2},
		{"man 5.2", func() (*ent.LabOrderItem, *ent.LabResult) { return f.resulted(t, f.man, 5.2) }, 3.6, 5.3, 2.5, 6.5, labresult.FlagNORMAL, 5.2},
		// Rounded to one decimal before judging: 3.449 is reported, and
		// judged, as 3.4; 3.46 as 3.5, which is normal though 3.46 alone
		// would not be.
		{"3.449", func() (*ent.LabOrderItem, *ent.LabResult) { return f.resulted(t, f.woman, 3.449) }, 3.5, 5.1, 2.5, 6.5, labresult.FlagLOW, 3.4},
		{"3.46", func() (*ent.LabOrderItem, *ent.LabResult) { return f.resulted(t, f.woman, 3.46) }, 3.5, 5.1, 2.5, 6.5, labresult.FlagNORMAL, 3.5},
		{"man 6.5", func() (*ent.LabOrderItem, *ent.LabResult) { return f.resulted(t, f.man, 6.5) }, 3.6, 5.3, 2.5, 6.5, labresult.FlagCRITICAL_HIGH, 6.5},
		{"woman 2.54", func() (*ent.LabOrderItem, *ent.LabResult) { return f.resulted(t, f.woman, 2.54) }, 3.5, 5.1, 2.5, 6.5, labresult.FlagCRITICAL_LOW, 2.5},
	} {
		_, r := tc.it()
		wfRange(t, tc.name, r, tc.low, tc.high, tc.cLow, tc.cHi)
		wfFlag(t, tc.name, r, tc.flag, tc.value)
		if again := f.result(r.ID); *again.NumericValue != tc.value || *again.Flag != tc.flag || again.Critical != r.Critical {
			t.Fatalf("%s re-read: %+v", tc.name, again)
		}
	}

	// No range, no flag; the value is kept at the test's precision.
	na, _ := f.received(t, f.woman, f.sodium)
	r = wfMust(f.svc.Enter(f.as(f.tech), na.ID, EnterLabResultInput{NumericValue: new(140.6), Comment: new("  slightly haemolysed ")}))(t, "sodium")
	if r.NumericValue == nil || *r.NumericValue != 141 || r.Flag != nil || r.Critical || r.ReferenceLow != nil || r.ReferenceHigh != nil ||
		r.Unit == nil || *r.Unit != "mmol/L" || r.Comment == nil || *r.Comment != "slightly haemolysed" {
		t.Fatalf("sodium: %+v", r)
	}
	urine, _ := f.received(t, f.woman, f.protein)
	r = wfMust(f.svc.Enter(f.as(f.tech), urine.ID, EnterLabResultInput{CodedValue: new("NEGATIVE")}))(t, "protein")
	if r.Flag == nil || *r.Flag != labresult.FlagNORMAL || r.Critical || r.ReferenceLow != nil {
		t.Fatalf("protein: %+v", r)
	}
}

// TestWorkflowHospitalTimeZone takes a specimen at 22:30 UTC on 11 March
// 2025, which in Nairobi (UTC+3) is 01:30 on the 12th: the 18th birthday
// of a patient born on 12 March 2007. The hospital's calendar day decides
// her age band and the date on the label, so a service in Nairobi judges
// her an adult where one keeping UTC's day would still see a child.
func TestWorkflowHospitalTimeZone(t *testing.T) {
	f := newWorkflow(t)
	nairobi, err := time.LoadLocation("Africa/Nairobi")
	if err != nil {
		t.Fatal(err)
	}
	born := f.client.Patient.Create().SetMrn("200000004").SetGivenName("P").SetFamilyName("Q").
		SetBirthDate(time.Date(2007, 3, 12, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexFEMALE).SaveX(f.sys)
	taken := time.Date(2025, 3, 11, 22, 30, 0, 0, time.UTC)
	f.clock.advance(taken.Sub(wfStart))

	for _, tc := range []struct {
		zone   *time.Location
		prefix string
		// the ranges and flag of 4.9 mmol/L
		low, high, critLow, critHigh float64
		flag                         labresult.Flag
	}{
		{nairobi, "250312", 3.5, 5.1, 2.5, 6.5, labresult.FlagNORMAL},
		{time.UTC, "250311", 3.4, 4.7, 2.8, 6.0, labresult.FlagHIGH},
	} {
		svc := NewService(f.svc.store, tc.zone)
		svc.now = f.clock.now
		what := "in " + tc.zone.String()
		o := wfMust(svc.Order(f.as(f.doctor), OrderLabTestsInput{PatientID: born.ID, TestIDs: []string{f.potassium.ID}}))(t, what+": order")
		it := f.client.LabOrderItem.Query().Where(laborderitem.OrderID(o.ID)).OnlyX(f.sys)
		sp := wfMust(svc.Collect(f.as(f.nurse), CollectLabSpecimenInput{ItemIDs: []string{it.ID}, CollectedAt: &taken}))(t, what+": collect")
		if !strings.HasPrefix(sp.AccessionNumber, tc.prefix) || !sp.CollectedAt.Equal(taken) {
			t.Fatalf("%s: specimen %s collected at %v, want the label to start %s", what, sp.AccessionNumber, sp.CollectedAt, tc.prefix)
		}
		wfMust(svc.Receive(f.as(f.tech), sp.ID))(t, what+": receive")
		r := wfMust(svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(4.9)}))(t, what+": enter")
		wfRange(t, what, r, tc.low, tc.high, tc.critLow, tc.critHigh)
		wfFlag(t, what, r, tc.flag, 4.9)
	}
}

func wfRange(t *testing.T, what string, r *ent.LabResult, low, high, critLow, critHigh float64) {
	t.Helper()
	eq := func(p *float64, v float64) bool { return p != nil && *p == v }
	if !eq(r.ReferenceLow, low) || !eq(r.ReferenceHigh, high) || !eq(r.CriticalLow, critLow) || !eq(r.CriticalHigh, critHigh) {
		t.Fatalf("%s: applied range %v–%v (critical %v/%v), want %v–%v (%v/%v)", what,
			wfF(r.ReferenceLow), wfF(r.ReferenceHigh), wfF(r.CriticalLow), wfF(r.CriticalHigh), low, high, critLow, critHigh)
	}
}

func wfF(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func wfFlag(t *testing.T, what string, r *ent.LabResult, flag labresult.Flag, value float64) {
	t.Helper()
	critical := flag == labresult.FlagCRITICAL_HIGH || flag == labresult.FlagCRITICAL_LOW
	if r.Flag == nil || *r.Flag != flag || r.NumericValue == nil || *r.NumericValue != value || r.Critical != critical ||
		r.Unit == nil || *r.Unit != "mmol/L" {
		t.Fatalf("%s: %v flagged %v (critical %v), want %v flagged %s", what, wfF(r.NumericValue), r.Flag, r.Critical, value, flag)
	}
}

// TestWorkflowAmendmentKeepsHistory follows a result through two
// corrections, each entered by one technician and released by another,
// and checks that the original stays the released result until then.
func TestWorkflowAmendmentKeepsHistory(t *testing.T) {
	f := newWorkflow(t)
	it, r1 := f.resulted(t, f.woman, 4.0)
	f.clock.advance(30 * time.Minute)
	r1 = f.verify(t, r1)
	verifiedAt := f.item(it.ID).VerifiedAt

	f.clock.advance(2 * time.Hour)
	r2, err := f.svc.Amend(f.as(f.tech3), r1.ID, AmendLabResultInput{NumericValue: new(5.46), Reason: "  values of two patients swapped "})
	if err != nil {
		t.Fatal(err)
	}
	enteredAt := wfStart.Add(150 * time.Minute)
	for _, got := range []*ent.LabResult{r2, f.result(r2.ID)} {
		if got.ID == r1.ID || got.Status != labresult.StatusENTERED || got.ReplacesID == nil || *got.ReplacesID != r1.ID ||
			got.AmendReason == nil || *got.AmendReason != "values of two patients swapped" || *got.EnteredByID != f.tech3.ID ||
			!got.EnteredAt.Equal(enteredAt) || got.VerifiedByID != nil || got.VerifiedAt != nil ||
			got.ItemID != it.ID || got.PatientID != f.woman.ID {
			t.Fatalf("amendment: %+v, want it ENTERED, waiting for a second person", got)
		}
	}
	wfFlag(t, "amendment", r2, labresult.FlagHIGH, 5.5)
	wfRange(t, "amendment", r2, 3.5, 5.1, 2.5, 6.5)
	wfReleased(t, f, it.ID, "while the correction waits", r1.ID)
	if got := f.item(it.ID); got.Status != "VERIFIED" || !got.VerifiedAt.Equal(*verifiedAt) {
		t.Fatalf("item while the correction waits: %+v", got)
	}
	if evs := wfEvents(t, f, ResultsTopic); len(evs) != 1 || f.notify.count() != 1 {
		t.Fatalf("entering a correction published %+v (%d pokes)", evs, f.notify.count())
	}

	// One correction waits at a time, and not for the one who made it.
	f.unchanged(t, "the amender verifies their own correction", apperr.Forbidden, "", func() error {
		_, err := f.svc.Verify(f.as(f.tech3), r2.ID)
		return err
	})
	for _, by := range []*ent.Staff{f.tech, f.tech3} {
		f.unchanged(t, "amend again while a correction waits, by "+by.GivenName, apperr.Conflict, "", func() error {
			_, err := f.svc.Amend(f.as(by), r1.ID, AmendLabResultInput{NumericValue: new(4.8), Reason: "another reading"})
			return err
		})
	}
	f.unchanged(t, "amend the waiting correction", apperr.Conflict, "", func() error {
		_, err := f.svc.Amend(f.as(f.tech), r2.ID, AmendLabResultInput{NumericValue: new(4.8), Reason: "another reading"})
		return err
	})

	f.clock.advance(10 * time.Minute)
	v2 := f.verify(t, r2)
	releasedAt := wfStart.Add(160 * time.Minute)
	for _, got := range []*ent.LabResult{v2, f.result(r2.ID)} {
		if got.Status != labresult.StatusVERIFIED || got.VerifiedByID == nil || *got.VerifiedByID != f.tech2.ID ||
			got.VerifiedAt == nil || !got.VerifiedAt.Equal(releasedAt) || !got.EnteredAt.Equal(enteredAt) || *got.EnteredByID != f.tech3.ID {
			t.Fatalf("verified amendment: %+v", got)
		}
	}
	old := f.result(r1.ID)
	if old.Status != labresult.StatusCORRECTED || *old.NumericValue != 4.0 || *old.Flag != labresult.FlagNORMAL ||
		*old.VerifiedByID != f.tech2.ID || old.ReplacesID != nil || old.AmendReason != nil {
		t.Fatalf("original after amendment: %+v", old)
	}
	item := f.item(it.ID)
	if item.Status != "AMENDED" || !item.VerifiedAt.Equal(*verifiedAt) || *item.TurnaroundMinutes != 30 {
		t.Fatalf("amended item: %+v, want the first verification's time kept", item)
	}
	wfReleased(t, f, it.ID, "after the correction", r1.ID, r2.ID)

	f.clock.advance(time.Hour)
	r3 := wfMust(f.svc.Amend(f.as(f.tech), r2.ID, AmendLabResultInput{NumericValue: new(5.0), Reason: "recalibrated analyser"}))(t, "amend again")
	if r3.ReplacesID == nil || *r3.ReplacesID != r2.ID || *r3.AmendReason != "recalibrated analyser" || r3.Status != labresult.StatusENTERED {
		t.Fatalf("second amendment: %+v", r3)
	}
	wfReleased(t, f, it.ID, "while the second correction waits", r1.ID, r2.ID)
	// Whoever entered or verified earlier links of the chain may verify a
	// later one; only its own author may not.
	r3 = wfMust(f.svc.Verify(f.as(f.tech3), r3.ID))(t, "verify the second amendment")
	wfReleased(t, f, it.ID, "after the second correction", r1.ID, r2.ID, r3.ID)
	chain := f.client.LabResult.Query().Where(labresult.ItemID(it.ID)).Order(ent.Asc(labresult.FieldEnteredAt)).AllX(f.sys)
	if len(chain) != 3 || chain[0].ID != r1.ID || chain[1].ID != r2.ID || chain[2].ID != r3.ID ||
		chain[0].Status != labresult.StatusCORRECTED || chain[1].Status != labresult.StatusCORRECTED || chain[2].Status != labresult.StatusVERIFIED ||
		*chain[0].NumericValue != 4.0 || *chain[1].NumericValue != 5.5 || *chain[1].AmendReason != "values of two patients swapped" {
		t.Fatalf("history: %+v", chain)
	}
	// The replaced_by edge reads the chain forwards.
	if next := f.client.LabResult.Query().Where(labresult.ID(r1.ID)).QueryReplacedBy().OnlyX(f.sys); next.ID != r2.ID {
		t.Fatalf("r1 replaced by %s, want %s", next.ID, r2.ID)
	}
	for _, id := range []string{r1.ID, r2.ID} {
		f.unchanged(t, "amend a corrected result", apperr.Conflict, "", func() error {
			_, err := f.svc.Amend(f.as(f.tech), id, AmendLabResultInput{NumericValue: new(4.4), Reason: "again"})
			return err
		})
	}
	evs := wfEvents(t, f, ResultsTopic)
	if len(evs) != 3 || evs[0].typ != string(ResultVerified) || evs[0].ResultID != r1.ID ||
		evs[1].typ != string(ResultAmended) || evs[1].ResultID != r2.ID || evs[2].typ != string(ResultAmended) || evs[2].ResultID != r3.ID {
		t.Fatalf("events: %+v", evs)
	}
	if f.notify.count() != 3 {
		t.Fatalf("%d pokes, want one per release", f.notify.count())
	}
}

// wfReleased fails unless the item's released results — those a reader
// without access to drafts is given: VERIFIED and CORRECTED — are want,
// oldest first, and the last of them is the one VERIFIED, current, result.
func wfReleased(t *testing.T, f *wfFixture, itemID, what string, want ...string) {
	t.Helper()
	rs := f.client.LabResult.Query().
		Where(labresult.ItemID(itemID), labresult.StatusIn(labresult.StatusVERIFIED, labresult.StatusCORRECTED)).
		Order(ent.Asc(labresult.FieldEnteredAt), ent.Asc(labresult.FieldID)).AllX(f.sys)
	got := make([]string, len(rs))
	for i, r := range rs {
		got[i] = r.ID
		if current := i == len(rs)-1; current != (r.Status == labresult.StatusVERIFIED) {
			t.Fatalf("%s: released result %d of %d is %s", what, i+1, len(rs), r.Status)
		}
	}
	wfSame(t, what+": released results", got, want...)
}

type wfEvent struct {
	ResultPayload
	typ string
}

// wfEvents reads the outbox rows of topic, oldest first.
func wfEvents(t *testing.T, f *wfFixture, topic string) []wfEvent {
	t.Helper()
	rows := f.client.OutboxEvent.Query().Where(outboxevent.Topic(topic)).
		Order(ent.Asc(outboxevent.FieldCreatedAt), ent.Asc(outboxevent.FieldID)).AllX(f.sys)
	out := make([]wfEvent, len(rows))
	for i, r := range rows {
		if err := json.Unmarshal(r.Payload, &out[i].ResultPayload); err != nil {
			t.Fatal(err)
		}
		out[i].typ = r.Type
		if r.PublishedAt != nil {
			t.Fatalf("event %s published with no relay running", r.ID)
		}
	}
	return out
}

func TestWorkflowEventsAndCriticalValues(t *testing.T) {
	f := newWorkflow(t)
	ward := f.admit(f.man, "MED", f.attending)
	other := f.client.Ward.Create().SetCode("SUR").SetName("Surgery").SetDepartment(f.dep).SaveX(f.sys)

	// A normal result of an inpatient: one event, naming the ward.
	it, r := f.resulted(t, f.man, 4.0)
	if n := f.client.OutboxEvent.Query().CountX(f.sys); n != 0 || f.notify.count() != 0 {
		t.Fatalf("%d events and %d pokes before verification, want none", n, f.notify.count())
	}
	r = f.verify(t, r)
	evs := wfEvents(t, f, ResultsTopic)
	want := ResultPayload{PatientID: f.man.ID, ResultID: r.ID, ItemID: it.ID, TestID: f.potassium.ID, WardID: ward.ID}
	if len(evs) != 1 || evs[0].typ != "VERIFIED" || !wfSamePayload(evs[0].ResultPayload, want) {
		t.Fatalf("results events %+v, want %+v", evs, want)
	}
	if crit := wfEvents(t, f, CriticalTopic); len(crit) != 0 || f.notify.count() != 1 {
		t.Fatalf("a normal result raised %+v (%d pokes)", crit, f.notify.count())
	}
	if tell := wfMust(f.client.LabResult.QueryNotify(r).All(f.sys))(t, "must tell"); len(tell) != 0 {
		t.Fatalf("a normal result must be told to %v", tell)
	}

	// A critical one: a second event tells the orderer and the attending.
	f.clock.advance(time.Hour)
	it, crit := f.resulted(t, f.man, 7.04)
	_, err := f.svc.Acknowledge(f.as(f.attending), crit.ID)
	wfWant(t, "acknowledge before verification", err, apperr.Conflict, "")
	crit = f.verify(t, crit)
	if !crit.Critical || *crit.Flag != labresult.FlagCRITICAL_HIGH {
		t.Fatalf("7.0 in a man: %+v", crit)
	}
	want = ResultPayload{PatientID: f.man.ID, ResultID: crit.ID, ItemID: it.ID, TestID: f.potassium.ID, WardID: ward.ID}
	evs = wfEvents(t, f, ResultsTopic)
	if len(evs) != 2 || evs[1].typ != "VERIFIED" || !wfSamePayload(evs[1].ResultPayload, want) {
		t.Fatalf("results events %+v", evs)
	}
	want.Notify = []string{f.doctor.ID, f.attending.ID}
	ce := wfEvents(t, f, CriticalTopic)
	if len(ce) != 1 || ce[0].typ != string(CriticalEventType) || !wfSamePayload(ce[0].ResultPayload, want) {
		t.Fatalf("critical events %+v, want %+v", ce, want)
	}
	if f.notify.count() != 2 {
		t.Fatalf("%d pokes, want 2", f.notify.count())
	}
	tell := wfMust(f.client.LabResult.QueryNotify(crit).All(f.sys))(t, "must tell")
	// The kept list is a set: who, not in which order.
	if len(tell) != 2 || tell[0].ID == tell[1].ID || (tell[0].ID != f.doctor.ID && tell[0].ID != f.attending.ID) ||
		(tell[1].ID != f.doctor.ID && tell[1].ID != f.attending.ID) {
		t.Fatalf("must tell %v", tell)
	}

	// An outpatient's critical value: no ward, and only the orderer to tell.
	f.clock.advance(time.Hour)
	outIt, outCrit := f.resulted(t, f.woman, 1.9)
	outCrit = f.verify(t, outCrit)
	ce = wfEvents(t, f, CriticalTopic)
	want = ResultPayload{PatientID: f.woman.ID, ResultID: outCrit.ID, ItemID: outIt.ID, TestID: f.potassium.ID, Notify: []string{f.doctor.ID}}
	if len(ce) != 2 || !wfSamePayload(ce[1].ResultPayload, want) {
		t.Fatalf("outpatient critical events %+v, want %+v", ce, want)
	}
	// When the orderer is the attending, they are told once.
	f.admit(f.teen, "PAE", f.doctor)
	f.clock.advance(time.Minute)
	_, own := f.resulted(t, f.teen, 8.0)
	own = f.verify(t, own)
	ce = wfEvents(t, f, CriticalTopic)
	if len(ce) != 3 || len(ce[2].Notify) != 1 || ce[2].Notify[0] != f.doctor.ID {
		t.Fatalf("orderer attending: %+v", ce)
	}
	if tell := wfMust(f.client.LabResult.QueryNotify(own).All(f.sys))(t, "must tell"); len(tell) != 1 || tell[0].ID != f.doctor.ID {
		t.Fatalf("must tell %v", tell)
	}

	// Unacknowledged, oldest first, and by ward, paged as the resolver
	// pages it.
	ids := func(q *ent.LabResultQuery, err error) []string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		conn, err := q.Paginate(f.sys, nil, nil, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(conn.Edges))
		for i, e := range conn.Edges {
			out[i] = e.Node.ID
		}
		if conn.TotalCount != len(out) {
			t.Fatalf("unacknowledged: %d in total, %d listed", conn.TotalCount, len(out))
		}
		return out
	}
	wfSame(t, "all unacknowledged", ids(f.svc.Unacknowledged(f.client, nil)), crit.ID, outCrit.ID, own.ID)
	wfSame(t, "on the ward", ids(f.svc.Unacknowledged(f.client, &ward.ID)), crit.ID)
	wfSame(t, "on another ward", ids(f.svc.Unacknowledged(f.client, &other.ID)))

	f.unchanged(t, "a lab technician acknowledges", apperr.Forbidden, "", func() error {
		_, err := f.svc.Acknowledge(f.as(f.tech3), crit.ID)
		return err
	})
	f.unchanged(t, "acknowledge a normal result", apperr.Conflict, "", func() error {
		_, err := f.svc.Acknowledge(f.as(f.attending), r.ID)
		return err
	})
	f.clock.advance(12 * time.Minute)
	ack, err := f.svc.Acknowledge(f.as(f.attending), crit.ID)
	if err != nil {
		t.Fatal(err)
	}
	// Verified at 9:00, acknowledged at 10:13.
	for _, got := range []*ent.LabResult{ack, f.result(crit.ID)} {
		if got.AcknowledgedByID == nil || *got.AcknowledgedByID != f.attending.ID || got.AcknowledgedAt == nil ||
			!got.AcknowledgedAt.Equal(f.clock.now()) || got.AcknowledgeMinutes == nil || *got.AcknowledgeMinutes != 73 ||
			got.Status != labresult.StatusVERIFIED {
			t.Fatalf("acknowledged: %+v", got)
		}
	}
	f.unchanged(t, "acknowledge twice", apperr.Conflict, "", func() error {
		_, err := f.svc.Acknowledge(f.as(f.doctor), crit.ID)
		return err
	})
	wfSame(t, "after acknowledgement", ids(f.svc.Unacknowledged(f.client, nil)), outCrit.ID, own.ID)
	wfSame(t, "the ward after acknowledgement", ids(f.svc.Unacknowledged(f.client, &ward.ID)))
	// The acknowledgement goes out on the critical feed, for the ward the
	// patient is in, so dashboards showing the alert clear it.
	if n := f.client.OutboxEvent.Query().CountX(f.sys); n != 8 {
		t.Fatalf("%d events, want 8: the acknowledgement is published", n)
	}
	if ce := wfEvents(t, f, CriticalTopic); ce[len(ce)-1].typ != string(CriticalAcknowledged) ||
		ce[len(ce)-1].ResultID != crit.ID || ce[len(ce)-1].WardID != ward.ID || len(ce[len(ce)-1].Notify) != 2 {
		t.Fatalf("acknowledgement event: %+v", ce[len(ce)-1])
	}

	// Amending an unacknowledged critical result into another critical one
	// releases nothing until a second person verifies the correction: the
	// original is still the one to acknowledge.
	amended := wfMust(f.svc.Amend(f.as(f.tech3), outCrit.ID, AmendLabResultInput{NumericValue: new(2.1), Reason: "diluted sample rerun"}))(t, "amend")
	if !amended.Critical || amended.Status != labresult.StatusENTERED {
		t.Fatalf("critical correction: %+v", amended)
	}
	if n := f.client.OutboxEvent.Query().CountX(f.sys); n != 8 || f.notify.count() != 5 {
		t.Fatalf("%d events and %d pokes after entering a correction, want 8 and 5: nothing is released yet", n, f.notify.count())
	}
	wfSame(t, "while the correction waits", ids(f.svc.Unacknowledged(f.client, nil)), outCrit.ID, own.ID)
	f.unchanged(t, "acknowledge the waiting correction", apperr.Conflict, "", func() error {
		_, err := f.svc.Acknowledge(f.as(f.doctor), amended.ID)
		return err
	})
	f.unchanged(t, "the amender verifies the correction", apperr.Forbidden, "", func() error {
		_, err := f.svc.Verify(f.as(f.tech3), amended.ID)
		return err
	})
	// Its release publishes AMENDED and CRITICAL, and the list follows it.
	amended = f.verify(t, amended)
	evs = wfEvents(t, f, ResultsTopic)
	ce = wfEvents(t, f, CriticalTopic)
	want = ResultPayload{PatientID: f.woman.ID, ResultID: amended.ID, ItemID: outIt.ID, TestID: f.potassium.ID}
	if last := evs[len(evs)-1]; len(evs) != 5 || last.typ != "AMENDED" || !wfSamePayload(last.ResultPayload, want) {
		t.Fatalf("results events after amendment %+v", evs)
	}
	want.Notify = []string{f.doctor.ID}
	if last := ce[len(ce)-1]; len(ce) != 5 || last.typ != string(CriticalEventType) || !wfSamePayload(last.ResultPayload, want) {
		t.Fatalf("critical events after amendment %+v", ce)
	}
	if f.notify.count() != 6 {
		t.Fatalf("%d pokes, want 6: four verifications, the acknowledgement and the amendment", f.notify.count())
	}
	if tell := wfMust(f.client.LabResult.QueryNotify(amended).All(f.sys))(t, "must tell"); len(tell) != 1 || tell[0].ID != f.doctor.ID {
		t.Fatalf("the released correction must be told to %v", tell)
	}
	wfSame(t, "after amendment", ids(f.svc.Unacknowledged(f.client, nil)), own.ID, amended.ID)
	// The corrected original is history: no one is asked to act on it.
	if got := f.result(outCrit.ID); got.Status != labresult.StatusCORRECTED || !got.Critical || got.AcknowledgedAt != nil {
		t.Fatalf("corrected original: %+v", got)
	}
	f.unchanged(t, "acknowledge a corrected critical result", apperr.Conflict, "", func() error {
		_, err := f.svc.Acknowledge(f.as(f.doctor), outCrit.ID)
		return err
	})

	// Amended to a normal value, nothing critical is published.
	fixed := wfMust(f.svc.Amend(f.as(f.tech3), amended.ID, AmendLabResultInput{NumericValue: new(4.1), Reason: "wrong tube"}))(t, "amend to normal")
	fixed = f.verify(t, fixed)
	if fixed.Critical || fixed.Status != labresult.StatusVERIFIED || len(wfEvents(t, f, CriticalTopic)) != 5 ||
		len(wfEvents(t, f, ResultsTopic)) != 6 || f.notify.count() != 7 {
		t.Fatalf("amended to normal: %+v", fixed)
	}
	wfSame(t, "after amendment to normal", ids(f.svc.Unacknowledged(f.client, nil)), own.ID)
}

func wfSamePayload(a, b ResultPayload) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func wfSame(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}
