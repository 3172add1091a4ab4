// Package payroll computes and settles the monthly payroll: a run per pay
// period (YYYY-MM) with one payslip per member of staff paid in it.
//
// A run is a DRAFT until approved: runPayroll computes it, and computes it
// again from scratch each time it is asked, so attendance, rosters, leave
// and deductions recorded meanwhile are picked up. Approval (by someone
// other than whoever computed it last: four eyes) makes the run and its
// payslips final and posts one journal entry; a mistake found later is
// corrected in the next period, never by changing an approved run. Marking
// the run paid posts the payment out of the bank.
//
// A draft may be computed on any day of its month or later: during the
// month it shows what has been attended so far. It cannot be approved
// before the month's last day (in the hospital's time zone) has begun,
// since hours worked after approval would never be paid; hospitals that
// pay on the last day still can.
//
// The arithmetic is in compute.go, pure and exact in minor units.
package payroll
