package apitest

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestNestedFilterSubqueriesKeepToTheViewersRows: a has… filter searches
// only the rows the viewer may see, also on a list inside another. Such a
// list is loaded for the whole page by the parent's query, whose copy of
// the filter the guard cannot scope, so the guard refuses it for a viewer
// it would have had to scope for: a patient does not learn, through their
// own appointments, that a draft note about them exists. Staff who see
// every such row filter nested lists as before.
func TestNestedFilterSubqueriesKeepToTheViewersRows(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	own := d.patients[0]
	start, end := slot(9, 9)
	s.as("reception", bookMutation, bookingInput(own, d.doctor, start, end)).decode(t, &struct{}{})
	writeNote(t, s, "doctor", own, "Thinking about a referral.")

	const where = `{hasPatientWith: {hasNotesWith: {status: DRAFT}}}`
	var root struct{ Appointments struct{ TotalCount int } }
	s.as("patient", `{ appointments(where: `+where+`) { totalCount } }`, nil).decode(t, &root)
	must(t, root.Appointments.TotalCount == 0, "a draft note shows through a filter at the root: %d", root.Appointments.TotalCount)

	nested := `{ patients(first: 5) { edges { node { appointments(first: 10, where: ` + where + `) { totalCount edges { node { id } } } } } } }`
	r := s.as("patient", nested, nil)
	must(t, r.hasCode("FORBIDDEN") && r.Errors[0].field() == "where" && !strings.Contains(string(r.Data), "apt_"),
		"a nested filter through rows kept from the patient: %s", describe(r))

	var out struct {
		Patients struct {
			Edges []struct {
				Node struct {
					Appointments struct {
						TotalCount int
						Edges      []json.RawMessage
					}
				}
			}
		}
	}
	s.as("doctor", nested, nil).decode(t, &out)
	total := 0
	for _, e := range out.Patients.Edges {
		total += e.Node.Appointments.TotalCount
	}
	must(t, total > 0, "the doctor, who reads drafts, finds no appointment of a patient with a draft note")
}
