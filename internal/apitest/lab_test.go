package apitest

import (
	"context"
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/labpanel"
	"github.com/hmis-dev/hmis/ent/labreferencerange"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/internal/auth"
)

// The lab's catalog. Tests insert what they need when the server has not
// seeded it, and otherwise use the seeded rows with whatever ranges they
// have: expectations are derived from the catalog as the API reports it,
// so the same tests hold before and after a catalog seed exists.

type labRangeSpec struct {
	sex                          string // "" for either sex
	low, high, critLow, critHigh *float64
}

type labTestSpec struct {
	code, name, short string
	specimen          labtest.SpecimenType
	kind              labtest.ResultKind
	unit              string
	decimals          int
	codes, normal     []string
	ranges            []labRangeSpec
}

func num(x float64) *float64 { return &x }

var (
	potassiumSpec = labTestSpec{
		code: "2823-3", name: "Potassium [Moles/volume] in Serum or Plasma", short: "K",
		specimen: labtest.SpecimenTypeSERUM, kind: labtest.ResultKindNUMERIC, unit: "mmol/L", decimals: 1,
		ranges: []labRangeSpec{{low: num(3.5), high: num(5.1), critLow: num(2.8), critHigh: num(6.2)}},
	}
	sodiumSpec = labTestSpec{
		code: "2951-2", name: "Sodium [Moles/volume] in Serum or Plasma", short: "Na",
		specimen: labtest.SpecimenTypeSERUM, kind: labtest.ResultKindNUMERIC, unit: "mmol/L", decimals: 0,
		ranges: []labRangeSpec{{low: num(136), high: num(145), critLow: num(120), critHigh: num(160)}},
	}
	haemoglobinSpec = labTestSpec{
		code: "718-7", name: "Hemoglobin [Mass/volume] in Blood", short: "Hb",
		specimen: labtest.SpecimenTypeWHOLE_BLOOD, kind: labtest.ResultKindNUMERIC, unit: "g/dL", decimals: 1,
		ranges: []labRangeSpec{
			{sex: "FEMALE", low: num(12.0), high: num(15.5), critLow: num(7.0), critHigh: num(20.0)},
			{sex: "MALE", low: num(13.5), high: num(17.5), critLow: num(7.0), critHigh: num(20.0)},
		},
	}
	urineProteinSpec = labTestSpec{
		code: "20454-5", name: "Protein [Presence] in Urine by Test strip", short: "Prot U",
		specimen: labtest.SpecimenTypeURINE, kind: labtest.ResultKindCODED,
		codes: []string{"NEGATIVE", "TRACE", "1+", "2+", "3+", "4+"}, normal: []string{"NEGATIVE"},
	}
)

const metabolicPanelCode = "24321-2"

// ensureLabTest returns the ID of the test with spec's code, creating it
// from spec if the catalog lacks it.
func ensureLabTest(t testing.TB, ctx context.Context, c *ent.Client, spec labTestSpec) string {
	t.Helper()
	found, err := c.LabTest.Query().Where(labtest.Code(spec.code)).Only(ctx)
	if err == nil {
		return found.ID
	} else if !ent.IsNotFound(err) {
		t.Fatalf("look up lab test %s: %v", spec.code, err)
	}
	create := c.LabTest.Create().SetCode(spec.code).SetName(spec.name).SetShortName(spec.short).
		SetSpecimenType(spec.specimen).SetResultKind(spec.kind).SetDecimals(spec.decimals).
		SetPrice(1500).SetTurnaroundMinutes(60)
	if spec.unit != "" {
		create.SetUnit(spec.unit)
	}
	if len(spec.codes) > 0 {
		create.SetResultCodes(spec.codes).SetNormalCodes(spec.normal)
	}
	test, err := create.Save(ctx)
	if err != nil {
		t.Fatalf("create lab test %s: %v", spec.code, err)
	}
	for _, r := range spec.ranges {
		rc := c.LabReferenceRange.Create().SetTestID(test.ID).
			SetNillableLow(r.low).SetNillableHigh(r.high).
			SetNillableCriticalLow(r.critLow).SetNillableCriticalHigh(r.critHigh)
		if r.sex != "" {
			rc.SetSex(labreferencerange.Sex(r.sex))
		}
		if err := rc.Exec(ctx); err != nil {
			t.Fatalf("create range of %s: %v", spec.code, err)
		}
	}
	return test.ID
}

type labRangeOut struct {
	Sex                                  *string
	AgeFromDays                          int
	AgeToDays                            *int
	Low, High, CriticalLow, CriticalHigh *float64
}

type labTestOut struct {
	ID, Code, Name, SpecimenType, ResultKind string
	Unit                                     *string
	Decimals                                 int
	ResultCodes, NormalCodes                 []string
	ReferenceRanges                          []labRangeOut
}

// round is what the lab reports a value as: at the test's precision.
func (lt labTestOut) round(x float64) float64 {
	scale := math.Pow(10, float64(lt.Decimals))
	return math.Round(x*scale) / scale
}

// rangeFor is the range a result of a patient of sex, born on birth, is to
// be judged by: among the ranges whose age band holds the patient, the one
// for their sex, else the one for either. A catalog that leaves more than
// one fails the test rather than have it guess the server's tie-break.
func (lt labTestOut) rangeFor(t testing.TB, sex string, birth time.Time) labRangeOut {
	t.Helper()
	age := int(time.Since(birth).Hours() / 24)
	var own, either []labRangeOut
	for _, r := range lt.ReferenceRanges {
		if age < r.AgeFromDays || (r.AgeToDays != nil && age >= *r.AgeToDays) {
			continue
		}
		switch {
		case r.Sex == nil:
			either = append(either, r)
		case *r.Sex == sex:
			own = append(own, r)
		}
	}
	pick := own
	if len(pick) == 0 {
		pick = either
	}
	if len(pick) != 1 {
		t.Fatalf("%s: %d ranges fit a %s aged %d days: %+v", lt.Code, len(pick), sex, age, lt.ReferenceRanges)
	}
	return pick[0]
}

// labCat is the part of the catalog the tests use.
type labCat struct {
	potassium, haemoglobin, urineProtein labTestOut
	// panel holds potassium among its tests.
	panel struct {
		ID, Code string
		Tests    []struct{ ID string }
	}
}

const labTestFields = `id code name specimenType resultKind unit decimals resultCodes normalCodes
  referenceRanges { sex ageFromDays ageToDays low high criticalLow criticalHigh }`

// labCatalog makes sure the catalog has potassium, haemoglobin (with a
// range per sex), a coded urine protein and a metabolic panel, and
// returns them as a doctor reads them.
func labCatalog(t testing.TB, s *server) labCat {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	c := s.app.Store.Client
	k := ensureLabTest(t, ctx, c, potassiumSpec)
	na := ensureLabTest(t, ctx, c, sodiumSpec)
	hb := ensureLabTest(t, ctx, c, haemoglobinSpec)
	up := ensureLabTest(t, ctx, c, urineProteinSpec)
	panel, err := c.LabPanel.Query().Where(labpanel.Code(metabolicPanelCode)).Only(ctx)
	if ent.IsNotFound(err) {
		panel, err = c.LabPanel.Create().SetCode(metabolicPanelCode).SetName("Basic metabolic 2000 panel - Serum or Plasma").
			SetPrice(3000).AddTestIDs(na, k).Save(ctx)
	}
	if err != nil {
		t.Fatalf("metabolic panel: %v", err)
	}

	var out struct {
		K, Hb, Up struct{ labTestOut }
		Panel     struct {
			ID, Code string
			Tests    []struct{ ID string }
		}
	}
	s.as("doctor", `query($k: ID!, $hb: ID!, $up: ID!, $panel: ID!) {
	  k: node(id: $k) { ... on LabTest { `+labTestFields+` } }
	  hb: node(id: $hb) { ... on LabTest { `+labTestFields+` } }
	  up: node(id: $up) { ... on LabTest { `+labTestFields+` } }
	  panel: node(id: $panel) { ... on LabPanel { id code tests { id } } }
	}`, map[string]any{"k": k, "hb": hb, "up": up, "panel": panel.ID}).decode(t, &out)
	cat := labCat{potassium: out.K.labTestOut, haemoglobin: out.Hb.labTestOut, urineProtein: out.Up.labTestOut}
	cat.panel.ID, cat.panel.Code, cat.panel.Tests = out.Panel.ID, out.Panel.Code, out.Panel.Tests
	must(t, cat.potassium.ResultKind == "NUMERIC" && cat.haemoglobin.ResultKind == "NUMERIC" && cat.urineProtein.ResultKind == "CODED",
		"catalog kinds: %+v", cat)
	inPanel := false
	for _, pt := range cat.panel.Tests {
		inPanel = inPanel || pt.ID == k
	}
	must(t, inPanel, "the metabolic panel lacks potassium: %+v", cat.panel)
	must(t, cat.urineProtein.SpecimenType != cat.potassium.SpecimenType, "urine protein and potassium share a specimen type: %+v", cat)
	return cat
}

// Values chosen from the potassium range an adult is judged by.
type potassiumValues struct{ normal, high, criticalHigh, criticalLow float64 }

func (c labCat) potassiumFor(t testing.TB, sex string, birth time.Time) (labRangeOut, potassiumValues) {
	t.Helper()
	k := c.potassium
	r := k.rangeFor(t, sex, birth)
	must(t, r.Low != nil && r.High != nil && r.CriticalLow != nil && r.CriticalHigh != nil, "potassium range %+v", r)
	v := potassiumValues{
		normal:       k.round((*r.Low + *r.High) / 2),
		high:         k.round((*r.High + *r.CriticalHigh) / 2),
		criticalHigh: k.round(*r.CriticalHigh + 0.5),
		criticalLow:  *r.CriticalLow, // a panic limit is itself a panic value
	}
	must(t, v.high > *r.High && v.high < *r.CriticalHigh, "no HIGH value between %v and %v at %d decimals", *r.High, *r.CriticalHigh, k.Decimals)
	return r, v
}

// Documents a frontend sends.
const (
	labOrderMutation = `mutation($in: OrderLabTestsInput!) {
  orderLabTests(input: $in) { id priority clinicalNotes orderedAt patient { id } orderedBy { id }
    items { id status orderedAt test { id code specimenType } panel { id } } }
}`
	collectMutation = `mutation($in: CollectLabSpecimenInput!) {
  collectLabSpecimen(input: $in) { id accessionNumber status specimenType collectedAt collectedBy { id } patient { id } items { id status } }
}`
	receiveMutation = `mutation($id: ID!) {
  receiveLabSpecimen(id: $id) { id accessionNumber status receivedAt receivedBy { id } items { id status } }
}`
	rejectMutation = `mutation($id: ID!, $in: RejectLabSpecimenInput!) {
  rejectLabSpecimen(id: $id, input: $in) { id status rejectionReason rejectionNote items { id status } }
}`
	cancelItemMutation = `mutation($id: ID!, $r: String!) {
  cancelLabOrderItem(id: $id, reason: $r) { id status cancelReason cancelledBy { id } }
}`
	byAccessionQuery = `query($a: String!) {
  labSpecimenByAccession(accessionNumber: $a) { id accessionNumber status patient { id } items { id status test { id } } }
}`
	labResultFields = `id status numericValue codedValue textValue unit flag referenceLow referenceHigh criticalLow criticalHigh
  critical comment enteredAt verifiedAt amendReason acknowledgedAt acknowledgeMinutes
  enteredBy { id } verifiedBy { id } acknowledgedBy { id } patient { id }
  replaces { id status } replacedBy { id }
  item { id status orderedAt verifiedAt turnaroundMinutes test { id code } }`
	enterMutation       = `mutation($item: ID!, $in: EnterLabResultInput!) { enterLabResult(itemId: $item, input: $in) { ` + labResultFields + ` } }`
	verifyMutation      = `mutation($id: ID!) { verifyLabResult(id: $id) { ` + labResultFields + ` } }`
	amendMutation       = `mutation($id: ID!, $in: AmendLabResultInput!) { amendLabResult(id: $id, input: $in) { ` + labResultFields + ` } }`
	acknowledgeMutation = `mutation($id: ID!) { acknowledgeCriticalResult(id: $id) { ` + labResultFields + ` notify { id } } }`
	labResultQuery      = `query($id: ID!) { node(id: $id) { ... on LabResult { ` + labResultFields + ` } } }`
)

type labOrderOut struct {
	ID, Priority, OrderedAt string
	ClinicalNotes           *string
	Patient, OrderedBy      struct{ ID string }
	Items                   []struct {
		ID, Status, OrderedAt string
		Test                  struct{ ID, Code, SpecimenType string }
		Panel                 *struct{ ID string }
	}
}

// item returns the order's item for testID.
func (o labOrderOut) item(t testing.TB, testID string) string {
	t.Helper()
	for _, it := range o.Items {
		if it.Test.ID == testID {
			return it.ID
		}
	}
	t.Fatalf("order %s has no item for test %s: %+v", o.ID, testID, o.Items)
	return ""
}

type specimenOut struct {
	ID, AccessionNumber, Status, SpecimenType, CollectedAt string
	ReceivedAt                                             *string
	CollectedBy, ReceivedBy, Patient                       *struct{ ID string }
	RejectionReason, RejectionNote                         *string
	Items                                                  []struct{ ID, Status string }
}

type labResultOut struct {
	ID, Status, EnteredAt                                   string
	NumericValue                                            *float64
	CodedValue, TextValue, Unit, Flag, Comment, AmendReason *string
	ReferenceLow, ReferenceHigh, CriticalLow, CriticalHigh  *float64
	Critical                                                bool
	VerifiedAt, AcknowledgedAt                              *string
	AcknowledgeMinutes                                      *int
	EnteredBy, Patient                                      struct{ ID string }
	VerifiedBy, AcknowledgedBy, Replaces, ReplacedBy        *struct{ ID, Status string }
	Notify                                                  []struct{ ID string }
	Item                                                    struct {
		ID, Status, OrderedAt string
		VerifiedAt            *string
		TurnaroundMinutes     *int
		Test                  struct{ ID, Code string }
	}
}

func (r labResultOut) flag() string {
	if r.Flag == nil {
		return "<none>"
	}
	return *r.Flag
}

// judgedBy reports whether r carries rng as the range it was flagged by.
func (r labResultOut) judgedBy(rng labRangeOut) bool {
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return eq(r.ReferenceLow, rng.Low) && eq(r.ReferenceHigh, rng.High) &&
		eq(r.CriticalLow, rng.CriticalLow) && eq(r.CriticalHigh, rng.CriticalHigh)
}

func parseTime(t testing.TB, what, s string) time.Time {
	t.Helper()
	at, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("%s %q: %v", what, s, err)
	}
	return at
}

// labDesk runs the lab's steps through the API, each as the user who does
// it on a ward: the doctor orders, the nurse collects, labtech receives and
// enters, labtech2 verifies.
type labDesk struct {
	t   testing.TB
	s   *server
	cat labCat
}

func newLabDesk(t testing.TB, s *server) *labDesk {
	return &labDesk{t: t, s: s, cat: labCatalog(t, s)}
}

func (l *labDesk) order(patientID string, testIDs, panelIDs []string, extra map[string]any) labOrderOut {
	l.t.Helper()
	in := map[string]any{"patientId": patientID, "testIds": testIDs, "panelIds": panelIDs}
	for k, v := range extra {
		in[k] = v
	}
	var out struct{ OrderLabTests labOrderOut }
	l.s.as("doctor", labOrderMutation, map[string]any{"in": in}).decode(l.t, &out)
	return out.OrderLabTests
}

func (l *labDesk) collect(user string, itemIDs ...string) specimenOut {
	l.t.Helper()
	var out struct{ CollectLabSpecimen specimenOut }
	l.s.as(user, collectMutation, map[string]any{"in": map[string]any{"itemIds": itemIDs}}).decode(l.t, &out)
	return out.CollectLabSpecimen
}

func (l *labDesk) receive(user, specimenID string) specimenOut {
	l.t.Helper()
	var out struct{ ReceiveLabSpecimen specimenOut }
	l.s.as(user, receiveMutation, map[string]any{"id": specimenID}).decode(l.t, &out)
	return out.ReceiveLabSpecimen
}

func (l *labDesk) enter(user, itemID string, in map[string]any) labResultOut {
	l.t.Helper()
	var out struct{ EnterLabResult labResultOut }
	l.s.as(user, enterMutation, map[string]any{"item": itemID, "in": in}).decode(l.t, &out)
	return out.EnterLabResult
}

func (l *labDesk) verify(user, resultID string) labResultOut {
	l.t.Helper()
	var out struct{ VerifyLabResult labResultOut }
	l.s.as(user, verifyMutation, map[string]any{"id": resultID}).decode(l.t, &out)
	return out.VerifyLabResult
}

func (l *labDesk) amend(user, resultID string, in map[string]any) labResultOut {
	l.t.Helper()
	var out struct{ AmendLabResult labResultOut }
	l.s.as(user, amendMutation, map[string]any{"id": resultID, "in": in}).decode(l.t, &out)
	return out.AmendLabResult
}

// read returns a result as user sees it.
func (l *labDesk) read(user, resultID string) labResultOut {
	l.t.Helper()
	var out struct{ Node labResultOut }
	l.s.as(user, labResultQuery, map[string]any{"id": resultID}).decode(l.t, &out)
	return out.Node
}

// received orders testID for the patient and takes it to RECEIVED,
// returning the item.
func (l *labDesk) received(patientID, testID string) string {
	l.t.Helper()
	o := l.order(patientID, []string{testID}, nil, nil)
	item := o.item(l.t, testID)
	sp := l.collect("nurse", item)
	l.receive("labtech", sp.ID)
	return item
}

// entered takes one test from order to an ENTERED result of value.
func (l *labDesk) entered(patientID, testID string, value map[string]any) labResultOut {
	l.t.Helper()
	return l.enter("labtech", l.received(patientID, testID), value)
}

// released takes one test from order to a verified result of value.
func (l *labDesk) released(patientID, testID string, value map[string]any) labResultOut {
	l.t.Helper()
	return l.verify("labtech2", l.entered(patientID, testID, value).ID)
}

// potassium is a potassium value to enter.
func potassium(v float64) map[string]any { return map[string]any{"numericValue": v} }

// staffID is the staff record of a demo user.
func staffID(t testing.TB, s *server, user string) string {
	t.Helper()
	var out struct {
		Me struct{ Staff struct{ ID string } }
	}
	s.as(user, `{ me { staff { id } } }`, nil).decode(t, &out)
	must(t, out.Me.Staff.ID != "", "%s has no staff record", user)
	return out.Me.Staff.ID
}

type patientFacts struct {
	sex   string
	birth time.Time
}

func facts(t testing.TB, s *server, patientID string) patientFacts {
	t.Helper()
	var out struct {
		Node struct{ Sex, BirthDate string }
	}
	s.as("admin", `query($id: ID!) { node(id: $id) { ... on Patient { sex birthDate } } }`, map[string]any{"id": patientID}).decode(t, &out)
	birth, err := time.Parse("2006-01-02", out.Node.BirthDate)
	must(t, err == nil, "birth date %q: %v", out.Node.BirthDate, err)
	return patientFacts{sex: out.Node.Sex, birth: birth}
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
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	cat := desk.cat
	own := d.patients[0] // the patient user's record
	stay := admit(t, s, "reception", own, s.layout().beds["MED-A-01"], d.doctor)
	must(t, stay.Status == "ADMITTED", "admitted: %+v", stay)
	pf := facts(t, s, own)
	kRange, kv := cat.potassiumFor(t, pf.sex, pf.birth)
	labtech, labtech2 := staffID(t, s, "labtech"), staffID(t, s, "labtech2")
	demoRows := existingLab(t, s)

	// The doctor orders potassium and haemoglobin, and the metabolic
	// panel, which holds potassium again.
	notes := "Vomiting for two days; on furosemide"
	o := desk.order(own, []string{cat.haemoglobin.ID, cat.potassium.ID}, []string{cat.panel.ID},
		map[string]any{"priority": "STAT", "clinicalNotes": notes})
	must(t, o.Priority == "STAT" && o.ClinicalNotes != nil && *o.ClinicalNotes == notes &&
		o.Patient.ID == own && o.OrderedBy.ID == d.doctor, "order: %+v", o)
	want := map[string]bool{cat.haemoglobin.ID: true, cat.potassium.ID: true}
	for _, pt := range cat.panel.Tests {
		want[pt.ID] = true
	}
	must(t, len(o.Items) == len(want), "%d items for %d distinct tests: %+v", len(o.Items), len(want), o.Items)
	seen := map[string]bool{}
	for _, it := range o.Items {
		must(t, want[it.Test.ID] && !seen[it.Test.ID], "item %+v: unexpected or twice", it)
		seen[it.Test.ID] = true
		must(t, it.Status == "ORDERED" && it.OrderedAt == o.OrderedAt, "new item: %+v", it)
		alone := it.Test.ID == cat.haemoglobin.ID || it.Test.ID == cat.potassium.ID
		must(t, (it.Panel == nil) == alone, "item %s: ordered alone %v, panel %+v", it.Test.Code, alone, it.Panel)
		must(t, alone || it.Panel.ID == cat.panel.ID, "item %s panel %+v", it.Test.Code, it.Panel)
	}
	kItem, hbItem := o.item(t, cat.potassium.ID), o.item(t, cat.haemoglobin.ID)

	// The nurse collects one container per specimen type.
	var serumItems []string
	for _, it := range o.Items {
		if it.Test.SpecimenType == cat.potassium.SpecimenType {
			serumItems = append(serumItems, it.ID)
		}
	}
	before := time.Now().UTC()
	kSpec := desk.collect("nurse", serumItems...)
	hbSpec := desk.collect("nurse", hbItem)
	after := time.Now().UTC()
	for _, sp := range []specimenOut{kSpec, hbSpec} {
		must(t, accessionPattern.MatchString(sp.AccessionNumber), "accession number %q", sp.AccessionNumber)
		day := sp.AccessionNumber[:6]
		must(t, day == before.Format("060102") || day == after.Format("060102"), "accession %s is not dated today", sp.AccessionNumber)
		must(t, sp.Status == "COLLECTED" && sp.CollectedBy != nil && sp.CollectedBy.ID == d.nurse && sp.Patient.ID == own, "specimen: %+v", sp)
		for _, it := range sp.Items {
			must(t, it.Status == "COLLECTED", "collected item: %+v", sp.Items)
		}
	}
	must(t, kSpec.AccessionNumber != hbSpec.AccessionNumber, "two specimens share accession number %s", kSpec.AccessionNumber)
	must(t, len(kSpec.Items) == len(serumItems) && len(hbSpec.Items) == 1 && kSpec.SpecimenType == cat.potassium.SpecimenType &&
		hbSpec.SpecimenType == cat.haemoglobin.SpecimenType, "containers: %+v / %+v", kSpec, hbSpec)

	// The lab scans the label: typed in lower case with spaces, it still
	// finds the specimen.
	var found struct {
		LabSpecimenByAccession *specimenOut
	}
	s.as("labtech", byAccessionQuery, map[string]any{"a": " " + strings.ToLower(kSpec.AccessionNumber) + " "}).decode(t, &found)
	must(t, found.LabSpecimenByAccession != nil && found.LabSpecimenByAccession.ID == kSpec.ID &&
		found.LabSpecimenByAccession.Status == "COLLECTED", "by accession: %+v", found.LabSpecimenByAccession)
	s.as("labtech", byAccessionQuery, map[string]any{"a": "000000AAAAAA"}).decode(t, &found)
	must(t, found.LabSpecimenByAccession == nil, "an unknown accession number found %+v", found.LabSpecimenByAccession)

	rec := desk.receive("labtech", kSpec.ID)
	must(t, rec.Status == "RECEIVED" && rec.ReceivedAt != nil && rec.ReceivedBy != nil && rec.ReceivedBy.ID == labtech,
		"received: %+v", rec)
	for _, it := range rec.Items {
		must(t, it.Status == "RECEIVED", "received items: %+v", rec.Items)
	}
	desk.receive("labtech", hbSpec.ID)

	// labtech enters potassium; it waits for a second person.
	res := desk.enter("labtech", kItem, map[string]any{"numericValue": kv.normal, "comment": "Sample clear"})
	must(t, res.Status == "ENTERED" && res.NumericValue != nil && *res.NumericValue == kv.normal && res.flag() == "NORMAL" &&
		!res.Critical && res.VerifiedAt == nil && res.VerifiedBy == nil && res.EnteredBy.ID == labtech && res.Patient.ID == own,
		"entered: %+v", res)
	must(t, res.judgedBy(kRange), "entered %+v, want the range %+v", res, kRange)
	must(t, (res.Unit == nil) == (cat.potassium.Unit == nil) && (res.Unit == nil || *res.Unit == *cat.potassium.Unit),
		"unit %v, want the test's %v", res.Unit, cat.potassium.Unit)
	must(t, res.Item.ID == kItem && res.Item.Status == "RESULTED" && res.Item.TurnaroundMinutes == nil, "item once entered: %+v", res.Item)

	r := s.as("labtech", verifyMutation, map[string]any{"id": res.ID})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "FORBIDDEN", "labtech verifies their own entry: %s", describe(r))
	must(t, desk.read("labtech", res.ID).Status == "ENTERED", "a refused verification changed the result")

	v := desk.verify("labtech2", res.ID)
	must(t, v.ID == res.ID && v.Status == "VERIFIED" && v.VerifiedBy != nil && v.VerifiedBy.ID == labtech2 &&
		v.VerifiedAt != nil && v.EnteredBy.ID == labtech && v.flag() == "NORMAL", "verified: %+v", v)
	must(t, v.Item.Status == "VERIFIED" && v.Item.VerifiedAt != nil && *v.Item.VerifiedAt == *v.VerifiedAt, "verified item: %+v", v.Item)
	must(t, v.Item.TurnaroundMinutes != nil && *v.Item.TurnaroundMinutes == wholeMinutes(t, v.Item.OrderedAt, *v.VerifiedAt),
		"turnaround %v from %s to %s", v.Item.TurnaroundMinutes, v.Item.OrderedAt, *v.VerifiedAt)

	// Haemoglobin is judged by the range of the patient's sex: a value
	// normal for a woman but low for a man tells which one applied.
	hbRange := cat.haemoglobin.rangeFor(t, pf.sex, pf.birth)
	otherSex := map[string]string{"FEMALE": "MALE", "MALE": "FEMALE"}[pf.sex]
	hbOther := cat.haemoglobin.rangeFor(t, otherSex, pf.birth)
	must(t, hbRange.Sex != nil && *hbRange.Sex == pf.sex, "haemoglobin has no range for %s: %+v", pf.sex, cat.haemoglobin.ReferenceRanges)
	hbValue := cat.haemoglobin.round((*hbRange.Low + *hbOther.Low) / 2)
	must(t, pf.sex == "FEMALE" && hbValue >= *hbRange.Low && hbValue < *hbOther.Low,
		"%v g/dL does not tell the %s range %+v from the other %+v", hbValue, pf.sex, hbRange, hbOther)
	hb := desk.enter("labtech2", hbItem, map[string]any{"numericValue": hbValue})
	must(t, hb.flag() == "NORMAL" && hb.judgedBy(hbRange), "haemoglobin %v: %+v, want the range %+v", hbValue, hb, hbRange)
	hb = desk.verify("labtech", hb.ID)
	must(t, hb.Status == "VERIFIED" && hb.VerifiedBy.ID == labtech, "haemoglobin verified: %+v", hb)

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
	s.as("patient", `{
	  labResults(first: 50) { edges { node { id status flag numericValue item { test { code } } } } }
	  labOrders(first: 50) { edges { node { id priority items { id status } } } }
	}`, nil).decode(t, &mine)
	got := map[string]string{}
	for _, e := range mine.LabResults.Edges {
		if !demoRows[e.Node.ID] {
			got[e.Node.ID] = e.Node.Status + " " + e.Node.Flag
		}
	}
	must(t, len(got) == 2 && got[v.ID] == "VERIFIED NORMAL" && got[hb.ID] == "VERIFIED NORMAL", "the patient's results: %v", got)
	statuses, orders := map[string]string{}, 0
	for _, e := range mine.LabOrders.Edges {
		if demoRows[e.Node.ID] {
			continue
		}
		orders++
		must(t, e.Node.ID == o.ID && e.Node.Priority == "STAT", "the patient's orders: %+v", mine.LabOrders)
		for _, it := range e.Node.Items {
			statuses[it.ID] = it.Status
		}
	}
	must(t, orders == 1, "the patient has %d new orders, want 1: %+v", orders, mine.LabOrders)
	must(t, statuses[kItem] == "VERIFIED" && statuses[hbItem] == "VERIFIED", "the patient's items: %v", statuses)
	for _, id := range serumItems {
		if id != kItem {
			must(t, statuses[id] == "RECEIVED", "a panel item not resulted yet: %v", statuses)
		}
	}
}

// TestLabAmendmentOverHTTP: a correction is entered by one lab technician
// and released by another. Until then the original is the released result
// and the correction is as invisible outside the lab as any unverified
// result; once verified, the original stays, CORRECTED, and the item is
// AMENDED.
func TestLabAmendmentOverHTTP(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	own := d.patients[0]
	pf := facts(t, s, own)
	kRange, kv := desk.cat.potassiumFor(t, pf.sex, pf.birth)
	labtech, labtech2 := staffID(t, s, "labtech"), staffID(t, s, "labtech2")
	demoRows := existingLab(t, s)

	orig := desk.released(own, desk.cat.potassium.ID, potassium(kv.normal))
	reason := "Transcription error: value of the next sample"
	fix := desk.amend("labtech", orig.ID, map[string]any{"numericValue": kv.high, "comment": "Rechecked", "reason": reason})
	must(t, fix.ID != orig.ID && fix.Status == "ENTERED" && fix.NumericValue != nil && *fix.NumericValue == kv.high &&
		fix.flag() == "HIGH" && fix.judgedBy(kRange) && fix.AmendReason != nil && *fix.AmendReason == reason &&
		fix.Comment != nil && *fix.Comment == "Rechecked", "amendment: %+v", fix)
	must(t, fix.EnteredBy.ID == labtech && fix.VerifiedBy == nil && fix.VerifiedAt == nil,
		"the amendment waits for a second person: %+v", fix)
	must(t, fix.Replaces != nil && fix.Replaces.ID == orig.ID && fix.Replaces.Status == "VERIFIED", "replaces: %+v", fix.Replaces)
	must(t, fix.Item.ID == orig.Item.ID && fix.Item.Status == "VERIFIED", "item while the amendment waits: %+v", fix.Item)

	// Until it is verified the original is what everyone outside the lab
	// reads, with nothing pointing to a replacement they cannot see.
	for _, user := range []string{"doctor", "patient"} {
		old := desk.read(user, orig.ID)
		must(t, old.Status == "VERIFIED" && old.ReplacedBy == nil && *old.NumericValue == kv.normal,
			"%s reads the original while the amendment waits: %+v", user, old)
		r := s.as(user, labResultQuery, map[string]any{"id": fix.ID})
		must(t, len(r.Errors) == 1 && r.Errors[0].code() == "NOT_FOUND", "%s reads the waiting amendment: %s", user, describe(r))
	}
	old := desk.read("labtech2", orig.ID)
	must(t, old.Status == "VERIFIED" && old.ReplacedBy != nil && old.ReplacedBy.ID == fix.ID,
		"the lab sees the amendment waiting on the original: %+v", old)

	count := func() int {
		var out struct {
			Node struct{ Results []struct{ ID string } }
		}
		s.as("labtech", `query($id: ID!) { node(id: $id) { ... on LabOrderItem { results { id } } } }`,
			map[string]any{"id": orig.Item.ID}).decode(t, &out)
		return len(out.Node.Results)
	}
	must(t, count() == 2, "the item's results while the amendment waits: %d", count())
	for _, user := range []string{"labtech", "labtech2"} {
		r := s.as(user, amendMutation, map[string]any{"id": orig.ID, "in": map[string]any{"numericValue": kv.normal, "reason": "again"}})
		must(t, len(r.Errors) == 1 && r.Errors[0].code() == "CONFLICT", "%s amends while an amendment waits: %s", user, describe(r))
	}
	r := s.as("labtech", verifyMutation, map[string]any{"id": fix.ID})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "FORBIDDEN", "the amender verifies their own amendment: %s", describe(r))
	r = s.as("doctor", amendMutation, map[string]any{"id": orig.ID, "in": map[string]any{"numericValue": 4, "reason": "x"}})
	must(t, r.hasCode("FORBIDDEN"), "a doctor amends: %s", describe(r))
	r = s.as("doctor", verifyMutation, map[string]any{"id": fix.ID})
	must(t, r.hasCode("FORBIDDEN"), "a doctor verifies an amendment: %s", describe(r))
	must(t, count() == 2 && desk.read("labtech", fix.ID).Status == "ENTERED" && desk.read("labtech", orig.ID).Status == "VERIFIED",
		"refusals changed the amendment or the original")

	v := desk.verify("labtech2", fix.ID)
	must(t, v.ID == fix.ID && v.Status == "VERIFIED" && v.VerifiedBy != nil && v.VerifiedBy.ID == labtech2 && v.VerifiedAt != nil &&
		v.EnteredBy.ID == labtech && *v.NumericValue == kv.high, "verified amendment: %+v", v)
	must(t, v.Replaces != nil && v.Replaces.ID == orig.ID && v.Replaces.Status == "CORRECTED", "replaces once verified: %+v", v.Replaces)
	must(t, v.Item.Status == "AMENDED", "item after amendment: %+v", v.Item)
	// Turnaround is to the first verified result; a correction does not
	// move it.
	must(t, v.Item.VerifiedAt != nil && *v.Item.VerifiedAt == *orig.VerifiedAt &&
		*v.Item.TurnaroundMinutes == *orig.Item.TurnaroundMinutes, "item timing after amendment: %+v, was %+v", v.Item, orig.Item)

	old = desk.read("doctor", orig.ID)
	must(t, old.Status == "CORRECTED" && old.ReplacedBy != nil && old.ReplacedBy.ID == fix.ID &&
		*old.NumericValue == kv.normal && old.VerifiedAt != nil && *old.VerifiedAt == *orig.VerifiedAt, "the original: %+v", old)

	r = s.as("labtech2", amendMutation, map[string]any{"id": orig.ID, "in": map[string]any{"numericValue": 4, "reason": "again"}})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "CONFLICT", "amend a corrected result: %s", describe(r))
	r = s.as("labtech", verifyMutation, map[string]any{"id": fix.ID})
	must(t, r.hasCode("CONFLICT"), "verify an amendment twice: %s", describe(r))

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
		s.as("patient", `{ labResults(first: 50) { edges { node { id status replaces { id } } } } }`, nil).decode(t, &mine)
		got := map[string]string{}
		for _, e := range mine.LabResults.Edges {
			if !demoRows[e.Node.ID] {
				got[e.Node.ID] = e.Node.Status
			}
		}
		return got
	}
	got := patientResults()
	must(t, len(got) == 2 && got[orig.ID] == "CORRECTED" && got[fix.ID] == "VERIFIED", "the patient's results: %v", got)

	// A correction is amended like any released result, by the other
	// technician this time, and verified by the first.
	again := desk.amend("labtech2", fix.ID, map[string]any{"numericValue": kv.normal, "reason": "Wrong sample after all"})
	must(t, again.Status == "ENTERED" && again.Replaces != nil && again.Replaces.ID == fix.ID && again.Replaces.Status == "VERIFIED",
		"second amendment: %+v", again)
	got = patientResults()
	must(t, len(got) == 2 && got[fix.ID] == "VERIFIED", "the patient's results while the second amendment waits: %v", got)
	again = desk.verify("labtech", again.ID)
	must(t, again.Status == "VERIFIED" && again.Replaces.Status == "CORRECTED" && again.Item.Status == "AMENDED", "second amendment: %+v", again)
	got = patientResults()
	must(t, len(got) == 3 && got[orig.ID] == "CORRECTED" && got[fix.ID] == "CORRECTED" && got[again.ID] == "VERIFIED",
		"the patient's results after two amendments: %v", got)
}

// TestLabConcurrentAmendmentsOneWaits: of two technicians amending the
// same result at once, one correction waits for verification and the
// other is told CONFLICT.
func TestLabConcurrentAmendmentsOneWaits(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	tokens := map[string]string{"labtech": s.token("labtech"), "labtech2": s.token("labtech2")}
	for round := 0; round < 5; round++ {
		orig := desk.released(d.patients[1], desk.cat.potassium.ID, potassium(4.0))
		results := map[string]response{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for user, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := s.do(tok, amendMutation, map[string]any{"id": orig.ID,
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
				must(t, winner == "", "round %d: both %s and %s entered an amendment", round, winner, user)
				winner = user
			case len(r.Errors) != 1 || r.Errors[0].code() != "CONFLICT":
				t.Fatalf("round %d: %s: want CONFLICT, got %s", round, user, describe(r))
			}
		}
		must(t, winner != "", "round %d: neither amendment succeeded: %v", round, results)
		var out struct {
			Node struct {
				Status  string
				Results []struct {
					ID, Status string
					Replaces   *struct{ ID string }
				}
			}
		}
		s.as("labtech", `query($id: ID!) { node(id: $id) { ... on LabOrderItem { status results { id status replaces { id } } } } }`,
			map[string]any{"id": orig.Item.ID}).decode(t, &out)
		waiting := 0
		for _, r := range out.Node.Results {
			if r.ID != orig.ID {
				must(t, r.Status == "ENTERED" && r.Replaces != nil && r.Replaces.ID == orig.ID, "round %d: %+v", round, r)
				waiting++
			}
		}
		must(t, out.Node.Status == "VERIFIED" && waiting == 1, "round %d: item after the race (winner %s): %+v", round, winner, out.Node)
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

func ids[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

// wardsAndCardiologist returns the demo's ward IDs by code and the
// attending doctor of its inpatient (patients[3], in CCU-01).
func wardsAndCardiologist(t testing.TB, s *server) (map[string]string, string) {
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
	s.as("admin", `{ bedBoard { ward { id code } beds { bed { code } admission { attending { id } } } } }`, nil).decode(t, &out)
	wards, attending := map[string]string{}, ""
	for _, w := range out.BedBoard {
		wards[w.Ward.Code] = w.Ward.ID
		for _, b := range w.Beds {
			if b.Bed.Code == "CCU-01" && b.Admission != nil {
				attending = b.Admission.Attending.ID
			}
		}
	}
	must(t, wards["CCU"] != "" && wards["MED-A"] != "" && attending != "", "demo wards: %+v", out)
	return wards, attending
}

func TestLabCriticalValuesOverHTTP(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	wards, cardiologist := wardsAndCardiologist(t, s)
	must(t, cardiologist != d.doctor, "the inpatient's attending is the ordering doctor")
	inpatient := d.patients[3] // in the CCU
	medA := d.patients[0]
	admit(t, s, "reception", medA, s.layout().beds["MED-A-01"], d.doctor)
	pf := facts(t, s, inpatient)
	_, kv := desk.cat.potassiumFor(t, pf.sex, pf.birth)
	pfA := facts(t, s, medA)
	_, kvA := desk.cat.potassiumFor(t, pfA.sex, pfA.birth)

	normal := desk.released(inpatient, desk.cat.potassium.ID, potassium(kv.normal))
	must(t, !normal.Critical && normal.flag() == "NORMAL", "normal: %+v", normal)
	crit := desk.released(inpatient, desk.cat.potassium.ID, potassium(kv.criticalHigh))
	must(t, crit.Critical && crit.flag() == "CRITICAL_HIGH" && crit.AcknowledgedAt == nil, "critical: %+v", crit)
	// At the panic limit itself it is a panic value too.
	low := desk.released(medA, desk.cat.potassium.ID, potassium(kvA.criticalLow))
	must(t, low.Critical && low.flag() == "CRITICAL_LOW", "at the critical low limit: %+v", low)

	// Unpaged, the connection holds every row and says so.
	list := func(user string, ward any) []unackNode {
		t.Helper()
		var out unackOut
		s.as(user, unacknowledgedQuery, map[string]any{"w": ward}).decode(t, &out)
		c := out.UnacknowledgedCriticalResults
		must(t, c.TotalCount == len(c.Edges) && !c.PageInfo.HasNextPage && !c.PageInfo.HasPreviousPage,
			"%s: an unpaged list of %d says totalCount %d, pageInfo %+v", user, len(c.Edges), c.TotalCount, c.PageInfo)
		for _, n := range out.nodes() {
			must(t, n.Critical && n.VerifiedAt != "" && n.Item.Test.Code == desk.cat.potassium.Code, "%s: listed %+v", user, n)
		}
		return out.nodes()
	}
	ccu := list("nurse", wards["CCU"])
	must(t, len(ccu) == 1 && ccu[0].ID == crit.ID && ccu[0].Patient.ID == inpatient && ccu[0].Flag == "CRITICAL_HIGH",
		"the CCU's unacknowledged criticals: %+v", ccu)
	notify := ids(ccu[0].Notify, func(x struct{ ID string }) string { return x.ID })
	sort.Strings(notify)
	wantNotify := []string{d.doctor, cardiologist}
	sort.Strings(wantNotify)
	must(t, strings.Join(notify, ",") == strings.Join(wantNotify, ","),
		"notify %v, want the ordering doctor %s and the attending %s", notify, d.doctor, cardiologist)
	medList := list("doctor", wards["MED-A"])
	must(t, len(medList) == 1 && medList[0].ID == low.ID, "MED-A's unacknowledged criticals: %+v", medList)
	// For the MED-A patient the ordering doctor is also the attending: told once.
	must(t, len(medList[0].Notify) == 1 && medList[0].Notify[0].ID == d.doctor, "notify for MED-A: %+v", medList[0].Notify)
	all := list("labtech", nil)
	must(t, len(all) == 2 && all[0].ID == crit.ID && all[1].ID == low.ID, "all unacknowledged, oldest first: %+v", all)

	r := s.as("labtech", acknowledgeMutation, map[string]any{"id": crit.ID})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "FORBIDDEN", "labtech acknowledges: %s", describe(r))
	r = s.as("patient", unacknowledgedQuery, map[string]any{"w": nil})
	must(t, r.hasCode("FORBIDDEN"), "the patient lists criticals: %s", describe(r))
	r = s.as("nurse", acknowledgeMutation, map[string]any{"id": normal.ID})
	must(t, r.hasCode("CONFLICT"), "acknowledge a normal result: %s", describe(r))
	wantBadInput(t, "acknowledge garbage", s.as("nurse", acknowledgeMutation, map[string]any{"id": "bad"}), "id")
	must(t, len(list("nurse", wards["CCU"])) == 1, "refused acknowledgements took it off the list")

	var acked struct{ AcknowledgeCriticalResult labResultOut }
	s.as("nurse", acknowledgeMutation, map[string]any{"id": crit.ID}).decode(t, &acked)
	a := acked.AcknowledgeCriticalResult
	must(t, a.AcknowledgedBy != nil && a.AcknowledgedBy.ID == d.nurse && a.AcknowledgedAt != nil && a.AcknowledgeMinutes != nil,
		"acknowledged: %+v", a)
	must(t, !parseTime(t, "acknowledgedAt", *a.AcknowledgedAt).Before(parseTime(t, "verifiedAt", *a.VerifiedAt)) &&
		*a.AcknowledgeMinutes == wholeMinutes(t, *a.VerifiedAt, *a.AcknowledgedAt),
		"acknowledged at %s, %d minutes after %s", *a.AcknowledgedAt, *a.AcknowledgeMinutes, *a.VerifiedAt)
	must(t, a.Status == "VERIFIED" && a.Critical && len(a.Notify) == 2, "still a verified critical: %+v", a)

	must(t, len(list("nurse", wards["CCU"])) == 0, "acknowledged, still listed for the CCU")
	all = list("doctor", nil)
	must(t, len(all) == 1 && all[0].ID == low.ID, "after acknowledging: %+v", all)

	r = s.as("doctor", acknowledgeMutation, map[string]any{"id": crit.ID})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "CONFLICT", "acknowledge twice: %s", describe(r))
	again := desk.read("doctor", crit.ID)
	must(t, again.AcknowledgedBy != nil && again.AcknowledgedBy.ID == d.nurse && *again.AcknowledgedAt == *a.AcknowledgedAt,
		"a second acknowledgement changed the first: %+v", again)

	// A critical value corrected to a normal one: while the correction
	// waits, the original is still the released value and still waits for
	// a clinician; once verified, nobody is to act on the original any more.
	fix := desk.amend("labtech", low.ID, map[string]any{"numericValue": kvA.normal, "reason": "Drip arm sample"})
	all = list("doctor", nil)
	must(t, len(all) == 1 && all[0].ID == low.ID, "while the correction waits: %+v", all)
	r = s.as("nurse", acknowledgeMutation, map[string]any{"id": fix.ID})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "NOT_FOUND", "acknowledge a correction not yet verified: %s", describe(r))
	fix = desk.verify("labtech2", fix.ID)
	must(t, !fix.Critical && fix.Replaces != nil && fix.Replaces.Status == "CORRECTED", "verified correction: %+v", fix)
	must(t, len(list("doctor", nil)) == 0, "a corrected critical is still listed: %+v", list("doctor", nil))
	for what, id := range map[string]string{"the corrected critical": low.ID, "its normal correction": fix.ID} {
		r = s.as("nurse", acknowledgeMutation, map[string]any{"id": id})
		must(t, len(r.Errors) == 1 && r.Errors[0].code() == "CONFLICT", "acknowledge %s: %s", what, describe(r))
	}
	lowNow := desk.read("doctor", low.ID)
	must(t, lowNow.Status == "CORRECTED" && lowNow.AcknowledgedAt == nil && lowNow.AcknowledgedBy == nil,
		"refused acknowledgement of a corrected critical: %+v", lowNow)

	// A critical value corrected to another one is a new panic value: it
	// waits for its own acknowledgement, told to the same people.
	fix2 := desk.verify("labtech", desk.amend("labtech2", crit.ID, map[string]any{
		"numericValue": desk.cat.potassium.round(kv.criticalHigh + 1), "reason": "Dilution factor"}).ID)
	must(t, fix2.Critical && fix2.flag() == "CRITICAL_HIGH" && fix2.AcknowledgedAt == nil, "critical correction: %+v", fix2)
	ccu = list("nurse", wards["CCU"])
	must(t, len(ccu) == 1 && ccu[0].ID == fix2.ID, "the CCU after a critical correction: %+v", ccu)
	notify = ids(ccu[0].Notify, func(x struct{ ID string }) string { return x.ID })
	sort.Strings(notify)
	must(t, strings.Join(notify, ",") == strings.Join(wantNotify, ","), "notify for the correction %v, want %v", notify, wantNotify)
	r = s.as("doctor", acknowledgeMutation, map[string]any{"id": crit.ID})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "CONFLICT", "acknowledge a corrected, acknowledged critical: %s", describe(r))
	s.as("doctor", acknowledgeMutation, map[string]any{"id": fix2.ID}).decode(t, &acked)
	must(t, acked.AcknowledgeCriticalResult.AcknowledgedBy != nil && acked.AcknowledgeCriticalResult.AcknowledgedBy.ID == d.doctor,
		"acknowledged correction: %+v", acked.AcknowledgeCriticalResult)
	must(t, len(list("nurse", nil)) == 0, "every critical acknowledged or corrected, still listed: %+v", list("nurse", nil))
}

// TestLabConcurrentEntryOneWins: two technicians entering the same item at
// once get one result between them; the other is told CONFLICT.
func TestLabConcurrentEntryOneWins(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	tokens := map[string]string{"labtech": s.token("labtech"), "labtech2": s.token("labtech2")}
	techs := map[string]string{staffID(t, s, "labtech"): "labtech", staffID(t, s, "labtech2"): "labtech2"}
	for round := 0; round < 5; round++ {
		item := desk.received(d.patients[1], desk.cat.potassium.ID)
		results := map[string]response{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for user, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := s.do(tok, enterMutation, map[string]any{"item": item, "in": potassium(4.0 + float64(len(user))/10)})
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
				must(t, winner == "", "round %d: both %s and %s entered a result", round, winner, user)
				winner = user
			case len(r.Errors) != 1 || r.Errors[0].code() != "CONFLICT":
				t.Fatalf("round %d: %s: want CONFLICT, got %s", round, user, describe(r))
			}
		}
		must(t, winner != "", "round %d: neither entry succeeded: %v", round, results)

		var out struct {
			Node struct {
				Status  string
				Results []struct {
					ID, Status string
					EnteredBy  struct{ ID string }
				}
			}
		}
		s.as("labtech", `query($id: ID!) { node(id: $id) { ... on LabOrderItem { status results { id status enteredBy { id } } } } }`,
			map[string]any{"id": item}).decode(t, &out)
		must(t, out.Node.Status == "RESULTED" && len(out.Node.Results) == 1 && techs[out.Node.Results[0].EnteredBy.ID] == winner,
			"round %d: item after the race (winner %s): %+v", round, winner, out.Node)
	}
}
