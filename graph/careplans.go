package graph

import "github.com/hmis-dev/hmis/internal/careplans"

func (r *Resolver) carePlanService() *careplans.Service { return r.CarePlans }
