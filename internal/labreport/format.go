package labreport

import (
	"math"
	"strconv"
	"strings"
	"unicode"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/labresult"
)

func patientName(p *ent.Patient) string { return p.FamilyName + ", " + p.GivenName }

// by names who did something, or nothing if that is not known.
func by(s *ent.Staff) string {
	if s == nil {
		return ""
	}
	return "by " + staffName(s)
}

func staffName(s *ent.Staff) string {
	if s == nil {
		return "—"
	}
	return s.GivenName + " " + s.FamilyName
}

// words turns an enum value into words: "WHOLE_BLOOD" → "Whole blood".
func words(enum string) string {
	s := strings.ToLower(strings.ReplaceAll(enum, "_", " "))
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func specimenType(enum string) string {
	if enum == "CSF" {
		return enum
	}
	return words(enum)
}

// priority keeps STAT as the word the wards use.
func priority(enum string) string {
	if enum == "STAT" {
		return enum
	}
	return words(enum)
}

func testName(t *ent.LabTest) string {
	if t == nil {
		return "—"
	}
	return t.Name
}

// testCode is what stands under a test's name: its LOINC code, and the
// specimen it runs on.
func testCode(t *ent.LabTest, s *ent.LabSpecimen) []span {
	var spans []span
	if t != nil {
		spans = append(spans, note("LOINC "+t.Code))
	}
	if s != nil {
		spans = append(spans, note("Specimen "+s.AccessionNumber))
	}
	return spans
}

// decimals is how many decimals the test reports with.
func decimals(t *ent.LabTest) int {
	if t == nil {
		return 1
	}
	return t.Decimals
}

func number(v float64, decimals int) string {
	s := strconv.FormatFloat(v, 'f', decimals, 64)
	// Rounding a small negative value to zero must not print "-0.0".
	if f, err := strconv.ParseFloat(s, 64); err == nil && f == 0 && math.Signbit(f) {
		s = s[1:]
	}
	return s
}

// resultValue is the value as reported: a number with the test's decimals
// and its unit, or the coded or free-text answer.
func resultValue(t *ent.LabTest, r *ent.LabResult) string {
	switch {
	case r.NumericValue != nil:
		v := number(*r.NumericValue, decimals(t))
		if u := unit(t, r); u != "" {
			v += " " + u
		}
		return v
	case r.CodedValue != nil:
		return *r.CodedValue
	case r.TextValue != nil:
		return *r.TextValue
	}
	return "—"
}

// unit is the result's own unit, else the test's, as printed.
func unit(t *ent.LabTest, r *ent.LabResult) string {
	if r.Unit != nil && *r.Unit != "" {
		return printedUnit(*r.Unit)
	}
	if t != nil && t.Unit != nil {
		return printedUnit(*t.Unit)
	}
	return ""
}

// printedUnit turns a UCUM unit, which the catalog keeps in plain ASCII,
// into what a reader expects on paper: "umol/L" → "µmol/L",
// "10*3/uL" → "10³/µL", "{INR}" → "INR"; the unity "1" prints nothing.
// A unit already written for print passes unchanged.
func printedUnit(ucum string) string {
	if ucum == "1" {
		return ""
	}
	var b strings.Builder
	atomStart := true
	for i := 0; i < len(ucum); i++ {
		c := ucum[i]
		switch {
		case c == '{' || c == '}' || c == '[' || c == ']':
			// Annotations and special units: their text is what they say.
			continue
		case c == 'u' && atomStart && i+1 < len(ucum) && isLetter(ucum[i+1]):
			b.WriteString("µ")
		case c == '*' && i > 0 && ucum[i-1] == '0':
			// A power of ten: 10*3 → 10³, the superscripts cp1252 has.
			j := i + 1
			for j < len(ucum) && ucum[j] >= '0' && ucum[j] <= '9' {
				j++
			}
			switch exp := ucum[i+1 : j]; exp {
			case "2":
				b.WriteString("²")
			case "3":
				b.WriteString("³")
			default:
				b.WriteString("^" + exp)
			}
			i = j - 1
		default:
			b.WriteByte(c)
		}
		atomStart = c == '/' || c == '.'
	}
	return b.String()
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// referenceRange prints the range applied to the result, as it was then:
// "3.5–5.1", or one bound. A coded result shows the answers that are normal.
func referenceRange(t *ent.LabTest, r *ent.LabResult) string {
	d := decimals(t)
	switch {
	case r.ReferenceLow != nil && r.ReferenceHigh != nil:
		return number(*r.ReferenceLow, d) + "–" + number(*r.ReferenceHigh, d)
	case r.ReferenceLow != nil:
		return ">= " + number(*r.ReferenceLow, d)
	case r.ReferenceHigh != nil:
		return "<= " + number(*r.ReferenceHigh, d)
	case r.CodedValue != nil && t != nil && len(t.NormalCodes) > 0:
		return strings.Join(t.NormalCodes, ", ")
	}
	return ""
}

// flagCode is the flag as lab reports print it; normal and unflagged
// results print nothing.
func flagCode(f *labresult.Flag) string {
	if f == nil {
		return ""
	}
	switch *f {
	case labresult.FlagHIGH:
		return "H"
	case labresult.FlagLOW:
		return "L"
	case labresult.FlagCRITICAL_HIGH:
		return "HH"
	case labresult.FlagCRITICAL_LOW:
		return "LL"
	case labresult.FlagABNORMAL:
		return "A"
	}
	return ""
}

// stroked are letters that no decomposition reduces to a base letter.
var stroked = map[rune]string{
	'Ł': "L", 'ł': "l", 'Đ': "D", 'đ': "d", 'Ħ': "H", 'ħ': "h", 'ı': "i", 'Ŧ': "T", 'ŧ': "t",
	'−': "-", '≤': "<=", '≥': ">=",
}

// fold replaces what cp1252 cannot print with the nearest it can: a
// letter's base letter ("ř" → "r"), so a name stays recognisable instead
// of turning into dots. What cp1252 has is kept as it is.
func fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		if _, ok := charmap.Windows1252.EncodeRune(r); ok {
			b.WriteRune(r)
			continue
		}
		if alt, ok := stroked[r]; ok {
			b.WriteString(alt)
			continue
		}
		if compat := norm.NFKC.String(string(r)); encodable(compat) {
			b.WriteString(compat) // "Ǆ" → "DŽ", "ﬁ" → "fi"
			continue
		}
		folded := false
		for _, d := range norm.NFKD.String(string(r)) {
			if _, ok := charmap.Windows1252.EncodeRune(d); ok && !unicode.Is(unicode.Mn, d) {
				b.WriteRune(d)
				folded = true
			}
		}
		if !folded {
			b.WriteByte('?')
		}
	}
	return b.String()
}

func encodable(s string) bool {
	for _, r := range s {
		if _, ok := charmap.Windows1252.EncodeRune(r); !ok {
			return false
		}
	}
	return true
}
