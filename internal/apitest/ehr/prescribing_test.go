package ehr

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

const prescribeMutation = `mutation($in: PrescribeMedicationInput!) {
  prescribeMedication(input: $in) { id status drug doseAmount prescriber { id } patient { id } }
}`

const reviseMutation = `mutation($id: ID!, $in: ReviseMedicationOrderInput!) {
  reviseMedicationOrder(id: $id, input: $in) { id status doseAmount replaces { id status endedAt } }
}`

const stopOrderMutation = `mutation($id: ID!, $r: String!) { stopMedicationOrder(id: $id, reason: $r) { id status stopReason endedAt } }`

const completeOrderMutation = `mutation($id: ID!) { completeMedicationOrder(id: $id) { id status endedAt } }`

// prescription is a valid order for patientID; extra fields are merged in.
func prescription(patientID, drug string, extra map[string]any) map[string]any {
	in := map[string]any{"patientId": patientID, "drug": drug, "doseAmount": 500, "doseUnit": "mg",
		"route": "ORAL", "frequency": "TID", "durationDays": 7, "quantity": 21}
	for k, v := range extra {
		in[k] = v
	}
	return map[string]any{"in": in}
}

func orderRevision(drug string, dose float64) map[string]any {
	return map[string]any{"drug": drug, "doseAmount": dose, "doseUnit": "mg", "route": "ORAL", "frequency": "BID", "quantity": 14}
}

type orderOut struct {
	ID, Status, Drug string
	DoseAmount       float64
	Prescriber       struct{ ID string }
	Patient          struct{ ID string }
}

func prescribe(t *testing.T, s *harness.Server, vars map[string]any) orderOut {
	t.Helper()
	var out struct{ PrescribeMedication orderOut }
	s.As("doctor", prescribeMutation, vars).Decode(t, &out)
	return out.PrescribeMedication
}

// addAllergy records an active allergy straight through ent: recording
// allergies is another part of the API, and this test is about prescribing.
func addAllergy(t *testing.T, s *harness.Server, patientID, substance string, severity allergy.Severity) string {
	t.Helper()
	a := s.App.Store.Client.Allergy.Create().SetPatientID(patientID).SetSubstance(substance).
		SetCategory(allergy.CategoryDRUG).SetSeverity(severity).SaveX(auth.SystemContext(context.Background()))
	return a.ID
}

func orderCountOf(t *testing.T, s *harness.Server, patientID string) int {
	t.Helper()
	var out struct{ MedicationOrders struct{ TotalCount int } }
	s.As("admin", `query($p: ID!) { medicationOrders(where: {patientID: $p}) { totalCount } }`, map[string]any{"p": patientID}).Decode(t, &out)
	return out.MedicationOrders.TotalCount
}

func TestAllergyWarningBlocksPrescriptionUnlessOverridden(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	pat := d.Patients[1]
	allergyID := addAllergy(t, s, pat, "Penicillin", allergy.SeverityLIFE_THREATENING)
	addAllergy(t, s, pat, "Latex", allergy.SeverityMILD)
	before := orderCountOf(t, s, pat)

	r := s.As("doctor", prescribeMutation, prescription(pat, "Penicillin V potassium", nil))
	harness.Must(t, r.HasCode("CONFLICT") && len(r.Errors) == 1, "allergic drug: %s", harness.Describe(r))
	allergies, _ := r.Errors[0].Extensions["allergies"].([]any)
	harness.Must(t, len(allergies) == 1, "extensions.allergies: %+v", r.Errors[0].Extensions)
	match, _ := allergies[0].(map[string]any)
	harness.Must(t, match["id"] == allergyID && match["substance"] == "Penicillin" && match["severity"] == "LIFE_THREATENING",
		"the matching allergy: %+v", match)
	harness.Must(t, !strings.Contains(r.Errors[0].Message, "Penicillin"), "the message names no patient data: %q", r.Errors[0].Message)
	harness.Must(t, orderCountOf(t, s, pat) == before, "a refused order was written")

	r = s.As("doctor", prescribeMutation, prescription(pat, "Penicillin V potassium", map[string]any{"allergyOverrideReason": ""}))
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.allergyOverrideReason",
		"blank override: %s", harness.Describe(r))

	// The override request does not select the reason: the audit row must
	// mention it anyway.
	var overridden struct {
		PrescribeMedication struct{ ID, Status string }
	}
	s.As("doctor", `mutation($in: PrescribeMedicationInput!) { prescribeMedication(input: $in) { id status } }`,
		prescription(pat, "Penicillin V potassium", map[string]any{"allergyOverrideReason": "Desensitised under allergist supervision"})).
		Decode(t, &overridden)
	harness.Must(t, overridden.PrescribeMedication.Status == "ACTIVE", "overridden: %+v", overridden)
	var stored struct {
		Node struct{ AllergyOverrideReason *string }
	}
	s.As("pharmacist", `query($id: ID!) { node(id: $id) { ... on MedicationOrder { allergyOverrideReason } } }`,
		map[string]any{"id": overridden.PrescribeMedication.ID}).Decode(t, &stored)
	harness.Must(t, stored.Node.AllergyOverrideReason != nil && *stored.Node.AllergyOverrideReason == "Desensitised under allergist supervision",
		"the pharmacist sees the override: %+v", stored)

	rows := harness.AuditRows(t, s, map[string]any{"operation": "prescribeMedication", "patientId": pat})
	var refused, allowed []harness.AuditRow
	for _, row := range rows {
		switch {
		case row.Outcome == "FAILED" && row.ErrorCode != nil && *row.ErrorCode == "CONFLICT":
			refused = append(refused, row)
		case row.Outcome == "ALLOWED":
			allowed = append(allowed, row)
		}
	}
	harness.Must(t, len(refused) == 1 && *refused[0].ActorName == "doctor", "the refused prescription is on the trail: %+v", rows)
	harness.Must(t, len(allowed) == 1 && slices.Contains(allowed[0].Fields, "MedicationOrder.allergyOverrideReason") &&
		slices.Contains(allowed[0].ObjectIds, overridden.PrescribeMedication.ID),
		"the override is on the trail: %+v", allowed)

	// A drug no allergy matches needs no override.
	o := prescribe(t, s, prescription(pat, "Paracetamol", nil))
	harness.Must(t, o.Status == "ACTIVE" && o.Prescriber.ID == d.Doctor && o.Patient.ID == pat, "paracetamol: %+v", o)
}

func TestMedicationOrderRevisionsAndEnds(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	pat := d.Patients[2]
	addAllergy(t, s, pat, "Ibuprofen", allergy.SeverityMODERATE)
	first := prescribe(t, s, prescription(pat, "Amoxicillin", nil))

	var revised struct {
		ReviseMedicationOrder struct {
			ID, Status string
			DoseAmount float64
			Replaces   struct{ ID, Status, EndedAt string }
		}
	}
	s.As("doctor", reviseMutation, map[string]any{"id": first.ID, "in": orderRevision("Amoxicillin", 250)}).Decode(t, &revised)
	second := revised.ReviseMedicationOrder
	harness.Must(t, second.Status == "ACTIVE" && second.DoseAmount == 250 && second.Replaces.ID == first.ID &&
		second.Replaces.Status == "SUPERSEDED" && second.Replaces.EndedAt != "", "revision: %+v", second)

	r := s.As("doctor", reviseMutation, map[string]any{"id": first.ID, "in": orderRevision("Amoxicillin", 125)})
	harness.Must(t, r.HasCode("CONFLICT"), "revising a superseded order: %s", harness.Describe(r))
	r = s.As("doctor", reviseMutation, map[string]any{"id": second.ID, "in": orderRevision("Ibuprofen", 400)})
	harness.Must(t, r.HasCode("CONFLICT") && r.Errors[0].Extensions["allergies"] != nil, "revising to an allergen: %s", harness.Describe(r))
	bad := orderRevision("Amoxicillin", 0)
	r = s.As("doctor", reviseMutation, map[string]any{"id": second.ID, "in": bad})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.doseAmount", "zero dose: %s", harness.Describe(r))

	// The history, oldest first, from the patient's record.
	var history struct {
		MedicationOrders struct {
			Edges []struct {
				Node struct {
					ID, Status string
					Replaces   *struct{ ID string }
					ReplacedBy *struct{ ID string }
				}
			}
		}
	}
	s.As("nurse", `query($p: ID!) { medicationOrders(where: {patientID: $p, drug: "Amoxicillin"}, orderBy: {field: CREATED_AT, direction: ASC}) {
	  edges { node { id status replaces { id } replacedBy { id } } } } }`, map[string]any{"p": pat}).Decode(t, &history)
	edges := history.MedicationOrders.Edges
	harness.Must(t, len(edges) == 2 && edges[0].Node.Status == "SUPERSEDED" && edges[0].Node.ReplacedBy.ID == second.ID &&
		edges[1].Node.Status == "ACTIVE" && edges[1].Node.Replaces.ID == first.ID, "history: %+v", edges)

	// Who may end an order, and how often.
	r = s.As("nurse", stopOrderMutation, map[string]any{"id": second.ID, "r": "rash"})
	harness.Must(t, r.HasCode("FORBIDDEN"), "nurse stopping: %s", harness.Describe(r))
	r = s.As("pharmacist", completeOrderMutation, map[string]any{"id": second.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "pharmacist completing: %s", harness.Describe(r))
	r = s.As("doctor", stopOrderMutation, map[string]any{"id": second.ID, "r": ""})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "reason", "stop without reason: %s", harness.Describe(r))
	var stopped struct {
		StopMedicationOrder struct{ Status, StopReason, EndedAt string }
	}
	s.As("doctor", stopOrderMutation, map[string]any{"id": second.ID, "r": "Rash on day 3"}).Decode(t, &stopped)
	harness.Must(t, stopped.StopMedicationOrder.Status == "STOPPED" && stopped.StopMedicationOrder.StopReason == "Rash on day 3" &&
		stopped.StopMedicationOrder.EndedAt != "", "stopped: %+v", stopped)
	r = s.As("nurse", completeOrderMutation, map[string]any{"id": second.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "completing a stopped order: %s", harness.Describe(r))
	r = s.As("doctor", stopOrderMutation, map[string]any{"id": second.ID, "r": "again"})
	harness.Must(t, r.HasCode("CONFLICT"), "stopping twice: %s", harness.Describe(r))

	third := prescribe(t, s, prescription(pat, "Omeprazole", map[string]any{"doseAmount": 20}))
	var completed struct {
		CompleteMedicationOrder struct{ Status, EndedAt string }
	}
	s.As("nurse", completeOrderMutation, map[string]any{"id": third.ID}).Decode(t, &completed)
	harness.Must(t, completed.CompleteMedicationOrder.Status == "COMPLETED" && completed.CompleteMedicationOrder.EndedAt != "", "completed: %+v", completed)
	r = s.As("doctor", reviseMutation, map[string]any{"id": third.ID, "in": orderRevision("Omeprazole", 40)})
	harness.Must(t, r.HasCode("CONFLICT"), "revising a completed order: %s", harness.Describe(r))
}

func TestPrescribingRefusalsChangeNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	pat := d.Patients[1]
	before := orderCountOf(t, s, pat)

	var other struct {
		Encounters struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("admin", `query($p: ID!) { encounters(where: {patientIDNEQ: $p}, first: 1) { edges { node { id } } } }`,
		map[string]any{"p": pat}).Decode(t, &other)
	harness.Must(t, len(other.Encounters.Edges) == 1, "the demo has another patient's encounter")

	for field, extra := range map[string]map[string]any{
		"input.drug":         {"drug": " "},
		"input.doseAmount":   {"doseAmount": -5},
		"input.doseUnit":     {"doseUnit": ""},
		"input.frequency":    {"frequency": ""},
		"input.durationDays": {"durationDays": 0},
		"input.quantity":     {"quantity": 0},
		"input.encounterId":  {"encounterId": other.Encounters.Edges[0].Node.ID},
		"input.patientId":    {"patientId": d.Doctor},
	} {
		r := s.As("doctor", prescribeMutation, prescription(pat, "Paracetamol", extra))
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == field, "%s: %s", field, harness.Describe(r))
	}
	r := s.As("doctor", prescribeMutation, prescription(pat, "Paracetamol", map[string]any{"route": "NASAL"}))
	harness.Must(t, r.HasCode("BAD_USER_INPUT"), "unknown route: %s", harness.Describe(r))

	// The policy lets an administrator through; the service still wants a
	// doctor to answer for the prescription.
	r = s.As("admin", prescribeMutation, prescription(pat, "Paracetamol", nil))
	harness.Must(t, r.HasCode("FORBIDDEN"), "administrator prescribing: %s", harness.Describe(r))
	for _, who := range []string{"nurse", "pharmacist", "patient", "reception"} {
		r = s.As(who, prescribeMutation, prescription(pat, "Paracetamol", nil))
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s prescribing: %s", who, harness.Describe(r))
	}
	harness.Must(t, orderCountOf(t, s, pat) == before, "refused prescriptions were written")
}

func TestConcurrentRevisionsOfOneOrder(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	o := prescribe(t, s, prescription(d.Patients[3], "Paracetamol", nil))
	s.Token("doctor")

	const n = 8
	results := make([]harness.Response, n)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.As("doctor", reviseMutation, map[string]any{"id": o.ID, "in": orderRevision("Paracetamol", float64(100+i))})
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			won++
		case !r.HasCode("CONFLICT"):
			t.Errorf("a losing revision: %s", harness.Describe(r))
		}
	}
	var replacements struct{ MedicationOrders struct{ TotalCount int } }
	s.As("doctor", `query($id: ID!) { medicationOrders(where: {replacesID: $id}) { totalCount } }`, map[string]any{"id": o.ID}).Decode(t, &replacements)
	harness.Must(t, won == 1 && replacements.MedicationOrders.TotalCount == 1, "%d revisions won, %d replacements", won, replacements.MedicationOrders.TotalCount)
}

func TestPatientSeesOwnMedicationOrdersOnly(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	own, other := d.Patients[0], d.Patients[1]
	mine := prescribe(t, s, prescription(own, "Metformin", nil))
	theirs := prescribe(t, s, prescription(other, "Metformin", nil))

	var list struct {
		MedicationOrders struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ID      string
					Patient struct{ ID string }
				}
			}
		}
	}
	s.As("patient", `{ medicationOrders(first: 100) { totalCount edges { node { id patient { id } } } } }`, nil).Decode(t, &list)
	found := false
	for _, e := range list.MedicationOrders.Edges {
		harness.Must(t, e.Node.Patient.ID == own, "another patient's order in the list: %+v", e)
		found = found || e.Node.ID == mine.ID
	}
	harness.Must(t, found, "the patient's own new order is listed: %+v", list)

	r := s.As("patient", `query($id: ID!) { node(id: $id) { ... on MedicationOrder { drug } } }`, map[string]any{"id": theirs.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's order by node: %s", harness.Describe(r))
	r = s.As("patient", `query($id: ID!) { node(id: $id) { ... on MedicationOrder { drug status } } }`, map[string]any{"id": mine.ID})
	harness.Must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), "Metformin"), "own order by node: %s", harness.Describe(r))
	r = s.As("patient", completeOrderMutation, map[string]any{"id": mine.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient completing their order: %s", harness.Describe(r))
}
