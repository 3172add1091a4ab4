// Package httpapi is HMIS's HTTP surface: the GraphQL endpoint (POST, GET
// and WebSocket subscriptions), GraphiQL, health checks and metrics, and the
// middleware every request passes: request ID, client address, credentials
// and structured logs without patient data.
package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/graph"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/cache"
	"github.com/hmis-dev/hmis/internal/console"
	"github.com/hmis-dev/hmis/internal/fhir"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/invoicereport"
	"github.com/hmis-dev/hmis/internal/labhl7"
	"github.com/hmis-dev/hmis/internal/labreport"
	"github.com/hmis-dev/hmis/internal/metrics"
	"github.com/hmis-dev/hmis/internal/patientbilling"
	"github.com/hmis-dev/hmis/internal/payslipreport"
	"github.com/hmis-dev/hmis/internal/reports"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// Options are the limits and switches of the HTTP surface.
type Options struct {
	MaxPageSize     int
	DefaultPageSize int
	DepthLimit      int
	ComplexityLimit int
	// ListWeight is how many items a list without a page argument is
	// assumed to hold when a query's cost is weighed.
	ListWeight int
	// FieldLimit and RootFieldLimit bound the fields one operation selects.
	FieldLimit     int
	RootFieldLimit int
	// MaxBodyBytes bounds a request body; MaxVariablesBytes the variables
	// of one operation, MaxResponseBytes one response.
	MaxBodyBytes      int64
	MaxVariablesBytes int64
	MaxResponseBytes  int64
	// RequestTimeout is the deadline of a request, and of a query or
	// mutation over WebSocket.
	RequestTimeout time.Duration
	// GraphiQL serves GraphiQL at /.
	GraphiQL bool
	// Examples serves the example ward dashboard (console.DashboardPath).
	Examples bool
	// Introspection says who may introspect: config.IntrospectionAnyone,
	// IntrospectionSignedIn or IntrospectionNobody.
	Introspection string
	// TrustedProxies are the proxies whose X-Forwarded-For entries are
	// believed; empty: the header is ignored.
	TrustedProxies []netip.Prefix
	// SessionCheckInterval is how often an idle WebSocket checks whether
	// its session has ended.
	SessionCheckInterval time.Duration
	// PersistedQueryTTL is how long an automatic persisted query's
	// document is kept.
	PersistedQueryTTL time.Duration
	// KnownDocuments, when not nil, are the only documents executed, by
	// their SHA-256 hash.
	KnownDocuments map[string]string
	// FHIRBaseURL is the FHIR API's absolute URL for links (empty: from
	// the request); FHIRMRNSystem the Identifier.system of MRNs.
	FHIRBaseURL, FHIRMRNSystem string
}

// Deps are the parts the handler is built from.
type Deps struct {
	Resolver *graph.Resolver
	Auth     *auth.Service
	Enforcer *authz.Enforcer
	Trail    *audit.Trail
	Metrics  *metrics.Metrics
	Log      *slog.Logger
	// Location is the hospital's time zone, in which reports print times.
	Location *time.Location
	// HospitalName heads printed reports.
	HospitalName string
	// Cache keeps automatic persisted queries, shared by the processes
	// of a deployment when it is Redis.
	Cache cache.Cache
	// Ready reports whether the database and the broker answer.
	Ready func(ctx context.Context) error
}

// New returns the handler serving every HMIS endpoint.
func New(d Deps, o Options) http.Handler {
	gql := graphQLServer(d, o)
	mux := http.NewServeMux()
	mux.Handle("/graphql", gql)
	mux.Handle(labreport.Pattern, labreport.NewHandler(labreport.Deps{
		Client: d.Resolver.Client, Enforcer: d.Enforcer, Trail: d.Trail, Location: d.Location, HospitalName: d.HospitalName, Log: d.Log,
	}))
	mux.Handle(invoicereport.Pattern, invoicereport.NewHandler(invoicereport.Deps{
		Client: d.Resolver.Client, Enforcer: d.Enforcer, Trail: d.Trail, Location: d.Location, HospitalName: d.HospitalName, Log: d.Log,
	}))
	mux.Handle(payslipreport.Pattern, payslipreport.NewHandler(payslipreport.Deps{
		Client: d.Resolver.Client, Enforcer: d.Enforcer, Trail: d.Trail, Location: d.Location, HospitalName: d.HospitalName, Log: d.Log,
	}))
	// FHIR R4 reads: the same viewer, policy, row scope and audit trail
	// as /graphql, answered in FHIR's shapes.
	mux.Handle(fhir.Prefix, fhir.NewHandler(fhir.Deps{
		Client: d.Resolver.Client, Enforcer: d.Enforcer, Trail: d.Trail, Log: d.Log,
		BaseURL: o.FHIRBaseURL, MRNSystem: o.FHIRMRNSystem, MaxPageSize: o.MaxPageSize, DefaultPageSize: o.DefaultPageSize,
	}))
	// Lab analyzers' results (HL7 v2), with the instrument's API key.
	mux.Handle(labhl7.Pattern, labhl7.Handler(d.Resolver.Instruments, d.Enforcer, d.Trail, d.Log))
	mux.Handle(reports.CSVPattern, reports.CSVHandler(d.Resolver.Reports, d.Enforcer, d.Trail, d.Log))
	// Providers' confirmations: no bearer credential, the body's signature
	// under the provider's secret is what they are believed by.
	mux.Handle(patientbilling.CallbackPattern, patientbilling.CallbackHandler(d.Resolver.PatientBilling, d.Trail, d.Log))
	console.Register(mux, console.Options{GraphiQL: o.GraphiQL, Examples: o.Examples})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		if err := d.Ready(ctx); err != nil {
			d.Log.WarnContext(ctx, "not ready", "err", err)
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", d.Metrics.Handler())
	return withRequestInfo(o.TrustedProxies, withLogging(d.Log, withDeadline(o.RequestTimeout, authenticate(d.Auth, mux))))
}

// withDeadline bounds every request but a WebSocket's, whose operations get
// theirs from the deadline extension: the socket itself lives as long as
// the dashboard that opened it.
func withDeadline(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), d)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func graphQLServer(d Deps, o Options) *handler.Server {
	srv := handler.New(pagedComplexity{
		ExecutableSchema: graph.NewExecutableSchema(graph.Config{Resolvers: d.Resolver}),
		defaultPage:      o.DefaultPageSize,
		listWeight:       o.ListWeight,
	})
	addWebsocket(srv, d.Auth, d.Trail, d.Log, o.SessionCheckInterval, o.MaxBodyBytes)
	srv.AddTransport(transport.Options{})
	srv.AddTransport(graphQLHTTP{maxBody: o.MaxBodyBytes})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	// Outermost first: the deadline covers everything an operation does,
	// and the response limit sees the response the client would get.
	srv.Use(deadline{d: o.RequestTimeout})
	// Before anything reads the document: a hash becomes its document.
	if d.Cache != nil {
		srv.Use(persistedQueryExtension{extension.AutomaticPersistedQuery{Cache: persistedQueries{cache: d.Cache, ttl: o.PersistedQueryTTL, known: o.KnownDocuments}}})
	}
	if o.KnownDocuments != nil {
		srv.Use(knownDocuments{known: o.KnownDocuments})
	}
	srv.Use(responseLimit{max: o.MaxResponseBytes})
	srv.Use(variablesLimit{max: o.MaxVariablesBytes})
	// Refusals before anything runs, cheapest first; the page rule comes
	// before the cost so that an oversized page is named as such.
	srv.Use(introspection{who: o.Introspection})
	srv.Use(fieldLimit{fields: o.FieldLimit, roots: o.RootFieldLimit})
	page := pageLimit{max: o.MaxPageSize, dflt: o.DefaultPageSize}
	srv.Use(page)
	srv.Use(depthLimit{max: o.DepthLimit})
	srv.Use(oneCredentialMutation{})
	srv.Use(delegatedKeyReadsOnly{})
	srv.Use(extension.FixedComplexityLimit(o.ComplexityLimit))
	srv.Use(d.Metrics.Extension())
	srv.Use(audit.NewRecorder(d.Trail, d.Log))
	guard := authz.NewFieldGuard(d.Enforcer, d.Resolver.Client)
	guard.BeforeResolve(page.defaultPage)
	srv.Use(guard)
	srv.SetErrorPresenter(presentError(d.Log))
	srv.SetRecoverFunc(recoverPanic(d.Log))
	return srv
}

// authenticate puts the viewer of the request's bearer credential in its
// context. A request without one is anonymous; one with a bad one is
// refused outright, so a client with an expired token learns at once.
func authenticate(a *auth.Service, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		refuse := func(status int, err error) {
			if strings.HasPrefix(r.URL.Path, fhir.Prefix) {
				// FHIR clients expect an OperationOutcome for every error.
				e, ok := apperr.As(err)
				if !ok {
					e = &apperr.Error{Code: apperr.Internal, Message: "internal error"}
				}
				fhir.WriteError(w, status, fhir.IssueFor(status), e)
				return
			}
			// In the media type the client asked for, like every other
			// refusal of a GraphQL request.
			w.Header().Set("Content-Type", responseMedia(r))
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hmis"`)
			}
			writeGraphQLError(w, status, err)
		}
		header := r.Header.Get("Authorization")
		credential := bearer(header)
		if header != "" && credential == "" {
			refuse(http.StatusUnauthorized, apperr.Unauthenticatedf("the Authorization header must be 'Bearer <token>'"))
			return
		}
		v, err := a.Authenticate(r.Context(), credential)
		if err != nil {
			status := http.StatusUnauthorized
			if apperr.CodeOf(err) == apperr.Internal {
				status = http.StatusServiceUnavailable
				err = &apperr.Error{Code: apperr.Internal, Message: "internal error"}
			}
			refuse(status, err)
			return
		}
		if v != nil && v.Scopes != nil && !strings.HasPrefix(r.URL.Path, fhir.Prefix) {
			refuse(http.StatusForbidden, errScopedKey)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithViewer(r.Context(), v)))
	})
}

// errScopedKey refuses an API key with SMART scopes anywhere but the FHIR
// API: scopes name FHIR types, and a GraphQL operation or a report has no
// such type to check them against, so the key would have its whole role
// there. Refusing keeps the scopes a narrowing everywhere.
var errScopedKey = apperr.Denied("an API key with SMART scopes reads only the FHIR API (%s)", fhir.Prefix)

func bearer(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// requestIDPattern accepts a caller's request ID only if it is short and
// plain, so logs and the audit trail cannot be fed arbitrary text.
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._\-]{8,64}$`)

func withRequestInfo(trustedProxies []netip.Prefix, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-ID")
		if !requestIDPattern.MatchString(id) {
			id = globalid.New("req")
		}
		w.Header().Set("X-Request-ID", id)
		info := requestinfo.Info{RequestID: id, ClientAddr: clientAddr(r, trustedProxies)}
		next.ServeHTTP(w, r.WithContext(requestinfo.With(r.Context(), info)))
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Hijack hands the connection to the WebSocket upgrade.
func (s *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	s.status = http.StatusSwitchingProtocols
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

// withLogging logs one line per request: method, path, status, duration,
// request ID. Never the query, variables or body: they carry patient data.
func withLogging(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		log.InfoContext(r.Context(), "http request",
			"method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration_ms", time.Since(start).Milliseconds(),
			"request_id", requestinfo.From(r.Context()).RequestID)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeGraphQLError(w http.ResponseWriter, status int, err error) {
	ext := map[string]any{"code": string(apperr.CodeOf(err))}
	if ae, ok := apperr.As(err); ok && ae.Field != "" {
		ext["field"] = ae.Field
	}
	writeJSON(w, status, graphql.Response{Errors: gqlerror.List{{Message: err.Error(), Extensions: ext}}})
}
