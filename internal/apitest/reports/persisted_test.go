package reports_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
)

func hash(doc string) string {
	sum := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(sum[:])
}

// persisted posts an automatic persisted query: the hash, and the
// document when doc is not empty.
func persisted(t *testing.T, s *harness.Server, token, sha, doc string) harness.Response {
	t.Helper()
	body := map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": sha}}}
	if doc != "" {
		body["query"] = doc
	}
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, s.HTTP.URL+"/graphql", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	var r harness.Response
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("%d %s", res.StatusCode, out)
	}
	return r
}

const censusDoc = `{ censusReport(input: {from: "2026-03-01", to: "2026-03-02"}) { name columns } }`

// TestAutomaticPersistedQueries: a hash the server has not seen is asked
// for; sent once with its document, the hash alone runs it; a hash that
// does not match its document is refused.
func TestAutomaticPersistedQueries(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	tok := s.Token("hospital_manager")
	r := persisted(t, s, tok, hash(censusDoc), "")
	harness.Must(t, r.HasCode("PERSISTED_QUERY_NOT_FOUND"), "unknown hash: %s", harness.Describe(r))
	r = persisted(t, s, tok, hash(censusDoc), censusDoc)
	harness.Must(t, len(r.Errors) == 0, "hash with document: %s", harness.Describe(r))
	r = persisted(t, s, tok, hash(censusDoc), "")
	harness.Must(t, len(r.Errors) == 0 && bytes.Contains(r.Data, []byte(`"census"`)), "hash alone: %s", harness.Describe(r))
	r = persisted(t, s, tok, hash("{ me { id } }"), censusDoc)
	harness.WantBadInput(t, "a mismatched hash", r, "extensions.persistedQuery")
	harness.Must(t, !bytes.Contains(r.Data, []byte(`"census"`)), "a mismatched hash ran: %s", harness.Describe(r))
	// Kept only for a signed-in client, and only a document that parses
	// and is not huge: nobody fills the cache with junk under its hash.
	anonymous := `{ __typename }`
	persisted(t, s, "", hash(anonymous), anonymous)
	r = persisted(t, s, tok, hash(anonymous), "")
	harness.Must(t, r.HasCode("PERSISTED_QUERY_NOT_FOUND"), "kept for an anonymous client: %s", harness.Describe(r))
	junk := "this is not graphql"
	persisted(t, s, tok, hash(junk), junk)
	r = persisted(t, s, tok, hash(junk), "")
	harness.Must(t, r.HasCode("PERSISTED_QUERY_NOT_FOUND"), "junk kept: %s", harness.Describe(r))
	huge := "#" + string(bytes.Repeat([]byte("x"), 40<<10)) + "\n{ __typename }"
	persisted(t, s, tok, hash(huge), huge)
	r = persisted(t, s, tok, hash(huge), "")
	harness.Must(t, r.HasCode("PERSISTED_QUERY_NOT_FOUND"), "a 40 KiB document kept: %s", harness.Describe(r))
	// The guard still decides: a nurse's hash of a report they may not run.
	r = persisted(t, s, s.Token("nurse"), hash(censusDoc), "")
	harness.Must(t, r.HasCode("FORBIDDEN"), "nurse: %s", harness.Describe(r))
}

// TestKnownDocumentsOnly: with a list of known documents, those run (whole
// or by hash) and nothing else does.
func TestKnownDocumentsOnly(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "documents.json")
	list, _ := json.Marshal([]string{censusDoc, harness.LoginMutation})
	if err := os.WriteFile(file, list, 0o600); err != nil {
		t.Fatal(err)
	}
	s := harness.NewServer(t, func(c *config.Config) { c.KnownDocumentsFile = file })
	tok := s.Token("hospital_manager")
	r := s.Do(tok, censusDoc, nil)
	harness.Must(t, len(r.Errors) == 0, "known document: %s", harness.Describe(r))
	r = persisted(t, s, tok, hash(censusDoc), "")
	harness.Must(t, len(r.Errors) == 0, "known document by hash: %s", harness.Describe(r))
	r = s.Do(tok, `{ me { id } }`, nil)
	harness.Must(t, r.HasCode("PERSISTED_QUERY_NOT_ALLOWED"), "unknown document: %s", harness.Describe(r))
	r = persisted(t, s, tok, hash(`{ me { id } }`), `{ me { id } }`)
	harness.Must(t, r.HasCode("PERSISTED_QUERY_NOT_ALLOWED"), "unknown document sent for persisting: %s", harness.Describe(r))

	// The socket is the same server: the list holds there too.
	for _, proto := range harness.WSProtocols {
		c := s.DialWS(t, proto)
		c.Init(tok)
		errs := c.Failure(c.Start(`subscription { labResultVerified { eventId } }`, nil))
		harness.Must(t, len(errs) == 1 && errs[0].Code() == "PERSISTED_QUERY_NOT_ALLOWED", "%s: an unknown subscription: %v", proto, errs)
		c.Close()
	}
}
