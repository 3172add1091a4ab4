package attendance

import "time"

// Shift is the roster entry a record is measured against.
type Shift struct {
	Start, End   time.Time
	BreakMinutes int
}

// Measures are a record's stored figures, in whole minutes.
type Measures struct {
	Worked, Late, EarlyLeave, Overtime int
}

// Thresholds after which an open record is missing its clock-out.
const (
	MissingAfterRosteredEnd = 4 * time.Hour
	MissingAfterUnrostered  = 16 * time.Hour
)

// Measure computes the measures of a record from in to out (nil: still
// open, when only lateness is known) against shift (nil: unrostered).
func Measure(in time.Time, out *time.Time, shift *Shift, grace time.Duration) Measures {
	var m Measures
	if shift != nil && in.After(shift.Start.Add(grace)) {
		m.Late = minutes(in.Sub(shift.Start))
	}
	if out == nil {
		return m
	}
	m.Worked = minutes(out.Sub(in))
	if shift == nil {
		m.Overtime = m.Worked
		return m
	}
	m.Worked = max(m.Worked-shift.BreakMinutes, 0)
	if out.Before(shift.End) {
		m.EarlyLeave = minutes(shift.End.Sub(*out))
	}
	if out.After(shift.End) {
		// Not beyond what was worked: a stretch that began after the
		// rostered end is overtime whole, no more.
		m.Overtime = min(minutes(out.Sub(shift.End)), m.Worked)
	}
	return m
}

// MissingClockOut reports whether a record open since in is overdue at now.
func MissingClockOut(in time.Time, out *time.Time, rosteredEnd *time.Time, now time.Time) bool {
	switch {
	case out != nil:
		return false
	case rosteredEnd != nil:
		return now.After(rosteredEnd.Add(MissingAfterRosteredEnd))
	default:
		return now.After(in.Add(MissingAfterUnrostered))
	}
}

func minutes(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(d / time.Minute)
}
