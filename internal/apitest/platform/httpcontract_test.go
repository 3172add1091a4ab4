package platform

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
)

// rawResponse is an HTTP answer as a client sees it.
type rawResponse struct {
	harness.Response
	header http.Header
	body   string
}

// raw sends an HTTP request with the given headers and body ("" for none)
// to the server, and decodes the GraphQL response if there is one.
func raw(s *harness.Server, method, path string, header map[string]string, body string) rawResponse {
	s.T.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, s.HTTP.URL+path, rd)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		s.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := rawResponse{header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &out.Response)
	out.Status = resp.StatusCode
	return out
}

// gqlBody is a POST body of a GraphQL request.
func gqlBody(query string, vars map[string]any) string {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return string(b)
}

var (
	jsonPost     = map[string]string{"Content-Type": "application/json"}
	responsePost = map[string]string{"Content-Type": "application/json", "Accept": "application/graphql-response+json"}
)

func withBearer(h map[string]string, token string) map[string]string {
	out := map[string]string{"Authorization": "Bearer " + token}
	for k, v := range h {
		out[k] = v
	}
	return out
}

// TestMalformedRequestsAreBadInputAndNeverLogged: a body that is not a
// GraphQL request is a 400 with BAD_USER_INPUT, not INTERNAL, and nothing a
// client sent — in the body, the variables, a password — reaches the log.
func TestMalformedRequestsAreBadInputAndNeverLogged(t *testing.T) {
	t.Parallel()
	var logged harness.SyncBuffer
	s := harness.NewServerLogging(t, harness.NewBacking(t), &logged)
	const marker = "Zq7MarkerWanjiru"
	login := `mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken } }`

	for _, c := range []struct {
		name, body, field string
	}{
		{"trailing comma", `{"query": "` + strings.ReplaceAll(login, `"`, `\"`) + `", "variables": {"u": "` + marker + `", "p": "pw-` + marker + `"},}`, ""},
		{"variables a string", `{"query": "{ __typename }", "variables": "` + marker + `"}`, "variables"},
		{"query a number", `{"query": 12345, "variables": {"nationalID": "` + marker + `"}}`, "query"},
		{"not JSON at all", `query=` + marker, ""},
		{"cut off", `{"query": "{ __typename }", "variables": {"password": "` + marker, ""},
		{"two objects", `{"query": "{ __typename }"} {"password": "` + marker + `"}`, ""},
	} {
		r := raw(s, http.MethodPost, "/graphql", jsonPost, c.body)
		harness.Must(t, r.Status == http.StatusBadRequest && len(r.Errors) == 1 && r.Errors[0].Code() == "BAD_USER_INPUT" &&
			r.Errors[0].Field() == c.field, "%s: %d %s", c.name, r.Status, r.body)
		harness.Must(t, !strings.Contains(r.body, marker), "%s: the answer quotes the body: %s", c.name, r.body)
	}
	// A GET whose variables are not JSON.
	r := raw(s, http.MethodGet, "/graphql?query="+url.QueryEscape("{ __typename }")+"&variables="+url.QueryEscape(`{"p":"`+marker), nil, "")
	harness.Must(t, r.Status == http.StatusBadRequest && r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "variables", "GET: %d %s", r.Status, r.body)

	// Well-formed requests the server refuses, the marker in a password, a
	// patient's name and national ID, and the document itself.
	r = raw(s, http.MethodPost, "/graphql", jsonPost, gqlBody(harness.LoginMutation, map[string]any{"u": "doctor", "p": "pw-" + marker}))
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "wrong password: %s", r.body)
	r = raw(s, http.MethodPost, "/graphql", withBearer(jsonPost, s.Token("reception")), gqlBody(
		`mutation($in: RegisterPatientInput!) { registerPatient(input: $in) { patient { id } } }`,
		map[string]any{"in": map[string]any{"givenName": marker, "familyName": marker, "nationalID": marker, "birthDate": "1990-13-45", "sex": "FEMALE"}}))
	harness.Must(t, r.HasCode("BAD_USER_INPUT"), "bad birth date: %s", r.body)
	r = raw(s, http.MethodPost, "/graphql", jsonPost, gqlBody(`{ patients(where: {givenName: "`+marker+`"}) { totalCount `, nil))
	harness.Must(t, r.HasCode("BAD_USER_INPUT"), "parse error: %s", r.body)
	r = raw(s, http.MethodPost, "/graphql", jsonPost, gqlBody(`query($p: String!) { login(input: {username: "x", password: $p}) { accessToken } }`,
		map[string]any{"p": 42, "note": marker}))
	harness.Must(t, r.HasCode("BAD_USER_INPUT"), "mistyped variable: %s", r.body)

	log := logged.String()
	harness.Must(t, strings.Contains(log, "http request"), "the server's log was not captured: %q", log)
	harness.Must(t, !strings.Contains(log, marker), "the log holds what a client sent:\n%s", log)
	harness.Must(t, !strings.Contains(log, "level=ERROR"), "a client's mistake was logged as a server error:\n%s", log)
}

// TestHTTPStatusContract checks the GraphQL-over-HTTP contract: an
// application/graphql-response+json client gets 4xx for a request that
// cannot run; an application/json client (or one naming neither) gets 200
// with errors; field errors of a request that ran are 200 either way.
func TestHTTPStatusContract(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)

	// An anonymous viewer refused by the field guard is told to sign in; a
	// signed-in one refused is FORBIDDEN.
	r := s.Do("", `{ me { username } }`, nil)
	harness.Must(t, r.Status == http.StatusOK && len(r.Errors) == 1 && r.Errors[0].Code() == "UNAUTHENTICATED", "anonymous me: %s", harness.Describe(r))
	r = s.As("patient", `{ bedBoard { __typename } }`, nil)
	harness.Must(t, r.Status == http.StatusOK && len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN", "patient's bed board: %s", harness.Describe(r))
	rr := raw(s, http.MethodPost, "/graphql", responsePost, gqlBody(`{ me { username } }`, nil))
	harness.Must(t, rr.Status == http.StatusOK && rr.HasCode("UNAUTHENTICATED"), "a field error is no request error: %d %s", rr.Status, rr.body)

	// A bad credential is refused before anything runs: 401, a Bearer
	// challenge, and the media type the client asked for.
	for _, h := range []map[string]string{jsonPost, responsePost} {
		bad := raw(s, http.MethodPost, "/graphql", withBearer(h, "not-a-token"), gqlBody(`{ me { username } }`, nil))
		want := "application/json"
		if h["Accept"] == "application/graphql-response+json" {
			want = "application/graphql-response+json"
		}
		harness.Must(t, bad.Status == http.StatusUnauthorized && bad.HasCode("UNAUTHENTICATED") && strings.HasPrefix(bad.header.Get("Content-Type"), want) &&
			strings.HasPrefix(bad.header.Get("WWW-Authenticate"), "Bearer"), "a bad token (Accept %q): %d %s %v", h["Accept"], bad.Status, bad.body, bad.header)
	}

	// Requests that cannot run, each with the field it is about.
	reception := s.Token("reception")
	for _, c := range []struct{ name, doc, field, message string }{
		{"required input field missing", `mutation { registerPatient(input: {familyName: "X", birthDate: "2000-01-01", sex: FEMALE}) { __typename } }`, "input.givenName", "was not provided"},
		{"required argument missing", `mutation { registerPatient { __typename } }`, "input", "was not provided"},
		{"unknown argument", `{ patients(frist: 5) { totalCount } }`, "frist", "Unknown argument"},
		{"wrongly typed input field", `mutation { registerPatient(input: {givenName: 7, familyName: "X", birthDate: "2000-01-01", sex: FEMALE}) { __typename } }`, "input.givenName", "String cannot represent"},
		{"unknown field of a filter", `{ patients(where: {noSuchFilter: true}) { totalCount } }`, "where.noSuchFilter", "is not defined by type"},
		{"unknown selection", `{ patients { noSuchField } }`, "", "Cannot query field"},
		{"parse error", `{ patients { totalCount }`, "", ""},
		{"page too large", `{ patients(first: 100000) { edges { node { id appointments(first: 100) { totalCount } } } } }`, "first", "first: must be between 0 and 100"},
		{"page too large in a variable", `query($n: Int) { patients(first: 10) { edges { node { appointments(first: $n) { totalCount } } } } }`, "first", "first: must be between 0 and 100"},
		{"both first and last", `{ patients(first: 2, last: 2) { totalCount } }`, "last", "cannot be combined with first"},
		{"a made-up cursor", `{ patients(first: 2, after: "garbage") { totalCount } }`, "after", "is not a cursor of this list"},
		{"an empty cursor", `{ auditEvents(first: 2, before: "") { totalCount } }`, "before", "is not a cursor of this list"},
		{"a made-up cursor on a nested list", `{ patients(first: 2) { edges { node { appointments(first: 1, after: "zzz") { totalCount } } } } }`, "after", "is not a cursor of this list"},
	} {
		vars := map[string]any{}
		if strings.Contains(c.doc, "$n") {
			vars["n"] = 5000
		}
		for _, h := range []map[string]string{jsonPost, {"Content-Type": "application/json", "Accept": "application/json"}, responsePost} {
			r := raw(s, http.MethodPost, "/graphql", withBearer(h, reception), gqlBody(c.doc, vars))
			wantStatus, wantType := http.StatusOK, "application/json"
			if h["Accept"] == "application/graphql-response+json" {
				wantStatus, wantType = http.StatusBadRequest, "application/graphql-response+json"
			}
			harness.Must(t, r.Status == wantStatus && strings.HasPrefix(r.header.Get("Content-Type"), wantType), "%s (Accept %q): status %d, %s: %s",
				c.name, h["Accept"], r.Status, r.header.Get("Content-Type"), r.body)
			harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "BAD_USER_INPUT" && r.Errors[0].Field() == c.field &&
				strings.Contains(r.Errors[0].Message, c.message) && string(r.Data) == "null", "%s: %s", c.name, r.body)
		}
	}

	// The same rules for GET; a mutation by GET is not allowed.
	q := "/graphql?query=" + url.QueryEscape(`{ patients(first: 100000) { totalCount } }`)
	rr = raw(s, http.MethodGet, q, map[string]string{"Authorization": "Bearer " + reception}, "")
	harness.Must(t, rr.Status == http.StatusOK && rr.HasCode("BAD_USER_INPUT") && rr.Errors[0].Field() == "first", "GET page: %d %s", rr.Status, rr.body)
	rr = raw(s, http.MethodGet, q, map[string]string{"Authorization": "Bearer " + reception, "Accept": "application/graphql-response+json"}, "")
	harness.Must(t, rr.Status == http.StatusBadRequest && rr.HasCode("BAD_USER_INPUT"), "GET page, strict: %d %s", rr.Status, rr.body)
	rr = raw(s, http.MethodGet, "/graphql?query="+url.QueryEscape(`mutation { logout }`), map[string]string{"Authorization": "Bearer " + reception}, "")
	harness.Must(t, rr.Status == http.StatusMethodNotAllowed && rr.HasCode("BAD_USER_INPUT"), "GET mutation: %d %s", rr.Status, rr.body)
	var me struct{ Me struct{ Username string } }
	rr = raw(s, http.MethodGet, "/graphql?query="+url.QueryEscape(`{ me { username } }`), map[string]string{"Authorization": "Bearer " + reception}, "")
	rr.Decode(t, &me)
	harness.Must(t, rr.Status == http.StatusOK && me.Me.Username == "reception", "GET query: %d %s", rr.Status, rr.body)

	// A body that is not JSON, or not sent as JSON.
	rr = raw(s, http.MethodPost, "/graphql", map[string]string{"Content-Type": "text/plain"}, `{"query": "{ __typename }"}`)
	harness.Must(t, rr.Status == http.StatusUnsupportedMediaType && rr.HasCode("BAD_USER_INPUT"), "text/plain: %d %s", rr.Status, rr.body)

	// A bad credential is refused before GraphQL, as before.
	rr = raw(s, http.MethodPost, "/graphql", withBearer(responsePost, "not-a-token"), gqlBody(`{ __typename }`, nil))
	harness.Must(t, rr.Status == http.StatusUnauthorized && rr.HasCode("UNAUTHENTICATED"), "bad token: %d %s", rr.Status, rr.body)
}

// TestMetricsLabelsAreBounded: requests with ever new aliases, alias counts
// and operation names add no series to /metrics.
func TestMetricsLabelsAreBounded(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	doctor := s.Token("doctor")
	series := func() map[string]bool {
		r := raw(s, http.MethodGet, "/metrics", nil, "")
		harness.Must(t, r.Status == http.StatusOK, "metrics: %d", r.Status)
		out := map[string]bool{}
		for _, line := range strings.Split(r.body, "\n") {
			if strings.HasPrefix(line, "hmis_graphql_") {
				name, _, _ := strings.Cut(line, " ")
				out[name] = true
			}
		}
		return out
	}
	send := func(i int) {
		var b strings.Builder
		b.WriteString("query Op" + strings.Repeat("x", i) + " { ")
		for j := 0; j <= i; j++ {
			b.WriteString("a" + strings.Repeat("b", i) + string(rune('a'+j%26)) + ": __typename ")
		}
		b.WriteString(" }")
		s.Do("", b.String(), nil)
		s.Do(doctor, "query Me"+strings.Repeat("y", i)+" { m"+strings.Repeat("e", i)+": me { username } other: me { roles } }", nil)
		s.Do(doctor, "query P"+strings.Repeat("z", i)+" { p"+strings.Repeat("q", i)+": patients(first: 1) { totalCount } }", nil)
		s.Do("", `{ me { username } }`, nil)
	}
	// Every kind of answer once, refusals for too many fields included.
	send(0)
	send(41)
	before := series()
	for i := 1; i <= 40; i++ {
		send(i)
	}
	var grown []string
	for name := range series() {
		if !before[name] {
			grown = append(grown, name)
		}
	}
	harness.Must(t, len(grown) == 0, "%d new series after requests with new aliases and operation names, e.g. %.200s", len(grown), grown)
	for name := range before {
		harness.Must(t, !regexp.MustCompile(`operation="[^"]*(Op|Me|__typename|ab)`).MatchString(name), "a label holds a client's text: %s", name)
	}
}

// TestGraphiQLAndIntrospectionSwitches: outside demo mode GraphiQL and the
// example dashboard are not served and only a signed-in viewer may
// introspect; demo mode opens them; HMIS_INTROSPECTION=nobody closes
// introspection to everyone.
func TestGraphiQLAndIntrospectionSwitches(t *testing.T) {
	t.Parallel()
	const schemaQuery = `{ __schema { queryType { name } } }`
	const typeQuery = `{ __type(name: "Patient") { name } }`
	introspects := func(r harness.Response) bool { return len(r.Errors) == 0 && strings.Contains(string(r.Data), `"name"`) }

	prod := harness.NewServer(t, func(c *config.Config) {
		c.Demo, c.GraphiQL, c.Introspection = false, config.SwitchDefault, ""
	})
	rr := raw(prod, http.MethodGet, "/", nil, "")
	harness.Must(t, rr.Status == http.StatusNotFound, "GraphiQL outside demo mode: %d", rr.Status)
	rr = raw(prod, http.MethodGet, "/examples/ward-dashboard", nil, "")
	harness.Must(t, rr.Status == http.StatusNotFound, "the example dashboard outside demo mode: %d", rr.Status)
	for _, doc := range []string{schemaQuery, typeQuery, introspectionQuery} {
		r := prod.Do("", doc, nil)
		harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "UNAUTHENTICATED" && string(r.Data) == "null", "anonymous introspection: %s", harness.Describe(r))
		harness.Must(t, introspects(prod.As("doctor", doc, nil)), "signed-in introspection: %s", harness.Describe(prod.As("doctor", doc, nil)))
	}
	rr = raw(prod, http.MethodPost, "/graphql", responsePost, gqlBody(schemaQuery, nil))
	harness.Must(t, rr.Status == http.StatusUnauthorized && rr.HasCode("UNAUTHENTICATED"), "anonymous introspection, strict: %d %s", rr.Status, rr.body)
	var tn struct {
		Typename string `json:"__typename"`
	}
	prod.Do("", `{ __typename }`, nil).Decode(t, &tn)
	harness.Must(t, tn.Typename == "Query", "__typename is no introspection: %+v", tn)

	demo := harness.NewServer(t, func(c *config.Config) {
		c.Demo, c.GraphiQL, c.Introspection = true, config.SwitchDefault, ""
	})
	rr = raw(demo, http.MethodGet, "/", nil, "")
	harness.Must(t, rr.Status == http.StatusOK && strings.Contains(rr.body, "GraphiQL"), "GraphiQL in demo mode: %d", rr.Status)
	harness.Must(t, introspects(demo.Do("", schemaQuery, nil)), "anonymous introspection in demo mode")

	closed := harness.NewServer(t, func(c *config.Config) {
		c.Demo, c.GraphiQL, c.Introspection = true, config.SwitchOff, config.IntrospectionNobody
	})
	rr = raw(closed, http.MethodGet, "/", nil, "")
	harness.Must(t, rr.Status == http.StatusNotFound, "HMIS_GRAPHIQL=false in demo mode: %d", rr.Status)
	rr = raw(closed, http.MethodGet, "/examples/ward-dashboard", nil, "")
	harness.Must(t, rr.Status == http.StatusOK, "the example dashboard in demo mode without GraphiQL: %d", rr.Status)
	r := closed.As("admin", schemaQuery, nil)
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "FORBIDDEN", "introspection by nobody: %s", harness.Describe(r))
}
