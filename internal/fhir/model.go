package fhir

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"github.com/hmis-dev/hmis/internal/apperr"
)

// Code systems the mapping uses.
const (
	systemLOINC  = "http://loinc.org"
	systemUCUM   = "http://unitsofmeasure.org"
	systemICD10  = "http://hl7.org/fhir/sid/icd-10"
	systemActV3  = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
	systemObsCat = "http://terminology.hl7.org/CodeSystem/observation-category"
	systemCondCl = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	systemCondVe = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
	systemAllCl  = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	systemAllVe  = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
	systemInterp = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
	systemV20074 = "http://terminology.hl7.org/CodeSystem/v2-0074"
	systemRoute  = "urn:hmis:medication-route"
	systemDrug   = "urn:hmis:formulary"
	// The national ID has no URI HMIS could know: a deployment's country
	// decides it, so it is named as HMIS's own.
	systemNationalID = "urn:hmis:national-id"
	systemLicence    = "urn:hmis:licence"
)

// marshal encodes a resource as FHIR JSON. The structures mark some
// choice elements as required ([x] of MedicationRequest.medication), so
// they encode the unchosen alternative as {}; FHIR forbids empty objects
// and arrays, so every one is removed.
func marshal(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	tree, _ = prune(tree)
	return json.Marshal(tree)
}

// prune removes empty objects and arrays, reporting whether v is empty.
func prune(v any) (any, bool) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if p, empty := prune(e); empty {
				delete(t, k)
			} else {
				t[k] = p
			}
		}
		return t, len(t) == 0
	case []any:
		out := t[:0]
		for _, e := range t {
			if p, empty := prune(e); !empty {
				out = append(out, p)
			}
		}
		return out, len(out) == 0
	}
	return v, false
}

// enum returns the structures' value of a FHIR code, which they keep as
// numbers; the code is one this package wrote, so it always parses.
func enum[T any, P interface {
	*T
	json.Unmarshaler
}](code string) T {
	var out T
	if err := P(&out).UnmarshalJSON([]byte(strconv.Quote(code))); err != nil {
		panic("fhir: unknown code " + code)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func str(s string) *string { return &s }

func ref(typ, id string) *fm.Reference { return &fm.Reference{Reference: str(typ + "/" + fhirID(id))} }

// fhirID is an HMIS ID as a FHIR id, which may not hold "_": pat_01J… is
// pat-01J…. ULIDs have no "-", so the first one is the separator.
func fhirID(id string) string { return strings.Replace(id, "_", "-", 1) }

// hmisID is the HMIS ID of a FHIR id; an HMIS ID is taken as it is.
func hmisID(id string) string { return strings.Replace(id, "-", "_", 1) }

func coding(system, code, display string) fm.Coding {
	c := fm.Coding{System: str(system), Code: str(code)}
	if display != "" {
		c.Display = str(display)
	}
	return c
}

func concept(system, code, display string) fm.CodeableConcept {
	return fm.CodeableConcept{Coding: []fm.Coding{coding(system, code, display)}}
}

func textConcept(text string) fm.CodeableConcept { return fm.CodeableConcept{Text: str(text)} }

// instant is FHIR's instant and dateTime: UTC, to the second at least.
func instant(t time.Time) *string { return str(t.UTC().Format(time.RFC3339Nano)) }

// date is FHIR's date. Dates are stored as midnight UTC.
func date(t time.Time) *string { return str(t.UTC().Format("2006-01-02")) }

func number(f float64) *json.Number {
	n := json.Number(strconv.FormatFloat(f, 'f', -1, 64))
	return &n
}

func quantity(value float64, unit string) *fm.Quantity {
	q := &fm.Quantity{Value: number(value)}
	if unit != "" {
		q.Unit, q.System, q.Code = str(unit), str(systemUCUM), str(unit)
	}
	return q
}

func operationOutcome(issue string, err *apperr.Error) fm.OperationOutcome {
	msg := err.Error()
	details := textConcept(string(err.Code))
	i := fm.OperationOutcomeIssue{
		Severity: fm.IssueSeverityError, Code: enum[fm.IssueType](issue),
		Details: &details, Diagnostics: &msg,
	}
	if err.Field != "" {
		i.Expression = []string{err.Field}
	}
	return fm.OperationOutcome{Issue: []fm.OperationOutcomeIssue{i}}
}

func marshalOutcome(issue string, err *apperr.Error) []byte {
	b, _ := marshal(operationOutcome(issue, err))
	return b
}
