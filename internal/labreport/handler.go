// Package labreport serves the printable report of a lab order as a PDF,
// GET /reports/lab-orders/{id}.pdf. It passes the same gates as the
// GraphQL API: the viewer from the request's credentials, the Casbin policy
// (object Report.labOrder), row scope in ent (a patient gets only their own
// orders; results not yet verified are never printed), and one audit row
// per request, without which nothing is sent.
package labreport

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
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

const (
	// Pattern is the route to mount the handler on. A ServeMux wildcard
	// spans a whole path segment, so "{id}.pdf" cannot be one: the handler
	// takes the segment and strips the extension itself.
	Pattern = "GET /reports/lab-orders/{" + pathValue + "}"
	// Object is the policy object that allows printing the report.
	Object = "Report.labOrder"
	// Operation names the report in the audit trail.
	Operation = "report:labOrder"
	// defaultHospitalName heads reports when Deps names no hospital.
	defaultHospitalName = "HMIS Hospital"

	pathValue   = "file"
	orderPrefix = "lbo"
)

// Deps are what the handler is built from.
type Deps struct {
	// Client must carry the row-scope and audit-tracking interceptors:
	// the report reads only through it, with the viewer's context.
	Client   *ent.Client
	Enforcer *authz.Enforcer
	Trail    *audit.Trail
	// Location is the hospital's time zone, in which times are printed;
	// nil prints UTC.
	Location *time.Location
	// HospitalName heads every page.
	HospitalName string
	Log          *slog.Logger
	// Now is the clock the print time is read from; nil: time.Now.
	Now func() time.Time
}

// Handler serves the report. Mount it on Pattern, behind the middleware
// that puts the viewer in the request's context.
type Handler struct{ d Deps }

// NewHandler returns the report handler.
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
	return &Handler{d: d}
}

// outcome is what a request came to, decided before anything is written,
// so that the audit row can be appended first.
type outcome struct {
	status int
	err    *apperr.Error // nil: the report was made
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
	// Only a well-formed ID names an object; anything else is the client's
	// arbitrary text and stays out of the trail.
	if globalid.Valid(id, orderPrefix) {
		e.ObjectTypes = append(e.ObjectTypes, "LabOrder")
		e.ObjectIDs = append(e.ObjectIDs, id)
	}
	if _, err := h.d.Trail.Append(ctx, e); err != nil {
		h.d.Log.ErrorContext(ctx, "audit append failed; report withheld", "err", err,
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
	// The file name carries the order ID only: a name would put patient
	// data in browser histories and download folders.
	w.Header().Set("Content-Disposition", `inline; filename="lab-order-`+id+`.pdf"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(out.pdf)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.pdf)
}

var internalError = &apperr.Error{Code: apperr.Internal, Message: "internal error"}

// serve decides the request: who asks, whether they may, and the report.
func (h *Handler) serve(ctx context.Context, id string) outcome {
	v := auth.FromContext(ctx)
	if v == nil {
		audit.NoteDenied(ctx, Object)
		return failed(http.StatusUnauthorized, apperr.Unauthenticatedf("sign in to print reports"))
	}
	if !h.d.Enforcer.Allows(v, Object) {
		audit.NoteDenied(ctx, Object)
		return failed(http.StatusForbidden, apperr.Denied("your role may not print lab reports"))
	}
	if !globalid.Valid(id, orderPrefix) {
		return failed(http.StatusBadRequest, apperr.BadInput("id", "is not a lab order ID"))
	}
	order, err := load(ctx, h.d.Client, id)
	if ent.IsNotFound(err) || errors.Is(err, errNotVisible) {
		// Another patient's order is filtered out by row scope and lands
		// here too: the two must not be told apart.
		return failed(http.StatusNotFound, apperr.NotFoundf("lab order not found"))
	}
	if err != nil {
		h.d.Log.ErrorContext(ctx, "load lab report", "err", err, "request_id", requestinfo.From(ctx).RequestID)
		return failed(http.StatusInternalServerError, internalError)
	}
	var buf bytes.Buffer
	if err := render(&buf, order, h.d.HospitalName, h.d.Location, h.d.Now()); err != nil {
		h.d.Log.ErrorContext(ctx, "render lab report", "err", err, "request_id", requestinfo.From(ctx).RequestID)
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

// printedFields are the patient-data fields a report shows, named as in the
// GraphQL schema so that the trail lists them alike.
var printedFields = map[string][]string{
	"Patient":      {"givenName", "familyName", "mrn", "birthDate", "sex"},
	"LabOrder":     {"orderedBy", "orderedAt", "priority", "clinicalNotes"},
	"LabSpecimen":  {"accessionNumber", "specimenType", "status", "collectedBy", "collectedAt", "receivedBy", "receivedAt", "rejectionReason", "rejectionNote"},
	"LabOrderItem": {"test", "specimen", "status", "cancelReason"},
	"LabResult": {"status", "numericValue", "codedValue", "textValue", "unit", "flag", "referenceLow", "referenceHigh",
		"comment", "verifiedBy", "verifiedAt", "replaces", "amendReason"},
}

func notePrinted(ctx context.Context) {
	for typ, fields := range printedFields {
		for _, f := range fields {
			audit.NoteField(ctx, typ, f)
		}
	}
}

// writeError answers in the shape of the API's own errors, so a client
// handles both alike. Messages never carry patient data.
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
