package hl7

import (
	"fmt"
	"strings"
)

// Observation is one OBX of an ORU^R01, with the specimen it was measured
// on and the notes that follow it.
type Observation struct {
	// Segment is the OBX's position in the message (1 = MSH), for
	// error messages an analyst can find.
	Segment int
	// Specimen is the specimen ID: SPM-2 if the message has an SPM for
	// the order, else OBR-3 (filler order number), else OBR-2.
	Specimen string
	// Identifier is OBX-3's components, e.g. ["2345-7" "Glucose" "LN"] or
	// ["" "" "" "WBC" "1"].
	Identifier []string
	ValueType  string // OBX-2: NM, ST, TX, CWE, CE…
	Value      string // OBX-5, first repetition, first component
	Units      string // OBX-6.1
	Status     string // OBX-11
	Comment    string // NTE-3 of the NTEs after the OBX, one a line
}

// SegmentError says where a message is broken.
type SegmentError struct {
	Segment int
	Reason  string
}

func (e *SegmentError) Error() string { return fmt.Sprintf("segment %d: %s", e.Segment, e.Reason) }

// Observations returns the OBXs of an ORU^R01 in order. It checks the
// structure the observations hang on (every OBX under an OBR that names a
// specimen) and nothing of their meaning.
func Observations(m *Message) ([]Observation, error) {
	var (
		out      []Observation
		inOrder  bool
		specimen string
		lastOBX  = -1
	)
	for i, seg := range m.Segments {
		n := i + 1
		switch seg.Name {
		case "OBR":
			inOrder = true
			lastOBX = -1
			specimen = firstOf(seg.Get(3, 1), seg.Get(2, 1))
		case "SPM":
			if !inOrder {
				return nil, &SegmentError{n, "SPM before any OBR"}
			}
			// SPM-2 is the specimen ID (EIP): placer's, else filler's.
			if id := firstOf(seg.Get(2, 1), seg.Get(2, 2)); id != "" {
				specimen = id
				for j := range out {
					if out[j].Segment > lastOrder(m, n) {
						out[j].Specimen = id
					}
				}
			}
		case "OBX":
			if !inOrder {
				return nil, &SegmentError{n, "OBX before any OBR"}
			}
			o := Observation{
				Segment:    n,
				Specimen:   specimen,
				Identifier: seg.Components(3),
				ValueType:  seg.Get(2, 1),
				Value:      seg.Get(5, 1),
				Units:      seg.Get(6, 1),
				Status:     seg.Get(11, 1),
			}
			if len(seg.Fields) > 5 && len(seg.Fields[5]) > 1 {
				return nil, &SegmentError{n, "OBX-5 repeats; one observation takes one value"}
			}
			if strings.Trim(strings.Join(o.Identifier, ""), " ") == "" {
				return nil, &SegmentError{n, "OBX-3 (observation identifier) is empty"}
			}
			out = append(out, o)
			lastOBX = len(out) - 1
		case "NTE":
			if lastOBX >= 0 {
				c := &out[lastOBX].Comment
				if *c != "" {
					*c += "\n"
				}
				*c += seg.Get(3, 1)
			}
		}
	}
	if len(out) == 0 {
		return nil, &SegmentError{len(m.Segments), "the message has no OBX"}
	}
	for _, o := range out {
		if o.Specimen == "" {
			return nil, &SegmentError{o.Segment, "no specimen ID for the OBX (SPM-2, OBR-3 or OBR-2)"}
		}
	}
	return out, nil
}

// lastOrder returns the position of the OBR that segment n belongs to.
func lastOrder(m *Message, n int) int {
	for i := n - 1; i >= 1; i-- {
		if m.Segments[i-1].Name == "OBR" {
			return i
		}
	}
	return 0
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}
