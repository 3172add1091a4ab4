package hl7

import (
	"strings"
	"testing"
	"time"
)

// A hematology analyzer (Sysmex XN-like): OBX-3 ^^^WBC^1, everything under
// one OBR whose OBR-3 is the sample ID, segments ended by CR.
const sysmex = "MSH|^~\\&|XN-550|LAB1|HMIS|HOSP|20261206101500||ORU^R01|MSG00017|P|2.3.1\r" +
	"PID|1||||^^||U\r" +
	"OBR|1||ACC-0001|^^^^CBC|||20261206100000\r" +
	"OBX|1|NM|^^^WBC^1||7.12|10*3/uL|3.5-10.5|N|||F\r" +
	"OBX|2|NM|^^^HGB^1||13.9|g/dL|||||F\r"

// A chemistry analyzer (Roche cobas-like): LOINC in OBX-3, the specimen in
// SPM, CRLF endings and escapes in the notes.
const cobas = "MSH|^~\\&|cobas|CHEM|HMIS|HOSP|20261206101500+0100||ORU^R01^ORU_R01|c-88|P|2.5.1\r\n" +
	"PID|1||MRN1\r\n" +
	"OBR|1|ORD-7||2345-7^Glucose^LN\r\n" +
	"SPM|1|ACC-0002&LAB||SER\r\n" +
	"OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|3.9-5.5|N|||F\r\n" +
	"NTE|1||lipaemic \\T\\ icteric\\E\\index \\F\\ 2\r\n" +
	"NTE|2||second\\.br\\line\r\n"

func TestParseDialects(t *testing.T) {
	m, err := Parse(sysmex)
	if err != nil {
		t.Fatal(err)
	}
	h := HeaderOf(m)
	if h.SendingApplication != "XN-550" || h.SendingFacility != "LAB1" || h.ControlID != "MSG00017" || h.MessageType != "ORU^R01" {
		t.Fatalf("header %+v", h)
	}
	obs, err := Observations(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(obs) != 2 || obs[0].Specimen != "ACC-0001" || obs[0].Identifier[3] != "WBC" || obs[0].Value != "7.12" ||
		obs[0].Units != "10*3/uL" || obs[0].Status != "F" || obs[1].Segment != 5 {
		t.Fatalf("sysmex observations %+v", obs)
	}

	m, err = Parse(cobas)
	if err != nil {
		t.Fatal(err)
	}
	if h := HeaderOf(m); h.MessageType != "ORU^R01" || h.ControlID != "c-88" || h.Version != "2.5.1" {
		t.Fatalf("header %+v", h)
	}
	obs, err = Observations(m)
	if err != nil {
		t.Fatal(err)
	}
	want := "lipaemic & icteric\\index | 2\nsecond\nline"
	if len(obs) != 1 || obs[0].Specimen != "ACC-0002" || obs[0].Identifier[0] != "2345-7" || obs[0].Identifier[2] != "LN" ||
		obs[0].Comment != want {
		t.Fatalf("cobas observations %+v, comment %q", obs, obs[0].Comment)
	}
}

func TestCustomDelimiters(t *testing.T) {
	msg := "MSH#*!?$#A#F#R#G#1##ORU*R01#X9#P#2.5\nOBR#1##S-1\nOBX#1#ST#CODE*Name#1#a?F?b$c!d*e#u\n"
	m, err := Parse(msg)
	if err != nil {
		t.Fatal(err)
	}
	if h := HeaderOf(m); h.ControlID != "X9" || h.MessageType != "ORU^R01" {
		t.Fatalf("header %+v", h)
	}
	obx := m.Segments[2]
	if got := obx.Fields[5]; len(got) != 2 || got[0][0][0] != "a#b" || got[0][0][1] != "c" || got[1][0][0] != "d" || got[1][1][0] != "e" {
		t.Fatalf("OBX-5 %#v", got)
	}
	if m.MSH().Get(2, 1) != "*!?$" || m.MSH().Get(1, 1) != "#" {
		t.Fatalf("MSH-1/2 %q %q", m.MSH().Get(1, 1), m.MSH().Get(2, 1))
	}
}

func TestParseRefuses(t *testing.T) {
	for name, msg := range map[string]string{
		"empty":              "",
		"no MSH":             "PID|1\r",
		"short MSH":          "MSH|^~",
		"three encoding":     "MSH|^~\\|A\r",
		"repeated delimiter": "MSH|^^\\&|A\r",
		"letter delimiter":   "MSH|^~\\a|A\r",
		"open escape":        "MSH|^~\\&|A\rOBX|1|ST|X||a\\F\r",
		"unknown escape":     "MSH|^~\\&|A\rOBX|1|ST|X||a\\Q\\b\r",
		"bad hex":            "MSH|^~\\&|A\rOBX|1|ST|X||\\Xzz\\\r",
		"bad segment name":   "MSH|^~\\&|A\robx|1\r",
		"no separator":       "MSH|^~\\&|A\rOBX1\r",
		"second MSH":         "MSH|^~\\&|A\rMSH|^~\\&|B\r",
		"too many segments":  "MSH|^~\\&|A\r" + strings.Repeat("NTE|1\r", MaxSegments),
	} {
		if _, err := Parse(msg); err == nil {
			t.Errorf("%s: parsed %q", name, msg)
		}
	}
}

func TestObservationsRefuse(t *testing.T) {
	head := "MSH|^~\\&|A|B|||||ORU^R01|1|P|2.5\r"
	for name, body := range map[string]string{
		"no OBX":         "OBR|1||S\r",
		"OBX before OBR": "OBX|1|NM|X||1|u\rOBR|1||S\r",
		"no specimen":    "OBR|1\rOBX|1|NM|X||1|u\r",
		"empty OBX-3":    "OBR|1||S\rOBX|1|NM|^^||1|u\r",
		"repeated OBX-5": "OBR|1||S\rOBX|1|NM|X||1~2|u\r",
		"SPM before OBR": "SPM|1|S\rOBR|1||S\rOBX|1|NM|X||1|u\r",
	} {
		m, err := Parse(head + body)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := Observations(m); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Every string written with Quote reads back as itself, whatever
// delimiters it contains: the fuzz-style property behind the ACK's reasons.
func TestEscapeRoundTrip(t *testing.T) {
	inputs := []string{"", "plain", "|^~\\&", "a\\b", "\\F\\", "x|y^z~w&v\\u", "tail\\", "\\E\\\\E\\", "ünïcode|ß"}
	for i := 0; i < 256; i++ {
		inputs = append(inputs, string([]byte{byte(i), '|', byte(255 - i), '\\'}))
	}
	for _, s := range inputs {
		if strings.ContainsAny(s, "\r\n") {
			continue
		}
		got, err := Standard.Unescape(Standard.Quote(s))
		if err != nil || got != s {
			t.Errorf("%q: escaped %q read back %q, %v", s, Standard.Quote(s), got, err)
		}
	}
	// And an escaped value parses back as one subcomponent of one field.
	v := "1 | 2 ^ 3 & 4 ~ 5 \\ 6"
	m, err := Parse("MSH|^~\\&|A\rOBX|1|ST|X||" + Standard.Quote(v) + "\r")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Segments[1].Get(5, 1); got != v || len(m.Segments[1].Fields[5]) != 1 {
		t.Fatalf("read back %q", got)
	}
}

func TestAck(t *testing.T) {
	m, _ := Parse(sysmex)
	at := time.Date(2026, 12, 6, 10, 15, 0, 0, time.UTC)
	ack := Ack(HeaderOf(m), "HMIS", "A1", at, Error, ErrApplicationError, "no specimen has the accession number \"X|1\"")
	want := "MSH|^~\\&|HMIS|HOSP|XN-550|LAB1|20261206101500+0000||ACK^R01^ACK|A1|P|2.3.1\r" +
		"MSA|AE|MSG00017\r" +
		"ERR|||207^Application internal error^HL70357|E||||no specimen has the accession number \"X\\F\\1\"\r"
	if ack != want {
		t.Fatalf("ack\n%q\nwant\n%q", ack, want)
	}
	a, err := Parse(ack)
	if err != nil {
		t.Fatal(err)
	}
	if a.Segments[2].Get(8, 1) != "no specimen has the accession number \"X|1\"" {
		t.Fatalf("reason read back %q", a.Segments[2].Get(8, 1))
	}
	// Unreadable message: no header to answer, the receiver names itself.
	if got := Ack(Header{}, "HMIS", "A2", at, Reject, ErrSegmentSequence, "bad"); !strings.HasPrefix(got, "MSH|^~\\&|HMIS||||") ||
		!strings.Contains(got, "\rMSA|AR|\r") {
		t.Fatalf("reject %q", got)
	}
}
