package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// ClinicalNote is a note signed by its author. A signed note is never
// edited: an amendment is a new note replacing it, and the replaced one is
// kept, marked AMENDED. Patients never see drafts.
type ClinicalNote struct{ ent.Schema }

func (ClinicalNote) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("not"), TimeMixin{}, ownedByPatient("notes")}
}

func (ClinicalNote) Fields() []ent.Field {
	return []ent.Field{
		field.String("encounter_id").Optional().Nillable(),
		field.Enum("type").Values("PROGRESS", "ADMISSION", "DISCHARGE", "CONSULT"),
		field.Enum("status").Values("DRAFT", "SIGNED", "AMENDED").Default("DRAFT"),
		field.Text("text").Annotations(encrypted...).NotEmpty(),
		field.String("author_id"),
		field.Time("signed_at").Optional().Nillable(),
		field.String("replaces_id").Optional().Nillable().Unique(),
		field.String("amend_reason").Optional().Nillable().MaxRuneLen(500),
	}
}

func (ClinicalNote) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("encounter", Encounter.Type).Ref("notes").Field("encounter_id").Unique(),
		edge.To("author", Staff.Type).Unique().Required().Field("author_id"),
		edge.To("replaced_by", ClinicalNote.Type).Unique().
			From("replaces").Field("replaces_id").Unique(),
	}
}

func (ClinicalNote) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
