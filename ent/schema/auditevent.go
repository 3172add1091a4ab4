package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditEvent is one entry of the append-only, hash-chained audit trail.
// No mutation updates or deletes it; internal/audit appends and verifies.
type AuditEvent struct{ ent.Schema }

func (AuditEvent) Mixin() []ent.Mixin { return []ent.Mixin{withID("aud")} }

func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("seq").Unique().Immutable().
			Comment("Position in the chain, gapless from 1.").
			Annotations(entgql.OrderField("SEQ")),
		field.Time("occurred_at").Immutable().Annotations(entgql.OrderField("OCCURRED_AT")),
		field.String("actor_id").Optional().Immutable(),
		field.String("actor_name").Optional().Immutable(),
		field.Strings("roles").Optional().Immutable(),
		field.String("operation").Immutable(),
		field.Enum("kind").Values("QUERY", "MUTATION", "SUBSCRIPTION", "LOGIN", "HTTP", "SYSTEM").Immutable(),
		field.Enum("outcome").Values("ALLOWED", "DENIED", "FAILED").Immutable(),
		field.String("error_code").Optional().Immutable(),
		field.Strings("object_types").Optional().Immutable(),
		field.Strings("object_ids").Optional().Immutable(),
		field.Text("patient_ids").Optional().Immutable().
			Comment("Patients touched, as ,id,id, so a filter by one patient is a substring match on every database."),
		field.Strings("fields").Optional().Immutable(),
		field.String("client_addr").Optional().Immutable(),
		field.String("request_id").Optional().Immutable(),
		field.String("prev_hash").Immutable().Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.String("hash").Immutable().Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("occurred_at"),
		index.Fields("actor_id", "occurred_at"),
	}
}

func (AuditEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
