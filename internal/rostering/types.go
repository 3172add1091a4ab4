package rostering

import (
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
)

// CreateShiftDefinitionInput is the input of createShiftDefinition.
type CreateShiftDefinitionInput struct {
	Code               string
	Name               string
	Kind               shiftdefinition.Kind
	StartTime          string
	EndTime            string
	UnpaidBreakMinutes *int
	Bookable           *bool
}

// UpdateShiftDefinitionInput is the input of updateShiftDefinition: nil
// leaves a field as it is.
type UpdateShiftDefinitionInput struct {
	Name               *string
	Kind               *shiftdefinition.Kind
	StartTime          *string
	EndTime            *string
	UnpaidBreakMinutes *int
	Bookable           *bool
}

// RosterEntryInput is one entry of assignShifts.
type RosterEntryInput struct {
	StaffID string
	ShiftID string
	Date    time.Time
	Note    *string
}

// AssignShiftsInput is the input of assignShifts.
type AssignShiftsInput struct {
	DepartmentID string
	Entries      []*RosterEntryInput
}

// RosterCoverage is one shift of one day in a department against its
// requirement.
type RosterCoverage struct {
	Date         time.Time
	Shift        *ent.ShiftDefinition
	Planned      int
	MinimumStaff int
	Shortfall    int
	Staff        []*ent.Staff
}
