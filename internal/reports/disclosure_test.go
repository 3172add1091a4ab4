package reports

import (
	"database/sql"
	"fmt"
	"math"
	"strconv"
	"testing"
)

func testService(secret string) *Service {
	return &Service{key: disclosureKey([]byte(secret))}
}

// Random rounding: every count lands on a multiple of CountBase within
// CountBase-1 of the truth, and over many cells it is the truth on
// average, so totals of many cells stay right.
func TestRandomRoundingIsUnbiased(t *testing.T) {
	s := testService("k")
	for n := int64(MinCellSubjects); n < 300; n++ {
		var sum float64
		const cells = 4000
		for c := 0; c < cells; c++ {
			r := roundCount(n, s.uniform(fmt.Sprint("cell", c), float64(n)))
			if r%CountBase != 0 || r-n >= CountBase || n-r >= CountBase {
				t.Fatalf("%d rounded to %d", n, r)
			}
			sum += float64(r)
		}
		if mean := sum / cells; math.Abs(mean-float64(n)) > 0.15 {
			t.Errorf("%d: mean of the rounded counts %.3f", n, mean)
		}
	}
}

// The same cell and value always get the same figure, so asking again
// averages nothing away; another deployment's key rounds differently.
func TestPerturbationIsConsistentAndKeyed(t *testing.T) {
	a, b := testService("one"), testService("two")
	differ := 0
	for c := 0; c < 200; c++ {
		cell := "cell" + strconv.Itoa(c)
		if a.uniform(cell, 7) != a.uniform(cell, 7) {
			t.Fatal("the same cell drew two numbers")
		}
		if roundCount(7, a.uniform(cell, 7)) != roundCount(7, b.uniform(cell, 7)) {
			differ++
		}
	}
	// Each key rounds 7 up with probability 2/5: two keys disagree on
	// about half the cells (2 × 0.4 × 0.6).
	if differ < 60 || differ > 140 {
		t.Errorf("two keys disagreed on %d of 200 cells", differ)
	}
}

// Money moves by at most half the average per person, lands on whole
// units, and is right on average.
func TestMoneyNoiseIsBoundedAndUnbiased(t *testing.T) {
	s := testService("k")
	const amount, people = 123456.0, 8 // 1,234.56 over 8 people: up to 77.16 either way
	var sum float64
	const cells = 20000
	for c := 0; c < cells; c++ {
		v := perturbMoney(amount, people, s.uniform(fmt.Sprint("cell", c), amount))
		if math.Mod(v, 100) != 0 || math.Abs(v-amount) > amount/people/2+50 {
			t.Fatalf("%.0f perturbed to %.0f", amount, v)
		}
		sum += v
	}
	if mean := sum / cells; math.Abs(mean-amount) > 100 {
		t.Errorf("mean of the perturbed amounts %.1f, want about %.0f", mean, amount)
	}
}

// A rate of counts is computed from the counts as published: with the
// counts rounded, the exact rate would give the true ones back.
func TestRateFollowsThePublishedCounts(t *testing.T) {
	s := testService("k")
	for c := 0; c < 50; c++ {
		// 37 appointments, 6 no-shows, 6/37 no-show rate, a 12-minute wait.
		vals := []sql.NullFloat64{{Float64: 37, Valid: true}, {Float64: 6, Valid: true},
			{Float64: 6.0 / 37, Valid: true}, {Float64: 12, Valid: true}}
		out, suppressed := s.cells(noShows, fmt.Sprint("cell", c), vals, true, 30)
		if suppressed != 0 {
			t.Fatalf("suppressed %d", suppressed)
		}
		apps, _ := strconv.ParseFloat(*out[0], 64)
		shows, _ := strconv.ParseFloat(*out[1], 64)
		rate, _ := strconv.ParseFloat(*out[2], 64)
		if want := math.Round(shows/apps*1e4) / 1e4; rate != want {
			t.Errorf("rate %s from %s / %s, want %.4f", *out[2], *out[1], *out[0], want)
		}
		if *out[3] != "12.0" {
			t.Errorf("an average over 30 people is kept: %s", *out[3])
		}
	}
}

// Figures not about people (beds, stock) are left as they are.
func TestFiguresNotAboutPeopleAreExact(t *testing.T) {
	s := testService("k")
	vals := []sql.NullFloat64{{Float64: 2150, Valid: true}, {Float64: 1000, Valid: true},
		{Float64: 150, Valid: true}, {Float64: 1, Valid: true}}
	out, _ := s.cells(pharmacyStock, "cell", vals, true, -1)
	if *out[0] != "21.50" || *out[3] != "1" {
		t.Errorf("stock figures changed: %s %s", *out[0], *out[3])
	}
}
