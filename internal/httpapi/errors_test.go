package httpapi

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// A client that hangs up mid-query makes the driver fail in words of its
// own (lib/pq: "canceling statement due to user request"); that is not a
// server error and must not be logged as one.
func TestCancelledRequestIsNotAnError(t *testing.T) {
	var logged bytes.Buffer
	present := presentError(slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug})))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := present(ctx, errors.New("pq: canceling statement due to user request"))
	if e.Extensions["code"] != "INTERNAL" || e.Message != "the request was cancelled" {
		t.Fatalf("presented as %+v", e)
	}
	if strings.Contains(logged.String(), "level=ERROR") {
		t.Fatalf("logged as an error: %s", logged.String())
	}
	// The same error in a live request is the server's own, logged.
	e = present(context.Background(), errors.New("pq: something broke"))
	if e.Message != "internal error" || !strings.Contains(logged.String(), "level=ERROR") {
		t.Fatalf("a live request's failure: %+v, log %s", e, logged.String())
	}
}
