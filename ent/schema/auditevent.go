package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// AuditEvent is one entry of the append-only audit trail. A request inserts
// its row unsealed (no seq, no hash) and without any lock; the sealer of
// internal/audit later gives it its place in a keyed hash chain. No mutation
// updates or deletes it; internal/audit appends, seals and verifies.
type AuditEvent struct{ ent.Schema }

func (AuditEvent) Mixin() []ent.Mixin { return []ent.Mixin{withID("aud")} }

func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Int64("seq").Optional().Nillable().Unique().Immutable().
			Comment("Position in the chain, gapless from 1; null until the row is sealed."),
		// The listing order of the API, kept apart from seq because a
		// cursor cannot page over a column that is null.
		field.Int64("position").Default(0).Immutable().
			Comment("seq once sealed; before that 2^62 plus the insertion time in microseconds, so unsealed rows list after all sealed ones, in insertion order.").
			Annotations(entgql.OrderField("SEQ"), entgql.Skip(entgql.SkipType, entgql.SkipWhereInput)),
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
		field.Text("reason").Optional().Immutable().
			Comment("Why, in the actor's words, for actions that must give one (an admin resetting a user's second factor).").
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.String("entry_mac").Optional().Immutable().
			Comment("keyid:HMAC of the content, made when the row was written, so a row inserted behind HMIS's back is found even before it is sealed.").
			Annotations(entgql.Skip(entgql.SkipAll)),
		field.String("prev_hash").Optional().Nillable().Immutable().Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.String("hash").Optional().Nillable().Immutable().Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.String("key_id").Optional().Nillable().Immutable().
			Comment("Audit key that sealed the row; null until sealed, and on rows sealed by the unkeyed chain of earlier versions.").
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("position"),
		index.Fields("occurred_at"),
		index.Fields("actor_id", "occurred_at"),
	}
}

func (AuditEvent) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
