// Package graph is the GraphQL layer: gqlgen's generated executor and thin
// resolvers that decode input, call a service in internal/ and return its
// result. Business rules live in the services, not here.
package graph

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/accesspolicy/policyapi"
	"github.com/hmis-dev/hmis/internal/admission"
	"github.com/hmis-dev/hmis/internal/attendance"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/careaccess"
	"github.com/hmis-dev/hmis/internal/careplans"
	"github.com/hmis-dev/hmis/internal/charges"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/formulary"
	"github.com/hmis-dev/hmis/internal/insurance"
	"github.com/hmis-dev/hmis/internal/lab"
	"github.com/hmis-dev/hmis/internal/labhl7"
	"github.com/hmis-dev/hmis/internal/leave"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/notes"
	"github.com/hmis-dev/hmis/internal/patientbilling"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/payroll"
	"github.com/hmis-dev/hmis/internal/pharmacy"
	"github.com/hmis-dev/hmis/internal/prescribing"
	"github.com/hmis-dev/hmis/internal/referrals"
	"github.com/hmis-dev/hmis/internal/reports"
	"github.com/hmis-dev/hmis/internal/rostering"
	"github.com/hmis-dev/hmis/internal/scheduling"
	"github.com/hmis-dev/hmis/internal/staffing"
)

// Resolver holds the services resolvers call.
type Resolver struct {
	Client      *ent.Client
	Auth        *auth.Service
	Patients    *patients.Service
	Scheduling  *scheduling.Service
	Admission   *admission.Service
	EHR         *ehr.Service
	Notes       *notes.Service
	Prescribing *prescribing.Service
	Formulary   *formulary.Service
	CarePlans   *careplans.Service
	Referrals   *referrals.Service
	Lab         *lab.Service
	Instruments *labhl7.Service
	CareAccess  *careaccess.Service
	Pharmacy    *pharmacy.Service
	Ledger      *ledger.Service
	Insurance   *insurance.Service
	Charges     *charges.Service
	// PatientBilling is billing as the patient app sees it.
	PatientBilling *patientbilling.Service
	Staffing       *staffing.Service
	Rostering      *rostering.Service
	Payroll        *payroll.Service
	Leave          *leave.Service
	Attendance     *attendance.Service
	Reports        *reports.Service
	Policy         PolicyAdmin
	Broker         events.Broker
	// Allows is the access policy's decision (authz.Enforcer.Allows),
	// asked again before each event of a subscription, so that a policy
	// change stops a stream already open.
	Allows func(v *auth.Viewer, object string) bool

	fanout fanout
}

// PolicyAdmin changes the access policy (accesspolicy.Service). An
// interface, so that this package does not import the enforcer, whose own
// tests import this package.
type PolicyAdmin interface {
	Policy(ctx context.Context) (*policyapi.AccessPolicy, error)
	Proposals(ctx context.Context, status *policyapi.Status) ([]*policyapi.Proposal, error)
	Preview(ctx context.Context, c policyapi.Change) ([]*policyapi.RoleChange, error)
	Propose(ctx context.Context, c policyapi.Change) (*policyapi.Proposal, error)
	Approve(ctx context.Context, id string, reason *string) (*policyapi.Proposal, error)
	Reject(ctx context.Context, id, reason string) (*policyapi.Proposal, error)
	Rollback(ctx context.Context, to int, reason string) (*policyapi.AccessPolicy, error)
}
