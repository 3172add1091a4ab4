package reports

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
)

// Bucket is the time step of a series.
type Bucket string

const (
	BucketNone  Bucket = ""
	BucketDay   Bucket = "DAY"
	BucketWeek  Bucket = "WEEK"
	BucketMonth Bucket = "MONTH"
)

// MaxDays bounds a report's range, and MaxBuckets the points of a series:
// a range of years by the day would be a table nobody reads and a query
// nobody waits for.
const (
	MaxDays    = 3 * 366
	MaxBuckets = 400
)

// Params are a report's parameters as the client sent them. From and To
// are calendar dates (midnight UTC of the day, as the Date scalar reads
// them), both included.
type Params struct {
	From, To     time.Time
	Bucket       Bucket
	DepartmentID string
	WardID       string
	PayerID      string
}

// span is one bucket of one period: [Start, End) in UTC. Period 0 is the
// asked-for period, 1 the one before it.
type span struct {
	Period, Index int
	Start, End    time.Time
	// Label is the bucket's first local day.
	Label string
}

// check validates p's shape, naming the field as the client sent it.
func (p Params) check() error {
	switch {
	case p.From.IsZero():
		return apperr.BadInput("input.from", "is required")
	case p.To.IsZero():
		return apperr.BadInput("input.to", "is required")
	case p.To.Before(p.From):
		return apperr.BadInput("input.to", "must not be before input.from")
	case p.To.Sub(p.From) > MaxDays*24*time.Hour:
		return apperr.BadInput("input.to", "a report spans at most %d days", MaxDays)
	}
	switch p.Bucket {
	case BucketNone, BucketDay, BucketWeek, BucketMonth:
	default:
		return apperr.BadInput("input.bucket", "must be DAY, WEEK or MONTH")
	}
	if p.DepartmentID != "" {
		if err := input.ID("input.departmentId", p.DepartmentID, input.Department); err != nil {
			return err
		}
	}
	if p.WardID != "" {
		if err := input.ID("input.wardId", p.WardID, input.Ward); err != nil {
			return err
		}
	}
	if p.PayerID != "" {
		if err := input.ID("input.payerId", p.PayerID, input.Payer); err != nil {
			return err
		}
	}
	return nil
}

// wholeBuckets widens a weekly or monthly series to whole weeks (Monday to
// Sunday) or months. A bucket clipped to the range would be a cell of the
// client's choosing, and cells that differ by a day differ by the people
// of that day: with whole buckets each week or month is one cell, however
// it is asked for.
func (p Params) wholeBuckets() Params {
	if p.Bucket != BucketWeek && p.Bucket != BucketMonth {
		return p
	}
	p.From = bucketStart(p.From, p.Bucket)
	p.To = next(bucketStart(p.To, p.Bucket), p.Bucket).AddDate(0, 0, -1)
	return p
}

// day is the calendar date d (midnight UTC, as Date scalars are) as a
// local day in loc.
func day(d time.Time, loc *time.Location) time.Time {
	return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, loc)
}

// previous is the period before [from, to] of the same shape: as many
// months before for a monthly series; for a weekly one the same days as
// many whole weeks earlier as the series has buckets, so each week's row
// compares with a week cut the same way (a series starting on a Sunday
// compares with one starting on a Sunday); otherwise as many days. Dates
// are calendar dates.
func previous(from, to time.Time, b Bucket) (time.Time, time.Time) {
	switch b {
	case BucketMonth:
		months := (to.Year()-from.Year())*12 + int(to.Month()-from.Month()) + 1
		return from.AddDate(0, -months, 0), from.AddDate(0, 0, -1)
	case BucketWeek:
		weeks := (int(to.Sub(from).Hours()/24) + weekday(from)) / 7
		weeks++
		return from.AddDate(0, 0, -7*weeks), to.AddDate(0, 0, -7*weeks)
	}
	days := int(to.Sub(from).Hours()/24) + 1
	return from.AddDate(0, 0, -days), from.AddDate(0, 0, -1)
}

// weekday is d's day of the week counted from Monday (0).
func weekday(d time.Time) int { return (int(d.Weekday()) + 6) % 7 }

// bucketStart is the first day of the bucket d falls in.
func bucketStart(d time.Time, b Bucket) time.Time {
	switch b {
	case BucketWeek:
		return d.AddDate(0, 0, -weekday(d))
	case BucketMonth:
		return time.Date(d.Year(), d.Month(), 1, 0, 0, 0, 0, d.Location())
	}
	return d
}

func next(d time.Time, b Bucket) time.Time {
	switch b {
	case BucketWeek:
		return d.AddDate(0, 0, 7)
	case BucketMonth:
		return d.AddDate(0, 1, 0)
	}
	return d.AddDate(0, 0, 1)
}

// spans cuts the calendar dates [from, to] into buckets of local days in
// loc, clipped to the range; without a bucket the range is one span.
func spans(period int, from, to time.Time, b Bucket, loc *time.Location) []span {
	start, end := day(from, loc), day(to, loc).AddDate(0, 0, 1)
	if b == BucketNone {
		return []span{{Period: period, Start: start.UTC(), End: end.UTC(), Label: from.Format(time.DateOnly)}}
	}
	var out []span
	for s := bucketStart(start, b); s.Before(end); s = next(s, b) {
		lo, hi := s, next(s, b)
		if lo.Before(start) {
			lo = start
		}
		if hi.After(end) {
			hi = end
		}
		out = append(out, span{Period: period, Index: len(out), Start: lo.UTC(), End: hi.UTC(), Label: s.Format(time.DateOnly)})
	}
	return out
}

// MarshalGQL implements graphql.Marshaler.
func (b Bucket) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(b))) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (b *Bucket) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("a bucket must be a string")
	}
	*b = Bucket(s)
	return nil
}
