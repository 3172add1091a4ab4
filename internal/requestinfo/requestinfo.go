// Package requestinfo carries the facts about an HTTP request that logs and
// the audit trail need: its ID and the client's address.
package requestinfo

import "context"

// Info describes the request a context belongs to.
type Info struct {
	RequestID  string
	ClientAddr string
}

type key struct{}

// With returns ctx carrying info.
func With(ctx context.Context, info Info) context.Context {
	return context.WithValue(ctx, key{}, info)
}

// From returns the request info in ctx, zero if there is none.
func From(ctx context.Context) Info {
	info, _ := ctx.Value(key{}).(Info)
	return info
}
