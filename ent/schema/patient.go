package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Patient is a person the hospital registers and treats. Every query of it
// and of what belongs to it is row-scoped to the viewer (internal/authz).
type Patient struct{ ent.Schema }

func (Patient) Mixin() []ent.Mixin { return []ent.Mixin{withID("pat"), TimeMixin{}} }

func (Patient) Fields() []ent.Field {
	return []ent.Field{
		field.String("mrn").NotEmpty().Unique().Immutable().
			Comment("Medical record number: the human identifier printed on wristbands and labels.").
			Annotations(entgql.OrderField("MRN")),
		field.String("given_name").NotEmpty().MaxRuneLen(100),
		field.String("family_name").NotEmpty().MaxRuneLen(100).
			Annotations(entgql.OrderField("FAMILY_NAME")),
		field.Time("birth_date").
			Annotations(entgql.Type("Date"), entgql.OrderField("BIRTH_DATE")),
		field.Enum("sex").Values("FEMALE", "MALE", "OTHER", "UNKNOWN"),
		field.String("phone").Optional().Nillable().Annotations(encrypted...),
		field.String("email").Optional().Nillable().Annotations(encrypted...),
		field.String("address_line").Optional().Nillable().Annotations(encrypted...),
		field.String("city").Optional().Nillable().MaxRuneLen(100),
		field.String("region").Optional().Nillable().MaxRuneLen(100),
		field.String("postal_code").Optional().Nillable().Annotations(encrypted...),
		field.String("country").Optional().Nillable().MaxRuneLen(2).Comment("ISO 3166-1 alpha-2"),
		field.String("national_id").Optional().Nillable().Annotations(encryptedIndexed("national_id_bidx")...),
		blindIndex("national_id_bidx"),
		field.String("preferred_language").Optional().Nillable().MaxRuneLen(35).Comment("BCP 47 tag, e.g. sw, en-KE"),
		field.Enum("status").Values("ACTIVE", "MERGED").Default("ACTIVE").
			Comment("MERGED: a duplicate whose record now lives in mergedInto."),
		field.String("merged_into_id").Optional().Nillable(),
		field.Time("merged_at").Optional().Nillable(),
		field.String("merge_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500).
			Comment("Why the registrar merged this record into mergedInto."),
	}
}

func (Patient) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("appointments", Appointment.Type).Annotations(entgql.RelayConnection()),
		edge.From("user", User.Type).Ref("patient").Unique(),
		// Many duplicates can be merged into one survivor over time.
		edge.To("merged_records", Patient.Type).
			From("merged_into").Unique().Field("merged_into_id"),
		edge.To("contacts", PatientContact.Type),
		edge.To("identifiers", PatientIdentifier.Type),
		edge.To("insurance_policies", InsurancePolicy.Type),
		edge.To("history", HistoryItem.Type),
		edge.To("admissions", Admission.Type).Annotations(entgql.RelayConnection()),
		edge.To("bed_assignments", BedAssignment.Type).Annotations(entgql.Skip()),
		edge.To("encounters", Encounter.Type).Annotations(entgql.RelayConnection()),
		edge.To("problems", Problem.Type),
		edge.To("allergies", Allergy.Type),
		edge.To("observations", Observation.Type).Annotations(entgql.RelayConnection()),
		edge.To("medication_orders", MedicationOrder.Type).Annotations(entgql.RelayConnection()),
		edge.To("care_plans", CarePlan.Type),
		edge.To("care_plan_goals", CarePlanGoal.Type).Annotations(entgql.Skip()),
		edge.To("care_plan_activities", CarePlanActivity.Type).Annotations(entgql.Skip()),
		edge.To("notes", ClinicalNote.Type).Annotations(entgql.RelayConnection()),
		edge.To("referrals", Referral.Type).Annotations(entgql.RelayConnection()),
		edge.To("care_team", CareTeamMember.Type),
		edge.To("lab_orders", LabOrder.Type).Annotations(entgql.RelayConnection()),
		edge.To("lab_order_items", LabOrderItem.Type).Annotations(entgql.Skip()),
		edge.To("lab_specimens", LabSpecimen.Type).Annotations(entgql.Skip()),
		edge.To("lab_results", LabResult.Type).Annotations(entgql.RelayConnection()),
		edge.To("dispensings", Dispensing.Type).Annotations(entgql.Skip()),
		edge.To("dispensing_lines", DispensingLine.Type).Annotations(entgql.Skip()),
		// Billing's own rows: reached through billing's queries, not the chart.
		edge.To("pre_authorizations", PreAuthorization.Type).Annotations(entgql.Skip()),
		edge.To("claims", Claim.Type).Annotations(entgql.Skip()),
		edge.To("claim_lines", ClaimLine.Type).Annotations(entgql.Skip()),
		edge.To("charges", Charge.Type).Annotations(entgql.Skip()),
		edge.To("invoices", Invoice.Type).Annotations(entgql.Skip()),
		edge.To("payments", Payment.Type).Annotations(entgql.Skip()),
		edge.To("payment_allocations", PaymentAllocation.Type).Annotations(entgql.Skip()),
		edge.To("refunds", Refund.Type).Annotations(entgql.Skip()),
		edge.To("payment_checkouts", PaymentCheckout.Type).Annotations(entgql.Skip()),
		edge.To("invoice_adjustments", InvoiceAdjustment.Type).Annotations(entgql.Skip()),
		edge.To("invoice_discounts", InvoiceDiscount.Type).Annotations(entgql.Skip()),
		// Reviewed by the auditor through breakGlassAccesses, not read from the record.
		edge.To("break_glass_accesses", BreakGlassAccess.Type).Annotations(entgql.Skip()),
	}
}

func (Patient) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("family_name", "given_name"),
		index.Fields("national_id_bidx"),
	}
}

func (Patient) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
