// Package pdfreport serves printable documents of patient data as PDFs
// (GET /reports/…/{id}.pdf) behind the same gates as the GraphQL API: the
// viewer from the request's credentials, the Casbin policy (one object per
// document), row scope in ent (the document is read through the scoped
// client in the viewer's context), and one audit row per request, without
// which nothing is sent. A document package (labreport, invoicereport)
// says what it prints and how; this one decides who gets it.
package pdfreport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// PathValue is the wildcard a document's pattern ends in. A ServeMux
// wildcard spans a whole path segment, so "{id}.pdf" cannot be one: the
// handler takes the segment and strips the extension itself.
const PathValue = "file"

// DefaultHospitalName heads documents when no hospital is named.
const DefaultHospitalName = "HMIS Hospital"

// Deps are what a document's handler is built from.
type Deps struct {
	// Client must carry the row-scope and audit-tracking interceptors:
	// the document reads only through it, with the viewer's context.
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

// ErrNotVisible is what a document's Make returns when row scope hid
// what the document must show (its patient): answered like a missing
// document, so that the two cannot be told apart.
var ErrNotVisible = errors.New("the document's patient is not visible")

// Document is one kind of printable document.
type Document struct {
	// Object is the policy object that allows printing it; Operation
	// names it in the audit trail.
	Object, Operation string
	// Noun names the document in messages ("invoice", "lab report");
	// What names the object its ID is of ("an invoice", "a lab order").
	Noun, What string
	// ObjectType is the entity the ID is of, for the audit trail;
	// FilePrefix starts the file name, which carries only the ID.
	ObjectType, FilePrefix string
	// ValidID tells a well-formed ID of ObjectType.
	ValidID func(string) bool
	// Printed are the patient-data fields the document shows, by type,
	// named as in the GraphQL schema so that the trail lists them alike.
	Printed map[string][]string
	// Make reads the document through d.Client in ctx and writes its PDF;
	// a row not found or ErrNotVisible is answered 404.
	Make func(ctx context.Context, d Deps, id string, w io.Writer) error
}

// NewHandler returns the handler of doc. Mount it behind the middleware
// that puts the viewer in the request's context.
func NewHandler(doc Document, d Deps) http.Handler {
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
		d.HospitalName = DefaultHospitalName
	}
	return &handler{doc: doc, d: d}
}

type handler struct {
	doc Document
	d   Deps
}

// outcome is what a request came to, decided before anything is written,
// so that the audit row can be appended first.
type outcome struct {
	status int
	err    *apperr.Error // nil: the document was made
	pdf    []byte
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := strings.CutSuffix(r.PathValue(PathValue), ".pdf")
	if !ok {
		http.NotFound(w, r)
		return
	}
	ctx, collector := audit.WithCollector(r.Context())
	out := h.serve(ctx, id)

	e := audit.RequestEntry(ctx, collector.Drain())
	e.Operation, e.Kind = h.doc.Operation, auditevent.KindHTTP
	e.Outcome, e.ErrorCode = auditOutcome(out)
	// Only a well-formed ID names an object; anything else is the client's
	// arbitrary text and stays out of the trail.
	if h.doc.ValidID(id) {
		e.ObjectTypes = append(e.ObjectTypes, h.doc.ObjectType)
		e.ObjectIDs = append(e.ObjectIDs, id)
	}
	if _, err := h.d.Trail.Append(ctx, e); err != nil {
		h.d.Log.ErrorContext(ctx, "audit append failed; "+h.doc.Noun+" withheld", "err", err,
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
	// The file name carries the ID only: a name or a number would put
	// patient data in browser histories and download folders.
	w.Header().Set("Content-Disposition", `inline; filename="`+h.doc.FilePrefix+id+`.pdf"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(out.pdf)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.pdf)
}

var internalError = &apperr.Error{Code: apperr.Internal, Message: "internal error"}

// serve decides the request: who asks, whether they may, and the document.
func (h *handler) serve(ctx context.Context, id string) outcome {
	v := auth.FromContext(ctx)
	if v == nil {
		audit.NoteDenied(ctx, h.doc.Object)
		return failed(http.StatusUnauthorized, apperr.Unauthenticatedf("sign in to print a %s", h.doc.Noun))
	}
	if !h.d.Enforcer.Allows(v, h.doc.Object) {
		audit.NoteDenied(ctx, h.doc.Object)
		return failed(http.StatusForbidden, apperr.Denied("your role may not print a %s", h.doc.Noun))
	}
	if !h.doc.ValidID(id) {
		return failed(http.StatusBadRequest, apperr.BadInput("id", "is not %s ID", h.doc.What))
	}
	var buf bytes.Buffer
	err := h.doc.Make(ctx, h.d, id, &buf)
	if ent.IsNotFound(err) || errors.Is(err, ErrNotVisible) {
		// Another patient's document is filtered out by row scope and
		// lands here too: the two must not be told apart.
		return failed(http.StatusNotFound, apperr.NotFoundf("%s not found", h.doc.Noun))
	}
	if err != nil {
		h.d.Log.ErrorContext(ctx, "make "+h.doc.Noun, "err", err, "request_id", requestinfo.From(ctx).RequestID)
		return failed(http.StatusInternalServerError, internalError)
	}
	for typ, fields := range h.doc.Printed {
		for _, f := range fields {
			audit.NoteField(ctx, typ, f)
		}
	}
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
