package audit

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// Recorder is the gqlgen extension that writes the audit row of each
// GraphQL response: every mutation (allowed, denied or failed), every
// query or subscription event that read patient data or was denied, and
// every read of the audit trail itself. A response whose row cannot be
// written is withheld: no patient data leaves unaudited.
type Recorder struct {
	trail *Trail
	log   *slog.Logger
}

// NewRecorder returns a Recorder appending to trail.
func NewRecorder(trail *Trail, log *slog.Logger) *Recorder {
	return &Recorder{trail: trail, log: log}
}

var _ interface {
	graphql.HandlerExtension
	graphql.OperationInterceptor
	graphql.ResponseInterceptor
} = (*Recorder)(nil)

func (*Recorder) ExtensionName() string                   { return "AuditRecorder" }
func (*Recorder) Validate(graphql.ExecutableSchema) error { return nil }

func (r *Recorder) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	ctx, _ = WithCollector(ctx)
	return next(ctx)
}

// alwaysAudited are root fields audited even when they touch no patient.
var alwaysAudited = map[string]bool{"auditEvents": true}

func (r *Recorder) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	c := collectorFrom(ctx)
	if resp == nil || c == nil || !graphql.HasOperationContext(ctx) {
		return resp
	}
	snap := c.Drain()
	e := entryFor(ctx, resp, snap)
	if d := deferredFrom(ctx); d != nil && e != nil && e.Kind == auditevent.KindSUBSCRIPTION {
		d.Entry, d.Ctx, d.Snap = e, ctx, snap
		return resp
	} else if d != nil {
		d.Snap = snap
	}
	if e == nil {
		return resp
	}
	var err error
	if e.Kind == auditevent.KindSUBSCRIPTION {
		if err = r.appendPatiently(ctx, *e); err != nil && ctx.Err() != nil {
			return nil // the subscriber left first; the event was never sent
		}
	} else {
		_, err = r.trail.Append(context.WithoutCancel(ctx), *e)
	}
	if err != nil {
		r.log.ErrorContext(ctx, "audit append failed; response withheld", "err", err, "request_id", e.RequestID)
		return &graphql.Response{Errors: gqlerror.List{{
			Message:    "internal error",
			Extensions: map[string]any{"code": "INTERNAL"},
		}}}
	}
	return resp
}

// entryFor is the row due for resp, answered under ctx after reading what
// snap holds, or nil if none is.
func entryFor(ctx context.Context, resp *graphql.Response, snap Snapshot) *Entry {
	oc := graphql.GetOperationContext(ctx)
	if oc.Operation == nil {
		return nil // the document did not parse or validate: nothing ran
	}
	roots := rootFields(oc)
	kind := auditevent.KindQUERY
	switch oc.Operation.Operation {
	case ast.Mutation:
		kind = auditevent.KindMUTATION
	case ast.Subscription:
		kind = auditevent.KindSUBSCRIPTION
	}
	outcome, code := outcomeOf(resp.Errors)
	if len(snap.Denied) > 0 {
		outcome = auditevent.OutcomeDENIED // also when the guard refused an anonymous viewer: UNAUTHENTICATED
	}
	audited := kind == auditevent.KindMUTATION || len(snap.PatientIDs) > 0 || len(snap.Denied) > 0 || snap.Sensitive
	for _, f := range roots {
		audited = audited || alwaysAudited[f]
	}
	if !audited {
		return nil
	}
	e := RequestEntry(ctx, snap)
	e.Operation = strings.Join(roots, ",")
	e.Kind, e.Outcome, e.ErrorCode = kind, outcome, code
	return &e
}

// SharedEntry returns the row due for a subscription event whose response,
// resp, was not executed for the subscriber of ctx but for another one with
// the same operation, variables and row scope, whose read was leader: the
// same read, recorded as this subscriber's, together with whatever this
// subscriber's own stream noted meanwhile. Nil if none is due.
func SharedEntry(ctx context.Context, resp *graphql.Response, leader Snapshot) *Entry {
	snap := leader
	if c := collectorFrom(ctx); c != nil {
		own := c.Drain()
		snap.PatientIDs = append(slices.Clip(snap.PatientIDs), own.PatientIDs...)
		snap.ObjectTypes = append(slices.Clip(snap.ObjectTypes), own.ObjectTypes...)
		snap.ObjectIDs = append(slices.Clip(snap.ObjectIDs), own.ObjectIDs...)
		snap.Fields = append(slices.Clip(snap.Fields), own.Fields...)
		snap.Denied = append(slices.Clip(snap.Denied), own.Denied...)
		snap.ClaimedID, snap.ClaimedName = own.ClaimedID, own.ClaimedName
	}
	if resp == nil || !graphql.HasOperationContext(ctx) {
		return nil
	}
	return entryFor(ctx, resp, snap)
}

// Deferred takes the audit entry of one subscription event in place of the
// Recorder, which then returns the response unwritten: the transport that
// sends the event writes the entries of many events at once
// (Trail.AppendAll) and sends each event only once its row is committed,
// or replaces it with an error, exactly as the Recorder would.
type Deferred struct {
	// Entry is nil when the event needs no row.
	Entry *Entry
	// Ctx is the event's context, for Options.Mark.
	Ctx context.Context
	// Snap is what the event's execution read, for SharedEntry.
	Snap Snapshot
}

type deferredKey struct{}

// WithDeferred makes the Recorder hand the audit entry of the subscription
// event executed under ctx to d.
func WithDeferred(ctx context.Context, d *Deferred) context.Context {
	return context.WithValue(ctx, deferredKey{}, d)
}

func deferredFrom(ctx context.Context) *Deferred {
	d, _ := ctx.Value(deferredKey{}).(*Deferred)
	return d
}

// Waits between attempts to audit a subscription event.
const (
	retryFirst = 100 * time.Millisecond
	retryMost  = 5 * time.Second
)

// appendPatiently audits one subscription event, trying again while the
// audit write fails, until it succeeds or the subscriber leaves (ctx
// ends). A dashboard waiting for a critical value is better served by the
// value late than by an error in its place, and the event is still never
// delivered unaudited. An entry that can never be stored, or a trail that
// is closing, would hold the stream forever: that error is returned, and
// the event replaced by INTERNAL as a query's would be.
func (r *Recorder) appendPatiently(ctx context.Context, e Entry) error {
	wait := retryFirst
	for attempt := 1; ; attempt++ {
		_, err := r.trail.Append(context.WithoutCancel(ctx), e)
		if err == nil || errors.Is(err, ErrInvalidEntry) || errors.Is(err, ErrClosed) {
			return err
		}
		r.log.WarnContext(ctx, "audit append failed; subscription event held back", "err", err, "attempt", attempt, "request_id", e.RequestID)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMost)
	}
}

// RequestEntry returns the audit entry of the request ctx serves, from what
// its Collector gathered (snap): who asked (the viewer, or for a request
// without credentials whoever it claimed to be), from where, under which
// request ID, and the patients, objects and fields it touched or was denied.
// The caller adds what only it knows: operation, kind and outcome. Every
// HTTP surface builds its row this way, so a report and a GraphQL query by
// the same person read alike in the trail.
func RequestEntry(ctx context.Context, snap Snapshot) Entry {
	info := requestinfo.From(ctx)
	e := Entry{
		ObjectTypes: snap.ObjectTypes,
		ObjectIDs:   snap.ObjectIDs,
		PatientIDs:  snap.PatientIDs,
		Fields:      append(snap.Fields, snap.Denied...),
		ClientAddr:  info.ClientAddr,
		RequestID:   info.RequestID,
		Reason:      snap.Reason,
	}
	if v := auth.FromContext(ctx); v != nil {
		e.ActorID, e.ActorName, e.Roles = v.ActorID(), v.Username, v.Roles
	} else {
		e.ActorID, e.ActorName = snap.ClaimedID, snap.ClaimedName
	}
	return e
}

// rootFields names the operation by what it asked for, not by the name the
// client chose for it.
func rootFields(oc *graphql.OperationContext) []string {
	var names []string
	for _, f := range graphql.CollectFields(oc, oc.Operation.SelectionSet, nil) {
		if !strings.HasPrefix(f.Name, "__") {
			names = append(names, f.Name)
		}
	}
	sort.Strings(names)
	return names
}

func outcomeOf(errs gqlerror.List) (auditevent.Outcome, string) {
	if len(errs) == 0 {
		return auditevent.OutcomeALLOWED, ""
	}
	first := ""
	for _, e := range errs {
		code, _ := e.Extensions["code"].(string)
		if code == "FORBIDDEN" {
			return auditevent.OutcomeDENIED, code
		}
		if first == "" {
			first = code
		}
	}
	return auditevent.OutcomeFAILED, first
}
