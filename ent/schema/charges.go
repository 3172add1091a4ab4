package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// tariffCategories are the kinds of billable service; the insurance rules
// cover by category, so the set is closed.
var tariffCategories = []string{"CONSULTATION", "PROCEDURE", "LAB", "DRUG", "ITEM", "BED_DAY"}

// Tariff is one dated price of a billable service: a row of the price list.
// A price change is a new row with a later effective_from, never an update,
// so that a charge can always be explained by the row that priced it.
type Tariff struct{ ent.Schema }

func (Tariff) Mixin() []ent.Mixin { return []ent.Mixin{withID("trf"), TimeMixin{}} }

func (Tariff) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().MaxRuneLen(40).Immutable().
			Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(200).Immutable().
			Annotations(entgql.OrderField("NAME")),
		field.Enum("category").Values(tariffCategories...).Immutable(),
		field.String("ref_id").Optional().Nillable().Immutable().
			Comment("What the service is of, for automatic capture: the department of a consultation, the lab test, the drug, the ward of a bed-day."),
		field.String("payer_id").Optional().Nillable().Immutable().
			Comment("Empty: the default price, for every payer without a price of its own."),
		field.Int64("price").NonNegative().Immutable().
			Annotations(entgql.Type("Money")),
		field.Time("effective_from").Immutable().
			Annotations(entgql.OrderField("EFFECTIVE_FROM")),
		field.String("created_by_id").Optional().Nillable().Immutable().
			Comment("Empty for the seeded price list."),
	}
}

func (Tariff) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("code", "effective_from"),
		index.Fields("category", "ref_id"),
	}
}

func (Tariff) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Charge is one billable thing done for a patient, priced when it was
// captured. It is never deleted: a mistake is reversed with a reason, and a
// pharmacy return is a negative charge of its own.
type Charge struct{ ent.Schema }

func (Charge) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("chg"), TimeMixin{}, ownedByPatient("charges")}
}

func (Charge) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("source_type").Values("ENCOUNTER", "LAB_ITEM", "DISPENSING", "DISPENSING_RETURN", "BED_DAY", "MANUAL").Immutable(),
		field.String("source_id").NotEmpty().Immutable().
			Comment("The row the charge is for (encounter, lab order item, dispensing, admission), or the event of a return."),
		field.String("day").Default("").Immutable().
			Comment("The calendar day of a bed-day charge (YYYY-MM-DD); empty otherwise."),
		field.String("encounter_id").Optional().Nillable().Immutable(),
		field.String("admission_id").Optional().Nillable().Immutable(),
		field.String("tariff_id").Optional().Nillable().Immutable(),
		field.String("code").NotEmpty().MaxRuneLen(40).Immutable(),
		field.String("description").NotEmpty().MaxRuneLen(200).Immutable(),
		field.Enum("category").Values(tariffCategories...).Immutable(),
		field.Int("quantity").Immutable().Comment("Negative for a return."),
		field.Int64("unit_price").NonNegative().Immutable().Annotations(entgql.Type("Money")),
		field.Int64("amount").Immutable().Annotations(entgql.Type("Money")),
		field.Time("service_at").Immutable().Annotations(entgql.OrderField("SERVICE_AT")),
		field.String("created_by_id").Optional().Nillable().Immutable().
			Comment("The clerk of a manual charge; empty for captured ones."),
		field.Enum("status").Values("ACTIVE", "REVERSED").Default("ACTIVE"),
		field.String("reversal_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.String("reversed_by_id").Optional().Nillable(),
		field.Time("reversed_at").Optional().Nillable(),
		field.String("invoice_id").Optional().Nillable().
			Comment("The invoice the charge is billed on; empty while unbilled."),
	}
}

func (Charge) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("tariff", Tariff.Type).Unique().Field("tariff_id").Immutable(),
	}
}

func (Charge) Indexes() []ent.Index {
	return []ent.Index{
		// What makes capture exactly-once: a redelivered event finds its
		// charge already there.
		index.Fields("source_type", "source_id", "day").Unique(),
		index.Fields("patient_id", "status"),
	}
}

func (Charge) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// BillingCursor is how far a charge consumer has read a topic: the ID of
// the last event it applied, saved in the transaction that applied it.
type BillingCursor struct{ ent.Schema }

func (BillingCursor) Mixin() []ent.Mixin { return []ent.Mixin{withID("bcr")} }

func (BillingCursor) Fields() []ent.Field {
	return []ent.Field{
		field.String("topic").NotEmpty().Unique(),
		field.String("after").Default(""),
	}
}

func (BillingCursor) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip()}
}
