package graph

import "github.com/hmis-dev/hmis/internal/referrals"

// referralService needs nothing but the ent client, so it is made per use
// rather than wired into the Resolver.
func (r *Resolver) referralService() *referrals.Service { return referrals.NewService(r.Client) }
