package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
)

// APIKey lets an integrator's service act with one role. The secret is shown
// once at creation; only its hash is kept.
type APIKey struct{ ent.Schema }

func (APIKey) Mixin() []ent.Mixin { return []ent.Mixin{withID("key"), TimeMixin{}} }

func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxRuneLen(100),
		field.String("lookup").Unique().Immutable().
			Comment("Public part of the key, used to find the row before the secret is compared."),
		field.String("secret_hash").Sensitive().Annotations(entgql.Skip()),
		field.String("role"),
		field.Strings("scopes").Optional().
			Comment("SMART-style scopes (patient/*.read, system/Observation.read …) that narrow what the role allows on the FHIR API; none: the role alone."),
		field.String("staff_id").Optional().Nillable().Immutable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)).
			Comment("The member of staff the key acts for, such as another clinic's clinician: a role limited to care relationships then sees that person's patients."),
		field.String("created_by").Immutable(),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
		field.Time("last_used_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (APIKey) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection(), entgql.QueryField("apiKeys")}
}
