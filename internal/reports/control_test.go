package reports_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/cache"
	"github.com/hmis-dev/hmis/internal/reports"
	"github.com/hmis-dev/hmis/policies"
)

// controlled is a service over f's database with disclosure control on,
// under the deployment secret given.
func (f *fixture) controlled(secret string) *reports.Service {
	enforcer, err := authz.NewEnforcer(policies.Model, policies.Policy)
	if err != nil {
		f.t.Fatal(err)
	}
	svc := reports.NewService(f.st, cache.NewMemory(), enforcer.Allows, f.loc, time.Hour, []byte(secret))
	svc.SetClock(func() time.Time { return f.now })
	return svc
}

// cell is the figure of the row whose leading cells are keys, in column.
func cell(t *testing.T, r *reports.Report, column string, keys ...string) *string {
	t.Helper()
	col := -1
	for i, c := range r.Columns {
		if c == column {
			col = i
		}
	}
rows:
	for _, row := range r.Rows {
		for i, k := range keys {
			if row[i] == nil || *row[i] != k {
				continue rows
			}
		}
		return row[col]
	}
	t.Fatalf("no row %v in %v", keys, r.Rows)
	return nil
}

// The attack that suppression alone lets through: two overlapping ranges
// whose patients differ by one. Exact, 6 - 5 tells that one patient was
// diagnosed on the first day; rounded, the difference of two multiples of
// five is never one.
func TestOverlappingRangesDoNotGiveAwayOnePatient(t *testing.T) {
	f := newFixture(t)
	f.c.Problem.Create().SetPatient(f.pats[0]).SetIcd10Code("I10").SetDisplay("Essential hypertension").
		SetCreatedAt(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)).ExecX(f.sys)
	for _, p := range f.pats[1:6] {
		f.c.Problem.Create().SetPatient(p).SetIcd10Code("I10").SetDisplay("Essential hypertension").
			SetCreatedAt(time.Date(2026, 3, 12, 9, 0, 0, 0, time.UTC)).ExecX(f.sys)
	}
	whole := reports.Params{From: date("2026-03-01"), To: date("2026-03-31")}
	lessADay := reports.Params{From: date("2026-03-02"), To: date("2026-03-31")}
	count := func(svc *reports.Service, p reports.Params) int {
		r, err := svc.Run(as("hospital_manager"), "diagnoses", p)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(*cell(t, r, "patients", "I10"))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if d := count(f.svc, whole) - count(f.svc, lessADay); d != 1 {
		t.Fatalf("the exact figures differ by %d, want 1: the attack needs a difference of one", d)
	}
	for k := 0; k < 20; k++ {
		svc := f.controlled(fmt.Sprint("secret ", k))
		a, b := count(svc, whole), count(svc, lessADay)
		if a%reports.CountBase != 0 || b%reports.CountBase != 0 || a-b == 1 {
			t.Errorf("key %d: published %d and %d", k, a, b)
		}
		if a != count(svc, whole) {
			t.Errorf("key %d: the same question got two answers", k)
		}
	}
}

// The other attack: one report breaks the same revenue down by department
// and by payer. Paediatrics (two patients, 100.00) is suppressed, but
// self-pay (all eight) minus Cardiology (six) was exactly Paediatrics. With
// the amounts perturbed by up to half their average per person the
// subtraction no longer lands on it, except by chance.
func TestBreakdownsDoNotGiveAwayASuppressedAmount(t *testing.T) {
	f := newFixture(t)
	card := f.c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(f.sys)
	paed := f.c.Department.Create().SetCode("PED").SetName("Paediatrics").SaveX(f.sys)
	march := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	for _, p := range f.pats[:6] {
		f.charge(p, card, charge.CategoryCONSULTATION, 11700, march)
	}
	f.charge(f.pats[6], paed, charge.CategoryLAB, 5000, march)
	f.charge(f.pats[7], paed, charge.CategoryLAB, 5000, march)
	params := reports.Params{From: date("2026-03-01"), To: date("2026-03-31")}
	money := func(s *string) float64 {
		v, err := strconv.ParseFloat(*s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	recovered := func(svc *reports.Service) (float64, *reports.Report) {
		r, err := svc.Run(as("hospital_manager"), "revenue", params)
		if err != nil {
			t.Fatal(err)
		}
		if cell(t, r, "revenue", "2026-03-01", "department", "Paediatrics") != nil {
			t.Fatalf("Paediatrics is not suppressed:\n%v", r.Rows)
		}
		return money(cell(t, r, "revenue", "2026-03-01", "payer", "Patients (self-pay)")) - money(cell(t, r, "revenue", "2026-03-01", "department", "Cardiology")), r
	}
	if got, _ := recovered(f.svc); got != 100 {
		t.Fatalf("exact figures give %.2f, want 100.00: the attack needs the exact subtraction", got)
	}
	exactly := 0
	spread := map[float64]bool{}
	for k := 0; k < 50; k++ {
		got, r := recovered(f.controlled(fmt.Sprint("secret ", k)))
		if got == 100 {
			exactly++
		}
		spread[got] = true
		card := money(cell(t, r, "revenue", "2026-03-01", "department", "Cardiology"))
		// 702.00 over six people: within 58.50 (and the rounding to units).
		if card < 702-59 || card > 702+59 || card != float64(int(card)) {
			t.Errorf("key %d: Cardiology published as %.2f", k, card)
		}
	}
	if exactly > 5 || len(spread) < 25 {
		t.Errorf("the subtraction gave Paediatrics' 100.00 for %d of 50 keys, %d distinct answers", exactly, len(spread))
	}
}

// A weekly series is of whole weeks, Monday to Sunday, whatever days are
// asked for: a week clipped to the range would be a cell of the client's
// choosing.
func TestWeeklySeriesAreOfWholeWeeks(t *testing.T) {
	f := newFixture(t)
	card := f.c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(f.sys)
	// Monday 9 March, local time: before the Wednesday the client asks from.
	for _, p := range f.pats[:5] {
		f.charge(p, card, charge.CategoryCONSULTATION, 1000, time.Date(2026, 3, 9, 8, 0, 0, 0, time.UTC))
	}
	r, err := f.svc.Run(as("hospital_manager"), "revenue", reports.Params{From: date("2026-03-11"), To: date("2026-03-18"), Bucket: reports.BucketWeek})
	if err != nil {
		t.Fatal(err)
	}
	if !r.From.Equal(date("2026-03-09")) || !r.To.Equal(date("2026-03-22")) {
		t.Errorf("range %s to %s, want 2026-03-09 to 2026-03-22", r.From.Format(time.DateOnly), r.To.Format(time.DateOnly))
	}
	if !r.PreviousFrom.Equal(date("2026-02-23")) || !r.PreviousTo.Equal(date("2026-03-08")) {
		t.Errorf("previous %s to %s", r.PreviousFrom.Format(time.DateOnly), r.PreviousTo.Format(time.DateOnly))
	}
	if got := table(r); !strings.Contains(got, "2026-03-09,department,Cardiology,50.00,0.00") {
		t.Errorf("the Monday's charges are not in its week:\n%s", got)
	}
}
