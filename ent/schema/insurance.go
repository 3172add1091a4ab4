package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// serviceCategories are the groups a plan's coverage is stated for. The price
// list gives every billable service one of them.
var serviceCategories = []string{"CONSULTATION", "PROCEDURE", "LAB", "DRUG", "ITEM", "BED_DAY"}

// Payer is who pays a share of a patient's bill: an insurer, a government
// scheme or an employer.
type Payer struct{ ent.Schema }

func (Payer) Mixin() []ent.Mixin { return []ent.Mixin{withID("pyr"), TimeMixin{}} }

func (Payer) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().Unique().MaxRuneLen(32).Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(200).Annotations(entgql.OrderField("NAME")),
		field.Enum("kind").Values("INSURER", "GOVERNMENT", "EMPLOYER"),
		field.Bool("active").Default(true),
	}
}

func (Payer) Edges() []ent.Edge {
	return []ent.Edge{edge.To("plans", InsurancePlan.Type)}
}

func (Payer) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// InsurancePlan is one product of a payer. What it covers lives in dated
// versions, so a claim is judged by the rules in force on its service date.
type InsurancePlan struct{ ent.Schema }

func (InsurancePlan) Mixin() []ent.Mixin { return []ent.Mixin{withID("ipl"), TimeMixin{}} }

func (InsurancePlan) Fields() []ent.Field {
	return []ent.Field{
		field.String("payer_id"),
		field.String("code").NotEmpty().Unique().MaxRuneLen(32).Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(200).Annotations(entgql.OrderField("NAME")),
		field.Int("plan_year_start_month").Range(1, 12).Default(1).
			Comment("The month the plan year, and so the annual limit, starts again (1 = January)."),
		field.Bool("active").Default(true),
	}
}

func (InsurancePlan) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("payer", Payer.Type).Ref("plans").Field("payer_id").Unique().Required(),
		edge.To("versions", PlanVersion.Type),
		edge.From("policies", InsurancePolicy.Type).Ref("plan").Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (InsurancePlan) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField("insurancePlans"), entgql.RelayConnection()}
}

// PlanVersion is the terms of a plan from a date on; a later version
// replaces it from its own date, and none is ever edited.
type PlanVersion struct{ ent.Schema }

func (PlanVersion) Mixin() []ent.Mixin { return []ent.Mixin{withID("ipv"), TimeMixin{}} }

func (PlanVersion) Fields() []ent.Field {
	return []ent.Field{
		field.String("plan_id"),
		field.Time("effective_from").Annotations(entgql.Type("Date"), entgql.OrderField("EFFECTIVE_FROM")),
		field.Int64("annual_limit").Optional().Nillable().NonNegative().Annotations(entgql.Type("Money")).
			Comment("What the payer pays at most per patient and plan year; none is unlimited."),
		field.Int64("visit_copay").NonNegative().Default(0).Annotations(entgql.Type("Money")).
			Comment("What the patient pays once per visit before the payer's share."),
	}
}

func (PlanVersion) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("plan", InsurancePlan.Type).Ref("versions").Field("plan_id").Unique().Required(),
		edge.To("rules", CoverageRule.Type),
	}
}

func (PlanVersion) Indexes() []ent.Index {
	return []ent.Index{index.Fields("plan_id", "effective_from").Unique()}
}

// CoverageRule says how one category, or one service code within it, is
// covered by a plan version. A code's rule overrides its category's.
type CoverageRule struct{ ent.Schema }

func (CoverageRule) Mixin() []ent.Mixin { return []ent.Mixin{withID("cvr"), TimeMixin{}} }

func (CoverageRule) Fields() []ent.Field {
	return []ent.Field{
		field.String("version_id"),
		field.Enum("category").Values(serviceCategories...),
		field.String("service_code").Optional().Nillable().MaxRuneLen(32),
		field.Int("covered_percent").Range(0, 100),
		field.Int64("line_copay").NonNegative().Default(0).Annotations(entgql.Type("Money")).
			Comment("What the patient pays on each line of the rule before the payer's share."),
		field.Bool("excluded").Default(false),
		field.Bool("requires_preauthorization").Default(false),
	}
}

func (CoverageRule) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("version", PlanVersion.Type).Ref("rules").Field("version_id").Unique().Required(),
	}
}

// PreAuthorization is a payer's prior consent to a service for a patient.
type PreAuthorization struct{ ent.Schema }

func (PreAuthorization) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("pau"), TimeMixin{}, ownedByPatient("pre_authorizations")}
}

func (PreAuthorization) Fields() []ent.Field {
	return []ent.Field{
		field.String("policy_id"),
		field.Enum("category").Values(serviceCategories...),
		field.String("service_code").Optional().Nillable().MaxRuneLen(32),
		field.Enum("status").Values("REQUESTED", "APPROVED", "DENIED").Default("REQUESTED"),
		field.Time("valid_from").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.Time("valid_to").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.Int64("approved_amount").Optional().Nillable().NonNegative().Annotations(entgql.Type("Money")),
		field.Int("approved_quantity").Optional().Nillable().Positive(),
		field.String("payer_reference").Optional().Nillable().MaxRuneLen(64),
		field.String("reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.String("requested_by_id"),
		field.String("decided_by_id").Optional().Nillable(),
	}
}

func (PreAuthorization) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("policy", InsurancePolicy.Type).Unique().Field("policy_id").Required(),
		edge.To("requested_by", Staff.Type).Unique().Field("requested_by_id").Required(),
		edge.To("decided_by", Staff.Type).Unique().Field("decided_by_id"),
	}
}

func (PreAuthorization) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Claim asks a payer for its share of a patient's services. A denied claim
// is resubmitted as a new version; the denied one stays as it was.
type Claim struct{ ent.Schema }

func (Claim) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("clm"), TimeMixin{}, ownedByPatient("claims")}
}

func (Claim) Fields() []ent.Field {
	return []ent.Field{
		field.String("policy_id"),
		field.String("payer_id"),
		field.String("encounter_id").Optional().Nillable(),
		field.String("invoice_id").Optional().Nillable().
			Comment("The invoice whose payer share the claim bills; its remittance is paid onto it."),
		field.Int("version").Positive().Default(1),
		field.String("previous_id").Optional().Nillable().Unique(),
		field.Enum("status").Values("DRAFT", "SUBMITTED", "APPROVED", "PARTIALLY_APPROVED", "DENIED", "PAID", "CANCELLED").Default("DRAFT").
			Comment("CANCELLED: its invoice was voided before the claim was submitted."),
		field.Strings("diagnosis_codes").Optional().Comment("ICD-10 codes of the encounter that the claim needs."),
		field.Int64("total_claimed").NonNegative().Annotations(entgql.Type("Money")),
		field.Int64("total_approved").Optional().Nillable().NonNegative().Annotations(entgql.Type("Money")),
		field.Int64("total_paid").Optional().Nillable().NonNegative().Annotations(entgql.Type("Money")),
		field.String("denial_code").Optional().Nillable().MaxRuneLen(16),
		field.String("remittance_reference").Optional().Nillable().MaxRuneLen(64),
		field.Time("submitted_at").Optional().Nillable(),
		field.Time("adjudicated_at").Optional().Nillable(),
		field.Time("paid_at").Optional().Nillable(),
	}
}

func (Claim) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("policy", InsurancePolicy.Type).Unique().Field("policy_id").Required(),
		edge.To("payer", Payer.Type).Unique().Field("payer_id").Required(),
		edge.To("encounter", Encounter.Type).Unique().Field("encounter_id"),
		edge.To("next", Claim.Type).Unique().From("previous").Field("previous_id").Unique(),
		edge.To("lines", ClaimLine.Type),
	}
}

func (Claim) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// ClaimLine is one service on a claim and what the payer made of it.
type ClaimLine struct{ ent.Schema }

func (ClaimLine) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("cll"), TimeMixin{}, ownedByPatient("claim_lines")}
}

func (ClaimLine) Fields() []ent.Field {
	return []ent.Field{
		field.String("claim_id"),
		field.Int("position").NonNegative(),
		field.String("service_code").NotEmpty().MaxRuneLen(32),
		field.Enum("category").Values(serviceCategories...),
		field.Time("service_date").Annotations(entgql.Type("Date")),
		field.Int("quantity").Positive().Default(1),
		field.Int64("amount_claimed").NonNegative().Annotations(entgql.Type("Money")),
		field.Int64("amount_approved").Optional().Nillable().NonNegative().Annotations(entgql.Type("Money")),
		field.Int64("amount_paid").Optional().Nillable().NonNegative().Annotations(entgql.Type("Money")),
		field.String("reason_code").Optional().Nillable().MaxRuneLen(16).
			Comment("The payer's reason for approving less than claimed."),
		field.Int64("adjustment").Optional().Nillable().NonNegative().Annotations(entgql.Type("Money")).
			Comment("Claimed minus paid once remitted: what the payer will not pay."),
		field.String("adjustment_code").Optional().Nillable().MaxRuneLen(16),
	}
}

func (ClaimLine) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("claim", Claim.Type).Ref("lines").Field("claim_id").Unique().Required(),
	}
}
