package ledger

import (
	"context"
	"fmt"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/ledgeraccount"
)

// Codes of the seeded accounts, which the postings of billing name.
const (
	Cash                = "1000"
	Bank                = "1010"
	CardClearing        = "1020"
	MobileMoneyClearing = "1030"
	UnbilledReceivables = "1090"
	PatientReceivables  = "1100"
	InsurerReceivables  = "1110"
	PatientDeposits     = "2000"
	TaxPayable          = "2100"
	PayrollPayable      = "2200"
	DeductionsPayable   = "2210"
	OpeningEquity       = "3000"
	RevenueConsultation = "4100"
	RevenueLaboratory   = "4200"
	RevenuePharmacy     = "4300"
	RevenueBedDays      = "4400"
	RevenueProcedures   = "4500"
	RevenueOther        = "4900"
	DiscountsAllowed    = "5100"
	BadDebtWriteOffs    = "5200"
	ClaimAdjustments    = "5300"
	PayrollExpense      = "5400"
)

type seedAccount struct {
	code, name, category string
	typ                  ledgeraccount.Type
}

// chart is the seeded chart of accounts. Revenue is one account per service
// category; each line carries the department, so revenue per department is
// read from the lines (a hospital that wants a department's own account adds
// one with createLedgerAccount).
var chart = []seedAccount{
	{Cash, "Cash on hand", "", ledgeraccount.TypeASSET},
	{Bank, "Bank", "", ledgeraccount.TypeASSET},
	{CardClearing, "Card payments clearing", "", ledgeraccount.TypeASSET},
	{MobileMoneyClearing, "Mobile money clearing", "", ledgeraccount.TypeASSET},
	{UnbilledReceivables, "Unbilled services", "", ledgeraccount.TypeASSET},
	{PatientReceivables, "Patient receivables", "", ledgeraccount.TypeASSET},
	{InsurerReceivables, "Insurer receivables", "", ledgeraccount.TypeASSET},
	{PatientDeposits, "Patient deposits and credit", "", ledgeraccount.TypeLIABILITY},
	{TaxPayable, "Tax payable", "", ledgeraccount.TypeLIABILITY},
	{PayrollPayable, "Payroll payable", "", ledgeraccount.TypeLIABILITY},
	{DeductionsPayable, "Payroll deductions payable", "", ledgeraccount.TypeLIABILITY},
	{OpeningEquity, "Opening balance equity", "", ledgeraccount.TypeEQUITY},
	{RevenueConsultation, "Revenue: consultations", "CONSULTATION", ledgeraccount.TypeREVENUE},
	{RevenueLaboratory, "Revenue: laboratory", "LAB", ledgeraccount.TypeREVENUE},
	{RevenuePharmacy, "Revenue: pharmacy", "PHARMACY", ledgeraccount.TypeREVENUE},
	{RevenueBedDays, "Revenue: bed-days", "BED_DAY", ledgeraccount.TypeREVENUE},
	{RevenueProcedures, "Revenue: procedures", "PROCEDURE", ledgeraccount.TypeREVENUE},
	{RevenueOther, "Revenue: other services", "OTHER", ledgeraccount.TypeREVENUE},
	{DiscountsAllowed, "Discounts allowed", "", ledgeraccount.TypeEXPENSE},
	{BadDebtWriteOffs, "Bad-debt write-offs", "", ledgeraccount.TypeEXPENSE},
	{ClaimAdjustments, "Insurance claim adjustments", "", ledgeraccount.TypeEXPENSE},
	{PayrollExpense, "Payroll expense", "", ledgeraccount.TypeEXPENSE},
}

// normalBalance is the side that increases an account of type t.
func normalBalance(t ledgeraccount.Type) ledgeraccount.NormalBalance {
	if t == ledgeraccount.TypeASSET || t == ledgeraccount.TypeEXPENSE {
		return ledgeraccount.NormalBalanceDEBIT
	}
	return ledgeraccount.NormalBalanceCREDIT
}

// Seed adds the accounts of the chart that are missing; accounts already
// there (and renamed by finance) are left as they are.
func Seed(ctx context.Context, client *ent.Client) error {
	for _, a := range chart {
		exists, err := client.LedgerAccount.Query().Where(ledgeraccount.Code(a.code)).Exist(ctx)
		if err != nil {
			return fmt.Errorf("seed ledger account %s: %w", a.code, err)
		}
		if exists {
			continue
		}
		c := client.LedgerAccount.Create().SetCode(a.code).SetName(a.name).SetType(a.typ).
			SetNormalBalance(normalBalance(a.typ))
		if a.category != "" {
			c.SetServiceCategory(a.category)
		}
		if err := c.Exec(ctx); err != nil && !ent.IsConstraintError(err) {
			return fmt.Errorf("seed ledger account %s: %w", a.code, err)
		}
	}
	return nil
}

// RevenueAccount is the code of the revenue account of a service category
// (LAB, PHARMACY, CONSULTATION, BED_DAY, PROCEDURE); other categories go to
// other services.
func RevenueAccount(category string) string {
	for _, a := range chart {
		if a.category == category {
			return a.code
		}
	}
	return RevenueOther
}
