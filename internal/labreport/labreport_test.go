package labreport

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/laborder"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/patient"
)

func ptr[T any](v T) *T { return &v }

func TestLabReportFlagCodes(t *testing.T) {
	cases := map[labresult.Flag]string{
		labresult.FlagNORMAL: "", labresult.FlagHIGH: "H", labresult.FlagLOW: "L",
		labresult.FlagCRITICAL_HIGH: "HH", labresult.FlagCRITICAL_LOW: "LL", labresult.FlagABNORMAL: "A",
	}
	for f, want := range cases {
		if got := flagCode(&f); got != want {
			t.Errorf("flagCode(%s) = %q, want %q", f, got, want)
		}
	}
	if got := flagCode(nil); got != "" {
		t.Errorf("no flag printed %q", got)
	}
}

func TestLabReportValuesUseTheTestsDecimalsAndUnit(t *testing.T) {
	k := &ent.LabTest{Decimals: 1, Unit: ptr("mmol/L")}
	crea := &ent.LabTest{Decimals: 0, Unit: ptr("µmol/L")}
	coded := &ent.LabTest{ResultKind: labtest.ResultKindCODED, NormalCodes: []string{"NEGATIVE"}}
	cases := []struct {
		test        *ent.LabTest
		r           *ent.LabResult
		value, rng  string
		description string
	}{
		{k, &ent.LabResult{NumericValue: ptr(4.25), ReferenceLow: ptr(3.5), ReferenceHigh: ptr(5.1)}, "4.2 mmol/L", "3.5–5.1", "rounded to one decimal, the test's unit"},
		{k, &ent.LabResult{NumericValue: ptr(4.0), Unit: ptr("mEq/L"), ReferenceHigh: ptr(5.1)}, "4.0 mEq/L", "<= 5.1", "the result's own unit wins"},
		{crea, &ent.LabResult{NumericValue: ptr(182.4), ReferenceLow: ptr(62.0)}, "182 µmol/L", ">= 62", "no decimals"},
		{crea, &ent.LabResult{NumericValue: ptr(-0.3)}, "0 µmol/L", "", "no negative zero"},
		{coded, &ent.LabResult{CodedValue: ptr("1+")}, "1+", "NEGATIVE", "coded: the normal answers"},
		{nil, &ent.LabResult{TextValue: ptr("No growth after 48 h")}, "No growth after 48 h", "", "free text"},
		{nil, &ent.LabResult{}, "—", "", "nothing to print"},
	}
	for _, c := range cases {
		if got := resultValue(c.test, c.r); got != c.value {
			t.Errorf("%s: value %q, want %q", c.description, got, c.value)
		}
		if got := referenceRange(c.test, c.r); got != c.rng {
			t.Errorf("%s: range %q, want %q", c.description, got, c.rng)
		}
	}
}

func TestLabReportFoldKeepsNamesReadable(t *testing.T) {
	for in, want := range map[string]string{
		"Müller µmol/L – Zoë": "Müller µmol/L – Zoë", // all in cp1252
		"Dvořák":              "Dvorák",
		"Łukasz Đorđević":     "Lukasz Dordevic",
		"Ǆ":                   "DŽ",
		"患者":                  "??",
	} {
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLabReportPrintsUCUMUnitsForReaders(t *testing.T) {
	for ucum, want := range map[string]string{
		"umol/L":  "µmol/L",
		"µmol/L":  "µmol/L",
		"mmol/L":  "mmol/L",
		"U/L":     "U/L",
		"ug/L":    "µg/L",
		"10*3/uL": "10³/µL",
		"10*6/uL": "10^6/µL",
		"{INR}":   "INR",
		"[pH]":    "pH",
		"1":       "",
		"%":       "%",
		"mL/min":  "mL/min",
	} {
		if got := printedUnit(ucum); got != want {
			t.Errorf("printedUnit(%q) = %q, want %q", ucum, got, want)
		}
	}
}

func TestLabReportPendingItemsSayWhereTheyStand(t *testing.T) {
	cases := map[string]*ent.LabOrderItem{
		"Pending — RECEIVED":          {Status: laborderitem.StatusRECEIVED},
		"Pending — ORDERED":           {Status: laborderitem.StatusORDERED},
		"Cancelled: Duplicate":        {Status: laborderitem.StatusCANCELLED, CancelReason: ptr("Duplicate")},
		"Cancelled":                   {Status: laborderitem.StatusCANCELLED},
		"Result not available":        {Status: laborderitem.StatusVERIFIED},
		"Pending — specimen rejected": {Status: laborderitem.StatusREJECTED},
	}
	for want, it := range cases {
		if got := pending(it); !strings.HasPrefix(got, want) {
			t.Errorf("pending(%s) = %q, want %q", it.Status, got, want)
		}
	}
}

// bigOrder is an order long enough to run over several pages, with every
// kind of line a report prints and text outside ASCII.
func bigOrder() *ent.LabOrder {
	at := time.Date(2025, 3, 3, 6, 30, 0, 0, time.UTC)
	verifier := &ent.Staff{GivenName: "Jürgen", FamilyName: "Müller"}
	spec := &ent.LabSpecimen{AccessionNumber: "A25-000417", SpecimenType: labspecimen.SpecimenTypeWHOLE_BLOOD,
		Status: labspecimen.StatusRECEIVED, CollectedAt: at, ReceivedAt: ptr(at.Add(time.Hour))}
	spec.Edges.CollectedBy = &ent.Staff{GivenName: "Tomas", FamilyName: "Lindqvist"}
	rejected := &ent.LabSpecimen{AccessionNumber: "A25-000416", SpecimenType: labspecimen.SpecimenTypeSERUM,
		Status: labspecimen.StatusREJECTED, CollectedAt: at, RejectionReason: ptr(labspecimen.RejectionReasonHAEMOLYSED),
		RejectionNote: ptr("Grossly haemolysed")}
	o := &ent.LabOrder{ID: "lbo_01JTESTTESTTESTTESTTESTTES", OrderedAt: at, Priority: laborder.PrioritySTAT,
		ClinicalNotes: ptr(strings.Repeat("Suspected hyperkalaemia; on spironolactone. ", 8))}
	o.Edges.Patient = &ent.Patient{Mrn: "100000009", GivenName: "Zoë", FamilyName: "Müller-Łukasz",
		BirthDate: time.Date(1968, 3, 14, 0, 0, 0, 0, time.UTC), Sex: patient.SexFEMALE}
	o.Edges.OrderedBy = &ent.Staff{GivenName: "Grace", FamilyName: "Mwangi"}
	o.Edges.Specimens = []*ent.LabSpecimen{rejected, spec}
	for i := range 40 {
		test := &ent.LabTest{Code: fmt.Sprintf("%d-%d", 1000+i, i%10), Name: fmt.Sprintf("Test %d [Moles/volume] in Serum or Plasma", i),
			Decimals: i % 3, Unit: ptr("µmol/L")}
		it := &ent.LabOrderItem{Status: laborderitem.StatusVERIFIED}
		it.Edges.Test, it.Edges.Specimen = test, spec
		r := &ent.LabResult{ID: fmt.Sprintf("r%d", i), Status: labresult.StatusVERIFIED, NumericValue: ptr(float64(i) * 1.234),
			ReferenceLow: ptr(1.0), ReferenceHigh: ptr(20.0), Flag: ptr(labresult.FlagHIGH), VerifiedAt: ptr(at.Add(2 * time.Hour))}
		r.Edges.VerifiedBy = verifier
		switch i % 5 {
		case 1:
			old := &ent.LabResult{ID: fmt.Sprintf("old%d", i), Status: labresult.StatusCORRECTED, NumericValue: ptr(99.9),
				VerifiedAt: ptr(at.Add(time.Hour))}
			old.Edges.VerifiedBy = verifier
			r.ReplacesID, r.AmendReason = &old.ID, ptr("Wrong sample run")
			it.Status = laborderitem.StatusAMENDED
			it.Edges.Results = []*ent.LabResult{old, r}
		case 2:
			it.Status, it.CancelReason = laborderitem.StatusCANCELLED, ptr("Not needed")
		case 3:
			r.TextValue, r.NumericValue = ptr(strings.Repeat("Long free-text finding. ", 20)), nil
			it.Edges.Results = []*ent.LabResult{r}
		default:
			r.Comment = ptr("Repeated and confirmed")
			it.Edges.Results = []*ent.LabResult{r}
		}
		o.Edges.Items = append(o.Edges.Items, it)
	}
	return o
}

func TestLabReportRunsOverPages(t *testing.T) {
	var buf bytes.Buffer
	loc, err := time.LoadLocation("Africa/Nairobi")
	if err != nil {
		t.Fatal(err)
	}
	if err := render(&buf, bigOrder(), "", loc, time.Date(2025, 3, 4, 8, 0, 0, 0, time.UTC)); err != nil {
		t.Fatalf("render: %v", err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) || bytes.Count(buf.Bytes(), []byte("/Type /Page\n")) < 3 {
		t.Fatalf("expected a PDF of several pages, got %d bytes", buf.Len())
	}
}

func TestLabReportOfAnEmptyOrder(t *testing.T) {
	o := &ent.LabOrder{ID: "lbo_x", OrderedAt: time.Now(), Priority: laborder.PriorityROUTINE}
	o.Edges.Patient = &ent.Patient{Mrn: "1", GivenName: "A", FamilyName: "B"}
	var buf bytes.Buffer
	if err := render(&buf, o, "", time.UTC, time.Now()); err != nil {
		t.Fatalf("render: %v", err)
	}
}
