package careaccess

import (
	"context"
	"encoding/json"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/events"
)

// Feed is the feed of break-the-glass accesses as they open. Each is loaded
// through row scope: the privacy officer's role sees every patient's.
func Feed(client *ent.Client) events.Feed[Change, *ent.BreakGlassAccess] {
	return events.Feed[Change, *ent.BreakGlassAccess]{
		Name: "careaccess.breakglass", Topic: Topic,
		Decode: func(ev events.Event) (Change, error) {
			var c Change
			err := json.Unmarshal(ev.Payload, &c)
			return c, err
		},
		Load: func(ctx context.Context, _ events.Event, c Change) (*ent.BreakGlassAccess, bool, error) {
			a, err := client.BreakGlassAccess.Get(ctx, c.AccessID)
			if ent.IsNotFound(err) {
				return nil, false, nil
			}
			return a, err == nil, err
		},
	}
}
