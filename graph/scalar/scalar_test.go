package scalar

import (
	"testing"
	"time"
)

func TestUnmarshalTimeKeepsToYearsRFC3339CanWrite(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" for refused
	}{
		{"2026-01-31T09:00:00+03:00", "2026-01-31T06:00:00Z"},
		{"9999-12-31T23:59:59Z", "9999-12-31T23:59:59Z"},
		{"0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"},
		{"9999-12-31T22:00:00-05:00", ""}, // year 10000 in UTC
		{"0001-01-01T00:00:00+01:00", ""}, // year 0 in UTC
		{"2026-01-31T09:00:00", ""},       // no zone
	} {
		got, err := UnmarshalTime(c.in)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%s: accepted as %s", c.in, got)
		case c.want != "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.want != "" && got.Format(time.RFC3339) != c.want:
			t.Errorf("%s: %s, want %s", c.in, got.Format(time.RFC3339), c.want)
		}
	}
}
