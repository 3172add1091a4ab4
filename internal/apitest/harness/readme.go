package harness

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/parser"
)

// READMEOperation is one operation of a README section's GraphQL blocks,
// formatted to be sent on its own.
type READMEOperation struct {
	Kind     ast.Operation
	Document string
}

var graphqlBlock = regexp.MustCompile("(?s)```graphql\n(.*?)```")

// READMEOperations returns every operation in the ```graphql blocks of the
// README section that starts with heading (up to the next "## "), failing t
// if the section is missing or a block does not parse: the copy-paste
// examples are tested against the schema with these.
func READMEOperations(t testing.TB, heading string) []READMEOperation {
	t.Helper()
	readme, err := os.ReadFile(RepoFile(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, heading)
	Must(t, start >= 0, "README has no section %q", heading)
	section := text[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	var out []READMEOperation
	for _, block := range graphqlBlock.FindAllStringSubmatch(section, -1) {
		doc, perr := parser.ParseQuery(&ast.Source{Input: block[1]})
		if perr != nil {
			t.Fatalf("README block does not parse: %v", perr)
		}
		for _, op := range doc.Operations {
			var b strings.Builder
			formatter.NewFormatter(&b).FormatQueryDocument(&ast.QueryDocument{Operations: ast.OperationList{op}})
			out = append(out, READMEOperation{Kind: op.Operation, Document: b.String()})
		}
	}
	return out
}
