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
