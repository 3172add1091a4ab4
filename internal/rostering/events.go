package rostering

// Topic carries changes to the roster: nothing streams it to clients, but
// it tells the reports' cache (and any consumer of the outbox) that the
// figures built on the roster moved.
const Topic = "roster"

// The kinds of change.
const (
	Rostered = "ROSTERED"
	Removed  = "REMOVED"
)

// Change is an event's payload: IDs only.
type Change struct {
	EntryID      string `json:"entryId"`
	StaffID      string `json:"staffId"`
	DepartmentID string `json:"departmentId"`
}
