// Package labhl7 takes results from lab analyzers as HL7 v2 ORU^R01
// messages, over HTTP (POST /hl7/v2, with the instrument's API key) and
// over MLLP. Each message is matched to its specimens by accession number
// and to the lab's tests by code, and entered through the lab's own entry
// path (lab.Service.EnterFromInstrument) in one transaction: all its
// results, or none. Every message is kept with the acknowledgement it got,
// so a repeated control ID is answered again without entering anything,
// and one that could not be entered waits for a lab technician.
package labhl7

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/instrumentmessage"
	"github.com/hmis-dev/hmis/ent/labinstrument"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/hl7"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/lab"
	"github.com/hmis-dev/hmis/internal/store"
)

// MaxMessageBytes bounds one message, on either transport: a panel of
// results is a few kilobytes, and the raw text is kept.
const MaxMessageBytes = 64 << 10

// Self is MSH-3 of the acknowledgements, when the message named no
// receiving application.
const Self = "HMIS"

// Role is the role of an instrument's API key: it may post messages and
// nothing else.
const Role = "lab_instrument"

// Keys issues and revokes API keys (auth.Service).
type Keys interface {
	CreateAPIKey(ctx context.Context, v *auth.Viewer, in auth.APIKeyInput) (*ent.APIKey, string, error)
	RevokeAPIKey(ctx context.Context, id string) (*ent.APIKey, error)
}

// Service receives instrument messages and keeps the instrument register.
type Service struct {
	store *store.Store
	lab   *lab.Service
	keys  Keys
	now   func() time.Time
}

// NewService returns a Service entering results through labs.
func NewService(st *store.Store, labs *lab.Service, keys Keys) *Service {
	return &Service{store: st, lab: labs, keys: keys, now: func() time.Time { return input.Stored(time.Now()) }}
}

// Origin is how a message arrived and who is believed to have sent it.
type Origin struct {
	Transport instrumentmessage.Transport
	// APIKeyID is the key an HTTP message was posted with.
	APIKeyID string
	// Addr is the peer of an MLLP connection.
	Addr netip.Addr
}

// Outcome is what became of a message.
type Outcome struct {
	Ack          string
	Code         hl7.AckCode
	Reason       string
	MessageID    string // the kept message; empty when none was kept
	InstrumentID string
	ResultIDs    []string
	PatientIDs   []string
	Duplicate    bool
}

// Receive processes one message. An error is a failure of HMIS itself
// (the database), after which nothing was kept and the sender should send
// again; everything the sender did wrong is in the acknowledgement.
func (s *Service) Receive(ctx context.Context, raw string, o Origin) (*Outcome, error) {
	// No person asked for this: the instrument's key reads no patient data,
	// and the work runs as the system. The audit trail names the instrument.
	ctx = auth.SystemContext(ctx)
	msg, perr := hl7.Parse(raw)
	var h hl7.Header
	if perr == nil {
		h = hl7.HeaderOf(msg)
	}
	reject := func(code, reason string) *Outcome {
		return &Outcome{Ack: s.ack(h, hl7.Reject, code, reason), Code: hl7.Reject, Reason: reason}
	}
	if len(raw) > MaxMessageBytes {
		return reject(hl7.ErrApplicationError, fmt.Sprintf("the message is larger than %d bytes", MaxMessageBytes)), nil
	}
	inst, why, err := s.sender(ctx, o, h, perr == nil)
	if err != nil {
		return nil, err
	}
	if inst == nil {
		// Not kept: nobody the lab knows sent it, so nobody can resolve it.
		if perr != nil {
			why = "the message cannot be read: " + perr.Error()
		}
		return reject(hl7.ErrUnknownKey, why), nil
	}
	keep := func(status instrumentmessage.Status, code hl7.AckCode, errCode, reason string) (*Outcome, error) {
		out := &Outcome{Ack: s.ack(h, code, errCode, reason), Code: code, Reason: reason, InstrumentID: inst.ID}
		return s.keep(ctx, inst, h, raw, o, status, out, nil)
	}
	switch {
	case perr != nil:
		return keep(instrumentmessage.StatusMALFORMED, hl7.Reject, hl7.ErrSegmentSequence, "the message cannot be read: "+perr.Error())
	case why != "":
		return keep(instrumentmessage.StatusMALFORMED, hl7.Reject, hl7.ErrUnknownKey, why)
	case h.ControlID == "":
		return keep(instrumentmessage.StatusMALFORMED, hl7.Reject, hl7.ErrRequiredField, "MSH-10 (message control ID) is empty")
	}
	if dup, err := s.duplicate(ctx, inst.ID, h.ControlID); err != nil || dup != nil {
		return dup, err
	}
	if h.MessageType != "ORU^R01" {
		return keep(instrumentmessage.StatusMALFORMED, hl7.Reject, hl7.ErrUnsupportedType,
			fmt.Sprintf("message type %q is not taken; only ORU^R01", h.MessageType))
	}
	obs, err := hl7.Observations(msg)
	if err != nil {
		return keep(instrumentmessage.StatusMALFORMED, hl7.Reject, hl7.ErrSegmentSequence, err.Error())
	}
	out := &Outcome{Ack: s.ack(h, hl7.Accept, "", ""), Code: hl7.Accept, InstrumentID: inst.ID}
	done, err := s.keep(ctx, inst, h, raw, o, instrumentmessage.StatusPROCESSED, out, obs)
	if err == nil || !isApplicationError(err) {
		return done, err
	}
	// Nothing of it was entered: keep it for a lab technician, with why.
	reason := err.Error()
	return keep(instrumentmessage.StatusUNMATCHED, hl7.Error, hl7.ErrApplicationError, reason)
}

// sender finds the instrument a message comes from. A nil instrument is
// one the lab does not know (why says so); a known instrument with a
// reason is one whose message does not name it.
func (s *Service) sender(ctx context.Context, o Origin, h hl7.Header, parsed bool) (inst *ent.LabInstrument, why string, err error) {
	if o.Transport == instrumentmessage.TransportHTTP {
		inst, err = s.store.Client.LabInstrument.Query().Where(labinstrument.APIKeyID(o.APIKeyID)).Only(ctx)
		switch {
		case ent.IsNotFound(err):
			return nil, "the API key belongs to no lab instrument", nil
		case err != nil:
			return nil, "", err
		case !inst.Active:
			return nil, fmt.Sprintf("the instrument %s is inactive", inst.Name), nil
		case parsed && (h.SendingApplication != inst.SendingApplication || h.SendingFacility != inst.SendingFacility):
			return inst, fmt.Sprintf("MSH-3/MSH-4 %q/%q do not name the instrument of the key", h.SendingApplication, h.SendingFacility), nil
		}
		return inst, "", nil
	}
	if !parsed {
		return nil, "the message cannot be read", nil
	}
	inst, err = s.store.Client.LabInstrument.Query().
		Where(labinstrument.SendingApplication(h.SendingApplication), labinstrument.SendingFacility(h.SendingFacility)).Only(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil, fmt.Sprintf("no lab instrument is registered as %q/%q", h.SendingApplication, h.SendingFacility), nil
	case err != nil:
		return nil, "", err
	case !inst.Active:
		return nil, fmt.Sprintf("the instrument %s is inactive", inst.Name), nil
	case !addressAllowed(inst.AllowedAddress, o.Addr):
		return nil, fmt.Sprintf("the instrument %s does not connect from %s", inst.Name, o.Addr), nil
	}
	return inst, "", nil
}

func addressAllowed(allowed *string, addr netip.Addr) bool {
	if allowed == nil {
		return true
	}
	p, err := parseAddress(*allowed)
	return err == nil && p.Contains(addr.Unmap())
}

func parseAddress(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// duplicate returns the outcome of a message already kept under the
// control ID, or nil.
func (s *Service) duplicate(ctx context.Context, instrumentID, controlID string) (*Outcome, error) {
	m, err := s.store.Client.InstrumentMessage.Query().
		Where(instrumentmessage.InstrumentID(instrumentID), instrumentmessage.ControlID(controlID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	out := &Outcome{Ack: m.Ack, Code: ackCode(m.Ack), MessageID: m.ID, InstrumentID: instrumentID, Duplicate: true}
	if m.Error != nil {
		out.Reason = *m.Error
	}
	return out, nil
}

func ackCode(ack string) hl7.AckCode {
	m, err := hl7.Parse(ack)
	if err != nil {
		return hl7.Reject
	}
	for _, seg := range m.Segments {
		if seg.Name == "MSA" {
			return hl7.AckCode(seg.Get(1, 1))
		}
	}
	return hl7.Reject
}

// keep stores the message with its outcome and, for a PROCESSED one,
// enters its observations in the same transaction. The row goes in first:
// of two copies of a message racing, the second waits on the unique
// (instrument, control ID) until the first commits, then fails and is
// answered with the first's acknowledgement.
func (s *Service) keep(ctx context.Context, inst *ent.LabInstrument, h hl7.Header, raw string, o Origin,
	status instrumentmessage.Status, out *Outcome, obs []hl7.Observation) (*Outcome, error) {
	res, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*Outcome, error) {
		c := tx.InstrumentMessage.Create().
			SetInstrumentID(inst.ID).
			SetTransport(o.Transport).
			SetRaw(raw).
			SetStatus(status).
			SetAck(out.Ack).
			SetReceivedAt(s.now())
		if h.ControlID != "" {
			c.SetControlID(h.ControlID)
		}
		if h.MessageType != "" {
			c.SetMessageType(truncate(h.MessageType, 40))
		}
		if out.Reason != "" {
			c.SetError(truncate(out.Reason, 1000))
		}
		m, err := c.Save(ctx)
		if err != nil {
			return nil, err
		}
		res := *out
		res.MessageID = m.ID
		if obs != nil {
			res.ResultIDs, res.PatientIDs, err = s.enter(ctx, tx, inst, obs)
		}
		return &res, err
	})
	if ent.IsConstraintError(err) && h.ControlID != "" {
		if dup, derr := s.duplicate(ctx, inst.ID, h.ControlID); derr != nil || dup != nil {
			return dup, derr
		}
	}
	return res, err
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// ObservationError says which OBX could not be entered and why.
type ObservationError struct {
	Segment int
	Code    string
	Err     error
}

func (e *ObservationError) Error() string {
	return fmt.Sprintf("OBX in segment %d (%s): %s", e.Segment, e.Code, e.Err.Error())
}

func (e *ObservationError) Unwrap() error { return e.Err }

// isApplicationError tells what the sender or the lab's data got wrong
// (AE, keep the message) from a failure of HMIS (send again).
func isApplicationError(err error) bool {
	var oe *ObservationError
	if errors.As(err, &oe) {
		return true
	}
	switch apperr.CodeOf(err) {
	case apperr.BadUserInput, apperr.NotFound, apperr.Conflict, apperr.Forbidden:
		return true
	}
	return false
}

// target is an observation matched to the order item it results.
type target struct {
	obs  hl7.Observation
	code string
	item *ent.LabOrderItem
	in   lab.EnterLabResultInput
}

// enter matches every observation, locks their patients in one call and
// enters each through the lab's entry path. The first that fails fails
// the message, and the transaction takes back what went before it.
func (s *Service) enter(ctx context.Context, tx *ent.Tx, inst *ent.LabInstrument, obs []hl7.Observation) (results, patients []string, err error) {
	targets := make([]target, 0, len(obs))
	for _, o := range obs {
		t, err := s.match(ctx, tx, inst, o)
		if err != nil {
			return nil, nil, &ObservationError{Segment: o.Segment, Code: t.code, Err: err}
		}
		targets = append(targets, t)
		if !slices.Contains(patients, t.item.PatientID) {
			patients = append(patients, t.item.PatientID)
		}
	}
	slices.Sort(patients)
	if err := store.LockPatient(ctx, tx, patients...); err != nil {
		return nil, nil, err
	}
	for _, t := range targets {
		r, err := s.lab.EnterFromInstrument(ctx, tx, inst.ID, t.item.ID, t.in)
		if err != nil {
			return nil, nil, &ObservationError{Segment: t.obs.Segment, Code: t.code, Err: err}
		}
		results = append(results, r.ID)
	}
	return results, patients, nil
}

// match finds the item an observation results and reads its value as the
// test takes it.
func (s *Service) match(ctx context.Context, tx *ent.Tx, inst *ent.LabInstrument, o hl7.Observation) (target, error) {
	t := target{obs: o, code: instrumentCode(inst.Dialect, o.Identifier)}
	if t.code == "" {
		return t, errors.New("OBX-3 carries no test code where this instrument's dialect puts it")
	}
	code := t.code
	for _, m := range inst.CodeMap {
		if from, to, ok := strings.Cut(m, "="); ok && from == t.code {
			code = to
			break
		}
	}
	switch o.Status {
	case "F", "":
	default:
		return t, fmt.Errorf("OBX-11 is %q; only final results (F) are entered from an instrument", o.Status)
	}
	test, err := tx.LabTest.Query().Where(labtest.Code(code)).Only(ctx)
	if ent.IsNotFound(err) {
		return t, fmt.Errorf("no lab test has the code %q", code)
	} else if err != nil {
		return t, err
	}
	spec, err := tx.LabSpecimen.Query().Where(labspecimen.AccessionNumber(o.Specimen)).Only(ctx)
	if ent.IsNotFound(err) {
		return t, fmt.Errorf("no specimen has the accession number %q", o.Specimen)
	} else if err != nil {
		return t, err
	}
	t.item, err = tx.LabOrderItem.Query().Where(laborderitem.SpecimenID(spec.ID), laborderitem.TestID(test.ID)).First(ctx)
	if ent.IsNotFound(err) {
		return t, fmt.Errorf("specimen %s has no %s (%s) ordered on it", o.Specimen, test.Code, test.Name)
	} else if err != nil {
		return t, err
	}
	if o.Comment != "" {
		t.in.Comment = &o.Comment
	}
	value := strings.TrimSpace(o.Value)
	switch test.ResultKind {
	case labtest.ResultKindNUMERIC:
		n, err := strconv.ParseFloat(value, 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return t, fmt.Errorf("OBX-5 %q is not a number", value)
		}
		want := ""
		if test.Unit != nil {
			want = *test.Unit
		}
		if o.Units != want {
			return t, fmt.Errorf("OBX-6 unit %q is not the test's unit %q", o.Units, want)
		}
		t.in.NumericValue = &n
	case labtest.ResultKindCODED:
		t.in.CodedValue = &value
	default:
		t.in.TextValue = &o.Value
	}
	return t, nil
}

// instrumentCode is the test code of OBX-3 as the dialect places it.
func instrumentCode(d labinstrument.Dialect, id []string) string {
	at := 0
	if d == labinstrument.DialectSYSMEX {
		at = 3
	}
	if at < len(id) {
		return strings.TrimSpace(id[at])
	}
	return ""
}

func (s *Service) ack(h hl7.Header, code hl7.AckCode, errCode, reason string) string {
	return hl7.Ack(h, Self, globalid.New("ack")[4:], s.now(), code, errCode, reason)
}

// Resolution is what a lab technician does with a kept message.
type Resolution string

const (
	Reprocess Resolution = "REPROCESS"
	Discard   Resolution = "DISCARD"
)

// Resolve re-processes an UNMATCHED message after the specimen or order
// was put right (RESOLVED, its results ENTERED), or discards an UNMATCHED
// or MALFORMED one with the reason (DISCARDED, nothing entered).
func (s *Service) Resolve(ctx context.Context, id string, action Resolution, reason *string) (*ent.InstrumentMessage, error) {
	var c input.Checker
	c.ID("id", id, input.InstrumentMessage)
	note := c.OptionalText("input.reason", reason, 500)
	if action == Discard && note == nil {
		c.Fail(apperr.BadInput("input.reason", "is required to discard a message"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.InstrumentMessage, error) {
		tech, err := auth.ActingStaff(ctx, tx.Staff, "resolve instrument messages", staff.KindLAB_TECHNICIAN)
		if err != nil {
			return nil, err
		}
		m, err := tx.InstrumentMessage.Query().Where(instrumentmessage.ID(id)).WithInstrument().Only(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("instrument message not found")
		} else if err != nil {
			return nil, err
		}
		waiting := []instrumentmessage.Status{instrumentmessage.StatusUNMATCHED, instrumentmessage.StatusMALFORMED}
		if !slices.Contains(waiting, m.Status) {
			return nil, apperr.Conflictf("the message is %s; only an UNMATCHED or MALFORMED one is resolved", m.Status)
		}
		upd := tx.InstrumentMessage.UpdateOne(m).Where(instrumentmessage.StatusIn(waiting...)).
			SetResolvedByID(tech.ID).SetResolvedAt(s.now()).SetNillableResolutionNote(note)
		if action == Discard {
			upd.SetStatus(instrumentmessage.StatusDISCARDED)
		} else {
			if m.Status == instrumentmessage.StatusMALFORMED {
				return nil, apperr.Conflictf("a malformed message cannot be processed again; discard it")
			}
			msg, err := hl7.Parse(m.Raw)
			if err != nil {
				return nil, apperr.Conflictf("the message cannot be read: %s", err.Error())
			}
			obs, err := hl7.Observations(msg)
			if err != nil {
				return nil, apperr.Conflictf("%s", err.Error())
			}
			if _, _, err := s.enter(ctx, tx, m.Edges.Instrument, obs); err != nil {
				if isApplicationError(err) {
					return nil, apperr.Conflictf("the message still cannot be entered: %s", err.Error())
				}
				return nil, err
			}
			upd.SetStatus(instrumentmessage.StatusRESOLVED)
		}
		out, err := upd.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the message was resolved meanwhile; reload it")
		}
		return out, err
	})
}

// Unmatched selects the messages waiting for a lab technician, oldest
// first.
func (s *Service) Unmatched(client *ent.Client) *ent.InstrumentMessageQuery {
	return client.InstrumentMessage.Query().Where(instrumentmessage.StatusIn(
		instrumentmessage.StatusUNMATCHED, instrumentmessage.StatusMALFORMED))
}
