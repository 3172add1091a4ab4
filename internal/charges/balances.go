package charges

import (
	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/invoice"
)

// PatientBalance is what the patient still owes on an invoice: their
// share, plus what the payers refused as theirs, less what they paid and
// what was written off.
func PatientBalance(inv *ent.Invoice) int64 {
	if inv.Status == invoice.StatusDRAFT || inv.Status == invoice.StatusVOID {
		return 0
	}
	return patientOwes(inv)
}

func patientOwes(inv *ent.Invoice) int64 {
	return inv.PatientTotal + inv.MovedToPatient - inv.PatientPaid - inv.WrittenOff
}

func payersOwe(inv *ent.Invoice) int64 {
	return inv.PayerTotal - inv.PayerPaid - inv.PayerAdjusted - inv.MovedToPatient
}

// PayerBalance is what the payers still owe on an invoice: their share
// less their remittances, their adjustments written off and what they
// moved to the patient.
func PayerBalance(inv *ent.Invoice) int64 {
	if inv.Status == invoice.StatusDRAFT || inv.Status == invoice.StatusVOID {
		return 0
	}
	return payersOwe(inv)
}

// settled is the status an issued invoice's amounts give it: PAID when
// nobody owes anything on it, PARTIALLY_PAID once anything was paid or
// settled, ISSUED before that.
func settled(inv *ent.Invoice) invoice.Status {
	switch {
	case patientOwes(inv)+payersOwe(inv) == 0:
		return invoice.StatusPAID
	case inv.Paid > 0 || inv.PayerAdjusted > 0 || inv.MovedToPatient > 0 || inv.WrittenOff > 0:
		return invoice.StatusPARTIALLY_PAID
	}
	return invoice.StatusISSUED
}
