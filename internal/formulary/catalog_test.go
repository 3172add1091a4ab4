package formulary

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/testenv"
)

func seeded(t *testing.T) (context.Context, *ent.Client) {
	t.Helper()
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	if err := Seed(ctx, st.Client); err != nil {
		t.Fatalf("seed: %v", err)
	}
	return ctx, st.Client
}

func counts(t *testing.T, ctx context.Context, c *ent.Client) [3]int {
	t.Helper()
	return [3]int{c.Drug.Query().CountX(ctx), c.AllergenClass.Query().CountX(ctx), c.DrugInteraction.Query().CountX(ctx)}
}

// The codes other parts of the system (the stock demo, the README) name.
func TestSeededItemsOthersRelyOn(t *testing.T) {
	ctx, c := seeded(t)
	for _, want := range []struct {
		code, generic string
		kind          drug.Kind
		atc           string
		ingredients   []string
		brand         string
		schedule      drug.ControlledSchedule
	}{
		{"AMOX500CAP", "amoxicillin", drug.KindDRUG, "J01CA04", []string{"amoxicillin"}, "", ""},
		{"COAMOX625TAB", "amoxicillin + clavulanic acid", drug.KindDRUG, "J01CR02", []string{"amoxicillin", "clavulanic acid"}, "Augmentin", ""},
		{"PARA500TAB", "paracetamol", drug.KindDRUG, "N02BE01", []string{"paracetamol"}, "", ""},
		{"MORPH10INJ", "morphine", drug.KindDRUG, "N02AA01", []string{"morphine"}, "", drug.ControlledScheduleII},
		{"CEFTRI1GINJ", "ceftriaxone", drug.KindDRUG, "J01DD04", []string{"ceftriaxone"}, "", ""},
		{"SYR5ML", "syringe 5 mL, luer lock", drug.KindCONSUMABLE, "", nil, "", ""},
	} {
		d, err := c.Drug.Query().Where(drug.Code(want.code)).Only(ctx)
		if err != nil {
			t.Errorf("%s: %v", want.code, err)
			continue
		}
		atc := ""
		if d.AtcCode != nil {
			atc = *d.AtcCode
		}
		if d.GenericName != want.generic || d.Kind != want.kind || atc != want.atc || !slices.Equal(d.Ingredients, want.ingredients) ||
			(want.brand != "" && !slices.Contains(d.BrandNames, want.brand)) || !d.Active || d.UnitOfIssue == "" {
			t.Errorf("%s: %+v", want.code, d)
		}
		if (want.schedule == "") != (d.ControlledSchedule == nil) || (d.ControlledSchedule != nil && *d.ControlledSchedule != want.schedule) {
			t.Errorf("%s: schedule %v, want %q", want.code, d.ControlledSchedule, want.schedule)
		}
	}
	if n := c.Drug.Query().Where(drug.KindEQ(drug.KindDRUG)).CountX(ctx); n < 36 {
		t.Errorf("only %d drugs seeded", n)
	}
	if n := c.Drug.Query().Where(drug.KindEQ(drug.KindCONSUMABLE)).CountX(ctx); n < 4 {
		t.Errorf("only %d consumables seeded", n)
	}
	for _, code := range []string{"MORPH10INJ", "PETH50INJ", "FENT50INJ", "DIAZ5TAB"} {
		if d := c.Drug.Query().Where(drug.Code(code)).OnlyX(ctx); d.ControlledSchedule == nil {
			t.Errorf("%s is seeded without a controlled schedule", code)
		}
	}
}

// The starter data passes the checks a pharmacist's own items do, and its
// cross-references resolve.
func TestStarterDataIsWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, it := range items {
		if seen[it.code] || !codePattern.MatchString(it.code) || len([]rune(it.code)) > 32 {
			t.Errorf("item code %q duplicated or malformed", it.code)
		}
		seen[it.code] = true
		var c = checker()
		f := check(c, itemFields{kind: it.kind, genericName: it.generic, brandNames: it.brands, form: opt(it.form),
			strength: opt(it.strength), route: optRoute(it.route), atcCode: opt(it.atc), ingredients: it.ingredients,
			unitOfIssue: it.unit, controlledSchedule: optSchedule(it.schedule), reorderLevel: it.reorder})
		if err := c.Err(); err != nil {
			t.Errorf("%s: %v", it.code, err)
		}
		if it.kind == drug.KindDRUG && (f.atcCode == nil || len(*f.atcCode) != 7) {
			t.Errorf("%s: a drug needs its full seven-character ATC code", it.code)
		}
	}
	classCodes := map[string]bool{}
	for _, cl := range classes {
		classCodes[cl.code] = true
	}
	atcPrefix := regexp.MustCompile(`^[A-Z][0-9]{2}[A-Z]{0,2}$`)
	lowerINN := func(s string) bool { return s == strings.ToLower(s) && strings.TrimSpace(s) == s && s != "" }
	for _, cl := range classes {
		for _, other := range cl.crossWith {
			if !classCodes[other] || other == cl.code {
				t.Errorf("class %s: cross-reacts with unknown class %s", cl.code, other)
			}
		}
		for _, p := range cl.atc {
			if !atcPrefix.MatchString(p) {
				t.Errorf("class %s: ATC prefix %q", cl.code, p)
			}
		}
		for _, s := range append(slices.Clone(cl.terms), cl.ingredients...) {
			if !lowerINN(s) {
				t.Errorf("class %s: %q is not a lower-case name", cl.code, s)
			}
		}
	}
	for _, ix := range interactions {
		if (len(ix.aIngredients) == 0 && len(ix.aATC) == 0) || (len(ix.bIngredients) == 0 && len(ix.bATC) == 0) || ix.advice == "" {
			t.Errorf("interaction %s has an empty side or no advice", ix.code)
		}
		for _, s := range append(slices.Clone(ix.aIngredients), ix.bIngredients...) {
			if !lowerINN(s) {
				t.Errorf("interaction %s: %q is not a lower-case INN", ix.code, s)
			}
		}
		for _, p := range append(slices.Clone(ix.aATC), ix.bATC...) {
			if !atcPrefix.MatchString(p) {
				t.Errorf("interaction %s: ATC prefix %q", ix.code, p)
			}
		}
	}
}

func TestSeedTwiceChangesNothingAndKeepsThePharmacysEdits(t *testing.T) {
	ctx, c := seeded(t)
	first := counts(t, ctx, c)
	if first != [3]int{len(items), len(classes), len(interactions)} {
		t.Fatalf("seeded %v", first)
	}
	para := c.Drug.Query().Where(drug.Code("PARA500TAB")).OnlyX(ctx)
	c.Drug.UpdateOne(para).SetReorderLevel(7).SetBrandNames([]string{"Calpol"}).ExecX(ctx)
	c.Drug.Delete().Where(drug.Code("SYR5ML")).ExecX(ctx)
	if err := Seed(ctx, c); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, ctx, c); got != first {
		t.Fatalf("after reseeding %v, want %v", got, first)
	}
	para = c.Drug.Query().Where(drug.Code("PARA500TAB")).OnlyX(ctx)
	if para.ReorderLevel != 7 || !slices.Equal(para.BrandNames, []string{"Calpol"}) {
		t.Errorf("the pharmacy's edit was overwritten: %+v", para)
	}
}

func TestSeedJoinsTheCallersTransaction(t *testing.T) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	tx, err := st.Client.Tx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := Seed(ctx, tx.Client()); err != nil {
		t.Fatal(err)
	}
	if n := tx.Drug.Query().CountX(ctx); n != len(items) {
		t.Fatalf("%d items inside the transaction", n)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	if got := counts(t, ctx, st.Client); got != [3]int{} {
		t.Errorf("%v rows outlived the rolled-back transaction", got)
	}
}

func TestSeedConcurrently(t *testing.T) {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = Seed(ctx, st.Client)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("seeder %d: %v", i, err)
		}
	}
	if got := counts(t, ctx, st.Client); got != [3]int{len(items), len(classes), len(interactions)} {
		t.Errorf("concurrent seeding left %v", got)
	}
}

func checker() *input.Checker { return &input.Checker{} }

func opt(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optRoute(r drug.Route) *drug.Route {
	if r == "" {
		return nil
	}
	return &r
}

func optSchedule(s drug.ControlledSchedule) *drug.ControlledSchedule {
	if s == "" {
		return nil
	}
	return &s
}
