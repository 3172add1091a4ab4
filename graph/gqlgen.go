//go:build ignore

// Generates graph/generated.go, the models and the resolver stubs from
// schema/. Run through `go generate ./...` from the repository root.
//
// It is gqlgen's own generator with one plugin, sequentialFields. gqlgen
// resolves every field that has a resolver or a method taking a context
// on a goroutine of its own, for every object of every list: a page of 20
// patients with their appointments, providers and allergies starts
// hundreds of goroutines. HMIS gains nothing from that: ent loads a
// query's edges together before any field is resolved (entgql's field
// collection), so these fields compute rather than wait, and each
// goroutine costs a context, a path and a stack to grow. Root fields keep
// gqlgen's concurrency (a client asking two lists waits on two queries).
package main

import (
	"log"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
)

type sequentialFields struct{}

func (sequentialFields) Name() string { return "sequentialfields" }

// GenerateCode runs before gqlgen writes the executor, on the same data.
func (sequentialFields) GenerateCode(data *codegen.Data) error {
	for _, o := range data.Objects {
		if o.Definition == data.Schema.Query || o.Definition == data.Schema.Subscription {
			continue
		}
		o.DisableConcurrency = true
	}
	return nil
}

func main() {
	cfg, err := config.LoadConfig("gqlgen.yml")
	if err != nil {
		log.Fatalf("loading gqlgen.yml: %v", err)
	}
	if err := api.Generate(cfg, api.AddPlugin(sequentialFields{})); err != nil {
		log.Fatalf("gqlgen: %v", err)
	}
}
