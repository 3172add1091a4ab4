// Package fhir is HMIS's FHIR R4 read API (GET /fhir/R4/…): a
// CapabilityStatement, read and search of the resources an integrator
// needs, and Patient/{id}/$everything, mapped from the one data model.
//
// It is a second front door to the same access decision as GraphQL: the
// viewer from the request's credentials (bearer token or API key), the
// Casbin policy asked about the GraphQL coordinate each element comes from
// (an element the role may not read is left out; a resource whose id it
// may not read is not returned; a type whose root query it may not call is
// 403), the API key's SMART scopes narrowing that, row scope and the care
// relationship rule in ent (every read goes through the scoped client with
// the viewer's context), and one audit row per request appended before the
// response leaves — if it cannot be written, nothing is sent.
package fhir

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// Prefix is the path the API is mounted under.
const Prefix = "/fhir/R4/"

// MediaType is what every answer is sent as.
const MediaType = "application/fhir+json; charset=utf-8"

// DefaultMRNSystem is the Identifier.system of a patient's MRN when none
// is configured.
const DefaultMRNSystem = "urn:hmis:mrn"

// Deps are what the handler is built from.
type Deps struct {
	// Client must carry the row-scope and audit-tracking interceptors:
	// every read goes through it with the viewer's context.
	Client   *ent.Client
	Enforcer *authz.Enforcer
	Trail    *audit.Trail
	Log      *slog.Logger
	// BaseURL is the absolute URL of the API (https://hmis.example/fhir/R4)
	// for fullUrl and paging links; empty: taken from the request.
	BaseURL string
	// MRNSystem is the Identifier.system of medical record numbers.
	MRNSystem string
	// MaxPageSize bounds _count; DefaultPageSize is used without one.
	MaxPageSize, DefaultPageSize int
	// MaxEverything bounds the resources of one type $everything returns.
	MaxEverything int
}

// NewHandler returns the API's handler. Mount it on Prefix behind the
// middleware that puts the viewer in the request's context.
func NewHandler(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.MRNSystem == "" {
		d.MRNSystem = DefaultMRNSystem
	}
	if d.MaxPageSize < 1 {
		d.MaxPageSize = 100
	}
	if d.DefaultPageSize < 1 || d.DefaultPageSize > d.MaxPageSize {
		d.DefaultPageSize = d.MaxPageSize
	}
	if d.MaxEverything < 1 {
		d.MaxEverything = 1000
	}
	d.BaseURL = strings.TrimSuffix(d.BaseURL, "/")
	return &handler{d: d}
}

type handler struct{ d Deps }

// failure is a refusal decided before anything is written.
type failure struct {
	status int
	err    *apperr.Error
	issue  string // the OperationOutcome issue code
}

func (f *failure) Error() string { return f.err.Error() }

func fail(status int, issue string, err *apperr.Error) *failure {
	return &failure{status: status, err: err, issue: issue}
}

var internalError = &apperr.Error{Code: apperr.Internal, Message: "internal error"}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	rest := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/"))
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		WriteError(w, http.StatusMethodNotAllowed, "not-supported", apperr.BadInput("", "this FHIR API is read-only: use GET"))
		return
	}
	if len(parts) == 1 && parts[0] == "metadata" {
		// The CapabilityStatement says what the server does, nothing about
		// anyone: clients read it before they hold a credential.
		writeResource(w, http.StatusOK, h.capabilityStatement(h.base(r)))
		return
	}

	ctx, collector := audit.WithCollector(r.Context())
	req := &request{h: h, ctx: ctx, base: h.base(r), query: r.URL.Query(), viewer: auth.FromContext(ctx)}
	req.decider = h.d.Enforcer.Decider(req.viewer)
	body, f := req.serve(parts)

	e := audit.RequestEntry(ctx, collector.Drain())
	e.Operation, e.Kind = req.operation, auditevent.KindHTTP
	switch {
	case f == nil:
		e.Outcome = auditevent.OutcomeALLOWED
	case f.status == http.StatusUnauthorized || f.status == http.StatusForbidden:
		e.Outcome, e.ErrorCode = auditevent.OutcomeDENIED, string(f.err.Code)
	default:
		e.Outcome, e.ErrorCode = auditevent.OutcomeFAILED, string(f.err.Code)
	}
	if req.objectID != "" {
		e.ObjectTypes, e.ObjectIDs = append(e.ObjectTypes, req.objectType), append(e.ObjectIDs, req.objectID)
	}
	if e.Operation == "" {
		e.Operation = "fhir"
	}
	if _, err := h.d.Trail.Append(ctx, e); err != nil {
		h.d.Log.ErrorContext(ctx, "audit append failed; FHIR response withheld", "err", err,
			"request_id", requestinfo.From(ctx).RequestID)
		body, f = nil, fail(http.StatusInternalServerError, "exception", internalError)
	}
	if f != nil {
		WriteError(w, f.status, f.issue, f.err)
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// base is the absolute URL of the API, without a trailing slash.
func (h *handler) base(r *http.Request) string {
	if h.d.BaseURL != "" {
		return h.d.BaseURL
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + strings.TrimSuffix(Prefix, "/")
}

// request is one FHIR request being served.
type request struct {
	h       *handler
	ctx     context.Context
	base    string
	query   url.Values
	viewer  *auth.Viewer
	decider *authz.Decider
	// What the audit row names.
	operation, objectType, objectID string
}

func (q *request) serve(parts []string) ([]byte, *failure) {
	if q.viewer == nil {
		audit.NoteDenied(q.ctx, "FHIR")
		return nil, fail(http.StatusUnauthorized, "login", apperr.Unauthenticatedf("sign in, or send an API key, to read FHIR resources"))
	}
	if len(parts) == 0 || parts[0] == "" {
		return nil, fail(http.StatusNotFound, "not-supported", apperr.NotFoundf("name a resource type: see %s/metadata", q.base))
	}
	k, ok := kinds[parts[0]]
	if !ok {
		return nil, fail(http.StatusNotFound, "not-supported", apperr.NotFoundf("resource type %q is not served", truncate(parts[0], 40)))
	}
	switch {
	case len(parts) == 1:
		q.operation = "fhir:search:" + k.name
		return q.search(k)
	case len(parts) == 2:
		q.operation = "fhir:read:" + k.name
		return q.read(k, parts[1])
	case len(parts) == 3 && k.name == "Patient" && parts[2] == "$everything":
		q.operation = "fhir:everything"
		return q.everything(parts[1])
	}
	return nil, fail(http.StatusNotFound, "not-supported", apperr.NotFoundf("no such FHIR interaction"))
}

// allowedKind refuses a type the viewer may not read at all: no root
// coordinate of it allowed by the role, or not covered by the key's scopes.
func (q *request) allowedKind(k *kind) *failure {
	if !q.viewer.MayRead(k.name) {
		audit.NoteDenied(q.ctx, "FHIR."+k.name)
		return fail(http.StatusForbidden, "forbidden", apperr.Denied("the API key's scopes do not allow reading %s", k.name))
	}
	for _, src := range k.sources {
		if q.sourceAllowed(src) {
			return nil
		}
	}
	for _, src := range k.sources {
		audit.NoteDenied(q.ctx, src.root[len(src.root)-1])
	}
	return fail(http.StatusForbidden, "forbidden", apperr.Denied("your role may not read %s", k.name))
}

func (q *request) sourceAllowed(src *source) bool {
	for _, c := range src.root {
		if !q.decider.Allows(c) {
			return false
		}
	}
	return q.decider.Allows(src.typ + ".id")
}

func (q *request) internal(err error) *failure {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fail(http.StatusServiceUnavailable, "timeout", &apperr.Error{Code: apperr.Internal, Message: "the request took too long"})
	}
	var f *failure
	if errors.As(err, &f) {
		return f
	}
	q.h.d.Log.ErrorContext(q.ctx, "fhir", "err", err, "request_id", requestinfo.From(q.ctx).RequestID)
	return fail(http.StatusInternalServerError, "exception", internalError)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", MediaType)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeResource(w http.ResponseWriter, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "exception", internalError)
		return
	}
	writeJSON(w, status, b)
}

// WriteError answers with an OperationOutcome: FHIR clients expect one for
// every error. The message never carries patient data; the GraphQL error
// code travels as the issue's details, so a client handles both APIs alike.
func WriteError(w http.ResponseWriter, status int, issue string, err *apperr.Error) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hmis"`)
	}
	writeJSON(w, status, marshalOutcome(issue, err))
}

// IssueFor is the OperationOutcome issue code of an HTTP status, for
// refusals made before the handler runs (a bad credential).
func IssueFor(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "login"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "not-found"
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusTooManyRequests:
		return "throttled"
	}
	return "exception"
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}
