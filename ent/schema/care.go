package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
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
		field.String("drug").NotEmpty().MaxLen(200),
		field.String("drug_code").Optional().Nillable().MaxLen(32),
		field.Float("dose_amount").Positive(),
		field.String("dose_unit").NotEmpty().MaxLen(20),
		field.Enum("route").Values("ORAL", "IV", "IM", "SC", "TOPICAL", "INHALED", "RECTAL", "SUBLINGUAL", "OTHER"),
		field.String("frequency").NotEmpty().MaxLen(40).Comment("e.g. BID, TID, q8h, once daily"),
		field.Int("duration_days").Optional().Nillable().Positive(),
		field.Int("quantity").Positive(),
		field.Text("instructions").Annotations(freeText).Optional().Nillable(),
		field.String("prescriber_id"),
		field.Enum("status").Values("ACTIVE", "COMPLETED", "STOPPED", "SUPERSEDED").Default("ACTIVE").
			Annotations(entgql.OrderField("STATUS")),
		field.String("replaces_id").Optional().Nillable().Unique(),
		field.String("allergy_override_reason").Annotations(freeText).Optional().Nillable().MaxLen(500).
			Comment("Why the prescriber went ahead despite a documented allergy."),
		field.String("stop_reason").Annotations(freeText).Optional().Nillable().MaxLen(500),
		field.Time("ended_at").Optional().Nillable(),
	}
}

func (MedicationOrder) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("encounter", Encounter.Type).Ref("medication_orders").Field("encounter_id").Unique(),
		edge.To("prescriber", Staff.Type).Unique().Required().Field("prescriber_id"),
		edge.To("replaced_by", MedicationOrder.Type).Unique().From("replaces").Field("replaces_id").Unique(),
	}
}

func (MedicationOrder) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// CarePlan is a plan of care with goals and activities.
type CarePlan struct{ ent.Schema }

func (CarePlan) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("cpl"), TimeMixin{}, ownedByPatient("care_plans")}
}

func (CarePlan) Fields() []ent.Field {
	return []ent.Field{
		field.String("title").NotEmpty().MaxLen(200),
		field.Text("description").Annotations(freeText).Optional().Nillable(),
		field.Enum("status").Values("DRAFT", "ACTIVE", "COMPLETED", "CANCELLED").Default("DRAFT"),
		field.String("author_id"),
		field.Time("period_start").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.Time("period_end").Optional().Nillable().Annotations(entgql.Type("Date")),
	}
}

func (CarePlan) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("author", Staff.Type).Unique().Required().Field("author_id"),
		edge.To("goals", CarePlanGoal.Type),
		edge.To("activities", CarePlanActivity.Type),
	}
}

// CarePlanGoal is what a care plan aims for.
type CarePlanGoal struct{ ent.Schema }

func (CarePlanGoal) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("cpg"), TimeMixin{}, ownedByPatient("care_plan_goals")}
}

func (CarePlanGoal) Fields() []ent.Field {
	return []ent.Field{
		field.String("care_plan_id"),
		field.String("description").Annotations(freeText).NotEmpty().MaxLen(500),
		field.Time("target_date").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.Enum("status").Values("PROPOSED", "IN_PROGRESS", "ACHIEVED", "NOT_ACHIEVED", "CANCELLED").Default("PROPOSED"),
	}
}

func (CarePlanGoal) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("care_plan", CarePlan.Type).Ref("goals").Field("care_plan_id").Unique().Required(),
	}
}

// CarePlanActivity is something to be done under a care plan.
type CarePlanActivity struct{ ent.Schema }

func (CarePlanActivity) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("cpa"), TimeMixin{}, ownedByPatient("care_plan_activities")}
}

func (CarePlanActivity) Fields() []ent.Field {
	return []ent.Field{
		field.String("care_plan_id"),
		field.String("description").Annotations(freeText).NotEmpty().MaxLen(500),
		field.Time("scheduled_at").Optional().Nillable(),
		field.Enum("status").Values("NOT_STARTED", "SCHEDULED", "IN_PROGRESS", "COMPLETED", "CANCELLED").Default("NOT_STARTED"),
		field.String("assignee_id").Optional().Nillable(),
	}
}

func (CarePlanActivity) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("care_plan", CarePlan.Type).Ref("activities").Field("care_plan_id").Unique().Required(),
		edge.To("assignee", Staff.Type).Unique().Field("assignee_id"),
	}
}

// ClinicalNote is a note signed by its author. A signed note is never
// edited: an amendment is a new note replacing it, and the replaced one is
// kept, marked AMENDED. Patients never see drafts.
type ClinicalNote struct{ ent.Schema }

func (ClinicalNote) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("not"), TimeMixin{}, ownedByPatient("notes")}
}

func (ClinicalNote) Fields() []ent.Field {
	return []ent.Field{
		field.String("encounter_id").Optional().Nillable(),
		field.Enum("type").Values("PROGRESS", "ADMISSION", "DISCHARGE", "CONSULT"),
		field.Enum("status").Values("DRAFT", "SIGNED", "AMENDED").Default("DRAFT"),
		field.Text("text").Annotations(freeText).NotEmpty(),
		field.String("author_id"),
		field.Time("signed_at").Optional().Nillable(),
		field.String("replaces_id").Optional().Nillable().Unique(),
		field.String("amend_reason").Optional().Nillable().MaxLen(500),
	}
}

func (ClinicalNote) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("encounter", Encounter.Type).Ref("notes").Field("encounter_id").Unique(),
		edge.To("author", Staff.Type).Unique().Required().Field("author_id"),
		edge.To("replaced_by", ClinicalNote.Type).Unique().
			From("replaces").Field("replaces_id").Unique(),
	}
}

// Referral asks another provider or department to see the patient.
type Referral struct{ ent.Schema }

func (Referral) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("ref"), TimeMixin{}, ownedByPatient("referrals")}
}

func (Referral) Fields() []ent.Field {
	return []ent.Field{
		field.String("from_staff_id"),
		field.String("from_department_id"),
		field.String("to_staff_id").Optional().Nillable(),
		field.String("to_department_id"),
		field.String("encounter_id").Optional().Nillable(),
		field.Text("reason").Annotations(freeText).NotEmpty(),
		field.Enum("priority").Values("ROUTINE", "URGENT").Default("ROUTINE"),
		field.Enum("status").Values("REQUESTED", "ACCEPTED", "DECLINED", "COMPLETED", "CANCELLED").Default("REQUESTED").
			Annotations(entgql.OrderField("STATUS")),
		field.Time("responded_at").Optional().Nillable(),
		field.String("response_note").Annotations(freeText).Optional().Nillable().MaxLen(1000),
	}
}

func (Referral) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("from_staff", Staff.Type).Unique().Required().Field("from_staff_id"),
		edge.To("from_department", Department.Type).Unique().Required().Field("from_department_id"),
		edge.To("to_staff", Staff.Type).Unique().Field("to_staff_id"),
		edge.To("to_department", Department.Type).Unique().Required().Field("to_department_id"),
		edge.To("encounter", Encounter.Type).Unique().Field("encounter_id"),
	}
}

func (Referral) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// CareTeamMember is a member of staff caring for a patient, and in what role.
type CareTeamMember struct{ ent.Schema }

func (CareTeamMember) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("ctm"), TimeMixin{}, ownedByPatient("care_team")}
}

func (CareTeamMember) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id"),
		field.Enum("role").Values("ATTENDING", "PRIMARY_CARE", "NURSE", "CONSULTANT", "PHARMACIST", "OTHER"),
		field.Time("since"),
		field.Time("until").Optional().Nillable(),
	}
}

func (CareTeamMember) Edges() []ent.Edge {
	return []ent.Edge{edge.To("staff", Staff.Type).Unique().Required().Field("staff_id")}
}

func (ClinicalNote) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
