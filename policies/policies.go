// Package policies embeds the access policy, so that the binary carries the
// policy it was built and tested with. The files stay plain data to read:
// roles.csv defines the roles, and each domain keeps its rules in a file of
// its own (a new domain adds one). Together they are one Casbin policy.
package policies

import (
	"embed"
	"fmt"
	"io/fs"
	"os"
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
	text, err := readDir(files)
	if err != nil {
		panic(err) // embedded at build time
	}
	return text
}

// readDir joins a directory's CSV files as the built-in policy is joined.
func readDir(dir fs.FS) (string, error) {
	names, err := fs.Glob(dir, "*.csv")
	if err != nil {
		return "", err
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no *.csv files")
	}
	sort.Strings(names)
	sort.SliceStable(names, func(i, j int) bool { return names[i] == "roles.csv" && names[j] != "roles.csv" })
	var b strings.Builder
	for _, name := range names {
		body, err := fs.ReadFile(dir, name)
		if err != nil {
			return "", err
		}
		b.Write(body)
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// FromPath reads a deployment's own policy (HMIS_POLICY_FILE): a directory
// laid out as this one (its *.csv files, roles.csv first) or one CSV file
// holding every line. Empty path: the built-in policy. The model stays the
// built-in one: the code asks its questions in its shape.
func FromPath(path string) (string, error) {
	if path == "" {
		return Policy, nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if info.IsDir() {
		text, err := readDir(os.DirFS(path))
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return text, nil
	}
	body, err := os.ReadFile(path)
	return string(body), err
}
