package admission

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/internal/events"
)

// Topic is the event topic bed status changes are published on.
const Topic = "beds"

// EventType names what happened to a bed.
type EventType string

const (
	Added             EventType = "ADDED"
	Admitted          EventType = "ADMITTED"
	TransferredIn     EventType = "TRANSFERRED_IN"
	TransferredOut    EventType = "TRANSFERRED_OUT"
	Discharged        EventType = "DISCHARGED"
	Cleaned           EventType = "CLEANED"
	TakenOutOfService EventType = "OUT_OF_SERVICE"
	ReturnedToService EventType = "RETURNED_TO_SERVICE"
)

// Change is the payload of a bed event. It carries IDs and statuses only:
// a subscriber loads the bed and the stay through row scope before showing
// them. Status is the status the event moved the bed to, which a replayed
// event needs because the bed may have moved on since.
type Change struct {
	BedID          string     `json:"bedId"`
	WardID         string     `json:"wardId"`
	Status         bed.Status `json:"status"`
	PreviousStatus bed.Status `json:"previousStatus,omitempty"`
	// AdmissionID is the stay occupying the bed after the event, if any.
	AdmissionID string `json:"admissionId,omitempty"`
}

func record(ctx context.Context, tx *ent.Tx, event EventType, b *ent.Bed, previous bed.Status, admissionID string) error {
	return events.Record(ctx, tx, Topic, string(event), Change{
		BedID: b.ID, WardID: b.WardID, Status: b.Status, PreviousStatus: previous, AdmissionID: admissionID,
	})
}
