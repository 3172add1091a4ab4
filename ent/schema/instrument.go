package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// LabInstrument is an analyzer that sends results as HL7 v2 ORU^R01
// messages. It is not a person: the results it sends wait, ENTERED, for a
// lab technician to verify them.
type LabInstrument struct{ ent.Schema }

func (LabInstrument) Mixin() []ent.Mixin { return []ent.Mixin{withID("lin"), TimeMixin{}} }

func (LabInstrument) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().Unique().MaxRuneLen(100).
			Annotations(entgql.OrderField("NAME")),
		field.String("sending_application").NotEmpty().MaxRuneLen(180).
			Comment("MSH-3 of its messages, which with MSH-4 names the sender."),
		field.String("sending_facility").Default("").MaxRuneLen(180).
			Comment("MSH-4 of its messages; empty when it sends none."),
		field.Enum("dialect").Values("GENERIC", "SYSMEX", "COBAS").Default("GENERIC").
			Comment("Where its OBX-3 carries the test code: SYSMEX in the fourth component (^^^WBC^1), the others in the first."),
		field.Strings("code_map").Optional().
			Comment("The instrument's own test codes, as INSTRUMENT=LOINC (WBC=6690-2); a code not listed is taken as a LOINC code."),
		field.String("allowed_address").Optional().Nillable().MaxRuneLen(50).
			Comment("For MLLP, which has no credentials: the address or network (CIDR) the instrument connects from; empty: any on the listener."),
		field.Bool("active").Default(true).Comment("An inactive instrument's messages are refused."),
		field.String("api_key_id").Optional().Nillable().Unique().
			Comment("The key it posts over HTTP with (role lab_instrument)."),
	}
}

func (LabInstrument) Edges() []ent.Edge {
	return []ent.Edge{
		// Not navigable in the API: the key is the administrator's business
		// (apiKeys), and its ID is enough to revoke it.
		edge.To("api_key", APIKey.Type).Unique().Field("api_key_id").Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (LabInstrument) Indexes() []ent.Index {
	return []ent.Index{index.Fields("sending_application", "sending_facility").Unique()}
}

func (LabInstrument) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// InstrumentMessage is one HL7 v2 message an instrument sent, kept with the
// acknowledgement it was answered with: a repeated control ID gets that
// acknowledgement again, and one that could not be entered waits for a lab
// technician to resolve it.
type InstrumentMessage struct{ ent.Schema }

func (InstrumentMessage) Mixin() []ent.Mixin { return []ent.Mixin{withID("ims"), TimeMixin{}} }

func (InstrumentMessage) Fields() []ent.Field {
	return []ent.Field{
		field.String("instrument_id").Immutable(),
		field.String("control_id").Optional().Nillable().Immutable().MaxRuneLen(199).
			Comment("MSH-10; empty when the message was too broken to read it."),
		field.String("message_type").Optional().Nillable().Immutable().MaxRuneLen(40).
			Comment("MSH-9, e.g. ORU^R01."),
		field.Enum("transport").Values("HTTP", "MLLP").Immutable(),
		field.Text("raw").Immutable().Annotations(freeText).
			Comment("The message as received; it holds patient data."),
		field.Enum("status").Values("RECEIVED", "PROCESSED", "UNMATCHED", "MALFORMED", "RESOLVED", "DISCARDED").
			Annotations(entgql.OrderField("STATUS")).
			Comment("UNMATCHED and MALFORMED wait for a lab technician: RESOLVED once re-processed, DISCARDED with a reason."),
		field.String("error").Optional().Nillable().MaxRuneLen(1000).Annotations(freeText).
			Comment("Why it was not entered."),
		field.Text("ack").Annotations(entgql.Skip(entgql.SkipWhereInput)).
			Comment("The acknowledgement it was answered with; a duplicate is answered with it again."),
		field.Time("received_at").Immutable().Annotations(entgql.OrderField("RECEIVED_AT")),
		field.String("resolved_by_id").Optional().Nillable(),
		field.Time("resolved_at").Optional().Nillable(),
		field.String("resolution_note").Optional().Nillable().MaxRuneLen(500).Annotations(freeText),
	}
}

func (InstrumentMessage) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("instrument", LabInstrument.Type).Unique().Required().Immutable().Field("instrument_id"),
		edge.To("resolved_by", Staff.Type).Unique().Field("resolved_by_id"),
	}
}

func (InstrumentMessage) Indexes() []ent.Index {
	// One row per (sender, MSH-10): the database, not a read before the
	// write, is what makes a racing duplicate lose.
	return []ent.Index{index.Fields("instrument_id", "control_id").Unique(), index.Fields("status")}
}

func (InstrumentMessage) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
