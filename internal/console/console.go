// Package console serves the pages a browser opens on HMIS: the GraphiQL
// console and the example ward dashboard. Everything they load is embedded
// in the binary (thirdparty/ holds the pinned npm builds and their
// licences), so they work on a hospital network with no internet access;
// a Content-Security-Policy keeps every page from loading anything that
// does not come from the server itself.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed console.html console.js console.css ward-dashboard.html ward-dashboard.js ward-dashboard.css
//go:embed thirdparty/*.js thirdparty/*.css
var files embed.FS

// Prefix is where the pages' scripts and styles are served.
const Prefix = "/ui/"

// DashboardPath is the example ward dashboard's page.
const DashboardPath = "/examples/ward-dashboard"

// policy allows a page only what comes from its own server. Styles may be
// inline because GraphiQL's editor sets them; fonts and icons are data:
// URLs inside graphiql.min.css. 'self' covers the WebSocket to the same
// host and port.
const policy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Options say which pages are served.
type Options struct {
	// GraphiQL serves the console at /.
	GraphiQL bool
	// Examples serves the example ward dashboard (demo mode only).
	Examples bool
}

// Register adds the pages Options ask for to mux.
func Register(mux *http.ServeMux, o Options) {
	if !o.GraphiQL && !o.Examples {
		return
	}
	mux.Handle("GET "+Prefix+"{file...}", http.StripPrefix(Prefix, assets()))
	if o.GraphiQL {
		mux.Handle("GET /{$}", page("console.html"))
	}
	if o.Examples {
		mux.Handle("GET "+DashboardPath, page("ward-dashboard.html"))
	}
}

type asset struct {
	body []byte
	etag string
	kind string
}

// modTime is the embedded files' time (they carry none): the ETag is what
// tells a browser whether its copy is current.
var modTime time.Time

func load(name string) asset {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(err) // embedded: present by construction
	}
	sum := sha256.Sum256(b)
	kind := map[string]string{
		".html": "text/html; charset=utf-8",
		".js":   "text/javascript; charset=utf-8",
		".css":  "text/css; charset=utf-8",
	}[path.Ext(name)]
	return asset{body: b, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, kind: kind}
}

func (a asset) serve(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", a.kind)
	h.Set("ETag", a.etag)
	// Revalidated on every load, which costs a 304 when unchanged: a new
	// server version must never run with an old page's script.
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", modTime, bytes.NewReader(a.body))
}

func page(name string) http.Handler {
	a := load(name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", policy)
		w.Header().Set("Referrer-Policy", "no-referrer")
		a.serve(w, r)
	})
}

func assets() http.Handler {
	byName := map[string]asset{}
	_ = fs.WalkDir(files, ".", func(name string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(name, ".html") {
			byName[name] = load(name)
		}
		return err
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := byName[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		a.serve(w, r)
	})
}
