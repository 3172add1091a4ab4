package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// MfaChallenge is the second step a password login owes when the user has
// a second factor or their role requires one: verifyMfa (or, for a user
// who must enrol first, confirmTotp) completes it. Only the token's hash is
// kept; a challenge is used at most once and expires within minutes.
type MfaChallenge struct{ ent.Schema }

func (MfaChallenge) Mixin() []ent.Mixin { return []ent.Mixin{withID("mfc"), TimeMixin{}} }

func (MfaChallenge) Fields() []ent.Field {
	return []ent.Field{
		field.String("user_id").Immutable(),
		field.String("token_hash").Unique().Immutable().Sensitive(),
		field.Enum("purpose").Values("VERIFY", "ENROL").Immutable().
			Comment("VERIFY: prove an enrolled factor; ENROL: the role requires a factor the user has not set up, so the challenge allows enrolment and nothing else."),
		field.Time("expires_at").Immutable(),
		field.Time("used_at").Optional().Nillable(),
		field.String("client_addr").Optional().Immutable(),
	}
}

func (MfaChallenge) Indexes() []ent.Index {
	return []ent.Index{index.Fields("user_id")}
}

func (MfaChallenge) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// MfaRecoveryCode is one of the single-use codes a user receives when they
// confirm TOTP, for when the authenticator is lost. Only the hash is kept.
type MfaRecoveryCode struct{ ent.Schema }

func (MfaRecoveryCode) Mixin() []ent.Mixin { return []ent.Mixin{withID("mrc"), TimeMixin{}} }

func (MfaRecoveryCode) Fields() []ent.Field {
	return []ent.Field{
		field.String("user_id").Immutable(),
		field.String("code_hash").Unique().Immutable().Sensitive(),
		field.Time("used_at").Optional().Nillable(),
	}
}

func (MfaRecoveryCode) Indexes() []ent.Index {
	return []ent.Index{index.Fields("user_id")}
}

func (MfaRecoveryCode) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
