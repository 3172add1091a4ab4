// Package browser opens HMIS's pages in headless Chromium, as a person
// would: the GraphiQL console and the example ward dashboard, on the same
// backends as every API test. Without a chromium binary the tests skip,
// unless HMIS_TEST_BROWSER=required (as in CI), where they fail.
package browser

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Environment variables of these tests.
const (
	// requiredEnv set to "required" turns a missing browser into a failure.
	requiredEnv = "HMIS_TEST_BROWSER"
	// artifactsEnv names the directory failure screenshots go to; unset,
	// a new temporary directory, whose path the test logs.
	artifactsEnv = "HMIS_TEST_ARTIFACTS"
)

// chromiumPath finds the browser: the names Debian and Chrome install under.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless_shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv(requiredEnv) == "required" {
		t.Fatalf("%s=required but no chromium binary is on PATH (apt-get install chromium)", requiredEnv)
	}
	t.Skipf("no chromium binary on PATH: browser tests skipped (apt-get install chromium, or set %s=required to fail instead)", requiredEnv)
	return ""
}

// page is one browser tab, with what it asked the network for and what
// went wrong in its scripts.
type page struct {
	t   *testing.T
	ctx context.Context

	mu       sync.Mutex
	requests []string
	errs     []string
	shot     bool // a screenshot was kept
}

// openBrowser starts a headless Chromium of the test's own. When the test
// fails, a screenshot of the page is saved first and its path logged.
func openBrowser(t *testing.T) *page {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		// Root in CI and containers, where Chromium's sandbox cannot start.
		chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	p := &page{t: t}
	// The listener runs in the tab's message loop from its first message
	// on: it only records.
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(p.record))
	p.ctx = ctx
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	t.Cleanup(p.keepScreenshotIfFailed)
	p.run("start the browser")
	return p
}

func (p *page) record(ev any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		p.requests = append(p.requests, e.Request.URL)
	case *network.EventWebSocketCreated:
		p.requests = append(p.requests, e.URL)
	case *runtime.EventExceptionThrown:
		d := e.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + d.Exception.Description
		}
		p.errs = append(p.errs, fmt.Sprintf("%s (%s:%d)", text, d.URL, d.LineNumber+1))
	case *runtime.EventConsoleAPICalled:
		if e.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range e.Args {
				args = append(args, strings.Trim(string(a.Value), `"`)+a.Description)
			}
			p.errs = append(p.errs, "console.error: "+strings.Join(args, " "))
		}
	}
}

// run runs browser actions, failing the test with what for context.
func (p *page) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx := p.ctx
	if len(actions) > 0 {
		// Not the first call: a deadline on that one would end the browser.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(p.ctx, 30*time.Second)
		defer cancel()
	}
	if err := chromedp.Do(ctx, actions...); err != nil {
		p.keepScreenshot()
		p.t.Fatalf("%s: %v%s", what, err, p.scriptErrors())
	}
}

// await waits up to the deadline for the JavaScript condition to hold.
func (p *page) await(what string, deadline time.Duration, condition string) time.Duration {
	p.t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(p.ctx, deadline)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](condition,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(0)))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("not within %s", deadline)
		}
		p.keepScreenshot()
		p.t.Fatalf("waiting for %s: %v%s", what, err, p.scriptErrors())
	}
	return time.Since(start)
}

// holds reports whether the condition comes to hold within d.
func (p *page) holds(d time.Duration, condition string) bool {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](condition,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(0)))
	return err == nil
}

func (p *page) scriptErrors() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) == 0 {
		return ""
	}
	return "\nscript errors:\n  " + strings.Join(p.errs, "\n  ")
}

// onlyFrom fails the test if the page asked anything of another origin
// than the server's: a page that works only with internet access, a font
// or a script from a CDN, would be caught here.
func (p *page) onlyFrom(origin string) {
	p.t.Helper()
	u, err := url.Parse(origin)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.requests) == 0 {
		p.t.Fatal("the page made no request at all: network events were not recorded")
	}
	for _, raw := range p.requests {
		r, err := url.Parse(raw)
		if err != nil {
			p.t.Errorf("request to an unparsable URL %q", raw)
			continue
		}
		if r.Scheme == "data" || r.Scheme == "blob" {
			continue
		}
		if r.Host != u.Host {
			p.t.Errorf("the page asked %s, not its server %s", raw, u.Host)
		}
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// keepScreenshotIfFailed runs when the test ends, after the servers it
// started (cleaned up in reverse order) are gone: a failure the page itself
// reported has had its screenshot taken at once.
func (p *page) keepScreenshotIfFailed() {
	if p.t.Failed() && !p.shot {
		p.keepScreenshot()
	}
}

func (p *page) keepScreenshot() {
	p.shot = true
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "hmis-browser-"); err != nil {
			p.t.Logf("no screenshot: %v", err)
			return
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Logf("no screenshot: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("no screenshot: %v", err)
		return
	}
	name := filepath.Join(dir, unsafeName.ReplaceAllString(p.t.Name(), "_")+".png")
	if err := os.WriteFile(name, png, 0o644); err != nil {
		p.t.Logf("no screenshot: %v", err)
		return
	}
	p.t.Logf("screenshot of the page: %s", name)
}

// switchboard is a TCP proxy at one address in front of whichever server
// is up, as a load balancer is: a browser keeps its URL across a restart.
type switchboard struct {
	ln net.Listener

	mu     sync.Mutex
	target string // "" while no server is up: connections are refused
	conns  map[net.Conn]bool
}

func newSwitchboard(t *testing.T, target string) *switchboard {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sb := &switchboard{ln: ln, target: target, conns: map[net.Conn]bool{}}
	t.Cleanup(func() {
		ln.Close()
		sb.switchTo("")
	})
	go sb.serve()
	return sb
}

func (sb *switchboard) URL() string { return "http://" + sb.ln.Addr().String() }

func (sb *switchboard) serve() {
	for {
		c, err := sb.ln.Accept()
		if err != nil {
			return
		}
		go sb.pipe(c)
	}
}

func (sb *switchboard) pipe(c net.Conn) {
	sb.mu.Lock()
	target := sb.target
	sb.mu.Unlock()
	if target == "" {
		c.Close()
		return
	}
	up, err := net.Dial("tcp", target)
	if err != nil {
		c.Close()
		return
	}
	sb.mu.Lock()
	if sb.target != target { // switched meanwhile
		sb.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	sb.conns[c], sb.conns[up] = true, true
	sb.mu.Unlock()
	go func() {
		_, _ = io.Copy(up, c)
		up.Close()
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	sb.mu.Lock()
	delete(sb.conns, c)
	delete(sb.conns, up)
	sb.mu.Unlock()
}

// switchTo cuts every open connection, as the end of a server process
// does, and sends new ones to target ("" refuses them).
func (sb *switchboard) switchTo(target string) {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	sb.target = target
	for c := range sb.conns {
		c.Close()
		delete(sb.conns, c)
	}
}
