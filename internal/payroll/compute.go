package payroll

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
)

// The arithmetic of a payslip, in minor units. Every amount that needs a
// division is computed as one exact fraction of integers and rounded once,
// half up, to the minor unit: nothing is rounded on the way, so that the
// owner can redo each line by hand and get the same figure.

// Basis is how a member of staff is paid.
type Basis string

// The pay bases, as on the staff record.
const (
	Monthly Basis = "MONTHLY"
	Hourly  Basis = "HOURLY"
)

// TaxBand is one band of the progressive tax: the part of gross pay from
// From (inclusive, minor units) up to the next band's From is taxed at
// BasisPoints hundredths of a percent.
type TaxBand struct {
	From        int64
	BasisPoints int64
}

// Rules are the hospital's payroll settings.
type Rules struct {
	// OvertimePercent is what an overtime hour pays, in percent of an
	// ordinary hour (150: time and a half).
	OvertimePercent int64
	// WeeklyHours are a monthly salary's ordinary hours a week, which make
	// its hourly equivalent: salary × 12 / (52 × WeeklyHours).
	WeeklyHours int64
	// NightAllowance is paid per attended night shift, OnCallAllowance per
	// rostered on-call shift.
	NightAllowance, OnCallAllowance int64
	// TaxBands, lowest first; none: no tax.
	TaxBands []TaxBand
}

// DefaultRules are the rules with every setting at its default.
var DefaultRules = Rules{OvertimePercent: 150, WeeklyHours: 40}

// Inputs are what one member of staff's payslip of one month is computed
// from.
type Inputs struct {
	Basis Basis
	// Rate is the monthly salary or the hourly rate.
	Rate int64
	// DaysInMonth is the calendar days of the period; EmployedDays those
	// of them between the person's start and end dates.
	DaysInMonth, EmployedDays int
	// WorkedMinutes are all minutes attended, OvertimeMinutes the part of
	// them beyond the rostered shifts.
	WorkedMinutes, OvertimeMinutes int
	NightShifts, OnCallShifts      int
	// UnpaidLeaveDays are the days of approved unpaid leave in the period
	// while employed.
	UnpaidLeaveDays int
	// Deductions is the sum of the period's other deductions recorded.
	Deductions int64
}

// Slip is a computed payslip.
type Slip struct {
	Base, Overtime, Night, OnCall, UnpaidLeave int64
	Gross, Tax                                 int64
	// OtherDeductions are the deductions taken, Carried what of them the
	// pay left after tax could not cover.
	OtherDeductions, Carried int64
	Net                      int64
}

// Compute computes a payslip:
//
//	base         MONTHLY: salary × employed days / days in month (the salary itself for a whole month)
//	             HOURLY:  rate × (worked − overtime minutes) / 60, the ordinary minutes; overtime is paid below
//	overtime     overtime minutes × hourly equivalent × OvertimePercent / 100 / 60
//	             (hourly equivalent: the rate, or salary × 12 / (52 × WeeklyHours))
//	night        night shifts × NightAllowance; on-call likewise
//	unpaid leave MONTHLY: salary × unpaid leave days / days in month; HOURLY: nothing (unattended hours are unpaid anyway)
//	gross        base + overtime + night + on-call − unpaid leave
//	tax          progressive bands on gross
//	other        the period's deductions, at most gross − tax; the rest is Carried
//	net          gross − tax − other, never below zero
func Compute(r Rules, in Inputs) Slip {
	var s Slip
	rate := big.NewInt(in.Rate)
	switch in.Basis {
	case Monthly:
		if in.EmployedDays >= in.DaysInMonth {
			s.Base = in.Rate
		} else if in.EmployedDays > 0 {
			s.Base = fraction(rate, int64(in.EmployedDays), 1, int64(in.DaysInMonth))
		}
		s.Overtime = fraction(rate, int64(in.OvertimeMinutes)*12*r.OvertimePercent, 1, 60*100*52*r.WeeklyHours)
		unpaid := min(in.UnpaidLeaveDays, in.EmployedDays)
		s.UnpaidLeave = fraction(rate, int64(unpaid), 1, int64(in.DaysInMonth))
	case Hourly:
		ordinary := max(in.WorkedMinutes-in.OvertimeMinutes, 0)
		s.Base = fraction(rate, int64(ordinary), 1, 60)
		s.Overtime = fraction(rate, int64(in.OvertimeMinutes)*r.OvertimePercent, 1, 60*100)
	}
	s.Night = int64(in.NightShifts) * r.NightAllowance
	s.OnCall = int64(in.OnCallShifts) * r.OnCallAllowance
	s.Gross = s.Base + s.Overtime + s.Night + s.OnCall - s.UnpaidLeave
	s.Tax = Tax(r.TaxBands, s.Gross)
	s.OtherDeductions = min(in.Deductions, s.Gross-s.Tax)
	s.Carried = in.Deductions - s.OtherDeductions
	s.Net = s.Gross - s.Tax - s.OtherDeductions
	return s
}

// Tax is the progressive tax on gross: each band's part of gross at the
// band's rate, summed exactly and rounded once.
func Tax(bands []TaxBand, gross int64) int64 {
	sum := new(big.Int)
	for i, b := range bands {
		if gross <= b.From {
			break
		}
		upper := gross
		if i+1 < len(bands) && bands[i+1].From < gross {
			upper = bands[i+1].From
		}
		part := new(big.Int).Mul(big.NewInt(upper-b.From), big.NewInt(b.BasisPoints))
		sum.Add(sum, part)
	}
	return halfUp(sum, big.NewInt(10000))
}

// fraction is x × a × b / den, rounded half up; every factor is at least
// zero. It is computed in big integers: a salary times the minutes of a
// month times the factors of the hourly equivalent can pass int64.
func fraction(x *big.Int, a, b, den int64) int64 {
	if den <= 0 {
		return 0
	}
	n := new(big.Int).Mul(x, big.NewInt(a))
	n.Mul(n, big.NewInt(b))
	return halfUp(n, big.NewInt(den))
}

// halfUp is n / d rounded half up, for n ≥ 0 and d > 0.
func halfUp(n, d *big.Int) int64 {
	q := new(big.Int).Mul(n, big.NewInt(2))
	q.Add(q, d)
	q.Quo(q, new(big.Int).Mul(d, big.NewInt(2)))
	return q.Int64()
}

// ParseTaxBands reads HMIS_PAYROLL_TAX_BANDS: comma-separated
// "lowerBound:percent" pairs, the bound in money ("24000.00") and the
// percent with at most two decimals ("7.5"), bounds strictly increasing.
// Below the first bound nothing is taxed. Empty: no bands, no tax.
func ParseTaxBands(s string) ([]TaxBand, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var bands []TaxBand
	for _, part := range strings.Split(s, ",") {
		bound, pct, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok {
			return nil, fmt.Errorf("%q is not lowerBound:percent", part)
		}
		from, err := ParseMoney(bound)
		if err != nil {
			return nil, fmt.Errorf("band %q: %w", part, err)
		}
		bp, err := parseHundredths(pct)
		if err != nil || bp > 10000 {
			return nil, fmt.Errorf("band %q: the percent must be from 0 to 100 with at most two decimals", part)
		}
		if n := len(bands); n > 0 && from <= bands[n-1].From {
			return nil, fmt.Errorf("band %q: lower bounds must increase", part)
		}
		bands = append(bands, TaxBand{From: from, BasisPoints: bp})
	}
	sort.Slice(bands, func(i, j int) bool { return bands[i].From < bands[j].From })
	return bands, nil
}

// ParseMoney reads an amount of money as the API writes it ("1500.00",
// "1500"), in minor units; not negative.
func ParseMoney(s string) (int64, error) {
	v, err := parseHundredths(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not an amount like 1500.00", s)
	}
	return v, nil
}

// maxAmount bounds configured amounts far below any overflow.
const maxAmount = int64(1) << 50

// parseHundredths reads a non-negative decimal with at most two places as
// hundredths.
func parseHundredths(s string) (int64, error) {
	s = strings.TrimSpace(s)
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(frac) > 2 || strings.ContainsAny(whole+frac, "+- ") {
		return 0, fmt.Errorf("bad decimal %q", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w < 0 || w > maxAmount/100 {
		return 0, fmt.Errorf("bad decimal %q", s)
	}
	f, err := strconv.ParseInt(frac, 10, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("bad decimal %q", s)
	}
	return w*100 + f, nil
}

// ParseRules reads the payroll settings, naming the variable at fault.
func ParseRules(overtimePercent, weeklyHours int, night, onCall, bands string) (Rules, error) {
	r := Rules{OvertimePercent: int64(overtimePercent), WeeklyHours: int64(weeklyHours)}
	var err error
	switch {
	case overtimePercent < 100 || overtimePercent > 1000:
		return r, fmt.Errorf("HMIS_PAYROLL_OVERTIME_PERCENT must be from 100 to 1000")
	case weeklyHours < 1 || weeklyHours > 168:
		return r, fmt.Errorf("HMIS_PAYROLL_WEEKLY_HOURS must be from 1 to 168")
	}
	if r.NightAllowance, err = ParseMoney(night); err != nil {
		return r, fmt.Errorf("HMIS_PAYROLL_NIGHT_ALLOWANCE: %w", err)
	}
	if r.OnCallAllowance, err = ParseMoney(onCall); err != nil {
		return r, fmt.Errorf("HMIS_PAYROLL_ON_CALL_ALLOWANCE: %w", err)
	}
	if r.TaxBands, err = ParseTaxBands(bands); err != nil {
		return r, fmt.Errorf("HMIS_PAYROLL_TAX_BANDS: %w", err)
	}
	return r, nil
}
