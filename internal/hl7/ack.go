package hl7

import (
	"strings"
	"time"
)

// AckCode is MSA-1 of an original-mode acknowledgement.
type AckCode string

const (
	// Accept: the message was processed.
	Accept AckCode = "AA"
	// Error: the message was read but could not be processed (no such
	// specimen, a unit that is not the test's); nothing of it was applied.
	Error AckCode = "AE"
	// Reject: the message could not be read, or is not a kind this
	// receiver takes.
	Reject AckCode = "AR"
)

// Header is what an acknowledgement needs of the message it answers; the
// zero value answers a message too broken to read.
type Header struct {
	SendingApplication, SendingFacility     string
	ReceivingApplication, ReceivingFacility string
	ControlID                               string
	MessageType                             string // MSH-9, e.g. ORU^R01
	Trigger                                 string // MSH-9.2
	Version                                 string // MSH-12
}

// HeaderOf reads the header of m.
func HeaderOf(m *Message) Header {
	h := m.MSH()
	return Header{
		SendingApplication:   h.Get(3, 1),
		SendingFacility:      h.Get(4, 1),
		ReceivingApplication: h.Get(5, 1),
		ReceivingFacility:    h.Get(6, 1),
		ControlID:            h.Get(10, 1),
		MessageType:          strings.Trim(h.Get(9, 1)+"^"+h.Get(9, 2), "^"),
		Trigger:              h.Get(9, 2),
		Version:              h.Get(12, 1),
	}
}

// ErrorCodes of HL7 table 0357 used in ERR-3.
const (
	ErrSegmentSequence  = "100"
	ErrRequiredField    = "101"
	ErrDataType         = "102"
	ErrUnsupportedType  = "200"
	ErrUnknownKey       = "204"
	ErrApplicationError = "207"
)

// Ack builds the acknowledgement of the message h heads: sender and
// receiver swapped, MSA with the code and the message's control ID, and for
// AE and AR an ERR segment with the reason. self names this receiver when
// the message named none. It uses the standard delimiters and ends each
// segment with CR, as the standard writes them.
func Ack(h Header, self string, controlID string, at time.Time, code AckCode, errCode, reason string) string {
	d := Standard
	e := d.Quote
	sendApp := h.ReceivingApplication
	if sendApp == "" {
		sendApp = self
	}
	version := h.Version
	if version == "" {
		version = "2.5.1"
	}
	trigger := h.Trigger
	var b strings.Builder
	b.WriteString(strings.Join([]string{"MSH", `^~\&`, e(sendApp), e(h.ReceivingFacility),
		e(h.SendingApplication), e(h.SendingFacility), at.UTC().Format("20060102150405") + "+0000", "",
		"ACK^" + e(trigger) + "^ACK", e(controlID), "P", e(version)}, "|"))
	b.WriteString("\r")
	b.WriteString("MSA|" + string(code) + "|" + e(h.ControlID))
	b.WriteString("\r")
	if code != Accept {
		if errCode == "" {
			errCode = ErrApplicationError
		}
		b.WriteString("ERR|||" + errCode + "^" + e(errorName(errCode)) + "^HL70357|E||||" + e(reason))
		b.WriteString("\r")
	}
	return b.String()
}

func errorName(code string) string {
	switch code {
	case ErrSegmentSequence:
		return "Segment sequence error"
	case ErrRequiredField:
		return "Required field missing"
	case ErrDataType:
		return "Data type error"
	case ErrUnsupportedType:
		return "Unsupported message type"
	case ErrUnknownKey:
		return "Unknown key identifier"
	}
	return "Application internal error"
}
