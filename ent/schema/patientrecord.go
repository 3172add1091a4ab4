package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// PatientContact is a next of kin or emergency contact.
type PatientContact struct{ ent.Schema }

func (PatientContact) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("pct"), TimeMixin{}, ownedByPatient("contacts")}
}

func (PatientContact) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxRuneLen(200),
		field.String("relationship").NotEmpty().MaxRuneLen(50),
		field.String("phone").Optional().Nillable().Annotations(encrypted...),
		field.String("email").Optional().Nillable().Annotations(encrypted...),
		field.String("address").Optional().Nillable().Annotations(encrypted...),
		field.Bool("next_of_kin").Default(false),
		field.Bool("emergency_contact").Default(false),
	}
}

// PatientIdentifier is an identifier a patient has in another system: a
// passport, a national insurance number, another hospital's MRN.
type PatientIdentifier struct{ ent.Schema }

func (PatientIdentifier) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("pid"), TimeMixin{}, ownedByPatient("identifiers")}
}

func (PatientIdentifier) Fields() []ent.Field {
	return []ent.Field{
		field.String("system").NotEmpty().MaxRuneLen(50).Comment("Issuer of the identifier, e.g. PASSPORT, NHIF, or another hospital's code."),
		field.String("value").NotEmpty().Annotations(encryptedIndexed("value_bidx")...),
		blindIndex("value_bidx"),
	}
}

func (PatientIdentifier) Indexes() []ent.Index {
	return []ent.Index{index.Fields("system", "value_bidx").Unique()}
}

// InsurancePolicy is a patient's cover with a payer; billing claims against it.
type InsurancePolicy struct{ ent.Schema }

func (InsurancePolicy) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("ins"), TimeMixin{}, ownedByPatient("insurance_policies")}
}

func (InsurancePolicy) Fields() []ent.Field {
	return []ent.Field{
		field.String("payer").NotEmpty().MaxRuneLen(200),
		field.String("member_number").NotEmpty().MaxRuneLen(64),
		field.String("plan_name").Optional().Nillable().MaxRuneLen(200),
		field.Time("valid_from").Annotations(entgql.Type("Date")),
		field.Time("valid_to").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.Int("priority").Default(1).Positive().Comment("1 for the primary policy, 2 for the secondary, …"),
		field.Enum("status").Values("ACTIVE", "INACTIVE").Default("ACTIVE"),
		field.String("plan_id").Optional().Nillable().
			Comment("The plan whose rules split the patient's bills; payer stays the text the patient gave."),
	}
}

func (InsurancePolicy) Edges() []ent.Edge {
	return []ent.Edge{edge.To("plan", InsurancePlan.Type).Unique().Field("plan_id")}
}

// HistoryItem is part of a patient's medical history: a past condition, a
// surgery, family or social history.
type HistoryItem struct{ ent.Schema }

func (HistoryItem) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("hst"), TimeMixin{}, ownedByPatient("history")}
}

func (HistoryItem) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("category").Values("PAST_CONDITION", "SURGERY", "FAMILY", "SOCIAL"),
		field.Text("description").Annotations(encrypted...).NotEmpty(),
		field.Time("date").Optional().Nillable().Annotations(entgql.Type("Date")),
		field.String("relation").Optional().Nillable().MaxRuneLen(50).Comment("For family history: whose condition it is."),
		field.Enum("status").Values("ACTIVE", "ENTERED_IN_ERROR").Default("ACTIVE"),
		field.String("recorded_by_id").Optional().Nillable(),
	}
}

func (HistoryItem) Edges() []ent.Edge {
	return []ent.Edge{edge.To("recorded_by", Staff.Type).Unique().Field("recorded_by_id")}
}
