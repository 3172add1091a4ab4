// Package invoicereport is the printable invoice,
// GET /reports/invoices/{id}.pdf: what it prints and how. Who gets it is
// decided as for every document (internal/pdfreport): the policy object
// Report.invoice, row scope (a patient gets only their own invoices, and
// only once issued), and one audit row per request.
package invoicereport

import (
	"context"
	"io"
	"net/http"

	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/pdfreport"
)

const (
	// Pattern is the route to mount the handler on.
	Pattern = "GET /reports/invoices/{" + pdfreport.PathValue + "}"
	// Object is the policy object that allows printing an invoice.
	Object = "Report.invoice"
	// Operation names the report in the audit trail.
	Operation = "report:invoice"
)

// Deps are what the handler is built from.
type Deps = pdfreport.Deps

// NewHandler returns the handler. Mount it on Pattern, behind the
// middleware that puts the viewer in the request's context.
func NewHandler(d Deps) http.Handler { return pdfreport.NewHandler(document, d) }

var document = pdfreport.Document{
	Object: Object, Operation: Operation,
	Noun: "invoice", What: "an invoice",
	ObjectType: "Invoice", FilePrefix: "invoice-",
	ValidID: input.Invoice.Valid,
	Printed: map[string][]string{
		"Patient": {"givenName", "familyName", "mrn"},
		"Invoice": {"number", "status", "issuedAt", "periodFrom", "periodTo", "subtotal", "discountTotal", "taxRateBasisPoints",
			"taxTotal", "total", "payerTotal", "patientTotal", "paid", "movedToPatient", "writtenOff", "voidReason"},
		"Charge":            {"code", "description", "quantity", "unitPrice", "amount", "serviceAt"},
		"InvoiceDiscount":   {"amount", "reason"},
		"PaymentAllocation": {"amount", "refunded"},
		"Payment":           {"method", "receivedAt", "reference"},
		"InvoiceAdjustment": {"kind", "amount"},
	},
	Make: func(ctx context.Context, d Deps, id string, w io.Writer) error {
		inv, err := load(ctx, d.Client, id)
		if err != nil {
			return err
		}
		return render(w, inv, d.HospitalName, d.Location, d.Now())
	},
}
