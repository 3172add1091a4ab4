package main

// ent first (it also writes schema/ent.graphql), then gqlgen over all of schema/.
//go:generate go run ./ent/entc.go
//go:generate go run ./graph/gqlgen.go
