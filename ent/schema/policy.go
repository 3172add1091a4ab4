package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// PolicyVersion is one numbered state of the access policy that the
// server runs with: the full line set, not a diff on the one before. The
// current version is the highest number; with none stored, the built-in
// (or HMIS_POLICY_FILE) policy is version 0. A whole line set per version
// makes loading one row, and a rollback a copy of an earlier row, with no
// chain of diffs to replay; a policy is some 60 KB, and versions are rare.
type PolicyVersion struct{ ent.Schema }

func (PolicyVersion) Mixin() []ent.Mixin { return []ent.Mixin{withID("pve")} }

func (PolicyVersion) Fields() []ent.Field {
	return []ent.Field{
		// Unique: two approvals racing on the same base both try to write
		// base+1, and the database lets exactly one of them.
		field.Int("number").Positive().Immutable().Unique(),
		field.Text("lines").Immutable(),
		field.String("reason").Immutable(),
		// Who applied it: the approver of a proposal, or the admin who
		// rolled back.
		field.String("applied_by").Immutable(),
		field.String("proposed_by").Optional().Immutable(),
		field.String("proposal_id").Optional().Immutable(),
		// Set for a rollback: the version whose lines this one restores.
		field.Int("restores").Optional().Nillable().Immutable(),
		field.Time("created_at").Immutable().Default(nowUTC),
	}
}

func (PolicyVersion) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// PolicyProposal is a change to the access policy waiting for a second
// admin: lines to add and to remove on a base version, why, and what it
// would deny or allow that the base did not.
type PolicyProposal struct{ ent.Schema }

func (PolicyProposal) Mixin() []ent.Mixin { return []ent.Mixin{withID("ppr"), TimeMixin{}} }

func (PolicyProposal) Fields() []ent.Field {
	return []ent.Field{
		field.Int("base_version").NonNegative().Immutable(),
		field.Strings("add_lines").Immutable(),
		field.Strings("remove_lines").Immutable(),
		field.String("reason").NotEmpty().Immutable(),
		field.String("proposed_by").Immutable(),
		field.String("proposed_by_name").Immutable(),
		field.Enum("status").Values("PROPOSED", "APPLIED", "REJECTED", "WITHDRAWN", "SUPERSEDED").Default("PROPOSED"),
		field.String("decided_by").Optional(),
		field.String("decided_by_name").Optional(),
		field.String("decision_reason").Optional(),
		field.Int("applied_version").Optional().Nillable(),
		// The preview as JSON: role → coordinates newly denied and allowed.
		field.Text("preview"),
	}
}

func (PolicyProposal) Indexes() []ent.Index {
	return []ent.Index{index.Fields("status", "base_version")}
}

func (PolicyProposal) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}
