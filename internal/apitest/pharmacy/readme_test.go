package pharmacy

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

// TestREADMEPharmacyOperationsAreValid runs every operation of the README's
// pharmacy walkthrough as admin: each must be valid against the schema
// (with its placeholder IDs it is then refused as bad input, or answers),
// so the copy-paste examples keep up with the schema.
func TestREADMEPharmacyOperationsAreValid(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(harness.RepoFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "## Pharmacy: stock and dispensing")
	harness.Must(t, start >= 0, "README has no pharmacy section")
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	s := harness.NewServer(t)
	checked := 0
	for _, block := range regexp.MustCompile("(?s)```graphql\n(.*?)```").FindAllStringSubmatch(section, -1) {
		doc, perr := parser.ParseQuery(&ast.Source{Input: block[1]})
		if perr != nil {
			t.Fatalf("README block does not parse: %v", perr)
		}
		for _, op := range doc.Operations {
			var b strings.Builder
			formatter.NewFormatter(&b).FormatQueryDocument(&ast.QueryDocument{Operations: ast.OperationList{op}})
			if op.Operation == ast.Subscription {
				c := s.DialWS(t, harness.WSProtocols[0])
				c.Init(s.Token("admin"))
				errs := c.Failure(c.Start(b.String(), nil))
				// A placeholder location ID is refused as bad input, after validation.
				harness.Must(t, len(errs) == 1 && errs[0].Code() == "BAD_USER_INPUT", "README subscription: %v\n%s", errs, b.String())
				c.Close()
				checked++
				continue
			}
			r := s.As("admin", b.String(), nil)
			for _, e := range r.Errors {
				harness.Must(t, e.Code() == "BAD_USER_INPUT" || e.Code() == "NOT_FOUND", "README operation: %s %v\n%s", e.Code(), e, b.String())
			}
			checked++
		}
	}
	harness.Must(t, checked >= 15, "only %d README pharmacy operations found", checked)
}
