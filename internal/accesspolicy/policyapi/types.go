// Package policyapi holds the access policy's GraphQL views and inputs, apart from
// the service so that the resolvers need not import the enforcer.
package policyapi

import (
	"fmt"
	"io"
	"strconv"
	"time"
)

// Change is a proposed diff of policy lines on a base version.
type Change struct {
	BaseVersion int
	Add         []string
	Remove      []string
	Reason      string
}

// AccessPolicy is the policy in force on this instance.
type AccessPolicy struct {
	Version  int
	Lines    []string
	Roles    []string
	Versions []*Version
}

// Version is one applied version of the policy.
type Version struct {
	Number     int
	Reason     string
	AppliedBy  string
	ProposedBy *string
	ProposalID *string
	Restores   *int
	CreatedAt  time.Time
}

// RoleChange is what a change does to one role.
type RoleChange struct {
	Role         string   `json:"role"`
	NewlyDenied  []string `json:"newlyDenied"`
	NewlyAllowed []string `json:"newlyAllowed"`
}

// Status is where a proposal stands.
type Status string

// The statuses of a proposal; they mirror the stored enum.
const (
	Proposed   Status = "PROPOSED"
	Applied    Status = "APPLIED"
	Rejected   Status = "REJECTED"
	Withdrawn  Status = "WITHDRAWN"
	Superseded Status = "SUPERSEDED"
)

// MarshalGQL implements graphql.Marshaler.
func (s Status) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(s))) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (s *Status) UnmarshalGQL(v any) error {
	str, ok := v.(string)
	if !ok {
		return fmt.Errorf("proposal status must be a string")
	}
	switch Status(str) {
	case Proposed, Applied, Rejected, Withdrawn, Superseded:
		*s = Status(str)
		return nil
	}
	return fmt.Errorf("%q is not a proposal status", str)
}

// Proposal is a change waiting for a second admin, or what became of it.
type Proposal struct {
	ID             string
	BaseVersion    int
	Add            []string
	Remove         []string
	Reason         string
	ProposedBy     string
	Status         Status
	DecidedBy      *string
	DecisionReason *string
	AppliedVersion *int
	Preview        []*RoleChange
	CreatedAt      time.Time
}
