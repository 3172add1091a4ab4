package graph

import (
	"context"
	"fmt"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// node resolves a global ID. The prefix names the table, so there is no
// lookup across tables; row scope applies as to any query, so a record the
// viewer may not see is not found, exactly like one that does not exist.
func (r *queryResolver) node(ctx context.Context, field, id string) (ent.Noder, error) {
	if globalid.Prefix(id) == "" {
		return nil, apperr.BadInput(field, "is not an ID")
	}
	n, err := r.Client.Noder(ctx, id, ent.WithNodeType(ent.IDToType))
	if err != nil {
		if ent.IsNotFound(err) || ent.IsNotSingular(err) {
			return nil, apperr.NotFoundf("no object with this ID")
		}
		return nil, err
	}
	return n, nil
}

func (r *queryResolver) nodes(ctx context.Context, ids []string) ([]ent.Noder, error) {
	if len(ids) > maxNodes {
		return nil, apperr.BadInput("ids", "at most %d IDs at once", maxNodes)
	}
	for i, id := range ids {
		if globalid.Prefix(id) == "" {
			return nil, apperr.BadInput(fmt.Sprintf("ids[%d]", i), "is not an ID")
		}
	}
	// Missing or hidden objects come back as null entries with an error at
	// their index, as Relay expects. ent's Noders does that for two or more
	// IDs and fails the whole field for one; make one behave like many.
	if len(ids) == 1 {
		n, err := r.node(ctx, "ids[0]", ids[0])
		if apperr.CodeOf(err) == apperr.NotFound {
			graphql.AddError(graphql.WithPathContext(ctx, graphql.NewPathWithIndex(0)), err)
			return []ent.Noder{nil}, nil
		}
		return []ent.Noder{n}, err
	}
	return r.Client.Noders(ctx, ids, ent.WithNodeType(ent.IDToType))
}

// maxNodes bounds nodes(ids:) like a page of a connection.
const maxNodes = 100
