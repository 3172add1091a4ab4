package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// presentError gives every error an extensions.code from DESIGN.md's list.
// Errors the client may see keep their message; anything else is logged
// with the request ID and masked as INTERNAL, so no SQL, stack or stored
// value reaches the client.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var ae *apperr.Error
		var ve *ent.ValidationError
		switch {
		case errors.As(err, &ae):
			field := ae.Field
			if field == "" && ae.Code == apperr.BadUserInput {
				// A scalar that did not coerce: its path names the argument.
				field = argumentPath(gqlErr.Path)
			}
			gqlErr.Message = ae.Message
			if field != "" {
				gqlErr.Message = field + ": " + ae.Message
			}
			setCode(gqlErr, string(ae.Code))
			if field != "" {
				gqlErr.Extensions["field"] = field
			}
		case ent.IsNotFound(err):
			gqlErr.Message = "not found"
			setCode(gqlErr, string(apperr.NotFound))
		case errors.As(err, &ve):
			field := camel(ve.Name)
			gqlErr.Message = field + ": is not valid"
			setCode(gqlErr, string(apperr.BadUserInput))
			gqlErr.Extensions["field"] = field
		case ent.IsConstraintError(err):
			gqlErr.Message = "conflicts with an existing record"
			setCode(gqlErr, string(apperr.Conflict))
		case isGraphQLInputError(gqlErr):
			// The document did not parse, validate or coerce: the client's
			// own text, safe to return. Name the argument or variable.
			if field := inputField(ctx, gqlErr); field != "" {
				gqlErr.Extensions["field"] = field
			}
			setCode(gqlErr, string(apperr.BadUserInput))
		case gqlErr.Extensions["code"] != nil:
			// Raised with a code by gqlgen, entgql or HMIS's own extensions
			// (depth limit, node not found): written for clients already.
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
			// The drivers report a cancelled statement in words of their
			// own, so the request's context is asked too. A client that
			// hangs up is no fault of the server; a deadline passed is
			// worth a warning, never the error's text.
			gqlErr.Message = "the request was cancelled"
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				gqlErr.Message = "the request ran past its time limit"
				log.WarnContext(ctx, "request deadline exceeded", "field", fieldName(ctx), "request_id", requestinfo.From(ctx).RequestID)
			}
			gqlErr.Extensions = map[string]any{"code": string(apperr.Internal)}
		default:
			// The error's text is the server's own (driver, ent, gqlgen):
			// request bodies never reach an error without a code, since the
			// HTTP transport names a bad body's fault without quoting it.
			log.ErrorContext(ctx, "internal error", "err", err.Error(), "field", fieldName(ctx),
				"request_id", requestinfo.From(ctx).RequestID)
			gqlErr.Message = "internal error"
			gqlErr.Extensions = map[string]any{"code": string(apperr.Internal)}
		}
		return gqlErr
	}
}

func setCode(e *gqlerror.Error, code string) {
	if e.Extensions == nil {
		e.Extensions = map[string]any{}
	}
	e.Extensions["code"] = code
}

// isGraphQLInputError recognises errors gqlgen raises for the request
// itself: parse and validation failures, and arguments that do not coerce.
func isGraphQLInputError(e *gqlerror.Error) bool {
	switch e.Extensions["code"] {
	case errcode.ValidationFailed, errcode.ParseFailed, "COMPLEXITY_LIMIT_EXCEEDED":
		return true
	}
	return e.Rule != "" || strings.HasPrefix(e.Message, "input:")
}

// fieldName is the schema coordinate (Type.field) an error arose in, if
// any: safe to log, unlike the path, whose aliases the client chose.
func fieldName(ctx context.Context) string {
	if fc := graphql.GetFieldContext(ctx); fc != nil && fc.Field.Field != nil {
		return fc.Object + "." + fc.Field.Name
	}
	return ""
}

// inputField names the variable or argument a validation error is about,
// as "in.birthDate" for a variable, "input.birthDate" for an argument.
func inputField(ctx context.Context, e *gqlerror.Error) string {
	if len(e.Path) > 0 && e.Path[0] == ast.PathName("variable") {
		return joinPath(e.Path[1:])
	}
	if field := argumentPath(e.Path); field != "" {
		return field
	}
	if e.Rule != "" && len(e.Locations) > 0 && graphql.HasOperationContext(ctx) {
		return validationField(graphql.GetOperationContext(ctx).RawQuery, e)
	}
	return ""
}

var (
	missingInputField = regexp.MustCompile(`^Field "[^"]+\.([^".]+)" of required type`)
	missingArgument   = regexp.MustCompile(`^Field "[^"]+" argument "([^"]+)" of type`)
	unknownArgument   = regexp.MustCompile(`^Unknown argument "([^"]+)" on field`)
)

// validationField names the argument (and input field within it) a
// validation error points at. gqlparser gives only a line and column, and
// the document that failed validation is not kept, so it is parsed again;
// this happens only for documents already refused.
func validationField(query string, e *gqlerror.Error) string {
	// These point at the field, not the argument: the message names it.
	for _, re := range []*regexp.Regexp{missingArgument, unknownArgument} {
		if m := re.FindStringSubmatch(e.Message); m != nil {
			return m[1]
		}
	}
	doc, err := parser.ParseQuery(&ast.Source{Input: query})
	if err != nil {
		return ""
	}
	at := e.Locations[0]
	var found string
	var visitValue func(v *ast.Value, path string)
	visitValue = func(v *ast.Value, path string) {
		if v == nil || found != "" {
			return
		}
		if atPosition(v.Position, at) {
			found = path
			return
		}
		for i, c := range v.Children {
			p := fmt.Sprintf("%s[%d]", path, i)
			if c.Name != "" {
				p = path + "." + c.Name
			}
			if atPosition(c.Position, at) {
				found = p
				return
			}
			visitValue(c.Value, p)
		}
	}
	visit := func(f *ast.Field) bool {
		for _, a := range f.Arguments {
			if atPosition(a.Position, at) {
				found = a.Name
			}
			visitValue(a.Value, a.Name)
		}
		return found == ""
	}
	for _, op := range doc.Operations {
		eachField(op.SelectionSet, visit)
	}
	for _, fr := range doc.Fragments {
		eachField(fr.SelectionSet, visit)
	}
	if m := missingInputField.FindStringSubmatch(e.Message); m != nil && found != "" {
		found += "." + m[1]
	}
	return found
}

func atPosition(p *ast.Position, at gqlerror.Location) bool {
	return p != nil && p.Line == at.Line && p.Column == at.Column
}

// argumentPath drops the field a path starts with, leaving the argument:
// [registerPatient input birthDate] → input.birthDate.
func argumentPath(path ast.Path) string {
	if len(path) < 2 {
		return ""
	}
	return joinPath(path[1:])
}

func joinPath(path ast.Path) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case ast.PathName:
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(string(p))
		case ast.PathIndex:
			fmt.Fprintf(&b, "[%d]", int(p))
		}
	}
	return b.String()
}

// recoverPanic turns a panic in a resolver into a masked INTERNAL error.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()),
			"request_id", requestinfo.From(ctx).RequestID)
		return errors.New("internal panic")
	}
}

func camel(snake string) string {
	parts := strings.Split(snake, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}
