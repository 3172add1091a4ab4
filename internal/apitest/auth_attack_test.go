package apitest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/internal/config"
)

// doWith posts a GraphQL document with extra request headers.
func (s *server) doWith(header http.Header, credential, query string, vars map[string]any) response {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := s.http.Client().Do(req)
	if err != nil {
		s.t.Errorf("post: %v", err) // Errorf: may run off the test's goroutine
		return response{}
	}
	defer resp.Body.Close()
	var r response
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &r); err != nil {
		s.t.Errorf("response is not JSON (%d): %s", resp.StatusCode, raw)
	}
	r.Status = resp.StatusCode
	return r
}

// outcome names how a login ended: "ok", or the error code.
func outcome(r response) string {
	if len(r.Errors) == 0 {
		return "ok"
	}
	return r.Errors[0].code()
}

// concurrentLogins fires one login per password at once, released together
// by a barrier, and counts the outcomes.
func concurrentLogins(s *server, users, passwords []string, header http.Header) map[string]int {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		count = map[string]int{}
	)
	start := make(chan struct{})
	for i := range passwords {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := s.doWith(header, "", loginMutation, map[string]any{"u": users[i], "p": passwords[i]})
			mu.Lock()
			count[outcome(r)]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return count
}

// TestConcurrentWrongLoginsEvaluateAtMostTheLimit: the throttle used to read
// the failure count, check the password, then count the failure, so 24
// guesses fired at once were all checked before any was counted. Now a slot
// is taken before a password is looked at. Each UNAUTHENTICATED answer is
// one password evaluated and each TOO_MANY_REQUESTS one refused unseen, so
// the outcomes count the evaluations exactly.
func TestConcurrentWrongLoginsEvaluateAtMostTheLimit(t *testing.T) {
	const limit = 5
	s := newServer(t, func(c *config.Config) { c.LoginMaxFailures = limit })
	users := make([]string, 24)
	guesses := make([]string, 24)
	for i := range guesses {
		users[i], guesses[i] = "pharmacist", fmt.Sprintf("guess-%02d", i)
	}
	got := concurrentLogins(s, users, guesses, nil)
	must(t, got["UNAUTHENTICATED"] == limit && got["TOO_MANY_REQUESTS"] == len(guesses)-limit && len(got) == 2,
		"24 concurrent guesses with a limit of %d: %v", limit, got)

	// The right password, arriving once the limit is reached, is refused too.
	r := s.do("", loginMutation, map[string]any{"u": "pharmacist", "p": demoPassword})
	must(t, r.hasCode("TOO_MANY_REQUESTS"), "right password after the limit: %s", describe(r))
	s.login("doctor", demoPassword) // another user is not affected
}

// TestConcurrentLoginsWithTheRightPassword: the right password racing the
// guesses may win a slot or be refused, but the guesses never get more than
// the limit between them, and a success does not wipe the failures counted.
func TestConcurrentLoginsWithTheRightPassword(t *testing.T) {
	const limit = 5
	s := newServer(t, func(c *config.Config) { c.LoginMaxFailures = limit })
	users := make([]string, 25)
	passwords := make([]string, 25)
	for i := range passwords {
		users[i], passwords[i] = "nurse", fmt.Sprintf("guess-%02d", i)
	}
	passwords[24] = demoPassword
	got := concurrentLogins(s, users, passwords, nil)
	must(t, got["UNAUTHENTICATED"] <= limit && got["ok"] <= 1 && got["UNAUTHENTICATED"]+got["ok"]+got["TOO_MANY_REQUESTS"] == len(passwords),
		"25 concurrent logins, one right, limit %d: %v", limit, got)
	// Refused, the right password found every slot held by a guess, and
	// those guesses all failed.
	must(t, got["ok"] == 1 || got["UNAUTHENTICATED"] == limit, "the right password was refused with slots to spare: %v", got)
	// Only failures stay counted: the window is spent exactly when the
	// guesses alone reached the limit.
	r := s.do("", loginMutation, map[string]any{"u": "nurse", "p": demoPassword})
	if got["UNAUTHENTICATED"] == limit {
		must(t, r.hasCode("TOO_MANY_REQUESTS"), "the guesses used up the window: %s", describe(r))
	} else {
		must(t, len(r.Errors) == 0, "%d failures under a limit of %d: %s", got["UNAUTHENTICATED"], limit, describe(r))
	}
}

// TestConcurrentLoginsPerAddressLimit: the same race across many usernames
// from one address.
func TestConcurrentLoginsPerAddressLimit(t *testing.T) {
	const limit = 6
	s := newServer(t, func(c *config.Config) { c.LoginMaxFailuresPerAddr = limit })
	users := make([]string, 30)
	guesses := make([]string, 30)
	for i := range guesses {
		users[i], guesses[i] = fmt.Sprintf("user%02d", i), "wrong"
	}
	got := concurrentLogins(s, users, guesses, nil)
	must(t, got["UNAUTHENTICATED"] == limit && got["TOO_MANY_REQUESTS"] == len(guesses)-limit,
		"30 concurrent guesses from one address, limit %d: %v", limit, got)
}
