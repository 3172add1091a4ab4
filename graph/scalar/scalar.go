// Package scalar marshals the API's Date, Time and Money scalars: Time is
// always UTC RFC 3339, Date is a calendar date (YYYY-MM-DD) with no zone,
// Money is a decimal string over integer minor units.
package scalar

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
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
	// 9999-12-31T22:00:00-05:00 parses, but is year 10000 in UTC, which
	// has no RFC 3339 form to answer with and, stored as text by SQLite,
	// sorts before year 9999 and slips past every overlap check.
	if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, apperr.BadInput("", "%q is outside the years 0001 to 9999 in UTC", s)
	}
	return t, nil
}

// MarshalMoney writes an amount of minor units (cents) as a decimal string,
// "1250.00", so no client ever adds money as floats.
func MarshalMoney(minor int64) graphql.Marshaler {
	return graphql.WriterFunc(func(w io.Writer) {
		io.WriteString(w, strconv.Quote(FormatMoney(minor)))
	})
}

// FormatMoney renders minor units as a decimal with two places.
func FormatMoney(minor int64) string { return input.FormatMoney(minor) }

// UnmarshalMoney reads a decimal string with at most two places ("12",
// "12.5", "12.50") into minor units. Numbers are refused: a JSON float
// cannot carry money exactly.
func UnmarshalMoney(v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, apperr.BadInput("", "money must be a decimal string such as \"1250.00\"")
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	neg := strings.HasPrefix(whole, "-")
	whole = strings.TrimPrefix(whole, "-")
	if whole == "" || len(frac) > 2 || (hasFrac && frac == "") || !digits(whole) || !digits(frac) || len(whole) > 15 {
		return 0, apperr.BadInput("", "%q is not an amount with at most two decimals such as \"1250.00\"", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if err != nil {
		return 0, apperr.BadInput("", "%q is out of range", s)
	}
	if neg {
		n = -n
	}
	return n, nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
