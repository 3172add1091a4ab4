package attendance

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/events"
)

// Topic carries a change to an attendance record: nothing streams it to
// clients, but it is what tells the reports' cache (and any consumer of
// the outbox) that the figures built on attendance moved.
const Topic = "attendance"

// The kinds of change.
const (
	ClockedIn  = "CLOCKED_IN"
	ClockedOut = "CLOCKED_OUT"
	Recorded   = "RECORDED"
	Corrected  = "CORRECTED"
)

// Change is an event's payload: IDs only.
type Change struct {
	RecordID string `json:"recordId"`
	StaffID  string `json:"staffId"`
}

// published records typ for the record a write returned, in the write's
// transaction, and passes the write's result on.
func published(ctx context.Context, tx *ent.Tx, typ string) func(*ent.AttendanceRecord, error) (*ent.AttendanceRecord, error) {
	return func(rec *ent.AttendanceRecord, err error) (*ent.AttendanceRecord, error) {
		if err != nil {
			return nil, err
		}
		return rec, events.Record(ctx, tx, Topic, typ, Change{RecordID: rec.ID, StaffID: rec.StaffID})
	}
}
