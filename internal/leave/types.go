package leave

import (
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/leaverequest"
)

// RequestLeaveInput is the input of requestLeave.
type RequestLeaveInput struct {
	LeaveType leaverequest.LeaveType
	StartDate time.Time
	EndDate   time.Time
	Reason    *string
}

// LeaveBalance is one kind of leave in one year.
type LeaveBalance struct {
	LeaveType leaverequest.LeaveType
	Year      int
	// Entitled and Remaining are nil for kinds without a balance (UNPAID).
	Entitled  *int
	Taken     int
	Pending   int
	Remaining *int
}

// LeaveDecision is what approving leave did.
type LeaveDecision struct {
	Leave                *ent.LeaveRequest
	RemovedRosterEntries []*ent.RosterEntry
	// AppointmentsToRebook are those the approver may read (row scope);
	// the count covers them all.
	AppointmentsToRebook      []*ent.Appointment
	AppointmentsToRebookCount int
}

// RequestFilter narrows leaveRequests.
type RequestFilter struct {
	Status       *leaverequest.Status
	DepartmentID *string
	StaffID      *string
	From, To     *time.Time
}
