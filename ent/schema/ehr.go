package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Encounter is a contact between a patient and the hospital: an outpatient
// visit (from an appointment), an inpatient stay (from an admission) or an
// emergency. Clinical items name the encounter they came from.
type Encounter struct{ ent.Schema }

func (Encounter) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("enc"), TimeMixin{}, ownedByPatient("encounters")}
}

func (Encounter) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("type").Values("OUTPATIENT", "INPATIENT", "EMERGENCY"),
		field.Enum("status").Values("IN_PROGRESS", "FINISHED", "CANCELLED").Default("IN_PROGRESS"),
		field.String("appointment_id").Optional().Nillable().Unique(),
		field.String("admission_id").Optional().Nillable().Unique(),
		field.String("provider_id").Optional().Nillable(),
		field.String("department_id").Optional().Nillable(),
		field.Time("started_at").Annotations(entgql.OrderField("STARTED_AT")),
		field.Time("ended_at").Optional().Nillable(),
		field.String("reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.String("cancel_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500).
			Comment("Why the encounter was cancelled rather than finished."),
	}
}

func (Encounter) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("appointment", Appointment.Type).Ref("encounter").Field("appointment_id").Unique(),
		edge.From("admission", Admission.Type).Ref("encounter").Field("admission_id").Unique(),
		edge.To("provider", Staff.Type).Unique().Field("provider_id"),
		edge.To("department", Department.Type).Unique().Field("department_id"),
		edge.To("problems", Problem.Type),
		edge.To("observations", Observation.Type),
		edge.To("medication_orders", MedicationOrder.Type),
		edge.To("notes", ClinicalNote.Type),
		edge.To("lab_orders", LabOrder.Type),
	}
}

func (Encounter) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Icd10Code is an entry of the ICD-10 catalog diagnoses are coded from.
type Icd10Code struct{ ent.Schema }

func (Icd10Code) Mixin() []ent.Mixin { return []ent.Mixin{withID("icd")} }

func (Icd10Code) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().MaxRuneLen(8).Unique().Annotations(entgql.OrderField("CODE")),
		field.String("display").NotEmpty().MaxRuneLen(300).Annotations(entgql.OrderField("DISPLAY")),
	}
}

func (Icd10Code) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField("icd10Codes"), entgql.RelayConnection()}
}

// Problem is a diagnosis or problem on the patient's problem list.
type Problem struct{ ent.Schema }

func (Problem) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("prb"), TimeMixin{}, ownedByPatient("problems")}
}

func (Problem) Fields() []ent.Field {
	return []ent.Field{
		field.String("encounter_id").Optional().Nillable(),
		field.String("icd10_code").NotEmpty().MaxRuneLen(8),
		field.String("display").NotEmpty().MaxRuneLen(300),
		field.Time("onset_date").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.Enum("status").Values("ACTIVE", "RESOLVED", "ENTERED_IN_ERROR").Default("ACTIVE"),
		field.Time("resolved_date").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.Text("note").Annotations(freeText).Optional().Nillable(),
		field.String("recorded_by_id").Optional().Nillable(),
	}
}

func (Problem) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("encounter", Encounter.Type).Ref("problems").Field("encounter_id").Unique(),
		edge.To("recorded_by", Staff.Type).Unique().Field("recorded_by_id"),
	}
}

// Allergy is an allergy or intolerance. Prescribing checks the active ones.
type Allergy struct{ ent.Schema }

func (Allergy) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("alg"), TimeMixin{}, ownedByPatient("allergies")}
}

func (Allergy) Fields() []ent.Field {
	return []ent.Field{
		field.String("substance").NotEmpty().MaxRuneLen(200),
		field.Enum("category").Values("DRUG", "FOOD", "ENVIRONMENT", "OTHER"),
		field.String("reaction").Annotations(freeText).Optional().Nillable().MaxRuneLen(300),
		field.Enum("severity").Values("MILD", "MODERATE", "SEVERE", "LIFE_THREATENING"),
		field.Enum("status").Values("ACTIVE", "INACTIVE", "ENTERED_IN_ERROR").Default("ACTIVE"),
		field.Time("onset_date").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.String("recorded_by_id").Optional().Nillable(),
	}
}

func (Allergy) Edges() []ent.Edge {
	return []ent.Edge{edge.To("recorded_by", Staff.Type).Unique().Field("recorded_by_id")}
}

// Observation is a measured value — a vital sign or another LOINC-coded
// observation. It is never edited: an amendment is a new observation that
// replaces it, and the replaced one stays, marked AMENDED.
type Observation struct{ ent.Schema }

func (Observation) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("obs"), ownedByPatient("observations")}
}

func (Observation) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").Immutable().Default(nowUTC),
		field.String("encounter_id").Optional().Nillable(),
		field.String("code").NotEmpty().MaxRuneLen(16).Comment("LOINC code"),
		field.String("display").NotEmpty().MaxRuneLen(200),
		field.Float("value"),
		field.String("unit").MaxRuneLen(20).Comment("UCUM unit"),
		field.Time("effective_at").Annotations(entgql.OrderField("EFFECTIVE_AT")),
		field.Enum("status").Values("FINAL", "AMENDED", "ENTERED_IN_ERROR").Default("FINAL"),
		field.String("replaces_id").Optional().Nillable().Unique(),
		field.String("amend_reason").Optional().Nillable().MaxRuneLen(500),
		field.String("recorded_by_id").Optional().Nillable(),
	}
}

func (Observation) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("encounter", Encounter.Type).Ref("observations").Field("encounter_id").Unique(),
		edge.To("replaced_by", Observation.Type).Unique().From("replaces").Field("replaces_id").Unique(),
		edge.To("recorded_by", Staff.Type).Unique().Field("recorded_by_id"),
	}
}

func (Observation) Indexes() []ent.Index {
	return []ent.Index{index.Fields("patient_id", "code", "effective_at")}
}

func (Observation) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
