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
	"github.com/99designs/gqlgen/graphql/playground"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/graph"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/labreport"
	"github.com/hmis-dev/hmis/internal/metrics"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// Options are the limits and switches of the HTTP surface.
type Options struct {
	MaxPageSize     int
	DefaultPageSize int
	DepthLimit      int
	ComplexityLimit int
	// TrustedProxies are the proxies whose X-Forwarded-For entries are
	// believed; empty: the header is ignored.
	TrustedProxies []netip.Prefix
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
	mux.Handle("GET /{$}", playground.Handler("HMIS GraphiQL", "/graphql"))
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
	return withRequestInfo(o.TrustedProxies, withLogging(d.Log, authenticate(d.Auth, mux)))
}

func graphQLServer(d Deps, o Options) *handler.Server {
	srv := handler.New(pagedComplexity{
		ExecutableSchema: graph.NewExecutableSchema(graph.Config{Resolvers: d.Resolver}),
		defaultPage:      o.DefaultPageSize,
	})
	srv.AddTransport(transport.Websocket{
		// A client has this long to authenticate before the socket closes.
		InitTimeout: 10 * time.Second,
		// Keepalives for graphql-ws, pings for graphql-transport-ws, so
		// proxies do not cut idle dashboards; a missing pong is tolerated
		// because some clients never answer.
		KeepAlivePingInterval: 10 * time.Second,
		PingPongInterval:      25 * time.Second,
		MissingPongOk:         true,
		Implementation: transport.CoderWebsocketImplementation{AcceptOptions: websocket.AcceptOptions{
			// Browsers send cookies with cross-site WebSocket upgrades, but
			// HMIS authenticates with a token in connection_init, never a
			// cookie, so a foreign origin gains nothing it could not do itself.
			InsecureSkipVerify: true,
		}},
		InitFunc: func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
			credential := bearer(payload.Authorization())
			if credential == "" {
				credential = payload.GetString("authToken")
			}
			v, err := d.Auth.Authenticate(ctx, credential)
			if err != nil {
				// 4403 is graphql-transport-ws's "Forbidden" close code.
				return transport.WithWebsocketCloseCode(transport.AppendCloseReason(ctx, "Forbidden"), 4403), nil, err
			}
			return auth.WithViewer(ctx, v), nil, nil
		},
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(transport.POST{})
	srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	srv.Use(extension.Introspection{})
	srv.Use(depthLimit{max: o.DepthLimit})
	srv.Use(oneCredentialMutation{})
	srv.Use(extension.FixedComplexityLimit(o.ComplexityLimit))
	srv.Use(d.Metrics.Extension())
	srv.Use(audit.NewRecorder(d.Trail, d.Log))
	srv.Use(authz.NewFieldGuard(d.Enforcer))
	srv.Use(pageLimit{max: o.MaxPageSize, dflt: o.DefaultPageSize})
	srv.SetErrorPresenter(presentError(d.Log))
	srv.SetRecoverFunc(recoverPanic(d.Log))
	return srv
}

// authenticate puts the viewer of the request's bearer credential in its
// context. A request without one is anonymous; one with a bad one is
// refused outright, so a client with an expired token learns at once.
func authenticate(a *auth.Service, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		credential := bearer(header)
		if header != "" && credential == "" {
			writeGraphQLError(w, http.StatusUnauthorized, apperr.Unauthenticatedf("the Authorization header must be 'Bearer <token>'"))
			return
		}
		v, err := a.Authenticate(r.Context(), credential)
		if err != nil {
			status := http.StatusUnauthorized
			if apperr.CodeOf(err) == apperr.Internal {
				status = http.StatusServiceUnavailable
				err = &apperr.Error{Code: apperr.Internal, Message: "internal error"}
			}
			writeGraphQLError(w, status, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithViewer(r.Context(), v)))
	})
}

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
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeGraphQLError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, graphql.Response{Errors: gqlerror.List{{
		Message:    err.Error(),
		Extensions: map[string]any{"code": string(apperr.CodeOf(err))},
	}}})
}
