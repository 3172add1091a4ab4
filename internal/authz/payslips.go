package authz

import (
	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent/payrollrun"
	"github.com/hmis-dev/hmis/ent/payslip"
	"github.com/hmis-dev/hmis/internal/auth"
)

// AllPayslipsObject is the policy object that lets a role read every
// member of staff's payslips, drafts included (HR and payroll). It is not
// a GraphQL field. Without it a member of staff reads only their own
// payslips, and only once their run is approved: a draft may still change.
const AllPayslipsObject = "Rows.Payslip.all"

// payslipRows is the row scope of payslips, which are no patient data but
// as private: the field policy says who may read a payslip's fields, this
// says whose.
func (e *Enforcer) payslipRows(v *auth.Viewer) func(*sql.Selector) {
	switch {
	case v == nil:
		return nothing
	case v.System, e.Allows(v, AllPayslipsObject):
		return nil
	case v.StaffID == "":
		return nothing
	}
	own := sql.FieldEQ(payslip.FieldStaffID, v.StaffID)
	final := payslip.HasRunWith(payrollrun.StatusIn(payrollrun.StatusAPPROVED, payrollrun.StatusPAID))
	return func(s *sql.Selector) {
		own(s)
		final(s)
	}
}
