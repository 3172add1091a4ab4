package apitest

import (
	"strings"
	"sync"
	"testing"
)

func init() {
	addProbes(map[string]string{
		"Query.clinicalNotes":       `{ clinicalNotes(first: 1) { __typename } }`,
		"Mutation.writeNote":        `mutation { writeNote(input: {patientId: "bad", type: PROGRESS, text: "x"}) { __typename } }`,
		"Mutation.updateDraftNote":  `mutation { updateDraftNote(id: "bad", text: "x") { __typename } }`,
		"Mutation.discardDraftNote": `mutation { discardDraftNote(id: "bad") }`,
		"Mutation.signNote":         `mutation { signNote(id: "bad") { __typename } }`,
		"Mutation.amendNote":        `mutation { amendNote(id: "bad", input: {text: "x", reason: "y"}) { __typename } }`,
	})
}

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

func writeNote(t *testing.T, s *server, who, patientID, text string) noteOut {
	t.Helper()
	var out struct{ WriteNote noteOut }
	s.as(who, writeNoteMutation, noteInput(patientID, text)).decode(t, &out)
	return out.WriteNote
}

func signNote(t *testing.T, s *server, who, id string) noteOut {
	t.Helper()
	var out struct{ SignNote noteOut }
	s.as(who, signNoteMutation, map[string]any{"id": id}).decode(t, &out)
	return out.SignNote
}

func amendNote(t *testing.T, s *server, who, id, text, reason string) noteOut {
	t.Helper()
	var out struct{ AmendNote noteOut }
	s.as(who, amendNoteMutation, map[string]any{"id": id, "in": map[string]any{"text": text, "reason": reason}}).decode(t, &out)
	return out.AmendNote
}

func noteCountOf(t *testing.T, s *server, patientID string) int {
	t.Helper()
	var out struct{ ClinicalNotes struct{ TotalCount int } }
	s.as("admin", `query($p: ID!) { clinicalNotes(where: {patientID: $p}) { totalCount } }`, map[string]any{"p": patientID}).decode(t, &out)
	return out.ClinicalNotes.TotalCount
}

func TestNoteDraftSignAmend(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	pat := d.patients[2]

	draft := writeNote(t, s, "doctor", pat, "Wound clean, no discharge.")
	must(t, draft.Status == "DRAFT" && draft.Type == "PROGRESS" && draft.SignedAt == nil && draft.Author.ID == d.doctor &&
		draft.Patient.ID == pat, "draft: %+v", draft)

	// Other clinicians see that the draft exists, but only its author works on it.
	var drafts struct {
		ClinicalNotes struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.as("nurse", `query($p: ID!) { clinicalNotes(where: {patientID: $p, status: DRAFT}) { edges { node { id } } } }`,
		map[string]any{"p": pat}).decode(t, &drafts)
	must(t, len(drafts.ClinicalNotes.Edges) == 1 && drafts.ClinicalNotes.Edges[0].Node.ID == draft.ID, "drafts a nurse sees: %+v", drafts)
	for name, doc := range map[string]string{"edit": updateDraftMutation, "sign": signNoteMutation, "discard": discardDraftMutation} {
		r := s.as("nurse", doc, map[string]any{"id": draft.ID, "text": "taken over"})
		must(t, r.hasCode("FORBIDDEN"), "nurse, %s the doctor's draft: %s", name, describe(r))
	}
	r := s.as("admin", signNoteMutation, map[string]any{"id": draft.ID})
	must(t, r.hasCode("FORBIDDEN"), "admin signing a doctor's draft: %s", describe(r))

	r = s.as("doctor", updateDraftMutation, map[string]any{"id": draft.ID, "text": "  "})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "text", "blank edit: %s", describe(r))
	var edited struct{ UpdateDraftNote noteOut }
	s.as("doctor", updateDraftMutation, map[string]any{"id": draft.ID, "text": "Wound clean, no discharge. Sutures out day 10."}).decode(t, &edited)
	must(t, edited.UpdateDraftNote.Text == "Wound clean, no discharge. Sutures out day 10." && edited.UpdateDraftNote.Status == "DRAFT",
		"edited: %+v", edited)

	r = s.as("doctor", amendNoteMutation, map[string]any{"id": draft.ID, "in": map[string]any{"text": "x", "reason": "y"}})
	must(t, r.hasCode("CONFLICT"), "amending a draft: %s", describe(r))

	signed := signNote(t, s, "doctor", draft.ID)
	must(t, signed.Status == "SIGNED" && signed.SignedAt != nil, "signed: %+v", signed)
	for name, doc := range map[string]string{"edit": updateDraftMutation, "sign": signNoteMutation, "discard": discardDraftMutation} {
		r := s.as("doctor", doc, map[string]any{"id": draft.ID, "text": "second thoughts"})
		must(t, r.hasCode("CONFLICT"), "%s a signed note: %s", name, describe(r))
	}

	r = s.as("nurse", amendNoteMutation, map[string]any{"id": draft.ID, "in": map[string]any{"text": "x", "reason": ""}})
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.reason", "amend without reason: %s", describe(r))
	amended := amendNote(t, s, "nurse", draft.ID, "Wound clean, no discharge. Sutures out day 12.", "Surgeon asked for day 12")
	must(t, amended.Status == "SIGNED" && amended.SignedAt != nil && amended.Author.ID == d.nurse &&
		*amended.AmendReason == "Surgeon asked for day 12" && amended.Replaces != nil && amended.Replaces.ID == draft.ID &&
		amended.Replaces.Status == "AMENDED" && amended.Replaces.Text == "Wound clean, no discharge. Sutures out day 10.",
		"amendment: %+v", amended)
	r = s.as("doctor", amendNoteMutation, map[string]any{"id": draft.ID, "in": map[string]any{"text": "x", "reason": "y"}})
	must(t, r.hasCode("CONFLICT"), "amending an amended note: %s", describe(r))

	// The amended note stays readable, pointing at what replaced it.
	var old struct {
		Node struct {
			Status     string
			Text       string
			ReplacedBy struct{ ID string }
		}
	}
	s.as("doctor", `query($id: ID!) { node(id: $id) { ... on ClinicalNote { status text replacedBy { id } } } }`,
		map[string]any{"id": draft.ID}).decode(t, &old)
	must(t, old.Node.Status == "AMENDED" && old.Node.ReplacedBy.ID == amended.ID, "the amended note: %+v", old)

	// A discarded draft is gone.
	scrap := writeNote(t, s, "nurse", pat, "Scratch.")
	var discarded struct{ DiscardDraftNote string }
	s.as("nurse", discardDraftMutation, map[string]any{"id": scrap.ID}).decode(t, &discarded)
	must(t, discarded.DiscardDraftNote == scrap.ID, "discard: %+v", discarded)
	r = s.as("nurse", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": scrap.ID})
	must(t, r.hasCode("NOT_FOUND"), "a discarded draft by node: %s", describe(r))
	r = s.as("nurse", discardDraftMutation, map[string]any{"id": scrap.ID})
	must(t, r.hasCode("NOT_FOUND"), "discard twice: %s", describe(r))
}

func TestNoteRefusalsChangeNothing(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	pat := d.patients[1]
	before := noteCountOf(t, s, pat)

	var other struct {
		Encounters struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.as("admin", `query($p: ID!) { encounters(where: {patientIDNEQ: $p}, first: 1) { edges { node { id } } } }`,
		map[string]any{"p": pat}).decode(t, &other)
	must(t, len(other.Encounters.Edges) == 1, "the demo has another patient's encounter")

	for field, in := range map[string]map[string]any{
		"input.text":        {"patientId": pat, "type": "PROGRESS", "text": ""},
		"input.patientId":   {"patientId": "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", "type": "PROGRESS", "text": "x"},
		"input.encounterId": {"patientId": pat, "type": "PROGRESS", "text": "x", "encounterId": other.Encounters.Edges[0].Node.ID},
	} {
		r := s.as("doctor", writeNoteMutation, map[string]any{"in": in})
		must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == field, "%s: %s", field, describe(r))
	}
	r := s.as("doctor", writeNoteMutation, map[string]any{"in": map[string]any{"patientId": pat, "type": "LETTER", "text": "x"}})
	must(t, r.hasCode("BAD_USER_INPUT"), "unknown type: %s", describe(r))
	r = s.as("admin", writeNoteMutation, noteInput(pat, "Administrators do not write notes."))
	must(t, r.hasCode("FORBIDDEN"), "administrator writing: %s", describe(r))
	for _, who := range []string{"pharmacist", "patient", "reception", "labtech"} {
		r = s.as(who, writeNoteMutation, noteInput(pat, "x"))
		must(t, r.hasCode("FORBIDDEN"), "%s writing: %s", who, describe(r))
	}
	must(t, noteCountOf(t, s, pat) == before, "refused notes were written")
}

func TestConcurrentAmendmentsOfOneNote(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	n := writeNote(t, s, "doctor", d.patients[3], "Chest pain settled.")
	signNote(t, s, "doctor", n.ID)
	s.token("nurse")

	const amenders = 8
	results := make([]response, amenders)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			who := []string{"doctor", "nurse"}[i%2]
			results[i] = s.as(who, amendNoteMutation, map[string]any{"id": n.ID, "in": map[string]any{"text": "Chest pain settled at 03:00.", "reason": "time"}})
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			won++
		case !r.hasCode("CONFLICT"):
			t.Errorf("a losing amendment: %s", describe(r))
		}
	}
	var replacements struct{ ClinicalNotes struct{ TotalCount int } }
	s.as("doctor", `query($id: ID!) { clinicalNotes(where: {replacesID: $id}) { totalCount } }`, map[string]any{"id": n.ID}).decode(t, &replacements)
	must(t, won == 1 && replacements.ClinicalNotes.TotalCount == 1, "%d amendments won, %d replacements", won, replacements.ClinicalNotes.TotalCount)
}

// TestPatientReadsOwnSignedNotesNeverDrafts: by list, node and the notes
// edge of their record, a patient sees their own signed and amended notes,
// never a draft and never another patient's note.
func TestPatientReadsOwnSignedNotesNeverDrafts(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	own, other := d.patients[0], d.patients[1]

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
			must(t, n.Patient.ID == own, "%s: another patient's note %+v", how, n)
			must(t, n.Status != "DRAFT", "%s: a draft %+v", how, n)
			seen[n.ID] = n.Status
		}
		must(t, seen[original.ID] == "AMENDED" && seen[amendment.ID] == "SIGNED", "%s: own signed and amended notes: %+v", how, seen)
		_, sawDraft := seen[draft.ID]
		must(t, !sawDraft, "%s: the draft", how)
	}

	var list struct {
		ClinicalNotes struct {
			TotalCount int
			Edges      []struct{ Node noteNode }
		}
	}
	s.as("patient", `{ clinicalNotes(first: 100) { totalCount edges { node { id status patient { id } } } } }`, nil).decode(t, &list)
	var nodes []noteNode
	for _, e := range list.ClinicalNotes.Edges {
		nodes = append(nodes, e.Node)
	}
	check("clinicalNotes", nodes)
	must(t, nodes[0].ID == amendment.ID, "newest first by default: %+v", nodes)
	must(t, list.ClinicalNotes.TotalCount == len(nodes), "totalCount counts what the patient sees: %+v", list)

	// Filtering for drafts finds none.
	var drafts struct{ ClinicalNotes struct{ TotalCount int } }
	s.as("patient", `{ clinicalNotes(where: {status: DRAFT}) { totalCount } }`, nil).decode(t, &drafts)
	must(t, drafts.ClinicalNotes.TotalCount == 0, "drafts by filter: %+v", drafts)

	var chart struct {
		Patient struct {
			Notes struct {
				TotalCount int
				Edges      []struct{ Node noteNode }
			}
		}
	}
	s.as("patient", `query($id: ID!) { patient(id: $id) { notes(first: 100) { totalCount edges { node { id status patient { id } } } } } }`,
		map[string]any{"id": own}).decode(t, &chart)
	nodes = nil
	for _, e := range chart.Patient.Notes.Edges {
		nodes = append(nodes, e.Node)
	}
	check("patient.notes", nodes)

	r := s.as("patient", `query($id: ID!) { node(id: $id) { ... on ClinicalNote { text } } }`, map[string]any{"id": draft.ID})
	must(t, r.hasCode("NOT_FOUND") && !strings.Contains(string(r.Data), "referral"), "own draft by node: %s", describe(r))
	r = s.as("patient", `query($id: ID!) { node(id: $id) { ... on ClinicalNote { text } } }`, map[string]any{"id": theirs.ID})
	must(t, r.hasCode("NOT_FOUND"), "another patient's note by node: %s", describe(r))
	var amended struct {
		Node struct {
			Status     string
			ReplacedBy struct{ ID string }
		}
	}
	s.as("patient", `query($id: ID!) { node(id: $id) { ... on ClinicalNote { status replacedBy { id } } } }`,
		map[string]any{"id": original.ID}).decode(t, &amended)
	must(t, amended.Node.Status == "AMENDED" && amended.Node.ReplacedBy.ID == amendment.ID, "own amended note by node: %+v", amended)

	r = s.as("patient", signNoteMutation, map[string]any{"id": draft.ID})
	must(t, r.hasCode("FORBIDDEN"), "a patient signing: %s", describe(r))

	// Only clinicians see drafts: an integrator's key reads the patient's
	// signed notes but not the draft, the nurse reads both.
	key := credentials(t, s, []string{"integrator"})["integrator"]
	draftQuery := `query($p: ID!) { clinicalNotes(where: {patientID: $p, status: DRAFT}) { totalCount } }`
	var seen struct{ ClinicalNotes struct{ TotalCount int } }
	s.do(key, draftQuery, map[string]any{"p": own}).decode(t, &seen)
	must(t, seen.ClinicalNotes.TotalCount == 0, "integrator sees drafts: %+v", seen)
	r = s.do(key, `query($id: ID!) { node(id: $id) { ... on ClinicalNote { text } } }`, map[string]any{"id": draft.ID})
	must(t, r.hasCode("NOT_FOUND"), "integrator reads a draft by node: %s", describe(r))
	signedQuery := `query($p: ID!) { clinicalNotes(where: {patientID: $p, status: SIGNED}) { totalCount } }`
	var signedByNurse struct{ ClinicalNotes struct{ TotalCount int } }
	s.as("nurse", signedQuery, map[string]any{"p": own}).decode(t, &signedByNurse)
	s.do(key, signedQuery, map[string]any{"p": own}).decode(t, &seen)
	must(t, seen.ClinicalNotes.TotalCount > 0 && seen == signedByNurse, "integrator reads signed notes: %+v, nurse %+v", seen, signedByNurse)
	s.as("nurse", draftQuery, map[string]any{"p": own}).decode(t, &seen)
	must(t, seen.ClinicalNotes.TotalCount == 1, "nurse reads the draft: %+v", seen)
}
