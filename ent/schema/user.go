package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// User is a login. Roles name Casbin subjects in policies/policy.csv.
type User struct{ ent.Schema }

func (User) Mixin() []ent.Mixin { return []ent.Mixin{withID("usr"), TimeMixin{}} }

func (User) Fields() []ent.Field {
	return []ent.Field{
		field.String("username").NotEmpty().MaxRuneLen(64).Unique().
			Annotations(entgql.OrderField("USERNAME")),
		field.String("password_hash").Sensitive().Annotations(entgql.Skip()),
		field.Strings("roles"),
		field.Bool("active").Default(true),
		field.Time("last_login_at").Optional().Nillable().
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		// The TOTP shared secret (base32), set at enrolment and kept until
		// the user disables it or an admin resets it. It is the one field of
		// multi-factor sign-in that must be encrypted at rest: whoever reads
		// it can make codes. Never in the API, not even to its owner after
		// enrolment showed it once.
		field.String("totp_secret").Optional().Sensitive().Annotations(Encrypted{}, entgql.Skip(entgql.SkipAll)),
		// Null while an enrolment waits for its first code: an unconfirmed
		// secret is not a second factor yet.
		field.Time("totp_confirmed_at").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		// The last TOTP time step accepted (Unix time / period). A code is
		// taken only for a later step, by a conditional update, so one code
		// signs in once however many requests race with it.
		field.Int64("totp_last_step").Default(0).Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (User) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("staff", Staff.Type).Unique(),
		edge.To("patient", Patient.Type).Unique(),
		edge.To("sessions", Session.Type).Annotations(entgql.Skip()),
	}
}

func (User) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
