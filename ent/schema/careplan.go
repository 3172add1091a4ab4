package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// CarePlan is a plan of care with goals and activities.
type CarePlan struct{ ent.Schema }

func (CarePlan) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("cpl"), TimeMixin{}, ownedByPatient("care_plans")}
}

func (CarePlan) Fields() []ent.Field {
	return []ent.Field{
		field.String("title").NotEmpty().MaxRuneLen(200),
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
		field.String("description").Annotations(freeText).NotEmpty().MaxRuneLen(500),
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
		field.String("description").Annotations(freeText).NotEmpty().MaxRuneLen(500),
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
