package httpapi

import (
	"context"
	"fmt"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/apperr"
)

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
		return &gqlerror.Error{
			Message:    fmt.Sprintf("query is nested too deeply: the limit is %d levels", d.max),
			Extensions: map[string]any{"code": string(apperr.BadUserInput)},
		}
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

// pageLimit bounds every connection: first/last above the maximum are
// refused, and a connection asked for without either gets the default page
// size instead of every row.
type pageLimit struct{ max, dflt int }

func (pageLimit) ExtensionName() string                   { return "PageLimit" }
func (pageLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (p pageLimit) InterceptField(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || fc.Field.Definition == nil || !strings.HasSuffix(fc.Field.Definition.Type.Name(), "Connection") {
		return next(ctx)
	}
	first, hasFirst := fc.Args["first"].(*int)
	last, hasLast := fc.Args["last"].(*int)
	if !hasFirst && !hasLast {
		return next(ctx)
	}
	for name, n := range map[string]*int{"first": first, "last": last} {
		if n != nil && (*n < 0 || *n > p.max) {
			return nil, apperr.BadInput(name, "must be between 0 and %d", p.max)
		}
	}
	if first == nil && last == nil {
		dflt := p.dflt
		fc.Args["first"] = &dflt
	}
	return next(ctx)
}

// pagedComplexity makes the complexity limit see what a query costs: a
// connection's fields count once per item of the page asked for, so
// patients(first: 100) { appointments(first: 100) { … } } weighs 10,000
// appointments, not one. Other fields keep gqlgen's count.
type pagedComplexity struct {
	graphql.ExecutableSchema
	defaultPage int
}

func (p pagedComplexity) Complexity(ctx context.Context, typeName, field string, childComplexity int, args map[string]any) (int, bool) {
	if def := p.Schema().Types[typeName]; def != nil {
		if f := def.Fields.ForName(field); f != nil && strings.HasSuffix(f.Type.Name(), "Connection") {
			page := p.defaultPage
			for _, name := range []string{"first", "last"} {
				if n, ok := asInt(args[name]); ok && n > 0 {
					page = n
				}
			}
			return 1 + page*childComplexity, true
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
	}
	return 0, false
}
