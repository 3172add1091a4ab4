// Package policies embeds the access policy, so that the binary carries the
// policy it was built and tested with. The files stay plain data to read:
// roles.csv defines the roles, and each domain keeps its rules in a file of
// its own (a new domain adds one). Together they are one Casbin policy.
package policies

import (
	"embed"
	"io/fs"
	"sort"
	"strings"
)

//go:embed model.conf
var Model string

//go:embed *.csv
var files embed.FS

// Policy is every policy file, roles.csv first and then the domains' in
// name order. Casbin's decision does not depend on the order of rules; a
// fixed one keeps the text, and any error's line, reproducible.
var Policy = load()

func load() string {
	names, err := fs.Glob(files, "*.csv")
	if err != nil {
		panic(err) // the pattern is a constant
	}
	sort.SliceStable(names, func(i, j int) bool { return names[i] == "roles.csv" && names[j] != "roles.csv" })
	var b strings.Builder
	for _, name := range names {
		body, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded at build time
		}
		b.Write(body)
		b.WriteByte('\n')
	}
	return b.String()
}
