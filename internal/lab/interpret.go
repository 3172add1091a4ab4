package lab

import (
	"math"
	"slices"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/patient"
)

// AgeInDays is how many whole days old someone born on birth is at at,
// the unit reference-range age bands are kept in. birth is a calendar date;
// at is an instant whose calendar day is taken in its own location, so
// pass it in the hospital's time zone: a sample taken on the morning of an
// 18th birthday is an adult's wherever UTC's date is.
func AgeInDays(birth, at time.Time) int {
	// Dates are kept as UTC midnights, but PostgreSQL returns times in the
	// session's zone: west of Greenwich a birth date read back falls on the
	// evening before.
	birth = birth.UTC()
	b := time.Date(birth.Year(), birth.Month(), birth.Day(), 0, 0, 0, 0, time.UTC)
	a := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	if a.Before(b) {
		return 0
	}
	return int(a.Sub(b).Hours() / 24)
}

// RangeFor picks the reference range that fits a patient of sex and
// ageDays: the age band must contain the age, and a range for the
// patient's own sex wins over one for either sex. Among several that fit
// equally, the narrowest age band wins, so a catalog can keep a broad adult
// range beside a specific one for the elderly. Nil when none fits.
func RangeFor(ranges []*ent.LabReferenceRange, sex patient.Sex, ageDays int) *ent.LabReferenceRange {
	var best *ent.LabReferenceRange
	better := func(r *ent.LabReferenceRange) bool {
		if best == nil {
			return true
		}
		if (r.Sex != nil) != (best.Sex != nil) {
			return r.Sex != nil
		}
		return bandWidth(r) < bandWidth(best)
	}
	for _, r := range ranges {
		if ageDays < r.AgeFromDays || (r.AgeToDays != nil && ageDays >= *r.AgeToDays) {
			continue
		}
		if r.Sex != nil && string(*r.Sex) != string(sex) {
			continue
		}
		if better(r) {
			best = r
		}
	}
	return best
}

func bandWidth(r *ent.LabReferenceRange) int {
	if r.AgeToDays == nil {
		// Open bands are not all alike: [65y, ∞) lies inside [18y, ∞), so
		// the one starting later is the narrower and must win.
		return math.MaxInt - r.AgeFromDays
	}
	return *r.AgeToDays - r.AgeFromDays
}

// FlagNumeric interprets value against r. Critical limits are inclusive:
// a potassium at exactly the panic limit is a panic value. Normal limits
// are inclusive too: a value at the limit is normal. Nil when there is no
// range, or the range has no limit on the side the value lies.
func FlagNumeric(r *ent.LabReferenceRange, value float64) *labresult.Flag {
	if r == nil {
		return nil
	}
	flag := func(f labresult.Flag) *labresult.Flag { return &f }
	switch {
	case r.CriticalLow != nil && value <= *r.CriticalLow:
		return flag(labresult.FlagCRITICAL_LOW)
	case r.CriticalHigh != nil && value >= *r.CriticalHigh:
		return flag(labresult.FlagCRITICAL_HIGH)
	case r.Low != nil && value < *r.Low:
		return flag(labresult.FlagLOW)
	case r.High != nil && value > *r.High:
		return flag(labresult.FlagHIGH)
	case r.Low == nil && r.High == nil:
		return nil
	}
	return flag(labresult.FlagNORMAL)
}

// FlagCoded interprets a coded answer: NORMAL when the test lists it as
// normal, ABNORMAL otherwise; nil when the test lists no normal answers.
func FlagCoded(t *ent.LabTest, code string) *labresult.Flag {
	if len(t.NormalCodes) == 0 {
		return nil
	}
	f := labresult.FlagABNORMAL
	if slices.Contains(t.NormalCodes, code) {
		f = labresult.FlagNORMAL
	}
	return &f
}

// IsCritical reports whether a flag is a panic value that someone must be
// told of and acknowledge.
func IsCritical(f *labresult.Flag) bool {
	return f != nil && (*f == labresult.FlagCRITICAL_LOW || *f == labresult.FlagCRITICAL_HIGH)
}
