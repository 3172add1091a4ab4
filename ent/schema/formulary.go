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
