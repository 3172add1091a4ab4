package ehr

import (
	"context"
	"math"
	"regexp"
	"strconv"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/observation"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// Topic is the event topic vital signs are published on.
const Topic = "vitals"

// VitalsEventType names what happened to vital signs; the values are those
// of the GraphQL enum VitalsEventType.
type VitalsEventType string

const (
	VitalsRecorded       VitalsEventType = "RECORDED"
	VitalsAmended        VitalsEventType = "AMENDED"
	VitalsEnteredInError VitalsEventType = "ENTERED_IN_ERROR"
)

const (
	maxObservationReason = 500
	// Devices' clocks drift: a reading stamped a little ahead of the
	// server is not a reading from the future.
	futureEffectiveAtSlack = 5 * time.Minute
)

// VitalsPayload is the payload of a vitals event. It carries IDs only: a
// subscriber loads the observations through row scope before showing them.
type VitalsPayload struct {
	PatientID string `json:"patientId"`
	// WardID is the ward the patient was admitted to when the event
	// happened, if any, for bedside dashboards that follow a ward.
	WardID         string   `json:"wardId,omitempty"`
	ObservationIDs []string `json:"observationIds"`
}

// vitalSign is a vital sign as recordVitals records it: its LOINC code,
// display, UCUM unit, and the physiologically plausible range a value must
// fall in, wide enough for neonates and the critically ill, narrow enough
// to catch a value typed into the wrong box or in the wrong unit.
type vitalSign struct {
	field, code, display, unit string
	min, max                   float64
}

var (
	heartRate       = vitalSign{"heartRate", "8867-4", "Heart rate", "/min", 20, 300}
	systolicBP      = vitalSign{"systolicBp", "8480-6", "Systolic blood pressure", "mm[Hg]", 40, 300}
	diastolicBP     = vitalSign{"diastolicBp", "8462-4", "Diastolic blood pressure", "mm[Hg]", 20, 200}
	temperature     = vitalSign{"temperature", "8310-5", "Body temperature", "Cel", 25, 45}
	oxygenSat       = vitalSign{"spo2", "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 40, 100}
	respiratoryRate = vitalSign{"respiratoryRate", "9279-1", "Respiratory rate", "/min", 4, 80}
	bodyWeight      = vitalSign{"weight", "29463-7", "Body weight", "kg", 0.3, 500}
	bodyHeight      = vitalSign{"height", "8302-2", "Body height", "cm", 20, 280}
)

// vitalSigns finds a vital sign by LOINC code, so a vital sign recorded or
// amended through the generic operations obeys the same unit and range.
var vitalSigns = func() map[string]vitalSign {
	m := map[string]vitalSign{}
	for _, v := range []vitalSign{heartRate, systolicBP, diastolicBP, temperature, oxygenSat, respiratoryRate, bodyWeight, bodyHeight} {
		m[v.code] = v
	}
	// The other pulse oximetry code, SpO2 as most monitors label it.
	m["2708-6"] = vitalSign{"spo2", "2708-6", "Oxygen saturation in Arterial blood", "%", 40, 100}
	return m
}()

// RecordVitalsInput is the input of recordVitals: any of the vital signs,
// at least one.
type RecordVitalsInput struct {
	PatientID       string
	EncounterID     *string
	EffectiveAt     *time.Time
	HeartRate       *int
	SystolicBp      *int
	DiastolicBp     *int
	Temperature     *float64
	Spo2            *int
	RespiratoryRate *int
	Weight          *float64
	Height          *float64
}

// RecordObservationInput is the input of recordObservation.
type RecordObservationInput struct {
	PatientID   string
	EncounterID *string
	// Code is a LOINC code such as 2339-0 (glucose).
	Code        string
	Display     string
	Value       float64
	Unit        string
	EffectiveAt *time.Time
}

// AmendObservationInput is the input of amendObservation.
type AmendObservationInput struct {
	Value  float64
	Reason string
}

type measured struct {
	sign  vitalSign
	value float64
}

// RecordVitals records one observation per vital sign given, all at the
// same effective time, and publishes them together as one vitals event.
func (s *Service) RecordVitals(ctx context.Context, in RecordVitalsInput) ([]*ent.Observation, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	effectiveAt := s.effectiveAt(&c, in.EffectiveAt)
	var values []measured
	add := func(sign vitalSign, v *float64) {
		if v == nil {
			return
		}
		if err := sign.check("input."+sign.field, *v); err != nil {
			c.Fail(err)
		}
		values = append(values, measured{sign, *v})
	}
	add(heartRate, intValue(in.HeartRate))
	add(systolicBP, intValue(in.SystolicBp))
	add(diastolicBP, intValue(in.DiastolicBp))
	add(temperature, in.Temperature)
	add(oxygenSat, intValue(in.Spo2))
	add(respiratoryRate, intValue(in.RespiratoryRate))
	add(bodyWeight, in.Weight)
	add(bodyHeight, in.Height)
	switch {
	case c.Err() != nil:
	case len(values) == 0:
		c.Fail(apperr.BadInput("input", "give at least one vital sign"))
	case in.SystolicBp != nil && in.DiastolicBp == nil:
		c.Fail(apperr.BadInput("input.diastolicBp", "is required with systolicBp"))
	case in.DiastolicBp != nil && in.SystolicBp == nil:
		c.Fail(apperr.BadInput("input.systolicBp", "is required with diastolicBp"))
	case in.SystolicBp != nil && *in.SystolicBp <= *in.DiastolicBp:
		c.Fail(apperr.BadInput("input.systolicBp", "must be greater than diastolicBp"))
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (recorded []*ent.Observation, err error) {
		p, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		if effectiveAt.Before(p.BirthDate) {
			return nil, apperr.BadInput("input.effectiveAt", "is before the patient's birth date")
		}
		encounterID, err := loadEncounter(ctx, tx, "input.encounterId", in.EncounterID, p.ID)
		if err != nil {
			return nil, err
		}
		creates := make([]*ent.ObservationCreate, len(values))
		for i, m := range values {
			creates[i] = tx.Observation.Create().
				SetPatientID(p.ID).
				SetNillableEncounterID(encounterID).
				SetCode(m.sign.code).
				SetDisplay(m.sign.display).
				SetValue(m.value).
				SetUnit(m.sign.unit).
				SetEffectiveAt(effectiveAt).
				SetNillableRecordedByID(recorder(ctx))
		}
		recorded, err = tx.Observation.CreateBulk(creates...).Save(ctx)
		if err != nil {
			return nil, err
		}
		return recorded, recordVitalsEvent(ctx, tx, VitalsRecorded, p.ID, recorded...)
	})
}

// RecordObservation records one LOINC-coded observation. A vital sign
// recorded this way obeys recordVitals' unit and range, and is published
// like one.
func (s *Service) RecordObservation(ctx context.Context, in RecordObservationInput) (*ent.Observation, error) {
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	code := c.Text("input.code", in.Code, 16)
	if c.Err() == nil && !ValidLOINC(code) {
		c.Fail(apperr.BadInput("input.code", "is not a LOINC code (digits, a hyphen and a check digit, e.g. 2339-0)"))
	}
	display := c.Text("input.display", in.Display, 200)
	sign, isVital := vitalSigns[code]
	switch {
	case c.Err() != nil:
	case isVital:
		if err := sign.check("input.value", in.Value); err != nil {
			c.Fail(err)
		}
	case math.IsNaN(in.Value) || math.IsInf(in.Value, 0):
		c.Fail(apperr.BadInput("input.value", "must be a number"))
	}
	unit := c.Text("input.unit", in.Unit, 20)
	switch {
	case c.Err() != nil:
	case !ucumPattern.MatchString(unit):
		c.Fail(apperr.BadInput("input.unit", "is not a UCUM unit such as mg/dL, mmol/L, %% or 1"))
	case isVital && unit != sign.unit:
		c.Fail(apperr.BadInput("input.unit", "must be %s for %s", sign.unit, code))
	}
	effectiveAt := s.effectiveAt(&c, in.EffectiveAt)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (recorded *ent.Observation, err error) {
		p, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		if effectiveAt.Before(p.BirthDate) {
			return nil, apperr.BadInput("input.effectiveAt", "is before the patient's birth date")
		}
		encounterID, err := loadEncounter(ctx, tx, "input.encounterId", in.EncounterID, p.ID)
		if err != nil {
			return nil, err
		}
		recorded, err = tx.Observation.Create().
			SetPatientID(p.ID).
			SetNillableEncounterID(encounterID).
			SetCode(code).
			SetDisplay(display).
			SetValue(in.Value).
			SetUnit(unit).
			SetEffectiveAt(effectiveAt).
			SetNillableRecordedByID(recorder(ctx)).
			Save(ctx)
		if err != nil {
			return nil, err
		}
		if isVital {
			return recorded, recordVitalsEvent(ctx, tx, VitalsRecorded, p.ID, recorded)
		}
		return recorded, nil
	})
}

// AmendObservation corrects an observation's value. Results are never
// edited in place: a new FINAL observation replaces the old one, which
// stays in the record marked AMENDED, so what was seen when remains known.
// It returns the new observation; its replaces edge leads to the old.
func (s *Service) AmendObservation(ctx context.Context, id string, in AmendObservationInput) (*ent.Observation, error) {
	var c input.Checker
	c.ID("id", id, input.Observation)
	if math.IsNaN(in.Value) || math.IsInf(in.Value, 0) {
		c.Fail(apperr.BadInput("input.value", "must be a number"))
	}
	reason := c.Text("input.reason", in.Reason, maxObservationReason)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (amended *ent.Observation, err error) {
		old, err := s.finalObservation(ctx, tx, id, "amended")
		if err != nil {
			return nil, err
		}
		sign, isVital := vitalSigns[old.Code]
		if isVital {
			if err := sign.check("input.value", in.Value); err != nil {
				return nil, err
			}
		}
		if in.Value == old.Value {
			return nil, apperr.BadInput("input.value", "is the value already recorded")
		}
		// The conditional update is what decides a race: of two amendments
		// of one observation, only one finds it still FINAL.
		n, err := tx.Observation.Update().
			Where(observation.ID(id), observation.StatusEQ(observation.StatusFINAL)).
			SetStatus(observation.StatusAMENDED).
			Save(ctx)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, apperr.Conflictf("the observation changed meanwhile; reload it")
		}
		amended, err = tx.Observation.Create().
			SetPatientID(old.PatientID).
			SetNillableEncounterID(old.EncounterID).
			SetCode(old.Code).
			SetDisplay(old.Display).
			SetValue(in.Value).
			SetUnit(old.Unit).
			SetEffectiveAt(old.EffectiveAt).
			SetReplacesID(old.ID).
			SetAmendReason(reason).
			SetNillableRecordedByID(recorder(ctx)).
			Save(ctx)
		if err != nil {
			return nil, err
		}
		if isVital {
			return amended, recordVitalsEvent(ctx, tx, VitalsAmended, old.PatientID, amended)
		}
		return amended, nil
	})
}

// MarkObservationEnteredInError withdraws an observation that should never
// have been recorded (wrong patient, a test reading). It stays in the
// record with the reason. Only the current version can be withdrawn.
func (s *Service) MarkObservationEnteredInError(ctx context.Context, id, reason string) (*ent.Observation, error) {
	var c input.Checker
	c.ID("id", id, input.Observation)
	reason = c.Text("reason", reason, maxObservationReason)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (withdrawn *ent.Observation, err error) {
		if _, err := s.finalObservation(ctx, tx, id, "marked entered in error"); err != nil {
			return nil, err
		}
		withdrawn, err = tx.Observation.UpdateOneID(id).
			Where(observation.StatusEQ(observation.StatusFINAL)).
			SetStatus(observation.StatusENTERED_IN_ERROR).
			SetAmendReason(reason).
			Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the observation changed meanwhile; reload it")
		} else if err != nil {
			return nil, err
		}
		if _, vital := vitalSigns[withdrawn.Code]; vital {
			return withdrawn, recordVitalsEvent(ctx, tx, VitalsEnteredInError, withdrawn.PatientID, withdrawn)
		}
		return withdrawn, nil
	})
}

// finalObservation returns the observation if it is the current, FINAL
// version; what is AMENDED or ENTERED_IN_ERROR is history and cannot change.
func (s *Service) finalObservation(ctx context.Context, tx *ent.Tx, id, verb string) (*ent.Observation, error) {
	o, err := store.GetLocked(ctx, tx, tx.Observation.Get, id, func(o *ent.Observation) string { return o.PatientID }, "observation not found")
	if err != nil {
		return nil, err
	}
	switch o.Status {
	case observation.StatusFINAL:
		return o, nil
	case observation.StatusAMENDED:
		return nil, apperr.Conflictf("the observation was amended; only its current version can be %s", verb)
	default:
		return nil, apperr.Conflictf("the observation is %s and cannot be %s", o.Status, verb)
	}
}

// effectiveAt is when the observation was made: now if left out, never
// in the future beyond a few minutes of clock skew between devices.
func (s *Service) effectiveAt(c *input.Checker, at *time.Time) time.Time {
	now := s.now().UTC()
	if at == nil {
		return now
	}
	if at.After(now.Add(futureEffectiveAtSlack)) {
		c.Fail(apperr.BadInput("input.effectiveAt", "cannot be in the future"))
	}
	return input.Stored(*at)
}

// recordVitalsEvent writes the outbox row of a vitals event, noting the
// ward the patient is admitted to now.
func recordVitalsEvent(ctx context.Context, tx *ent.Tx, typ VitalsEventType, patientID string, obs ...*ent.Observation) error {
	payload := VitalsPayload{PatientID: patientID, ObservationIDs: make([]string, len(obs))}
	for i, o := range obs {
		payload.ObservationIDs[i] = o.ID
	}
	stay, err := tx.Admission.Query().
		Where(admission.PatientID(patientID), admission.StatusEQ(admission.StatusADMITTED)).
		WithBed().
		First(ctx)
	switch {
	case ent.IsNotFound(err):
	case err != nil:
		return err
	case stay.Edges.Bed != nil:
		payload.WardID = stay.Edges.Bed.WardID
	}
	return events.Record(ctx, tx, Topic, string(typ), payload)
}

func (v vitalSign) check(field string, value float64) error {
	if math.IsNaN(value) || value < v.min || value > v.max {
		return apperr.BadInput(field, "must be between %s and %s %s", trim(v.min), trim(v.max), v.unit)
	}
	return nil
}

func trim(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func intValue(i *int) *float64 {
	if i == nil {
		return nil
	}
	f := float64(*i)
	return &f
}

// ucumPattern admits the characters UCUM's case-sensitive units are written
// with (mg/dL, 10*3/uL, mm[Hg], %, {beats}/min, 1) and nothing else.
var ucumPattern = regexp.MustCompile(`^[A-Za-z0-9%.*/\[\]{}()'^_+\-]+$`)

// ValidLOINC reports whether code is a LOINC code: one to seven digits, a
// hyphen and the Mod 10 (Luhn) check digit LOINC computes over them.
func ValidLOINC(code string) bool {
	return loincPattern.MatchString(code) && input.LuhnDigit(code[:len(code)-2]) == code[len(code)-1]
}

var loincPattern = regexp.MustCompile(`^[0-9]{1,7}-[0-9]$`)
