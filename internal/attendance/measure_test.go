package attendance

import (
	"testing"
	"time"
)

func TestMeasure(t *testing.T) {
	at := func(d, h, m int) time.Time { return time.Date(2026, 3, d, h, m, 0, 0, time.UTC) }
	day := &Shift{Start: at(10, 8, 0), End: at(10, 16, 0), BreakMinutes: 30}
	// 22:00 to 07:00 the next morning.
	night := &Shift{Start: at(10, 22, 0), End: at(11, 7, 0), BreakMinutes: 60}
	grace := 5 * time.Minute
	for _, tc := range []struct {
		name    string
		in, out time.Time
		open    bool
		shift   *Shift
		want    Measures
	}{
		{"on time", at(10, 8, 0), at(10, 16, 0), false, day, Measures{Worked: 450}},
		{"early in, on time out: not overtime", at(10, 7, 30), at(10, 16, 0), false, day, Measures{Worked: 480}},
		{"within grace", at(10, 8, 5), at(10, 16, 0), false, day, Measures{Worked: 445}},
		{"past grace counts from the start", at(10, 8, 6), at(10, 16, 0), false, day, Measures{Worked: 444, Late: 6}},
		{"early leave", at(10, 8, 0), at(10, 14, 45), false, day, Measures{Worked: 375, EarlyLeave: 75}},
		{"overtime", at(10, 8, 0), at(10, 18, 10), false, day, Measures{Worked: 580, Overtime: 130}},
		{"late and overtime", at(10, 9, 0), at(10, 17, 0), false, day, Measures{Worked: 450, Late: 60, Overtime: 60}},
		{"shorter than the break", at(10, 8, 0), at(10, 8, 20), false, day, Measures{Worked: 0, EarlyLeave: 460}},
		{"open: lateness only", at(10, 8, 20), time.Time{}, true, day, Measures{Late: 20}},
		{"night, on time", at(10, 22, 0), at(11, 7, 0), false, night, Measures{Worked: 480}},
		{"night, late past midnight", at(11, 0, 30), at(11, 7, 0), false, night, Measures{Worked: 330, Late: 150}},
		{"night, overtime next morning", at(10, 21, 50), at(11, 8, 15), false, night, Measures{Worked: 565, Overtime: 75}},
		{"night, left at 05:00", at(10, 22, 3), at(11, 5, 0), false, night, Measures{Worked: 357, EarlyLeave: 120}},
		{"unrostered: all overtime", at(10, 23, 0), at(11, 2, 30), false, nil, Measures{Worked: 210, Overtime: 210}},
		{"unrostered open", at(10, 23, 0), time.Time{}, true, nil, Measures{}},
	} {
		var out *time.Time
		if !tc.open {
			out = &tc.out
		}
		if got := Measure(tc.in, out, tc.shift, grace); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestMissingClockOut(t *testing.T) {
	in := time.Date(2026, 3, 10, 22, 0, 0, 0, time.UTC)
	end := time.Date(2026, 3, 11, 7, 0, 0, 0, time.UTC)
	out := end
	for _, tc := range []struct {
		name string
		out  *time.Time
		end  *time.Time
		now  time.Time
		want bool
	}{
		{"closed", &out, &end, end.Add(48 * time.Hour), false},
		{"rostered, 4h past the end", nil, &end, end.Add(4 * time.Hour), false},
		{"rostered, just over 4h past", nil, &end, end.Add(4*time.Hour + time.Minute), true},
		{"unrostered, 16h", nil, nil, in.Add(16 * time.Hour), false},
		{"unrostered, over 16h", nil, nil, in.Add(16*time.Hour + time.Minute), true},
	} {
		if got := MissingClockOut(in, tc.out, tc.end, tc.now); got != tc.want {
			t.Errorf("%s: %v", tc.name, got)
		}
	}
}
