package fhir

import (
	"encoding/json"
	"testing"
	"time"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

func TestMarshalDropsTheUnchosenAlternative(t *testing.T) {
	m := fm.MedicationRequest{Id: str("mor_1"), Status: "active", Intent: "order",
		MedicationCodeableConcept: textConcept("Amoxicillin"), Subject: *ref("Patient", "pat_1")}
	b, err := marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if _, ok := out["medicationReference"]; ok {
		t.Fatalf("both alternatives of medication[x]: %s", b)
	}
	if out["resourceType"] != "MedicationRequest" || out["medicationCodeableConcept"] == nil {
		t.Fatalf("lost elements: %s", b)
	}
}

func TestDatePrefixes(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse("2006-01-02", s); return d }
	for _, c := range []struct {
		in       []string
		from, to string // "" none
	}{
		{[]string{"2026-03-04"}, "2026-03-04", "2026-03-05"},
		{[]string{"ge2026-03-04"}, "2026-03-04", ""},
		{[]string{"gt2026-03-04"}, "2026-03-05", ""},
		{[]string{"lt2026-03-04"}, "", "2026-03-04"},
		{[]string{"le2026-03-04"}, "", "2026-03-05"},
		{[]string{"ge2026-01-01", "lt2026-02-01"}, "2026-01-01", "2026-02-01"},
		{[]string{"ge2026-01-01", "ge2026-01-10"}, "2026-01-10", ""},
	} {
		p := &params{}
		for _, v := range c.in {
			if err := p.date(v); err != nil {
				t.Fatalf("%v: %v", c.in, err)
			}
		}
		if (c.from == "") != (p.from == nil) || (p.from != nil && !p.from.Equal(day(c.from))) ||
			(c.to == "") != (p.to == nil) || (p.to != nil && !p.to.Equal(day(c.to))) {
			t.Errorf("%v: from %v to %v", c.in, p.from, p.to)
		}
	}
	for _, bad := range []string{"yesterday", "ne2026-01-01", "2026-13-01", "ge"} {
		if err := (&params{}).date(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestEveryServedTypeHasAnEncoderAndSources(t *testing.T) {
	if len(kindNames()) != len(kinds) {
		t.Fatalf("kindNames lists %d of %d types", len(kindNames()), len(kinds))
	}
	for _, name := range kindNames() {
		k := kinds[name]
		if k == nil || k.name != name || len(k.sources) == 0 || k.load == nil {
			t.Fatalf("%s is incomplete", name)
		}
	}
	// The CapabilityStatement names every type (enum panics on a typo).
	cs := (&handler{}).capabilityStatement("http://h/fhir/R4")
	if len(cs.Rest[0].Resource) != len(kinds) {
		t.Fatalf("CapabilityStatement lists %d types", len(cs.Rest[0].Resource))
	}
}
