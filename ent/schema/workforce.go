package schema

import (
	"entgo.io/contrib/entgql"
	"entgo.io/ent"
	"entgo.io/ent/schema"
	"entgo.io/ent/schema/edge"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// The workforce tables: shifts and rosters, attendance, leave and payroll.
// None of them is patient data; who reads them is the policy's and the
// services' business (a member of staff reads their own attendance, leave
// and payslips; HR and a department's manager read their people's).

// ShiftDefinition is a kind of shift the hospital rosters people on, in
// wall-clock minutes of the hospital's time zone. A shift whose end is not
// after its start crosses midnight and ends on the next day.
type ShiftDefinition struct{ ent.Schema }

func (ShiftDefinition) Mixin() []ent.Mixin { return []ent.Mixin{withID("shf"), TimeMixin{}} }

func (ShiftDefinition) Fields() []ent.Field {
	return []ent.Field{
		field.String("code").NotEmpty().MaxRuneLen(32).Unique().Annotations(entgql.OrderField("CODE")),
		field.String("name").NotEmpty().MaxRuneLen(100),
		field.Enum("kind").Values("DAY", "EVENING", "NIGHT", "ON_CALL"),
		field.Int("start_minute").Range(0, 24*60-1).Comment("Minutes after local midnight the shift starts."),
		field.Int("end_minute").Range(0, 24*60).Comment("Minutes after local midnight it ends; not after the start means the next day."),
		field.Int("unpaid_break_minutes").Default(0).NonNegative(),
		// Whether patients can be booked with a provider on this shift: a
		// clinic day is, an on-call night usually is not.
		field.Bool("bookable").Default(true),
		field.Bool("active").Default(true),
	}
}

func (ShiftDefinition) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("roster_entries", RosterEntry.Type).Annotations(entgql.Skip()),
		edge.To("requirements", RosterRequirement.Type).Annotations(entgql.Skip()),
	}
}

func (ShiftDefinition) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// RosterRequirement is how many people a department needs on a shift;
// rosterCoverage sets the roster against it.
type RosterRequirement struct{ ent.Schema }

func (RosterRequirement) Mixin() []ent.Mixin { return []ent.Mixin{withID("rrq"), TimeMixin{}} }

func (RosterRequirement) Fields() []ent.Field {
	return []ent.Field{
		field.String("department_id"),
		field.String("shift_id"),
		field.Int("minimum_staff").NonNegative(),
	}
}

func (RosterRequirement) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("department", Department.Type).Unique().Required().Field("department_id"),
		edge.From("shift", ShiftDefinition.Type).Ref("requirements").Field("shift_id").Unique().Required(),
	}
}

func (RosterRequirement) Indexes() []ent.Index {
	return []ent.Index{index.Fields("department_id", "shift_id").Unique()}
}

// RosterEntry puts one member of staff on one shift of one department on
// one day. Its instants are the shift's wall-clock times on that local day,
// fixed when the entry is made, so a midnight-crossing shift and a
// daylight-saving change need no arithmetic at read time.
type RosterEntry struct{ ent.Schema }

func (RosterEntry) Mixin() []ent.Mixin { return []ent.Mixin{withID("rst"), TimeMixin{}} }

func (RosterEntry) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id"),
		field.String("department_id"),
		field.String("shift_id"),
		field.Time("date").Annotations(entgql.Type("Date"), entgql.OrderField("DATE")).
			Comment("The local day the shift starts on."),
		field.Time("start_at").Annotations(entgql.OrderField("START_AT")),
		field.Time("end_at"),
		field.String("note").Annotations(freeText).Optional().Nillable().MaxRuneLen(200),
		field.String("assigned_by_id").Comment("The user who rostered it."),
	}
}

func (RosterEntry) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("staff", Staff.Type).Unique().Required().Field("staff_id"),
		edge.To("department", Department.Type).Unique().Required().Field("department_id"),
		edge.From("shift", ShiftDefinition.Type).Ref("roster_entries").Field("shift_id").Unique().Required(),
	}
}

func (RosterEntry) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("staff_id", "start_at"),
		index.Fields("department_id", "date"),
		// One person is on one shift of a day once.
		index.Fields("staff_id", "shift_id", "date").Unique(),
	}
}

func (RosterEntry) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// AttendanceRecord is one stretch at work: clocked in, and out when the
// person leaves. Lateness, early leave and overtime are measured against the
// roster entry it matched, if any, and kept so payroll and reports read
// them without recomputing.
type AttendanceRecord struct{ ent.Schema }

func (AttendanceRecord) Mixin() []ent.Mixin { return []ent.Mixin{withID("att"), TimeMixin{}} }

func (AttendanceRecord) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id"),
		field.String("roster_entry_id").Optional().Nillable(),
		field.Time("clock_in_at").Annotations(entgql.OrderField("CLOCK_IN_AT")),
		field.Time("clock_out_at").Optional().Nillable(),
		// SELF when the person clocked themselves; RECORDED when HR entered
		// it, with a reason.
		field.Enum("clock_in_source").Values("SELF", "RECORDED"),
		field.Enum("clock_out_source").Values("SELF", "RECORDED").Optional().Nillable(),
		field.String("recorded_by_id").Optional().Nillable(),
		field.String("reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
		field.Int("worked_minutes").Default(0).NonNegative(),
		field.Int("late_minutes").Default(0).NonNegative(),
		field.Int("early_leave_minutes").Default(0).NonNegative(),
		field.Int("overtime_minutes").Default(0).NonNegative(),
	}
}

func (AttendanceRecord) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("staff", Staff.Type).Unique().Required().Field("staff_id"),
		edge.To("roster_entry", RosterEntry.Type).Unique().Field("roster_entry_id"),
	}
}

func (AttendanceRecord) Indexes() []ent.Index {
	return []ent.Index{index.Fields("staff_id", "clock_in_at")}
}

func (AttendanceRecord) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// LeaveEntitlement is how many days of a kind of leave a member of staff
// has in a calendar year; without one, the hospital's default applies.
type LeaveEntitlement struct{ ent.Schema }

func (LeaveEntitlement) Mixin() []ent.Mixin { return []ent.Mixin{withID("lve"), TimeMixin{}} }

func (LeaveEntitlement) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id"),
		field.Int("year").Range(2000, 2200),
		field.Enum("leave_type").Values(leaveTypes...),
		field.Int("days").NonNegative(),
	}
}

func (LeaveEntitlement) Edges() []ent.Edge {
	return []ent.Edge{edge.To("staff", Staff.Type).Unique().Required().Field("staff_id")}
}

func (LeaveEntitlement) Indexes() []ent.Index {
	return []ent.Index{index.Fields("staff_id", "year", "leave_type").Unique()}
}

// Balances are read as computed figures, never as these rows.
func (LeaveEntitlement) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.Skip(entgql.SkipAll)}
}

// leaveTypes are the kinds of leave; the GraphQL enum is LeaveType.
var leaveTypes = []string{"ANNUAL", "SICK", "UNPAID", "MATERNITY", "PATERNITY", "COMPASSIONATE", "STUDY"}

// LeaveRequest is a member of staff's request to be away on whole days,
// decided by their department's manager. Approved leave blocks roster
// assignments and appointment slots in its days.
type LeaveRequest struct{ ent.Schema }

func (LeaveRequest) Mixin() []ent.Mixin { return []ent.Mixin{withID("lvr"), TimeMixin{}} }

func (LeaveRequest) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id").Immutable(),
		field.Enum("leave_type").Values(leaveTypes...).Immutable().Annotations(entgql.Type("LeaveType")),
		field.Time("start_date").Immutable().Annotations(entgql.Type("Date"), entgql.OrderField("START_DATE")),
		field.Time("end_date").Immutable().Annotations(entgql.Type("Date")).Comment("The last day away, inclusive."),
		field.Int("days").Positive().Immutable().Comment("Calendar days from start to end, inclusive."),
		field.String("reason").Annotations(freeText).Optional().Nillable().MaxRuneLen(500).Immutable(),
		field.Enum("status").Values("REQUESTED", "APPROVED", "REJECTED", "CANCELLED").Default("REQUESTED"),
		field.String("decided_by_id").Optional().Nillable(),
		field.Time("decided_at").Optional().Nillable(),
		field.String("decision_note").Annotations(freeText).Optional().Nillable().MaxRuneLen(500),
	}
}

func (LeaveRequest) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("staff", Staff.Type).Unique().Required().Field("staff_id").Immutable(),
		// The time off approval laid on the provider's schedule.
		edge.To("time_off", ProviderTimeOff.Type).Annotations(entgql.Skip()),
	}
}

func (LeaveRequest) Indexes() []ent.Index {
	return []ent.Index{index.Fields("staff_id", "start_date"), index.Fields("status")}
}

func (LeaveRequest) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// PayDeduction is a deduction HR records against a member of staff's pay
// in one period: a loan repayment, a union fee, an advance.
type PayDeduction struct{ ent.Schema }

func (PayDeduction) Mixin() []ent.Mixin { return []ent.Mixin{withID("pdd"), TimeMixin{}} }

func (PayDeduction) Fields() []ent.Field {
	return []ent.Field{
		field.String("staff_id"),
		field.String("period").NotEmpty().MaxRuneLen(7).Comment("YYYY-MM"),
		field.Int64("amount").Positive().Annotations(entgql.Type("Money")),
		field.String("description").Annotations(freeText).NotEmpty().MaxRuneLen(200),
		field.String("recorded_by_id"),
	}
}

func (PayDeduction) Edges() []ent.Edge {
	return []ent.Edge{edge.To("staff", Staff.Type).Unique().Required().Field("staff_id")}
}

func (PayDeduction) Indexes() []ent.Index {
	return []ent.Index{index.Fields("period", "staff_id")}
}

// PayrollRun is the payroll of one monthly pay period. A DRAFT is computed
// and recomputed at will; APPROVED is final and posted to the ledger (later
// corrections go into the next period); PAID records that the money went.
type PayrollRun struct{ ent.Schema }

func (PayrollRun) Mixin() []ent.Mixin { return []ent.Mixin{withID("prn"), TimeMixin{}} }

func (PayrollRun) Fields() []ent.Field {
	return []ent.Field{
		field.String("period").NotEmpty().MaxRuneLen(7).Unique().Immutable().
			Annotations(entgql.OrderField("PERIOD")).Comment("YYYY-MM"),
		field.Time("period_start").Immutable().Annotations(entgql.Type("Date")),
		field.Time("period_end").Immutable().Annotations(entgql.Type("Date")).Comment("Inclusive."),
		field.Enum("status").Values("DRAFT", "APPROVED", "PAID").Default("DRAFT"),
		field.Time("computed_at"),
		field.String("computed_by_id"),
		field.String("approved_by_id").Optional().Nillable(),
		field.Time("approved_at").Optional().Nillable(),
		field.String("paid_by_id").Optional().Nillable(),
		field.Time("paid_at").Optional().Nillable(),
		field.String("journal_entry_id").Optional().Nillable(),
		field.Int64("gross_total").Default(0).Annotations(entgql.Type("Money")),
		field.Int64("tax_total").Default(0).Annotations(entgql.Type("Money")),
		field.Int64("deductions_total").Default(0).Annotations(entgql.Type("Money")),
		field.Int64("net_total").Default(0).Annotations(entgql.Type("Money")),
	}
}

func (PayrollRun) Edges() []ent.Edge {
	return []ent.Edge{
		edge.To("payslips", Payslip.Type).Annotations(entgql.Skip(entgql.SkipWhereInput)),
	}
}

func (PayrollRun) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}

// Payslip is one member of staff's pay in one run, in minor units, with the
// quantities it was computed from so the owner can check it by hand.
type Payslip struct{ ent.Schema }

func (Payslip) Mixin() []ent.Mixin { return []ent.Mixin{withID("psl"), TimeMixin{}} }

func (Payslip) Fields() []ent.Field {
	money := func(name string) ent.Field {
		return field.Int64(name).Default(0).Annotations(entgql.Type("Money"))
	}
	return []ent.Field{
		field.String("run_id"),
		field.String("staff_id"),
		field.String("period").NotEmpty().MaxRuneLen(7).Annotations(entgql.OrderField("PERIOD")),
		field.Enum("pay_basis").Values("MONTHLY", "HOURLY"),
		field.Int64("pay_rate").Annotations(entgql.Type("Money")),
		field.Int("worked_minutes").Default(0),
		field.Int("overtime_minutes").Default(0),
		field.Int("night_shifts").Default(0),
		field.Int("on_call_shifts").Default(0),
		field.Int("unpaid_leave_days").Default(0),
		money("base_pay"),
		money("overtime_pay"),
		money("night_allowance"),
		money("on_call_allowance"),
		money("unpaid_leave_deduction"),
		money("gross_pay"),
		money("tax"),
		money("other_deductions"),
		money("net_pay"),
	}
}

func (Payslip) Edges() []ent.Edge {
	return []ent.Edge{
		edge.From("run", PayrollRun.Type).Ref("payslips").Field("run_id").Unique().Required(),
		edge.To("staff", Staff.Type).Unique().Required().Field("staff_id"),
	}
}

func (Payslip) Indexes() []ent.Index {
	return []ent.Index{index.Fields("run_id", "staff_id").Unique(), index.Fields("staff_id", "period")}
}

func (Payslip) Annotations() []schema.Annotation {
	return []schema.Annotation{entgql.RelayConnection()}
}
