package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Referral asks another provider or department to see the patient.
type Referral struct{ ent.Schema }

func (Referral) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("ref"), TimeMixin{}, ownedByPatient("referrals")}
}

func (Referral) Fields() []ent.Field {
	return []ent.Field{
		field.String("from_staff_id"),
		field.String("from_department_id"),
		field.String("to_staff_id").Optional().Nillable(),
		field.String("to_department_id"),
		field.String("encounter_id").Optional().Nillable(),
		field.Text("reason").Annotations(encrypted...).NotEmpty(),
		field.Enum("priority").Values("ROUTINE", "URGENT").Default("ROUTINE"),
		field.Enum("status").Values("REQUESTED", "ACCEPTED", "DECLINED", "COMPLETED", "CANCELLED").Default("REQUESTED").
			Annotations(entgql.OrderField("STATUS")),
		field.Time("responded_at").Optional().Nillable(),
		field.String("response_note").Annotations(freeText).Optional().Nillable().MaxRuneLen(1000),
	}
}

func (Referral) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("from_staff", Staff.Type).Unique().Required().Field("from_staff_id"),
		edge.To("from_department", Department.Type).Unique().Required().Field("from_department_id"),
		edge.To("to_staff", Staff.Type).Unique().Field("to_staff_id"),
		edge.To("to_department", Department.Type).Unique().Required().Field("to_department_id"),
		edge.To("encounter", Encounter.Type).Unique().Field("encounter_id"),
	}
}

func (Referral) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// CareTeamMember is a member of staff caring for a patient, and in what role.
type CareTeamMember struct{ ent.Schema }

func (CareTeamMember) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("ctm"), TimeMixin{}, ownedByPatient("care_team")}
}

func (CareTeamMember) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id"),
		field.Enum("role").Values("ATTENDING", "PRIMARY_CARE", "NURSE", "CONSULTANT", "PHARMACIST", "OTHER"),
		field.Time("since"),
		field.Time("until").Optional().Nillable(),
	}
}

// Row scope looks up the patients a member of staff cares for (internal/authz).
// staff_id lists a clinician's patients; patient_id, staff_id answers row
// scope's question, per row it keeps, whether the clinician is on its
// patient's care team (internal/authz).
func (CareTeamMember) Indexes() []ent.Index {
	return []ent.Index{index.Fields("staff_id"), index.Fields("patient_id", "staff_id")}
}

func (Referral) Indexes() []ent.Index {
	// Row scope: the patients a clinician referred or was referred (internal/authz).
	return []ent.Index{index.Fields("from_staff_id"), index.Fields("to_staff_id"), index.Fields("to_department_id")}
}

func (CareTeamMember) Edges() []ent.Edge {
	return []ent.Edge{edge.To("staff", Staff.Type).Unique().Required().Field("staff_id")}
}
