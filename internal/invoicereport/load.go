package invoicereport

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoiceadjustment"
	"github.com/hmis-dev/hmis/ent/invoicediscount"
	"github.com/hmis-dev/hmis/ent/paymentallocation"
	"github.com/hmis-dev/hmis/internal/pdfreport"
)

// load reads the invoice and what it prints in the viewer's context, so
// that row scope decides what exists.
func load(ctx context.Context, client *ent.Client, id string) (*ent.Invoice, error) {
	inv, err := client.Invoice.Query().
		Where(invoice.ID(id)).
		WithPatient().
		WithLines(func(q *ent.ChargeQuery) { q.Order(charge.ByServiceAt(), charge.ByID()) }).
		// A discount counts, and is printed, only once approved.
		WithDiscounts(func(q *ent.InvoiceDiscountQuery) {
			q.Where(invoicediscount.StatusEQ(invoicediscount.StatusAPPROVED)).Order(invoicediscount.ByCreatedAt(), invoicediscount.ByID())
		}).
		WithAllocations(func(q *ent.PaymentAllocationQuery) {
			q.WithPayment().Order(paymentallocation.ByCreatedAt(), paymentallocation.ByID())
		}).
		WithAdjustments(func(q *ent.InvoiceAdjustmentQuery) {
			q.Order(invoiceadjustment.ByCreatedAt(), invoiceadjustment.ByID())
		}).
		Only(ctx)
	if err != nil {
		return nil, err
	}
	// An invoice without the patient's identification is no invoice; row
	// scope hiding the patient means it is not the viewer's either.
	if inv.Edges.Patient == nil {
		return nil, pdfreport.ErrNotVisible
	}
	return inv, nil
}
