// Package apperr is the error vocabulary domain code speaks and the GraphQL
// layer turns into extensions.code: what went wrong, and for bad input which
// field. Messages must never carry patient data, SQL or internals.
package apperr

import (
	"errors"
	"fmt"
)

// Code is the value of extensions.code in a GraphQL error.
type Code string

const (
	Unauthenticated Code = "UNAUTHENTICATED"
	Forbidden       Code = "FORBIDDEN"
	BadUserInput    Code = "BAD_USER_INPUT"
	NotFound        Code = "NOT_FOUND"
	Conflict        Code = "CONFLICT"
	TooManyRequests Code = "TOO_MANY_REQUESTS"
	Internal        Code = "INTERNAL"
)

// Error is an error a client may see.
type Error struct {
	Code    Code
	Field   string // for BadUserInput: the input field at fault, as the client spells it
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Message
	}
	return e.Message
}

// BadInput rejects the value of one input field.
func BadInput(field, format string, args ...any) *Error {
	return &Error{Code: BadUserInput, Field: field, Message: fmt.Sprintf(format, args...)}
}

// NotFoundf says an object does not exist or is not visible to the viewer;
// the two are deliberately indistinguishable.
func NotFoundf(format string, args ...any) *Error {
	return &Error{Code: NotFound, Message: fmt.Sprintf(format, args...)}
}

// Conflictf refuses a change that the current state does not allow.
func Conflictf(format string, args ...any) *Error {
	return &Error{Code: Conflict, Message: fmt.Sprintf(format, args...)}
}

// Denied refuses an operation the viewer's roles do not allow.
func Denied(format string, args ...any) *Error {
	return &Error{Code: Forbidden, Message: fmt.Sprintf(format, args...)}
}

// Unauthenticatedf says credentials are missing, wrong or expired.
func Unauthenticatedf(format string, args ...any) *Error {
	return &Error{Code: Unauthenticated, Message: fmt.Sprintf(format, args...)}
}

// As returns the *Error in err's chain, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// CodeOf returns the code of err, Internal for errors that are not *Error.
func CodeOf(err error) Code {
	if e, ok := As(err); ok {
		return e.Code
	}
	return Internal
}
