package lab

import (
	"context"
	"encoding/json"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/laborder"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labreferencerange"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// The helpers of these files carry a wf prefix: other test files of the
// package are written independently, and must not clash with them.

type wfPokes struct {
	mu sync.Mutex
	n  int
}

func (p *wfPokes) Poke() { p.mu.Lock(); p.n++; p.mu.Unlock() }

func (p *wfPokes) count() int { p.mu.Lock(); defer p.mu.Unlock(); return p.n }

// wfClock stands in for the service's clock, so that turnaround and
// acknowledgement times, and ages at collection, come out exact.
type wfClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *wfClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *wfClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// wfStart is when every test's clock starts: 10 March 2025, the day before
// the teenager of the fixture turns 18.
var wfStart = time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)

// wfAdultFromDays is 18 years in days for someone born on 11 March 2007
// (five 29 Februaries in between), where the catalog's adult ranges start.
const wfAdultFromDays = 18*365 + 5

type wfFixture struct {
	svc    *Service
	client *ent.Client
	notify *wfPokes
	clock  *wfClock
	sys    context.Context
	dep    *ent.Department

	doctor, attending, nurse, tech, tech2, tech3, idleTech, administrator *ent.Staff

	woman, man, teen *ent.Patient

	// potassium is NUMERIC on serum with paediatric, adult either-sex and
	// adult sex-specific ranges; sodium NUMERIC with no decimals and no
	// range; protein CODED on urine; culture TEXT on a swab.
	potassium, sodium, protein, culture, retired *ent.LabTest
	lytes, oldPanel, stalePanel                  *ent.LabPanel
}

// newWorkflow gives a fresh database with a small lab catalog, staff of
// each kind the lab deals with, and three patients.
func newWorkflow(t *testing.T) *wfFixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	f := &wfFixture{client: c, notify: &wfPokes{}, clock: &wfClock{t: wfStart}, sys: sys}
	st.OnEventsCommitted(f.notify.Poke)
	f.svc = NewService(st, time.UTC)
	f.svc.now = f.clock.now
	f.dep = c.Department.Create().SetCode("LAB").SetName("Laboratory").SaveX(sys)
	person := func(given string, kind staff.Kind) *ent.Staff {
		return c.Staff.Create().SetGivenName(given).SetFamilyName("Staff").SetKind(kind).SetDepartment(f.dep).SaveX(sys)
	}
	f.doctor = person("Orderer", staff.KindDOCTOR)
	f.attending = person("Attending", staff.KindDOCTOR)
	f.nurse = person("Nurse", staff.KindNURSE)
	f.tech = person("Tech", staff.KindLAB_TECHNICIAN)
	f.tech2 = person("Tech2", staff.KindLAB_TECHNICIAN)
	f.tech3 = person("Tech3", staff.KindLAB_TECHNICIAN)
	f.idleTech = c.Staff.Create().SetGivenName("Idle").SetFamilyName("Staff").SetKind(staff.KindLAB_TECHNICIAN).
		SetDepartment(f.dep).SetActive(false).SaveX(sys)
	f.administrator = person("Admin", staff.KindADMINISTRATOR)

	pat := func(mrn string, born time.Time, sex patient.Sex) *ent.Patient {
		return c.Patient.Create().SetMrn(mrn).SetGivenName("P").SetFamilyName("Q").SetBirthDate(born).SetSex(sex).SaveX(sys)
	}
	f.woman = pat("200000001", time.Date(1980, 5, 17, 0, 0, 0, 0, time.UTC), patient.SexFEMALE)
	f.man = pat("200000002", time.Date(1975, 1, 2, 0, 0, 0, 0, time.UTC), patient.SexMALE)
	f.teen = pat("200000003", time.Date(2007, 3, 11, 0, 0, 0, 0, time.UTC), patient.SexFEMALE)

	test := func(code, name string, sp labtest.SpecimenType, kind labtest.ResultKind) *ent.LabTestCreate {
		return c.LabTest.Create().SetCode(code).SetName(name).SetSpecimenType(sp).SetResultKind(kind).
			SetPrice(1500).SetTurnaroundMinutes(60)
	}
	f.potassium = test("2823-3", "Potassium", labtest.SpecimenTypeSERUM, labtest.ResultKindNUMERIC).
		SetUnit("mmol/L").SetDecimals(1).SaveX(sys)
	f.sodium = test("2951-2", "Sodium", labtest.SpecimenTypeSERUM, labtest.ResultKindNUMERIC).
		SetUnit("mmol/L").SetDecimals(0).SaveX(sys)
	f.protein = test("2888-6", "Urine protein", labtest.SpecimenTypeURINE, labtest.ResultKindCODED).
		SetResultCodes([]string{"NEGATIVE", "TRACE", "1+", "2+"}).SetNormalCodes([]string{"NEGATIVE"}).SaveX(sys)
	f.culture = test("626-2", "Throat culture", labtest.SpecimenTypeSWAB, labtest.ResultKindTEXT).SaveX(sys)
	f.retired = test("1234-5", "Bleeding time", labtest.SpecimenTypeWHOLE_BLOOD, labtest.ResultKindNUMERIC).
		SetActive(false).SaveX(sys)

	rng := func(sex *labreferencerange.Sex, from int, to *int, low, high, critLow, critHigh float64) {
		cr := c.LabReferenceRange.Create().SetTest(f.potassium).SetAgeFromDays(from).SetNillableAgeToDays(to).
			SetLow(low).SetHigh(high).SetCriticalLow(critLow).SetCriticalHigh(critHigh)
		if sex != nil {
			cr.SetSex(*sex)
		}
		cr.SaveX(sys)
	}
	female, male := labreferencerange.SexFEMALE, labreferencerange.SexMALE
	rng(nil, 0, new(wfAdultFromDays), 3.4, 4.7, 2.8, 6.0)
	// The either-sex adult range is wider than both sex-specific ones, so
	// picking it instead would flag differently.
	rng(nil, wfAdultFromDays, nil, 3.0, 6.0, 2.0, 7.5)
	rng(&female, wfAdultFromDays, nil, 3.5, 5.1, 2.5, 6.5)
	rng(&male, wfAdultFromDays, nil, 3.6, 5.3, 2.5, 6.5)

	f.lytes = c.LabPanel.Create().SetCode("24326-1").SetName("Electrolytes").SetPrice(2500).
		AddTests(f.potassium, f.sodium).SaveX(sys)
	f.oldPanel = c.LabPanel.Create().SetCode("11111-1").SetName("Old panel").SetPrice(100).
		AddTests(f.sodium).SetActive(false).SaveX(sys)
	f.stalePanel = c.LabPanel.Create().SetCode("22222-2").SetName("Stale panel").SetPrice(100).
		AddTests(f.sodium, f.retired).SaveX(sys)
	return f
}

// as returns a context acting as member of staff m.
func (f *wfFixture) as(m *ent.Staff) context.Context {
	return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + m.GivenName, Roles: []string{"staff"}, StaffID: m.ID})
}

// wfMust takes a call's results and returns them to a check that fails t
// on the error: wfMust(call())(t, "what").
func wfMust[T any](v T, err error) func(t *testing.T, what string) T {
	return func(t *testing.T, what string) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

// wfWant fails unless err carries code (and, when field is given, names it).
func wfWant(t *testing.T, what string, err error, code apperr.Code, field string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != code || (field != "" && e.Field != field) {
		t.Fatalf("%s: want %s on %q, got %v (%#v)", what, code, field, err, e)
	}
}

// snapshot is every lab row and outbox event, so that a refused change
// can be shown to have changed nothing.
func (f *wfFixture) snapshot(t *testing.T) string {
	t.Helper()
	ctx := f.sys
	b, err := json.Marshal([]any{
		f.client.LabOrder.Query().Order(ent.Asc(laborder.FieldID)).AllX(ctx),
		f.client.LabOrderItem.Query().Order(ent.Asc(laborderitem.FieldID)).AllX(ctx),
		f.client.LabSpecimen.Query().Order(ent.Asc(labspecimen.FieldID)).AllX(ctx),
		f.client.LabResult.Query().Order(ent.Asc(labresult.FieldID)).AllX(ctx),
		f.client.OutboxEvent.Query().Order(ent.Asc(outboxevent.FieldID)).AllX(ctx),
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// unchanged runs a refused call and fails if it wrote anything.
func (f *wfFixture) unchanged(t *testing.T, what string, code apperr.Code, field string, call func() error) {
	t.Helper()
	before, pokes := f.snapshot(t), f.notify.count()
	wfWant(t, what, call(), code, field)
	if after := f.snapshot(t); after != before {
		t.Fatalf("%s was refused but changed the data:\nbefore %s\nafter  %s", what, before, after)
	}
	if f.notify.count() != pokes {
		t.Fatalf("%s was refused but poked the relay", what)
	}
}

// order orders tests for p as the doctor and returns the items, one per
// test in the order given.
func (f *wfFixture) order(t *testing.T, p *ent.Patient, tests ...*ent.LabTest) []*ent.LabOrderItem {
	t.Helper()
	ids := make([]string, len(tests))
	for i, lt := range tests {
		ids[i] = lt.ID
	}
	o := wfMust(f.svc.Order(f.as(f.doctor), OrderLabTestsInput{PatientID: p.ID, TestIDs: ids}))(t, "order")
	items := f.client.LabOrderItem.Query().Where(laborderitem.OrderID(o.ID)).AllX(f.sys)
	byTest := map[string]*ent.LabOrderItem{}
	for _, it := range items {
		byTest[it.TestID] = it
	}
	out := make([]*ent.LabOrderItem, len(tests))
	for i, lt := range tests {
		if out[i] = byTest[lt.ID]; out[i] == nil {
			t.Fatalf("order has no item for %s", lt.Name)
		}
	}
	return out
}

func (f *wfFixture) collect(t *testing.T, items ...*ent.LabOrderItem) *ent.LabSpecimen {
	t.Helper()
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.ID
	}
	return wfMust(f.svc.Collect(f.as(f.nurse), CollectLabSpecimenInput{ItemIDs: ids}))(t, "collect")
}

func (f *wfFixture) receive(t *testing.T, sp *ent.LabSpecimen) *ent.LabSpecimen {
	t.Helper()
	return wfMust(f.svc.Receive(f.as(f.tech), sp.ID))(t, "receive")
}

// received takes one test for p to RECEIVED.
func (f *wfFixture) received(t *testing.T, p *ent.Patient, lt *ent.LabTest) (*ent.LabOrderItem, *ent.LabSpecimen) {
	t.Helper()
	it := f.order(t, p, lt)[0]
	sp := f.receive(t, f.collect(t, it))
	return it, sp
}

// resulted takes one potassium test for p to RESULTED with value v,
// entered by the technician.
func (f *wfFixture) resulted(t *testing.T, p *ent.Patient, v float64) (*ent.LabOrderItem, *ent.LabResult) {
	t.Helper()
	it, _ := f.received(t, p, f.potassium)
	return it, f.enter(t, it, v)
}

func (f *wfFixture) enter(t *testing.T, it *ent.LabOrderItem, v float64) *ent.LabResult {
	t.Helper()
	return wfMust(f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(v)}))(t, "enter")
}

func (f *wfFixture) verify(t *testing.T, r *ent.LabResult) *ent.LabResult {
	t.Helper()
	return wfMust(f.svc.Verify(f.as(f.tech2), r.ID))(t, "verify")
}

func (f *wfFixture) item(id string) *ent.LabOrderItem { return f.client.LabOrderItem.GetX(f.sys, id) }

func (f *wfFixture) specimen(id string) *ent.LabSpecimen { return f.client.LabSpecimen.GetX(f.sys, id) }

func (f *wfFixture) result(id string) *ent.LabResult { return f.client.LabResult.GetX(f.sys, id) }

// admit puts p in a bed of a new ward under attending.
func (f *wfFixture) admit(p *ent.Patient, code string, attending *ent.Staff) *ent.Ward {
	w := f.client.Ward.Create().SetCode(code).SetName("Ward " + code).SetDepartment(f.dep).SaveX(f.sys)
	b := f.client.Bed.Create().SetWard(w).SetCode(code + "-01").SaveX(f.sys)
	f.client.Admission.Create().SetPatient(p).SetBed(b).SetAttending(attending).SetAdmittedAt(wfStart.Add(-24 * time.Hour)).
		SetReason("Observation").SetAdmissionType(admission.AdmissionTypeEMERGENCY).ExecX(f.sys)
	return w
}

// wfSubject is one item taken to some state, with its current specimen
// and latest result when it has them.
type wfSubject struct {
	item, specimen, result string
	// Of an item with a correction (waiting or verified): the result the
	// correction replaces.
	original string
}

// bring takes a new potassium item of the woman to state.
func (f *wfFixture) bring(t *testing.T, state string) wfSubject {
	t.Helper()
	it := f.order(t, f.woman, f.potassium)[0]
	s := wfSubject{item: it.ID}
	if state == "ORDERED" {
		return s
	}
	if state == "CANCELLED" {
		wfMust(f.svc.CancelItem(f.as(f.doctor), it.ID, "ordered twice"))(t, "cancel")
		return s
	}
	sp := f.collect(t, it)
	s.specimen = sp.ID
	switch state {
	case "COLLECTED":
		return s
	case "CANCELLED after collection":
		wfMust(f.svc.CancelItem(f.as(f.doctor), it.ID, "ordered twice"))(t, "cancel")
		return s
	case "REJECTED after collection":
		wfMust(f.svc.Reject(f.as(f.tech), sp.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonCLOTTED}))(t, "reject")
		return s
	}
	f.receive(t, sp)
	switch state {
	case "RECEIVED":
		return s
	case "REJECTED after receipt":
		wfMust(f.svc.Reject(f.as(f.tech), sp.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonHAEMOLYSED}))(t, "reject")
		return s
	}
	r := f.enter(t, it, 4.2)
	s.result = r.ID
	switch state {
	case "RESULTED":
		return s
	case "REJECTED after entry":
		wfMust(f.svc.Reject(f.as(f.tech), sp.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonMISLABELED}))(t, "reject")
		return s
	}
	f.verify(t, r)
	if state == "VERIFIED" {
		return s
	}
	// The correction is entered by the technician who entered the
	// original, so that the verify step (by tech2) is a second person.
	a := wfMust(f.svc.Amend(f.as(f.tech), r.ID, AmendLabResultInput{NumericValue: new(4.3), Reason: "misread"}))(t, "amend")
	s.original, s.result = r.ID, a.ID
	if state == "CORRECTION WAITING" {
		return s
	}
	if state != "AMENDED" {
		t.Fatalf("no such state %q", state)
	}
	f.verify(t, a)
	return s
}

// TestWorkflowStateMachine tries each step on an item in each state: the
// allowed ones reach the next state, the others are refused with CONFLICT
// and change nothing. Where the step decides a result's fate too, the
// result (and the one a correction replaces) is checked as well.
func TestWorkflowStateMachine(t *testing.T) {
	f := newWorkflow(t)
	steps := map[string]func(s wfSubject) error{
		"collect": func(s wfSubject) error {
			_, err := f.svc.Collect(f.as(f.nurse), CollectLabSpecimenInput{ItemIDs: []string{s.item}})
			return err
		},
		"receive": func(s wfSubject) error { _, err := f.svc.Receive(f.as(f.tech), s.specimen); return err },
		"reject": func(s wfSubject) error {
			_, err := f.svc.Reject(f.as(f.tech), s.specimen, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonINSUFFICIENT})
			return err
		},
		"enter": func(s wfSubject) error {
			_, err := f.svc.Enter(f.as(f.tech), s.item, EnterLabResultInput{NumericValue: new(4.0)})
			return err
		},
		"verify": func(s wfSubject) error { _, err := f.svc.Verify(f.as(f.tech2), s.result); return err },
		"amend": func(s wfSubject) error {
			_, err := f.svc.Amend(f.as(f.tech3), s.result, AmendLabResultInput{NumericValue: new(4.4), Reason: "transcription error"})
			return err
		},
		"amend the original": func(s wfSubject) error {
			_, err := f.svc.Amend(f.as(f.tech3), s.original, AmendLabResultInput{NumericValue: new(4.4), Reason: "transcription error"})
			return err
		},
		"cancel":      func(s wfSubject) error { _, err := f.svc.CancelItem(f.as(f.doctor), s.item, "not needed"); return err },
		"acknowledge": func(s wfSubject) error { _, err := f.svc.Acknowledge(f.as(f.doctor), s.result); return err },
	}
	const refused = laborderitem.Status("")
	// fates is, for a step that decides the fate of results too, what the
	// subject's result and the one its correction replaces (if any) are
	// after it.
	fates := map[string][2]labresult.Status{
		// The value may be another patient's (a mislabeled tube): it is
		// discarded with the specimen, never to be verified.
		"reject on RESULTED":              {labresult.StatusDISCARDED},
		"verify on RESULTED":              {labresult.StatusVERIFIED},
		"collect on REJECTED after entry": {labresult.StatusDISCARDED},
		"cancel on REJECTED after entry":  {labresult.StatusDISCARDED},
		// A correction waits for a second person: until then the item and
		// the original are as they were.
		"amend on VERIFIED":            {labresult.StatusVERIFIED},
		"verify on CORRECTION WAITING": {labresult.StatusVERIFIED, labresult.StatusCORRECTED},
		"amend on AMENDED":             {labresult.StatusVERIFIED, labresult.StatusCORRECTED},
	}
	for _, tc := range []struct {
		from, step string
		to         laborderitem.Status
	}{
		{"ORDERED", "collect", laborderitem.StatusCOLLECTED},
		{"ORDERED", "enter", refused},
		{"ORDERED", "cancel", laborderitem.StatusCANCELLED},

		{"COLLECTED", "receive", laborderitem.StatusRECEIVED},
		{"COLLECTED", "reject", laborderitem.StatusREJECTED},
		{"COLLECTED", "cancel", laborderitem.StatusCANCELLED},
		{"COLLECTED", "collect", refused},
		{"COLLECTED", "enter", refused},

		{"RECEIVED", "enter", laborderitem.StatusRESULTED},
		{"RECEIVED", "reject", laborderitem.StatusREJECTED},
		{"RECEIVED", "cancel", laborderitem.StatusCANCELLED},
		{"RECEIVED", "collect", refused},
		{"RECEIVED", "receive", refused},

		{"RESULTED", "verify", laborderitem.StatusVERIFIED},
		{"RESULTED", "reject", laborderitem.StatusREJECTED},
		{"RESULTED", "enter", refused},
		{"RESULTED", "collect", refused},
		{"RESULTED", "receive", refused},
		{"RESULTED", "cancel", refused},
		{"RESULTED", "amend", refused},
		{"RESULTED", "acknowledge", refused},

		{"REJECTED after entry", "collect", laborderitem.StatusCOLLECTED},
		{"REJECTED after entry", "cancel", laborderitem.StatusCANCELLED},
		{"REJECTED after entry", "verify", refused},
		{"REJECTED after entry", "amend", refused},
		{"REJECTED after entry", "enter", refused},
		{"REJECTED after entry", "receive", refused},
		{"REJECTED after entry", "reject", refused},

		{"VERIFIED", "amend", laborderitem.StatusVERIFIED},
		{"VERIFIED", "verify", refused},
		{"VERIFIED", "enter", refused},
		{"VERIFIED", "collect", refused},
		{"VERIFIED", "receive", refused},
		{"VERIFIED", "reject", refused},
		{"VERIFIED", "cancel", refused},
		{"VERIFIED", "acknowledge", refused},

		{"CORRECTION WAITING", "verify", laborderitem.StatusAMENDED},
		{"CORRECTION WAITING", "amend the original", refused},
		{"CORRECTION WAITING", "amend", refused},
		{"CORRECTION WAITING", "enter", refused},
		{"CORRECTION WAITING", "collect", refused},
		{"CORRECTION WAITING", "receive", refused},
		{"CORRECTION WAITING", "reject", refused},
		{"CORRECTION WAITING", "cancel", refused},

		{"AMENDED", "amend", laborderitem.StatusAMENDED},
		{"AMENDED", "amend the original", refused},
		{"AMENDED", "verify", refused},
		{"AMENDED", "enter", refused},
		{"AMENDED", "collect", refused},
		{"AMENDED", "reject", refused},
		{"AMENDED", "cancel", refused},

		{"REJECTED after collection", "collect", laborderitem.StatusCOLLECTED},
		{"REJECTED after collection", "cancel", laborderitem.StatusCANCELLED},
		{"REJECTED after collection", "receive", refused},
		{"REJECTED after collection", "reject", refused},
		{"REJECTED after collection", "enter", refused},
		{"REJECTED after receipt", "collect", laborderitem.StatusCOLLECTED},
		{"REJECTED after receipt", "cancel", laborderitem.StatusCANCELLED},
		{"REJECTED after receipt", "enter", refused},

		{"CANCELLED", "cancel", refused},
		{"CANCELLED", "collect", refused},
		{"CANCELLED", "enter", refused},
		{"CANCELLED after collection", "receive", refused},
		{"CANCELLED after collection", "reject", refused},
		{"CANCELLED after collection", "enter", refused},
		{"CANCELLED after collection", "cancel", refused},
	} {
		what := tc.step + " on " + tc.from
		s := f.bring(t, tc.from)
		if tc.to == refused {
			f.unchanged(t, what, apperr.Conflict, "", func() error { return steps[tc.step](s) })
			continue
		}
		if err := steps[tc.step](s); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := f.item(s.item).Status; got != tc.to {
			t.Fatalf("%s: the item is %s, want %s", what, got, tc.to)
		}
		fate := fates[what]
		delete(fates, what)
		for i, id := range []string{s.result, s.original} {
			if fate[i] == "" {
				continue
			}
			if got := f.result(id).Status; got != fate[i] {
				t.Fatalf("%s: result %d of the subject is %s, want %s", what, i, got, fate[i])
			}
		}
	}
	if len(fates) != 0 {
		t.Fatalf("fates of steps the table does not take: %v", fates)
	}
}

var wfAccession = regexp.MustCompile(`^250310[0-9A-HJKMNP-TV-Z]{6}$`)

// TestWorkflowRejectAndRecollect follows a specimen rejected after receipt
// back through a fresh collection to a verified result, and checks that a
// rejection takes with it a result entered but not verified on the same
// specimen.
func TestWorkflowRejectAndRecollect(t *testing.T) {
	f := newWorkflow(t)
	items := f.order(t, f.woman, f.potassium, f.sodium)
	k, na := items[0], items[1]
	first := f.collect(t, k, na)
	if first.Status != labspecimen.StatusCOLLECTED || first.CollectedByID != f.nurse.ID || !first.CollectedAt.Equal(wfStart) ||
		first.SpecimenType != labspecimen.SpecimenTypeSERUM || first.OrderID != k.OrderID || first.PatientID != f.woman.ID ||
		!wfAccession.MatchString(first.AccessionNumber) {
		t.Fatalf("collected: %+v", first)
	}
	for _, it := range items {
		if got := f.item(it.ID); got.Status != laborderitem.StatusCOLLECTED || got.SpecimenID == nil || *got.SpecimenID != first.ID {
			t.Fatalf("collected item: %+v", got)
		}
	}
	found, err := f.svc.SpecimenByAccession(f.sys, f.client, "  "+first.AccessionNumber+" ")
	if err != nil || found == nil || found.ID != first.ID {
		t.Fatalf("by accession: %+v %v", found, err)
	}
	if none, err := f.svc.SpecimenByAccession(f.sys, f.client, "250310ZZZZZZ"); err != nil || none != nil {
		t.Fatalf("unknown accession: %+v %v", none, err)
	}
	_, err = f.svc.SpecimenByAccession(f.sys, f.client, "  ")
	wfWant(t, "blank accession", err, apperr.BadUserInput, "accessionNumber")

	f.clock.advance(20 * time.Minute)
	rcv := f.receive(t, first)
	if rcv.Status != labspecimen.StatusRECEIVED || rcv.ReceivedByID == nil || *rcv.ReceivedByID != f.tech.ID ||
		rcv.ReceivedAt == nil || !rcv.ReceivedAt.Equal(wfStart.Add(20*time.Minute)) {
		t.Fatalf("received: %+v", rcv)
	}
	// Sodium is run at once; the specimen then turns out to be lipaemic,
	// which spoils the sodium just entered as much as the potassium.
	naResult := f.enter(t, na, 140.4)
	f.clock.advance(5 * time.Minute)
	rej, err := f.svc.Reject(f.as(f.tech), first.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonOTHER, Note: new("  lipaemic ")})
	if err != nil {
		t.Fatal(err)
	}
	if rej.Status != labspecimen.StatusREJECTED || rej.RejectionReason == nil || *rej.RejectionReason != labspecimen.RejectionReasonOTHER ||
		rej.RejectionNote == nil || *rej.RejectionNote != "lipaemic" || rej.RejectedByID == nil || *rej.RejectedByID != f.tech.ID ||
		rej.RejectedAt == nil || !rej.RejectedAt.Equal(wfStart.Add(25*time.Minute)) {
		t.Fatalf("rejected: %+v", rej)
	}
	if got := f.item(k.ID).Status; got != laborderitem.StatusREJECTED {
		t.Fatalf("potassium is %s after the rejection, want REJECTED", got)
	}
	if got := f.item(na.ID).Status; got != laborderitem.StatusREJECTED {
		t.Fatalf("sodium is %s after the rejection, want REJECTED: its result was not verified yet", got)
	}
	if got := f.result(naResult.ID); got.Status != labresult.StatusDISCARDED || got.VerifiedByID != nil || *got.NumericValue != 140 {
		t.Fatalf("sodium's result after the rejection: %+v, want it kept, DISCARDED", got)
	}
	f.unchanged(t, "verify the discarded sodium", apperr.Conflict, "", func() error {
		_, err := f.svc.Verify(f.as(f.tech2), naResult.ID)
		return err
	})

	f.clock.advance(time.Hour)
	second := wfMust(f.svc.Collect(f.as(f.tech3), CollectLabSpecimenInput{ItemIDs: []string{k.ID}}))(t, "recollect")
	if second.ID == first.ID || second.AccessionNumber == first.AccessionNumber || !wfAccession.MatchString(second.AccessionNumber) ||
		second.Status != labspecimen.StatusCOLLECTED || second.CollectedByID != f.tech3.ID || !second.CollectedAt.Equal(wfStart.Add(85*time.Minute)) {
		t.Fatalf("recollected: %+v, first %+v", second, first)
	}
	if got := f.item(k.ID); got.Status != laborderitem.StatusCOLLECTED || *got.SpecimenID != second.ID {
		t.Fatalf("recollected item: %+v", got)
	}
	if got := f.specimen(first.ID); got.Status != labspecimen.StatusREJECTED {
		t.Fatalf("the first specimen is %s after the recollection, want it kept REJECTED", got.Status)
	}
	if n := f.client.LabSpecimen.Query().Where(labspecimen.OrderID(k.OrderID)).CountX(f.sys); n != 2 {
		t.Fatalf("%d specimens for the order, want 2", n)
	}
	f.receive(t, second)
	r := f.verify(t, f.enter(t, k, 4.4))
	if got := f.item(k.ID); got.Status != laborderitem.StatusVERIFIED || r.Status != labresult.StatusVERIFIED {
		t.Fatalf("after the recollection: item %s, result %s", got.Status, r.Status)
	}

	// A specimen whose tests are all verified is not rejected: the result
	// is already out, and amending is how it is corrected.
	f.unchanged(t, "reject the verified-only specimen", apperr.Conflict, "", func() error {
		_, err := f.svc.Reject(f.as(f.tech), second.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonCLOTTED})
		return err
	})
}

func TestWorkflowCancel(t *testing.T) {
	f := newWorkflow(t)
	it := f.order(t, f.woman, f.potassium)[0]
	out, err := f.svc.CancelItem(f.as(f.tech), it.ID, "  duplicate order ")
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != laborderitem.StatusCANCELLED || out.CancelReason == nil || *out.CancelReason != "duplicate order" ||
		out.CancelledByID == nil || *out.CancelledByID != f.tech.ID {
		t.Fatalf("cancelled: %+v", out)
	}
	if got := f.item(it.ID); got.Status != laborderitem.StatusCANCELLED || *got.CancelReason != "duplicate order" {
		t.Fatalf("re-read: %+v", got)
	}
	_, err = f.svc.CancelItem(f.as(f.tech), "lbi_01ARZ3NDEKTSV4RRFFQ69G5FAV", "gone")
	wfWant(t, "cancel unknown", err, apperr.NotFound, "")
}

// TestWorkflowRejectDiscardsEnteredResults rejects a specimen whose tests
// are in every state a rejection may find them: the result entered but not
// verified is discarded for good, and released results and cancelled
// tests are left as they are.
func TestWorkflowRejectDiscardsEnteredResults(t *testing.T) {
	f := newWorkflow(t)
	serum := func(code, name string) *ent.LabTest {
		return f.client.LabTest.Create().SetCode(code).SetName(name).SetSpecimenType(labtest.SpecimenTypeSERUM).
			SetResultKind(labtest.ResultKindNUMERIC).SetUnit("mmol/L").SetPrice(1500).SetTurnaroundMinutes(60).SaveX(f.sys)
	}
	crea, urea := serum("14682-9", "Creatinine"), serum("22664-7", "Urea")
	items := f.order(t, f.man, f.potassium, f.sodium, crea, urea)
	k, na, cr, ur := items[0], items[1], items[2], items[3]
	sp := f.receive(t, f.collect(t, items...))

	// Sodium released, then corrected and the correction released.
	naFirst := f.verify(t, f.enter(t, na, 140))
	naFixed := f.verify(t, wfMust(f.svc.Amend(f.as(f.tech3), naFirst.ID, AmendLabResultInput{NumericValue: new(141.0), Reason: "misread"}))(t, "amend sodium"))
	// Creatinine released, with a correction waiting.
	crFirst := f.verify(t, f.enter(t, cr, 80))
	crFix := wfMust(f.svc.Amend(f.as(f.tech3), crFirst.ID, AmendLabResultInput{NumericValue: new(85.0), Reason: "rerun"}))(t, "amend creatinine")
	wfMust(f.svc.CancelItem(f.as(f.doctor), ur.ID, "ordered in error"))(t, "cancel urea")
	// Potassium entered, critical for him, not verified yet.
	kDraft := f.enter(t, k, 7.04)
	if !kDraft.Critical {
		t.Fatalf("7.0 in a man: %+v", kDraft)
	}
	events, pokes := f.client.OutboxEvent.Query().CountX(f.sys), f.notify.count()

	f.clock.advance(10 * time.Minute)
	rej := wfMust(f.svc.Reject(f.as(f.tech), sp.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonMISLABELED}))(t, "reject")
	if rej.Status != labspecimen.StatusREJECTED || *rej.RejectionReason != labspecimen.RejectionReasonMISLABELED {
		t.Fatalf("rejected: %+v", rej)
	}
	for _, c := range []struct {
		what string
		item *ent.LabOrderItem
		want laborderitem.Status
	}{
		{"potassium", k, laborderitem.StatusREJECTED},
		{"sodium", na, laborderitem.StatusAMENDED},
		{"creatinine", cr, laborderitem.StatusVERIFIED},
		{"urea", ur, laborderitem.StatusCANCELLED},
	} {
		if got := f.item(c.item.ID).Status; got != c.want {
			t.Fatalf("%s is %s after the rejection, want %s", c.what, got, c.want)
		}
	}
	for _, c := range []struct {
		what string
		r    *ent.LabResult
		want labresult.Status
	}{
		{"potassium", kDraft, labresult.StatusDISCARDED},
		{"sodium as first released", naFirst, labresult.StatusCORRECTED},
		{"sodium corrected", naFixed, labresult.StatusVERIFIED},
		{"creatinine", crFirst, labresult.StatusVERIFIED},
		// The item is verified: correcting its result is amendment's
		// business, not the rejection's.
		{"creatinine's waiting correction", crFix, labresult.StatusENTERED},
	} {
		if got := f.result(c.r.ID).Status; got != c.want {
			t.Fatalf("%s result is %s after the rejection, want %s", c.what, got, c.want)
		}
	}
	// Kept as entered, for the record of what happened to the tube.
	if got := f.result(kDraft.ID); *got.NumericValue != 7.0 || !got.Critical || got.VerifiedByID != nil || got.VerifiedAt != nil {
		t.Fatalf("discarded result: %+v", got)
	}
	if n := f.client.OutboxEvent.Query().CountX(f.sys); n != events || f.notify.count() != pokes {
		t.Fatalf("the rejection published %d events (%d pokes)", n-events, f.notify.count()-pokes)
	}

	// The discarded value is never released, nor anyone asked to act on it.
	for _, step := range []struct {
		what string
		call func() error
	}{
		{"verify the discarded result", func() error { _, err := f.svc.Verify(f.as(f.tech2), kDraft.ID); return err }},
		{"amend the discarded result", func() error {
			_, err := f.svc.Amend(f.as(f.tech2), kDraft.ID, AmendLabResultInput{NumericValue: new(4.0), Reason: "rerun"})
			return err
		}},
		{"acknowledge the discarded result", func() error { _, err := f.svc.Acknowledge(f.as(f.doctor), kDraft.ID); return err }},
		{"enter on the rejected item", func() error {
			_, err := f.svc.Enter(f.as(f.tech2), k.ID, EnterLabResultInput{NumericValue: new(4.0)})
			return err
		}},
	} {
		f.unchanged(t, step.what, apperr.Conflict, "", step.call)
	}
	q := wfMust(f.svc.Unacknowledged(f.client, nil))(t, "unacknowledged")
	if n := q.CountX(f.sys); n != 0 {
		t.Fatalf("%d unacknowledged critical results, want none: the only one was discarded", n)
	}
	if n := f.client.OutboxEvent.Query().Where(outboxevent.Topic(CriticalTopic)).CountX(f.sys); n != 0 {
		t.Fatalf("%d critical events for a value never released", n)
	}

	// Collected again, potassium goes the whole way on the new specimen.
	f.clock.advance(time.Hour)
	again := f.collect(t, k)
	if again.ID == sp.ID {
		t.Fatal("recollected onto the rejected specimen")
	}
	f.receive(t, again)
	kReal := f.verify(t, f.enter(t, k, 4.4))
	if got := f.item(k.ID); got.Status != laborderitem.StatusVERIFIED || *got.SpecimenID != again.ID {
		t.Fatalf("potassium after the recollection: %+v", got)
	}
	wfReleased(t, f, k.ID, "potassium after the recollection", kReal.ID)
	if got := f.result(kDraft.ID).Status; got != labresult.StatusDISCARDED {
		t.Fatalf("the discarded result is %s after the recollection", got)
	}
	got := []string{}
	for _, e := range wfEvents(t, f, ResultsTopic) {
		got = append(got, e.typ+" "+e.ResultID)
	}
	wfSame(t, "results events", got, "VERIFIED "+naFirst.ID, "AMENDED "+naFixed.ID, "VERIFIED "+crFirst.ID, "VERIFIED "+kReal.ID)
}

// TestWorkflowReceiveCancelledSpecimen checks that a specimen is received
// for the tests still wanted on it, and not at all when none is.
func TestWorkflowReceiveCancelledSpecimen(t *testing.T) {
	f := newWorkflow(t)
	items := f.order(t, f.woman, f.potassium, f.sodium)
	k, na := items[0], items[1]
	sp := f.collect(t, k, na)
	wfMust(f.svc.CancelItem(f.as(f.doctor), na.ID, "ordered twice"))(t, "cancel sodium")
	got := f.receive(t, sp)
	if got.Status != labspecimen.StatusRECEIVED {
		t.Fatalf("received: %+v", got)
	}
	if a, b := f.item(k.ID).Status, f.item(na.ID).Status; a != laborderitem.StatusRECEIVED || b != laborderitem.StatusCANCELLED {
		t.Fatalf("after receipt: potassium %s, sodium %s; want RECEIVED and CANCELLED", a, b)
	}

	items = f.order(t, f.woman, f.potassium, f.sodium)
	sp = f.collect(t, items...)
	for _, it := range items {
		wfMust(f.svc.CancelItem(f.as(f.doctor), it.ID, "patient discharged"))(t, "cancel")
	}
	f.unchanged(t, "receive a specimen whose tests were all cancelled", apperr.Conflict, "", func() error {
		_, err := f.svc.Receive(f.as(f.tech), sp.ID)
		return err
	})
	if got := f.specimen(sp.ID); got.Status != labspecimen.StatusCOLLECTED || got.ReceivedAt != nil || got.ReceivedByID != nil {
		t.Fatalf("specimen after the refused receipt: %+v", got)
	}
}
