package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// PaymentCheckout is a patient's payment through a payment provider, from
// the moment the app starts it until the provider confirms or fails it. The
// amount and the invoice are fixed here when it starts: the provider's
// callback names the checkout and its own transaction and says whether it
// succeeded, never what was paid for, so a forged or altered callback body
// cannot redirect or inflate a payment.
type PaymentCheckout struct{ ent.Schema }

func (PaymentCheckout) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("pck"), TimeMixin{}, ownedByPatient("payment_checkouts")}
}

func (PaymentCheckout) Fields() []ent.Field {
	return []ent.Field{
		field.String("invoice_id").Immutable(),
		field.Int64("amount").Positive().Immutable().Annotations(entgql.Type("Money")),
		field.Enum("method").Values("CARD", "MOBILE_MONEY").Immutable(),
		field.String("provider").NotEmpty().MaxRuneLen(40).Immutable(),
		field.Enum("status").Values("PENDING", "SUCCEEDED", "FAILED").Default("PENDING"),
		field.String("provider_session_id").Optional().Nillable().MaxRuneLen(200).
			Comment("The provider's name for the checkout session."),
		field.String("redirect_url").Optional().Nillable().MaxRuneLen(2000).
			Comment("Where the app sends the patient to pay, when the provider has a page."),
		field.String("instructions").Optional().Nillable().MaxRuneLen(1000).
			Annotations(freeText).
			Comment("What the patient does to pay, when the provider has no page (a mobile-money prompt)."),
		field.String("provider_reference").Optional().Nillable().MaxRuneLen(100).
			Comment("The provider's transaction, from the first callback that named one; no other may settle the checkout."),
		field.String("payment_id").Optional().Nillable().
			Comment("The payment recorded when the provider confirmed."),
		field.Time("completed_at").Optional().Nillable(),
		field.String("started_by_id").Immutable().
			Comment("The user who started it."),
	}
}

func (PaymentCheckout) Indexes() []ent.Index {
	// One transaction of a provider confirms one checkout: a reference
	// another checkout already claimed is refused, not shared.
	return []ent.Index{index.Fields("invoice_id"), index.Fields("provider", "provider_reference").Unique()}
}
