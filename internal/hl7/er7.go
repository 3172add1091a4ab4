// Package hl7 reads and writes HL7 v2 messages in their ER7 ("pipe")
// encoding: the delimiters a message declares in MSH-1 and MSH-2, segments
// ended by CR, LF or CRLF, fields, repetitions, components and
// subcomponents, and the escape sequences \F\ \S\ \T\ \R\ \E\. It is
// strict: what it cannot read unambiguously is an error, never a guess,
// because a misread field of a lab result is a wrong result in a chart.
//
// No HL7 library is written in the project's dependencies' style and
// served to it, and a message needs only this much: the parser is small
// enough to own.
package hl7

import (
	"errors"
	"fmt"
	"strings"
)

// Delimiters are the separators a message declares in its MSH segment.
type Delimiters struct {
	Field, Component, Repetition, Escape, Subcomponent byte
}

// Standard is what nearly every sender declares: |^~\&.
var Standard = Delimiters{Field: '|', Component: '^', Repetition: '~', Escape: '\\', Subcomponent: '&'}

// Message is a parsed message: its segments in order.
type Message struct {
	Delims   Delimiters
	Segments []Segment
}

// Segment is one segment: its name and its fields, Fields[1] being SEG-1.
// For MSH, Fields[1] is the field separator and Fields[2] the encoding
// characters, so that MSH-n is Fields[n] as the standard counts.
type Segment struct {
	Name   string
	Fields []Field
}

// Field is one field's repetitions.
type Field []Repetition

// Repetition is one repetition's components.
type Repetition []Component

// Component is one component's subcomponents, unescaped.
type Component []string

// MaxSegments bounds how many segments a message may have, so a hostile
// message cannot make the parser allocate without end.
const MaxSegments = 2000

// Parse reads an ER7 message. Segments may end in CR, LF or CRLF; empty
// lines (as between a trailing CR and LF) are skipped.
func Parse(text string) (*Message, error) {
	text = strings.TrimLeft(text, "\r\n")
	if !strings.HasPrefix(text, "MSH") {
		return nil, errors.New("the message does not start with an MSH segment")
	}
	if len(text) < 8 {
		return nil, errors.New("the MSH segment is too short to declare its delimiters")
	}
	d := Delimiters{Field: text[3]}
	enc := text[4:]
	end := strings.IndexByte(enc, d.Field)
	if end < 0 {
		return nil, errors.New("MSH-2 (encoding characters) is not followed by a field separator")
	}
	enc = enc[:end]
	if len(enc) < 4 || len(enc) > 5 {
		return nil, fmt.Errorf("MSH-2 must declare 4 encoding characters, not %q", enc)
	}
	d.Component, d.Repetition, d.Escape, d.Subcomponent = enc[0], enc[1], enc[2], enc[3]
	seen := map[byte]bool{}
	for _, c := range []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent} {
		if seen[c] || c == '\r' || c == '\n' || c < 0x20 || c > 0x7e || isAlnum(c) {
			return nil, fmt.Errorf("the delimiters %q are not distinct printable punctuation", string(d.Field)+enc[:4])
		}
		seen[c] = true
	}
	m := &Message{Delims: d}
	lines := strings.FieldsFunc(text, func(r rune) bool { return r == '\r' || r == '\n' })
	if len(lines) > MaxSegments {
		return nil, fmt.Errorf("the message has more than %d segments", MaxSegments)
	}
	for i, line := range lines {
		seg, err := d.segment(line, i == 0)
		if err != nil {
			return nil, fmt.Errorf("segment %d: %w", i+1, err)
		}
		m.Segments = append(m.Segments, seg)
	}
	return m, nil
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

func (d Delimiters) segment(line string, first bool) (Segment, error) {
	if len(line) < 3 {
		return Segment{}, fmt.Errorf("%q is not a segment", line)
	}
	name := line[:3]
	for i := 0; i < 3; i++ {
		if c := name[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return Segment{}, fmt.Errorf("%q is not a segment name", name)
		}
	}
	if len(line) > 3 && line[3] != d.Field {
		return Segment{}, fmt.Errorf("segment %s is not followed by the field separator", name)
	}
	if (name == "MSH") != first {
		return Segment{}, errors.New("MSH must be the first segment and only the first")
	}
	seg := Segment{Name: name, Fields: []Field{{{{name}}}}}
	rest := ""
	if len(line) > 4 {
		rest = line[4:]
	}
	raw := strings.Split(rest, string(d.Field))
	if name == "MSH" {
		// MSH-1 is the separator itself and MSH-2 is taken as written:
		// neither is split or unescaped.
		seg.Fields = append(seg.Fields, Field{{{string(d.Field)}}}, Field{{{raw[0]}}})
		raw = raw[1:]
	}
	for _, f := range raw {
		field, err := d.field(f)
		if err != nil {
			return Segment{}, err
		}
		seg.Fields = append(seg.Fields, field)
	}
	return seg, nil
}

func (d Delimiters) field(s string) (Field, error) {
	var f Field
	for _, rep := range strings.Split(s, string(d.Repetition)) {
		var r Repetition
		for _, comp := range strings.Split(rep, string(d.Component)) {
			var c Component
			for _, sub := range strings.Split(comp, string(d.Subcomponent)) {
				u, err := d.Unescape(sub)
				if err != nil {
					return nil, err
				}
				c = append(c, u)
			}
			r = append(r, c)
		}
		f = append(f, r)
	}
	return f, nil
}

// Unescape resolves the escape sequences of one subcomponent. \F\ \S\ \T\
// \R\ \E\ become the delimiters; \.br\ a line break; \Xhh…\ the bytes it
// spells; highlighting (\H\ \N\) is dropped. Any other sequence, or an
// escape left open, is an error.
func (d Delimiters) Unescape(s string) (string, error) {
	esc := d.Escape
	if strings.IndexByte(s, esc) < 0 {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != esc {
			b.WriteByte(s[i])
			continue
		}
		end := strings.IndexByte(s[i+1:], esc)
		if end < 0 {
			return "", fmt.Errorf("an escape sequence is not closed in %q", s)
		}
		seq := s[i+1 : i+1+end]
		i += end + 1
		switch {
		case seq == "F":
			b.WriteByte(d.Field)
		case seq == "S":
			b.WriteByte(d.Component)
		case seq == "T":
			b.WriteByte(d.Subcomponent)
		case seq == "R":
			b.WriteByte(d.Repetition)
		case seq == "E":
			b.WriteByte(esc)
		case seq == ".br":
			b.WriteByte('\n')
		case seq == "H" || seq == "N":
		case len(seq) > 1 && seq[0] == 'X' && len(seq)%2 == 1:
			for j := 1; j < len(seq); j += 2 {
				var v byte
				if _, err := fmt.Sscanf(seq[j:j+2], "%02x", &v); err != nil {
					return "", fmt.Errorf("\\%s\\ is not a hexadecimal escape", seq)
				}
				b.WriteByte(v)
			}
		default:
			return "", fmt.Errorf("\\%s\\ is not an escape sequence", seq)
		}
	}
	return b.String(), nil
}

// Quote writes s so that it reads back as itself in one subcomponent.
func (d Delimiters) Quote(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case d.Escape:
			b.WriteString(string(d.Escape) + "E" + string(d.Escape))
		case d.Field:
			b.WriteString(string(d.Escape) + "F" + string(d.Escape))
		case d.Component:
			b.WriteString(string(d.Escape) + "S" + string(d.Escape))
		case d.Subcomponent:
			b.WriteString(string(d.Escape) + "T" + string(d.Escape))
		case d.Repetition:
			b.WriteString(string(d.Escape) + "R" + string(d.Escape))
		case '\r', '\n':
			b.WriteString(string(d.Escape) + ".br" + string(d.Escape))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Get returns SEG-field.component (both counted from 1), first repetition,
// first subcomponent; "" when absent.
func (s Segment) Get(field, component int) string {
	return s.Rep(field, 0, component)
}

// Rep is Get for repetition rep (from 0).
func (s Segment) Rep(field, rep, component int) string {
	if field < 0 || field >= len(s.Fields) {
		return ""
	}
	f := s.Fields[field]
	if rep >= len(f) {
		return ""
	}
	r := f[rep]
	if component < 1 || component > len(r) {
		return ""
	}
	if c := r[component-1]; len(c) > 0 {
		return c[0]
	}
	return ""
}

// Components returns the components of SEG-field's first repetition, each
// its first subcomponent.
func (s Segment) Components(field int) []string {
	if field < 0 || field >= len(s.Fields) || len(s.Fields[field]) == 0 {
		return nil
	}
	var out []string
	for _, c := range s.Fields[field][0] {
		out = append(out, c[0])
	}
	return out
}

// MSH returns the message header.
func (m *Message) MSH() Segment { return m.Segments[0] }
