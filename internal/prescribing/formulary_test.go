package prescribing

import (
	"errors"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/druginteraction"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/prescribing/rxwarn"
)

func (f fixture) item(t *testing.T, code string) *ent.Drug {
	t.Helper()
	d, err := f.client.Drug.Query().Where(drug.Code(code)).Only(f.system)
	if err != nil {
		t.Fatalf("formulary item %s: %v", code, err)
	}
	return d
}

// fromFormulary is an order for the formulary item with the given code.
func fromFormulary(patientID, code string) PrescribeMedicationInput {
	in := rx(patientID, "")
	in.Drug, in.DrugCode = nil, &code
	return in
}

func TestPrescribeFromTheFormulary(t *testing.T) {
	f := setup(t)
	pat := f.patients[1].ID // allergic to ibuprofen only
	para := f.item(t, "PARA500TAB")

	byID := rx(pat, "")
	byID.Drug, byID.DrugID = nil, &para.ID
	o, err := f.svc.Prescribe(f.doctor, byID)
	if err != nil {
		t.Fatal(err)
	}
	if o.DrugID == nil || *o.DrugID != para.ID || o.Drug != "paracetamol" || o.DrugCode == nil || *o.DrugCode != "PARA500TAB" || o.FreeText {
		t.Fatalf("by ID: %+v", o)
	}
	// By code, in any case, with a brand name that fits the item.
	in := fromFormulary(pat, " coamox625tab ")
	in.Drug = ptr("Augmentin")
	o, err = f.svc.Prescribe(f.doctor, in)
	if err != nil || o.DrugCode == nil || *o.DrugCode != "COAMOX625TAB" || o.Drug != "amoxicillin + clavulanic acid" || o.FreeText {
		t.Fatalf("by code: %+v %v", o, err)
	}
	// Free text stays possible, flagged for the pharmacist.
	o, err = f.svc.Prescribe(f.doctor, rx(pat, "Nitrofurantoin"))
	if err != nil || !o.FreeText || o.DrugID != nil || o.DrugCode != nil || o.Drug != "Nitrofurantoin" {
		t.Fatalf("free text: %+v %v", o, err)
	}

	before := f.orderCount(t)
	syringe := f.item(t, "SYR5ML")
	f.client.Drug.UpdateOne(f.item(t, "DOXY100CAP")).SetActive(false).ExecX(f.system)
	for field, in := range map[string]PrescribeMedicationInput{
		"input.drugCode": fromFormulary(pat, "NOSUCHITEM"),
		"input.drugId": func() PrescribeMedicationInput {
			in := rx(pat, "")
			in.Drug, in.DrugID = nil, &syringe.ID
			return in
		}(),
	} {
		if _, err := f.svc.Prescribe(f.doctor, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	for name, c := range map[string]struct {
		in    PrescribeMedicationInput
		field string
	}{
		"a consumable":     {fromFormulary(pat, "SYR5ML"), "input.drugCode"},
		"an inactive item": {fromFormulary(pat, "DOXY100CAP"), "input.drugCode"},
		"an unknown ID": {func() PrescribeMedicationInput {
			in := rx(pat, "")
			in.Drug, in.DrugID = nil, ptr("drg_01ARZ3NDEKTSV4RRFFQ69G5FAV")
			return in
		}(), "input.drugId"},
		"a malformed ID": {func() PrescribeMedicationInput {
			in := rx(pat, "")
			in.Drug, in.DrugID = nil, &f.patients[0].ID
			return in
		}(), "input.drugId"},
		"an ID and a code": {func() PrescribeMedicationInput {
			in := fromFormulary(pat, "AMOX500CAP")
			in.DrugID = &para.ID
			return in
		}(), "input.drugCode"},
		"another drug name": {func() PrescribeMedicationInput {
			in := fromFormulary(pat, "PARA500TAB")
			in.Drug = ptr("Augmentin")
			return in
		}(), "input.drug"},
		"no drug at all": {func() PrescribeMedicationInput { in := rx(pat, ""); in.Drug = nil; return in }(), "input.drug"},
	} {
		_, err := f.svc.Prescribe(f.doctor, c.in)
		if !isBadInput(err, c.field) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := f.orderCount(t); n != before {
		t.Fatalf("refused prescriptions wrote %d orders", n-before)
	}
}

func TestAllergyByIngredientAndClassBlocksUnlessOverridden(t *testing.T) {
	f := setup(t)
	pat := f.patients[1].ID
	amox := f.client.Allergy.Create().SetPatientID(pat).SetSubstance("Amoxicillin").SetCategory(allergy.CategoryDRUG).
		SetSeverity(allergy.SeverityMODERATE).SaveX(f.system)

	// Augmentin by code, and typed as free text: both warned, by ingredient.
	for _, in := range []PrescribeMedicationInput{fromFormulary(pat, "COAMOX625TAB"), rx(pat, "Augmentin 625")} {
		_, err := f.svc.Prescribe(f.doctor, in)
		var conflict *AllergyConflict
		if !errors.As(err, &conflict) || apperr.CodeOf(err) != apperr.Conflict || len(conflict.Allergies) != 1 ||
			conflict.Allergies[0].ID != amox.ID || conflict.Allergies[0].Match != MatchIngredient {
			t.Fatalf("Augmentin with an amoxicillin allergy: %v %+v", err, conflict)
		}
	}
	// The penicillin allergy of the other patient blocks amoxicillin, by class.
	_, err := f.svc.Prescribe(f.doctor, fromFormulary(f.patients[0].ID, "AMOX500CAP"))
	var conflict *AllergyConflict
	if !errors.As(err, &conflict) || conflict.Allergies[0].ID != f.penicillin.ID || conflict.Allergies[0].Match != MatchClass ||
		conflict.Allergies[0].Class != "penicillins" {
		t.Fatalf("amoxicillin with a penicillin allergy: %v %+v", err, conflict)
	}

	in := fromFormulary(pat, "COAMOX625TAB")
	in.AllergyOverrideReason = ptr("Tolerated co-amoxiclav in 2023; the rash was viral")
	o, err := f.svc.Prescribe(f.doctor, in)
	if err != nil {
		t.Fatal(err)
	}
	if o.AllergyOverrideReason == nil || len(o.OverriddenWarnings) != 1 {
		t.Fatalf("overridden order: %+v", o)
	}
	w := o.OverriddenWarnings[0]
	if w.Kind != rxwarn.KindAllergy || w.Severity != "MODERATE" || w.AllergyID == nil || *w.AllergyID != amox.ID || w.Detail == "" {
		t.Fatalf("the overridden warning: %+v", w)
	}
	stored := f.client.MedicationOrder.GetX(f.system, o.ID)
	if len(stored.OverriddenWarnings) != 1 || stored.OverriddenWarnings[0].Detail != w.Detail {
		t.Fatalf("the stored warnings: %+v", stored.OverriddenWarnings)
	}
}

func TestInteractionBlocksUnlessOverridden(t *testing.T) {
	f := setup(t)
	pat := f.patients[0].ID // allergic to penicillin; the aspirin allergy is inactive
	warfarin, err := f.svc.Prescribe(f.doctor, fromFormulary(pat, "WARF5TAB"))
	if err != nil {
		t.Fatal(err)
	}
	before := f.orderCount(t)

	_, err = f.svc.Prescribe(f.doctor, fromFormulary(pat, "ASA75TAB"))
	var conflict *InteractionConflict
	if !errors.As(err, &conflict) || apperr.CodeOf(err) != apperr.Conflict || len(conflict.Interactions) != 1 {
		t.Fatalf("aspirin on warfarin: %v", err)
	}
	ix := conflict.Interactions[0]
	if ix.Code != "WARFARIN-NSAID" || ix.Severity != druginteraction.SeverityMAJOR || ix.OrderID != warfarin.ID ||
		ix.Drug != "warfarin" || ix.Advice == "" || ix.Effect == "" {
		t.Fatalf("the interaction: %+v", ix)
	}
	// A free-text metronidazole is checked too.
	if _, err := f.svc.Prescribe(f.doctor, rx(pat, "Metronidazole 400 mg")); !errors.As(err, &conflict) ||
		conflict.Interactions[0].Code != "WARFARIN-METRONIDAZOLE" {
		t.Fatalf("metronidazole on warfarin: %v", err)
	}
	// An allergy override does not override an interaction.
	in := fromFormulary(pat, "ASA75TAB")
	in.AllergyOverrideReason = ptr("not allergic")
	if _, err := f.svc.Prescribe(f.doctor, in); !errors.As(err, &conflict) {
		t.Fatalf("aspirin with an allergy override only: %v", err)
	}
	in.InteractionOverrideReason = ptr("   ")
	if _, err := f.svc.Prescribe(f.doctor, in); !isBadInput(err, "input.interactionOverrideReason") {
		t.Fatalf("blank interaction override: %v", err)
	}
	if n := f.orderCount(t); n != before {
		t.Fatalf("refused prescriptions wrote %d orders", n-before)
	}

	in.InteractionOverrideReason = ptr("Drug-eluting stent last month; cardiology wants both, INR checked twice weekly")
	aspirin, err := f.svc.Prescribe(f.doctor, in)
	if err != nil {
		t.Fatal(err)
	}
	if aspirin.AllergyOverrideReason != nil || aspirin.InteractionOverrideReason == nil || len(aspirin.OverriddenWarnings) != 1 {
		t.Fatalf("overridden order: %+v", aspirin)
	}
	w := aspirin.OverriddenWarnings[0]
	if w.Kind != rxwarn.KindInteraction || w.Severity != "MAJOR" || w.OtherOrderID == nil || *w.OtherOrderID != warfarin.ID ||
		w.InteractionID == nil || *w.InteractionID != ix.ID || w.Advice == nil {
		t.Fatalf("the overridden warning: %+v", w)
	}

	// Only ACTIVE orders interact.
	if _, err := f.svc.Stop(f.doctor, warfarin.ID, "INR unstable; switched to a DOAC"); err != nil {
		t.Fatal(err)
	}
	// The aspirin order is still active; warfarin again meets it.
	if _, err := f.svc.Prescribe(f.doctor, fromFormulary(pat, "WARF5TAB")); !errors.As(err, &conflict) ||
		conflict.Interactions[0].OrderID != aspirin.ID {
		t.Fatalf("warfarin on aspirin: %v", err)
	}
	if _, err := f.svc.Stop(f.doctor, aspirin.ID, "course over"); err != nil {
		t.Fatal(err)
	}
	if o, err := f.svc.Prescribe(f.doctor, fromFormulary(pat, "WARF5TAB")); err != nil || o.InteractionOverrideReason != nil ||
		len(o.OverriddenWarnings) != 0 {
		t.Fatalf("warfarin with nothing active: %+v %v", o, err)
	}
}

func TestAllergyAndInteractionTogether(t *testing.T) {
	f := setup(t)
	pat := f.patients[1].ID // allergic to ibuprofen
	if _, err := f.svc.Prescribe(f.doctor, fromFormulary(pat, "WARF5TAB")); err != nil {
		t.Fatal(err)
	}
	// Diclofenac: an NSAID for an ibuprofen allergy, and on warfarin.
	_, err := f.svc.Prescribe(f.doctor, fromFormulary(pat, "DICLO50TAB"))
	var conflict *AllergyConflict
	if !errors.As(err, &conflict) || len(conflict.Allergies) != 1 || conflict.Allergies[0].Match != MatchClass ||
		len(conflict.Interactions) != 1 || conflict.Interactions[0].Code != "WARFARIN-NSAID" {
		t.Fatalf("both at once: %v %+v", err, conflict)
	}
	in := fromFormulary(pat, "DICLO50TAB")
	in.AllergyOverrideReason = ptr("ibuprofen caused dyspepsia, not allergy")
	in.InteractionOverrideReason = ptr("three days only, with omeprazole")
	o, err := f.svc.Prescribe(f.doctor, in)
	if err != nil || len(o.OverriddenWarnings) != 2 || o.OverriddenWarnings[0].Kind != rxwarn.KindAllergy ||
		o.OverriddenWarnings[1].Kind != rxwarn.KindInteraction {
		t.Fatalf("both overridden: %+v %v", o, err)
	}
}

func TestRevisionIsCheckedForInteractions(t *testing.T) {
	f := setup(t)
	pat := f.patients[1].ID
	if _, err := f.svc.Prescribe(f.doctor, fromFormulary(pat, "CLARI500TAB")); err != nil {
		t.Fatal(err)
	}
	statin, err := f.svc.Prescribe(f.doctor, fromFormulary(pat, "ATORVA20TAB"))
	if err != nil {
		t.Fatal(err)
	}
	rev := revision("", 20)
	rev.Drug, rev.DrugCode = nil, ptr("SIMVA20TAB")
	var conflict *InteractionConflict
	if _, err := f.svc.Revise(f.doctor, statin.ID, rev); !errors.As(err, &conflict) ||
		conflict.Interactions[0].Severity != druginteraction.SeverityCONTRAINDICATED {
		t.Fatalf("revising to simvastatin on clarithromycin: %v", err)
	}
	if o := f.client.MedicationOrder.GetX(f.system, statin.ID); o.Status != medicationorder.StatusACTIVE {
		t.Fatalf("a refused revision changed the order: %+v", o)
	}
	// The order being revised does not interact with its own replacement.
	rev = revision("", 40)
	rev.Drug, rev.DrugCode = nil, ptr("ATORVA20TAB")
	if o, err := f.svc.Revise(f.doctor, statin.ID, rev); err != nil || o.DrugCode == nil || *o.DrugCode != "ATORVA20TAB" {
		t.Fatalf("revising atorvastatin's dose: %+v %v", o, err)
	}
}

// Two doctors prescribing interacting drugs to one patient at once: the
// patient lock makes the second see the first, so exactly one goes through
// without an override.
func TestConcurrentInteractingPrescriptions(t *testing.T) {
	f := setup(t)
	pat := f.patients[1].ID
	const rounds = 6
	for round := range rounds {
		codes := []string{"SILD50TAB", "GTN400SL"}
		errs := make([]error, len(codes))
		var wg sync.WaitGroup
		for i, code := range codes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = f.svc.Prescribe(f.doctor, fromFormulary(pat, code))
			}()
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			var conflict *InteractionConflict
			switch {
			case err == nil:
				won++
			case !errors.As(err, &conflict) || conflict.Interactions[0].Code != "PDE5-NITRATE":
				t.Fatalf("round %d: %v", round, err)
			}
		}
		active := f.client.MedicationOrder.Query().Where(medicationorder.PatientID(pat), medicationorder.StatusEQ(medicationorder.StatusACTIVE)).AllX(f.system)
		if won != 1 || len(active) != 1 {
			t.Fatalf("round %d: %d prescriptions went through, %d orders active", round, won, len(active))
		}
		if _, err := f.svc.Stop(f.doctor, active[0].ID, "next round"); err != nil {
			t.Fatal(err)
		}
	}
}
