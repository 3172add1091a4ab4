// Package formulary tests the formulary and safer prescribing through the
// API, as a prescriber's and a pharmacist's frontends use them.
package formulary

import (
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const prescribe = `mutation($in: PrescribeMedicationInput!) {
  prescribeMedication(input: $in) {
    id status drug drugCode freeText allergyOverrideReason interactionOverrideReason
    formularyDrug { id code genericName brandNames }
    overriddenWarnings { kind severity detail advice allergyId interactionId otherOrderId }
  }
}`

type warning struct {
	Kind, Severity, Detail                         string
	Advice, AllergyID, InteractionID, OtherOrderID *string
}

type order struct {
	ID, Status, Drug                                 string
	DrugCode                                         *string
	FreeText                                         bool
	AllergyOverrideReason, InteractionOverrideReason *string
	FormularyDrug                                    *struct {
		ID, Code, GenericName string
		BrandNames            []string
	}
	OverriddenWarnings []warning
}

func rx(patientID string, extra map[string]any) map[string]any {
	in := map[string]any{"patientId": patientID, "doseAmount": 1, "doseUnit": "tablet", "route": "ORAL",
		"frequency": "TID", "durationDays": 5, "quantity": 15}
	for k, v := range extra {
		in[k] = v
	}
	return map[string]any{"in": in}
}

func recordAllergy(t *testing.T, s *harness.Server, patientID, substance string) string {
	t.Helper()
	var out struct{ RecordAllergy struct{ ID string } }
	s.As("doctor", `mutation($in: RecordAllergyInput!) { recordAllergy(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"patientId": patientID, "substance": substance, "category": "DRUG", "severity": "MODERATE",
			"reaction": "Urticaria"}}).Decode(t, &out)
	return out.RecordAllergy.ID
}

// The reproduction: with an amoxicillin allergy on file, Augmentin
// went through without a warning.
func TestAugmentinWithAnAmoxicillinAllergy(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	pat := s.Demo().Patients[2]
	allergyID := recordAllergy(t, s, pat, "Amoxicillin")

	for _, in := range []map[string]any{
		{"drugCode": "COAMOX625TAB"},
		{"drug": "Augmentin"}, // typed, not chosen: still caught
	} {
		r := s.As("doctor", prescribe, rx(pat, in))
		harness.Must(t, r.HasCode("CONFLICT") && len(r.Errors) == 1, "Augmentin %v: %s", in, harness.Describe(r))
		allergies, _ := r.Errors[0].Extensions["allergies"].([]any)
		harness.Must(t, len(allergies) == 1, "extensions.allergies: %+v", r.Errors[0].Extensions)
		m, _ := allergies[0].(map[string]any)
		harness.Must(t, m["id"] == allergyID && m["substance"] == "Amoxicillin" && m["severity"] == "MODERATE" && m["match"] == "INGREDIENT",
			"the matching allergy: %+v", m)
	}

	var out struct{ PrescribeMedication order }
	s.As("doctor", prescribe, rx(pat, map[string]any{"drugCode": "COAMOX625TAB",
		"allergyOverrideReason": "Took co-amoxiclav in 2023 without a reaction"})).Decode(t, &out)
	o := out.PrescribeMedication
	harness.Must(t, o.Status == "ACTIVE" && o.Drug == "amoxicillin + clavulanic acid" && *o.DrugCode == "COAMOX625TAB" && !o.FreeText &&
		o.FormularyDrug != nil && o.FormularyDrug.Code == "COAMOX625TAB", "the order: %+v", o)
	harness.Must(t, len(o.OverriddenWarnings) == 1 && o.OverriddenWarnings[0].Kind == "ALLERGY" &&
		*o.OverriddenWarnings[0].AllergyID == allergyID, "overridden warnings: %+v", o.OverriddenWarnings)

	// The pharmacist reads the overridden warning on the order.
	var seen struct {
		Node struct{ OverriddenWarnings []warning }
	}
	s.As("pharmacist", `query($id: ID!) { node(id: $id) { ... on MedicationOrder { overriddenWarnings { kind detail allergyId } } } }`,
		map[string]any{"id": o.ID}).Decode(t, &seen)
	harness.Must(t, len(seen.Node.OverriddenWarnings) == 1 && seen.Node.OverriddenWarnings[0].Detail != "", "pharmacist: %+v", seen)
}

// The demo patient is allergic to penicillin and on amlodipine.
func TestClassAllergyAndInteractionWithTheDemoPatient(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	pat := s.Demo().Patients[0]

	r := s.As("doctor", prescribe, rx(pat, map[string]any{"drugCode": "AMOX500CAP"}))
	harness.Must(t, r.HasCode("CONFLICT"), "amoxicillin with a penicillin allergy: %s", harness.Describe(r))
	m, _ := r.Errors[0].Extensions["allergies"].([]any)[0].(map[string]any)
	harness.Must(t, m["substance"] == "Penicillin" && m["match"] == "CLASS" && m["class"] == "penicillins", "class match: %+v", m)

	r = s.As("doctor", prescribe, rx(pat, map[string]any{"drugCode": "CEFTRI1GINJ", "route": "IV", "doseUnit": "g"}))
	harness.Must(t, r.HasCode("CONFLICT"), "ceftriaxone with a penicillin allergy: %s", harness.Describe(r))
	m, _ = r.Errors[0].Extensions["allergies"].([]any)[0].(map[string]any)
	harness.Must(t, m["match"] == "CROSS_REACTIVITY" && m["note"] != nil, "cross-reactivity: %+v", m)

	var amlodipine struct {
		MedicationOrders struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("doctor", `query($p: ID!) { medicationOrders(where: {patientID: $p, status: ACTIVE, drugCode: "AMLO5TAB"}) { edges { node { id } } } }`,
		map[string]any{"p": pat}).Decode(t, &amlodipine)
	harness.Must(t, len(amlodipine.MedicationOrders.Edges) == 1, "the demo amlodipine order: %+v", amlodipine)
	amloID := amlodipine.MedicationOrders.Edges[0].Node.ID

	r = s.As("doctor", prescribe, rx(pat, map[string]any{"drugCode": "SIMVA20TAB"}))
	harness.Must(t, r.HasCode("CONFLICT") && r.Errors[0].Extensions["allergies"] == nil, "simvastatin on amlodipine: %s", harness.Describe(r))
	ix, _ := r.Errors[0].Extensions["interactions"].([]any)
	harness.Must(t, len(ix) == 1, "extensions.interactions: %+v", r.Errors[0].Extensions)
	im, _ := ix[0].(map[string]any)
	harness.Must(t, im["code"] == "SIMVASTATIN-AMLODIPINE" && im["severity"] == "MODERATE" && im["orderId"] == amloID &&
		im["drug"] == "amlodipine" && im["advice"] != "", "the interaction: %+v", im)

	var out struct{ PrescribeMedication order }
	s.As("doctor", prescribe, rx(pat, map[string]any{"drugCode": "SIMVA20TAB",
		"interactionOverrideReason": "20 mg is the ceiling with amlodipine; this is 20 mg"})).Decode(t, &out)
	o := out.PrescribeMedication
	harness.Must(t, o.InteractionOverrideReason != nil && len(o.OverriddenWarnings) == 1 && o.OverriddenWarnings[0].Kind == "INTERACTION" &&
		*o.OverriddenWarnings[0].OtherOrderID == amloID, "overridden interaction: %+v", o)

	// The interaction table itself, as a prescriber reads it.
	var table struct {
		DrugInteractions struct {
			TotalCount int
			Edges      []struct {
				Node struct{ Code, Severity, ALabel, BLabel, Advice string }
			}
		}
	}
	s.As("doctor", `{ drugInteractions(where: {severity: CONTRAINDICATED}, orderBy: {field: CODE}) {
	  totalCount edges { node { code severity aLabel bLabel advice } } } }`, nil).Decode(t, &table)
	harness.Must(t, table.DrugInteractions.TotalCount >= 3 && table.DrugInteractions.Edges[0].Node.Severity == "CONTRAINDICATED",
		"contraindicated pairs: %+v", table)
}

func TestPharmacistFindsFreeTextOrders(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	pat := s.Demo().Patients[3]
	var typed, chosen struct{ PrescribeMedication order }
	s.As("doctor", prescribe, rx(pat, map[string]any{"drug": "Nitrofurantoin 100 mg"})).Decode(t, &typed)
	s.As("doctor", prescribe, rx(pat, map[string]any{"drugCode": "PARA500TAB", "drug": "Panadol"})).Decode(t, &chosen)
	harness.Must(t, typed.PrescribeMedication.FreeText && typed.PrescribeMedication.FormularyDrug == nil, "typed: %+v", typed)
	harness.Must(t, !chosen.PrescribeMedication.FreeText && chosen.PrescribeMedication.Drug == "paracetamol", "chosen: %+v", chosen)

	var queue struct {
		MedicationOrders struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("pharmacist", `query($p: ID!) { medicationOrders(where: {patientID: $p, freeText: true, status: ACTIVE}) { edges { node { id } } } }`,
		map[string]any{"p": pat}).Decode(t, &queue)
	ids := []string{}
	for _, e := range queue.MedicationOrders.Edges {
		ids = append(ids, e.Node.ID)
	}
	harness.Must(t, len(ids) == 1 && ids[0] == typed.PrescribeMedication.ID, "free-text orders: %v", ids)
}

func TestPrescribingRefusesWhatTheFormularyCannotSupply(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	pat := s.Demo().Patients[1]
	for name, c := range map[string]struct {
		in    map[string]any
		field string
	}{
		"a consumable":          {map[string]any{"drugCode": "SYR5ML"}, "input.drugCode"},
		"an unknown code":       {map[string]any{"drugCode": "NOPE"}, "input.drugCode"},
		"a malformed ID":        {map[string]any{"drugId": pat}, "input.drugId"},
		"a mismatched name":     {map[string]any{"drugCode": "PARA500TAB", "drug": "Morphine"}, "input.drug"},
		"nothing named":         {map[string]any{}, "input.drug"},
		"a blank override":      {map[string]any{"drug": "Paracetamol", "interactionOverrideReason": " "}, "input.interactionOverrideReason"},
		"an overlong drug code": {map[string]any{"drugCode": "X234567890123456789012345678901234"}, "input.drugCode"},
	} {
		r := s.As("doctor", prescribe, rx(pat, c.in))
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == c.field, "%s: %s", name, harness.Describe(r))
	}
}

const createItem = `mutation($in: CreateFormularyItemInput!) {
  createFormularyItem(input: $in) { id code kind genericName brandNames strength atcCode ingredients active reorderLevel }
}`

type item struct {
	ID, Code, Kind, GenericName string
	BrandNames, Ingredients     []string
	Strength, AtcCode           *string
	Active                      bool
	ReorderLevel                int
}

func TestPharmacistManagesTheFormulary(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	pat := s.Demo().Patients[1]
	in := map[string]any{"code": "nitro100cap", "genericName": "nitrofurantoin", "brandNames": []string{"Macrobid"}, "form": "CAPSULE",
		"strength": "100 mg", "route": "ORAL", "atcCode": "J01XE01", "ingredients": []string{"Nitrofurantoin"}, "unitOfIssue": "capsule",
		"reorderLevel": 40}

	for _, who := range []string{"doctor", "nurse", "patient", "reception"} {
		r := s.As(who, createItem, map[string]any{"in": in})
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s creating: %s", who, harness.Describe(r))
	}
	bad := map[string]any{}
	for k, v := range in {
		bad[k] = v
	}
	bad["atcCode"] = "J01-XE"
	r := s.As("pharmacist", createItem, map[string]any{"in": bad})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.atcCode", "bad ATC: %s", harness.Describe(r))

	var created struct{ CreateFormularyItem item }
	s.As("pharmacist", createItem, map[string]any{"in": in}).Decode(t, &created)
	it := created.CreateFormularyItem
	harness.Must(t, it.Code == "NITRO100CAP" && it.Kind == "DRUG" && it.Active && it.Ingredients[0] == "nitrofurantoin" && it.ReorderLevel == 40,
		"created: %+v", it)
	r = s.As("pharmacist", createItem, map[string]any{"in": in})
	harness.Must(t, r.HasCode("CONFLICT"), "the same code again: %s", harness.Describe(r))

	// null clears, absent keeps.
	var updated struct{ UpdateFormularyItem item }
	s.As("pharmacist", `mutation($id: ID!) { updateFormularyItem(id: $id, input: {strength: null, reorderLevel: 60}) {
	  id code strength reorderLevel brandNames atcCode } }`, map[string]any{"id": it.ID}).Decode(t, &updated)
	harness.Must(t, updated.UpdateFormularyItem.Strength == nil && updated.UpdateFormularyItem.ReorderLevel == 60 &&
		updated.UpdateFormularyItem.BrandNames[0] == "Macrobid" && *updated.UpdateFormularyItem.AtcCode == "J01XE01", "updated: %+v", updated)

	// A doctor prescribes it by ID, and finds it by brand in the formulary.
	var found struct {
		Formulary struct {
			Edges []struct{ Node struct{ ID, Code string } }
		}
	}
	s.As("doctor", `{ formulary(where: {code: "NITRO100CAP", active: true}) { edges { node { id code } } } }`, nil).Decode(t, &found)
	harness.Must(t, len(found.Formulary.Edges) == 1 && found.Formulary.Edges[0].Node.ID == it.ID, "doctor's formulary: %+v", found)
	var o struct{ PrescribeMedication order }
	s.As("doctor", prescribe, rx(pat, map[string]any{"drugId": it.ID})).Decode(t, &o)
	harness.Must(t, o.PrescribeMedication.Drug == "nitrofurantoin" && !o.PrescribeMedication.FreeText, "prescribed: %+v", o)

	// Deactivated, it can no longer be prescribed; the order written stays.
	r = s.As("doctor", `mutation($id: ID!) { deactivateFormularyItem(id: $id) { id } }`, map[string]any{"id": it.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "doctor deactivating: %s", harness.Describe(r))
	var off struct{ DeactivateFormularyItem struct{ Active bool } }
	s.As("pharmacist", `mutation($id: ID!) { deactivateFormularyItem(id: $id) { active } }`, map[string]any{"id": it.ID}).Decode(t, &off)
	harness.Must(t, !off.DeactivateFormularyItem.Active, "deactivated: %+v", off)
	r = s.As("pharmacist", `mutation($id: ID!) { deactivateFormularyItem(id: $id) { active } }`, map[string]any{"id": it.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "deactivating twice: %s", harness.Describe(r))
	r = s.As("doctor", prescribe, rx(pat, map[string]any{"drugId": it.ID}))
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.drugId", "an inactive item: %s", harness.Describe(r))
	var back struct{ ReactivateFormularyItem struct{ Active bool } }
	s.As("admin", `mutation($id: ID!) { reactivateFormularyItem(id: $id) { active } }`, map[string]any{"id": it.ID}).Decode(t, &back)
	harness.Must(t, back.ReactivateFormularyItem.Active, "reactivated: %+v", back)

	// Patients see their orders, not the formulary.
	for _, q := range []string{`{ formulary(first: 1) { totalCount } }`, `{ drugInteractions(first: 1) { totalCount } }`,
		`{ allergenClasses(first: 1) { totalCount } }`} {
		r = s.As("patient", q, nil)
		harness.Must(t, r.HasCode("FORBIDDEN"), "patient reading %s: %s", q, harness.Describe(r))
	}
}
