package platform

import (
	"bytes"
	"context"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/app"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// The crash test runs servers as child processes of its own test binary,
// which it kills with SIGKILL: nothing of a server's shutdown runs.
const (
	crashChildEnv     = "HMIS_TEST_CRASH_CHILD"     // the file the child writes its address to
	crashSQLiteEnv    = "HMIS_TEST_CRASH_SQLITE"    // the database file the children share
	crashRedisEnv     = "HMIS_TEST_CRASH_REDIS"     // Redis URL, if the children use Redis
	crashPrefixEnv    = "HMIS_TEST_CRASH_PREFIX"    // its key prefix
	crashRetentionEnv = "HMIS_TEST_CRASH_RETENTION" // events retained per topic
)

// TestEventsCrashChildServer is the harness.Server process of
// TestEventsSurviveServerKill, not a test of its own: it serves until it
// is killed.
func TestEventsCrashChildServer(t *testing.T) {
	addrFile := os.Getenv(crashChildEnv)
	if addrFile == "" {
		t.Skip("runs only as the child process of TestEventsSurviveServerKill")
	}
	cfg := harness.ConfigFor(harness.Backing{
		SQLitePath:  os.Getenv(crashSQLiteEnv),
		RedisURL:    os.Getenv(crashRedisEnv),
		RedisPrefix: os.Getenv(crashPrefixEnv),
	})
	retention, err := strconv.Atoi(os.Getenv(crashRetentionEnv))
	if err != nil {
		t.Fatal(err)
	}
	cfg.EventRetention = retention
	ctx := context.Background()
	a, err := app.Open(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SeedDemo(ctx, io.Discard); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go a.RunRelay(ctx)
	// Written whole, then renamed, so the parent never reads half of it.
	if err := os.WriteFile(addrFile+".tmp", []byte(l.Addr().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(addrFile+".tmp", addrFile); err != nil {
		t.Fatal(err)
	}
	t.Fatal(http.Serve(l, a.Handler))
}

// crashChild is one harness.Server process started by the test.
type crashChild struct {
	cmd *exec.Cmd
	out bytes.Buffer
}

// startCrashChild starts a harness.Server process on the shared database and
// points target at it once it listens.
func startCrashChild(t *testing.T, env []string, target *atomic.Pointer[url.URL]) *crashChild {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	c := &crashChild{cmd: exec.Command(os.Args[0], "-test.run=^TestEventsCrashChildServer$", "-test.count=1")}
	c.cmd.Env = append(os.Environ(), append(env, crashChildEnv+"="+addrFile)...)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.kill(t) })
	deadline := time.Now().Add(2 * time.Minute)
	for {
		addr, err := os.ReadFile(addrFile)
		if err == nil {
			target.Store(&url.URL{Scheme: "http", Host: string(addr)})
			return c
		}
		if c.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("harness.Server process did not start: %s", c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill ends the process with SIGKILL, as a crash or the OOM killer would.
func (c *crashChild) kill(t *testing.T) {
	t.Helper()
	if c.cmd.ProcessState != nil {
		return
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = c.cmd.Wait()
}

// A harness.Server is killed after its relay published events that a dashboard
// received, and started again on the same database. A dashboard resuming
// with a cursor from before the crash gets every later event once, under
// the ID it had before the crash, then the new ones; a cursor older than
// what is retained gets CURSOR_EXPIRED, never a silent gap.
func TestEventsSurviveServerKill(t *testing.T) {
	if os.Getenv(crashChildEnv) != "" {
		t.Skip("this is the child process")
	}
	t.Run("embedded", func(t *testing.T) { eventsCrashRun(t, nil, true) })
	t.Run("redis", func(t *testing.T) {
		redisURL, prefix := testenv.RedisConfig(t)
		if redisURL == "" {
			t.Skip("HMIS_TEST_REDIS_URL is not set")
		}
		// Redis trims by the hundred: a handful of events expire nothing.
		eventsCrashRun(t, []string{crashRedisEnv + "=" + redisURL, crashPrefixEnv + "=" + prefix}, false)
	})
}

func eventsCrashRun(t *testing.T, env []string, expires bool) {
	const retention = 4
	env = append(env,
		crashSQLiteEnv+"="+filepath.Join(t.TempDir(), "hmis.db"),
		crashRetentionEnv+"="+strconv.Itoa(retention))
	// The client talks to whichever process is up, through one address,
	// as it would through a load balancer.
	var target atomic.Pointer[url.URL]
	proxy := httptest.NewServer(&httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target.Load())
	}})
	t.Cleanup(proxy.Close)
	s := harness.Remote(t, proxy)

	first := startCrashChild(t, env, &target)
	d := s.Demo()
	b := &harness.Booker{T: t, S: s, User: "reception"}
	f := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("doctor"), map[string]any{"providerId": d.Doctor})
	harness.AwaitLive(t, func() string { return b.Book(d.Patients[3], d.Doctor) }, f)
	var seen []harness.AppointmentEvent
	for range 4 {
		want := b.Book(d.Patients[1], d.Doctor)
		ev := f.Next()
		harness.Must(t, ev.Appointment.ID == want, "event for %s, want %s", ev.Appointment.ID, want)
		seen = append(seen, ev)
	}
	first.kill(t)
	f.Conn.Close()

	startCrashChild(t, env, &target)
	later := []string{b.Book(d.Patients[1], d.Doctor), b.Book(d.Patients[2], d.Doctor)}

	// The last event the dashboard saw before the crash was seen[1].
	g := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("doctor"), map[string]any{"providerId": d.Doctor, "after": seen[1].EventID})
	for i, want := range seen[2:] {
		ev := g.Next()
		harness.Must(t, ev.EventID == want.EventID && ev.Appointment.ID == want.Appointment.ID,
			"replayed event %d is %s for %s, want %s for %s as before the crash", i, ev.EventID, ev.Appointment.ID, want.EventID, want.Appointment.ID)
	}
	last := seen[3].EventID
	for i, want := range later {
		ev := g.Next()
		harness.Must(t, ev.Appointment.ID == want && ev.Type == "BOOKED", "event %d after the restart: %+v, want %s booked", i, ev, want)
		harness.Must(t, events.CompareIDs(last, ev.EventID) < 0, "event %s does not come after %s", ev.EventID, last)
		last = ev.EventID
	}
	if r, ok := g.Conn.ResultWithin(g.OpID, 300*time.Millisecond); ok {
		t.Fatalf("unexpected message after the replay: %s %v %s", r.Kind, r.Resp.Errors, r.Resp.Data)
	}

	if !expires {
		return
	}
	// The in-process broker keeps four: seen[2:] and later. A dashboard
	// whose last event was seen[0] has missed seen[1], which is gone.
	h := harness.SubscribeAppointments(t, s, harness.ProtoTransportWS, s.Token("doctor"), map[string]any{"after": seen[0].EventID})
	errs := h.Conn.Failure(h.OpID)
	harness.Must(t, len(errs) == 1 && errs[0].Code() == "CURSOR_EXPIRED" && errs[0].Field() == "after",
		"a cursor older than the retained events: %+v", errs)
}
