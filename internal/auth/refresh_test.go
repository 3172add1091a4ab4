package auth

import (
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/globalid"
)

func newTestService(t *testing.T, secret string) *Service {
	t.Helper()
	s, err := NewService(Config{Secret: []byte(secret)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRefreshTokenSession: a retired refresh token ends its session only if
// this server issued it; nothing else may name a session and end it.
func TestRefreshTokenSession(t *testing.T) {
	s := newTestService(t, strings.Repeat("a", MinSecretLength))
	sid := globalid.New("ses")
	tok := s.newRefreshToken(sid)
	if got, ok := s.refreshTokenSession(tok); !ok || got != sid {
		t.Fatalf("own token: %q %v", got, ok)
	}
	if s.newRefreshToken(sid) == tok {
		t.Fatal("two tokens of one session are alike")
	}
	parts := strings.Split(tok, ".")
	other := globalid.New("ses")
	for name, bad := range map[string]string{
		"another session's ID":    other + "." + parts[1] + "." + parts[2],
		"other random bits":       parts[0] + "." + strings.Repeat("B", len(parts[1])) + "." + parts[2],
		"a truncated signature":   tok[:len(tok)-1],
		"no signature":            parts[0] + "." + parts[1],
		"a plain random token":    randomToken(),
		"not a session ID":        "usr_" + strings.TrimPrefix(tok, "ses_"),
		"another server's secret": newTestService(t, strings.Repeat("b", MinSecretLength)).newRefreshToken(sid),
	} {
		if got, ok := s.refreshTokenSession(bad); ok {
			t.Errorf("%s: taken as issued for %q", name, got)
		}
	}
}
