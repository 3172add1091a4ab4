package admission

import (
	"time"

	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Limits on what the inputs may ask for.
const (
	// Admissions and discharges are often entered after the fact, but not
	// weeks later: that is a correction, not a bed movement.
	MaxBackdate = 7 * 24 * time.Hour
	// ClockSkew tolerates a client whose clock runs a little ahead when it
	// sends "now".
	ClockSkew       = time.Minute
	maxReason       = 500
	maxSummary      = 20000
	maxDescription  = 2000
	maxName         = 100
	maxCode         = 32
	maxOutOfService = 200
)

// Service keeps wards and beds and moves patients through them.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st. Its clock reads time as the
// database keeps it, so that what a mutation returns equals what a later
// read finds.
func NewService(st *store.Store) *Service {
	return &Service{store: st, now: func() time.Time { return input.Stored(time.Now()) }}
}
