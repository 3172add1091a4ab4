package graph

import (
	"entgo.io/contrib/entgql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/notes"
	"github.com/hmis-dev/hmis/internal/store"
)

// notes returns the notes service on the resolver's client; like the
// prescribing service it keeps no state and needs no store locks.
func (r *Resolver) notes() *notes.Service {
	return notes.NewService(&store.Store{Client: r.Client})
}

// newestNotesFirst is the order of clinicalNotes when the client names none:
// a chart is read from the latest note back.
var newestNotesFirst = &ent.ClinicalNoteOrder{Direction: entgql.OrderDirectionDesc, Field: ent.ClinicalNoteOrderFieldCreatedAt}
