package graph

import (
	"entgo.io/contrib/entgql"

	"github.com/hmis-dev/hmis/ent"
)

// newestNotesFirst is the order of clinicalNotes when the client names none:
// a chart is read from the latest note back.
var newestNotesFirst = &ent.ClinicalNoteOrder{Direction: entgql.OrderDirectionDesc, Field: ent.ClinicalNoteOrderFieldCreatedAt}
