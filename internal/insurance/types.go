package insurance

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/coveragerule"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/preauthorization"
)

// CreatePayerInput adds a payer.
type CreatePayerInput struct {
	Code string
	Name string
	Kind payer.Kind
}

// CreateInsurancePlanInput adds a plan to a payer.
type CreateInsurancePlanInput struct {
	PayerID            string
	Code               string
	Name               string
	PlanYearStartMonth int
}

// CoverageRuleInput is one rule of a plan version.
type CoverageRuleInput struct {
	Category                 coveragerule.Category
	ServiceCode              *string
	CoveredPercent           int
	LineCopay                int64
	Excluded                 bool
	RequiresPreauthorization bool
}

// AddPlanVersionInput is a plan's terms from a date on.
type AddPlanVersionInput struct {
	PlanID        string
	EffectiveFrom time.Time
	AnnualLimit   *int64
	VisitCopay    int64
	Rules         []CoverageRuleInput
}

// RequestPreAuthorizationInput asks a payer for consent to a service.
type RequestPreAuthorizationInput struct {
	PolicyID    string
	Category    preauthorization.Category
	ServiceCode *string
	Reason      *string
}

// ApprovePreAuthorizationInput is the payer's approval.
type ApprovePreAuthorizationInput struct {
	PayerReference   string
	ValidFrom        time.Time
	ValidTo          time.Time
	ApprovedAmount   *int64
	ApprovedQuantity *int
}

// ClaimLineInput is one service claimed. The invoicing code fills these
// from an invoice's lines.
type ClaimLineInput struct {
	ServiceCode   string
	Category      claimline.Category
	ServiceDate   time.Time
	Quantity      int
	AmountClaimed int64
}

// CreateClaimInput drafts a claim.
type CreateClaimInput struct {
	PolicyID       string
	EncounterID    *string
	DiagnosisCodes []string
	Lines          []ClaimLineInput
}

// ClaimLineDecisionInput is the payer's decision on one line.
type ClaimLineDecisionInput struct {
	LineID         string
	AmountApproved int64
	ReasonCode     *string
}

// AdjudicateClaimInput is the payer's decision on a claim.
type AdjudicateClaimInput struct {
	Lines      []ClaimLineDecisionInput
	DenialCode *string
}

// RemittanceLineInput is what the payer paid on one line.
type RemittanceLineInput struct {
	LineID         string
	AmountPaid     int64
	AdjustmentCode *string
}

// RecordRemittanceInput is the payer's remittance advice for a claim.
type RecordRemittanceInput struct {
	Reference string
	Lines     []RemittanceLineInput
}

// CoverageLineInput is a priced service to split: what the split engine
// takes, from the front desk's estimate or from an invoice's lines.
type CoverageLineInput struct {
	ServiceCode string
	Category    claimline.Category
	ServiceDate time.Time
	Quantity    int
	Amount      int64
}

// CoverageReason says why a payer pays what it pays on a line.
type CoverageReason string

// The reasons, as the API names them.
const (
	ReasonCovered          CoverageReason = "COVERED"
	ReasonNotCovered       CoverageReason = "NOT_COVERED"
	ReasonLimitExhausted   CoverageReason = "LIMIT_EXHAUSTED"
	ReasonPreauthMissing   CoverageReason = "PREAUTH_MISSING"
	ReasonPolicyNotInForce CoverageReason = "POLICY_NOT_IN_FORCE"
	ReasonNoPolicy         CoverageReason = "NO_POLICY"
)

// MarshalGQL writes the reason as its enum value.
func (r CoverageReason) MarshalGQL(w io.Writer) { _, _ = io.WriteString(w, strconv.Quote(string(r))) }

// UnmarshalGQL reads an enum value.
func (r *CoverageReason) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("coverage reason must be a string")
	}
	switch CoverageReason(s) {
	case ReasonCovered, ReasonNotCovered, ReasonLimitExhausted, ReasonPreauthMissing, ReasonPolicyNotInForce, ReasonNoPolicy:
		*r = CoverageReason(s)
		return nil
	}
	return fmt.Errorf("%s is not a coverage reason", s)
}

// CoverageStep is one policy's part in splitting a line.
type CoverageStep struct {
	PolicyID       *string
	PayerID        *string
	Reason         CoverageReason
	CoveredPercent int
	Copay          int64
	PayerAmount    int64
	Detail         string
}

// CoverageLineSplit is a line split between the payers and the patient.
type CoverageLineSplit struct {
	ServiceCode  string
	Category     claimline.Category
	ServiceDate  time.Time
	Amount       int64
	PayerShare   int64
	PatientShare int64
	Steps        []CoverageStep
}

// CoverageEstimate is the split of a list of lines.
type CoverageEstimate struct {
	Lines        []CoverageLineSplit
	PayerTotal   int64
	PatientTotal int64
}
