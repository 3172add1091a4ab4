package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/cache"
)

// persistedQueries is gqlgen's automatic-persisted-query cache over the
// process's cache (Redis when configured), so a document registered with
// one server process is found by the others: a mobile client sends the
// SHA-256 hash of a document instead of the document. Known documents are
// answered from the list without the cache.
type persistedQueries struct {
	cache cache.Cache
	ttl   time.Duration
	known map[string]string
}

const persistedPrefix = "apq:"

func (p persistedQueries) Get(ctx context.Context, hash string) (string, bool) {
	if doc, ok := p.known[hash]; ok {
		return doc, true
	}
	if p.known != nil {
		// Only known documents run: a hash outside the list is unknown.
		return "", false
	}
	doc, ok, err := p.cache.Get(ctx, persistedPrefix+hash)
	if err != nil || !ok {
		return "", false
	}
	return doc, true
}

// MaxPersistedDocument bounds a document the server keeps for its hash:
// an app's largest screens are a few kilobytes, and a bigger one still
// runs when sent whole.
const MaxPersistedDocument = 32 << 10

func (p persistedQueries) Add(ctx context.Context, hash, doc string) {
	if p.known != nil {
		return
	}
	// Only what a signed-in client sends, small and parsing as GraphQL, is
	// kept: otherwise anyone could fill the cache with junk under its own
	// hash without ever running a request.
	if v := auth.FromContext(ctx); v == nil || (v.UserID == "" && v.APIKeyID == "") || len(doc) > MaxPersistedDocument {
		return
	}
	if _, err := parser.ParseQuery(&ast.Source{Input: doc}); err != nil {
		return
	}
	// A cache that refuses costs the client one more round trip, with the
	// document, not its request.
	_ = p.cache.Set(ctx, persistedPrefix+hash, doc, p.ttl)
}

// knownDocuments refuses every document not in the operator's list
// (HMIS_KNOWN_DOCUMENTS_FILE), whether it came whole or as a hash.
type knownDocuments struct{ known map[string]string }

func (knownDocuments) ExtensionName() string                   { return "KnownDocuments" }
func (knownDocuments) Validate(graphql.ExecutableSchema) error { return nil }

func (k knownDocuments) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	if _, ok := k.known[documentHash(raw.Query)]; ok {
		return nil
	}
	err := gqlerror.Errorf("this server runs only its known documents")
	err.Extensions = map[string]any{"code": "PERSISTED_QUERY_NOT_ALLOWED"}
	return err
}

func documentHash(doc string) string {
	sum := sha256.Sum256([]byte(doc))
	return hex.EncodeToString(sum[:])
}

// LoadKnownDocuments reads the operator's list of documents: a JSON array
// of documents, or an object of hash to document (a persisted-query
// manifest), whose hashes are checked.
func LoadKnownDocuments(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	known := map[string]string{}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		for _, doc := range list {
			known[documentHash(doc)] = doc
		}
		return known, nil
	}
	var manifest map[string]string
	if err := json.Unmarshal(raw, &manifest); err != nil {
		return nil, fmt.Errorf("%s: neither a list of documents nor an object of hash to document", path)
	}
	for hash, doc := range manifest {
		if documentHash(doc) != hash {
			return nil, fmt.Errorf("%s: %s is not the SHA-256 of its document", path, hash)
		}
		known[hash] = doc
	}
	return known, nil
}

// persistedQueryExtension is gqlgen's automatic persisted queries with its
// refusals told as the client's mistake: a hash that does not match its
// document, an unknown version or a malformed extension are bad input
// naming extensions.persistedQuery, not internal errors (which are logged
// as the server's and would let anyone fill the error log).
type persistedQueryExtension struct {
	extension.AutomaticPersistedQuery
}

func (e persistedQueryExtension) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	err := e.AutomaticPersistedQuery.MutateOperationParameters(ctx, raw)
	if err == nil || err.Extensions["code"] != nil {
		return err
	}
	err.Message = "extensions.persistedQuery: " + err.Message
	err.Extensions = map[string]any{"code": "BAD_USER_INPUT", "field": "extensions.persistedQuery"}
	return err
}
