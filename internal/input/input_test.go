package input

import (
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apperr"
)

// A name is as long as it reads: one character of Arabic (two bytes in
// UTF-8) or an emoji (four) counts as one, like a Latin letter.
func TestTextCountsCharacters(t *testing.T) {
	const max = 100
	for script, unit := range map[string]string{
		"Swahili": "Wanjiru ",
		"Arabic":  "فاطمة ",
		"emoji":   "🙂",
	} {
		atLimit := strings.Repeat(unit, max)
		atLimit = string([]rune(atLimit)[:max-1]) + "x" // no trailing space to trim
		if got, err := Text("input.givenName", atLimit, max); err != nil || got != atLimit {
			t.Errorf("%s name of exactly %d characters (%d bytes): %v", script, max, len(atLimit), err)
		}
		over := atLimit + "x"
		_, err := Text("input.givenName", over, max)
		e, ok := apperr.As(err)
		if !ok || e.Code != apperr.BadUserInput || e.Field != "input.givenName" || e.Message != "must be at most 100 characters" {
			t.Errorf("%s name of %d characters: %v, want BAD_USER_INPUT on input.givenName", script, max+1, err)
		}
	}
}

func TestTextTrimsAndRequires(t *testing.T) {
	if got, err := Text("f", "  Amina \n", 5); err != nil || got != "Amina" {
		t.Errorf("trimmed to %q, %v", got, err)
	}
	if _, err := Text("f", " \t ", 5); err == nil || err.Error() != "f: is required" {
		t.Errorf("blank: %v", err)
	}
	// A zero-width space or a byte-order mark is as blank as a space.
	if _, err := Text("f", "\u200b \ufeff", 5); err == nil || err.Error() != "f: is required" {
		t.Errorf("invisible: %v", err)
	}
	if got, err := Text("f", "\u200bok\u200b", 5); err != nil || got != "ok" {
		t.Errorf("invisible ends: %q, %v", got, err)
	}
	blank := "  \u200b "
	if got, err := OptionalText("f", &blank, 5); got != nil || err != nil {
		t.Errorf("blank optional: %v, %v", got, err)
	}
	long := "  ابجدهو  "
	if _, err := OptionalText("f", &long, 5); err == nil {
		t.Error("six Arabic letters passed a limit of five")
	}
}

// Free text refuses control characters but keeps line breaks and tabs.
func TestTextRefusesControlCharacters(t *testing.T) {
	for _, s := range []string{"a\x00b", "ring\x07", "esc\x1b[31m", "del\x7f", "c1\u0085x"} {
		if _, err := Text("input.reason", s, 50); err == nil || !strings.Contains(err.Error(), "input.reason: must not contain control characters") {
			t.Errorf("%q: %v", s, err)
		}
		if _, err := OptionalText("input.reason", &s, 50); err == nil {
			t.Errorf("optional %q accepted", s)
		}
	}
	if got, err := Text("f", "line one\r\n\tline two", 50); err != nil || got != "line one\r\n\tline two" {
		t.Errorf("line breaks and tabs: %q, %v", got, err)
	}
}

// The checker reports the first failure only, so a client fixes one field
// at a time in form order.
func TestCheckerKeepsTheFirstError(t *testing.T) {
	var c Checker
	c.ID("input.patientId", "pat_x", Patient)
	c.Text("input.reason", "", 10)
	e, ok := apperr.As(c.Err())
	if !ok || e.Field != "input.patientId" || e.Message != "is not a patient ID" {
		t.Fatalf("first error %v", c.Err())
	}
}

func TestIDTypes(t *testing.T) {
	id := "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV"
	if err := ID("id", id, Patient); err != nil {
		t.Errorf("a patient ID refused: %v", err)
	}
	err := ID("id", id, Staff)
	if e, ok := apperr.As(err); !ok || e.Message != "is not a staff ID" {
		t.Errorf("a patient ID as a staff ID: %v", err)
	}
	if Patient.Prefix != "pat" || Ward.Prefix != "wrd" || LabSpecimen.Prefix != "spc" {
		t.Errorf("prefixes %q %q %q do not follow the generated map", Patient.Prefix, Ward.Prefix, LabSpecimen.Prefix)
	}
}

func TestLuhnDigit(t *testing.T) {
	for digits, want := range map[string]byte{
		"7992739871": '3', // the textbook example
		"12345":      '5', // LOINC's worked example, 12345-5
		"718":        '7', // haemoglobin, 718-7
		"10000000":   '9', // the first demo MRN, 100000009
	} {
		if got := LuhnDigit(digits); got != want {
			t.Errorf("LuhnDigit(%s) = %c, want %c", digits, got, want)
		}
	}
}

func TestDatesAndStoredTimes(t *testing.T) {
	nairobi := time.FixedZone("EAT", 3*60*60)
	late := time.Date(2024, 3, 1, 22, 30, 0, 0, time.UTC) // already 2 March in Nairobi
	if got := Today(late, nairobi); !got.Equal(time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("today in Nairobi = %v", got)
	}
	if got := Stored(time.Date(2024, 3, 1, 12, 0, 0, 123456789, nairobi)); got.Nanosecond() != 123456000 || got.Location() != time.UTC {
		t.Errorf("stored %v", got)
	}
}
