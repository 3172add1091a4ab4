package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func serve(t *testing.T, o Options) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux, o)
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func get(t *testing.T, s *httptest.Server, path string) (*http.Response, string) {
	t.Helper()
	r, err := http.Get(s.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, string(b)
}

// reference finds what a page or stylesheet makes the browser fetch.
var reference = regexp.MustCompile(`(?i)(?:src|href)\s*=\s*["']([^"']+)["']|url\(\s*["']?([^"')]+)|@import\s+["']([^"']+)`)

// TestPagesLoadOnlyFromTheServer: every script, stylesheet, font and image
// the pages ask for is served here, under a policy that forbids any other
// origin, so the console works with no internet access.
func TestPagesLoadOnlyFromTheServer(t *testing.T) {
	s := serve(t, Options{GraphiQL: true, Examples: true})
	for _, path := range []string{"/", DashboardPath} {
		r, body := get(t, s, path)
		if r.StatusCode != http.StatusOK || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") {
			t.Fatalf("%s: %d %s", path, r.StatusCode, r.Header.Get("Content-Type"))
		}
		csp := r.Header.Get("Content-Security-Policy")
		for _, directive := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "font-src 'self' data:"} {
			if !strings.Contains(csp, directive) {
				t.Errorf("%s: policy %q lacks %q", path, csp, directive)
			}
		}
		refs := reference.FindAllStringSubmatch(body, -1)
		if len(refs) == 0 {
			t.Fatalf("%s: no script or stylesheet found", path)
		}
		for _, m := range refs {
			ref := m[1] + m[2] + m[3]
			if !strings.HasPrefix(ref, "/") || strings.HasPrefix(ref, "//") {
				t.Errorf("%s refers to %q, not to its own server", path, ref)
				continue
			}
			if strings.HasPrefix(ref, Prefix) {
				if r, _ := get(t, s, ref); r.StatusCode != http.StatusOK {
					t.Errorf("%s refers to %s, which answers %d", path, ref, r.StatusCode)
				}
			}
		}
	}
	// Stylesheets: fonts and images are data: URLs, nothing fetched.
	_ = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(name, ".css") {
			return err
		}
		b, _ := files.ReadFile(name)
		for _, m := range reference.FindAllStringSubmatch(string(b), -1) {
			if ref := m[1] + m[2] + m[3]; !strings.HasPrefix(ref, "data:") {
				t.Errorf("%s fetches %q", name, ref)
			}
		}
		return nil
	})
}

// TestPagesFollowTheirSwitches: GraphiQL only when switched on, the example
// dashboard only in demo mode, nothing at all when both are off.
func TestPagesFollowTheirSwitches(t *testing.T) {
	for _, c := range []struct {
		o                         Options
		console, dashboard, asset int
	}{
		{Options{}, 404, 404, 404},
		{Options{GraphiQL: true}, 200, 404, 200},
		{Options{Examples: true}, 404, 200, 200},
	} {
		s := serve(t, c.o)
		for path, want := range map[string]int{"/": c.console, DashboardPath: c.dashboard, Prefix + "thirdparty/graphql-ws.min.js": c.asset} {
			if r, _ := get(t, s, path); r.StatusCode != want {
				t.Errorf("%+v: %s answers %d, want %d", c.o, path, r.StatusCode, want)
			}
		}
	}
	s := serve(t, Options{GraphiQL: true})
	for _, path := range []string{Prefix + "console.html", Prefix + "nothing.js", Prefix + "../console.go"} {
		if r, _ := get(t, s, path); r.StatusCode != 404 {
			t.Errorf("%s answers %d, want 404", path, r.StatusCode)
		}
	}
}

// TestAssetsRevalidate: a browser keeps an asset until it changes, and
// learns that it changed.
func TestAssetsRevalidate(t *testing.T) {
	s := serve(t, Options{GraphiQL: true})
	r, _ := get(t, s, Prefix+"thirdparty/graphiql.min.js")
	etag := r.Header.Get("ETag")
	if r.StatusCode != 200 || etag == "" || r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("graphiql.min.js: %d, ETag %q, %s", r.StatusCode, etag, r.Header.Get("Content-Type"))
	}
	req, _ := http.NewRequest("GET", s.URL+Prefix+"thirdparty/graphiql.min.js", nil)
	req.Header.Set("If-None-Match", etag)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotModified {
		t.Fatalf("revalidating with its ETag: %d, want 304", r2.StatusCode)
	}
}
