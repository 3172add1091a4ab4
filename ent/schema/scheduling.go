package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Room is a consulting or procedure room appointments can be booked into.
type Room struct{ ent.Schema }

func (Room) Mixin() []ent.Mixin { return []ent.Mixin{withID("rom"), TimeMixin{}} }

func (Room) Fields() []ent.Field {
	return []ent.Field{
		field.String("department_id"),
		field.String("code").NotEmpty().MaxRuneLen(32).Unique().Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(100),
		field.Bool("active").Default(true),
	}
}

func (Room) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("department", Department.Type).Unique().Required().Field("department_id"),
		edge.From("appointments", Appointment.Type).Ref("room").Annotations(entgql.RelayConnection()),
	}
}

func (Room) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// ProviderAvailability is a weekly working period of a provider, in the
// hospital's time zone. Slot search and booking keep to these.
type ProviderAvailability struct{ ent.Schema }

func (ProviderAvailability) Mixin() []ent.Mixin { return []ent.Mixin{withID("avl"), TimeMixin{}} }

func (ProviderAvailability) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id"),
		field.Int("weekday").Range(0, 6).Comment("0 Sunday … 6 Saturday"),
		field.Int("start_minute").Range(0, 24*60).Comment("Minutes after local midnight the period starts."),
		field.Int("end_minute").Range(0, 24*60).Comment("Minutes after local midnight the period ends."),
		field.Time("valid_from").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.Time("valid_to").Optional().Nillable().Annotations(entgql.Type("Date")),
	}
}

func (ProviderAvailability) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("staff", Staff.Type).Ref("availability").Field("staff_id").Unique().Required(),
	}
}

// ProviderTimeOff blocks a provider's time: leave, a meeting, theatre.
type ProviderTimeOff struct{ ent.Schema }

func (ProviderTimeOff) Mixin() []ent.Mixin { return []ent.Mixin{withID("off"), TimeMixin{}} }

func (ProviderTimeOff) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id"),
		field.Time("start_at"),
		field.Time("end_at"),
		field.String("reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(200),
		// Set when approved leave laid this time off; it goes with the leave.
		// Not in the API: schedulers see the time taken, not whose leave
		// request it was (a request's kind and reason are not theirs).
		field.String("leave_request_id").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (ProviderTimeOff) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("staff", Staff.Type).Ref("time_off").Field("staff_id").Unique().Required(),
		edge.From("leave_request", LeaveRequest.Type).Ref("time_off").Field("leave_request_id").Unique().Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (ProviderTimeOff) Indexes() []ent.Index {
	return []ent.Index{index.Fields("staff_id", "start_at")}
}
