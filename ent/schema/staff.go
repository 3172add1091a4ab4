package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
)

// Staff is a person employed by the hospital: who they are, where and as
// what they work, their professional licence, and their terms of employment.
// Pay and bank details are read only by HR and payroll (and by the member of
// staff themselves), so they are not entgql fields: internal/staffing
// exposes them through types of their own that the policy guards apart.
type Staff struct{ ent.Schema }

func (Staff) Mixin() []ent.Mixin { return []ent.Mixin{withID("stf"), TimeMixin{}} }

func (Staff) Fields() []ent.Field {
	return []ent.Field{
		field.String("given_name").NotEmpty().MaxRuneLen(100),
		field.String("family_name").NotEmpty().MaxRuneLen(100).
			Annotations(entgql.OrderField("FAMILY_NAME")),
		field.Enum("kind").
			Values("DOCTOR", "NURSE", "LAB_TECHNICIAN", "PHARMACIST", "PHARMACY_TECHNICIAN", "RECEPTIONIST",
				"BILLING_CLERK", "HR_OFFICER", "ADMINISTRATOR", "AUDITOR", "ADMINISTRATIVE", "SUPPORT").
			Annotations(entgql.OrderField("KIND")),
		field.String("department_id").Optional(),
		field.String("email").Optional().Nillable().MaxRuneLen(254),
		field.String("phone").Optional().Nillable().MaxRuneLen(40),
		field.Bool("active").Default(true),
		// Why the record was last deactivated; cleared on reactivation.
		field.String("deactivation_reason").Optional().Nillable().MaxRuneLen(500).Annotations(freeText),
		field.String("position").Optional().Nillable().MaxRuneLen(100),
		field.Strings("specialties").Optional(),
		// A licence number is the regulator's: two members of staff never
		// share one. NULLs do not collide, so the unlicensed are many.
		field.String("licence_number").Optional().Nillable().Unique().MaxRuneLen(64).
			Annotations(entgql.Skip(entgql.SkipWhereInput, entgql.SkipOrderField)),
		field.String("licence_issuer").Optional().Nillable().MaxRuneLen(200).
			Annotations(entgql.Skip(entgql.SkipWhereInput, entgql.SkipOrderField)),
		field.Time("licence_expires_on").Optional().Nillable().
			Annotations(entgql.Type("Date"), entgql.Skip(entgql.SkipWhereInput, entgql.SkipOrderField)),
		field.Enum("employment_type").Values("PERMANENT", "CONTRACT", "LOCUM", "TEMPORARY", "INTERN", "VOLUNTEER").
			Optional().Nillable().Annotations(entgql.Skip(entgql.SkipWhereInput, entgql.SkipOrderField)),
		field.Time("start_date").Optional().Nillable().
			Annotations(entgql.Type("Date"), entgql.Skip(entgql.SkipWhereInput, entgql.SkipOrderField)),
		field.Time("end_date").Optional().Nillable().
			Annotations(entgql.Type("Date"), entgql.Skip(entgql.SkipWhereInput, entgql.SkipOrderField)),
		// Pay: a monthly salary or an hourly rate, in minor units.
		field.Enum("pay_basis").Values("MONTHLY", "HOURLY").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		field.Int64("pay_rate").Optional().Nillable().Annotations(entgql.Skip(entgql.SkipAll)),
		// Bank details, encrypted at rest; payroll pays into them.
		field.String("bank_account_holder").Optional().Nillable().Sensitive().Annotations(Encrypted{}, entgql.Skip(entgql.SkipAll)),
		field.String("bank_name").Optional().Nillable().Sensitive().Annotations(Encrypted{}, entgql.Skip(entgql.SkipAll)),
		field.String("bank_account_number").Optional().Nillable().Sensitive().Annotations(Encrypted{}, entgql.Skip(entgql.SkipAll)),
		field.String("bank_branch").Optional().Nillable().Sensitive().Annotations(Encrypted{}, entgql.Skip(entgql.SkipAll)),
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
