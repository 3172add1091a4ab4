package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/hmis-dev/hmis/internal/prescribing/rxwarn"
)

// MedicationOrder is a prescription. It is never edited: a revision is a
// new order replacing it, and the replaced one is kept as SUPERSEDED.
type MedicationOrder struct{ ent.Schema }

func (MedicationOrder) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("med"), TimeMixin{}, ownedByPatient("medication_orders")}
}

func (MedicationOrder) Fields() []ent.Field {
	return []ent.Field{
		field.String("encounter_id").Optional().Nillable(),
		field.String("drug").NotEmpty().MaxRuneLen(200),
		field.String("drug_code").Optional().Nillable().MaxRuneLen(32),
		field.String("drug_id").Optional().Nillable().
			Comment("The formulary item prescribed; unset for a free-text order, which the pharmacist must review."),
		field.Float("dose_amount").Positive(),
		field.String("dose_unit").NotEmpty().MaxRuneLen(20),
		field.Enum("route").Values(medicationRoutes...),
		field.String("frequency").NotEmpty().MaxRuneLen(40).Comment("e.g. BID, TID, q8h, once daily"),
		field.Int("duration_days").Optional().Nillable().Positive(),
		field.Int("quantity").Positive(),
		field.Text("instructions").Annotations(freeText).Optional().Nillable(),
		field.String("prescriber_id"),
		field.Enum("status").Values("ACTIVE", "COMPLETED", "STOPPED", "SUPERSEDED").Default("ACTIVE").
			Annotations(entgql.OrderField("STATUS")),
		field.String("replaces_id").Optional().Nillable().Unique(),
		field.String("allergy_override_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500).
			Comment("Why the prescriber went ahead despite a documented allergy."),
		field.Bool("free_text").Default(false).Immutable().
			Comment("The drug was typed, not chosen from the formulary: the pharmacist checks what is meant before dispensing."),
		field.String("interaction_override_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500).
			Comment("Why the prescriber went ahead despite an interaction with another active order."),
		field.JSON("overridden_warnings", []rxwarn.Warning{}).Optional().Immutable().
			Annotations(entgql.Skip(entgql.SkipAll)).
			Comment("The allergy and interaction warnings the prescriber overrode; exposed by schema/prescribing.graphqls."),
		field.String("stop_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.Time("ended_at").Optional().Nillable(),
	}
}

func (MedicationOrder) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("encounter", Encounter.Type).Ref("medication_orders").Field("encounter_id").Unique(),
		edge.To("prescriber", Staff.Type).Unique().Required().Field("prescriber_id"),
		edge.To("formulary_drug", Drug.Type).Unique().Field("drug_id"),
		edge.To("replaced_by", MedicationOrder.Type).Unique().From("replaces").Field("replaces_id").Unique(),
	}
}

// Row scope asks, per row it keeps, whether the clinician prescribed for its
// patient (internal/authz).
func (MedicationOrder) Indexes() []ent.Index {
	return []ent.Index{index.Fields("patient_id", "prescriber_id")}
}

func (MedicationOrder) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
