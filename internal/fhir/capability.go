package fhir

import (
	"sort"

	fm "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

// capabilityStatement says what this server does: read and search of each
// served type with the parameters it takes, and $everything.
func (h *handler) capabilityStatement(base string) fm.CapabilityStatement {
	rest := fm.CapabilityStatementRest{
		Mode: enum[fm.RestfulCapabilityMode]("server"),
		Security: &fm.CapabilityStatementRestSecurity{
			Service: []fm.CodeableConcept{concept("http://terminology.hl7.org/CodeSystem/restful-security-service", "SMART-on-FHIR", "SMART-on-FHIR")},
			Description: str("Authorization: Bearer with an HMIS access token or API key. An API key's SMART scopes " +
				"(patient/*.read, system/Observation.read …) narrow what its role allows; what the role may not read is left out."),
		},
	}
	for _, name := range kindNames() {
		k := kinds[name]
		r := fm.CapabilityStatementRestResource{
			Type: enum[fm.ResourceType](name),
			Interaction: []fm.CapabilityStatementRestResourceInteraction{
				{Code: enum[fm.TypeRestfulInteraction]("read")}, {Code: enum[fm.TypeRestfulInteraction]("search-type")},
			},
		}
		params := []string{"_id", "_count"}
		for p := range k.params {
			params = append(params, p)
		}
		sort.Strings(params[2:])
		for _, p := range params {
			typ := k.params[p]
			if typ == "" {
				typ = tokenParam
				if p == "_count" {
					typ = "number"
				}
			}
			r.SearchParam = append(r.SearchParam, fm.CapabilityStatementRestResourceSearchParam{Name: p, Type: enum[fm.SearchParamType](typ)})
		}
		if name == "Patient" {
			r.Operation = []fm.CapabilityStatementRestResourceOperation{{
				Name: "everything", Definition: "http://hl7.org/fhir/OperationDefinition/Patient-everything",
			}}
		}
		rest.Resource = append(rest.Resource, r)
	}
	return fm.CapabilityStatement{
		Status: enum[fm.PublicationStatus]("active"), Date: "2026-12-06",
		Kind: enum[fm.CapabilityStatementKind]("instance"), FhirVersion: enum[fm.FHIRVersion]("4.0.1"),
		Format:         []string{"json"},
		Software:       &fm.CapabilityStatementSoftware{Name: "HMIS"},
		Implementation: &fm.CapabilityStatementImplementation{Description: "HMIS FHIR R4 read API", Url: str(base)},
		Rest:           []fm.CapabilityStatementRest{rest},
	}
}
