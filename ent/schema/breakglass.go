package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// BreakGlassAccess is a clinician's emergency access to a patient they have
// no care relationship with: row scope (internal/authz) lets them see the
// record until expires_at. It is part of the patient's record, so merging
// moves it and reading it is audited like any other patient data.
type BreakGlassAccess struct{ ent.Schema }

func (BreakGlassAccess) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("bga"), TimeMixin{}, ownedByPatient("break_glass_accesses")}
}

func (BreakGlassAccess) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id").Immutable(),
		// The account that broke the glass: the audit trail names actors by
		// it, so the reads made under the access are found by it.
		field.String("user_id").Immutable().Annotations(entgql.Skip(entgql.SkipAll)),
		// Often names the clinical situation; the service bounds its length,
		// as ent would validate the ciphertext.
		field.Text("reason").Annotations(encrypted...).NotEmpty().Immutable(),
		field.Time("expires_at").Immutable().Annotations(entgql.OrderField("EXPIRES_AT")),
	}
}

func (BreakGlassAccess) Edges() []ent.Edge {
	return []ent.Edge{edge.To("staff", Staff.Type).Unique().Required().Field("staff_id").Immutable()}
}

func (BreakGlassAccess) Indexes() []ent.Index {
	// Row scope asks, on every query of a clinician, for their accesses
	// still running.
	return []ent.Index{index.Fields("staff_id", "expires_at")}
}

func (BreakGlassAccess) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
