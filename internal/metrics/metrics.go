// Package metrics exposes Prometheus metrics: GraphQL requests by operation,
// their latency, live subscriptions and the database pool. Labels are
// schema field names and outcomes, never values a client sent.
package metrics

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/internal/apperr"
)

// Metrics is one server's registry and instruments.
type Metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	subscriptions prometheus.Gauge
}

// New registers the instruments, the pool statistics of db and the count
// of statements sent to it.
func New(db *sql.DB, statements func() int64) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hmis_graphql_requests_total",
			Help: "GraphQL responses by operation (root fields) and outcome.",
		}, []string{"operation", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hmis_graphql_request_duration_seconds",
			Help:    "Time to produce a GraphQL query or mutation response, by operation.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hmis_graphql_subscriptions_active",
			Help: "Subscriptions currently streaming.",
		}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.subscriptions,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "hmis_db_statements_total",
			Help: "SQL statements sent to the database.",
		}, func() float64 { return float64(statements()) }),
		collectors.NewDBStatsCollector(db, "hmis"),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Extension returns the gqlgen extension that feeds the instruments.
func (m *Metrics) Extension() graphql.HandlerExtension { return extension{m} }

type extension struct{ m *Metrics }

func (extension) ExtensionName() string                   { return "Metrics" }
func (extension) Validate(graphql.ExecutableSchema) error { return nil }

func (e extension) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil || oc.Operation.Operation != ast.Subscription {
		return next(ctx)
	}
	responses := next(ctx)
	e.m.subscriptions.Inc()
	var done sync.Once
	end := func() { done.Do(e.m.subscriptions.Dec) }
	context.AfterFunc(ctx, end)
	return func(ctx context.Context) *graphql.Response {
		resp := responses(ctx)
		if resp == nil {
			end()
		}
		return resp
	}
}

func (e extension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	start := time.Now()
	resp := next(ctx)
	if resp == nil || !graphql.HasOperationContext(ctx) {
		return resp
	}
	oc := graphql.GetOperationContext(ctx)
	op := "invalid"
	if oc.Operation != nil {
		op = operationLabel(oc)
		if oc.Operation.Operation != ast.Subscription {
			e.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		}
	}
	outcome := "ok"
	if len(resp.Errors) > 0 {
		outcome = "error"
		if code, _ := resp.Errors[0].Extensions["code"].(string); knownCodes[code] {
			outcome = strings.ToLower(code)
		}
	}
	e.m.requests.WithLabelValues(op, outcome).Inc()
	return resp
}

// knownCodes are the error codes an outcome label may carry; any other
// code (a library's own) counts as "error".
var knownCodes = map[string]bool{}

func init() {
	for _, c := range []apperr.Code{apperr.Unauthenticated, apperr.Forbidden, apperr.BadUserInput, apperr.NotFound,
		apperr.Conflict, apperr.TooManyRequests, apperr.Internal} {
		knownCodes[string(c)] = true
	}
}

// operationLabel names an operation by the schema root field it asks for,
// so the label's values are bounded by the schema: "query:patients". An
// operation asking for several fields is "query:multiple", one asking only
// for __typename or introspection "query:other". Aliases, their number and
// the client's operation name never reach a label.
func operationLabel(oc *graphql.OperationContext) string {
	root := oc.Operation.SelectionSet
	var field string
	for _, f := range graphql.CollectFields(oc, root, nil) {
		switch {
		case strings.HasPrefix(f.Name, "__") || f.Definition == nil:
		case field == "" || field == f.Name:
			field = f.Name
		default:
			field = "multiple"
		}
	}
	if field == "" {
		field = "other"
	}
	return string(oc.Operation.Operation) + ":" + field
}
