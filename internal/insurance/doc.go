// Package insurance keeps payers, their plans and the plans' coverage rules
// in dated versions, pre-authorizations and claims, and splits priced lines
// between the payers of a patient's policies and the patient.
//
// The split itself (Split) is a pure function of the policies' rules and
// what they have already used; Service.SplitLines loads those in the
// caller's transaction, so invoicing splits its lines with one call, and
// coverageEstimate shows the front desk the same split before anything is
// billed. Claims are created from a list of lines: CreateClaim for the
// billing clerk, NewClaim in the caller's transaction for invoicing, which
// fills the lines from an invoice's payer shares.
//
// There is no deductible: the payers this hospital bills state their cost
// sharing as co-payments and percentages, and a deductible would need the
// patient's out-of-pocket spending elsewhere, which the hospital does not
// know.
package insurance
