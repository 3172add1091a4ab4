package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Staff is a person employed by the hospital. The staff issue extends it with
// contracts, rosters and payroll; here it is what scheduling needs.
type Staff struct{ ent.Schema }

func (Staff) Mixin() []ent.Mixin { return []ent.Mixin{withID("stf"), TimeMixin{}} }

func (Staff) Fields() []ent.Field {
	return []ent.Field{
		field.String("given_name").NotEmpty().MaxRuneLen(100),
		field.String("family_name").NotEmpty().MaxRuneLen(100).
			Annotations(entgql.OrderField("FAMILY_NAME")),
		field.Enum("kind").
			Values("DOCTOR", "NURSE", "LAB_TECHNICIAN", "PHARMACIST", "PHARMACY_TECHNICIAN", "RECEPTIONIST",
				"BILLING_CLERK", "HR_OFFICER", "ADMINISTRATOR", "AUDITOR").
			Annotations(entgql.OrderField("KIND")),
		field.String("department_id").Optional(),
		field.String("email").Optional().Nillable().MaxRuneLen(254),
		field.String("phone").Optional().Nillable().MaxRuneLen(40),
		field.Bool("active").Default(true),
	}
}

func (Staff) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("department", Department.Type).Ref("staff").Field("department_id").Unique(),
		edge.To("appointments", Appointment.Type).Annotations(entgql.RelayConnection()),
		edge.From("user", User.Type).Ref("staff").Unique(),
		edge.To("availability", ProviderAvailability.Type),
		edge.To("time_off", ProviderTimeOff.Type),
		// The inverse that makes LabResult.notify many-to-many; patient
		// data is reached from the patient, not from a member of staff.
		edge.From("critical_results_to_hear", LabResult.Type).Ref("notify").Annotations(entgql.Skip()),
	}
}

func (Staff) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}
