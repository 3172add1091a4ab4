package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// OutboxEvent is a domain event written in the same transaction as the change
// it describes; the relay in internal/events publishes it after commit.
type OutboxEvent struct{ ent.Schema }

func (OutboxEvent) Mixin() []ent.Mixin { return []ent.Mixin{withID("evt")} }

func (OutboxEvent) Fields() []ent.Field {
	return []ent.Field{
		field.String("topic").NotEmpty(),
		field.String("type").NotEmpty(),
		field.Bytes("payload"),
		field.Time("created_at").Immutable().Default(nowUTC),
		field.Time("published_at").Optional().Nillable(),
		field.String("broker_id").Optional(),
	}
}

func (OutboxEvent) Indexes() []ent.Index {
	return []ent.Index{index.Fields("published_at", "created_at")}
}

func (OutboxEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
