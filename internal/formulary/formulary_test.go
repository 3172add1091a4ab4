package formulary

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc                                 *Service
	client                              *ent.Client
	system                              context.Context
	pharmacist, admin, doctor, inactive context.Context
}

func setup(t *testing.T) fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	if err := Seed(sys, st.Client); err != nil {
		t.Fatal(err)
	}
	c := st.Client
	dep := c.Department.Create().SetCode("PHA").SetName("Pharmacy").SaveX(sys)
	as := func(kind staff.Kind, active bool, role string) context.Context {
		s := c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(kind).SetDepartment(dep).SetActive(active).SaveX(sys)
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + s.ID, Username: role, Roles: []string{role}, StaffID: s.ID})
	}
	return fixture{svc: NewService(st), client: c, system: sys,
		pharmacist: as(staff.KindPHARMACIST, true, "pharmacist"), admin: as(staff.KindADMINISTRATOR, true, "admin"),
		doctor: as(staff.KindDOCTOR, true, "doctor"), inactive: as(staff.KindPHARMACIST, false, "pharmacist")}
}

func ptr[T any](v T) *T { return &v }

func newItem() CreateFormularyItemInput {
	return CreateFormularyItemInput{Code: " nitro100cap ", Kind: drug.KindDRUG, GenericName: " nitrofurantoin ",
		BrandNames: []string{"Macrobid", " Macrodantin "}, Form: ptr("CAPSULE"), Strength: ptr("100 mg"), Route: ptr(drug.RouteORAL),
		AtcCode: ptr("j01xe01"), Ingredients: []string{" Nitrofurantoin "}, UnitOfIssue: "capsule", ReorderLevel: 50}
}

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

func TestCreateFormularyItem(t *testing.T) {
	f := setup(t)
	d, err := f.svc.Create(f.pharmacist, newItem())
	if err != nil {
		t.Fatal(err)
	}
	if d.Code != "NITRO100CAP" || d.GenericName != "nitrofurantoin" || !slices.Equal(d.BrandNames, []string{"Macrobid", "Macrodantin"}) ||
		*d.AtcCode != "J01XE01" || !slices.Equal(d.Ingredients, []string{"nitrofurantoin"}) || !d.Active || d.ReorderLevel != 50 {
		t.Fatalf("created: %+v", d)
	}
	gauze := CreateFormularyItemInput{Code: "CREPE10", Kind: drug.KindCONSUMABLE, GenericName: "crepe bandage 10 cm", UnitOfIssue: "roll"}
	if _, err := f.svc.Create(f.admin, gauze); err != nil {
		t.Fatalf("an administrator adding a consumable: %v", err)
	}
	if _, err := f.svc.Create(f.pharmacist, newItem()); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("a taken code: %v", err)
	}
	for name, ctx := range map[string]context.Context{"doctor": f.doctor, "inactive pharmacist": f.inactive, "anonymous": context.Background()} {
		in := newItem()
		in.Code = "OTHER1"
		if _, err := f.svc.Create(ctx, in); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBadFormularyInputNamesTheFieldAndChangesNothing(t *testing.T) {
	f := setup(t)
	before := f.client.Drug.Query().CountX(f.system)
	for field, change := range map[string]func(*CreateFormularyItemInput){
		"input.code":               func(in *CreateFormularyItemInput) { in.Code = "AMOX 500" },
		"input.kind":               func(in *CreateFormularyItemInput) { in.Kind = "DEVICE" },
		"input.genericName":        func(in *CreateFormularyItemInput) { in.GenericName = " " },
		"input.brandNames":         func(in *CreateFormularyItemInput) { in.BrandNames = []string{"Macrobid", "macrobid"} },
		"input.form":               func(in *CreateFormularyItemInput) { in.Form = ptr(strings.Repeat("x", 41)) },
		"input.route":              func(in *CreateFormularyItemInput) { in.Route = ptr(drug.Route("NASAL")) },
		"input.atcCode":            func(in *CreateFormularyItemInput) { in.AtcCode = ptr("J1XE01") },
		"input.ingredients":        func(in *CreateFormularyItemInput) { in.Ingredients = nil },
		"input.unitOfIssue":        func(in *CreateFormularyItemInput) { in.UnitOfIssue = "" },
		"input.controlledSchedule": func(in *CreateFormularyItemInput) { in.ControlledSchedule = ptr(drug.ControlledSchedule("I")) },
		"input.reorderLevel":       func(in *CreateFormularyItemInput) { in.ReorderLevel = -1 },
	} {
		in := newItem()
		change(&in)
		if _, err := f.svc.Create(f.pharmacist, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	// A consumable has no ingredients, ATC code or schedule.
	for field, change := range map[string]func(*CreateFormularyItemInput){
		"input.ingredients":        func(in *CreateFormularyItemInput) { in.Ingredients = []string{"cotton"} },
		"input.atcCode":            func(in *CreateFormularyItemInput) { in.AtcCode = ptr("V07") },
		"input.controlledSchedule": func(in *CreateFormularyItemInput) { in.ControlledSchedule = ptr(drug.ControlledScheduleII) },
	} {
		in := CreateFormularyItemInput{Code: "CREPE10", Kind: drug.KindCONSUMABLE, GenericName: "crepe bandage", UnitOfIssue: "roll"}
		change(&in)
		if _, err := f.svc.Create(f.pharmacist, in); !isBadInput(err, field) {
			t.Errorf("consumable %s: %v", field, err)
		}
	}
	if n := f.client.Drug.Query().CountX(f.system); n != before {
		t.Fatalf("bad input wrote %d items", n-before)
	}
}

func TestUpdateFormularyItem(t *testing.T) {
	f := setup(t)
	morphine := f.client.Drug.Query().Where(drug.Code("MORPH10INJ")).OnlyX(f.system)
	d, err := f.svc.Update(f.pharmacist, morphine.ID, UpdateFormularyItemInput{
		BrandNames:   graphql.OmittableOf([]string{"Morphine Sulfate BP"}),
		Strength:     graphql.OmittableOf[*string](nil),
		ReorderLevel: graphql.OmittableOf(ptr(80)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Strength != nil || d.ReorderLevel != 80 || !slices.Equal(d.BrandNames, []string{"Morphine Sulfate BP"}) ||
		d.ControlledSchedule == nil || *d.ControlledSchedule != drug.ControlledScheduleII || d.GenericName != "morphine" || d.Code != "MORPH10INJ" {
		t.Fatalf("updated: %+v", d)
	}
	// The record is checked whole: a drug keeps at least one ingredient.
	for field, in := range map[string]UpdateFormularyItemInput{
		"input.ingredients":  {Ingredients: graphql.OmittableOf[[]string](nil)},
		"input.genericName":  {GenericName: graphql.OmittableOf[*string](nil)},
		"input.atcCode":      {AtcCode: graphql.OmittableOf(ptr("morphine"))},
		"input.reorderLevel": {ReorderLevel: graphql.OmittableOf[*int](nil)},
	} {
		if _, err := f.svc.Update(f.pharmacist, morphine.ID, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if got := f.client.Drug.GetX(f.system, morphine.ID); got.ReorderLevel != 80 || len(got.Ingredients) != 1 {
		t.Fatalf("refused updates changed the item: %+v", got)
	}
	if _, err := f.svc.Update(f.pharmacist, "bad", UpdateFormularyItemInput{}); !isBadInput(err, "id") {
		t.Errorf("bad id: %v", err)
	}
	if _, err := f.svc.Update(f.pharmacist, "drg_01ARZ3NDEKTSV4RRFFQ69G5FAV", UpdateFormularyItemInput{}); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("unknown item: %v", err)
	}
	if _, err := f.svc.Update(f.doctor, morphine.ID, UpdateFormularyItemInput{}); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("doctor: %v", err)
	}
}

// TestOnlyAnAdministratorLowersASchedule: the pharmacist who dispenses a
// controlled drug cannot drop its witness by declassifying it.
func TestOnlyAnAdministratorLowersASchedule(t *testing.T) {
	f := setup(t)
	morphine := f.client.Drug.Query().Where(drug.Code("MORPH10INJ")).OnlyX(f.system)
	for _, to := range []*drug.ControlledSchedule{nil, ptr(drug.ControlledScheduleIV)} {
		_, err := f.svc.Update(f.pharmacist, morphine.ID, UpdateFormularyItemInput{ControlledSchedule: graphql.OmittableOf(to)})
		if apperr.CodeOf(err) != apperr.Forbidden {
			t.Fatalf("pharmacist lowering to %v: %v", to, err)
		}
	}
	if got := f.client.Drug.GetX(f.system, morphine.ID); got.ControlledSchedule == nil || *got.ControlledSchedule != drug.ControlledScheduleII {
		t.Fatalf("schedule changed: %v", got.ControlledSchedule)
	}
	// Raising one needs no one else; lowering it needs an administrator.
	para := f.client.Drug.Query().Where(drug.Code("PARA500TAB")).OnlyX(f.system)
	if _, err := f.svc.Update(f.pharmacist, para.ID, UpdateFormularyItemInput{ControlledSchedule: graphql.OmittableOf(ptr(drug.ControlledScheduleV))}); err != nil {
		t.Fatal(err)
	}
	if d, err := f.svc.Update(f.admin, para.ID, UpdateFormularyItemInput{ControlledSchedule: graphql.OmittableOf[*drug.ControlledSchedule](nil)}); err != nil || d.ControlledSchedule != nil {
		t.Fatalf("admin declassifying: %v %v", d, err)
	}
}

func TestDeactivateAndReactivate(t *testing.T) {
	f := setup(t)
	amox := f.client.Drug.Query().Where(drug.Code("AMOX500CAP")).OnlyX(f.system)
	if _, err := f.svc.SetActive(f.pharmacist, amox.ID, true); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("reactivating an active item: %v", err)
	}
	if _, err := f.svc.SetActive(f.doctor, amox.ID, false); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("doctor deactivating: %v", err)
	}
	// Pharmacists deactivating one item at once: one wins.
	const n = 6
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.SetActive(f.pharmacist, amox.ID, false)
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case apperr.CodeOf(err) != apperr.Conflict:
			t.Errorf("a losing deactivation: %v", err)
		}
	}
	if won != 1 || f.client.Drug.GetX(f.system, amox.ID).Active {
		t.Fatalf("%d deactivations won", won)
	}
	d, err := f.svc.SetActive(f.admin, amox.ID, true)
	if err != nil || !d.Active {
		t.Fatalf("reactivate: %+v %v", d, err)
	}
}

// Pharmacists correcting different fields of one item at once: each
// update reads the item whole and writes it whole, so none may undo another.
func TestConcurrentUpdatesKeepEveryChange(t *testing.T) {
	f := setup(t)
	para := f.client.Drug.Query().Where(drug.Code("PARA500TAB")).OnlyX(f.system)
	changes := []UpdateFormularyItemInput{
		{ReorderLevel: graphql.OmittableOf(ptr(123))},
		{BrandNames: graphql.OmittableOf([]string{"Panadol", "Calpol"})},
		{Form: graphql.OmittableOf(ptr("CAPLET"))},
		{Strength: graphql.OmittableOf(ptr("500 mg (film-coated)"))},
		{UnitOfIssue: graphql.OmittableOf(ptr("caplet"))},
		{GenericName: graphql.OmittableOf(ptr("paracetamol (acetaminophen)"))},
	}
	errs := make([]error, len(changes))
	var wg sync.WaitGroup
	for i, in := range changes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.svc.Update(f.pharmacist, para.ID, in)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	got := f.client.Drug.GetX(f.system, para.ID)
	if got.ReorderLevel != 123 || !slices.Equal(got.BrandNames, []string{"Panadol", "Calpol"}) || *got.Form != "CAPLET" ||
		*got.Strength != "500 mg (film-coated)" || got.UnitOfIssue != "caplet" || got.GenericName != "paracetamol (acetaminophen)" {
		t.Fatalf("a concurrent update was lost: %+v", got)
	}
}
