package insurance

import (
	"math/big"
	"math/rand"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/claimline"
)

func d(y, m, day int) time.Time { return time.Date(y, time.Month(m), day, 0, 0, 0, 0, time.UTC) }

func money(v int64) *int64 { return &v }

func line(code string, cat claimline.Category, amount int64) CoverageLineInput {
	return CoverageLineInput{ServiceCode: code, Category: cat, ServiceDate: d(2026, 3, 10), Quantity: 1, Amount: amount}
}

// nhif is a primary plan as a national scheme writes it: consultations and
// labs at 80 %, drugs at 100 % with a 50.00 co-payment per line, MRI only
// with a pre-authorization, cosmetic procedures excluded, 1 000.00 a year.
func nhif() Coverage {
	return Coverage{
		PolicyID: "ins_A", PayerID: "pyr_NHIF", Priority: 1, ValidFrom: d(2026, 1, 1), Linked: true, PlanYearStartMonth: 1,
		Versions: []Terms{{
			EffectiveFrom: d(2026, 1, 1), AnnualLimit: money(100000),
			Rules: []Rule{
				{Category: "CONSULTATION", CoveredPercent: 80},
				{Category: "LAB", CoveredPercent: 80},
				{Category: "DRUG", CoveredPercent: 100, LineCopay: 5000},
				{Category: "PROCEDURE", CoveredPercent: 90},
				{Category: "PROCEDURE", ServiceCode: "MRI", CoveredPercent: 100, RequiresPreauth: true},
				{Category: "PROCEDURE", ServiceCode: "COSMETIC", Excluded: true},
			},
		}},
	}
}

// employer pays what the primary left, at 50 %, with no limit.
func employer() Coverage {
	return Coverage{
		PolicyID: "ins_B", PayerID: "pyr_EMP", Priority: 2, ValidFrom: d(2025, 1, 1), Linked: true, PlanYearStartMonth: 7,
		Versions: []Terms{{EffectiveFrom: d(2025, 1, 1), Rules: []Rule{
			{Category: "CONSULTATION", CoveredPercent: 50},
			{Category: "LAB", CoveredPercent: 50},
			{Category: "DRUG", CoveredPercent: 50},
		}}},
	}
}

type want struct {
	payer, patient int64
	reasons        []CoverageReason
}

func TestSplitCases(t *testing.T) {
	withUsed := nhif()
	withUsed.Used = map[time.Time]int64{d(2026, 1, 1): 95000}
	withVisitCopay := nhif()
	withVisitCopay.Versions[0].VisitCopay = 2000
	withMRIAuth := nhif()
	withMRIAuth.PreAuths = []PreAuth{{ID: "pau_1", Category: "PROCEDURE", ServiceCode: "MRI", ValidFrom: d(2026, 3, 1), ValidTo: d(2026, 3, 31), Amount: money(30000)}}
	expiredAuth := nhif()
	expiredAuth.PreAuths = []PreAuth{{ID: "pau_1", Category: "PROCEDURE", ServiceCode: "MRI", ValidFrom: d(2026, 1, 1), ValidTo: d(2026, 2, 28)}}
	lapsed := nhif()
	lapsed.ValidTo = timePtr(d(2026, 2, 28))
	unlinked := nhif()
	unlinked.Linked = false
	newTerms := nhif()
	newTerms.Versions = append(newTerms.Versions, Terms{EffectiveFrom: d(2026, 3, 1), Rules: []Rule{{Category: "CONSULTATION", CoveredPercent: 60}}})
	oddCents := nhif()
	oddCents.Versions[0].Rules[0].CoveredPercent = 33

	cases := []struct {
		name      string
		coverages []Coverage
		lines     []CoverageLineInput
		want      []want
	}{
		{"covered percentage", []Coverage{nhif()},
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000)},
			[]want{{8000, 2000, []CoverageReason{ReasonCovered}}}},
		{"no policy: the patient pays all", nil,
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000)},
			[]want{{0, 10000, []CoverageReason{ReasonNoPolicy}}}},
		{"category not in the plan", []Coverage{nhif()},
			[]CoverageLineInput{line("BED-GEN", "BED_DAY", 30000)},
			[]want{{0, 30000, []CoverageReason{ReasonNotCovered}}}},
		{"excluded service, though its category is covered", []Coverage{nhif()},
			[]CoverageLineInput{line("COSMETIC", "PROCEDURE", 50000), line("SUTURE", "PROCEDURE", 10000)},
			[]want{{0, 50000, []CoverageReason{ReasonNotCovered}}, {9000, 1000, []CoverageReason{ReasonCovered}}}},
		{"pre-authorization missing", []Coverage{nhif()},
			[]CoverageLineInput{line("MRI", "PROCEDURE", 40000)},
			[]want{{0, 40000, []CoverageReason{ReasonPreauthMissing}}}},
		{"pre-authorization expired before the service", []Coverage{expiredAuth},
			[]CoverageLineInput{line("MRI", "PROCEDURE", 40000)},
			[]want{{0, 40000, []CoverageReason{ReasonPreauthMissing}}}},
		{"pre-authorization caps the payer, then is used up", []Coverage{withMRIAuth},
			[]CoverageLineInput{line("MRI", "PROCEDURE", 40000), line("MRI", "PROCEDURE", 40000)},
			[]want{{30000, 10000, []CoverageReason{ReasonCovered}}, {0, 40000, []CoverageReason{ReasonPreauthMissing}}}},
		{"co-payment per line", []Coverage{nhif()},
			[]CoverageLineInput{line("AMOX500", "DRUG", 12000), line("PCM500", "DRUG", 3000)},
			[]want{{7000, 5000, []CoverageReason{ReasonCovered}}, {0, 3000, []CoverageReason{ReasonCovered}}}},
		{"co-payment per visit, charged once", []Coverage{withVisitCopay},
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000), line("FBC", "LAB", 5000)},
			[]want{{6400, 3600, []CoverageReason{ReasonCovered}}, {4000, 1000, []CoverageReason{ReasonCovered}}}},
		{"annual limit exhausted mid-invoice", []Coverage{withUsed},
			[]CoverageLineInput{line("FBC", "LAB", 5000), line("CONS-GEN", "CONSULTATION", 10000), line("UECS", "LAB", 4000)},
			[]want{
				{4000, 1000, []CoverageReason{ReasonCovered}},
				{1000, 9000, []CoverageReason{ReasonLimitExhausted}},
				{0, 4000, []CoverageReason{ReasonLimitExhausted}},
			}},
		{"two policies: primary, then secondary from what it left", []Coverage{employer(), nhif()},
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000), line("BED-GEN", "BED_DAY", 30000)},
			[]want{
				{9000, 1000, []CoverageReason{ReasonCovered, ReasonCovered}},
				{0, 30000, []CoverageReason{ReasonNotCovered, ReasonNotCovered}},
			}},
		{"secondary pays what the primary's limit no longer does", []Coverage{withUsed, employer()},
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000)},
			[]want{{5000 + 2500, 2500, []CoverageReason{ReasonLimitExhausted, ReasonCovered}}}},
		{"policy lapsed before the service date", []Coverage{lapsed},
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000)},
			[]want{{0, 10000, []CoverageReason{ReasonPolicyNotInForce}}}},
		{"policy with a free-text payer only", []Coverage{unlinked},
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000)},
			[]want{{0, 10000, []CoverageReason{ReasonPolicyNotInForce}}}},
		{"the version in force on the service date", []Coverage{newTerms},
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000), {ServiceCode: "CONS-GEN", Category: "CONSULTATION", ServiceDate: d(2026, 2, 1), Quantity: 1, Amount: 10000}},
			[]want{{6000, 4000, []CoverageReason{ReasonCovered}}, {8000, 2000, []CoverageReason{ReasonCovered}}}},
		{"rounding: the odd minor unit falls to the patient", []Coverage{oddCents},
			[]CoverageLineInput{line("CONS-GEN", "CONSULTATION", 1001)},
			[]want{{330, 671, []CoverageReason{ReasonCovered}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Split(tc.coverages, tc.lines)
			if len(got.Lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d", len(got.Lines), len(tc.want))
			}
			var payer, patient int64
			for i, w := range tc.want {
				g := got.Lines[i]
				if g.PayerShare != w.payer || g.PatientShare != w.patient {
					t.Errorf("line %d: payer %d patient %d, want %d and %d (%+v)", i, g.PayerShare, g.PatientShare, w.payer, w.patient, g.Steps)
				}
				if len(g.Steps) != len(w.reasons) {
					t.Fatalf("line %d: %d steps, want %d", i, len(g.Steps), len(w.reasons))
				}
				for j, r := range w.reasons {
					if g.Steps[j].Reason != r {
						t.Errorf("line %d step %d: %s (%s), want %s", i, j, g.Steps[j].Reason, g.Steps[j].Detail, r)
					}
				}
				payer += g.PayerShare
				patient += g.PatientShare
			}
			if got.PayerTotal != payer || got.PatientTotal != patient {
				t.Errorf("totals %d/%d, lines sum to %d/%d", got.PayerTotal, got.PatientTotal, payer, patient)
			}
		})
	}
}

func TestSplitOrdersPoliciesByPriority(t *testing.T) {
	got := Split([]Coverage{employer(), nhif()}, []CoverageLineInput{line("CONS-GEN", "CONSULTATION", 10000)})
	steps := got.Lines[0].Steps
	if *steps[0].PolicyID != "ins_A" || steps[0].PayerAmount != 8000 || *steps[1].PolicyID != "ins_B" || steps[1].PayerAmount != 1000 {
		t.Fatalf("steps %+v: want the primary's 80.00 first, then the secondary's 10.00", steps)
	}
}

func TestSplitLeavesItsArgumentsAlone(t *testing.T) {
	c := nhif()
	c.Used = map[time.Time]int64{d(2026, 1, 1): 10}
	c.PreAuths = []PreAuth{{Category: "PROCEDURE", ServiceCode: "MRI", ValidFrom: d(2026, 1, 1), ValidTo: d(2026, 12, 31), Amount: money(100)}}
	lines := []CoverageLineInput{line("MRI", "PROCEDURE", 1000), line("FBC", "LAB", 1000)}
	first := Split([]Coverage{c}, lines)
	second := Split([]Coverage{c}, lines)
	if c.Used[d(2026, 1, 1)] != 10 || *c.PreAuths[0].Amount != 100 {
		t.Fatalf("Split changed its coverage: used %d, pre-auth %d", c.Used[d(2026, 1, 1)], *c.PreAuths[0].Amount)
	}
	if first.PayerTotal != second.PayerTotal || first.PayerTotal != 100+800 {
		t.Fatalf("payer totals %d and %d, want 900 both times", first.PayerTotal, second.PayerTotal)
	}
}

// The shares of every line sum to the line, whatever the rules, and no
// share is negative: random plans and lines, compared line by line.
func TestSplitSharesAlwaysSumToTheLine(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	cats := []claimline.Category{"CONSULTATION", "PROCEDURE", "LAB", "DRUG", "ITEM", "BED_DAY"}
	for round := 0; round < 500; round++ {
		var covs []Coverage
		for p := 0; p < rng.Intn(3); p++ {
			terms := Terms{EffectiveFrom: d(2026, 1, 1), VisitCopay: rng.Int63n(3000)}
			if rng.Intn(2) == 0 {
				terms.AnnualLimit = money(rng.Int63n(200000))
			}
			for _, c := range cats {
				if rng.Intn(4) > 0 {
					terms.Rules = append(terms.Rules, Rule{Category: string(c), CoveredPercent: rng.Intn(101), LineCopay: rng.Int63n(2000), Excluded: rng.Intn(8) == 0})
				}
			}
			covs = append(covs, Coverage{PolicyID: string(rune('a' + p)), Priority: p + 1, ValidFrom: d(2025, 1, 1), Linked: true, PlanYearStartMonth: 1 + rng.Intn(12), Versions: []Terms{terms}})
		}
		var lines []CoverageLineInput
		var sum int64
		for i := 0; i < 1+rng.Intn(20); i++ {
			l := line("X", cats[rng.Intn(len(cats))], rng.Int63n(1_000_000_00))
			sum += l.Amount
			lines = append(lines, l)
		}
		got := Split(covs, lines)
		for i, l := range got.Lines {
			var payers int64
			for _, s := range l.Steps {
				if s.PayerAmount < 0 || s.Copay < 0 {
					t.Fatalf("round %d line %d: negative step %+v", round, i, s)
				}
				payers += s.PayerAmount
			}
			if l.PayerShare+l.PatientShare != l.Amount || payers != l.PayerShare || l.PatientShare < 0 {
				t.Fatalf("round %d line %d: payer %d (steps %d) + patient %d != %d", round, i, l.PayerShare, payers, l.PatientShare, l.Amount)
			}
		}
		if got.PayerTotal+got.PatientTotal != sum {
			t.Fatalf("round %d: totals %d + %d != %d", round, got.PayerTotal, got.PatientTotal, sum)
		}
	}
}

func TestPercentOfRoundsDownWithoutOverflow(t *testing.T) {
	for _, c := range []struct {
		amount  int64
		percent int
		want    int64
	}{{1001, 33, 330}, {199, 50, 99}, {100, 100, 100}, {7, 0, 0}, {1 << 62, 100, 1 << 62}, {1<<62 + 99, 99, -1}, {1<<63 - 1, 37, -1}} {
		if c.want < 0 {
			exact := new(big.Int).Mul(big.NewInt(c.amount), big.NewInt(int64(c.percent)))
			c.want = exact.Quo(exact, big.NewInt(100)).Int64()
		}
		if got := percentOf(c.amount, c.percent); got != c.want {
			t.Errorf("percentOf(%d, %d) = %d, want %d", c.amount, c.percent, got, c.want)
		}
	}
}

func TestPlanYear(t *testing.T) {
	if got := planYear(d(2026, 3, 10), 7); !got.Equal(d(2025, 7, 1)) {
		t.Errorf("March 2026 in a July plan year: %v", got)
	}
	if got := planYear(d(2026, 7, 1), 7); !got.Equal(d(2026, 7, 1)) {
		t.Errorf("1 July 2026: %v", got)
	}
}

func timePtr(t time.Time) *time.Time { return &t }
