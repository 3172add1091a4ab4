package platform

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

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
)

func refusedFor(r harness.Response, words string) bool {
	return len(r.Errors) == 1 && r.Errors[0].Code() == "BAD_USER_INPUT" && strings.Contains(r.Errors[0].Message, words) &&
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
	t.Parallel()
	s := harness.NewServer(t)
	patient, doctor := s.Token("patient"), s.Token("doctor")

	var wg sync.WaitGroup
	results := make(chan harness.Response, 64)
	failures := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 4; j++ {
				r, err := s.Send(nil, patient, nestedLists, nil)
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
		s.Do(doctor, `{ me { username } }`, nil).Decode(t, &me)
		harness.Must(t, me.Me.Username == "doctor", "the other client's answer: %+v", me)
	}
	wg.Wait()
	close(results)
	close(failures)
	for err := range failures {
		t.Errorf("attack request failed: %v", err)
	}
	n := 0
	for r := range results {
		harness.Must(t, refusedFor(r, "complexity"), "nested plain lists: %s", harness.Describe(r))
		n++
	}
	harness.Must(t, n == 32, "%d attack answers", n)

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
	s.As("doctor", `{ labPanels(first: 20) { edges { node { id name tests { name } } } } }`, nil).Decode(t, &panels)
	harness.Must(t, len(panels.LabPanels.Edges) > 0 && len(panels.LabPanels.Edges[0].Node.Tests) > 0, "catalog: %+v", panels)
}

// TestREADMEQueriesFitTheLimits: every query and mutation of the README's
// walkthroughs passes the request limits (it may fail later, on its
// placeholder IDs).
func TestREADMEQueriesFitTheLimits(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(harness.RepoFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := harness.NewServer(t)
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
			r := s.As("admin", b.String(), vars)
			for _, e := range r.Errors {
				harness.Must(t, !limit.MatchString(e.Message), "README operation over a limit: %s\n%s", e.Message, b.String())
			}
			checked++
		}
	}
	harness.Must(t, checked >= 25, "only %d README operations found", checked)
}

// TestRequestSizeLimits: bodies, variables, fields and root fields are
// bounded, by POST, GET and WebSocket alike.
func TestRequestSizeLimits(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	doctor := s.Token("doctor")

	// A 2 MiB anonymous body, with and without a Content-Length.
	big := gqlBody(`{ __typename }`, map[string]any{"pad": strings.Repeat("x", 2<<20)})
	r := raw(s, http.MethodPost, "/graphql", jsonPost, big)
	harness.Must(t, r.Status == http.StatusRequestEntityTooLarge && r.HasCode("BAD_USER_INPUT") && strings.Contains(r.Errors[0].Message, "larger than the limit"),
		"2 MiB body: %d %.300s", r.Status, r.body)
	req, _ := http.NewRequest(http.MethodPost, s.HTTP.URL+"/graphql", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.HTTP.Client().Do(req)
	harness.Must(t, err == nil && resp.StatusCode == http.StatusRequestEntityTooLarge, "2 MiB chunked body: %v %v", err, resp)
	resp.Body.Close()

	// Variables over their limit inside a body under its own.
	r = raw(s, http.MethodPost, "/graphql", withBearer(jsonPost, doctor), gqlBody(`query($p: String) { me { username } }`, map[string]any{"p": strings.Repeat("x", 300<<10)}))
	harness.Must(t, refusedFor(r.Response, "larger than the limit") && r.Errors[0].Field() == "variables", "300 KiB variables: %d %.300s", r.Status, r.body)

	aliases := func(n int, field string) string {
		var b strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "a%d: %s ", i, field)
		}
		return b.String()
	}
	manyFields := "{ me { " + aliases(600, "username") + "} }"
	manyRoots := "{ " + aliases(21, "__typename") + "}"
	r = raw(s, http.MethodPost, "/graphql", withBearer(jsonPost, doctor), gqlBody(manyFields, nil))
	harness.Must(t, refusedFor(r.Response, "too many fields"), "600 aliases: %.300s", r.body)
	r = raw(s, http.MethodPost, "/graphql", jsonPost, gqlBody(manyRoots, nil))
	harness.Must(t, refusedFor(r.Response, "too many root fields"), "21 root fields: %.300s", r.body)
	var roots map[string]string
	s.Do("", "{ "+aliases(20, "__typename")+"}", nil).Decode(t, &roots)
	harness.Must(t, len(roots) == 20, "20 root fields: %v", roots)
	r = raw(s, http.MethodGet, "/graphql?query="+url.QueryEscape(manyFields), map[string]string{"Authorization": "Bearer " + doctor}, "")
	harness.Must(t, refusedFor(r.Response, "too many fields"), "600 aliases by GET: %.300s", r.body)

	ws := s.DialWS(t, harness.ProtoTransportWS)
	ws.Init(doctor)
	errs := ws.Failure(ws.Start(manyFields, nil))
	harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT" && strings.Contains(errs[0].Message, "too many fields"), "600 aliases over WebSocket: %v", errs)
	errs = ws.Failure(ws.Start(`query($p: String) { me { username } }`, map[string]any{"p": strings.Repeat("x", 300<<10)}))
	harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT" && errs[0].Field() == "variables", "300 KiB variables over WebSocket: %v", errs)
}

// TestResponseSizeLimit: a response over the limit is replaced by an
// error, none of its data sent.
func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	b := harness.NewBacking(t)
	s := harness.NewServerOn(t, b)
	d := s.Demo()
	small := harness.NewServerOn(t, b, func(c *config.Config) { c.MaxResponseBytes = 300 })
	admin := s.Token("admin") // signing in answers more than 300 bytes
	r := small.Do(admin, `{ patients(first: 100) { edges { node { id mrn givenName familyName birthDate } } } }`, nil)
	harness.Must(t, r.Status == http.StatusOK && refusedFor(r, "response is larger than the limit of 300 bytes"), "large response: %s", harness.Describe(r))
	harness.Must(t, !strings.Contains(harness.Describe(r), d.Patients[0]), "part of the harness.Response was sent: %s", harness.Describe(r))
	var me struct{ Me struct{ Username string } }
	small.Do(admin, `{ me { username } }`, nil).Decode(t, &me)
	harness.Must(t, me.Me.Username == "admin", "a small response: %+v", me)
}

// TestRequestDeadline: a request past its deadline gets a clear error, and
// the server does not log it as its own failure.
func TestRequestDeadline(t *testing.T) {
	t.Parallel()
	var logged harness.SyncBuffer
	s := harness.NewServerLogging(t, harness.NewBacking(t), &logged, func(c *config.Config) { c.RequestTimeout = time.Nanosecond })
	r := s.Do("", harness.LoginMutation, map[string]any{"u": "doctor", "p": harness.DemoPassword})
	harness.Must(t, len(r.Errors) == 1 && r.Errors[0].Code() == "INTERNAL" && strings.Contains(r.Errors[0].Message, "time limit") &&
		(len(r.Data) == 0 || string(r.Data) == "null"), "past the deadline: %s", harness.Describe(r))
	harness.Must(t, !strings.Contains(logged.String(), "level=ERROR"), "a deadline logged as an error:\n%s", logged.String())
}
