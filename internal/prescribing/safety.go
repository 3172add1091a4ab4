package prescribing

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/druginteraction"
)

// How an allergy matched a drug, strongest first; the values are what
// extensions.allergies[].match says.
const (
	MatchIngredient      = "INGREDIENT"
	MatchBrand           = "BRAND"
	MatchName            = "NAME"
	MatchClass           = "CLASS"
	MatchCrossReactivity = "CROSS_REACTIVITY"
)

// Knowledge is what the safety checks read: the formulary, the allergen
// classes and the interaction table, loaded once per prescription.
type Knowledge struct {
	drugs        []*ent.Drug
	classes      []*ent.AllergenClass
	interactions []*ent.DrugInteraction
	// inns are every ingredient any table names, normalised, to find
	// ingredients in a free-text drug name.
	inns []string
}

// LoadKnowledge reads the tables the checks match against. It reads them
// whole: free-text names and recorded allergies are matched against every
// item's names and ingredients, which no index serves. The tables are
// reference data of hundreds of rows; a hospital loading a licensed
// database of many thousands would want them cached between prescriptions.
func LoadKnowledge(ctx context.Context, c *ent.Client) (*Knowledge, error) {
	drugs, err := c.Drug.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read formulary: %w", err)
	}
	classes, err := c.AllergenClass.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read allergen classes: %w", err)
	}
	interactions, err := c.DrugInteraction.Query().Order(ent.Asc(druginteraction.FieldCode)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("read interactions: %w", err)
	}
	k := &Knowledge{drugs: drugs, classes: classes, interactions: interactions}
	seen := map[string]bool{}
	add := func(list []string) {
		for _, s := range list {
			if n := norm(s); n != "" && !seen[n] {
				seen[n] = true
				k.inns = append(k.inns, n)
			}
		}
	}
	for _, d := range drugs {
		add(d.Ingredients)
	}
	for _, cl := range classes {
		add(cl.Ingredients)
	}
	for _, ix := range interactions {
		add(ix.AIngredients)
		add(ix.BIngredients)
	}
	return k, nil
}

// Profile is what the checks know of one drug: its name, ingredients
// (normalised INNs), brand names and ATC codes.
type Profile struct {
	Name        string
	ingredients []string
	brands      []string
	atcs        []string
}

// ProfileOfItem is the profile of a formulary item.
func (k *Knowledge) ProfileOfItem(d *ent.Drug) Profile {
	p := Profile{Name: d.GenericName, brands: d.BrandNames}
	for _, i := range d.Ingredients {
		p.ingredients = appendNew(p.ingredients, norm(i))
	}
	if d.AtcCode != nil {
		p.atcs = append(p.atcs, *d.AtcCode)
	}
	return p
}

// ProfileOfText is the profile of a drug named in free text: the formulary
// items whose generic or brand name it contains, and every known
// ingredient it names. "Augmentin 625" is amoxicillin and clavulanic acid
// in J01CR02; "ibuprofen 400 mg" is ibuprofen.
func (k *Knowledge) ProfileOfText(text string) Profile {
	p := Profile{Name: text}
	w := words(text)
	for _, d := range k.drugs {
		if d.Kind != drug.KindDRUG || !(containsRun(w, words(d.GenericName)) || slices.ContainsFunc(d.BrandNames, func(b string) bool {
			return containsRun(w, words(b))
		})) {
			continue
		}
		for _, i := range d.Ingredients {
			p.ingredients = appendNew(p.ingredients, norm(i))
		}
		if d.AtcCode != nil {
			p.atcs = appendNew(p.atcs, *d.AtcCode)
		}
	}
	for _, inn := range k.inns {
		if containsRun(w, strings.Fields(inn)) {
			p.ingredients = appendNew(p.ingredients, inn)
		}
	}
	return p
}

// allergen is what an allergy's substance is taken to cover.
type allergen struct {
	substance string
	profile   Profile
	classes   []*ent.AllergenClass
}

// allergenOf reads a recorded substance: a class by its terms ("Penicillin",
// "sulfa"), a formulary item by its exact generic or brand name
// ("Augmentin"), or ingredients it names ("amoxicillin"); the classes of
// whatever it resolves to are covered too, so an amoxicillin allergy warns
// on flucloxacillin.
func (k *Knowledge) allergenOf(substance string) allergen {
	w := words(substance)
	a := allergen{substance: substance, profile: Profile{Name: substance}}
	for _, d := range k.drugs {
		if d.Kind != drug.KindDRUG || !(slices.Equal(w, words(d.GenericName)) || slices.ContainsFunc(d.BrandNames, func(b string) bool {
			return slices.Equal(w, words(b))
		})) {
			continue
		}
		for _, i := range d.Ingredients {
			a.profile.ingredients = appendNew(a.profile.ingredients, norm(i))
		}
		if d.AtcCode != nil {
			a.profile.atcs = appendNew(a.profile.atcs, *d.AtcCode)
		}
	}
	for _, inn := range k.inns {
		if containsRun(w, strings.Fields(inn)) {
			a.profile.ingredients = appendNew(a.profile.ingredients, inn)
		}
	}
	for _, cl := range k.classes {
		named := slices.ContainsFunc(cl.Terms, func(t string) bool { return containsRun(w, words(t)) })
		if named || inClass(a.profile, cl) {
			a.classes = append(a.classes, cl)
		}
	}
	return a
}

// AllergyMatch is an active allergy that a prescribed drug matches.
type AllergyMatch struct {
	ID        string
	Substance string
	Severity  allergy.Severity
	// Match is how: MatchIngredient, MatchBrand, MatchName, MatchClass or
	// MatchCrossReactivity.
	Match string
	// Class is the allergen class matched through, for the last two.
	Class string
	// Detail says what matched, in words a prescriber reads.
	Detail string
	// Note is the class's cross-reactivity note, if it has one.
	Note *string
}

// MatchAllergy reports whether an allergy to substance applies to the drug
// of profile p, and how; the strongest match wins.
func (k *Knowledge) MatchAllergy(p Profile, substance string) (AllergyMatch, bool) {
	a := k.allergenOf(substance)
	m := AllergyMatch{Substance: substance}
	if shared := intersect(a.profile.ingredients, p.ingredients); len(shared) > 0 {
		m.Match, m.Detail = MatchIngredient, fmt.Sprintf("%s: %s contains %s", substance, p.Name, strings.Join(shared, ", "))
		return m, true
	}
	for _, b := range p.brands {
		if Matches(b, substance) {
			m.Match, m.Detail = MatchBrand, fmt.Sprintf("%s: %s is sold as %s", substance, p.Name, b)
			return m, true
		}
	}
	if Matches(p.Name, substance) {
		m.Match, m.Detail = MatchName, fmt.Sprintf("%s: the drug's name matches", substance)
		return m, true
	}
	for _, cl := range a.classes {
		if inClass(p, cl) {
			m.Match, m.Class, m.Note = MatchClass, cl.Name, cl.Note
			m.Detail = fmt.Sprintf("%s: %s is in the class %s", substance, p.Name, cl.Name)
			return m, true
		}
	}
	for _, cl := range a.classes {
		for _, other := range k.classes {
			if slices.Contains(cl.CrossReactiveClasses, other.Code) && inClass(p, other) {
				m.Match, m.Class, m.Note = MatchCrossReactivity, other.Name, cl.Note
				m.Detail = fmt.Sprintf("%s: %s is in the class %s, which may cross-react with %s", substance, p.Name, other.Name, cl.Name)
				return m, true
			}
		}
	}
	return AllergyMatch{}, false
}

// InteractionMatch is a row of the interaction table that the prescribed
// drug and one of the patient's active orders meet.
type InteractionMatch struct {
	ID       string
	Code     string
	Severity druginteraction.Severity
	// Pair names the two sides, e.g. "warfarin + NSAIDs and aspirin".
	Pair           string
	Effect, Advice string
	// OrderID and Drug are the other order's.
	OrderID, Drug string
}

// Interactions returns the rows of the table that profiles a and b meet,
// whichever side each is on.
func (k *Knowledge) Interactions(a, b Profile) []*ent.DrugInteraction {
	var out []*ent.DrugInteraction
	for _, ix := range k.interactions {
		aSide := func(p Profile) bool { return onSide(p, ix.AIngredients, ix.AAtcPrefixes) }
		bSide := func(p Profile) bool { return onSide(p, ix.BIngredients, ix.BAtcPrefixes) }
		if (aSide(a) && bSide(b)) || (bSide(a) && aSide(b)) {
			out = append(out, ix)
		}
	}
	return out
}

func onSide(p Profile, ingredients, atcPrefixes []string) bool {
	for _, i := range ingredients {
		if slices.Contains(p.ingredients, norm(i)) {
			return true
		}
	}
	return hasATCPrefix(p.atcs, atcPrefixes)
}

func inClass(p Profile, cl *ent.AllergenClass) bool {
	return onSide(p, cl.Ingredients, cl.AtcPrefixes)
}

func hasATCPrefix(atcs, prefixes []string) bool {
	for _, code := range atcs {
		for _, pre := range prefixes {
			if pre != "" && strings.HasPrefix(strings.ToUpper(code), strings.ToUpper(pre)) {
				return true
			}
		}
	}
	return false
}

// norm is a name as the checks compare it: lower-case words separated by
// single spaces.
func norm(s string) string { return strings.Join(words(s), " ") }

func appendNew(list []string, s string) []string {
	if s == "" || slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
