package invoicereport

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoiceadjustment"
	"github.com/hmis-dev/hmis/ent/payment"
)

func ptr[T any](v T) *T { return &v }

// bigInvoice runs over several pages, with every kind of row the invoice
// prints and names outside cp1252.
func bigInvoice(status invoice.Status) *ent.Invoice {
	at := time.Date(2025, 3, 3, 6, 30, 0, 0, time.UTC)
	inv := &ent.Invoice{ID: "inv_01JTEST", Number: ptr("INV-2025-000042"), Status: status, IssuedAt: &at, CreatedAt: at,
		PeriodFrom: &at, PeriodTo: &at, Subtotal: 1234567, DiscountTotal: 1000, TaxRateBasisPoints: 825, TaxTotal: 100,
		Total: 1233667, PayerTotal: 1000000, PatientTotal: 233667, Paid: 5000, PatientPaid: 5000, MovedToPatient: 700}
	inv.Edges.Patient = &ent.Patient{Mrn: "100000009", GivenName: "Zoë", FamilyName: "Dvořák-Łukasz"}
	for i := range 80 {
		inv.Edges.Lines = append(inv.Edges.Lines, &ent.Charge{Code: fmt.Sprintf("LAB-%04d", i),
			Description: fmt.Sprintf("Test %d [Moles/volume] in Serum or Plasma, a long name that wraps", i),
			Quantity:    i%3 + 1, UnitPrice: 1500, Amount: int64(1500 * (i%3 + 1)), ServiceAt: at})
	}
	inv.Edges.Discounts = []*ent.InvoiceDiscount{{Amount: 1000, Reason: "Hardship"}}
	a := &ent.PaymentAllocation{Amount: 5000, Refunded: 1000}
	a.Edges.Payment = &ent.Payment{Method: payment.MethodMOBILE_MONEY, ReceivedAt: at, Reference: ptr("MM-1")}
	inv.Edges.Allocations = []*ent.PaymentAllocation{a}
	inv.Edges.Adjustments = []*ent.InvoiceAdjustment{{Kind: invoiceadjustment.KindMOVED_TO_PATIENT, Amount: 700}}
	return inv
}

func TestInvoiceRunsOverPages(t *testing.T) {
	for _, st := range []invoice.Status{invoice.StatusPARTIALLY_PAID, invoice.StatusDRAFT, invoice.StatusVOID} {
		var buf bytes.Buffer
		if err := render(&buf, bigInvoice(st), "HMIS Hospital", time.UTC, time.Now()); err != nil {
			t.Fatalf("%s: render: %v", st, err)
		}
		if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) || bytes.Count(buf.Bytes(), []byte("/Type /Page\n")) < 2 {
			t.Fatalf("%s: expected a PDF of several pages, got %d bytes", st, buf.Len())
		}
	}
}

func TestInvoiceWithNothingOnIt(t *testing.T) {
	inv := &ent.Invoice{ID: "inv_x", Status: invoice.StatusDRAFT, CreatedAt: time.Now()}
	inv.Edges.Patient = &ent.Patient{Mrn: "1", GivenName: "A", FamilyName: "B"}
	var buf bytes.Buffer
	if err := render(&buf, inv, "H", time.UTC, time.Now()); err != nil {
		t.Fatalf("render: %v", err)
	}
}

func TestInvoiceFormats(t *testing.T) {
	for in, want := range map[int64]string{0: "0.00", 5: "0.05", 123456: "1234.56", -1000: "-10.00"} {
		if got := money(in); got != want {
			t.Errorf("money(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[int]string{0: "0", 1600: "16", 825: "8.25", 750: "7.5"} {
		if got := rate(in); got != want {
			t.Errorf("rate(%d) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"Zoë Müller": "Zoë Müller", "Dvořák": "Dvorák", "Łukasz Đorđević": "Lukasz Dordevic", "患者": "??"} {
		if got := fold(in); got != want {
			t.Errorf("fold(%q) = %q, want %q", in, got, want)
		}
	}
}
