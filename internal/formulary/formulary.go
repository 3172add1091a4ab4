package formulary

import (
	"context"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// CreateFormularyItemInput is the input of createFormularyItem.
type CreateFormularyItemInput struct {
	Code               string
	Kind               drug.Kind
	GenericName        string
	BrandNames         []string
	Form               *string
	Strength           *string
	Route              *drug.Route
	AtcCode            *string
	Ingredients        []string
	UnitOfIssue        string
	ControlledSchedule *drug.ControlledSchedule
	ReorderLevel       int
}

// UpdateFormularyItemInput is the input of updateFormularyItem: a field
// left out stays, null clears an optional one.
type UpdateFormularyItemInput struct {
	GenericName        graphql.Omittable[*string]
	BrandNames         graphql.Omittable[[]string]
	Form               graphql.Omittable[*string]
	Strength           graphql.Omittable[*string]
	Route              graphql.Omittable[*drug.Route]
	AtcCode            graphql.Omittable[*string]
	Ingredients        graphql.Omittable[[]string]
	UnitOfIssue        graphql.Omittable[*string]
	ControlledSchedule graphql.Omittable[*drug.ControlledSchedule]
	ReorderLevel       graphql.Omittable[*int]
}

// Limits on an item beyond what the data model enforces.
const (
	MaxNames        = 20
	MaxNameLength   = 100
	MaxReorderLevel = 1_000_000
)

var (
	codePattern = regexp.MustCompile(`^[A-Z0-9][A-Z0-9._-]*$`)
	// An ATC code or one of its prefixes: anatomical group, therapeutic,
	// pharmacological and chemical subgroups, substance.
	atcPattern = regexp.MustCompile(`^[A-Z]([0-9]{2}([A-Z]([A-Z]([0-9]{2})?)?)?)?$`)
)

// Service manages the formulary.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st.
func NewService(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// managers are the staff who answer for the formulary's content.
var managers = []staff.Kind{staff.KindPHARMACIST, staff.KindADMINISTRATOR}

// lowersSchedule reports whether a change of controlled schedule from old
// to new makes the drug less controlled (II is the strictest).
func lowersSchedule(old, new *drug.ControlledSchedule) bool {
	switch {
	case old == nil:
		return false
	case new == nil:
		return true
	default:
		return *new > *old // "II" < "III" < "IV" < "V"
	}
}

// itemFields is an item's content, validated and normalised.
type itemFields struct {
	kind               drug.Kind
	genericName        string
	brandNames         []string
	form, strength     *string
	route              *drug.Route
	atcCode            *string
	ingredients        []string
	unitOfIssue        string
	controlledSchedule *drug.ControlledSchedule
	reorderLevel       int
}

// Create adds an item to the formulary.
func (s *Service) Create(ctx context.Context, in CreateFormularyItemInput) (*ent.Drug, error) {
	var c input.Checker
	code := strings.ToUpper(c.Text("input.code", in.Code, 32))
	if c.Err() == nil && !codePattern.MatchString(code) {
		c.Fail(apperr.BadInput("input.code", "may hold only letters, digits, '.', '-' and '_'"))
	}
	if c.Err() == nil && drug.KindValidator(in.Kind) != nil {
		c.Fail(apperr.BadInput("input.kind", "is not a kind of item"))
	}
	f := check(&c, itemFields{
		kind: in.Kind, genericName: in.GenericName, brandNames: in.BrandNames, form: in.Form, strength: in.Strength,
		route: in.Route, atcCode: in.AtcCode, ingredients: in.Ingredients, unitOfIssue: in.UnitOfIssue,
		controlledSchedule: in.ControlledSchedule, reorderLevel: in.ReorderLevel,
	})
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Drug, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "manage the formulary", managers...); err != nil {
			return nil, err
		}
		created, err := tx.Drug.Create().SetCode(code).SetKind(f.kind).SetGenericName(f.genericName).
			SetBrandNames(f.brandNames).SetNillableForm(f.form).SetNillableStrength(f.strength).SetNillableRoute(f.route).
			SetNillableAtcCode(f.atcCode).SetIngredients(f.ingredients).SetUnitOfIssue(f.unitOfIssue).
			SetNillableControlledSchedule(f.controlledSchedule).SetReorderLevel(f.reorderLevel).Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("the formulary already has an item with code %s", code)
		}
		return created, err
	})
}

// Update corrects an item; the result is checked whole, so a change cannot
// leave a drug without ingredients.
func (s *Service) Update(ctx context.Context, id string, in UpdateFormularyItemInput) (*ent.Drug, error) {
	if err := input.ID("id", id, input.Drug); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Drug, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, "manage the formulary", managers...)
		if err != nil {
			return nil, err
		}
		// The item is read, changed and written whole: held, so that two
		// pharmacists correcting different fields at once both keep theirs.
		if err := s.store.Lock(ctx, tx, "drug:"+id); err != nil {
			return nil, err
		}
		d, err := tx.Drug.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("formulary item not found")
		} else if err != nil {
			return nil, err
		}
		f := itemFields{kind: d.Kind, genericName: d.GenericName, brandNames: d.BrandNames, form: d.Form, strength: d.Strength,
			route: d.Route, atcCode: d.AtcCode, ingredients: d.Ingredients, unitOfIssue: d.UnitOfIssue,
			controlledSchedule: d.ControlledSchedule, reorderLevel: d.ReorderLevel}
		if v, ok := in.GenericName.ValueOK(); ok {
			f.genericName = deref(v)
		}
		if v, ok := in.BrandNames.ValueOK(); ok {
			f.brandNames = v
		}
		if v, ok := in.Form.ValueOK(); ok {
			f.form = v
		}
		if v, ok := in.Strength.ValueOK(); ok {
			f.strength = v
		}
		if v, ok := in.Route.ValueOK(); ok {
			f.route = v
		}
		if v, ok := in.AtcCode.ValueOK(); ok {
			f.atcCode = v
		}
		if v, ok := in.Ingredients.ValueOK(); ok {
			f.ingredients = v
		}
		if v, ok := in.UnitOfIssue.ValueOK(); ok {
			f.unitOfIssue = deref(v)
		}
		if v, ok := in.ControlledSchedule.ValueOK(); ok {
			f.controlledSchedule = v
		}
		if v, ok := in.ReorderLevel.ValueOK(); ok {
			if v == nil {
				return nil, apperr.BadInput("input.reorderLevel", "cannot be null; 0 means no reorder level")
			}
			f.reorderLevel = *v
		}
		var c input.Checker
		f = check(&c, f)
		if err := c.Err(); err != nil {
			return nil, err
		}
		if lowersSchedule(d.ControlledSchedule, f.controlledSchedule) && actor.Kind != staff.KindADMINISTRATOR {
			return nil, apperr.Denied("only an administrator may lower or remove a controlled drug's schedule: " +
				"the pharmacist who dispenses it would otherwise drop its witness alone")
		}
		u := tx.Drug.UpdateOne(d).SetGenericName(f.genericName).SetBrandNames(f.brandNames).SetIngredients(f.ingredients).
			SetUnitOfIssue(f.unitOfIssue).SetReorderLevel(f.reorderLevel)
		if f.form != nil {
			u.SetForm(*f.form)
		} else {
			u.ClearForm()
		}
		if f.strength != nil {
			u.SetStrength(*f.strength)
		} else {
			u.ClearStrength()
		}
		if f.route != nil {
			u.SetRoute(*f.route)
		} else {
			u.ClearRoute()
		}
		if f.atcCode != nil {
			u.SetAtcCode(*f.atcCode)
		} else {
			u.ClearAtcCode()
		}
		if f.controlledSchedule != nil {
			u.SetControlledSchedule(*f.controlledSchedule)
		} else {
			u.ClearControlledSchedule()
		}
		return u.Save(ctx)
	})
}

// SetActive deactivates or reactivates an item, conditional on it being in
// the other state, so that of two concurrent changes one is told it lost.
func (s *Service) SetActive(ctx context.Context, id string, active bool) (*ent.Drug, error) {
	if err := input.ID("id", id, input.Drug); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Drug, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "manage the formulary", managers...); err != nil {
			return nil, err
		}
		d, err := tx.Drug.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("formulary item not found")
		} else if err != nil {
			return nil, err
		}
		if d.Active == active {
			return nil, apperr.Conflictf("the item is already %s", activeWord(active))
		}
		out, err := tx.Drug.UpdateOne(d).Where(drug.Active(!active)).SetActive(active).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the item is already %s", activeWord(active))
		}
		return out, err
	})
}

func activeWord(active bool) string {
	if active {
		return "active"
	}
	return "inactive"
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// check validates and normalises an item's content, naming the first bad
// field.
func check(c *input.Checker, f itemFields) itemFields {
	f.genericName = c.Text("input.genericName", f.genericName, 200)
	f.brandNames = names(c, "input.brandNames", f.brandNames, false)
	f.form = c.OptionalText("input.form", f.form, 40)
	f.strength = c.OptionalText("input.strength", f.strength, 60)
	if c.Err() == nil && f.route != nil && drug.RouteValidator(*f.route) != nil {
		c.Fail(apperr.BadInput("input.route", "is not a route of administration"))
	}
	f.atcCode = c.OptionalText("input.atcCode", f.atcCode, 7)
	if c.Err() == nil && f.atcCode != nil {
		up := strings.ToUpper(*f.atcCode)
		f.atcCode = &up
		if !atcPattern.MatchString(up) {
			c.Fail(apperr.BadInput("input.atcCode", "is not a WHO ATC code (e.g. J01CR02)"))
		}
	}
	f.ingredients = names(c, "input.ingredients", f.ingredients, true)
	f.unitOfIssue = c.Text("input.unitOfIssue", f.unitOfIssue, 20)
	if c.Err() == nil && f.controlledSchedule != nil && drug.ControlledScheduleValidator(*f.controlledSchedule) != nil {
		c.Fail(apperr.BadInput("input.controlledSchedule", "is not a controlled-substance schedule"))
	}
	if c.Err() == nil && (f.reorderLevel < 0 || f.reorderLevel > MaxReorderLevel) {
		c.Fail(apperr.BadInput("input.reorderLevel", "must be from 0 to %d", MaxReorderLevel))
	}
	if c.Err() != nil {
		return f
	}
	// Allergy and interaction checks read ingredients and the ATC code: a
	// drug without ingredients would pass them all unseen, and a consumable
	// with them would look like something one could be allergic to.
	switch f.kind {
	case drug.KindDRUG:
		if len(f.ingredients) == 0 {
			c.Fail(apperr.BadInput("input.ingredients", "must name at least one active ingredient of a drug"))
		}
	case drug.KindCONSUMABLE:
		switch {
		case len(f.ingredients) > 0:
			c.Fail(apperr.BadInput("input.ingredients", "must be empty for a consumable"))
		case f.atcCode != nil:
			c.Fail(apperr.BadInput("input.atcCode", "must be empty for a consumable"))
		case f.controlledSchedule != nil:
			c.Fail(apperr.BadInput("input.controlledSchedule", "must be empty for a consumable"))
		case f.route != nil:
			c.Fail(apperr.BadInput("input.route", "must be empty for a consumable"))
		}
	}
	return f
}

// names checks a list of names: each trimmed, none blank, none twice
// (ignoring case); ingredients are lower-cased INNs of letters, digits,
// spaces and hyphens, as the allergy checks compare them.
func names(c *input.Checker, field string, list []string, ingredient bool) []string {
	if c.Err() != nil {
		return list
	}
	if len(list) > MaxNames {
		c.Fail(apperr.BadInput(field, "may hold at most %d names", MaxNames))
		return list
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, n := range list {
		n = c.Text(field, n, MaxNameLength)
		if c.Err() != nil {
			return list
		}
		if ingredient {
			n = strings.ToLower(n)
			if strings.IndexFunc(n, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != ' ' && r != '-' }) >= 0 {
				c.Fail(apperr.BadInput(field, "holds %q: an ingredient is a name of letters, digits, spaces and hyphens", n))
				return list
			}
		}
		key := strings.ToLower(n)
		if seen[key] {
			c.Fail(apperr.BadInput(field, "names %q twice", n))
			return list
		}
		seen[key] = true
		out = append(out, n)
	}
	return out
}
