// Package invoicereport serves the printable invoice as a PDF,
// GET /reports/invoices/{id}.pdf. It passes the same gates as the GraphQL
// API: the viewer from the request's credentials, the Casbin policy (object
// Report.invoice), row scope in ent (a patient gets only their own invoices,
// and only once issued), and one audit row per request, without which
// nothing is sent.
package invoicereport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

const (
	// Pattern is the route to mount the handler on; a ServeMux wildcard
	// is a whole segment, so the handler strips ".pdf" itself.
	Pattern = "GET /reports/invoices/{" + pathValue + "}"
	// Object is the policy object that allows printing an invoice.
	Object = "Report.invoice"
	// Operation names the report in the audit trail.
	Operation = "report:invoice"

	defaultHospitalName = "HMIS Hospital"
	pathValue           = "file"
)

// Deps are what the handler is built from.
type Deps struct {
	// Client must carry the row-scope and audit-tracking interceptors:
	// the invoice is read only through it, with the viewer's context.
	Client   *ent.Client
	Enforcer *authz.Enforcer
	Trail    *audit.Trail
	// Location is the hospital's time zone; nil prints UTC.
	Location     *time.Location
	HospitalName string
	Log          *slog.Logger
	Now          func() time.Time
}

// Handler serves the printable invoice.
type Handler struct{ d Deps }

// NewHandler returns the handler.
func NewHandler(d Deps) *Handler {
	if d.Location == nil {
		d.Location = time.UTC
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.HospitalName == "" {
		d.HospitalName = defaultHospitalName
	}
	return &Handler{d: d}
}

// outcome is decided before anything is written, so that the audit row
// goes first.
type outcome struct {
	status int
	err    *apperr.Error
	pdf    []byte
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue(pathValue), ".pdf")
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx, collector := audit.WithCollector(r.Context())
	out := h.serve(ctx, id)

	e := audit.RequestEntry(ctx, collector.Drain())
	e.Operation, e.Kind = Operation, auditevent.KindHTTP
	e.Outcome, e.ErrorCode = auditOutcome(out)
	// Only a well-formed ID names an object; anything else is the
	// client's arbitrary text and stays out of the trail.
	if input.Invoice.Valid(id) {
		e.ObjectTypes = append(e.ObjectTypes, "Invoice")
		e.ObjectIDs = append(e.ObjectIDs, id)
	}
	if _, err := h.d.Trail.Append(ctx, e); err != nil {
		h.d.Log.ErrorContext(ctx, "audit append failed; invoice withheld", "err", err,
			"request_id", requestinfo.From(ctx).RequestID)
		out = outcome{status: http.StatusInternalServerError, err: internalError}
	}

	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if out.err != nil {
		writeError(w, out.status, out.err)
		return
	}
	w.Header().Set("Content-Type", "application/pdf")
	// The invoice ID only: a name or number would put patient data in
	// browser histories and download folders.
	w.Header().Set("Content-Disposition", `inline; filename="invoice-`+id+`.pdf"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(out.pdf)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.pdf)
}

var internalError = &apperr.Error{Code: apperr.Internal, Message: "internal error"}

func (h *Handler) serve(ctx context.Context, id string) outcome {
	v := auth.FromContext(ctx)
	if v == nil {
		audit.NoteDenied(ctx, Object)
		return failed(http.StatusUnauthorized, apperr.Unauthenticatedf("sign in to print invoices"))
	}
	if !h.d.Enforcer.Allows(v, Object) {
		audit.NoteDenied(ctx, Object)
		return failed(http.StatusForbidden, apperr.Denied("your role may not print invoices"))
	}
	if !input.Invoice.Valid(id) {
		return failed(http.StatusBadRequest, apperr.BadInput("id", "is not an invoice ID"))
	}
	inv, err := load(ctx, h.d.Client, id)
	if ent.IsNotFound(err) || errors.Is(err, errNotVisible) {
		// Another patient's invoice, or a draft the viewer may not see,
		// is filtered out by row scope and lands here too.
		return failed(http.StatusNotFound, apperr.NotFoundf("invoice not found"))
	}
	if err != nil {
		h.d.Log.ErrorContext(ctx, "load invoice", "err", err, "request_id", requestinfo.From(ctx).RequestID)
		return failed(http.StatusInternalServerError, internalError)
	}
	var buf bytes.Buffer
	if err := render(&buf, inv, h.d.HospitalName, h.d.Location, h.d.Now()); err != nil {
		h.d.Log.ErrorContext(ctx, "render invoice", "err", err, "request_id", requestinfo.From(ctx).RequestID)
		return failed(http.StatusInternalServerError, internalError)
	}
	notePrinted(ctx)
	return outcome{status: http.StatusOK, pdf: buf.Bytes()}
}

func failed(status int, err *apperr.Error) outcome { return outcome{status: status, err: err} }

func auditOutcome(o outcome) (auditevent.Outcome, string) {
	switch {
	case o.err == nil:
		return auditevent.OutcomeALLOWED, ""
	case o.err.Code == apperr.Unauthenticated, o.err.Code == apperr.Forbidden:
		return auditevent.OutcomeDENIED, string(o.err.Code)
	}
	return auditevent.OutcomeFAILED, string(o.err.Code)
}

// printedFields are the patient-data fields the invoice shows, named as in
// the GraphQL schema so that the trail lists them alike.
var printedFields = map[string][]string{
	"Patient": {"givenName", "familyName", "mrn"},
	"Invoice": {"number", "status", "issuedAt", "periodFrom", "periodTo", "subtotal", "discountTotal", "taxRateBasisPoints",
		"taxTotal", "total", "payerTotal", "patientTotal", "paid", "movedToPatient", "writtenOff", "voidReason"},
	"Charge":            {"code", "description", "quantity", "unitPrice", "amount", "serviceAt"},
	"InvoiceDiscount":   {"amount", "reason"},
	"PaymentAllocation": {"amount", "refunded"},
	"Payment":           {"method", "receivedAt", "reference"},
	"InvoiceAdjustment": {"kind", "amount"},
}

func notePrinted(ctx context.Context) {
	for typ, fields := range printedFields {
		for _, f := range fields {
			audit.NoteField(ctx, typ, f)
		}
	}
}

// writeError answers in the shape of the API's own errors.
func writeError(w http.ResponseWriter, status int, err *apperr.Error) {
	ext := map[string]any{"code": string(err.Code)}
	if err.Field != "" {
		ext["field"] = err.Field
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": err.Error(), "extensions": ext}},
	})
}
