package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// medicationRoutes are shared by the formulary and the orders written against
// it, so a prescription's route can be checked against the drug's.
var medicationRoutes = []string{"ORAL", "IV", "IM", "SC", "TOPICAL", "INHALED", "RECTAL", "SUBLINGUAL", "OTHER"}

// Drug is an item of the hospital's formulary. Consumables (syringes,
// dressings) are items too, of kind CONSUMABLE, so that one stock machinery
// counts both; only drugs are prescribed.
type Drug struct{ ent.Schema }

func (Drug) Mixin() []ent.Mixin { return []ent.Mixin{withID("drg"), TimeMixin{}} }

func (Drug) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().Unique().MaxRuneLen(32).
			Comment("The hospital's item code, printed on shelves and labels.").
			Annotations(entgql.OrderField("CODE")),
		field.Enum("kind").Values("DRUG", "CONSUMABLE").Default("DRUG"),
		field.String("generic_name").NotEmpty().MaxRuneLen(200).
			Comment("International non-proprietary name, or the item's name for a consumable.").
			Annotations(entgql.OrderField("GENERIC_NAME")),
		field.Strings("brand_names").Optional().
			Comment("Trade names prescribers may type, e.g. Augmentin for amoxicillin with clavulanic acid."),
		field.String("form").Optional().Nillable().MaxRuneLen(40).Comment("e.g. TABLET, CAPSULE, INJECTION, SYRUP."),
		field.String("strength").Optional().Nillable().MaxRuneLen(60).Comment("e.g. 500 mg, 125 mg/5 mL."),
		field.Enum("route").Values(medicationRoutes...).Optional().Nillable(),
		field.String("atc_code").Optional().Nillable().MaxRuneLen(7).
			Comment("WHO ATC code; its prefixes are the drug's classes (J01C = penicillins)."),
		field.Strings("ingredients").Optional().
			Comment("Active ingredients, lower-case INNs; allergies are matched against these."),
		field.String("unit_of_issue").NotEmpty().MaxRuneLen(20).Comment("What one unit of stock is: tablet, vial, bottle, piece."),
		field.Enum("controlled_schedule").Values("II", "III", "IV", "V").Optional().Nillable().
			Comment("Controlled-substance schedule; dispensing one needs a witness."),
		field.Int("reorder_level").NonNegative().Default(0).
			Comment("Below this many units at a location the item is low on stock."),
		field.Bool("active").Default(true).Comment("Inactive items stay for history but cannot be prescribed or received."),
	}
}

func (Drug) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("medication_orders", MedicationOrder.Type).Ref("formulary_drug").
			Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (Drug) Indexes() []ent.Index { return []ent.Index{index.Fields("atc_code")} }

func (Drug) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField("formulary"), entgql.RelayConnection()}
}

// AllergenClass is a class of drugs that one documented allergy can cover:
// an allergy recorded as "Penicillin" applies to every drug of the class,
// found by ATC code for formulary items and by ingredient for free text.
type AllergenClass struct{ ent.Schema }

func (AllergenClass) Mixin() []ent.Mixin { return []ent.Mixin{withID("alc"), TimeMixin{}} }

func (AllergenClass) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().Unique().MaxRuneLen(32).Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(100).Comment("e.g. penicillins"),
		field.Strings("terms").
			Comment("Lower-case words an allergy to the class is recorded as: penicillin, penicillins, sulfa."),
		field.Strings("atc_prefixes").Optional().
			Comment("ATC codes whose drugs are in the class: J01C."),
		field.Strings("ingredients").Optional().
			Comment("Lower-case INNs in the class, for drugs outside those ATC codes (aspirin among the NSAIDs) and free-text orders."),
		field.Strings("cross_reactive_classes").Optional().
			Comment("Codes of other classes an allergy to this one may extend to, warned about with the note."),
		field.String("note").Optional().Nillable().MaxRuneLen(1000).
			Comment("Cross-reactivity and what to consider before overriding."),
	}
}

func (AllergenClass) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// DrugInteraction is a row of the interaction table: two sides, each a set
// of ingredients and ATC classes, that should not be given together without
// thought.
type DrugInteraction struct{ ent.Schema }

func (DrugInteraction) Mixin() []ent.Mixin { return []ent.Mixin{withID("ddi"), TimeMixin{}} }

func (DrugInteraction) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().Unique().MaxRuneLen(40).Annotations(entgql.OrderField("CODE")),
		field.String("a_label").NotEmpty().MaxRuneLen(100).Comment("One side as prescribers know it, e.g. warfarin."),
		field.Strings("a_ingredients").Optional(),
		field.Strings("a_atc_prefixes").Optional(),
		field.String("b_label").NotEmpty().MaxRuneLen(100).Comment("The other side, e.g. NSAIDs and aspirin."),
		field.Strings("b_ingredients").Optional(),
		field.Strings("b_atc_prefixes").Optional(),
		field.Enum("severity").Values("MODERATE", "MAJOR", "CONTRAINDICATED").
			Annotations(entgql.OrderField("SEVERITY")),
		field.String("effect").NotEmpty().MaxRuneLen(500),
		field.String("advice").NotEmpty().MaxRuneLen(1000),
	}
}

func (DrugInteraction) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
