package lab_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/labpanel"
	"github.com/hmis-dev/hmis/ent/labreferencerange"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/lab"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// seededCatalog gives a fresh database with the starter catalog loaded.
func seededCatalog(t *testing.T) (context.Context, *ent.Client) {
	t.Helper()
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	if err := lab.SeedCatalog(ctx, st.Client); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return ctx, st.Client
}

// catalogState is what seeding may change: every row and link, with the
// time it was last written.
type catalogState struct {
	tests, panels, ranges, panelTests int
	written                           map[string]time.Time
}

func readCatalogState(t *testing.T, ctx context.Context, c *ent.Client) catalogState {
	t.Helper()
	s := catalogState{written: map[string]time.Time{}}
	tests, err := c.LabTest.Query().WithReferenceRanges().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, lt := range tests {
		s.tests++
		s.written[lt.ID] = lt.UpdatedAt
		for _, r := range lt.Edges.ReferenceRanges {
			s.ranges++
			s.written[r.ID] = r.UpdatedAt
		}
	}
	panels, err := c.LabPanel.Query().WithTests().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range panels {
		s.panels++
		s.panelTests += len(p.Edges.Tests)
		s.written[p.ID] = p.UpdatedAt
	}
	return s
}

func (s catalogState) counts() string {
	return fmt.Sprintf("%d tests, %d panels, %d ranges, %d panel members", s.tests, s.panels, s.ranges, s.panelTests)
}

func TestSeedCatalogTwiceChangesNothing(t *testing.T) {
	ctx, c := seededCatalog(t)
	first := readCatalogState(t, ctx, c)
	if first.tests == 0 || first.panels == 0 || first.ranges == 0 {
		t.Fatalf("seeded %s", first.counts())
	}
	if err := lab.SeedCatalog(ctx, c); err != nil {
		t.Fatalf("second seed: %v", err)
	}
	second := readCatalogState(t, ctx, c)
	if second.counts() != first.counts() {
		t.Fatalf("first seed: %s; second: %s", first.counts(), second.counts())
	}
	for id, at := range first.written {
		if !second.written[id].Equal(at) {
			t.Errorf("%s rewritten by the second seed", id)
		}
	}
	t.Logf("catalog: %s", first.counts())
}

func TestSeedCatalogKeepsTheLabsChanges(t *testing.T) {
	ctx, c := seededCatalog(t)
	// The lab reprices and renames Hb, replaces its ranges by one of its
	// own, drops potassium's ranges and the lipid panel.
	hb := c.LabTest.Query().Where(labtest.Code("718-7")).OnlyX(ctx)
	c.LabTest.UpdateOne(hb).SetPrice(123).SetName("Haemoglobin").ExecX(ctx)
	c.LabReferenceRange.Delete().Where(labreferencerange.TestID(hb.ID)).ExecX(ctx)
	own := c.LabReferenceRange.Create().SetTestID(hb.ID).SetLow(11.5).SetHigh(16.5).SaveX(ctx)
	potassium := c.LabTest.Query().Where(labtest.Code("2823-3")).OnlyX(ctx)
	starter := potassium.QueryReferenceRanges().CountX(ctx)
	c.LabReferenceRange.Delete().Where(labreferencerange.TestID(potassium.ID)).ExecX(ctx)
	c.LabPanel.Delete().Where(labpanel.Code("24331-1")).ExecX(ctx)
	tests := c.LabTest.Query().CountX(ctx)

	if err := lab.SeedCatalog(ctx, c); err != nil {
		t.Fatal(err)
	}
	hb = c.LabTest.Query().Where(labtest.Code("718-7")).WithReferenceRanges().OnlyX(ctx)
	if hb.Price != 123 || hb.Name != "Haemoglobin" {
		t.Errorf("the lab's price and name were overwritten: %d %q", hb.Price, hb.Name)
	}
	if r := hb.Edges.ReferenceRanges; len(r) != 1 || r[0].ID != own.ID {
		t.Errorf("the lab's own Hb range was joined or replaced: %d ranges", len(r))
	}
	// Without any range potassium could flag nothing, not even a panic
	// value, so it gets the starter ones back.
	if n := potassium.QueryReferenceRanges().CountX(ctx); n != starter {
		t.Errorf("potassium has %d ranges after reseeding, want the starter %d", n, starter)
	}
	if n := c.LabTest.Query().CountX(ctx); n != tests {
		t.Errorf("%d tests after reseeding, want %d", n, tests)
	}
	lipids, err := c.LabPanel.Query().Where(labpanel.Code("24331-1")).WithTests().Only(ctx)
	if err != nil {
		t.Fatalf("lipid panel not recreated: %v", err)
	}
	if len(lipids.Edges.Tests) != 4 {
		t.Errorf("recreated lipid panel has %d tests, want 4", len(lipids.Edges.Tests))
	}
}

func TestSeedCatalogJoinsTheCallersTransaction(t *testing.T) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	tx, err := st.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.SeedCatalog(ctx, tx.Client()); err != nil {
		t.Fatal(err)
	}
	if n := tx.LabTest.Query().CountX(ctx); n == 0 {
		t.Fatal("nothing seeded inside the transaction")
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if n := st.Client.LabTest.Query().CountX(ctx); n != 0 {
		t.Errorf("%d tests outlived the rolled-back transaction", n)
	}
}

func TestSeedCatalogConcurrently(t *testing.T) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	// Several servers starting at once against one database.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = lab.SeedCatalog(ctx, st.Client)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("seeder %d: %v", i, err)
		}
	}
	got := readCatalogState(t, ctx, st.Client)
	_, alone := seededCatalog(t)
	want := readCatalogState(t, ctx, alone)
	if got.counts() != want.counts() {
		t.Errorf("concurrent seeding left %s, one seeder %s", got.counts(), want.counts())
	}
}

// validLOINC is the check the record applies to a LOINC code it is given.
var validLOINC = ehr.ValidLOINC

func TestLOINCCheckDigit(t *testing.T) {
	cases := map[string]bool{
		"12345-5":    true, // the Users' Guide's worked example
		"2345-7":     true, // glucose, mass concentration
		"718-7":      true, // haemoglobin
		"58410-2":    true, // CBC panel
		"600-7":      true,
		"10-9":       true,
		"2345-6":     false,
		"718-8":      false,
		"58410-3":    false,
		"7182-7":     false, // digits swapped
		"718-77":     false,
		"12345678-0": false,
		"718":        false,
		"A18-7":      false,
		" 718-7":     false,
		"":           false,
	}
	for code, want := range cases {
		if got := validLOINC(code); got != want {
			t.Errorf("validLOINC(%q) = %v, want %v", code, got, want)
		}
	}
}

func TestCatalogLOINCCodes(t *testing.T) {
	ctx, c := seededCatalog(t)
	for _, lt := range c.LabTest.Query().AllX(ctx) {
		if !validLOINC(lt.Code) {
			t.Errorf("test %s (%s): not a valid LOINC code", lt.Code, lt.Name)
		}
	}
	for _, p := range c.LabPanel.Query().AllX(ctx) {
		if !validLOINC(p.Code) {
			t.Errorf("panel %s (%s): not a valid LOINC code", p.Code, p.Name)
		}
	}
}

// catalogIdentifier matches a Go identifier of the catalog's source
// (inPlasma, kindNumeric, ageAdult) that an edit has spliced into a name
// clinicians read.
var catalogIdentifier = regexp.MustCompile(`\b(in|kind|age|dipstick)[A-Z]`)

func TestCatalogNames(t *testing.T) {
	ctx, c := seededCatalog(t)
	for _, lt := range c.LabTest.Query().AllX(ctx) {
		if catalogIdentifier.MatchString(lt.Name) || strings.TrimSpace(lt.Name) != lt.Name || strings.Contains(lt.Name, "  ") {
			t.Errorf("test %s: name %q", lt.Code, lt.Name)
		}
	}
	for _, p := range c.LabPanel.Query().AllX(ctx) {
		if catalogIdentifier.MatchString(p.Name) || strings.TrimSpace(p.Name) != p.Name || strings.Contains(p.Name, "  ") {
			t.Errorf("panel %s: name %q", p.Code, p.Name)
		}
	}
}

// catalogAges are the ages every NUMERIC test must have a range for,
// besides every band boundary: birth, a day old, 10, 40 and 90 years.
var catalogAges = []int{0, 1, 10*365 + 2, 40*365 + 10, 90*365 + 22}

var catalogSexes = []patient.Sex{patient.SexFEMALE, patient.SexMALE, patient.SexOTHER, patient.SexUNKNOWN}

func TestCatalogNumericTests(t *testing.T) {
	ctx, c := seededCatalog(t)
	tests := c.LabTest.Query().Where(labtest.ResultKindEQ(labtest.ResultKindNUMERIC)).WithReferenceRanges().AllX(ctx)
	if len(tests) == 0 {
		t.Fatal("no NUMERIC tests")
	}
	for _, lt := range tests {
		name := lt.Code + " " + lt.Name
		if lt.Unit == nil || *lt.Unit == "" {
			t.Errorf("%s: no unit", name)
		}
		if len(lt.ResultCodes) > 0 || len(lt.NormalCodes) > 0 {
			t.Errorf("%s: NUMERIC with result codes", name)
		}
		ranges := lt.Edges.ReferenceRanges
		seen := map[string]bool{}
		// A gap in a test's age coverage starts at 0 or where some band
		// ends, so checking there (and at the named ages) finds every gap.
		ages := slices.Clone(catalogAges)
		for _, r := range ranges {
			key := fmt.Sprintf("either sex [%d, %s)", r.AgeFromDays, ageTo(r))
			if r.Sex != nil {
				key = fmt.Sprintf("%s [%d, %s)", *r.Sex, r.AgeFromDays, ageTo(r))
			}
			if seen[key] {
				t.Errorf("%s: two ranges for %s, RangeFor could pick either", name, key)
			}
			seen[key] = true
			checkLimits(t, name, r)
			ages = append(ages, r.AgeFromDays)
			if r.AgeToDays != nil {
				ages = append(ages, *r.AgeToDays-1, *r.AgeToDays)
			}
		}
		for _, age := range ages {
			for _, sex := range catalogSexes {
				if lab.RangeFor(ranges, sex, age) == nil {
					t.Errorf("%s: no range for %s aged %d days", name, sex, age)
				}
			}
			// Whoever is warned of a panic value for a woman or a man must
			// be warned of it for a patient of unrecorded sex too.
			neutral := lab.RangeFor(ranges, patient.SexOTHER, age)
			if neutral == nil {
				continue
			}
			for _, sex := range []patient.Sex{patient.SexFEMALE, patient.SexMALE} {
				r := lab.RangeFor(ranges, sex, age)
				if r == nil {
					continue
				}
				if (r.CriticalLow != nil && neutral.CriticalLow == nil) || (r.CriticalHigh != nil && neutral.CriticalHigh == nil) {
					t.Errorf("%s: critical limits for %s aged %d days, none for either sex", name, sex, age)
				}
			}
		}
	}
}

func ageTo(r *ent.LabReferenceRange) string {
	if r.AgeToDays == nil {
		return "open"
	}
	return fmt.Sprint(*r.AgeToDays)
}

func checkLimits(t *testing.T, test string, r *ent.LabReferenceRange) {
	t.Helper()
	band := fmt.Sprintf("%s [%d, %s)", test, r.AgeFromDays, ageTo(r))
	if r.Sex != nil {
		band += " " + string(*r.Sex)
	}
	if r.AgeToDays != nil && *r.AgeToDays <= r.AgeFromDays {
		t.Errorf("%s: empty age band", band)
	}
	if r.Low == nil && r.High == nil {
		t.Errorf("%s: no normal limit", band)
	}
	less := func(what string, a, b *float64) {
		if a != nil && b != nil && !(*a < *b) {
			t.Errorf("%s: %s: %v is not below %v", band, what, *a, *b)
		}
	}
	less("low < high", r.Low, r.High)
	less("critical low < low", r.CriticalLow, r.Low)
	less("high < critical high", r.High, r.CriticalHigh)
	less("critical low < critical high", r.CriticalLow, r.CriticalHigh)
	less("critical low < high", r.CriticalLow, r.High)
	less("low < critical high", r.Low, r.CriticalHigh)
}

func TestCatalogCodedAndTextTests(t *testing.T) {
	ctx, c := seededCatalog(t)
	kinds := map[labtest.ResultKind]int{}
	for _, lt := range c.LabTest.Query().WithReferenceRanges().AllX(ctx) {
		kinds[lt.ResultKind]++
		name := lt.Code + " " + lt.Name
		if lt.Price <= 0 || lt.TurnaroundMinutes <= 0 || !lt.Active {
			t.Errorf("%s: price %d, turnaround %d, active %v", name, lt.Price, lt.TurnaroundMinutes, lt.Active)
		}
		if lt.ShortName == nil || *lt.ShortName == "" {
			t.Errorf("%s: no short name", name)
		}
		if lt.ResultKind == labtest.ResultKindNUMERIC {
			continue
		}
		if lt.Unit != nil || len(lt.Edges.ReferenceRanges) > 0 {
			t.Errorf("%s: %s with a unit or ranges", name, lt.ResultKind)
		}
		if lt.ResultKind == labtest.ResultKindTEXT {
			if len(lt.ResultCodes) > 0 || len(lt.NormalCodes) > 0 {
				t.Errorf("%s: TEXT with result codes", name)
			}
			continue
		}
		if len(lt.ResultCodes) < 2 {
			t.Errorf("%s: CODED with result codes %v", name, lt.ResultCodes)
		}
		if len(lt.NormalCodes) == 0 {
			t.Errorf("%s: CODED without normal codes", name)
		}
		seen := map[string]bool{}
		for _, code := range lt.ResultCodes {
			if seen[code] {
				t.Errorf("%s: %s listed twice", name, code)
			}
			seen[code] = true
		}
		for _, code := range lt.NormalCodes {
			if !seen[code] {
				t.Errorf("%s: normal code %s is not a result code", name, code)
			}
		}
		if len(lt.NormalCodes) == len(lt.ResultCodes) {
			t.Errorf("%s: every answer is normal", name)
		}
	}
	for _, kind := range []labtest.ResultKind{labtest.ResultKindNUMERIC, labtest.ResultKindCODED, labtest.ResultKindTEXT} {
		if kinds[kind] == 0 {
			t.Errorf("no %s test", kind)
		}
	}
}

func TestCatalogPanels(t *testing.T) {
	ctx, c := seededCatalog(t)
	panels := c.LabPanel.Query().WithTests().AllX(ctx)
	for _, p := range panels {
		if len(p.Edges.Tests) < 2 {
			t.Errorf("panel %s: %d tests", p.Code, len(p.Edges.Tests))
		}
		var sum int64
		for _, lt := range p.Edges.Tests {
			sum += lt.Price
		}
		if p.Price <= 0 || p.Price > sum {
			t.Errorf("panel %s: price %d, its tests %d apart", p.Code, p.Price, sum)
		}
	}

	// What the catalog promises: the common panels with their usual
	// tests, by LOINC code, and the usual standalone tests.
	want := map[string][]string{
		"58410-2": {"718-7", "4544-3", "6690-2", "777-3", "789-8", "787-2"},                            // CBC
		"24321-2": {"2951-2", "2823-3", "2075-0", "2028-9", "22664-7", "14682-9", "14749-6", "2000-8"}, // basic metabolic
		"24325-3": {"1742-6", "1920-8", "6768-6", "14631-6", "1751-7", "2885-2"},                       // liver
		"24331-1": {"14647-2", "14646-4", "39469-2", "14927-8"},                                        // lipids
		"24357-6": {"5811-5", "20454-5", "25428-4", "2514-8", "5794-3", "5802-4", "5799-2"},            // urinalysis
	}
	for code, tests := range want {
		i := slices.IndexFunc(panels, func(p *ent.LabPanel) bool { return p.Code == code })
		if i < 0 {
			t.Errorf("no panel %s", code)
			continue
		}
		have := map[string]bool{}
		for _, lt := range panels[i].Edges.Tests {
			have[lt.Code] = true
		}
		for _, tc := range tests {
			if !have[tc] {
				t.Errorf("panel %s lacks %s", code, tc)
			}
		}
	}
	for _, code := range []string{"4548-4", "89579-7", "1988-5"} { // HbA1c, hs troponin I, CRP
		if !c.LabTest.Query().Where(labtest.Code(code)).ExistX(ctx) {
			t.Errorf("no test %s", code)
		}
	}
}

// The panic limits a catalog is expected to carry, checked through the
// same functions that flag real results, for an adult of each sex.
func TestCatalogCriticalLimits(t *testing.T) {
	ctx, c := seededCatalog(t)
	adult := 40*365 + 10
	cases := []struct {
		code              string
		critLow, critHigh float64
		justInside        []float64
	}{
		{code: "2823-3", critLow: 2.8, critHigh: 6.2, justInside: []float64{2.9, 6.1}},
		{code: "2951-2", critLow: 120, critHigh: 160, justInside: []float64{121, 159}},
		{code: "14749-6", critLow: 2.5, critHigh: 25, justInside: []float64{2.6, 24.9}},
		{code: "718-7", critLow: 7, critHigh: 20, justInside: []float64{7.1, 19.9}},
		{code: "777-3", critLow: 20, critHigh: 1000, justInside: []float64{21, 999}},
		{code: "6690-2", critLow: 2, critHigh: 30, justInside: []float64{2.1, 29.9}},
	}
	for _, tc := range cases {
		lt := c.LabTest.Query().Where(labtest.Code(tc.code)).WithReferenceRanges().OnlyX(ctx)
		for _, sex := range catalogSexes {
			r := lab.RangeFor(lt.Edges.ReferenceRanges, sex, adult)
			if f := lab.FlagNumeric(r, tc.critLow); !lab.IsCritical(f) {
				t.Errorf("%s %s: %v flagged %s, want critical", tc.code, sex, tc.critLow, flagString(f))
			}
			if f := lab.FlagNumeric(r, tc.critHigh); !lab.IsCritical(f) {
				t.Errorf("%s %s: %v flagged %s, want critical", tc.code, sex, tc.critHigh, flagString(f))
			}
			for _, v := range tc.justInside {
				if f := lab.FlagNumeric(r, v); f == nil || lab.IsCritical(f) {
					t.Errorf("%s %s: %v flagged %s, want a non-critical flag", tc.code, sex, v, flagString(f))
				}
			}
		}
	}
	for _, code := range []string{"89579-7", "2000-8", "6301-6"} { // troponin, calcium, INR
		lt := c.LabTest.Query().Where(labtest.Code(code)).WithReferenceRanges().OnlyX(ctx)
		for _, sex := range catalogSexes {
			r := lab.RangeFor(lt.Edges.ReferenceRanges, sex, adult)
			if r == nil || r.CriticalHigh == nil {
				t.Errorf("%s %s: no critical high limit", code, sex)
			}
		}
	}
}
