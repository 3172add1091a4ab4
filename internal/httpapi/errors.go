package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

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
			if field := inputField(gqlErr); field != "" {
				gqlErr.Extensions["field"] = field
			}
			setCode(gqlErr, string(apperr.BadUserInput))
		case gqlErr.Extensions["code"] != nil:
			// Raised with a code by gqlgen, entgql or HMIS's own extensions
			// (depth limit, node not found): written for clients already.
		case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
			gqlErr.Message = "request cancelled or timed out"
			setCode(gqlErr, string(apperr.Internal))
		default:
			log.ErrorContext(ctx, "internal error", "err", err.Error(), "request_id", requestinfo.From(ctx).RequestID)
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

// inputField names the variable or argument a validation error is about,
// as "in.birthDate" for a variable, "input.birthDate" for an argument.
func inputField(e *gqlerror.Error) string {
	if len(e.Path) > 0 && e.Path[0] == ast.PathName("variable") {
		return joinPath(e.Path[1:])
	}
	return argumentPath(e.Path)
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
