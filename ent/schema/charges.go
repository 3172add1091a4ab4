package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// tariffCategories are the kinds of billable service; the insurance rules
// cover by category, so the set is closed.
var tariffCategories = []string{"CONSULTATION", "PROCEDURE", "LAB", "DRUG", "ITEM", "BED_DAY"}

// Tariff is one dated price of a billable service: a row of the price list.
// A price change is a new row with a later effective_from, never an update,
// so that a charge can always be explained by the row that priced it.
type Tariff struct{ ent.Schema }

func (Tariff) Mixin() []ent.Mixin { return []ent.Mixin{withID("trf"), TimeMixin{}} }

func (Tariff) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().MaxRuneLen(40).Immutable().
			Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(200).Immutable().
			Annotations(entgql.OrderField("NAME")),
		field.Enum("category").Values(tariffCategories...).Immutable(),
		field.String("ref_id").Optional().Nillable().Immutable().
			Comment("What the service is of, for automatic capture: the department of a consultation, the lab test, the drug, the ward of a bed-day."),
		field.String("payer_id").Optional().Nillable().Immutable().
			Comment("Empty: the default price, for every payer without a price of its own."),
		field.Int64("price").NonNegative().Immutable().
			Annotations(entgql.Type("Money")),
		field.Time("effective_from").Immutable().
			Annotations(entgql.OrderField("EFFECTIVE_FROM")),
		field.String("created_by_id").Optional().Nillable().Immutable().
			Comment("Empty for the seeded price list."),
	}
}

func (Tariff) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("code", "effective_from"),
		index.Fields("category", "ref_id"),
	}
}

func (Tariff) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// Charge is one billable thing done for a patient, priced when it was
// captured. It is never deleted: a mistake is reversed with a reason, and a
// pharmacy return is a negative charge of its own.
type Charge struct{ ent.Schema }

func (Charge) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("chg"), TimeMixin{}, ownedByPatient("charges")}
}

func (Charge) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("source_type").Values("ENCOUNTER", "LAB_ITEM", "DISPENSING", "DISPENSING_RETURN", "BED_DAY", "MANUAL").Immutable(),
		field.String("source_id").NotEmpty().Immutable().
			Comment("The row the charge is for (encounter, lab order item, dispensing, admission), or the event of a return."),
		field.String("day").Default("").Immutable().
			Comment("The calendar day of a bed-day charge (YYYY-MM-DD); empty otherwise."),
		field.String("encounter_id").Optional().Nillable().Immutable(),
		field.String("admission_id").Optional().Nillable().Immutable(),
		field.String("tariff_id").Optional().Nillable().Immutable(),
		field.String("code").NotEmpty().MaxRuneLen(40).Immutable(),
		field.String("description").NotEmpty().MaxRuneLen(200).Immutable(),
		field.Enum("category").Values(tariffCategories...).Immutable(),
		field.Int("quantity").Immutable().Comment("Negative for a return."),
		field.Int64("unit_price").NonNegative().Immutable().Annotations(entgql.Type("Money")),
		field.Int64("amount").Immutable().Annotations(entgql.Type("Money")),
		field.Time("service_at").Immutable().Annotations(entgql.OrderField("SERVICE_AT")),
		field.String("created_by_id").Optional().Nillable().Immutable().
			Comment("The clerk of a manual charge; empty for captured ones."),
		field.Enum("status").Values("ACTIVE", "REVERSED").Default("ACTIVE"),
		field.String("reversal_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.String("reversed_by_id").Optional().Nillable(),
		field.Time("reversed_at").Optional().Nillable(),
		field.Int64("payer_share").Default(0).NonNegative().Annotations(entgql.Type("Money")).
			Comment("The part the patient's insurance pays, from the split when the charge was invoiced; 0 while unbilled."),
		field.String("department_id").Optional().Nillable().Immutable().
			Comment("The department whose revenue the charge is, when known (consultations, bed-days)."),
		field.String("invoice_id").Optional().Nillable().
			Comment("The invoice the charge is billed on; empty while unbilled."),
	}
}

func (Charge) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("tariff", Tariff.Type).Unique().Field("tariff_id").Immutable(),
		edge.From("invoice", Invoice.Type).Ref("lines").Unique().Field("invoice_id"),
	}
}

func (Charge) Indexes() []ent.Index {
	return []ent.Index{
		// What makes capture exactly-once: a redelivered event finds its
		// charge already there.
		index.Fields("source_type", "source_id", "day").Unique(),
		index.Fields("patient_id", "status"),
	}
}

func (Charge) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// BillingCursor is how far a charge consumer has read a topic: the ID of
// the last event it applied, saved in the transaction that applied it.
type BillingCursor struct{ ent.Schema }

func (BillingCursor) Mixin() []ent.Mixin { return []ent.Mixin{withID("bcr")} }

func (BillingCursor) Fields() []ent.Field {
	return []ent.Field{
		field.String("topic").NotEmpty().Unique(),
		field.String("after").Default(""),
	}
}

func (BillingCursor) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip()}
}

// Invoice bills a patient's unbilled charges, of one encounter or of a
// period. A DRAFT can still change; an ISSUED one has its number and is
// never edited: a mistake is voided (the charges go back to unbilled) and a
// new invoice issued.
type Invoice struct{ ent.Schema }

func (Invoice) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("inv"), TimeMixin{}, ownedByPatient("invoices")}
}

func (Invoice) Fields() []ent.Field {
	return []ent.Field{
		field.String("number").Optional().Nillable().Unique().
			Comment("INV-<year>-<six digits>, gap-free per year, given at issue.").
			Annotations(entgql.OrderField("NUMBER")),
		field.String("encounter_id").Optional().Nillable().Immutable(),
		field.Time("period_from").Optional().Nillable().Immutable(),
		field.Time("period_to").Optional().Nillable().Immutable(),
		field.Enum("status").Values("DRAFT", "ISSUED", "PARTIALLY_PAID", "PAID", "VOID").Default("DRAFT").
			Annotations(entgql.OrderField("STATUS")),
		field.Int64("subtotal").Default(0).Annotations(entgql.Type("Money")),
		field.Int64("discount_total").Default(0).NonNegative().Annotations(entgql.Type("Money")),
		field.Int("tax_rate_basis_points").Default(0).NonNegative().
			Comment("The tax rate in force when the invoice was made, in hundredths of a percent."),
		field.Int64("tax_total").Default(0).Annotations(entgql.Type("Money")),
		field.Int64("total").Default(0).Annotations(entgql.Type("Money")),
		field.Int64("paid").Default(0).Annotations(entgql.Type("Money")).
			Comment("All money allocated to the invoice: the patient's payments and the payers' remittances."),
		field.Int64("payer_total").Default(0).NonNegative().Annotations(entgql.Type("Money")).
			Comment("The payers' share of the lines, by the patient's insurance rules."),
		field.Int64("patient_total").Default(0).Annotations(entgql.Type("Money")).
			Comment("What the patient owes: the lines less the payers' share and the discounts, plus tax."),
		field.Int64("patient_paid").Default(0).NonNegative().Annotations(entgql.Type("Money")),
		field.Int64("payer_paid").Default(0).NonNegative().Annotations(entgql.Type("Money")),
		field.Int64("payer_adjusted").Default(0).NonNegative().Annotations(entgql.Type("Money")).
			Comment("What the payers will not pay and the hospital wrote off (contractual adjustments)."),
		field.Int64("moved_to_patient").Default(0).NonNegative().Annotations(entgql.Type("Money")).
			Comment("What the payers refused as the patient's responsibility, added to what the patient owes."),
		field.Int64("written_off").Default(0).NonNegative().Annotations(entgql.Type("Money")).
			Comment("The patient's balance written off as bad debt."),
		field.String("created_by_id"),
		field.Time("issued_at").Optional().Nillable().Annotations(entgql.OrderField("ISSUED_AT")),
		field.String("issued_by_id").Optional().Nillable(),
		field.String("void_reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.Time("voided_at").Optional().Nillable(),
		field.String("voided_by_id").Optional().Nillable(),
	}
}

func (Invoice) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("lines", Charge.Type).Annotations(entgql.Skip(entgql.SkipWhereInput)),
		edge.To("discounts", InvoiceDiscount.Type),
		edge.To("allocations", PaymentAllocation.Type).Annotations(entgql.Skip(entgql.SkipWhereInput)),
		edge.To("adjustments", InvoiceAdjustment.Type).Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (Invoice) Indexes() []ent.Index {
	return []ent.Index{index.Fields("patient_id", "status")}
}

func (Invoice) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// InvoiceDiscount is a discount on a draft invoice: asked for by one person
// with a reason, and counted only once someone else with the authority has
// approved it.
type InvoiceDiscount struct{ ent.Schema }

func (InvoiceDiscount) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("ids"), TimeMixin{}, ownedByPatient("invoice_discounts")}
}

func (InvoiceDiscount) Fields() []ent.Field {
	return []ent.Field{
		field.String("invoice_id").Immutable(),
		field.Int64("amount").Positive().Immutable().Annotations(entgql.Type("Money")),
		field.String("reason").Annotations(freeText).NotEmpty().MaxRuneLen(500).Immutable(),
		field.String("requested_by_id").Immutable(),
		field.Enum("status").Values("REQUESTED", "APPROVED").Default("REQUESTED"),
		field.String("approved_by_id").Optional().Nillable(),
		field.Time("approved_at").Optional().Nillable(),
	}
}

func (InvoiceDiscount) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("invoice", Invoice.Type).Ref("discounts").Field("invoice_id").Unique().Required().Immutable(),
	}
}

// InvoiceCounter is the last invoice number given in a year. It is read
// and advanced in the transaction that issues, so a rolled-back issue gives
// its number back and the sequence has no gap.
type InvoiceCounter struct{ ent.Schema }

func (InvoiceCounter) Mixin() []ent.Mixin { return []ent.Mixin{withID("inc")} }

func (InvoiceCounter) Fields() []ent.Field {
	return []ent.Field{
		field.Int("year").Unique(),
		field.Int("last").Default(0),
	}
}

func (InvoiceCounter) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip()}
}

// Payment is money received from or for a patient: allocated to an
// invoice, held as the patient's credit (a deposit, or an overpayment the
// cashier chose to keep), or both. It is never edited.
type Payment struct{ ent.Schema }

func (Payment) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("pmt"), TimeMixin{}, ownedByPatient("payments")}
}

func (Payment) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("method").Values("CASH", "CARD", "BANK_TRANSFER", "MOBILE_MONEY", "INSURANCE_REMITTANCE", "CREDIT").Immutable().
			Comment("CREDIT is the patient's credit applied to invoices: no money moves."),
		field.Int64("amount").Positive().Immutable().Annotations(entgql.Type("Money")),
		field.String("claim_id").Optional().Nillable().Immutable().
			Comment("The claim an insurance remittance pays."),
		field.Int64("allocated").Default(0).NonNegative().Immutable().Annotations(entgql.Type("Money")).
			Comment("The part of the amount that went to invoices (see allocations)."),
		field.Int64("credited").Default(0).NonNegative().Immutable().Annotations(entgql.Type("Money")).
			Comment("The part held as the patient's credit."),
		field.String("idempotency_key").NotEmpty().MaxRuneLen(100).Immutable().Unique().
			Comment("The client's key: a retried payment with the same key is recorded once."),
		field.String("reference").Optional().Nillable().MaxRuneLen(100).Immutable().
			Comment("The card slip, transfer or mobile-money reference."),
		field.String("recorded_by_id").Immutable(),
		field.Time("received_at").Immutable().Annotations(entgql.OrderField("RECEIVED_AT")),
	}
}

func (Payment) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("allocations", PaymentAllocation.Type).Annotations(entgql.Skip(entgql.SkipWhereInput)),
		edge.To("refunds", Refund.Type).Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (Payment) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// PaymentAllocation is the part of a payment that went to one invoice. A
// payment goes to several invoices with one allocation each; a refund of
// money paid on an invoice lowers its allocation's refunded amount, never
// the allocation itself.
type PaymentAllocation struct{ ent.Schema }

func (PaymentAllocation) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("pal"), TimeMixin{}, ownedByPatient("payment_allocations")}
}

func (PaymentAllocation) Fields() []ent.Field {
	return []ent.Field{
		field.String("payment_id").Immutable(),
		field.String("invoice_id").Immutable(),
		field.Int64("amount").Positive().Immutable().Annotations(entgql.Type("Money")),
		field.Int64("refunded").Default(0).NonNegative().Annotations(entgql.Type("Money")),
	}
}

func (PaymentAllocation) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("payment", Payment.Type).Ref("allocations").Field("payment_id").Unique().Required().Immutable(),
		edge.From("invoice", Invoice.Type).Ref("allocations").Field("invoice_id").Unique().Required().Immutable(),
	}
}

func (PaymentAllocation) Indexes() []ent.Index {
	return []ent.Index{index.Fields("payment_id", "invoice_id").Unique(), index.Fields("invoice_id")}
}

// Refund is money given back to a patient: from their credit, or from what
// a payment paid on an invoice (which then owes it again). It is never
// edited; a client retrying with the same idempotency key refunds once.
type Refund struct{ ent.Schema }

func (Refund) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("rfd"), TimeMixin{}, ownedByPatient("refunds")}
}

func (Refund) Fields() []ent.Field {
	return []ent.Field{
		field.String("payment_id").Optional().Nillable().Immutable().
			Comment("The payment refunded; empty for a refund of the patient's credit."),
		field.String("invoice_id").Optional().Nillable().Immutable(),
		field.Enum("method").Values("CASH", "CARD", "BANK_TRANSFER", "MOBILE_MONEY", "CREDIT").Immutable().
			Comment("CREDIT gives a payment made from credit back to the patient's credit: no money moves."),
		field.Int64("amount").Positive().Immutable().Annotations(entgql.Type("Money")),
		field.String("reason").Annotations(freeText).NotEmpty().MaxRuneLen(500).Immutable(),
		field.String("idempotency_key").NotEmpty().MaxRuneLen(100).Immutable().Unique(),
		field.String("refunded_by_id").Immutable(),
		field.Time("refunded_at").Immutable().Annotations(entgql.OrderField("REFUNDED_AT")),
	}
}

func (Refund) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("payment", Payment.Type).Ref("refunds").Field("payment_id").Unique().Immutable(),
	}
}

func (Refund) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField(), entgql.RelayConnection()}
}

// InvoiceAdjustment changes what is owed on an issued invoice without
// money moving: a payer's contractual adjustment written off, a payer's
// refusal moved to the patient, or the patient's balance written off as
// bad debt. Each posts its own journal entry.
type InvoiceAdjustment struct{ ent.Schema }

func (InvoiceAdjustment) Mixin() []ent.Mixin {
	return []ent.Mixin{withID("iad"), TimeMixin{}, ownedByPatient("invoice_adjustments")}
}

func (InvoiceAdjustment) Fields() []ent.Field {
	return []ent.Field{
		field.String("invoice_id").Immutable(),
		field.Enum("kind").Values("PAYER_WRITE_OFF", "MOVED_TO_PATIENT", "BAD_DEBT").Immutable(),
		field.Int64("amount").Positive().Immutable().Annotations(entgql.Type("Money")),
		field.String("claim_id").Optional().Nillable().Immutable(),
		field.String("code").Optional().Nillable().MaxRuneLen(16).Immutable().
			Comment("The payer's adjustment code, for claim adjustments."),
		field.String("reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500).Immutable(),
		field.String("recorded_by_id").Immutable(),
	}
}

func (InvoiceAdjustment) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("invoice", Invoice.Type).Ref("adjustments").Field("invoice_id").Unique().Required().Immutable(),
	}
}
