// Package input checks what a client sends before a domain service acts on
// it: free text, IDs of a given type, dates and times, check digits. Every
// domain checks with it, so the same mistake gets the same answer, naming
// the field, wherever it is made.
package input

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hmis-dev/hmis/internal/apperr"
)

// Checker collects the first input error of a mutation; later checks are
// skipped, so the client is told about one field at a time, the first in
// form order. The zero value is ready to use.
type Checker struct{ err error }

// Fail records err unless an earlier error was recorded.
func (c *Checker) Fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// Err is the first error recorded, or nil.
func (c *Checker) Err() error { return c.err }

// Text checks a required free-text input and returns it trimmed.
func (c *Checker) Text(field, s string, max int) string {
	s, err := Text(field, s, max)
	c.Fail(err)
	return s
}

// OptionalText checks an optional free-text input and returns it trimmed;
// an absent or blank value is nil.
func (c *Checker) OptionalText(field string, s *string, max int) *string {
	s, err := OptionalText(field, s, max)
	c.Fail(err)
	return s
}

// ID checks that id is an ID of type t.
func (c *Checker) ID(field, id string, t IDType) { c.Fail(ID(field, id, t)) }

// OptionalID checks id, if given, as ID does.
func (c *Checker) OptionalID(field string, id *string, t IDType) {
	if id != nil {
		c.ID(field, *id, t)
	}
}

// Text trims a required free-text input and checks that it is there and at
// most max characters long. Characters, not bytes: a name in Arabic or
// with an emoji is as long as it reads.
func Text(field, s string, max int) (string, error) {
	s = trim(s)
	if s == "" {
		return s, apperr.BadInput(field, "is required")
	}
	if err := noControls(field, s); err != nil {
		return s, err
	}
	return s, Length(field, s, max)
}

// noControls refuses control characters other than line breaks and tabs:
// nobody types them, a NUL is refused by PostgreSQL as text (an internal
// error instead of an answer) and the others garble whatever prints them.
func noControls(field, s string) error {
	for _, r := range s {
		if unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' {
			return apperr.BadInput(field, "must not contain control characters (U+%04X)", r)
		}
	}
	return nil
}

// OptionalText trims an optional free-text input, turning a blank one into
// nil, and checks its length as Text does.
func OptionalText(field string, s *string, max int) (*string, error) {
	if s == nil {
		return nil, nil
	}
	t := trim(*s)
	if t == "" {
		return nil, nil
	}
	if err := noControls(field, t); err != nil {
		return nil, err
	}
	return &t, Length(field, t, max)
}

// trim drops the white space at both ends of s and the invisible
// formatting characters (a zero-width space, a byte-order mark) with it, so
// that a reason nobody can read counts as no reason.
func trim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) })
}

// Length checks that s is at most max characters long, as it stands.
func Length(field, s string, max int) error {
	if utf8.RuneCountInString(s) > max {
		return apperr.BadInput(field, "must be at most %d characters", max)
	}
	return nil
}

// Stored is t as every database keeps it: UTC, to the microsecond
// (PostgreSQL's precision), so that what a mutation returns equals what a
// later read finds.
func Stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Date is the calendar date of t, as midnight UTC like a Date input.
func Date(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// Today is the calendar date it is at now in loc, as midnight UTC.
func Today(now time.Time, loc *time.Location) time.Time { return Date(now.In(loc)) }

// LuhnDigit is the check digit of Luhn's mod 10 scheme over digits (ASCII
// digits only; check the form first): from the rightmost digit leftwards
// every other digit, starting with the rightmost, is doubled, the digits of
// the results are summed, and the check digit brings the sum up to a
// multiple of ten. MRNs and LOINC codes carry it.
func LuhnDigit(digits string) byte {
	sum := 0
	double := true
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return byte('0' + (10-sum%10)%10)
}
