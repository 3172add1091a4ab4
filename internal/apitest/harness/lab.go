package harness

import (
	"context"
	"math"
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

// LabRange is a reference range as the API reports it.
type LabRange struct {
	Sex                                  *string
	AgeFromDays                          int
	AgeToDays                            *int
	Low, High, CriticalLow, CriticalHigh *float64
}

// LabTest is a catalog test as the API reports it.
type LabTest struct {
	ID, Code, Name, SpecimenType, ResultKind string
	Unit                                     *string
	Decimals                                 int
	ResultCodes, NormalCodes                 []string
	ReferenceRanges                          []LabRange
}

// Round is what the lab reports a value as: at the test's precision.
func (lt LabTest) Round(x float64) float64 {
	scale := math.Pow(10, float64(lt.Decimals))
	return math.Round(x*scale) / scale
}

// RangeFor is the range a result of a patient of sex, born on birth, is to
// be judged by: among the ranges whose age band holds the patient, the one
// for their sex, else the one for either. A catalog that leaves more than
// one fails the test rather than have it guess the server's tie-break.
func (lt LabTest) RangeFor(t testing.TB, sex string, birth time.Time) LabRange {
	t.Helper()
	age := int(time.Since(birth).Hours() / 24)
	var own, either []LabRange
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

// LabCatalog is the part of the catalog the tests use.
type LabCatalog struct {
	Potassium, Haemoglobin, UrineProtein LabTest
	// Panel holds potassium among its tests.
	Panel struct {
		ID, Code string
		Tests    []struct{ ID string }
	}
}

const labTestFields = `id code name specimenType resultKind unit decimals resultCodes normalCodes
  referenceRanges { sex ageFromDays ageToDays low high criticalLow criticalHigh }`

// EnsureLabCatalog makes sure the catalog has potassium, haemoglobin (with a
// range per sex), a coded urine protein and a metabolic panel, and
// returns them as a doctor reads them.
func EnsureLabCatalog(t testing.TB, s *Server) LabCatalog {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	c := s.App.Store.Client
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
		K, Hb, Up struct{ LabTest }
		Panel     struct {
			ID, Code string
			Tests    []struct{ ID string }
		}
	}
	s.As("doctor", `query($k: ID!, $hb: ID!, $up: ID!, $panel: ID!) {
	  k: node(id: $k) { ... on LabTest { `+labTestFields+` } }
	  hb: node(id: $hb) { ... on LabTest { `+labTestFields+` } }
	  up: node(id: $up) { ... on LabTest { `+labTestFields+` } }
	  panel: node(id: $panel) { ... on LabPanel { id code tests { id } } }
	}`, map[string]any{"k": k, "hb": hb, "up": up, "panel": panel.ID}).Decode(t, &out)
	cat := LabCatalog{Potassium: out.K.LabTest, Haemoglobin: out.Hb.LabTest, UrineProtein: out.Up.LabTest}
	cat.Panel.ID, cat.Panel.Code, cat.Panel.Tests = out.Panel.ID, out.Panel.Code, out.Panel.Tests
	Must(t, cat.Potassium.ResultKind == "NUMERIC" && cat.Haemoglobin.ResultKind == "NUMERIC" && cat.UrineProtein.ResultKind == "CODED",
		"catalog kinds: %+v", cat)
	inPanel := false
	for _, pt := range cat.Panel.Tests {
		inPanel = inPanel || pt.ID == k
	}
	Must(t, inPanel, "the metabolic panel lacks potassium: %+v", cat.Panel)
	Must(t, cat.UrineProtein.SpecimenType != cat.Potassium.SpecimenType, "urine protein and potassium share a specimen type: %+v", cat)
	return cat
}

// Values chosen from the potassium range an adult is judged by.
type PotassiumValues struct{ Normal, High, CriticalHigh, CriticalLow float64 }

// PotassiumFor is the potassium range a patient is judged by, and values
// that fall normal, high and critical under it.
func (c LabCatalog) PotassiumFor(t testing.TB, sex string, birth time.Time) (LabRange, PotassiumValues) {
	t.Helper()
	k := c.Potassium
	r := k.RangeFor(t, sex, birth)
	Must(t, r.Low != nil && r.High != nil && r.CriticalLow != nil && r.CriticalHigh != nil, "potassium range %+v", r)
	v := PotassiumValues{
		Normal:       k.Round((*r.Low + *r.High) / 2),
		High:         k.Round((*r.High + *r.CriticalHigh) / 2),
		CriticalHigh: k.Round(*r.CriticalHigh + 0.5),
		CriticalLow:  *r.CriticalLow, // a panic limit is itself a panic value
	}
	Must(t, v.High > *r.High && v.High < *r.CriticalHigh, "no HIGH value between %v and %v at %d decimals", *r.High, *r.CriticalHigh, k.Decimals)
	return r, v
}

// Documents a frontend sends.
const (
	LabOrderMutation = `mutation($in: OrderLabTestsInput!) {
  orderLabTests(input: $in) { id priority clinicalNotes orderedAt patient { id } orderedBy { id }
    items { id status orderedAt test { id code specimenType } panel { id } } }
}`
	LabCollectMutation = `mutation($in: CollectLabSpecimenInput!) {
  collectLabSpecimen(input: $in) { id accessionNumber status specimenType collectedAt collectedBy { id } patient { id } items { id status } }
}`
	LabReceiveMutation = `mutation($id: ID!) {
  receiveLabSpecimen(id: $id) { id accessionNumber status receivedAt receivedBy { id } items { id status } }
}`
	LabResultFields = `id status numericValue codedValue textValue unit flag referenceLow referenceHigh criticalLow criticalHigh
  critical comment enteredAt verifiedAt amendReason acknowledgedAt acknowledgeMinutes
  enteredBy { id } verifiedBy { id } acknowledgedBy { id } patient { id }
  replaces { id status } replacedBy { id }
  item { id status orderedAt verifiedAt turnaroundMinutes test { id code } }`
	LabEnterMutation       = `mutation($item: ID!, $in: EnterLabResultInput!) { enterLabResult(itemId: $item, input: $in) { ` + LabResultFields + ` } }`
	LabVerifyMutation      = `mutation($id: ID!) { verifyLabResult(id: $id) { ` + LabResultFields + ` } }`
	LabAmendMutation       = `mutation($id: ID!, $in: AmendLabResultInput!) { amendLabResult(id: $id, input: $in) { ` + LabResultFields + ` } }`
	LabAcknowledgeMutation = `mutation($id: ID!) { acknowledgeCriticalResult(id: $id) { ` + LabResultFields + ` notify { id } } }`
	LabResultQuery         = `query($id: ID!) { node(id: $id) { ... on LabResult { ` + LabResultFields + ` } } }`
)

// LabOrder is what LabOrderMutation returns.
type LabOrder struct {
	ID, Priority, OrderedAt string
	ClinicalNotes           *string
	Patient, OrderedBy      struct{ ID string }
	Items                   []struct {
		ID, Status, OrderedAt string
		Test                  struct{ ID, Code, SpecimenType string }
		Panel                 *struct{ ID string }
	}
}

// Item returns the order's item for testID.
func (o LabOrder) Item(t testing.TB, testID string) string {
	t.Helper()
	for _, it := range o.Items {
		if it.Test.ID == testID {
			return it.ID
		}
	}
	t.Fatalf("order %s has no item for test %s: %+v", o.ID, testID, o.Items)
	return ""
}

// LabSpecimen is what the specimen mutations return.
type LabSpecimen struct {
	ID, AccessionNumber, Status, SpecimenType, CollectedAt string
	ReceivedAt                                             *string
	CollectedBy, ReceivedBy, Patient                       *struct{ ID string }
	RejectionReason, RejectionNote                         *string
	Items                                                  []struct{ ID, Status string }
}

// LabResult is a result with LabResultFields.
type LabResult struct {
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

// FlagOrNone is the flag for a failure message, "<none>" when unset.
func (r LabResult) FlagOrNone() string {
	if r.Flag == nil {
		return "<none>"
	}
	return *r.Flag
}

// JudgedBy reports whether r carries rng as the range it was flagged by.
func (r LabResult) JudgedBy(rng LabRange) bool {
	eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return eq(r.ReferenceLow, rng.Low) && eq(r.ReferenceHigh, rng.High) &&
		eq(r.CriticalLow, rng.CriticalLow) && eq(r.CriticalHigh, rng.CriticalHigh)
}

// LabDesk runs the lab's steps through the API, each as the user who does
// it on a ward: the doctor orders, the nurse collects, labtech receives and
// enters, labtech2 verifies.
type LabDesk struct {
	T   testing.TB
	S   *Server
	Cat LabCatalog
}

// NewLabDesk makes sure the catalog has what the desk orders (see
// EnsureLabCatalog).
func NewLabDesk(t testing.TB, s *Server) *LabDesk {
	return &LabDesk{T: t, S: s, Cat: EnsureLabCatalog(t, s)}
}

// Order orders tests and panels for a patient as the doctor; extra adds
// input fields (priority, clinicalNotes, encounterId).
func (l *LabDesk) Order(patientID string, testIDs, panelIDs []string, extra map[string]any) LabOrder {
	l.T.Helper()
	in := map[string]any{"patientId": patientID, "testIds": testIDs, "panelIds": panelIDs}
	for k, v := range extra {
		in[k] = v
	}
	var out struct{ OrderLabTests LabOrder }
	l.S.As("doctor", LabOrderMutation, map[string]any{"in": in}).Decode(l.T, &out)
	return out.OrderLabTests
}

// Collect collects one specimen for the items as user.
func (l *LabDesk) Collect(user string, itemIDs ...string) LabSpecimen {
	l.T.Helper()
	var out struct{ CollectLabSpecimen LabSpecimen }
	l.S.As(user, LabCollectMutation, map[string]any{"in": map[string]any{"itemIds": itemIDs}}).Decode(l.T, &out)
	return out.CollectLabSpecimen
}

// Receive receives a specimen in the lab as user.
func (l *LabDesk) Receive(user, specimenID string) LabSpecimen {
	l.T.Helper()
	var out struct{ ReceiveLabSpecimen LabSpecimen }
	l.S.As(user, LabReceiveMutation, map[string]any{"id": specimenID}).Decode(l.T, &out)
	return out.ReceiveLabSpecimen
}

// Enter enters a result for an item as user.
func (l *LabDesk) Enter(user, itemID string, in map[string]any) LabResult {
	l.T.Helper()
	var out struct{ EnterLabResult LabResult }
	l.S.As(user, LabEnterMutation, map[string]any{"item": itemID, "in": in}).Decode(l.T, &out)
	return out.EnterLabResult
}

// Verify verifies a result as user, releasing it.
func (l *LabDesk) Verify(user, resultID string) LabResult {
	l.T.Helper()
	var out struct{ VerifyLabResult LabResult }
	l.S.As(user, LabVerifyMutation, map[string]any{"id": resultID}).Decode(l.T, &out)
	return out.VerifyLabResult
}

// Amend corrects a verified result as user.
func (l *LabDesk) Amend(user, resultID string, in map[string]any) LabResult {
	l.T.Helper()
	var out struct{ AmendLabResult LabResult }
	l.S.As(user, LabAmendMutation, map[string]any{"id": resultID, "in": in}).Decode(l.T, &out)
	return out.AmendLabResult
}

// Read returns a result as user sees it.
func (l *LabDesk) Read(user, resultID string) LabResult {
	l.T.Helper()
	var out struct{ Node LabResult }
	l.S.As(user, LabResultQuery, map[string]any{"id": resultID}).Decode(l.T, &out)
	return out.Node
}

// Received orders testID for the patient and takes it to RECEIVED,
// returning the item.
func (l *LabDesk) Received(patientID, testID string) string {
	l.T.Helper()
	o := l.Order(patientID, []string{testID}, nil, nil)
	item := o.Item(l.T, testID)
	sp := l.Collect("nurse", item)
	l.Receive("labtech", sp.ID)
	return item
}

// Entered takes one test from order to an ENTERED result of value.
func (l *LabDesk) Entered(patientID, testID string, value map[string]any) LabResult {
	l.T.Helper()
	return l.Enter("labtech", l.Received(patientID, testID), value)
}

// Released takes one test from order to a verified result of value.
func (l *LabDesk) Released(patientID, testID string, value map[string]any) LabResult {
	l.T.Helper()
	return l.Verify("labtech2", l.Entered(patientID, testID, value).ID)
}

// Potassium is a potassium value to enter.
func Potassium(v float64) map[string]any { return map[string]any{"numericValue": v} }

// Probe releases a potassium of value for patientID, for AwaitLive.
func (l *LabDesk) Probe(patientID string, value float64) func() string {
	return func() string { return l.Released(patientID, l.Cat.Potassium.ID, Potassium(value)).ID }
}
