package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// StockLocation is a place stock is kept and counted: the main store, the
// pharmacy that dispenses, or a ward's store.
type StockLocation struct{ ent.Schema }

func (StockLocation) Mixin() []ent.Mixin { return []ent.Mixin{withID("loc"), TimeMixin{}} }

func (StockLocation) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().Unique().MaxRuneLen(32).Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(100).Annotations(entgql.OrderField("NAME")),
		field.Enum("kind").Values("MAIN_STORE", "PHARMACY", "WARD_STORE"),
		field.String("ward_id").Optional().Nillable().Comment("The ward a WARD_STORE serves."),
		field.Bool("active").Default(true),
	}
}

func (StockLocation) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("ward", Ward.Type).Unique().Field("ward_id"),
		edge.From("batches", StockBatch.Type).Ref("location").Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (StockLocation) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// StockBatch is one lot of one item at one location. Its quantity on hand
// changes only together with a StockMovement row that says why, so the
// ledger's sum for the batch always equals it.
type StockBatch struct{ ent.Schema }

func (StockBatch) Mixin() []ent.Mixin { return []ent.Mixin{withID("bat"), TimeMixin{}} }

func (StockBatch) Fields() []ent.Field {
	return []ent.Field{
		field.String("drug_id"),
		field.String("location_id"),
		field.String("lot_number").NotEmpty().MaxRuneLen(40).Annotations(entgql.OrderField("LOT_NUMBER")),
		field.Time("expiry_date").Annotations(entgql.Type("Date"), entgql.OrderField("EXPIRY_DATE")).
			Comment("The last day the lot may be used, as printed on the pack."),
		field.Int("quantity_on_hand").NonNegative().Default(0).
			Annotations(entgql.OrderField("QUANTITY_ON_HAND")).
			Comment("Units of issue on the shelf: the sum of the batch's ledger rows."),
		field.Int64("unit_cost").NonNegative().Annotations(entgql.Type("Money")).
			Comment("What one unit of issue cost, in minor units."),
		field.String("supplier").Optional().Nillable().MaxRuneLen(200),
		field.Time("expiry_alerted_at").Optional().Nillable().Annotations(entgql.Skip()).
			Comment("When batchExpiring announced the batch, so each batch is announced once."),
	}
}

func (StockBatch) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("drug", Drug.Type).Unique().Required().Field("drug_id"),
		edge.To("location", StockLocation.Type).Unique().Required().Field("location_id"),
	}
}

func (StockBatch) Indexes() []ent.Index {
	return []ent.Index{
		// One row per lot at a location: a transfer or a second delivery of
		// the same lot adds to it.
		index.Fields("location_id", "drug_id", "lot_number").Unique(),
		index.Fields("lot_number"),
		index.Fields("expiry_date"),
	}
}

func (StockBatch) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// StockMovement is a row of the append-only stock ledger: one change of a
// batch's quantity, signed, with who made it and why. Nothing updates or
// deletes one (internal/pharmacy installs a hook that refuses it).
type StockMovement struct{ ent.Schema }

func (StockMovement) Mixin() []ent.Mixin { return []ent.Mixin{withID("stm")} }

func (StockMovement) Fields() []ent.Field {
	return []ent.Field{
		field.String("batch_id").Immutable(),
		field.String("drug_id").Immutable(),
		field.String("location_id").Immutable(),
		field.Enum("kind").Values("RECEIPT", "DISPENSE", "TRANSFER_OUT", "TRANSFER_IN", "RETURN", "ADJUSTMENT", "EXPIRY_WRITE_OFF").
			Immutable(),
		field.Int("quantity").Immutable().Comment("Units added (positive) or taken (negative)."),
		field.String("reason").Optional().Nillable().MaxRuneLen(500).Immutable().Annotations(freeText),
		field.String("actor_id").Optional().Nillable().Immutable().
			Comment("The member of staff who made the change; unset for the system's expiry write-off."),
		field.String("dispensing_id").Optional().Nillable().Immutable(),
		field.String("transfer_id").Optional().Nillable().Immutable().
			Comment("Shared by the TRANSFER_OUT and TRANSFER_IN rows of one transfer."),
		field.Time("created_at").Immutable().Default(nowUTC).Annotations(entgql.OrderField("CREATED_AT")),
	}
}

func (StockMovement) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("batch", StockBatch.Type).Unique().Required().Immutable().Field("batch_id"),
		edge.To("drug", Drug.Type).Unique().Required().Immutable().Field("drug_id"),
		edge.To("location", StockLocation.Type).Unique().Required().Immutable().Field("location_id"),
		edge.To("actor", Staff.Type).Unique().Immutable().Field("actor_id"),
	}
}

func (StockMovement) Indexes() []ent.Index {
	return []ent.Index{index.Fields("batch_id"), index.Fields("dispensing_id")}
}

func (StockMovement) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Dispensing is one issue of a medication order's drug to its patient,
// taken from one or more batches (DispensingLine). A controlled drug's
// dispensing waits AWAITING_WITNESS until a second person confirms it.
type Dispensing struct{ ent.Schema }

func (Dispensing) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("dsp"), TimeMixin{}, ownedByPatient("dispensings")}
}

func (Dispensing) Fields() []ent.Field {
	return []ent.Field{
		field.String("order_id").Immutable(),
		field.String("drug_id").Immutable(),
		field.String("location_id").Immutable(),
		field.String("encounter_id").Optional().Nillable().Immutable(),
		field.Int("quantity").Positive().Immutable(),
		field.Int("returned_quantity").NonNegative().Default(0),
		field.Enum("status").Values("AWAITING_WITNESS", "DISPENSED", "CANCELLED").
			Annotations(entgql.OrderField("STATUS")),
		field.String("dispensed_by_id").Immutable(),
		field.Time("dispensed_at").Immutable().Annotations(entgql.OrderField("DISPENSED_AT")),
		field.String("witnessed_by_id").Optional().Nillable(),
		field.Time("witnessed_at").Optional().Nillable(),
		field.String("cancel_reason").Optional().Nillable().MaxRuneLen(500).Annotations(freeText),
	}
}

func (Dispensing) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("order", MedicationOrder.Type).Unique().Required().Immutable().Field("order_id"),
		edge.To("drug", Drug.Type).Unique().Required().Immutable().Field("drug_id"),
		edge.To("location", StockLocation.Type).Unique().Required().Immutable().Field("location_id"),
		edge.To("dispensed_by", Staff.Type).Unique().Required().Immutable().Field("dispensed_by_id"),
		edge.To("witnessed_by", Staff.Type).Unique().Field("witnessed_by_id"),
		edge.To("lines", DispensingLine.Type),
	}
}

func (Dispensing) Indexes() []ent.Index { return []ent.Index{index.Fields("order_id")} }

func (Dispensing) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// DispensingLine is the part of a dispensing taken from one batch: what a
// recall follows from a lot to its patients. It is patient data like its
// dispensing.
type DispensingLine struct{ ent.Schema }

func (DispensingLine) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("dsl"), ownedByPatient("dispensing_lines")}
}

func (DispensingLine) Fields() []ent.Field {
	return []ent.Field{
		field.String("dispensing_id").Immutable(),
		field.String("batch_id").Immutable(),
		field.Int("quantity").Positive().Immutable(),
		field.Int("returned_quantity").NonNegative().Default(0),
		field.Int64("unit_cost").NonNegative().Immutable().Annotations(entgql.Type("Money")),
	}
}

func (DispensingLine) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("dispensing", Dispensing.Type).Ref("lines").Unique().Required().Immutable().Field("dispensing_id"),
		edge.To("batch", StockBatch.Type).Unique().Required().Immutable().Field("batch_id"),
	}
}

func (DispensingLine) Indexes() []ent.Index { return []ent.Index{index.Fields("batch_id")} }
