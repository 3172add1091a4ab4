package httpapi

import (
	"context"
	"encoding/json"
	"entgo.io/contrib/entgql"
	"fmt"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/config"
)

// refuse turns an apperr.Error into the error an operation context mutator
// returns, so the error presenter gives it its code and field like any
// other.
func refuse(err *apperr.Error) *gqlerror.Error {
	return &gqlerror.Error{Message: err.Error(), Err: err}
}

// depthLimit refuses documents that nest selections deeper than max, before
// anything runs. Introspection is not counted: GraphiQL's own schema query
// nests deeper than any data query needs to.
type depthLimit struct{ max int }

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(oc.Operation.SelectionSet, map[string]bool{}); depth > d.max {
		return refuse(&apperr.Error{Code: apperr.BadUserInput, Message: fmt.Sprintf("query is nested too deeply: the limit is %d levels", d.max)})
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, visiting map[string]bool) int {
	deepest := 0
	for _, sel := range set {
		depth := 0
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			depth = 1 + selectionDepth(s.SelectionSet, visiting)
		case *ast.InlineFragment:
			depth = selectionDepth(s.SelectionSet, visiting)
		case *ast.FragmentSpread:
			if s.Definition == nil || visiting[s.Name] {
				continue
			}
			visiting[s.Name] = true
			depth = selectionDepth(s.Definition.SelectionSet, visiting)
			delete(visiting, s.Name)
		}
		deepest = max(deepest, depth)
	}
	return deepest
}

// eachField calls visit for every field the operation selects, fragments
// expanded where they are spread, until visit returns false.
func eachField(set ast.SelectionSet, visit func(*ast.Field) bool) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if !visit(s) || !eachField(s.SelectionSet, visit) {
				return false
			}
		case *ast.InlineFragment:
			if !eachField(s.SelectionSet, visit) {
				return false
			}
		case *ast.FragmentSpread:
			// Validation has refused fragment cycles already.
			if s.Definition != nil && !eachField(s.Definition.SelectionSet, visit) {
				return false
			}
		}
	}
	return true
}

// rootFieldCount counts the root fields of an operation, aliases each once.
func rootFieldCount(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			n++
		case *ast.InlineFragment:
			n += rootFieldCount(s.SelectionSet)
		case *ast.FragmentSpread:
			if s.Definition != nil {
				n += rootFieldCount(s.Definition.SelectionSet)
			}
		}
	}
	return n
}

// fieldLimit bounds how many fields one operation selects, aliases and
// __typename included: each is work and a line of the response, and the
// cost limit alone lets a client repeat a cheap field without end.
type fieldLimit struct{ fields, roots int }

func (fieldLimit) ExtensionName() string                   { return "FieldLimit" }
func (fieldLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l fieldLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if rootFieldCount(oc.Operation.SelectionSet) > l.roots {
		return refuse(&apperr.Error{Code: apperr.BadUserInput, Message: fmt.Sprintf("query selects too many root fields: the limit is %d", l.roots)})
	}
	n := 0
	if !eachField(oc.Operation.SelectionSet, func(*ast.Field) bool { n++; return n <= l.fields }) {
		return refuse(&apperr.Error{Code: apperr.BadUserInput, Message: fmt.Sprintf("query selects too many fields: the limit is %d", l.fields)})
	}
	return nil
}

// variablesLimit bounds the variables of an operation on every transport
// (POST, GET and WebSocket alike), before they are coerced.
type variablesLimit struct{ max int64 }

func (variablesLimit) ExtensionName() string                   { return "VariablesLimit" }
func (variablesLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l variablesLimit) MutateOperationParameters(_ context.Context, p *graphql.RawParams) *gqlerror.Error {
	if len(p.Variables) == 0 {
		return nil
	}
	raw, err := json.Marshal(p.Variables)
	if err != nil || int64(len(raw)) > l.max {
		return refuse(apperr.BadInput("variables", "are larger than the limit of %d bytes", l.max))
	}
	return nil
}

// pageLimit bounds every connection: first/last outside 0..max are refused
// before the query runs (and before its cost is weighed, so the client
// learns which argument is wrong), and a connection asked for without
// either gets the default page size instead of every row (defaultPage).
type pageLimit struct{ max, dflt int }

func (pageLimit) ExtensionName() string                   { return "PageLimit" }
func (pageLimit) Validate(graphql.ExecutableSchema) error { return nil }

func isConnection(def *ast.FieldDefinition) bool {
	return def != nil && strings.HasSuffix(def.Type.Name(), "Connection")
}

func (p pageLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	var bad *apperr.Error
	eachField(oc.Operation.SelectionSet, func(f *ast.Field) bool {
		if !isConnection(f.Definition) {
			return true
		}
		args := f.ArgumentMap(oc.Variables)
		for _, name := range []string{"first", "last"} {
			if n, ok := asInt(args[name]); ok && (n < 0 || n > p.max) {
				bad = apperr.BadInput(name, "must be between 0 and %d", p.max)
				return false
			}
		}
		if args["first"] != nil && args["last"] != nil {
			bad = apperr.BadInput("last", "cannot be combined with first: page forward with first and after, or back with last and before")
			return false
		}
		// A cursor the client made up or cut short is its mistake, found
		// here rather than as a failed decode deep in the executor.
		for _, name := range []string{"after", "before"} {
			if raw, ok := args[name].(string); ok {
				var c entgql.Cursor[string]
				if c.UnmarshalGQL(raw) != nil {
					bad = apperr.BadInput(name, "is not a cursor of this list: pass a startCursor or endCursor it returned")
					return false
				}
			}
		}
		return true
	})
	if bad != nil {
		return refuse(bad)
	}
	return nil
}

// defaultPage gives a connection asked for without first or last the
// default page size. It runs in the field guard's interception of each
// field (authz.FieldGuard.BeforeResolve), which a page of patients passes
// hundreds of times, rather than in an interceptor of its own.
func (p pageLimit) defaultPage(fc *graphql.FieldContext) {
	if !isConnection(fc.Field.Definition) {
		return
	}
	first, hasFirst := fc.Args["first"].(*int)
	last, hasLast := fc.Args["last"].(*int)
	if (hasFirst || hasLast) && first == nil && last == nil {
		dflt := p.dflt
		fc.Args["first"] = &dflt
	}
}

// pagedComplexity makes the complexity limit see what a query costs: a
// connection's fields count once per item of the page asked for, so
// patients(first: 100) { appointments(first: 100) { … } } weighs 10,000
// appointments, not one; and a plain list field (a panel's tests, a
// patient's allergies), which has no page argument, counts its fields
// listWeight times, so lists nested in lists multiply as they do in the
// database. Introspection keeps gqlgen's count: it reads no rows.
type pagedComplexity struct {
	graphql.ExecutableSchema
	defaultPage int
	listWeight  int
}

func (p pagedComplexity) Complexity(ctx context.Context, typeName, field string, childComplexity int, args map[string]any) (int, bool) {
	if def := p.Schema().Types[typeName]; def != nil && !strings.HasPrefix(typeName, "__") {
		f := def.Fields.ForName(field)
		switch {
		case f == nil:
		case isConnection(f):
			page := p.defaultPage
			for _, name := range []string{"first", "last"} {
				if n, ok := asInt(args[name]); ok && n > 0 {
					page = n
				}
			}
			return 1 + page*childComplexity, true
		case f.Type.Elem != nil && !strings.HasSuffix(typeName, "Connection"):
			// A connection's edges are its page, counted above.
			items := p.listWeight
			if n, ok := asInt(args["first"]); ok && n > 0 {
				items = n // a list with a limit of its own, e.g. searchIcd10
			}
			if ids, ok := args["ids"].([]any); ok {
				items = len(ids) // nodes(ids:) answers one item per ID
			}
			return 1 + items*childComplexity, true
		}
	}
	return p.ExecutableSchema.Complexity(ctx, typeName, field, childComplexity, args)
}

func asInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case *int:
		if n != nil {
			return *n, true
		}
	case json.Number:
		if i, err := n.Int64(); err == nil {
			return int(i), true
		}
	}
	return 0, false
}

// deadline gives every query and mutation a time limit, on every
// transport: HTTP requests have one already (withDeadline), but a
// WebSocket's operations share the socket's context, which lives as long
// as the connection. Subscriptions stream for as long as they are wanted.
type deadline struct{ d time.Duration }

func (deadline) ExtensionName() string                   { return "Deadline" }
func (deadline) Validate(graphql.ExecutableSchema) error { return nil }

func (d deadline) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	if graphql.HasOperationContext(ctx) {
		if oc := graphql.GetOperationContext(ctx); oc.Operation != nil && oc.Operation.Operation == ast.Subscription {
			return next(ctx)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, d.d)
	defer cancel()
	return next(ctx)
}

// responseLimit replaces a response larger than max by an error, so a
// client gets a clear answer instead of a cut-off one, and the server does
// not stream megabytes of patient data to one request.
type responseLimit struct{ max int64 }

func (responseLimit) ExtensionName() string                   { return "ResponseLimit" }
func (responseLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l responseLimit) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	if resp == nil || int64(len(resp.Data)) <= l.max {
		return resp
	}
	return &graphql.Response{Errors: gqlerror.List{{
		Message:    fmt.Sprintf("the response is larger than the limit of %d bytes: ask for fewer items or fields", l.max),
		Extensions: map[string]any{"code": string(apperr.BadUserInput)},
	}}}
}

// introspection decides who may read the schema through __schema and
// __type (__typename is always allowed: clients need it to read unions and
// interfaces). A refused introspection is refused as a whole before
// anything runs, with the reason.
type introspection struct{ who string }

func (introspection) ExtensionName() string                   { return "IntrospectionPolicy" }
func (introspection) Validate(graphql.ExecutableSchema) error { return nil }

func (p introspection) MutateOperationContext(ctx context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	allowed := p.who == config.IntrospectionAnyone || (p.who == config.IntrospectionSignedIn && auth.FromContext(ctx) != nil)
	oc.DisableIntrospection = !allowed
	if allowed || oc.Operation == nil || !selectsIntrospection(oc.Operation.SelectionSet) {
		return nil
	}
	if p.who == config.IntrospectionSignedIn {
		return refuse(apperr.Unauthenticatedf("sign in to introspect the schema"))
	}
	return refuse(apperr.Denied("introspection is disabled on this server"))
}

func selectsIntrospection(set ast.SelectionSet) bool {
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			if s.Name == "__schema" || s.Name == "__type" {
				return true
			}
		case *ast.InlineFragment:
			if selectsIntrospection(s.SelectionSet) {
				return true
			}
		case *ast.FragmentSpread:
			if s.Definition != nil && selectsIntrospection(s.Definition.SelectionSet) {
				return true
			}
		}
	}
	return false
}
