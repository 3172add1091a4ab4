package reports

import (
	"testing"
	"time"
)

// A weekly series compares with the same days whole weeks earlier: March
// 2026 starts on a Sunday and runs over six weekly buckets, so its
// previous period is 18 January to 17 February, also six buckets cut the
// same way, and it ends before March begins.
func TestPreviousWeeklyPeriodHasTheSameShape(t *testing.T) {
	date := func(m time.Month, d int) time.Time { return time.Date(2026, m, d, 0, 0, 0, 0, time.UTC) }
	from, to := date(time.March, 1), date(time.March, 31)
	pf, pt := previous(from, to, BucketWeek)
	if !pf.Equal(date(time.January, 18)) || !pt.Equal(date(time.February, 17)) {
		t.Fatalf("previous of March by week: %s to %s", pf.Format(time.DateOnly), pt.Format(time.DateOnly))
	}
	cur, prev := spans(0, from, to, BucketWeek, time.UTC), spans(1, pf, pt, BucketWeek, time.UTC)
	if len(cur) != 6 || len(prev) != 6 {
		t.Fatalf("buckets: %d now, %d before", len(cur), len(prev))
	}
	for i := range cur {
		if cur[i].End.Sub(cur[i].Start) != prev[i].End.Sub(prev[i].Start) {
			t.Errorf("bucket %d: %s now, %s before", i, cur[i].End.Sub(cur[i].Start), prev[i].End.Sub(prev[i].Start))
		}
	}
	if pf, pt := previous(from, to, BucketDay); !pf.Equal(date(time.January, 29)) || !pt.Equal(date(time.February, 28)) {
		t.Errorf("previous of March by day: %s to %s", pf.Format(time.DateOnly), pt.Format(time.DateOnly))
	}
}
