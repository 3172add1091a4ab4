package lab_test

import (
	"slices"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/labreferencerange"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/lab"
)

func TestAgeInDays(t *testing.T) {
	day := func(y int, m time.Month, d, hh, mm int) time.Time { return time.Date(y, m, d, hh, mm, 0, 0, time.UTC) }
	cases := []struct {
		name      string
		birth, at time.Time
		want      int
	}{
		{"day of birth", day(2020, 5, 17, 0, 0), day(2020, 5, 17, 0, 0), 0},
		{"next day", day(2020, 5, 17, 0, 0), day(2020, 5, 18, 0, 0), 1},
		{"first birthday over a leap year", day(2000, 1, 1, 0, 0), day(2001, 1, 1, 0, 0), 366},
		{"first birthday over a common year", day(2001, 1, 1, 0, 0), day(2002, 1, 1, 0, 0), 365},
		{"tenth birthday", day(2010, 6, 30, 0, 0), day(2020, 6, 30, 0, 0), 3653},
		{"day before a birthday", day(2010, 6, 30, 0, 0), day(2020, 6, 29, 0, 0), 3652},
		{"born on 29 February, 28 February next year", day(2020, 2, 29, 0, 0), day(2021, 2, 28, 0, 0), 365},
		{"born on 29 February, 1 March next year", day(2020, 2, 29, 0, 0), day(2021, 3, 1, 0, 0), 366},
		{"born on 29 February, next 29 February", day(2020, 2, 29, 0, 0), day(2024, 2, 29, 0, 0), 1461},
		{"across 29 February", day(2024, 2, 28, 0, 0), day(2024, 3, 1, 0, 0), 2},
		{"late birth, early next morning", day(2020, 5, 17, 23, 59), day(2020, 5, 18, 0, 1), 1},
		{"early birth, late the same day", day(2020, 5, 17, 0, 1), day(2020, 5, 17, 23, 59), 0},
		{"later time of day than birth", day(2020, 5, 17, 8, 0), day(2020, 6, 16, 20, 0), 30},
		{"earlier time of day than birth", day(2020, 5, 17, 20, 0), day(2020, 6, 16, 8, 0), 30},
		{"a day before birth", day(2020, 5, 17, 0, 0), day(2020, 5, 16, 0, 0), 0},
		{"years before birth", day(2020, 5, 17, 0, 0), day(1990, 1, 1, 0, 0), 0},
	}
	// at counts on its own calendar day, the hospital's: the caller passes
	// it in the hospital's zone. birth is a date kept as a UTC midnight,
	// whatever zone it is read back in.
	east := time.FixedZone("UTC+3", 3*60*60)
	west := time.FixedZone("UTC-5", -5*60*60)
	birth := day(2007, 3, 12, 0, 0)
	cases = append(cases, []struct {
		name      string
		birth, at time.Time
		want      int
	}{
		{"18th birthday begun east of UTC", birth, day(2025, 3, 11, 22, 30).In(east), 18*365 + 5},
		{"the same instant in UTC, the day before", birth, day(2025, 3, 11, 22, 30), 18*365 + 4},
		{"18th birthday still to come west of UTC", birth, day(2025, 3, 12, 2, 0).In(west), 18*365 + 4},
		{"birth date read back west of UTC", birth.In(west), day(2025, 3, 12, 2, 0), 18*365 + 5},
		{"birth date read back east of UTC", birth.In(east), day(2025, 3, 12, 2, 0).In(east), 18*365 + 5},
	}...)
	for _, c := range cases {
		if got := lab.AgeInDays(c.birth, c.at); got != c.want {
			t.Errorf("%s: AgeInDays(%s, %s) = %d, want %d", c.name, c.birth.Format(time.RFC3339), c.at.Format(time.RFC3339), got, c.want)
		}
	}
}

func interpLimit(v float64) *float64 { return &v }

// interpBand builds a range for the tests below; sex "" is either sex and
// to 0 is open-ended.
func interpBand(id string, sex labreferencerange.Sex, from, to int) *ent.LabReferenceRange {
	r := &ent.LabReferenceRange{ID: id, AgeFromDays: from}
	if sex != "" {
		r.Sex = &sex
	}
	if to > 0 {
		r.AgeToDays = &to
	}
	return r
}

func TestRangeFor(t *testing.T) {
	const (
		f = labreferencerange.SexFEMALE
		m = labreferencerange.SexMALE
	)
	var (
		anyAll      = interpBand("any-all", "", 0, 0)
		femaleAll   = interpBand("female-all", f, 0, 0)
		maleAll     = interpBand("male-all", m, 0, 0)
		anyNeonate  = interpBand("any-neonate", "", 0, 30)
		anyInfant   = interpBand("any-infant", "", 30, 365)
		anyAdult    = interpBand("any-adult", "", 6574, 0)
		anyElderly  = interpBand("any-elderly", "", 23741, 0)
		femaleAdult = interpBand("female-adult", f, 6574, 0)
		femaleTeen  = interpBand("female-teen", f, 4383, 6574)
		anyChild    = interpBand("any-child", "", 0, 6574)
	)
	cases := []struct {
		name   string
		ranges []*ent.LabReferenceRange
		sex    patient.Sex
		age    int
		want   string // ID, "" for nil
	}{
		{"own sex beats either sex", []*ent.LabReferenceRange{anyAll, femaleAll, maleAll}, patient.SexFEMALE, 100, "female-all"},
		{"own sex beats either sex, male", []*ent.LabReferenceRange{anyAll, femaleAll, maleAll}, patient.SexMALE, 100, "male-all"},
		{"own sex beats a narrower band for either sex", []*ent.LabReferenceRange{anyNeonate, femaleAll}, patient.SexFEMALE, 5, "female-all"},
		{"other sex's range is not used", []*ent.LabReferenceRange{anyAll, femaleAll}, patient.SexMALE, 100, "any-all"},
		{"only the other sex's range", []*ent.LabReferenceRange{femaleAll}, patient.SexMALE, 100, ""},
		{"OTHER gets the neutral range", []*ent.LabReferenceRange{anyAll, femaleAll, maleAll}, patient.SexOTHER, 100, "any-all"},
		{"UNKNOWN gets the neutral range", []*ent.LabReferenceRange{anyAll, femaleAll, maleAll}, patient.SexUNKNOWN, 100, "any-all"},
		{"OTHER gets nothing without a neutral range", []*ent.LabReferenceRange{femaleAll, maleAll}, patient.SexOTHER, 100, ""},
		{"UNKNOWN gets nothing without a neutral range", []*ent.LabReferenceRange{femaleAll, maleAll}, patient.SexUNKNOWN, 100, ""},
		{"narrowest band wins", []*ent.LabReferenceRange{anyAll, anyNeonate, anyChild}, patient.SexMALE, 5, "any-neonate"},
		{"narrowest band wins among own sex's", []*ent.LabReferenceRange{femaleAdult, femaleTeen, femaleAll}, patient.SexFEMALE, 5000, "female-teen"},
		{"lower bound is inclusive", []*ent.LabReferenceRange{anyNeonate, anyInfant}, patient.SexFEMALE, 30, "any-infant"},
		{"upper bound is exclusive", []*ent.LabReferenceRange{anyNeonate}, patient.SexFEMALE, 30, ""},
		{"last day inside the upper bound", []*ent.LabReferenceRange{anyNeonate}, patient.SexFEMALE, 29, "any-neonate"},
		{"age 0 fits a band from 0", []*ent.LabReferenceRange{anyNeonate, anyAdult}, patient.SexMALE, 0, "any-neonate"},
		{"upper bound of a narrow band falls to the broad one", []*ent.LabReferenceRange{anyAll, anyNeonate}, patient.SexMALE, 30, "any-all"},
		{"later open band is narrower", []*ent.LabReferenceRange{anyAdult, anyElderly}, patient.SexMALE, 25000, "any-elderly"},
		{"later open band does not reach younger ages", []*ent.LabReferenceRange{anyAdult, anyElderly}, patient.SexMALE, 15000, "any-adult"},
		{"closed band beats an open one", []*ent.LabReferenceRange{anyAll, anyChild}, patient.SexOTHER, 4000, "any-child"},
		{"between bands", []*ent.LabReferenceRange{anyNeonate, anyAdult}, patient.SexFEMALE, 400, ""},
		{"no ranges", nil, patient.SexFEMALE, 400, ""},
	}
	for _, c := range cases {
		// The catalog's order must not matter, so every case runs forwards
		// and backwards.
		for _, order := range []string{"forwards", "backwards"} {
			ranges := slices.Clone(c.ranges)
			if order == "backwards" {
				slices.Reverse(ranges)
			}
			got := lab.RangeFor(ranges, c.sex, c.age)
			gotID := ""
			if got != nil {
				gotID = got.ID
			}
			if gotID != c.want {
				t.Errorf("%s (%s): RangeFor(%s, age %d) = %q, want %q", c.name, order, c.sex, c.age, gotID, c.want)
			}
		}
	}
}

func TestFlagNumeric(t *testing.T) {
	limits := func(low, high, critLow, critHigh *float64) *ent.LabReferenceRange {
		return &ent.LabReferenceRange{Low: low, High: high, CriticalLow: critLow, CriticalHigh: critHigh}
	}
	v := interpLimit
	var (
		potassium = limits(v(3.5), v(5.1), v(2.8), v(6.2))
		noPanic   = limits(v(3.5), v(5.1), nil, nil)
		upperOnly = limits(nil, v(5), nil, nil)
		lowerOnly = limits(v(1.0), nil, nil, nil)
		panicOnly = limits(nil, nil, v(2), v(30))
		troponin  = limits(nil, v(26), nil, v(64))
		empty     = limits(nil, nil, nil, nil)
	)
	cases := []struct {
		name  string
		r     *ent.LabReferenceRange
		value float64
		want  labresult.Flag // "" for nil
	}{
		{"mid range", potassium, 4.2, labresult.FlagNORMAL},
		{"exactly low", potassium, 3.5, labresult.FlagNORMAL},
		{"just below low", potassium, 3.49, labresult.FlagLOW},
		{"just above critical low", potassium, 2.81, labresult.FlagLOW},
		{"exactly critical low", potassium, 2.8, labresult.FlagCRITICAL_LOW},
		{"below critical low", potassium, 1.0, labresult.FlagCRITICAL_LOW},
		{"zero", potassium, 0, labresult.FlagCRITICAL_LOW},
		{"exactly high", potassium, 5.1, labresult.FlagNORMAL},
		{"just above high", potassium, 5.11, labresult.FlagHIGH},
		{"just below critical high", potassium, 6.19, labresult.FlagHIGH},
		{"exactly critical high", potassium, 6.2, labresult.FlagCRITICAL_HIGH},
		{"above critical high", potassium, 9.9, labresult.FlagCRITICAL_HIGH},
		{"no critical limits, far below", noPanic, -1, labresult.FlagLOW},
		{"no critical limits, far above", noPanic, 1000, labresult.FlagHIGH},
		{"upper limit only, zero", upperOnly, 0, labresult.FlagNORMAL},
		{"upper limit only, exactly high", upperOnly, 5, labresult.FlagNORMAL},
		{"upper limit only, above", upperOnly, 5.1, labresult.FlagHIGH},
		{"lower limit only, below", lowerOnly, 0.99, labresult.FlagLOW},
		{"lower limit only, exactly low", lowerOnly, 1.0, labresult.FlagNORMAL},
		{"lower limit only, high value", lowerOnly, 3, labresult.FlagNORMAL},
		{"critical limits only, between", panicOnly, 10, ""},
		{"critical limits only, exactly critical low", panicOnly, 2, labresult.FlagCRITICAL_LOW},
		{"critical limits only, exactly critical high", panicOnly, 30, labresult.FlagCRITICAL_HIGH},
		{"upper and critical high, normal", troponin, 3, labresult.FlagNORMAL},
		{"upper and critical high, exactly high", troponin, 26, labresult.FlagNORMAL},
		{"upper and critical high, high", troponin, 63, labresult.FlagHIGH},
		{"upper and critical high, exactly critical", troponin, 64, labresult.FlagCRITICAL_HIGH},
		{"no limits at all", empty, 5, ""},
		{"no range", nil, 5, ""},
	}
	for _, c := range cases {
		got := lab.FlagNumeric(c.r, c.value)
		if flagString(got) != string(c.want) {
			t.Errorf("%s: FlagNumeric(%v) = %s, want %q", c.name, c.value, flagString(got), c.want)
		}
	}
}

func flagString(f *labresult.Flag) string {
	if f == nil {
		return ""
	}
	return string(*f)
}

func TestFlagCoded(t *testing.T) {
	dipstick := &ent.LabTest{
		ResultCodes: []string{"NEGATIVE", "TRACE", "1+", "2+", "3+"},
		NormalCodes: []string{"NEGATIVE"},
	}
	tolerant := &ent.LabTest{
		ResultCodes: []string{"NEGATIVE", "TRACE", "1+"},
		NormalCodes: []string{"NEGATIVE", "TRACE"},
	}
	unjudged := &ent.LabTest{ResultCodes: []string{"A", "B", "O", "AB"}}
	cases := []struct {
		name string
		test *ent.LabTest
		code string
		want labresult.Flag
	}{
		{"normal answer", dipstick, "NEGATIVE", labresult.FlagNORMAL},
		{"abnormal answer", dipstick, "TRACE", labresult.FlagABNORMAL},
		{"strongest answer", dipstick, "3+", labresult.FlagABNORMAL},
		{"answers match exactly", dipstick, "negative", labresult.FlagABNORMAL},
		{"empty answer", dipstick, "", labresult.FlagABNORMAL},
		{"second normal answer", tolerant, "TRACE", labresult.FlagNORMAL},
		{"abnormal beside two normal ones", tolerant, "1+", labresult.FlagABNORMAL},
		{"no normal answers listed", unjudged, "AB", ""},
	}
	for _, c := range cases {
		if got := lab.FlagCoded(c.test, c.code); flagString(got) != string(c.want) {
			t.Errorf("%s: FlagCoded(%q) = %s, want %q", c.name, c.code, flagString(got), c.want)
		}
	}
}

func TestIsCritical(t *testing.T) {
	cases := []struct {
		flag *labresult.Flag
		want bool
	}{
		{nil, false},
		{flagOf(labresult.FlagNORMAL), false},
		{flagOf(labresult.FlagLOW), false},
		{flagOf(labresult.FlagHIGH), false},
		{flagOf(labresult.FlagABNORMAL), false},
		{flagOf(labresult.FlagCRITICAL_LOW), true},
		{flagOf(labresult.FlagCRITICAL_HIGH), true},
	}
	for _, c := range cases {
		if got := lab.IsCritical(c.flag); got != c.want {
			t.Errorf("IsCritical(%s) = %v, want %v", flagString(c.flag), got, c.want)
		}
	}
	// What FlagNumeric calls critical, IsCritical must too: that is how a
	// panic value reaches the people who must be told.
	r := &ent.LabReferenceRange{Low: interpLimit(3.5), High: interpLimit(5.1), CriticalLow: interpLimit(2.8), CriticalHigh: interpLimit(6.2)}
	for _, v := range []float64{1, 2.8, 3, 4, 5.5, 6.2, 8} {
		f := lab.FlagNumeric(r, v)
		want := v <= 2.8 || v >= 6.2
		if got := lab.IsCritical(f); got != want {
			t.Errorf("IsCritical(FlagNumeric(%v) = %s) = %v, want %v", v, flagString(f), got, want)
		}
	}
}

func flagOf(f labresult.Flag) *labresult.Flag { return &f }
