package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// specimenTypes are the kinds of sample the lab accepts; a test names the
// one it runs on, and a collected specimen says what it is.
var specimenTypes = []string{"WHOLE_BLOOD", "SERUM", "PLASMA", "URINE", "CSF", "STOOL", "SWAB", "SPUTUM", "OTHER"}

// LabTest is an orderable test of the lab's catalog.
type LabTest struct{ ent.Schema }

func (LabTest) Mixin() []ent.Mixin { return []ent.Mixin{withID("lbt"), TimeMixin{}} }

func (LabTest) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().Unique().MaxRuneLen(20).
			Comment("LOINC code.").
			Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.String("short_name").Optional().Nillable().MaxRuneLen(40).
			Comment("What the report and the dashboards print, e.g. K, Hb, ALT."),
		field.Enum("specimen_type").Values(specimenTypes...),
		field.Enum("result_kind").Values("NUMERIC", "CODED", "TEXT").
			Comment("NUMERIC results carry a value and are flagged against the reference ranges; CODED ones pick from resultCodes; TEXT is free."),
		field.String("unit").Optional().Nillable().MaxRuneLen(20).Comment("UCUM unit of a NUMERIC result."),
		field.Int("decimals").Default(1).NonNegative().Max(4).Comment("How many decimals a NUMERIC result is reported with."),
		field.Strings("result_codes").Optional().
			Comment("The answers a CODED result may take, e.g. NEGATIVE, TRACE, 1+."),
		field.Strings("normal_codes").Optional().
			Comment("The answers of a CODED result that are normal; any other is flagged ABNORMAL."),
		field.Int64("price").NonNegative().
			Annotations(entgql.Type("Money")),
		field.Int("turnaround_minutes").Positive().
			Comment("The lab's target from order to verified result, for routine priority."),
		field.Bool("active").Default(true).Comment("Inactive tests stay for history but cannot be ordered."),
	}
}

func (LabTest) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("reference_ranges", LabReferenceRange.Type),
		edge.From("panels", LabPanel.Type).Ref("tests"),
	}
}

func (LabTest) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// LabPanel is a named group of tests ordered together, such as a complete
// blood count; ordering it orders each of its tests.
type LabPanel struct{ ent.Schema }

func (LabPanel) Mixin() []ent.Mixin { return []ent.Mixin{withID("lbp"), TimeMixin{}} }

func (LabPanel) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().Unique().MaxRuneLen(20).Comment("LOINC panel code.").
			Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.Int64("price").NonNegative().
			Comment("The panel's price, usually below the sum of its tests.").
			Annotations(entgql.Type("Money")),
		field.Bool("active").Default(true),
	}
}

func (LabPanel) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("tests", LabTest.Type),
	}
}

func (LabPanel) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// LabReferenceRange is the normal and critical range of a NUMERIC test for
// one sex and age band. Age bands are in days so that neonatal ranges fit.
type LabReferenceRange struct{ ent.Schema }

func (LabReferenceRange) Mixin() []ent.Mixin { return []ent.Mixin{withID("lrr"), TimeMixin{}} }

func (LabReferenceRange) Fields() []ent.Field {
	return []ent.Field{
		field.String("test_id"),
		field.Enum("sex").Values("FEMALE", "MALE").Optional().Nillable().
			Comment("Empty: the range holds for either sex."),
		field.Int("age_from_days").Default(0).NonNegative().Comment("Inclusive."),
		field.Int("age_to_days").Optional().Nillable().Positive().Comment("Exclusive; empty: no upper bound."),
		field.Float("low").Optional().Nillable().Comment("Lowest normal value, inclusive."),
		field.Float("high").Optional().Nillable().Comment("Highest normal value, inclusive."),
		field.Float("critical_low").Optional().Nillable().Comment("At or below: CRITICAL_LOW."),
		field.Float("critical_high").Optional().Nillable().Comment("At or above: CRITICAL_HIGH."),
	}
}

func (LabReferenceRange) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("test", LabTest.Type).Ref("reference_ranges").Field("test_id").Unique().Required(),
	}
}

func (LabReferenceRange) Indexes() []ent.Index {
	return []ent.Index{index.Fields("test_id")}
}

// LabOrder is a clinician's request for lab tests for one patient; it holds
// one item per test.
type LabOrder struct{ ent.Schema }

func (LabOrder) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("lbo"), TimeMixin{}, ownedByPatient("lab_orders")}
}

func (LabOrder) Fields() []ent.Field {
	return []ent.Field{
		field.String("encounter_id").Optional().Nillable(),
		field.String("ordered_by_id"),
		field.Time("ordered_at").Annotations(entgql.OrderField("ORDERED_AT")),
		field.Enum("priority").Values("ROUTINE", "URGENT", "STAT").Default("ROUTINE"),
		field.Text("clinical_notes").Annotations(freeText).Optional().Nillable().
			Comment("What the lab should know: suspected diagnosis, medication, fasting."),
	}
}

func (LabOrder) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("encounter", Encounter.Type).Ref("lab_orders").Field("encounter_id").Unique(),
		edge.To("ordered_by", Staff.Type).Unique().Required().Field("ordered_by_id"),
		edge.To("items", LabOrderItem.Type),
		edge.To("specimens", LabSpecimen.Type),
	}
}

func (LabOrder) Indexes() []ent.Index {
	// patient_id, ordered_by_id: row scope asks, per row it keeps, whether
	// the clinician ordered for its patient (internal/authz).
	return []ent.Index{index.Fields("ordered_at"), index.Fields("patient_id", "ordered_by_id")}
}

func (LabOrder) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// LabOrderItem is one test of an order and where it is in the lab's
// workflow: ORDERED → COLLECTED → RECEIVED → RESULTED → VERIFIED, then
// AMENDED by each correction; CANCELLED on the way; REJECTED when its
// specimen is, until it is collected again.
type LabOrderItem struct{ ent.Schema }

func (LabOrderItem) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("lbi"), TimeMixin{}, ownedByPatient("lab_order_items")}
}

func (LabOrderItem) Fields() []ent.Field {
	return []ent.Field{
		field.String("order_id"),
		field.String("test_id"),
		field.String("panel_id").Optional().Nillable().Comment("The panel the test was ordered as part of."),
		field.String("specimen_id").Optional().Nillable().Comment("The specimen the test runs on now; a recollection replaces it."),
		field.Enum("status").
			Values("ORDERED", "COLLECTED", "RECEIVED", "RESULTED", "VERIFIED", "AMENDED", "CANCELLED", "REJECTED").
			Default("ORDERED").
			Annotations(entgql.OrderField("STATUS")),
		field.String("cancel_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.String("cancelled_by_id").Optional().Nillable(),
		field.Time("ordered_at"),
		field.Time("verified_at").Optional().Nillable().Comment("When the first result was verified."),
		field.Int("turnaround_minutes").Optional().Nillable().NonNegative().
			Comment("Ordered to first verified result, for turnaround reporting."),
	}
}

func (LabOrderItem) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("order", LabOrder.Type).Ref("items").Field("order_id").Unique().Required(),
		edge.To("test", LabTest.Type).Unique().Required().Field("test_id"),
		edge.To("panel", LabPanel.Type).Unique().Field("panel_id"),
		edge.From("specimen", LabSpecimen.Type).Ref("items").Field("specimen_id").Unique(),
		edge.To("cancelled_by", Staff.Type).Unique().Field("cancelled_by_id"),
		edge.To("results", LabResult.Type),
	}
}

func (LabOrderItem) Indexes() []ent.Index {
	return []ent.Index{index.Fields("order_id"), index.Fields("status")}
}

func (LabOrderItem) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// LabSpecimen is a sample taken for one or more items of an order, found by
// the accession number on its barcode label.
type LabSpecimen struct{ ent.Schema }

func (LabSpecimen) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("spc"), TimeMixin{}, ownedByPatient("lab_specimens")}
}

func (LabSpecimen) Fields() []ent.Field {
	return []ent.Field{
		field.String("order_id"),
		field.String("accession_number").NotEmpty().Unique().Immutable().MaxRuneLen(20).
			Comment("Printed on the barcode label; what the lab scans."),
		field.Enum("specimen_type").Values(specimenTypes...),
		field.Enum("status").Values("COLLECTED", "RECEIVED", "REJECTED").Default("COLLECTED"),
		field.String("collected_by_id"),
		field.Time("collected_at"),
		field.String("received_by_id").Optional().Nillable(),
		field.Time("received_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.Enum("rejection_reason").Values("HAEMOLYSED", "INSUFFICIENT", "MISLABELED", "CLOTTED", "CONTAMINATED", "OTHER").
			Optional().Nillable(),
		field.String("rejection_note").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.String("rejected_by_id").Optional().Nillable(),
		field.Time("rejected_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (LabSpecimen) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("order", LabOrder.Type).Ref("specimens").Field("order_id").Unique().Required(),
		edge.To("items", LabOrderItem.Type),
		edge.To("collected_by", Staff.Type).Unique().Required().Field("collected_by_id"),
		edge.To("received_by", Staff.Type).Unique().Field("received_by_id"),
		edge.To("rejected_by", Staff.Type).Unique().Field("rejected_by_id"),
	}
}

func (LabSpecimen) Indexes() []ent.Index {
	return []ent.Index{index.Fields("order_id")}
}

func (LabSpecimen) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField("labSpecimens"), entgql.RelayConnection()}
}

// LabResult is one reported value of an item. Results are never edited: a
// correction is a new result that replaces the old one, which stays
// visible as CORRECTED.
type LabResult struct{ ent.Schema }

func (LabResult) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("lbr"), TimeMixin{}, ownedByPatient("lab_results")}
}

func (LabResult) Fields() []ent.Field {
	return []ent.Field{
		field.String("item_id"),
		field.Enum("status").Values("ENTERED", "VERIFIED", "CORRECTED", "DISCARDED").Default("ENTERED").
			Comment("ENTERED awaits a second person's verification; CORRECTED was replaced by an amendment; DISCARDED was entered on a specimen the lab then rejected, and never released."),
		field.Float("numeric_value").Optional().Nillable(),
		field.String("coded_value").Optional().Nillable().MaxRuneLen(40),
		field.Text("text_value").Optional().Nillable(),
		field.String("unit").Optional().Nillable().MaxRuneLen(20),
		field.Enum("flag").Values("NORMAL", "LOW", "HIGH", "CRITICAL_LOW", "CRITICAL_HIGH", "ABNORMAL").Optional().Nillable().
			Comment("Empty when there is no range to judge the value by."),
		field.Float("reference_low").Optional().Nillable().Comment("The range applied, as it was then."),
		field.Float("reference_high").Optional().Nillable(),
		field.Float("critical_low").Optional().Nillable(),
		field.Float("critical_high").Optional().Nillable(),
		field.Text("comment").Annotations(freeText).Optional().Nillable(),
		field.String("entered_by_id").Optional().Nillable().
			Comment("The lab technician who entered it; empty when an instrument did."),
		field.String("instrument_id").Optional().Nillable().
			Comment("The analyzer that sent it (HL7 v2); then any lab technician verifies it."),
		field.Time("entered_at"),
		field.String("verified_by_id").Optional().Nillable(),
		field.Time("verified_at").Optional().Nillable().Annotations(entgql.OrderField("VERIFIED_AT")),
		field.String("replaces_id").Optional().Nillable().Unique(),
		field.String("amend_reason").Optional().Nillable().MaxRuneLen(500),
		field.Bool("critical").Default(false),
		field.String("acknowledged_by_id").Optional().Nillable(),
		field.Time("acknowledged_at").Optional().Nillable(),
		field.Int("acknowledge_minutes").Optional().Nillable().NonNegative().
			Comment("Verified to acknowledged, for reporting on critical-value follow-up."),
	}
}

func (LabResult) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("item", LabOrderItem.Type).Ref("results").Field("item_id").Unique().Required(),
		edge.To("entered_by", Staff.Type).Unique().Field("entered_by_id"),
		edge.To("instrument", LabInstrument.Type).Unique().Field("instrument_id"),
		edge.To("verified_by", Staff.Type).Unique().Field("verified_by_id"),
		edge.To("acknowledged_by", Staff.Type).Unique().Field("acknowledged_by_id"),
		edge.To("replaced_by", LabResult.Type).Unique().
			From("replaces").Field("replaces_id").Unique(),
		// Kept as of the release, not worked out when read: who was to be
		// told is part of the record of how a critical value was handled,
		// and a list of results then loads it without a query per row.
		edge.To("notify", Staff.Type).
			Comment("Who must be told of a critical value: the ordering clinician and, for an inpatient then, the attending doctor."),
	}
}

func (LabResult) Indexes() []ent.Index {
	return []ent.Index{index.Fields("item_id"), index.Fields("critical", "acknowledged_at")}
}

func (LabResult) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
