package graph

import "github.com/hmis-dev/hmis/internal/referrals"

func (r *Resolver) referralService() *referrals.Service { return r.Referrals }
