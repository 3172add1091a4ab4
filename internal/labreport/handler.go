// Package labreport is the printable report of a lab order,
// GET /reports/lab-orders/{id}.pdf: what it prints and how. Who gets it is
// decided as for every document (internal/pdfreport): the policy object
// Report.labOrder, row scope (a patient gets only their own orders; results
// not yet verified are never printed), and one audit row per request.
package labreport

import (
	"context"
	"io"
	"net/http"

	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/pdfreport"
)

const (
	// Pattern is the route to mount the handler on.
	Pattern = "GET /reports/lab-orders/{" + pdfreport.PathValue + "}"
	// Object is the policy object that allows printing the report.
	Object = "Report.labOrder"
	// Operation names the report in the audit trail.
	Operation = "report:labOrder"

	orderPrefix = "lbo"
)

// Deps are what the handler is built from.
type Deps = pdfreport.Deps

// NewHandler returns the report handler. Mount it on Pattern, behind the
// middleware that puts the viewer in the request's context.
func NewHandler(d Deps) http.Handler { return pdfreport.NewHandler(document, d) }

var document = pdfreport.Document{
	Object: Object, Operation: Operation,
	Noun: "lab report", What: "a lab order",
	ObjectType: "LabOrder", FilePrefix: "lab-order-",
	ValidID: func(id string) bool { return globalid.Valid(id, orderPrefix) },
	Printed: map[string][]string{
		"Patient":      {"givenName", "familyName", "mrn", "birthDate", "sex"},
		"LabOrder":     {"orderedBy", "orderedAt", "priority", "clinicalNotes"},
		"LabSpecimen":  {"accessionNumber", "specimenType", "status", "collectedBy", "collectedAt", "receivedBy", "receivedAt", "rejectionReason", "rejectionNote"},
		"LabOrderItem": {"test", "specimen", "status", "cancelReason"},
		"LabResult": {"status", "numericValue", "codedValue", "textValue", "unit", "flag", "referenceLow", "referenceHigh",
			"comment", "verifiedBy", "verifiedAt", "replaces", "amendReason"},
	},
	Make: func(ctx context.Context, d Deps, id string, w io.Writer) error {
		order, err := load(ctx, d.Client, id)
		if err != nil {
			return err
		}
		return render(w, order, d.HospitalName, d.Location, d.Now())
	},
}
