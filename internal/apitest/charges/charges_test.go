// Package charges tests billing's price list, charges, invoices and
// payments through the HTTP API.
package charges

import (
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const (
	setPrice  = `mutation($in: SetTariffPriceInput!) { setTariffPrice(input: $in) { id code price } }`
	addCharge = `mutation($in: AddManualChargeInput!) { addManualCharge(input: $in) { id amount status } }`
	myCharges = `{ charges(first: 50) { edges { node { id patientID amount } } } }`
)

// The clerk prices a service and charges two patients; a patient reads
// their own charge and not the other's; bad input names its field.
func TestClerkChargesAndThePatientSeesOnlyTheirOwn(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	demo := s.Demo()
	r := s.As("billing_clerk", setPrice, map[string]any{"in": map[string]any{
		"code": "ITEM-CERT", "name": "Medical certificate", "category": "ITEM", "price": "30.00"}})
	harness.Must(t, len(r.Errors) == 0, "setTariffPrice: %s", harness.Describe(r))

	var own, other struct {
		AddManualCharge struct {
			ID, Amount, Status string
		} `json:"addManualCharge"`
	}
	s.As("billing_clerk", addCharge, map[string]any{"in": map[string]any{
		"patientId": demo.Patients[0], "tariffCode": "ITEM-CERT", "quantity": 2}}).Decode(t, &own)
	harness.Must(t, own.AddManualCharge.Amount == "60.00" && own.AddManualCharge.Status == "ACTIVE", "charge: %+v", own)
	s.As("billing_clerk", addCharge, map[string]any{"in": map[string]any{
		"patientId": demo.Patients[1], "tariffCode": "ITEM-CERT", "quantity": 1}}).Decode(t, &other)

	var seen struct {
		Charges struct {
			Edges []struct {
				Node struct{ ID, PatientID, Amount string }
			}
		}
	}
	s.As("patient", myCharges, nil).Decode(t, &seen)
	harness.Must(t, len(seen.Charges.Edges) == 1 && seen.Charges.Edges[0].Node.ID == own.AddManualCharge.ID,
		"the patient sees %+v", seen)

	// A doctor may not charge; bad input names the field and changes nothing.
	r = s.As("doctor", addCharge, map[string]any{"in": map[string]any{"patientId": demo.Patients[0], "tariffCode": "ITEM-CERT", "quantity": 1}})
	harness.Must(t, harness.DeniedByGuard(r, "doctor"), "doctor charged: %s", harness.Describe(r))
	r = s.As("billing_clerk", addCharge, map[string]any{"in": map[string]any{"patientId": demo.Patients[0], "tariffCode": "ITEM-CERT", "quantity": 0}})
	harness.WantBadInput(t, "zero quantity", r, "input.quantity")
	s.As("billing_clerk", myCharges, nil).Decode(t, &seen)
	harness.Must(t, len(seen.Charges.Edges) == 2, "the clerk sees %d charges, want 2", len(seen.Charges.Edges))
}

// TestREADMEBillingOperationsAreValid runs every operation of the README's
// billing section as admin: each must be valid against the schema (its
// placeholder IDs are then refused as bad input), so the copy-paste
// examples keep up with the schema.
func TestREADMEBillingOperationsAreValid(t *testing.T) {
	t.Parallel()
	ops := harness.READMEOperations(t, "## Billing: charges, invoices and payments")
	s := harness.NewServer(t)
	for _, op := range ops {
		r := s.As("admin", op.Document, nil)
		for _, e := range r.Errors {
			harness.Must(t, e.Code() == "BAD_USER_INPUT" || e.Code() == "NOT_FOUND", "README operation: %s %v\n%s", e.Code(), e, op.Document)
		}
	}
	harness.Must(t, len(ops) >= 12, "only %d README billing operations found", len(ops))
}

// A patient sees neither another patient's discount, even by its ID, nor
// their own draft invoice or a discount not yet approved: both may still
// change, and the draft is the clerk's work in progress.
func TestThePatientSeesOnlyTheirOwnIssuedBills(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	demo := s.Demo()
	r := s.As("billing_clerk", setPrice, map[string]any{"in": map[string]any{
		"code": "ITEM-CERT", "name": "Medical certificate", "category": "ITEM", "price": "30.00"}})
	harness.Must(t, len(r.Errors) == 0, "setTariffPrice: %s", harness.Describe(r))
	draft := func(patient string) (invoice, discount string) {
		s.As("billing_clerk", addCharge, map[string]any{"in": map[string]any{"patientId": patient, "tariffCode": "ITEM-CERT", "quantity": 1}})
		var inv struct{ CreateInvoice struct{ ID string } }
		today := time.Now().UTC().Format(time.DateOnly)
		s.As("billing_clerk", `mutation($p: ID!, $d: Date!) { createInvoice(input: {patientId: $p, periodFrom: $d, periodTo: $d}) { id } }`,
			map[string]any{"p": patient, "d": today}).Decode(t, &inv)
		var d struct{ RequestInvoiceDiscount struct{ ID string } }
		s.As("billing_clerk", `mutation($i: ID!) { requestInvoiceDiscount(input: {invoiceId: $i, amount: "5.00", reason: "hardship"}) { id } }`,
			map[string]any{"i": inv.CreateInvoice.ID}).Decode(t, &d)
		return inv.CreateInvoice.ID, d.RequestInvoiceDiscount.ID
	}
	ownInvoice, ownDiscount := draft(demo.Patients[0])
	_, otherDiscount := draft(demo.Patients[1])
	for _, id := range []string{ownInvoice, ownDiscount, otherDiscount} {
		r := s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
		harness.Must(t, r.HasCode("NOT_FOUND"), "the patient reads %s: %s", id, harness.Describe(r))
	}
	var list struct {
		Invoices struct{ TotalCount int }
	}
	s.As("patient", `{ invoices(first: 5) { totalCount } }`, nil).Decode(t, &list)
	harness.Must(t, list.Invoices.TotalCount == 0, "the patient lists %d invoices, all drafts", list.Invoices.TotalCount)
	var mine struct{ Node *struct{ ID string } }
	s.As("billing_clerk", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": ownDiscount}).Decode(t, &mine)
	harness.Must(t, mine.Node != nil, "the clerk does not see the requested discount")
}
