package ehr

import (
	"encoding/json"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
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
	s := harness.NewServer(t)
	d := s.Demo()
	own := d.Patients[0]
	start, end := harness.Slot(9, 9)
	s.As("reception", harness.BookMutation, harness.BookingInput(own, d.Doctor, start, end)).Decode(t, &struct{}{})
	writeNote(t, s, "doctor", own, "Thinking about a referral.")

	const where = `{hasPatientWith: {hasNotesWith: {status: DRAFT}}}`
	var root struct{ Appointments struct{ TotalCount int } }
	s.As("patient", `{ appointments(where: `+where+`) { totalCount } }`, nil).Decode(t, &root)
	harness.Must(t, root.Appointments.TotalCount == 0, "a draft note shows through a filter at the root: %d", root.Appointments.TotalCount)

	nested := `{ patients(first: 5) { edges { node { appointments(first: 10, where: ` + where + `) { totalCount edges { node { id } } } } } } }`
	r := s.As("patient", nested, nil)
	harness.Must(t, r.HasCode("FORBIDDEN") && r.Errors[0].Field() == "where" && !strings.Contains(string(r.Data), "apt_"),
		"a nested filter through rows kept from the patient: %s", harness.Describe(r))

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
	// A doctor is kept to the patients they care for, so a nested filter
	// would search rows kept from them too.
	r = s.As("doctor", nested, nil)
	harness.Must(t, r.HasCode("FORBIDDEN") && r.Errors[0].Field() == "where",
		"a nested filter through rows kept from a doctor: %s", harness.Describe(r))
	// The administrator sees every row, drafts included: the filter runs.
	s.As("admin", nested, nil).Decode(t, &out)
	total := 0
	for _, e := range out.Patients.Edges {
		total += e.Node.Appointments.TotalCount
	}
	harness.Must(t, total > 0, "the administrator, who reads drafts, finds no appointment of a patient with a draft note")
}
