package prescribing

import (
	"context"
	"testing"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/druginteraction"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/formulary"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// seededKnowledge is the starter tables, as a fresh database holds them.
func seededKnowledge(t *testing.T) (*Knowledge, map[string]*ent.Drug) {
	t.Helper()
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	if err := formulary.Seed(ctx, st.Client); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKnowledge(ctx, st.Client)
	if err != nil {
		t.Fatal(err)
	}
	items := map[string]*ent.Drug{}
	for _, d := range st.Client.Drug.Query().Where(drug.KindEQ(drug.KindDRUG)).AllX(ctx) {
		items[d.Code] = d
	}
	return k, items
}

// profileOf reads "code:XYZ" as the formulary item XYZ and anything else
// as a free-text drug name.
func profileOf(t *testing.T, k *Knowledge, items map[string]*ent.Drug, drug string) Profile {
	t.Helper()
	if len(drug) > 5 && drug[:5] == "code:" {
		d, ok := items[drug[5:]]
		if !ok {
			t.Fatalf("no formulary item %s", drug[5:])
		}
		return k.ProfileOfItem(d)
	}
	return k.ProfileOfText(drug)
}

func TestAllergyMatchesByIngredientBrandAndClass(t *testing.T) {
	k, items := seededKnowledge(t)
	for _, c := range []struct {
		allergy, drug string
		match         string // "" for no match
		class         string
	}{
		// The reported bugs: an ingredient inside a brand, a class member.
		{"Amoxicillin", "code:COAMOX625TAB", MatchIngredient, ""},
		{"Amoxicillin", "Augmentin", MatchIngredient, ""},
		{"Penicillin", "code:AMOX500CAP", MatchClass, "penicillins"},
		{"Penicillin", "Amoxicillin", MatchClass, "penicillins"},
		{"penicillins", "code:COAMOX625TAB", MatchClass, "penicillins"},
		{"Penicillin", "code:PIPTAZ4.5INJ", MatchClass, "penicillins"},
		{"Penicillin", "code:FLUCLOX500CAP", MatchClass, "penicillins"},
		// An allergy recorded by brand covers the brand's ingredients.
		{"Augmentin", "code:AMOX500CAP", MatchIngredient, ""},
		{"Augmentin", "amoxicillin 250 mg", MatchIngredient, ""},
		{"Voltaren", "code:DICLO50TAB", MatchIngredient, ""},
		{"Zithromax", "code:CLARI500TAB", MatchClass, "macrolides"},
		// A member's allergy covers its class.
		{"Amoxicillin", "code:FLUCLOX500CAP", MatchClass, "penicillins"},
		{"Clarithromycin", "code:AZITH500TAB", MatchClass, "macrolides"},
		{"Codeine", "code:TRAM50CAP", MatchClass, "opioids"},
		{"Ciprofloxacin", "Levofloxacin", MatchClass, "fluoroquinolones"},
		{"Enalapril", "code:LISIN10TAB", MatchClass, "ACE inhibitors"},
		// Cross-reactive classes, with their note.
		{"Penicillin", "code:CEFTRI1GINJ", MatchCrossReactivity, "cephalosporins"},
		{"Penicillin", "code:CEFALEX500CAP", MatchCrossReactivity, "cephalosporins"},
		{"Penicillin", "code:MEROP1GINJ", MatchCrossReactivity, "carbapenems"},
		{"Cephalosporins", "code:COAMOX625TAB", MatchCrossReactivity, "penicillins"},
		{"Ceftriaxone", "code:CEFUROX250TAB", MatchClass, "cephalosporins"},
		// Sulfonamide antibacterials, not every sulfonamide.
		{"Sulfa", "code:COTRIM480TAB", MatchClass, "sulfonamide antibacterials"},
		{"Sulphonamides", "Bactrim", MatchClass, "sulfonamide antibacterials"},
		{"Sulfa", "code:FUROS40TAB", "", ""},
		{"Sulfa", "Sulfasalazine", "", ""},
		{"Sulfamethoxazole", "code:TRIM200TAB", "", ""},
		// NSAIDs include aspirin; paracetamol is not one.
		{"NSAIDs", "code:ASA75TAB", MatchClass, "NSAIDs and aspirin"},
		{"NSAID", "code:IBU400TAB", MatchClass, "NSAIDs and aspirin"},
		{"Aspirin", "code:ASA75TAB", MatchIngredient, ""},
		{"Aspirin", "code:IBU400TAB", MatchClass, "NSAIDs and aspirin"},
		{"Ibuprofen", "Aspirin 75 mg", MatchClass, "NSAIDs and aspirin"},
		{"Ibuprofen", "code:DICLO50TAB", MatchClass, "NSAIDs and aspirin"},
		{"Aspirin", "code:PARA500TAB", "", ""},
		{"Ibuprofen", "Paracetamol", "", ""},
		// Opioids, including fentanyl outside N02A.
		{"Opioids", "code:FENT50INJ", MatchClass, "opioids"},
		{"Opiates", "code:MORPH10INJ", MatchClass, "opioids"},
		{"Morphine", "code:MORPH10INJ", MatchIngredient, ""},
		{"Morphine", "code:PETH50INJ", MatchClass, "opioids"},
		{"Morphine", "code:PARA500TAB", "", ""},
		// Benzodiazepines.
		{"Diazepam", "code:MIDAZ5INJ", MatchClass, "benzodiazepines"},
		// The name match of before still holds for free text.
		{"Penicillin", "Penicillin V potassium", MatchName, ""},
		{"Insulin", "Insulin glargine", MatchName, ""},
		// Nothing in common.
		{"Penicillin", "code:AZITH500TAB", "", ""},
		{"Penicillin", "code:PARA500TAB", "", ""},
		{"Penicillin", "code:DOXY100CAP", "", ""},
		{"Latex", "code:COAMOX625TAB", "", ""},
		{"Peanut", "Metformin", "", ""},
		{"Clavulanic acid", "code:AMOX500CAP", "", ""},
	} {
		p := profileOf(t, k, items, c.drug)
		m, ok := k.MatchAllergy(p, c.allergy)
		switch {
		case c.match == "" && ok:
			t.Errorf("%s allergy, %s: matched %+v, want no match", c.allergy, c.drug, m)
		case c.match == "":
		case !ok:
			t.Errorf("%s allergy, %s: no match, want %s", c.allergy, c.drug, c.match)
		case m.Match != c.match || m.Class != c.class || m.Substance != c.allergy || m.Detail == "":
			t.Errorf("%s allergy, %s: %+v, want %s via %q", c.allergy, c.drug, m, c.match, c.class)
		case c.match == MatchCrossReactivity && (m.Note == nil || *m.Note == ""):
			t.Errorf("%s allergy, %s: a cross-reactivity without its note: %+v", c.allergy, c.drug, m)
		}
	}
}

func TestInteractionsBetweenRealPairs(t *testing.T) {
	k, items := seededKnowledge(t)
	for _, c := range []struct {
		a, b     string
		code     string // "" for none
		severity druginteraction.Severity
	}{
		{"code:WARF5TAB", "code:ASA75TAB", "WARFARIN-NSAID", druginteraction.SeverityMAJOR},
		{"code:WARF5TAB", "code:IBU400TAB", "WARFARIN-NSAID", druginteraction.SeverityMAJOR},
		{"code:DICLO50TAB", "code:WARF5TAB", "WARFARIN-NSAID", druginteraction.SeverityMAJOR},
		{"Warfarin 3 mg", "Aspirin 75 mg", "WARFARIN-NSAID", druginteraction.SeverityMAJOR},
		{"code:WARF5TAB", "code:METRO400TAB", "WARFARIN-METRONIDAZOLE", druginteraction.SeverityMAJOR},
		{"Flagyl", "Coumadin", "WARFARIN-METRONIDAZOLE", druginteraction.SeverityMAJOR},
		{"code:WARF5TAB", "code:COTRIM480TAB", "WARFARIN-COTRIMOXAZOLE", druginteraction.SeverityMAJOR},
		{"code:SIMVA20TAB", "code:CLARI500TAB", "SIMVASTATIN-MACROLIDE", druginteraction.SeverityCONTRAINDICATED},
		{"code:CLARI500TAB", "Simvastatin 40 mg", "SIMVASTATIN-MACROLIDE", druginteraction.SeverityCONTRAINDICATED},
		{"code:SIMVA20TAB", "code:AMLO5TAB", "SIMVASTATIN-AMLODIPINE", druginteraction.SeverityMODERATE},
		{"code:SILD50TAB", "code:GTN400SL", "PDE5-NITRATE", druginteraction.SeverityCONTRAINDICATED},
		{"code:ISMN20TAB", "Viagra", "PDE5-NITRATE", druginteraction.SeverityCONTRAINDICATED},
		{"code:MTX2.5TAB", "code:TRIM200TAB", "METHOTREXATE-TRIMETHOPRIM", druginteraction.SeverityCONTRAINDICATED},
		{"code:MTX2.5TAB", "code:COTRIM480TAB", "METHOTREXATE-TRIMETHOPRIM", druginteraction.SeverityCONTRAINDICATED},
		{"code:ENAL10TAB", "code:SPIRO25TAB", "ACEI-SPIRONOLACTONE", druginteraction.SeverityMAJOR},
		{"code:SPIRO25TAB", "code:LISIN10TAB", "ACEI-SPIRONOLACTONE", druginteraction.SeverityMAJOR},
		{"code:SERT50TAB", "code:TRAM50CAP", "SSRI-TRAMADOL", druginteraction.SeverityMAJOR},
		{"code:TRAM50CAP", "code:FLUOX20CAP", "SSRI-TRAMADOL", druginteraction.SeverityMAJOR},
		{"code:MORPH10INJ", "code:DIAZ10INJ", "OPIOID-BENZODIAZEPINE", druginteraction.SeverityMAJOR},
		{"code:FENT50INJ", "code:MIDAZ5INJ", "OPIOID-BENZODIAZEPINE", druginteraction.SeverityMAJOR},
		{"code:CLOP75TAB", "code:OMEP20CAP", "CLOPIDOGREL-OMEPRAZOLE", druginteraction.SeverityMODERATE},
		{"code:GENT80INJ", "code:FUROS20INJ", "AMINOGLYCOSIDE-LOOP", druginteraction.SeverityMODERATE},
		// Pairs that do not interact (or not in this table).
		{"code:CLOP75TAB", "code:PANTO40TAB", "", ""},
		{"code:SIMVA20TAB", "code:AZITH500TAB", "", ""},
		{"code:WARF5TAB", "code:PARA500TAB", "", ""},
		{"code:ATORVA20TAB", "code:AMLO5TAB", "", ""},
		{"code:MORPH10INJ", "code:PARA500TAB", "", ""},
		{"code:ENAL10TAB", "code:FUROS40TAB", "", ""},
		{"code:AMOX500CAP", "code:SIMVA20TAB", "", ""},
		{"Metformin", "Amlodipine", "", ""},
	} {
		a, b := profileOf(t, k, items, c.a), profileOf(t, k, items, c.b)
		for _, pair := range [][2]Profile{{a, b}, {b, a}} {
			found := k.Interactions(pair[0], pair[1])
			switch {
			case c.code == "" && len(found) > 0:
				t.Errorf("%s + %s: %s, want none", pair[0].Name, pair[1].Name, found[0].Code)
			case c.code == "":
			case len(found) != 1 || found[0].Code != c.code || found[0].Severity != c.severity || found[0].Advice == "":
				t.Errorf("%s + %s: %v, want %s (%s)", pair[0].Name, pair[1].Name, found, c.code, c.severity)
			}
		}
	}
}
