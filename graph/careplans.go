package graph

import "github.com/hmis-dev/hmis/internal/careplans"

// carePlanService needs nothing but the ent client, so it is made per use
// rather than wired into the Resolver.
func (r *Resolver) carePlanService() *careplans.Service { return careplans.NewService(r.Client) }
