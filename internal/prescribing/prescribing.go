package prescribing

import (
	"context"
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/prescribing/rxwarn"
	"github.com/hmis-dev/hmis/internal/store"
)

// PrescribeMedicationInput is the input of prescribeMedication.
type PrescribeMedicationInput struct {
	PatientID                 string
	EncounterID               *string
	DrugID                    *string
	DrugCode                  *string
	Drug                      *string
	DoseAmount                float64
	DoseUnit                  string
	Route                     medicationorder.Route
	Frequency                 string
	DurationDays              *int
	Quantity                  int
	Instructions              *string
	AllergyOverrideReason     *string
	InteractionOverrideReason *string
}

// ReviseMedicationOrderInput is the input of reviseMedicationOrder: the
// whole new order, for the patient of the order it replaces.
type ReviseMedicationOrderInput struct {
	EncounterID               *string
	DrugID                    *string
	DrugCode                  *string
	Drug                      *string
	DoseAmount                float64
	DoseUnit                  string
	Route                     medicationorder.Route
	Frequency                 string
	DurationDays              *int
	Quantity                  int
	Instructions              *string
	AllergyOverrideReason     *string
	InteractionOverrideReason *string
}

// Limits on what an order may say, beyond what the data model enforces.
const (
	MaxReasonLength       = 500
	MaxInstructionsLength = 2000
	// A course longer than ten years is a typing error, not a prescription.
	MaxDurationDays = 3650
	MaxQuantity     = 100_000
	MaxDoseAmount   = 1_000_000
)

// AllergyConflict refuses an order for a drug the patient has a documented
// allergy to, naming the allergies so the prescriber can decide whether to
// override. Interactions not yet overridden are listed too, so that one
// refusal tells the prescriber everything to weigh.
type AllergyConflict struct {
	Allergies    []AllergyMatch
	Interactions []InteractionMatch
}

const allergyConflictMessage = "the drug matches an active allergy of the patient; give allergyOverrideReason to prescribe it anyway"

func (e *AllergyConflict) Error() string { return allergyConflictMessage }

// Unwrap makes an AllergyConflict a CONFLICT wherever errors are classified.
func (e *AllergyConflict) Unwrap() error { return apperr.Conflictf(allergyConflictMessage) }

// InteractionConflict refuses an order for a drug that interacts with
// another active order of the patient, naming the interactions.
type InteractionConflict struct {
	Interactions []InteractionMatch
}

const interactionConflictMessage = "the drug interacts with an active medication order of the patient; give interactionOverrideReason to prescribe it anyway"

func (e *InteractionConflict) Error() string { return interactionConflictMessage }

// Unwrap makes an InteractionConflict a CONFLICT wherever errors are classified.
func (e *InteractionConflict) Unwrap() error { return apperr.Conflictf(interactionConflictMessage) }

// Service runs the medication order state machine.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st.
func NewService(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// order is an order's clinical content, validated and trimmed.
type order struct {
	encounterID               *string
	drugID                    *string
	drugCode                  *string
	drug                      *string
	doseAmount                float64
	doseUnit                  string
	route                     medicationorder.Route
	frequency                 string
	durationDays              *int
	quantity                  int
	instructions              *string
	allergyOverrideReason     *string
	interactionOverrideReason *string
}

// Prescribe creates an ACTIVE order prescribed by the viewer, who must be an
// active doctor, after checking the drug against the patient's allergies.
func (s *Service) Prescribe(ctx context.Context, in PrescribeMedicationInput) (*ent.MedicationOrder, error) {
	if err := input.ID("input.patientId", in.PatientID, input.Patient); err != nil {
		return nil, err
	}
	o, err := validate(order{
		encounterID: in.EncounterID, drugID: in.DrugID, drugCode: in.DrugCode, drug: in.Drug, doseAmount: in.DoseAmount,
		doseUnit: in.DoseUnit, route: in.Route, frequency: in.Frequency, durationDays: in.DurationDays,
		quantity: in.Quantity, instructions: in.Instructions, allergyOverrideReason: in.AllergyOverrideReason,
		interactionOverrideReason: in.InteractionOverrideReason,
	})
	if err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.MedicationOrder, error) {
		prescriber, err := auth.ActingStaff(ctx, tx.Staff, "prescribe", staff.KindDOCTOR)
		if err != nil {
			return nil, err
		}
		pat, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		return s.create(ctx, tx, pat.ID, prescriber, o, nil)
	})
}

// Revise replaces an ACTIVE order with a new one, checked against the
// allergies like any order; the old one becomes SUPERSEDED. Of concurrent
// revisions of one order exactly one succeeds.
func (s *Service) Revise(ctx context.Context, id string, in ReviseMedicationOrderInput) (*ent.MedicationOrder, error) {
	if err := input.ID("id", id, input.MedicationOrder); err != nil {
		return nil, err
	}
	o, err := validate(order{
		encounterID: in.EncounterID, drugID: in.DrugID, drugCode: in.DrugCode, drug: in.Drug, doseAmount: in.DoseAmount,
		doseUnit: in.DoseUnit, route: in.Route, frequency: in.Frequency, durationDays: in.DurationDays,
		quantity: in.Quantity, instructions: in.Instructions, allergyOverrideReason: in.AllergyOverrideReason,
		interactionOverrideReason: in.InteractionOverrideReason,
	})
	if err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.MedicationOrder, error) {
		prescriber, err := auth.ActingStaff(ctx, tx.Staff, "revise orders", staff.KindDOCTOR)
		if err != nil {
			return nil, err
		}
		old, err := activeOrder(ctx, tx, id, "revised")
		if err != nil {
			return nil, err
		}
		if o.encounterID == nil {
			o.encounterID = old.EncounterID
		}
		// Supersede first: the conditional update is what makes one of
		// several concurrent revisions win, before anything else is written.
		if err := tx.MedicationOrder.UpdateOneID(old.ID).Where(medicationorder.StatusEQ(medicationorder.StatusACTIVE)).
			SetStatus(medicationorder.StatusSUPERSEDED).SetEndedAt(s.now().UTC()).Exec(ctx); err != nil {
			return nil, changedMeanwhile(err)
		}
		created, err := s.create(ctx, tx, old.PatientID, prescriber, o, &old.ID)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("the order was revised meanwhile; reload it")
		}
		return created, err
	})
}

// Stop ends an ACTIVE order before its course is over.
func (s *Service) Stop(ctx context.Context, id, reason string) (*ent.MedicationOrder, error) {
	var c input.Checker
	c.ID("id", id, input.MedicationOrder)
	reason = c.Text("reason", reason, MaxReasonLength)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return s.end(ctx, id, "stopped", []staff.Kind{staff.KindDOCTOR}, func(u *ent.MedicationOrderUpdateOne) {
		u.SetStatus(medicationorder.StatusSTOPPED).SetStopReason(reason)
	})
}

// Complete records that an ACTIVE order's course is finished. Doctors and
// the nurses who give the drug may complete it.
func (s *Service) Complete(ctx context.Context, id string) (*ent.MedicationOrder, error) {
	if err := input.ID("id", id, input.MedicationOrder); err != nil {
		return nil, err
	}
	return s.end(ctx, id, "completed", []staff.Kind{staff.KindDOCTOR, staff.KindNURSE}, func(u *ent.MedicationOrderUpdateOne) {
		u.SetStatus(medicationorder.StatusCOMPLETED)
	})
}

// end moves an ACTIVE order to a final status, conditional on it still
// being ACTIVE so that two concurrent changes cannot both succeed.
func (s *Service) end(ctx context.Context, id, pastTense string, kinds []staff.Kind, set func(*ent.MedicationOrderUpdateOne)) (*ent.MedicationOrder, error) {
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.MedicationOrder, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "change medication orders", kinds...); err != nil {
			return nil, err
		}
		if _, err := activeOrder(ctx, tx, id, pastTense); err != nil {
			return nil, err
		}
		u := tx.MedicationOrder.UpdateOneID(id).Where(medicationorder.StatusEQ(medicationorder.StatusACTIVE)).
			SetEndedAt(s.now().UTC())
		set(u)
		changed, err := u.Save(ctx)
		return changed, changedMeanwhile(err)
	})
}

// create writes a new ACTIVE order for the patient after the encounter,
// formulary, allergy and interaction checks.
func (s *Service) create(ctx context.Context, tx *ent.Tx, patientID string, prescriber *ent.Staff, o order, replaces *string) (*ent.MedicationOrder, error) {
	if o.encounterID != nil {
		enc, err := tx.Encounter.Get(ctx, *o.encounterID)
		if ent.IsNotFound(err) || (err == nil && enc.PatientID != patientID) {
			return nil, apperr.BadInput("input.encounterId", "is not an encounter of this patient")
		} else if err != nil {
			return nil, err
		}
	}
	item, err := formularyItem(ctx, tx, o)
	if err != nil {
		return nil, err
	}
	k, err := LoadKnowledge(ctx, tx.Client())
	if err != nil {
		return nil, err
	}
	var p Profile
	name, code := "", (*string)(nil)
	if item != nil {
		p, name, code = k.ProfileOfItem(item), item.GenericName, &item.Code
	} else {
		p, name = k.ProfileOfText(*o.drug), *o.drug
	}
	allergies, err := matchingAllergies(ctx, tx, k, patientID, p)
	if err != nil {
		return nil, err
	}
	interactions, err := interactingOrders(ctx, tx, k, patientID, p)
	if err != nil {
		return nil, err
	}
	allergyOpen := len(allergies) > 0 && o.allergyOverrideReason == nil
	interactionOpen := len(interactions) > 0 && o.interactionOverrideReason == nil
	switch {
	case allergyOpen && interactionOpen:
		return nil, &AllergyConflict{Allergies: allergies, Interactions: interactions}
	case allergyOpen:
		return nil, &AllergyConflict{Allergies: allergies}
	case interactionOpen:
		return nil, &InteractionConflict{Interactions: interactions}
	}
	// Nothing was overridden where nothing matched, so there is no reason to keep.
	if len(allergies) == 0 {
		o.allergyOverrideReason = nil
	}
	if len(interactions) == 0 {
		o.interactionOverrideReason = nil
	}
	create := tx.MedicationOrder.Create().
		SetPatientID(patientID).
		SetNillableEncounterID(o.encounterID).
		SetDrug(name).
		SetNillableDrugCode(code).
		SetFreeText(item == nil).
		SetDoseAmount(o.doseAmount).
		SetDoseUnit(o.doseUnit).
		SetRoute(o.route).
		SetFrequency(o.frequency).
		SetNillableDurationDays(o.durationDays).
		SetQuantity(o.quantity).
		SetNillableInstructions(o.instructions).
		SetPrescriberID(prescriber.ID).
		SetNillableReplacesID(replaces).
		SetNillableAllergyOverrideReason(o.allergyOverrideReason).
		SetNillableInteractionOverrideReason(o.interactionOverrideReason)
	if item != nil {
		create.SetDrugID(item.ID)
	}
	if w := warnings(allergies, interactions); len(w) > 0 {
		create.SetOverriddenWarnings(w)
	}
	created, err := create.Save(ctx)
	if err != nil {
		return nil, err
	}
	// The trail must show that this order went ahead against a warning,
	// whatever fields the client selected in its response.
	if o.allergyOverrideReason != nil {
		audit.NoteField(ctx, "MedicationOrder", "allergyOverrideReason")
	}
	if o.interactionOverrideReason != nil {
		audit.NoteField(ctx, "MedicationOrder", "interactionOverrideReason")
	}
	return created, nil
}

// formularyItem finds the item an order names by ID or code, and refuses
// one that cannot be prescribed; nil for a free-text order.
func formularyItem(ctx context.Context, tx *ent.Tx, o order) (*ent.Drug, error) {
	var (
		item  *ent.Drug
		err   error
		field string
	)
	switch {
	case o.drugID != nil:
		field = "input.drugId"
		item, err = tx.Drug.Get(ctx, *o.drugID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput(field, "is not an item of the formulary")
		}
	case o.drugCode != nil:
		field = "input.drugCode"
		item, err = tx.Drug.Query().Where(drug.Code(*o.drugCode)).Only(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput(field, "is not the code of an item of the formulary")
		}
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	switch {
	case o.drugID != nil && o.drugCode != nil && *o.drugCode != item.Code:
		return nil, apperr.BadInput("input.drugCode", "is not the code of the item input.drugId names (%s)", item.Code)
	case item.Kind != drug.KindDRUG:
		return nil, apperr.BadInput(field, "is a %s, which is not prescribed", strings.ToLower(item.Kind.String()))
	case !item.Active:
		return nil, apperr.BadInput(field, "is an inactive formulary item (%s), which cannot be prescribed", item.Code)
	case o.drug != nil && !namesItem(*o.drug, item):
		return nil, apperr.BadInput("input.drug", "names another drug than the formulary item %s (%s)", item.Code, item.GenericName)
	}
	return item, nil
}

// namesItem reports whether a prescriber's drug name fits a formulary
// item: its generic name or one of its brands, as whole words.
func namesItem(name string, d *ent.Drug) bool {
	if Matches(name, d.GenericName) {
		return true
	}
	for _, b := range d.BrandNames {
		if Matches(name, b) {
			return true
		}
	}
	return false
}

// matchingAllergies returns the patient's active allergies that the drug
// of profile p matches.
func matchingAllergies(ctx context.Context, tx *ent.Tx, k *Knowledge, patientID string, p Profile) ([]AllergyMatch, error) {
	active, err := tx.Allergy.Query().
		Where(allergy.PatientID(patientID), allergy.StatusEQ(allergy.StatusACTIVE)).
		Order(ent.Asc(allergy.FieldID)).
		All(ctx)
	if err != nil {
		return nil, err
	}
	var matches []AllergyMatch
	for _, a := range active {
		if m, ok := k.MatchAllergy(p, a.Substance); ok {
			m.ID, m.Severity = a.ID, a.Severity
			matches = append(matches, m)
		}
	}
	return matches, nil
}

// interactingOrders returns the interactions of the drug of profile p with
// the patient's ACTIVE orders. The patient is locked, so no order starts
// or ends while this reads them.
func interactingOrders(ctx context.Context, tx *ent.Tx, k *Knowledge, patientID string, p Profile) ([]InteractionMatch, error) {
	active, err := tx.MedicationOrder.Query().
		Where(medicationorder.PatientID(patientID), medicationorder.StatusEQ(medicationorder.StatusACTIVE)).
		WithFormularyDrug().
		Order(ent.Asc(medicationorder.FieldID)).
		All(ctx)
	if err != nil {
		return nil, err
	}
	var out []InteractionMatch
	for _, other := range active {
		op := k.ProfileOfText(other.Drug)
		if d := other.Edges.FormularyDrug; d != nil {
			op = k.ProfileOfItem(d)
		}
		for _, ix := range k.Interactions(p, op) {
			out = append(out, InteractionMatch{ID: ix.ID, Code: ix.Code, Severity: ix.Severity,
				Pair: ix.ALabel + " + " + ix.BLabel, Effect: ix.Effect, Advice: ix.Advice, OrderID: other.ID, Drug: other.Drug})
		}
	}
	return out, nil
}

// warnings are the matches an order overrides, as kept on it.
func warnings(allergies []AllergyMatch, interactions []InteractionMatch) []rxwarn.Warning {
	var out []rxwarn.Warning
	for _, a := range allergies {
		out = append(out, rxwarn.Warning{Kind: rxwarn.KindAllergy, Severity: a.Severity.String(), Detail: a.Detail,
			Advice: a.Note, AllergyID: &a.ID})
	}
	for _, ix := range interactions {
		advice := ix.Effect + " " + ix.Advice
		out = append(out, rxwarn.Warning{Kind: rxwarn.KindInteraction, Severity: ix.Severity.String(),
			Detail: ix.Pair + " (" + ix.Drug + ")", Advice: &advice, InteractionID: &ix.ID, OtherOrderID: &ix.OrderID})
	}
	return out
}

// Matches reports whether an allergy to substance applies to drug: one
// names the other as whole words, ignoring case and punctuation, so that
// "Penicillin" matches "penicillin V potassium" and "Amoxicillin/clavulanate"
// matches "amoxicillin", but "sulfa" does not match "sulfasalazine".
func Matches(drug, substance string) bool {
	d, s := words(drug), words(substance)
	if len(d) == 0 || len(s) == 0 {
		return false
	}
	return containsRun(d, s) || containsRun(s, d)
}

func words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
}

// containsRun reports whether needle occurs in hay as consecutive words.
func containsRun(hay, needle []string) bool {
	for i := 0; i+len(needle) <= len(hay); i++ {
		match := true
		for j, w := range needle {
			if hay[i+j] != w {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// activeOrder loads the order with the given ID under its patient's lock
// and refuses it unless ACTIVE.
func activeOrder(ctx context.Context, tx *ent.Tx, id, pastTense string) (*ent.MedicationOrder, error) {
	o, err := store.GetLocked(ctx, tx, tx.MedicationOrder.Get, id, func(o *ent.MedicationOrder) string { return o.PatientID }, "medication order not found")
	if err != nil {
		return nil, err
	}
	if o.Status != medicationorder.StatusACTIVE {
		return nil, apperr.Conflictf("the order is %s; only an ACTIVE order can be %s", o.Status, pastTense)
	}
	return o, nil
}

// changedMeanwhile turns a conditional update that matched no row — the
// order left ACTIVE after it was read — into a CONFLICT.
func changedMeanwhile(err error) error {
	if ent.IsNotFound(err) {
		return apperr.Conflictf("the order changed meanwhile; reload it")
	}
	return err
}

// validate checks and trims an order's content; the first bad field wins.
func validate(o order) (order, error) {
	var c input.Checker
	c.OptionalID("input.encounterId", o.encounterID, input.Encounter)
	c.OptionalID("input.drugId", o.drugID, input.Drug)
	o.drugCode = c.OptionalText("input.drugCode", o.drugCode, 32)
	if o.drugCode != nil {
		code := strings.ToUpper(*o.drugCode)
		o.drugCode = &code
	}
	o.drug = c.OptionalText("input.drug", o.drug, 200)
	if c.Err() == nil && o.drug == nil && o.drugID == nil && o.drugCode == nil {
		c.Fail(apperr.BadInput("input.drug", "is required: name the drug, or give drugId or drugCode for a formulary item"))
	}
	if c.Err() == nil && (!(o.doseAmount > 0) || o.doseAmount > MaxDoseAmount || math.IsInf(o.doseAmount, 0)) {
		c.Fail(apperr.BadInput("input.doseAmount", "must be greater than 0 and at most %d", MaxDoseAmount))
	}
	o.doseUnit = c.Text("input.doseUnit", o.doseUnit, 20)
	if c.Err() == nil && medicationorder.RouteValidator(o.route) != nil {
		c.Fail(apperr.BadInput("input.route", "is not a route of administration"))
	}
	o.frequency = c.Text("input.frequency", o.frequency, 40)
	switch {
	case c.Err() != nil:
	case o.durationDays != nil && (*o.durationDays < 1 || *o.durationDays > MaxDurationDays):
		c.Fail(apperr.BadInput("input.durationDays", "must be from 1 to %d", MaxDurationDays))
	case o.quantity < 1 || o.quantity > MaxQuantity:
		c.Fail(apperr.BadInput("input.quantity", "must be from 1 to %d", MaxQuantity))
	}
	o.instructions = c.OptionalText("input.instructions", o.instructions, MaxInstructionsLength)
	override := o.allergyOverrideReason
	o.allergyOverrideReason = c.OptionalText("input.allergyOverrideReason", override, MaxReasonLength)
	if c.Err() == nil && override != nil && o.allergyOverrideReason == nil {
		c.Fail(apperr.BadInput("input.allergyOverrideReason", "must not be blank; leave it out to have allergies checked"))
	}
	override = o.interactionOverrideReason
	o.interactionOverrideReason = c.OptionalText("input.interactionOverrideReason", override, MaxReasonLength)
	if c.Err() == nil && override != nil && o.interactionOverrideReason == nil {
		c.Fail(apperr.BadInput("input.interactionOverrideReason", "must not be blank; leave it out to have interactions checked"))
	}
	return o, c.Err()
}
