package auth

import (
	"context"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/cache"
)

// TestRecheckEndsAConnectionAtExpiry: an operation that reaches a socket
// after its token expired, before the socket's own watch has closed it, is
// refused, and the connection ends with it. Over HTTP the watch always wins
// that race, so the clock is set here instead.
func TestRecheckEndsAConnectionAtExpiry(t *testing.T) {
	s := &Service{cfg: Config{Secret: []byte("test-secret-test-secret-test-secret-0123"), AccessTokenTTL: time.Minute},
		cache: cache.NewMemory(), now: time.Now}
	tok, err := s.issue(&ent.User{ID: "usr_1", Username: "nurse", Roles: []string{"nurse"}}, "ses_1", "refresh")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := s.Authenticate(ctx, tok.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var told error
	conn := NewConnection(v, func(err error) { told = err })
	ctx = WithConnection(WithViewer(ctx, v), conn)

	if err := s.Recheck(ctx); err != nil {
		t.Fatalf("a fresh token: %v", err)
	}
	if conn.Err() != nil {
		t.Fatalf("ended while valid: %v", conn.Err())
	}

	s.now = func() time.Time { return v.ExpiresAt }
	// A resolver acting as the system must not make the check pass.
	err = s.Recheck(WithViewer(ctx, &Viewer{System: true}))
	if apperr.CodeOf(err) != apperr.Unauthenticated {
		t.Fatalf("at expiry: %v", err)
	}
	select {
	case <-conn.Ended():
	default:
		t.Fatal("the connection did not end")
	}
	if told == nil || conn.Err() == nil || apperr.CodeOf(s.Recheck(ctx)) != apperr.Unauthenticated {
		t.Fatalf("told %v, Err %v", told, conn.Err())
	}
}
