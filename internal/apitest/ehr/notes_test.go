package ehr

import (
	"strings"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const writeNoteMutation = `mutation($in: WriteNoteInput!) {
  writeNote(input: $in) { id status type text signedAt author { id } patient { id } }
}`

const updateDraftMutation = `mutation($id: ID!, $text: String!) { updateDraftNote(id: $id, text: $text) { id status text } }`

const signNoteMutation = `mutation($id: ID!) { signNote(id: $id) { id status signedAt author { id } } }`

const discardDraftMutation = `mutation($id: ID!) { discardDraftNote(id: $id) }`

const amendNoteMutation = `mutation($id: ID!, $in: AmendNoteInput!) {
  amendNote(id: $id, input: $in) { id status text signedAt amendReason author { id } replaces { id status text } }
}`

type noteOut struct {
	ID, Status, Type, Text string
	SignedAt               *string
	AmendReason            *string
	Author                 struct{ ID string }
	Patient                struct{ ID string }
	Replaces               *struct{ ID, Status, Text string }
}

func noteInput(patientID, text string) map[string]any {
	return map[string]any{"in": map[string]any{"patientId": patientID, "type": "PROGRESS", "text": text}}
}

func writeNote(t *testing.T, s *harness.Server, who, patientID, text string) noteOut {
	t.Helper()
	var out struct{ WriteNote noteOut }
	s.As(who, writeNoteMutation, noteInput(patientID, text)).Decode(t, &out)
	return out.WriteNote
}

func signNote(t *testing.T, s *harness.Server, who, id string) noteOut {
	t.Helper()
	var out struct{ SignNote noteOut }
	s.As(who, signNoteMutation, map[string]any{"id": id}).Decode(t, &out)
	return out.SignNote
}

func amendNote(t *testing.T, s *harness.Server, who, id, text, reason string) noteOut {
	t.Helper()
	var out struct{ AmendNote noteOut }
	s.As(who, amendNoteMutation, map[string]any{"id": id, "in": map[string]any{"text": text, "reason": reason}}).Decode(t, &out)
	return out.AmendNote
}

func noteCountOf(t *testing.T, s *harness.Server, patientID string) int {
	t.Helper()
	var out struct{ ClinicalNotes struct{ TotalCount int } }
	s.As("admin", `query($p: ID!) { clinicalNotes(where: {patientID: $p}) { totalCount } }`, map[string]any{"p": patientID}).Decode(t, &out)
	return out.ClinicalNotes.TotalCount
}

func TestNoteDraftSignAmend(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	pat := d.Patients[2]

	draft := writeNote(t, s, "doctor", pat, "Wound clean, no discharge.")
	harness.Must(t, draft.Status == "DRAFT" && draft.Type == "PROGRESS" && draft.SignedAt == nil && draft.Author.ID == d.Doctor &&
		draft.Patient.ID == pat, "draft: %+v", draft)

	// Other clinicians see that the draft exists, but only its author works on it.
	var drafts struct {
		ClinicalNotes struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("nurse", `query($p: ID!) { clinicalNotes(where: {patientID: $p, status: DRAFT}) { edges { node { id } } } }`,
		map[string]any{"p": pat}).Decode(t, &drafts)
	harness.Must(t, len(drafts.ClinicalNotes.Edges) == 1 && drafts.ClinicalNotes.Edges[0].Node.ID == draft.ID, "drafts a nurse sees: %+v", drafts)
	for name, doc := range map[string]string{"edit": updateDraftMutation, "sign": signNoteMutation, "discard": discardDraftMutation} {
		r := s.As("nurse", doc, map[string]any{"id": draft.ID, "text": "taken over"})
		harness.Must(t, r.HasCode("FORBIDDEN"), "nurse, %s the doctor's draft: %s", name, harness.Describe(r))
	}
	r := s.As("admin", signNoteMutation, map[string]any{"id": draft.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "admin signing a doctor's draft: %s", harness.Describe(r))

	r = s.As("doctor", updateDraftMutation, map[string]any{"id": draft.ID, "text": "  "})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "text", "blank edit: %s", harness.Describe(r))
	var edited struct{ UpdateDraftNote noteOut }
	s.As("doctor", updateDraftMutation, map[string]any{"id": draft.ID, "text": "Wound clean, no discharge. Sutures out day 10."}).Decode(t, &edited)
	harness.Must(t, edited.UpdateDraftNote.Text == "Wound clean, no discharge. Sutures out day 10." && edited.UpdateDraftNote.Status == "DRAFT",
		"edited: %+v", edited)

	r = s.As("doctor", amendNoteMutation, map[string]any{"id": draft.ID, "in": map[string]any{"text": "x", "reason": "y"}})
	harness.Must(t, r.HasCode("CONFLICT"), "amending a draft: %s", harness.Describe(r))

	signed := signNote(t, s, "doctor", draft.ID)
	harness.Must(t, signed.Status == "SIGNED" && signed.SignedAt != nil, "signed: %+v", signed)
	for name, doc := range map[string]string{"edit": updateDraftMutation, "sign": signNoteMutation, "discard": discardDraftMutation} {
		r := s.As("doctor", doc, map[string]any{"id": draft.ID, "text": "second thoughts"})
		harness.Must(t, r.HasCode("CONFLICT"), "%s a signed note: %s", name, harness.Describe(r))
	}

	r = s.As("nurse", amendNoteMutation, map[string]any{"id": draft.ID, "in": map[string]any{"text": "x", "reason": ""}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.reason", "amend without reason: %s", harness.Describe(r))
	amended := amendNote(t, s, "nurse", draft.ID, "Wound clean, no discharge. Sutures out day 12.", "Surgeon asked for day 12")
	harness.Must(t, amended.Status == "SIGNED" && amended.SignedAt != nil && amended.Author.ID == d.Nurse &&
		*amended.AmendReason == "Surgeon asked for day 12" && amended.Replaces != nil && amended.Replaces.ID == draft.ID &&
		amended.Replaces.Status == "AMENDED" && amended.Replaces.Text == "Wound clean, no discharge. Sutures out day 10.",
		"amendment: %+v", amended)
	r = s.As("doctor", amendNoteMutation, map[string]any{"id": draft.ID, "in": map[string]any{"text": "x", "reason": "y"}})
	harness.Must(t, r.HasCode("CONFLICT"), "amending an amended note: %s", harness.Describe(r))

	// The amended note stays readable, pointing at what replaced it.
	var old struct {
		Node struct {
			Status     string
			Text       string
			ReplacedBy struct{ ID string }
		}
	}
	s.As("doctor", `query($id: ID!) { node(id: $id) { ... on ClinicalNote { status text replacedBy { id } } } }`,
		map[string]any{"id": draft.ID}).Decode(t, &old)
	harness.Must(t, old.Node.Status == "AMENDED" && old.Node.ReplacedBy.ID == amended.ID, "the amended note: %+v", old)

	// A discarded draft is gone.
	scrap := writeNote(t, s, "nurse", pat, "Scratch.")
	var discarded struct{ DiscardDraftNote string }
	s.As("nurse", discardDraftMutation, map[string]any{"id": scrap.ID}).Decode(t, &discarded)
	harness.Must(t, discarded.DiscardDraftNote == scrap.ID, "discard: %+v", discarded)
	r = s.As("nurse", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": scrap.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "a discarded draft by node: %s", harness.Describe(r))
	r = s.As("nurse", discardDraftMutation, map[string]any{"id": scrap.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "discard twice: %s", harness.Describe(r))
}

func TestNoteRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	pat := d.Patients[1]
	before := noteCountOf(t, s, pat)

	var other struct {
		Encounters struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("admin", `query($p: ID!) { encounters(where: {patientIDNEQ: $p}, first: 1) { edges { node { id } } } }`,
		map[string]any{"p": pat}).Decode(t, &other)
	harness.Must(t, len(other.Encounters.Edges) == 1, "the demo has another patient's encounter")

	for field, in := range map[string]map[string]any{
		"input.text":        {"patientId": pat, "type": "PROGRESS", "text": ""},
		"input.patientId":   {"patientId": "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", "type": "PROGRESS", "text": "x"},
		"input.encounterId": {"patientId": pat, "type": "PROGRESS", "text": "x", "encounterId": other.Encounters.Edges[0].Node.ID},
	} {
		r := s.As("doctor", writeNoteMutation, map[string]any{"in": in})
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == field, "%s: %s", field, harness.Describe(r))
	}
	r := s.As("doctor", writeNoteMutation, map[string]any{"in": map[string]any{"patientId": pat, "type": "LETTER", "text": "x"}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT"), "unknown type: %s", harness.Describe(r))
	r = s.As("admin", writeNoteMutation, noteInput(pat, "Administrators do not write notes."))
	harness.Must(t, r.HasCode("FORBIDDEN"), "administrator writing: %s", harness.Describe(r))
	for _, who := range []string{"pharmacist", "patient", "reception", "labtech"} {
		r = s.As(who, writeNoteMutation, noteInput(pat, "x"))
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s writing: %s", who, harness.Describe(r))
	}
	harness.Must(t, noteCountOf(t, s, pat) == before, "refused notes were written")
}

func TestConcurrentAmendmentsOfOneNote(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	n := writeNote(t, s, "doctor", d.Patients[3], "Chest pain settled.")
	signNote(t, s, "doctor", n.ID)
	s.Token("nurse")

	const amenders = 8
	results := make([]harness.Response, amenders)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := []string{"doctor", "nurse"}[i%2]
			results[i] = s.As(who, amendNoteMutation, map[string]any{"id": n.ID, "in": map[string]any{"text": "Chest pain settled at 03:00.", "reason": "time"}})
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			won++
		case !r.HasCode("CONFLICT"):
			t.Errorf("a losing amendment: %s", harness.Describe(r))
		}
	}
	var replacements struct{ ClinicalNotes struct{ TotalCount int } }
	s.As("doctor", `query($id: ID!) { clinicalNotes(where: {replacesID: $id}) { totalCount } }`, map[string]any{"id": n.ID}).Decode(t, &replacements)
	harness.Must(t, won == 1 && replacements.ClinicalNotes.TotalCount == 1, "%d amendments won, %d replacements", won, replacements.ClinicalNotes.TotalCount)
}

// TestPatientReadsOwnSignedNotesNeverDrafts: by list, node and the notes
// edge of their record, a patient sees their own signed and amended notes,
// never a draft and never another patient's note.
func TestPatientReadsOwnSignedNotesNeverDrafts(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	own, other := d.Patients[0], d.Patients[1]

	draft := writeNote(t, s, "doctor", own, "Thinking about a referral.")
	original := writeNote(t, s, "doctor", own, "Seen in clinic; well.")
	signNote(t, s, "doctor", original.ID)
	amendment := amendNote(t, s, "doctor", original.ID, "Seen in clinic; well. BP 128/82.", "Added BP")
	theirs := writeNote(t, s, "doctor", other, "Another patient's note.")
	signNote(t, s, "doctor", theirs.ID)

	type noteNode struct {
		ID, Status string
		Patient    struct{ ID string }
	}
	check := func(how string, nodes []noteNode) {
		t.Helper()
		seen := map[string]string{}
		for _, n := range nodes {
			harness.Must(t, n.Patient.ID == own, "%s: another patient's note %+v", how, n)
			harness.Must(t, n.Status != "DRAFT", "%s: a draft %+v", how, n)
			seen[n.ID] = n.Status
		}
		harness.Must(t, seen[original.ID] == "AMENDED" && seen[amendment.ID] == "SIGNED", "%s: own signed and amended notes: %+v", how, seen)
		_, sawDraft := seen[draft.ID]
		harness.Must(t, !sawDraft, "%s: the draft", how)
	}

	var list struct {
		ClinicalNotes struct {
			TotalCount int
			Edges      []struct{ Node noteNode }
		}
	}
	s.As("patient", `{ clinicalNotes(first: 100) { totalCount edges { node { id status patient { id } } } } }`, nil).Decode(t, &list)
	var nodes []noteNode
	for _, e := range list.ClinicalNotes.Edges {
		nodes = append(nodes, e.Node)
	}
	check("clinicalNotes", nodes)
	harness.Must(t, nodes[0].ID == amendment.ID, "newest first by default: %+v", nodes)
	harness.Must(t, list.ClinicalNotes.TotalCount == len(nodes), "totalCount counts what the patient sees: %+v", list)

	// Filtering for drafts finds none.
	var drafts struct{ ClinicalNotes struct{ TotalCount int } }
	s.As("patient", `{ clinicalNotes(where: {status: DRAFT}) { totalCount } }`, nil).Decode(t, &drafts)
	harness.Must(t, drafts.ClinicalNotes.TotalCount == 0, "drafts by filter: %+v", drafts)

	var chart struct {
		Patient struct {
			Notes struct {
				TotalCount int
				Edges      []struct{ Node noteNode }
			}
		}
	}
	s.As("patient", `query($id: ID!) { patient(id: $id) { notes(first: 100) { totalCount edges { node { id status patient { id } } } } } }`,
		map[string]any{"id": own}).Decode(t, &chart)
	nodes = nil
	for _, e := range chart.Patient.Notes.Edges {
		nodes = append(nodes, e.Node)
	}
	check("patient.notes", nodes)

	r := s.As("patient", `query($id: ID!) { node(id: $id) { ... on ClinicalNote { text } } }`, map[string]any{"id": draft.ID})
	harness.Must(t, r.HasCode("NOT_FOUND") && !strings.Contains(string(r.Data), "referral"), "own draft by node: %s", harness.Describe(r))
	r = s.As("patient", `query($id: ID!) { node(id: $id) { ... on ClinicalNote { text } } }`, map[string]any{"id": theirs.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's note by node: %s", harness.Describe(r))
	var amended struct {
		Node struct {
			Status     string
			ReplacedBy struct{ ID string }
		}
	}
	s.As("patient", `query($id: ID!) { node(id: $id) { ... on ClinicalNote { status replacedBy { id } } } }`,
		map[string]any{"id": original.ID}).Decode(t, &amended)
	harness.Must(t, amended.Node.Status == "AMENDED" && amended.Node.ReplacedBy.ID == amendment.ID, "own amended note by node: %+v", amended)

	r = s.As("patient", signNoteMutation, map[string]any{"id": draft.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient signing: %s", harness.Describe(r))

	// Only clinicians see drafts: an integrator's key reads the patient's
	// signed notes but not the draft, the nurse reads both.
	key := harness.Credentials(t, s, []string{"integrator"})["integrator"]
	draftQuery := `query($p: ID!) { clinicalNotes(where: {patientID: $p, status: DRAFT}) { totalCount } }`
	var seen struct{ ClinicalNotes struct{ TotalCount int } }
	s.Do(key, draftQuery, map[string]any{"p": own}).Decode(t, &seen)
	harness.Must(t, seen.ClinicalNotes.TotalCount == 0, "integrator sees drafts: %+v", seen)
	r = s.Do(key, `query($id: ID!) { node(id: $id) { ... on ClinicalNote { text } } }`, map[string]any{"id": draft.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "integrator reads a draft by node: %s", harness.Describe(r))
	signedQuery := `query($p: ID!) { clinicalNotes(where: {patientID: $p, status: SIGNED}) { totalCount } }`
	var signedByNurse struct{ ClinicalNotes struct{ TotalCount int } }
	s.As("nurse", signedQuery, map[string]any{"p": own}).Decode(t, &signedByNurse)
	s.Do(key, signedQuery, map[string]any{"p": own}).Decode(t, &seen)
	harness.Must(t, seen.ClinicalNotes.TotalCount > 0 && seen == signedByNurse, "integrator reads signed notes: %+v, nurse %+v", seen, signedByNurse)
	s.As("nurse", draftQuery, map[string]any{"p": own}).Decode(t, &seen)
	harness.Must(t, seen.ClinicalNotes.TotalCount == 1, "nurse reads the draft: %+v", seen)
}
