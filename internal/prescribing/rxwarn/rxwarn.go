// Package rxwarn is the shape of a prescribing warning a prescriber
// overrode, as kept on the medication order. It is a leaf package so that
// the order's schema can store it without importing the prescribing
// service.
package rxwarn

// Kinds of warning.
const (
	KindAllergy     = "ALLERGY"
	KindInteraction = "INTERACTION"
)

// Warning is one allergy or interaction warning that was overridden.
type Warning struct {
	Kind string `json:"kind"`
	// Severity is the allergy's severity or the interaction's.
	Severity string `json:"severity"`
	// Detail says what matched, e.g. "penicillin allergy: amoxicillin is a
	// penicillin" or "warfarin + NSAIDs".
	Detail string `json:"detail"`
	// Advice is the interaction table's advice, or a class's
	// cross-reactivity note.
	Advice *string `json:"advice,omitempty"`
	// AllergyID is the allergy matched (ALLERGY).
	AllergyID *string `json:"allergyId,omitempty"`
	// InteractionID is the row of the interaction table (INTERACTION).
	InteractionID *string `json:"interactionId,omitempty"`
	// OtherOrderID is the active order the new one interacts with.
	OtherOrderID *string `json:"otherOrderId,omitempty"`
}
