package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Ward is an inpatient unit with beds.
type Ward struct{ ent.Schema }

func (Ward) Mixin() []ent.Mixin { return []ent.Mixin{withID("wrd"), TimeMixin{}} }

func (Ward) Fields() []ent.Field {
	return []ent.Field{
		field.String("department_id"),
		field.String("code").NotEmpty().MaxRuneLen(32).Unique().Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(100).Annotations(entgql.OrderField("NAME")),
		field.Text("description").Annotations(freeText).Optional().Nillable(),
	}
}

func (Ward) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("department", Department.Type).Unique().Required().Field("department_id"),
		edge.To("beds", Bed.Type),
	}
}

func (Ward) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Bed is one bed of a ward. Its status moves only through named mutations:
// admission makes it OCCUPIED, discharge or transfer CLEANING, cleaning FREE.
type Bed struct{ ent.Schema }

func (Bed) Mixin() []ent.Mixin { return []ent.Mixin{withID("bed"), TimeMixin{}} }

func (Bed) Fields() []ent.Field {
	return []ent.Field{
		field.String("ward_id"),
		field.String("code").NotEmpty().MaxRuneLen(32).Annotations(entgql.OrderField("CODE")),
		field.Enum("status").Values("FREE", "OCCUPIED", "CLEANING", "OUT_OF_SERVICE").Default("FREE").
			Annotations(entgql.OrderField("STATUS")),
		field.Time("status_changed_at").Default(nowUTC).
			Annotations(entgql.Skip(entgql.SkipWhereInput)),
		field.String("note").Annotations(freeText).Optional().Nillable().MaxRuneLen(200),
	}
}

func (Bed) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("ward", Ward.Type).Ref("beds").Field("ward_id").Unique().Required(),
		edge.To("admissions", Admission.Type).Annotations(entgql.RelayConnection()),
	}
}

func (Bed) Indexes() []ent.Index {
	return []ent.Index{index.Fields("ward_id", "code").Unique()}
}

func (Bed) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Admission is a patient's inpatient stay. The partial unique indexes are
// the database's own guarantee of one current stay per patient and one
// current patient per bed, beside the locks internal/admission takes.
type Admission struct{ ent.Schema }

func (Admission) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("adm"), TimeMixin{}, ownedByPatient("admissions")}
}

func (Admission) Fields() []ent.Field {
	return []ent.Field{
		field.String("bed_id").Comment("The current bed; the last one after discharge."),
		field.String("attending_id"),
		field.Time("admitted_at").Annotations(entgql.OrderField("ADMITTED_AT")),
		field.String("reason").Annotations(freeText).NotEmpty().MaxRuneLen(500),
		field.Enum("admission_type").Values("ELECTIVE", "EMERGENCY", "MATERNITY", "TRANSFER_IN"),
		field.Enum("status").Values("ADMITTED", "DISCHARGED").Default("ADMITTED").Annotations(entgql.OrderField("STATUS")),
		field.Time("discharged_at").Optional().Nillable(),
		field.Text("discharge_summary").Annotations(encrypted...).Optional().Nillable(),
		field.Enum("disposition").Values("HOME", "TRANSFERRED", "DECEASED", "AGAINST_MEDICAL_ADVICE", "OTHER").Optional().Nillable(),
	}
}

func (Admission) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("bed", Bed.Type).Ref("admissions").Field("bed_id").Unique().Required(),
		edge.To("attending", Staff.Type).Unique().Required().Field("attending_id"),
		edge.To("bed_history", BedAssignment.Type),
		edge.To("encounter", Encounter.Type).Unique(),
	}
}

func (Admission) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("patient_id").Unique().StorageKey("admissions_one_current_per_patient").
			Annotations(entsql.IndexWhere("status = 'ADMITTED'")),
		index.Fields("bed_id").Unique().StorageKey("admissions_one_current_per_bed").
			Annotations(entsql.IndexWhere("status = 'ADMITTED'")),
		// Row scope asks, per row it keeps, whether its patient is one the
		// clinician attends (internal/authz).
		index.Fields("patient_id", "attending_id"),
	}
}

func (Admission) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// BedAssignment is one period of an admission in one bed: transfers keep
// the history.
type BedAssignment struct{ ent.Schema }

func (BedAssignment) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("bas"), ownedByPatient("bed_assignments")}
}

func (BedAssignment) Fields() []ent.Field {
	return []ent.Field{
		field.String("admission_id"),
		field.String("bed_id"),
		field.Time("from_at"),
		field.Time("to_at").Optional().Nillable(),
		field.String("reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
	}
}

func (BedAssignment) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("admission", Admission.Type).Ref("bed_history").Field("admission_id").Unique().Required(),
		edge.To("bed", Bed.Type).Unique().Required().Field("bed_id"),
	}
}
