package payroll

import (
	"math/big"
	"testing"
)

// rules of the examples: time and a half, 40-hour weeks, 1500.00 a night
// shift, 1000.00 an on-call shift, and the bands 10 % from 0, 25 % from
// 24000.00, 30 % from 32333.00.
var rules = Rules{OvertimePercent: 150, WeeklyHours: 40, NightAllowance: 150_000, OnCallAllowance: 100_000,
	TaxBands: []TaxBand{{0, 1000}, {2_400_000, 2500}, {3_233_300, 3000}}}

// untaxed is rules without bands, so that the examples of the other lines
// read on their own.
var untaxed = Rules{OvertimePercent: 150, WeeklyHours: 40, NightAllowance: 150_000, OnCallAllowance: 100_000}

func TestComputeHandExamples(t *testing.T) {
	for _, c := range []struct {
		name  string
		rules Rules
		in    Inputs
		want  Slip
	}{{
		// 120000.00 a month, the whole of a 30-day month: the salary itself.
		name: "monthly", rules: untaxed,
		in:   Inputs{Basis: Monthly, Rate: 12_000_000, DaysInMonth: 30, EmployedDays: 30},
		want: Slip{Base: 12_000_000, Gross: 12_000_000, Net: 12_000_000},
	}, {
		// Started on the 24th of a 30-day month: 7 days.
		// 1 000 000 × 7 / 30 = 233 333.33… → 233 333.
		name: "mid-month starter", rules: untaxed,
		in:   Inputs{Basis: Monthly, Rate: 1_000_000, DaysInMonth: 30, EmployedDays: 7},
		want: Slip{Base: 233_333, Gross: 233_333, Net: 233_333},
	}, {
		// 850.50 an hour; 9630 minutes attended, 630 of them overtime.
		// Ordinary: 9000 min = 150 h × 85 050 = 12 757 500.
		// Overtime: 630 × 85 050 × 150 / (60 × 100) = 8 037 225 000 / 6000 = 1 339 537.5 → 1 339 538 (half up).
		name: "hourly with overtime", rules: untaxed,
		in:   Inputs{Basis: Hourly, Rate: 85_050, DaysInMonth: 30, EmployedDays: 30, WorkedMinutes: 9630, OvertimeMinutes: 630},
		want: Slip{Base: 12_757_500, Overtime: 1_339_538, Gross: 14_097_038, Net: 14_097_038},
	}, {
		// 120000.00 a month, 600 minutes overtime. Hourly equivalent:
		// 12 000 000 × 12 / (52 × 40) = 69 230.77; overtime, as one fraction:
		// 600 × 12 000 000 × 12 × 150 / (60 × 100 × 52 × 40) = 12 960 000 000 000 / 12 480 000 = 1 038 461.54 → 1 038 462.
		name: "monthly overtime", rules: untaxed,
		in:   Inputs{Basis: Monthly, Rate: 12_000_000, DaysInMonth: 30, EmployedDays: 30, WorkedMinutes: 10_200, OvertimeMinutes: 600},
		want: Slip{Base: 12_000_000, Overtime: 1_038_462, Gross: 13_038_462, Net: 13_038_462},
	}, {
		// 3 night shifts × 150 000 + 2 on-call × 100 000 = 650 000 on top of the salary.
		name: "night and on-call", rules: untaxed,
		in:   Inputs{Basis: Monthly, Rate: 12_000_000, DaysInMonth: 30, EmployedDays: 30, NightShifts: 3, OnCallShifts: 2},
		want: Slip{Base: 12_000_000, Night: 450_000, OnCall: 200_000, Gross: 12_650_000, Net: 12_650_000},
	}, {
		// 4 days unpaid: 12 000 000 × 4 / 30 = 1 600 000 off.
		name: "unpaid leave", rules: untaxed,
		in:   Inputs{Basis: Monthly, Rate: 12_000_000, DaysInMonth: 30, EmployedDays: 30, UnpaidLeaveDays: 4},
		want: Slip{Base: 12_000_000, UnpaidLeave: 1_600_000, Gross: 10_400_000, Net: 10_400_000},
	}, {
		// An hourly worker's unpaid days are the hours they did not attend: nothing more is taken.
		name: "unpaid leave, hourly", rules: untaxed,
		in:   Inputs{Basis: Hourly, Rate: 100_000, DaysInMonth: 31, EmployedDays: 31, WorkedMinutes: 600, UnpaidLeaveDays: 5},
		want: Slip{Base: 1_000_000, Gross: 1_000_000, Net: 1_000_000},
	}, {
		// Gross 120000.00 through the bands:
		//   2 400 000 × 10 %                        =   240 000
		//   (3 233 300 − 2 400 000) × 25 % = 833 300 × 25 % =   208 325
		//   (12 000 000 − 3 233 300) × 30 % = 8 766 700 × 30 % = 2 630 010
		// tax 3 078 335; net 12 000 000 − 3 078 335 = 8 921 665.
		name: "tax bands", rules: rules,
		in:   Inputs{Basis: Monthly, Rate: 12_000_000, DaysInMonth: 30, EmployedDays: 30},
		want: Slip{Base: 12_000_000, Gross: 12_000_000, Tax: 3_078_335, Net: 8_921_665},
	}, {
		// Gross 10000.00: tax 1 000 000 × 10 % = 100 000, leaving 900 000;
		// deductions of 1 200 000 take 900 000 and 300 000 is carried; net 0.
		name: "deductions exceeding the pay", rules: rules,
		in:   Inputs{Basis: Monthly, Rate: 1_000_000, DaysInMonth: 30, EmployedDays: 30, Deductions: 1_200_000},
		want: Slip{Base: 1_000_000, Gross: 1_000_000, Tax: 100_000, OtherDeductions: 900_000, Carried: 300_000},
	}, {
		// Deductions within the pay are taken whole: 12 000 000 − 3 078 335 − 500 000 = 8 421 665.
		name: "deductions", rules: rules,
		in:   Inputs{Basis: Monthly, Rate: 12_000_000, DaysInMonth: 30, EmployedDays: 30, Deductions: 500_000},
		want: Slip{Base: 12_000_000, Gross: 12_000_000, Tax: 3_078_335, OtherDeductions: 500_000, Net: 8_421_665},
	}, {
		// Left before the month: nothing, not a negative.
		name: "not employed", rules: rules,
		in:   Inputs{Basis: Monthly, Rate: 12_000_000, DaysInMonth: 30, EmployedDays: 0, UnpaidLeaveDays: 3},
		want: Slip{},
	}} {
		t.Run(c.name, func(t *testing.T) {
			if got := Compute(c.rules, c.in); got != c.want {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
		})
	}
}

func TestTaxBands(t *testing.T) {
	for gross, want := range map[int64]int64{
		0:         0,
		2_000_000: 200_000, // 10 % of 20000.00
		// 2 400 000 × 10 % + 600 000 × 25 % = 240 000 + 150 000
		3_000_000: 390_000,
		// 240 000 + 2 × 25 % = 240 000.5 → 240 001: half up, once
		2_400_002: 240_001,
		// 240 000 + 1 × 25 % = 240 000.25 → 240 000
		2_400_001: 240_000,
	} {
		if got := Tax(rules.TaxBands, gross); got != want {
			t.Errorf("tax on %d: %d, want %d", gross, got, want)
		}
	}
	// Below a first bound above zero nothing is taxed: 5000.00 at 10 % from 1000.00 is 400.00.
	if got := Tax([]TaxBand{{100_000, 1000}}, 500_000); got != 40_000 {
		t.Errorf("tax above a threshold: %d", got)
	}
	if got := Tax(nil, 500_000); got != 0 {
		t.Errorf("no bands taxed %d", got)
	}
}

func TestHalfUp(t *testing.T) {
	for _, c := range [][3]int64{{5, 2, 3}, {7, 3, 2}, {5, 3, 2}, {0, 7, 0}, {3, 2, 2}, {1, 2, 1}} {
		if got := halfUp(big.NewInt(c[0]), big.NewInt(c[1])); got != c[2] {
			t.Errorf("%d/%d = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

func TestParseSettings(t *testing.T) {
	bands, err := ParseTaxBands("0:10, 24000.00:25,32333:30")
	if err != nil || len(bands) != 3 || bands[1] != (TaxBand{2_400_000, 2500}) || bands[2] != (TaxBand{3_233_300, 3000}) {
		t.Fatalf("bands: %+v, %v", bands, err)
	}
	if b, err := ParseTaxBands("1000.00:7.5"); err != nil || b[0] != (TaxBand{100_000, 750}) {
		t.Fatalf("a decimal percent: %+v, %v", b, err)
	}
	if b, err := ParseTaxBands(" "); err != nil || b != nil {
		t.Fatalf("empty: %+v, %v", b, err)
	}
	for _, bad := range []string{"10", "0:101", "0:10,0:20", "5000:10,100:20", "-1:10", "0:1.234", "x:10", "0:10,"} {
		if _, err := ParseTaxBands(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	r, err := ParseRules(150, 40, "1500.00", "1000", "")
	if err != nil || r.NightAllowance != 150_000 || r.OnCallAllowance != 100_000 || r.TaxBands != nil {
		t.Fatalf("rules: %+v, %v", r, err)
	}
	for name, args := range map[string][5]any{
		"overtime below 100": {99, 40, "0", "0", ""},
		"no weekly hours":    {150, 0, "0", "0", ""},
		"night":              {150, 40, "15.001", "0", ""},
		"on call":            {150, 40, "0", "-1", ""},
		"bands":              {150, 40, "0", "0", "0:10,0:20"},
	} {
		if _, err := ParseRules(args[0].(int), args[1].(int), args[2].(string), args[3].(string), args[4].(string)); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}
