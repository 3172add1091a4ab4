package platform

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
)

// doWith posts a GraphQL document with extra request headers; from any
// goroutine.
func doWith(s *harness.Server, header http.Header, credential, query string, vars map[string]any) harness.Response {
	r, err := s.Send(header, credential, query, vars)
	if err != nil {
		s.T.Error(err) // Error, not Fatal: may run off the test's goroutine
	}
	return r
}

// outcome names how a login ended: "ok", or the error code.
func outcome(r harness.Response) string {
	if len(r.Errors) == 0 {
		return "ok"
	}
	return r.Errors[0].Code()
}

// concurrentLogins fires one login per password at once, released together
// by a barrier, and counts the outcomes.
func concurrentLogins(s *harness.Server, users, passwords []string, header http.Header) map[string]int {
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
			r := doWith(s, header, "", harness.LoginMutation, map[string]any{"u": users[i], "p": passwords[i]})
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
	t.Parallel()
	const limit = 5
	s := harness.NewServer(t, func(c *config.Config) { c.LoginMaxFailures = limit })
	users := make([]string, 24)
	guesses := make([]string, 24)
	for i := range guesses {
		users[i], guesses[i] = "pharmacist", fmt.Sprintf("guess-%02d", i)
	}
	got := concurrentLogins(s, users, guesses, nil)
	harness.Must(t, got["UNAUTHENTICATED"] == limit && got["TOO_MANY_REQUESTS"] == len(guesses)-limit && len(got) == 2,
		"24 concurrent guesses with a limit of %d: %v", limit, got)

	// The right password, arriving once the limit is reached, is refused too.
	r := s.Do("", harness.LoginMutation, map[string]any{"u": "pharmacist", "p": harness.DemoPassword})
	harness.Must(t, r.HasCode("TOO_MANY_REQUESTS"), "right password after the limit: %s", harness.Describe(r))
	s.Login("doctor", harness.DemoPassword) // another user is not affected
}

// TestConcurrentLoginsWithTheRightPassword: the right password racing the
// guesses may win a slot or be refused, but the guesses never get more than
// the limit between them, and a success does not wipe the failures counted.
func TestConcurrentLoginsWithTheRightPassword(t *testing.T) {
	t.Parallel()
	const limit = 5
	s := harness.NewServer(t, func(c *config.Config) { c.LoginMaxFailures = limit })
	users := make([]string, 25)
	passwords := make([]string, 25)
	for i := range passwords {
		users[i], passwords[i] = "nurse", fmt.Sprintf("guess-%02d", i)
	}
	passwords[24] = harness.DemoPassword
	got := concurrentLogins(s, users, passwords, nil)
	harness.Must(t, got["UNAUTHENTICATED"] <= limit && got["ok"] <= 1 && got["UNAUTHENTICATED"]+got["ok"]+got["TOO_MANY_REQUESTS"] == len(passwords),
		"25 concurrent logins, one right, limit %d: %v", limit, got)
	// Refused, the right password found every slot held by a guess, and
	// those guesses all failed.
	harness.Must(t, got["ok"] == 1 || got["UNAUTHENTICATED"] == limit, "the right password was refused with slots to spare: %v", got)
	// Only failures stay counted: the window is spent exactly when the
	// guesses alone reached the limit.
	r := s.Do("", harness.LoginMutation, map[string]any{"u": "nurse", "p": harness.DemoPassword})
	if got["UNAUTHENTICATED"] == limit {
		harness.Must(t, r.HasCode("TOO_MANY_REQUESTS"), "the guesses used up the window: %s", harness.Describe(r))
	} else {
		harness.Must(t, len(r.Errors) == 0, "%d failures under a limit of %d: %s", got["UNAUTHENTICATED"], limit, harness.Describe(r))
	}
}

// TestConcurrentLoginsPerAddressLimit: the same race across many usernames
// from one address.
func TestConcurrentLoginsPerAddressLimit(t *testing.T) {
	t.Parallel()
	const limit = 6
	s := harness.NewServer(t, func(c *config.Config) { c.LoginMaxFailuresPerAddr = limit })
	users := make([]string, 30)
	guesses := make([]string, 30)
	for i := range guesses {
		users[i], guesses[i] = fmt.Sprintf("user%02d", i), "wrong"
	}
	got := concurrentLogins(s, users, guesses, nil)
	harness.Must(t, got["UNAUTHENTICATED"] == limit && got["TOO_MANY_REQUESTS"] == len(guesses)-limit,
		"30 concurrent guesses from one address, limit %d: %v", limit, got)
}

// TestSpoofedForwardedForKeepsTheAddressLimit: behind a trusted proxy, the
// client address used to be the leftmost X-Forwarded-For entry, which the
// client writes, so each guess could come "from" a new address. Now it is
// the address the proxy saw. The test client plays the proxy (it connects
// from 127.0.0.1), appending the real client's address as a proxy does.
func TestSpoofedForwardedForKeepsTheAddressLimit(t *testing.T) {
	t.Parallel()
	const limit = 3
	s := harness.NewServer(t, func(c *config.Config) {
		c.LoginMaxFailuresPerAddr = limit
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}
	})
	via := func(spoofed, real string) http.Header {
		return http.Header{"X-Forwarded-For": {spoofed + ", " + real}}
	}
	for i := 0; i < limit; i++ {
		r := doWith(s, via(fmt.Sprintf("198.51.100.%d", i+1), "203.0.113.9"), "", harness.LoginMutation,
			map[string]any{"u": fmt.Sprintf("spoof%d", i), "p": "wrong"})
		harness.Must(t, r.HasCode("UNAUTHENTICATED"), "guess %d: %s", i, harness.Describe(r))
	}
	r := doWith(s, via("198.51.100.200", "203.0.113.9"), "", harness.LoginMutation, map[string]any{"u": "doctor", "p": harness.DemoPassword})
	harness.Must(t, r.HasCode("TOO_MANY_REQUESTS"), "a new spoofed address must not reopen the limit: %s", harness.Describe(r))

	// Another client behind the same proxy is its own address.
	r = doWith(s, via("203.0.113.9", "203.0.113.10"), "", harness.LoginMutation, map[string]any{"u": "doctor", "p": harness.DemoPassword})
	harness.Must(t, len(r.Errors) == 0, "another client: %s", harness.Describe(r))

	// The audit trail records the address the proxy saw.
	rows := harness.AuditRows(t, s, map[string]any{"operation": "login", "outcome": "FAILED"})
	harness.Must(t, len(rows) == limit+1, "failed logins audited: %d", len(rows))
	for _, row := range rows {
		harness.Must(t, row.ClientAddr != nil && *row.ClientAddr == "203.0.113.9", "audited address: %v", row.ClientAddr)
	}
}

// TestChangePasswordIsNoPasswordOracle: a stolen access token lasts 15
// minutes, but changePassword checked guesses of the current password
// without limit — sixteen aliases in one request — and a right guess turned
// the token into the account. Now a request may hold one credential
// mutation, and a wrong current password counts as a failed login.
func TestChangePasswordIsNoPasswordOracle(t *testing.T) {
	t.Parallel()
	const limit = 5
	s := harness.NewServer(t, func(c *config.Config) { c.LoginMaxFailures = limit })
	stolen := s.Login("reception", harness.DemoPassword)

	var doc strings.Builder
	doc.WriteString("mutation {\n")
	for i := 1; i <= 15; i++ {
		fmt.Fprintf(&doc, "  g%d: changePassword(input: {currentPassword: \"guess-%d\", newPassword: \"attacker-owns-this-now\"})\n", i, i)
	}
	fmt.Fprintf(&doc, "  g16: changePassword(input: {currentPassword: %q, newPassword: \"attacker-owns-this-now\"})\n}", harness.DemoPassword)
	r := s.Do(stolen.AccessToken, doc.String(), nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && len(r.Errors) == 1 && strings.Contains(r.Errors[0].Message, "at most one") &&
		(len(r.Data) == 0 || string(r.Data) == "null"), "16 aliased changePassword: %s", harness.Describe(r))
	// Refused whole: nothing ran, not even the guesses' failure counts.
	s.Login("reception", harness.DemoPassword)
	r = s.Do("", harness.LoginMutation, map[string]any{"u": "reception", "p": "attacker-owns-this-now"})
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "the password must not have changed: %s", harness.Describe(r))

	// One guess per request is throttled like a login, on the same count.
	for i := 0; i < limit-1; i++ { // the failed login just above was the first
		r := s.Do(stolen.AccessToken, changePassword, map[string]any{"c": fmt.Sprintf("guess-%d", i), "n": "attacker-owns-this-now"})
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.currentPassword", "guess %d: %s", i, harness.Describe(r))
	}
	r = s.Do(stolen.AccessToken, changePassword, map[string]any{"c": harness.DemoPassword, "n": "attacker-owns-this-now"})
	harness.Must(t, r.HasCode("TOO_MANY_REQUESTS"), "the right guess after the limit: %s", harness.Describe(r))
	r = s.Do("", harness.LoginMutation, map[string]any{"u": "reception", "p": harness.DemoPassword})
	harness.Must(t, r.HasCode("TOO_MANY_REQUESTS"), "the account is locked for logins too: %s", harness.Describe(r))
}

// TestOneCredentialMutationPerRequest: two different credential mutations,
// or two of one, are refused before either runs.
func TestOneCredentialMutationPerRequest(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	p := s.Login("labtech", harness.DemoPassword)
	for name, doc := range map[string]string{
		"login twice":        `mutation { a: login(input: {username: "labtech", password: "x1"}) { accessToken } b: login(input: {username: "labtech", password: "x2"}) { accessToken } }`,
		"login and refresh":  `mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken } login(input: {username: "labtech", password: "x"}) { accessToken } }`,
		"through a fragment": `mutation($t: String!) { ...F login(input: {username: "labtech", password: "x"}) { accessToken } } fragment F on Mutation { refreshToken(input: {refreshToken: $t}) { accessToken } }`,
		"refresh and logout": `mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken } logout }`,
	} {
		r := s.Do(p.AccessToken, doc, map[string]any{"t": p.RefreshToken})
		harness.Must(t, len(r.Errors) == 1 && r.HasCode("BAD_USER_INPUT") && strings.Contains(r.Errors[0].Message, "at most one"), "%s: %s", name, harness.Describe(r))
	}
	// Nothing ran: the refresh token was not rotated, the session not ended.
	var out struct{ RefreshToken harness.AuthPayload }
	s.Do("", refreshMutation, map[string]any{"t": p.RefreshToken}).Decode(t, &out)
	// A skipped one does not count; one credential mutation beside others is fine.
	r := s.Do(out.RefreshToken.AccessToken, `mutation($no: Boolean!) { a: logout @include(if: $no) b: logout }`, map[string]any{"no": false})
	harness.Must(t, len(r.Errors) == 0, "one logout, one skipped: %s", harness.Describe(r))
}

// sessionOf reads the session ID an access token names (its jti claim).
func sessionOf(t *testing.T, accessToken string) string {
	t.Helper()
	parts := strings.Split(accessToken, ".")
	harness.Must(t, len(parts) == 3, "not a JWT")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	harness.Must(t, err == nil, "JWT payload: %v", err)
	var c struct {
		ID string `json:"jti"`
	}
	harness.Must(t, json.Unmarshal(raw, &c) == nil && c.ID != "", "JWT claims: %s", raw)
	return c.ID
}

// TestRefreshTokenReuseEndsTheSession: a refresh token used again after
// rotation was refused, but the session went on, so whoever held the
// newer token — possibly the thief — kept it. Reuse now ends the session.
func TestRefreshTokenReuseEndsTheSession(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	first := s.Login("doctor", harness.DemoPassword)

	// A made-up token naming the session (its ID is no secret: every access
	// token carries it) is refused without ending the session; only a
	// token the server issued counts as reused.
	forged := sessionOf(t, first.AccessToken) + ".bm90LWlzc3VlZA." + strings.Repeat("A", 43)
	r := s.Do("", refreshMutation, map[string]any{"t": forged})
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "forged refresh token: %s", harness.Describe(r))
	r = s.Do(first.AccessToken, `{ me { username } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "a forged token must not end the session: %s", harness.Describe(r))

	var out struct{ RefreshToken harness.AuthPayload }
	s.Do("", refreshMutation, map[string]any{"t": first.RefreshToken}).Decode(t, &out)
	rotated := out.RefreshToken
	r = s.Do(rotated.AccessToken, `{ me { username } }`, nil)
	harness.Must(t, len(r.Errors) == 0, "rotated access token works: %s", harness.Describe(r))

	r = s.Do("", refreshMutation, map[string]any{"t": first.RefreshToken})
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "reuse is refused: %s", harness.Describe(r))

	r = s.Do(rotated.AccessToken, `{ me { username } }`, nil)
	harness.Must(t, r.Status == http.StatusUnauthorized && r.HasCode("UNAUTHENTICATED"), "the session's current access token ends: %s", harness.Describe(r))
	r = s.Do("", refreshMutation, map[string]any{"t": rotated.RefreshToken})
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "the session's current refresh token ends: %s", harness.Describe(r))
	// Other sessions of the user are not the stolen one.
	s.Login("doctor", harness.DemoPassword)

	// The trail shows the failed refresh and the session it ended.
	sid := sessionOf(t, rotated.AccessToken)
	rows := harness.AuditRows(t, s, map[string]any{"operation": "refreshToken", "outcome": "FAILED"})
	found := false
	for _, row := range rows {
		found = found || slices.Contains(row.ObjectIds, sid)
	}
	harness.Must(t, found, "no audit row names the ended session %s: %+v", sid, rows)
}

// TestRefreshTokenRacedTwiceEndsTheSession: one token presented twice at
// once is a replay too, whichever request wins.
func TestRefreshTokenRacedTwiceEndsTheSession(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	p := s.Login("nurse", harness.DemoPassword)
	var (
		wg      sync.WaitGroup
		results [2]harness.Response
	)
	start := make(chan struct{})
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = doWith(s, nil, "", refreshMutation, map[string]any{"t": p.RefreshToken})
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for _, r := range results {
		if len(r.Errors) > 0 {
			harness.Must(t, r.HasCode("UNAUTHENTICATED"), "the loser: %s", harness.Describe(r))
			continue
		}
		won++
		var out struct{ RefreshToken harness.AuthPayload }
		r.Decode(t, &out)
		again := s.Do("", refreshMutation, map[string]any{"t": out.RefreshToken.RefreshToken})
		harness.Must(t, again.HasCode("UNAUTHENTICATED"), "the winner's refresh token ends with the session: %s", harness.Describe(again))
		me := s.Do(out.RefreshToken.AccessToken, `{ me { username } }`, nil)
		harness.Must(t, me.HasCode("UNAUTHENTICATED"), "the winner's access token ends with the session: %s", harness.Describe(me))
	}
	harness.Must(t, won <= 1, "%d refreshes of one token succeeded", won)
	r := s.Do(p.AccessToken, `{ me { username } }`, nil)
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "the session's first access token ends too: %s", harness.Describe(r))
}

// TestRefreshTokenReuseEndsTheSessionOnEveryServer: the replay reaches one
// server; the session's tokens stop working on the others at once.
func TestRefreshTokenReuseEndsTheSessionOnEveryServer(t *testing.T) {
	t.Parallel()
	bk := harness.NewBacking(t)
	if bk.RedisURL == "" {
		t.Skip("needs HMIS_TEST_REDIS_URL: without Redis each server has its own revocation list, by design")
	}
	a := harness.NewServerOn(t, bk)
	b := harness.NewServerOn(t, bk)
	first := a.Login("doctor", harness.DemoPassword)
	var out struct{ RefreshToken harness.AuthPayload }
	a.Do("", refreshMutation, map[string]any{"t": first.RefreshToken}).Decode(t, &out)

	r := b.Do("", refreshMutation, map[string]any{"t": first.RefreshToken})
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "reuse on the other server: %s", harness.Describe(r))
	r = a.Do(out.RefreshToken.AccessToken, `{ me { username } }`, nil)
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "the access token ends on the first server: %s", harness.Describe(r))
	r = a.Do("", refreshMutation, map[string]any{"t": out.RefreshToken.RefreshToken})
	harness.Must(t, r.HasCode("UNAUTHENTICATED"), "the refresh token ends on the first server: %s", harness.Describe(r))
}
