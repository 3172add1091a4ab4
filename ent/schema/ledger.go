package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// LedgerAccount is an account of the chart of accounts. Accounts are never
// deleted, only deactivated, since journal lines keep pointing at them.
type LedgerAccount struct{ ent.Schema }

func (LedgerAccount) Mixin() []ent.Mixin { return []ent.Mixin{withID("lac"), TimeMixin{}} }

func (LedgerAccount) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().Unique().MaxRuneLen(32).
			Comment("The account's number in the chart, e.g. 1100 or 4100-LAB.").
			Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(120),
		field.Enum("type").Values("ASSET", "LIABILITY", "EQUITY", "REVENUE", "EXPENSE").
			Annotations(entgql.OrderField("TYPE")),
		field.Enum("normal_balance").Values("DEBIT", "CREDIT").
			Comment("The side that increases the account: DEBIT for assets and expenses, CREDIT for the others."),
		field.String("department_id").Optional().Nillable().
			Comment("The department whose revenue or cost the account holds, if it is a department's."),
		field.String("service_category").Optional().Nillable().MaxRuneLen(40).
			Comment("The service category (LAB, PHARMACY, CONSULTATION, ...) whose revenue the account holds."),
		field.Bool("active").Default(true),
	}
}

func (LedgerAccount) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("lines", JournalLine.Type).Ref("account").Annotations(entgql.Skip(entgql.SkipAll)),
	}
}

func (LedgerAccount) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField("ledgerAccounts"), entgql.RelayConnection()}
}

// JournalEntry is one balanced posting. Entries are append-only: a
// correction is a reversing entry, so the books show what was posted and
// when it was taken back.
type JournalEntry struct{ ent.Schema }

func (JournalEntry) Mixin() []ent.Mixin { return []ent.Mixin{withID("jen"), TimeMixin{}} }

func (JournalEntry) Fields() []ent.Field {
	return []ent.Field{
		field.String("source_type").NotEmpty().MaxRuneLen(40).Immutable().
			Comment("What business event posted the entry: CHARGE, PAYMENT, REFUND, MANUAL, REVERSAL, ..."),
		field.String("source_id").NotEmpty().MaxRuneLen(100).Immutable().
			Comment("The ID of that event; with source_type unique, so an event posts once."),
		field.String("memo").MaxRuneLen(500).Immutable(),
		field.Time("entry_date").Immutable().Annotations(entgql.Type("Date"), entgql.OrderField("ENTRY_DATE")).
			Comment("The accounting date; its month is the period."),
		field.String("period").NotEmpty().MaxRuneLen(7).Immutable().
			Comment("The accounting period, YYYY-MM, that the entry counts in."),
		field.String("posted_by").MaxRuneLen(100).Immutable().
			Comment("The user (or 'system') whose action posted the entry."),
		field.Time("posted_at").Immutable().Annotations(entgql.OrderField("POSTED_AT")),
		field.String("reverses_id").Optional().Nillable().Unique().Immutable().
			Comment("The entry this one reverses; an entry is reversed at most once."),
		field.String("reason").Optional().Nillable().MaxRuneLen(500).Immutable().
			Comment("Why the reversed entry was taken back."),
		field.String("note").Optional().Nillable().MaxRuneLen(500).Immutable().
			Comment("Set when the entry was dated in a closed period and posted into the open one instead."),
		field.Int64("total").NonNegative().Immutable().Annotations(entgql.Type("Money")).
			Comment("The sum of the debits, which equals the sum of the credits."),
	}
}

func (JournalEntry) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("lines", JournalLine.Type),
	}
}

func (JournalEntry) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("source_type", "source_id").Unique(),
		index.Fields("period"),
		index.Fields("entry_date"),
	}
}

func (JournalEntry) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField("journalEntries"), entgql.RelayConnection()}
}

// JournalLine is one debit or one credit of an entry.
type JournalLine struct{ ent.Schema }

func (JournalLine) Mixin() []ent.Mixin { return []ent.Mixin{withID("jln")} }

func (JournalLine) Fields() []ent.Field {
	return []ent.Field{
		field.String("entry_id").Immutable(),
		field.String("account_id").Immutable(),
		field.Int("position").NonNegative().Immutable().Comment("The line's place in its entry."),
		field.Int64("debit").NonNegative().Immutable().Annotations(entgql.Type("Money")),
		field.Int64("credit").NonNegative().Immutable().Annotations(entgql.Type("Money")),
		field.String("department_id").Optional().Nillable().Immutable(),
		// Copied from the entry so that balances by account and date are one
		// indexed scan rather than a join.
		field.Time("entry_date").Immutable().Annotations(entgql.Type("Date")),
	}
}

func (JournalLine) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("entry", JournalEntry.Type).Ref("lines").Field("entry_id").Unique().Required().Immutable(),
		edge.To("account", LedgerAccount.Type).Field("account_id").Unique().Required().Immutable(),
	}
}

func (JournalLine) Indexes() []ent.Index {
	return []ent.Index{index.Fields("account_id", "entry_date")}
}

// AccountingPeriod is a month of the books. A period without a row is open;
// closing one writes or updates its row.
type AccountingPeriod struct{ ent.Schema }

func (AccountingPeriod) Mixin() []ent.Mixin { return []ent.Mixin{withID("apd"), TimeMixin{}} }

func (AccountingPeriod) Fields() []ent.Field {
	return []ent.Field{
		field.String("period").NotEmpty().Unique().MaxRuneLen(7).Annotations(entgql.OrderField("PERIOD")).
			Comment("YYYY-MM"),
		field.Enum("status").Values("OPEN", "CLOSED").Default("OPEN"),
		field.String("closed_by").Optional().Nillable(),
		field.Time("closed_at").Optional().Nillable(),
		field.String("reopened_by").Optional().Nillable(),
		field.Time("reopened_at").Optional().Nillable(),
		field.String("reopen_reason").Optional().Nillable().MaxRuneLen(500),
	}
}

func (AccountingPeriod) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.QueryField("accountingPeriods"), entgql.RelayConnection()}
}
