package apitest

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/hmis-dev/hmis/internal/config"
)

func refusedFor(r response, words string) bool {
	return len(r.Errors) == 1 && r.Errors[0].code() == "BAD_USER_INPUT" && strings.Contains(r.Errors[0].Message, words) &&
		(len(r.Data) == 0 || string(r.Data) == "null")
}

// nestedLists is the attack of the review: plain lists (a panel's tests, a
// test's panels) nested in one another under one connection, which the
// cost limit used to count once each.
const nestedLists = `{labPanels(first:100){edges{node{tests{panels{tests{panels{tests{panels{tests{referenceRanges{id}}}}}}}}}}}}`

// TestPlainListsAreWeighed: the nested plain lists are refused by the cost
// limit before anything runs, while clients attack in parallel another
// client's query is answered; the catalog query a doctor runs still is.
func TestPlainListsAreWeighed(t *testing.T) {
	s := newServer(t)
	patient, doctor := s.token("patient"), s.token("doctor")

	var wg sync.WaitGroup
	results := make(chan response, 64)
	failures := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 4; j++ {
				r, err := s.send(nil, patient, nestedLists, nil)
				if err != nil {
					failures <- err
					continue
				}
				results <- r
			}
		}()
	}
	// Another client, while the attack goes on.
	for i := 0; i < 5; i++ {
		var me struct{ Me struct{ Username string } }
		s.do(doctor, `{ me { username } }`, nil).decode(t, &me)
		must(t, me.Me.Username == "doctor", "the other client's answer: %+v", me)
	}
	wg.Wait()
	close(results)
	close(failures)
	for err := range failures {
		t.Errorf("attack request failed: %v", err)
	}
	n := 0
	for r := range results {
		must(t, refusedFor(r, "complexity"), "nested plain lists: %s", describe(r))
		n++
	}
	must(t, n == 32, "%d attack answers", n)

	var panels struct {
		LabPanels struct {
			Edges []struct {
				Node struct {
					Name  string
					Tests []struct{ Name string }
				}
			}
		}
	}
	s.as("doctor", `{ labPanels(first: 20) { edges { node { id name tests { name } } } } }`, nil).decode(t, &panels)
	must(t, len(panels.LabPanels.Edges) > 0 && len(panels.LabPanels.Edges[0].Node.Tests) > 0, "catalog: %+v", panels)
}

// TestREADMEQueriesFitTheLimits: every query and mutation of the README's
// walkthroughs passes the request limits (it may fail later, on its
// placeholder IDs).
func TestREADMEQueriesFitTheLimits(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t)
	limit := regexp.MustCompile(`complexity|too many|nested too deeply|larger than the limit|must be between`)
	checked := 0
	for _, block := range regexp.MustCompile("(?s)```graphql\n(.*?)```").FindAllStringSubmatch(string(readme), -1) {
		doc, err := parser.ParseQuery(&ast.Source{Input: block[1]})
		if err != nil {
			t.Fatalf("README block does not parse: %v\n%s", err, block[1])
		}
		for _, op := range doc.Operations {
			if op.Operation == ast.Subscription {
				continue // streams; its cost is weighed alike over WebSocket
			}
			var b strings.Builder
			formatter.NewFormatter(&b).FormatQueryDocument(&ast.QueryDocument{Operations: ast.OperationList{op}, Fragments: doc.Fragments})
			vars := map[string]any{}
			for _, v := range op.VariableDefinitions {
				vars[v.Variable] = "x"
			}
			r := s.as("admin", b.String(), vars)
			for _, e := range r.Errors {
				must(t, !limit.MatchString(e.Message), "README operation over a limit: %s\n%s", e.Message, b.String())
			}
			checked++
		}
	}
	must(t, checked >= 25, "only %d README operations found", checked)
}

// TestRequestSizeLimits: bodies, variables, fields and root fields are
// bounded, by POST, GET and WebSocket alike.
func TestRequestSizeLimits(t *testing.T) {
	s := newServer(t)
	doctor := s.token("doctor")

	// A 2 MiB anonymous body, with and without a Content-Length.
	big := gqlBody(`{ __typename }`, map[string]any{"pad": strings.Repeat("x", 2<<20)})
	r := s.raw(http.MethodPost, "/graphql", jsonPost, big)
	must(t, r.Status == http.StatusRequestEntityTooLarge && r.hasCode("BAD_USER_INPUT") && strings.Contains(r.Errors[0].Message, "larger than the limit"),
		"2 MiB body: %d %.300s", r.Status, r.body)
	req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/graphql", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Client().Do(req)
	must(t, err == nil && resp.StatusCode == http.StatusRequestEntityTooLarge, "2 MiB chunked body: %v %v", err, resp)
	resp.Body.Close()

	// Variables over their limit inside a body under its own.
	r = s.raw(http.MethodPost, "/graphql", withBearer(jsonPost, doctor), gqlBody(`query($p: String) { me { username } }`, map[string]any{"p": strings.Repeat("x", 300<<10)}))
	must(t, refusedFor(r.response, "larger than the limit") && r.Errors[0].field() == "variables", "300 KiB variables: %d %.300s", r.Status, r.body)

	aliases := func(n int, field string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "a%d: %s ", i, field)
		}
		return b.String()
	}
	manyFields := "{ me { " + aliases(600, "username") + "} }"
	manyRoots := "{ " + aliases(21, "__typename") + "}"
	r = s.raw(http.MethodPost, "/graphql", withBearer(jsonPost, doctor), gqlBody(manyFields, nil))
	must(t, refusedFor(r.response, "too many fields"), "600 aliases: %.300s", r.body)
	r = s.raw(http.MethodPost, "/graphql", jsonPost, gqlBody(manyRoots, nil))
	must(t, refusedFor(r.response, "too many root fields"), "21 root fields: %.300s", r.body)
	var roots map[string]string
	s.do("", "{ "+aliases(20, "__typename")+"}", nil).decode(t, &roots)
	must(t, len(roots) == 20, "20 root fields: %v", roots)
	r = s.raw(http.MethodGet, "/graphql?query="+url.QueryEscape(manyFields), map[string]string{"Authorization": "Bearer " + doctor}, "")
	must(t, refusedFor(r.response, "too many fields"), "600 aliases by GET: %.300s", r.body)

	ws := s.dialWS(t, protoTransportWS)
	ws.init(doctor)
	errs := ws.failure(ws.start(manyFields, nil))
	must(t, len(errs) == 1 && errs[0].code() == "BAD_USER_INPUT" && strings.Contains(errs[0].Message, "too many fields"), "600 aliases over WebSocket: %v", errs)
	errs = ws.failure(ws.start(`query($p: String) { me { username } }`, map[string]any{"p": strings.Repeat("x", 300<<10)}))
	must(t, len(errs) == 1 && errs[0].code() == "BAD_USER_INPUT" && errs[0].field() == "variables", "300 KiB variables over WebSocket: %v", errs)
}

// TestResponseSizeLimit: a response over the limit is replaced by an
// error, none of its data sent.
func TestResponseSizeLimit(t *testing.T) {
	b := newBacking(t)
	s := newServerOn(t, b)
	d := s.demo()
	small := newServerOn(t, b, func(c *config.Config) { c.MaxResponseBytes = 300 })
	admin := s.token("admin") // signing in answers more than 300 bytes
	r := small.do(admin, `{ patients(first: 100) { edges { node { id mrn givenName familyName birthDate } } } }`, nil)
	must(t, r.Status == http.StatusOK && refusedFor(r, "response is larger than the limit of 300 bytes"), "large response: %s", describe(r))
	must(t, !strings.Contains(describe(r), d.patients[0]), "part of the response was sent: %s", describe(r))
	var me struct{ Me struct{ Username string } }
	small.do(admin, `{ me { username } }`, nil).decode(t, &me)
	must(t, me.Me.Username == "admin", "a small response: %+v", me)
}

// TestRequestDeadline: a request past its deadline gets a clear error, and
// the server does not log it as its own failure.
func TestRequestDeadline(t *testing.T) {
	var logged syncBuffer
	s := newServerLogging(t, newBacking(t), &logged, func(c *config.Config) { c.RequestTimeout = time.Nanosecond })
	r := s.do("", loginMutation, map[string]any{"u": "doctor", "p": demoPassword})
	must(t, len(r.Errors) == 1 && r.Errors[0].code() == "INTERNAL" && strings.Contains(r.Errors[0].Message, "time limit") &&
		(len(r.Data) == 0 || string(r.Data) == "null"), "past the deadline: %s", describe(r))
	must(t, !strings.Contains(logged.String(), "level=ERROR"), "a deadline logged as an error:\n%s", logged.String())
}
