// Package scalar marshals the API's Date and Time scalars: Time is always
// UTC RFC 3339, Date is a calendar date (YYYY-MM-DD) with no zone.
package scalar

import (
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/internal/apperr"
)

const dateLayout = "2006-01-02"

// MarshalDate writes t's calendar date.
func MarshalDate(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(t.UTC().Format(dateLayout)))
	})
}

// UnmarshalDate reads YYYY-MM-DD as midnight UTC of that day.
func UnmarshalDate(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, apperr.BadInput("", "a date must be a string YYYY-MM-DD")
	}
	t, err := time.Parse(dateLayout, s)
	if err != nil {
		return time.Time{}, apperr.BadInput("", "%q is not a date YYYY-MM-DD", s)
	}
	return t, nil
}

// MarshalTime writes t in UTC, RFC 3339 with the fraction it has.
func MarshalTime(t time.Time) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(t.UTC().Format(time.RFC3339Nano)))
	})
}

// UnmarshalTime reads RFC 3339 with any offset and returns it in UTC.
func UnmarshalTime(v any) (time.Time, error) {
	s, ok := v.(string)
	if !ok {
		return time.Time{}, apperr.BadInput("", "a time must be an RFC 3339 string")
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apperr.BadInput("", "%q is not an RFC 3339 time such as 2026-01-31T09:00:00Z", s)
	}
	return t.UTC(), nil
}
