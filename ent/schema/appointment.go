package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Appointment books a patient with a provider for a time. Its status moves
// only through named mutations (internal/scheduling), never a generic update.
type Appointment struct{ ent.Schema }

func (Appointment) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("apt"), TimeMixin{}, ownedByPatient("appointments")}
}

func (Appointment) Fields() []ent.Field {
	return []ent.Field{
		field.String("provider_id"),
		field.String("department_id"),
		field.Time("start_at").Annotations(entgql.OrderField("START_AT")),
		field.Time("end_at"),
		field.String("reason").Annotations(freeText).Optional().MaxRuneLen(500),
		field.String("room_id").Optional().Nillable(),
		field.Enum("status").
			Values("BOOKED", "CHECKED_IN", "IN_PROGRESS", "COMPLETED", "CANCELLED", "NO_SHOW").
			Default("BOOKED").
			Annotations(entgql.OrderField("STATUS")),
		field.String("cancel_reason").Annotations(freeText).Optional().MaxRuneLen(500),
		field.Time("cancelled_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.Time("checked_in_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.Time("started_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.Time("completed_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (Appointment) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("provider", Staff.Type).Ref("appointments").Field("provider_id").Unique().Required(),
		edge.From("department", Department.Type).Ref("appointments").Field("department_id").Unique().Required(),
		edge.To("room", Room.Type).Unique().Field("room_id"),
		edge.To("encounter", Encounter.Type).Unique(),
	}
}

func (Appointment) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("provider_id", "start_at"),
		index.Fields("patient_id", "start_at"),
		index.Fields("department_id", "start_at"),
		index.Fields("room_id", "start_at"),
	}
}

func (Appointment) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
