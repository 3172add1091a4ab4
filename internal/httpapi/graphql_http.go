package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/hmis-dev/hmis/internal/apperr"
)

// The media types of a GraphQL response (GraphQL over HTTP).
const (
	mediaJSON            = "application/json"
	mediaGraphQLResponse = "application/graphql-response+json"
)

// graphQLHTTP serves GraphQL over HTTP GET and POST in place of gqlgen's
// transports, which echo a body that does not decode into the error (and
// so into the log) and answer 422 to documents that do not validate. Its
// status codes follow the GraphQL-over-HTTP specification:
//
//   - a body that is not a GraphQL request (bad JSON, variables not an
//     object): 400; a body over the size limit: 413; a mutation by GET: 405;
//   - a request that cannot execute (parse, validation, variables, limits):
//     400 (401/403 for a refusal by who is asking) if the client accepts
//     application/graphql-response+json, else 200 with the errors;
//   - a request that executed: 200, field errors (FORBIDDEN…) in errors.
type graphQLHTTP struct{ maxBody int64 }

func (graphQLHTTP) Supports(r *http.Request) bool {
	return r.Header.Get("Upgrade") == "" && (r.Method == http.MethodGet || r.Method == http.MethodPost)
}

func (t graphQLHTTP) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	media := responseMedia(r)
	w.Header().Set("Content-Type", media)
	start := graphql.Now()
	params, status, err := t.read(r)
	if err != nil {
		writeGraphQLError(w, status, err)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	oc, errs := exec.CreateOperationContext(ctx, params)
	if errs != nil {
		resp := exec.DispatchError(graphql.WithOperationContext(ctx, oc), errs)
		status := http.StatusOK
		if media == mediaGraphQLResponse {
			status = requestErrorStatus(resp.Errors)
		}
		writeResponse(w, status, resp)
		return
	}
	if r.Method == http.MethodGet && oc.Operation.Operation != ast.Query {
		w.Header().Set("Allow", http.MethodPost)
		writeGraphQLError(w, http.StatusMethodNotAllowed, &apperr.Error{Code: apperr.BadUserInput, Message: "only queries may be sent by GET; send mutations by POST"})
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	resp := responses(ctx)
	if resp == nil {
		// The executor produces nothing once the request's context has ended.
		resp = &graphql.Response{Errors: gqlerror.List{timedOut(ctx)}}
	}
	writeResponse(w, http.StatusOK, resp)
}

// requestErrorStatus is the status of a request refused before it ran.
func requestErrorStatus(errs gqlerror.List) int {
	if len(errs) > 0 {
		switch errs[0].Extensions["code"] {
		case string(apperr.Unauthenticated):
			return http.StatusUnauthorized
		case string(apperr.Forbidden):
			return http.StatusForbidden
		}
	}
	return http.StatusBadRequest
}

func timedOut(ctx context.Context) *gqlerror.Error {
	msg := "the request was cancelled"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		msg = "the request ran past its time limit"
	}
	return &gqlerror.Error{Message: msg, Extensions: map[string]any{"code": string(apperr.Internal)}}
}

// responseMedia picks the response type from Accept, the first one named
// winning; a client that names neither gets application/json, as the
// specification asks for clients that predate it.
func responseMedia(r *http.Request) string {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		mediaType, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mediaType {
		case mediaGraphQLResponse:
			return mediaGraphQLResponse
		case mediaJSON:
			return mediaJSON
		}
	}
	return mediaJSON
}

// request is the body of a GraphQL POST. Variables and extensions are kept
// raw until the whole body has decoded, so an error names the member at
// fault and never quotes what the client sent.
type request struct {
	Query         string          `json:"query"`
	OperationName string          `json:"operationName"`
	Variables     json.RawMessage `json:"variables"`
	Extensions    json.RawMessage `json:"extensions"`
}

func (t graphQLHTTP) read(r *http.Request) (*graphql.RawParams, int, error) {
	if r.Method == http.MethodGet {
		return readGET(r)
	}
	if mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mediaType != mediaJSON {
		return nil, http.StatusUnsupportedMediaType, &apperr.Error{Code: apperr.BadUserInput, Message: "send the request as application/json"}
	}
	tooLarge := &apperr.Error{Code: apperr.BadUserInput, Message: fmt.Sprintf("the request body is larger than the limit of %d bytes", t.maxBody)}
	if r.ContentLength > t.maxBody {
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, t.maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge, tooLarge
	case err != nil:
		return nil, http.StatusBadRequest, &apperr.Error{Code: apperr.BadUserInput, Message: "the request body could not be read"}
	}
	var req request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, http.StatusBadRequest, bodyError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, http.StatusBadRequest, &apperr.Error{Code: apperr.BadUserInput, Message: "the request body is not a JSON object: something follows it"}
	}
	p := &graphql.RawParams{Query: req.Query, OperationName: req.OperationName}
	if err := decodeObject(req.Variables, &p.Variables); err != nil {
		return nil, http.StatusBadRequest, apperr.BadInput("variables", "must be a JSON object")
	}
	if err := decodeObject(req.Extensions, &p.Extensions); err != nil {
		return nil, http.StatusBadRequest, apperr.BadInput("extensions", "must be a JSON object")
	}
	return p, 0, nil
}

func readGET(r *http.Request) (*graphql.RawParams, int, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, http.StatusBadRequest, &apperr.Error{Code: apperr.BadUserInput, Message: "the URL's query string is not valid"}
	}
	p := &graphql.RawParams{Query: q.Get("query"), OperationName: q.Get("operationName")}
	if err := decodeObject(json.RawMessage(q.Get("variables")), &p.Variables); err != nil {
		return nil, http.StatusBadRequest, apperr.BadInput("variables", "must be a JSON object")
	}
	if err := decodeObject(json.RawMessage(q.Get("extensions")), &p.Extensions); err != nil {
		return nil, http.StatusBadRequest, apperr.BadInput("extensions", "must be a JSON object")
	}
	return p, 0, nil
}

// decodeObject decodes a JSON object (or null, or nothing) into *into,
// numbers kept exact as gqlgen expects.
func decodeObject(raw json.RawMessage, into *map[string]any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(into)
}

// bodyError says what is wrong with a body that did not decode, by
// position and member name, never by quoting it: it may hold a password
// or a patient's name.
func bodyError(err error) error {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return &apperr.Error{Code: apperr.BadUserInput, Message: fmt.Sprintf("the request body is not valid JSON (at byte %d)", syntax.Offset)}
	case errors.As(err, &typ) && typ.Field != "":
		return apperr.BadInput(typ.Field, "must not be a JSON %s", typ.Value)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return &apperr.Error{Code: apperr.BadUserInput, Message: "the request body is empty or cut off"}
	}
	return &apperr.Error{Code: apperr.BadUserInput, Message: "the request body is not a GraphQL request: a JSON object with query, variables and operationName"}
}

func writeResponse(w http.ResponseWriter, status int, resp *graphql.Response) {
	b, err := json.Marshal(resp)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(graphql.Response{Errors: gqlerror.List{{Message: "internal error", Extensions: map[string]any{"code": string(apperr.Internal)}}}})
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
