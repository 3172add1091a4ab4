package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Department is a clinical or administrative unit of the hospital.
type Department struct{ ent.Schema }

func (Department) Mixin() []ent.Mixin { return []ent.Mixin{withID("dep"), TimeMixin{}} }

func (Department) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().MaxRuneLen(32).Unique().
			Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(200).
			Annotations(entgql.OrderField("NAME")),
		field.Text("description").Annotations(freeText).Optional().Nillable(),
		// The member of staff who decides the department's leave and keeps
		// its roster with HR.
		field.String("manager_id").Optional().Nillable(),
	}
}

func (Department) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("staff", Staff.Type).Annotations(entgql.RelayConnection()),
		edge.To("appointments", Appointment.Type).Annotations(entgql.RelayConnection()),
		edge.To("manager", Staff.Type).Unique().Field("manager_id"),
	}
}

func (Department) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
