package patients

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

const registerFull = `mutation($in: RegisterPatientInput!) {
  registerPatient(input: $in) {
    patient { id mrn givenName preferredLanguage status
              contacts { id name relationship phone nextOfKin emergencyContact }
              identifiers { id system value }
              insurancePolicies { id payer memberNumber validFrom validTo priority status } }
    duplicates { id mrn }
  }
}`

type registered struct {
	RegisterPatient struct {
		Patient *struct {
			ID, Mrn, GivenName, Status string
			PreferredLanguage          *string
			Contacts                   []struct {
				ID, Name, Relationship      string
				Phone                       *string
				NextOfKin, EmergencyContact bool
			}
			Identifiers       []struct{ ID, System, Value string }
			InsurancePolicies []struct {
				ID, Payer, MemberNumber, ValidFrom, Status string
				ValidTo                                    *string
				Priority                                   int
			}
		}
		Duplicates []struct{ ID, Mrn string }
	}
}

func registerAs(t *testing.T, s *harness.Server, user string, in map[string]any) registered {
	t.Helper()
	var out registered
	s.As(user, registerFull, map[string]any{"in": in}).Decode(t, &out)
	return out
}

func person(given string, more map[string]any) map[string]any {
	in := map[string]any{"givenName": given, "familyName": "Wekesa", "birthDate": "1987-09-30", "sex": "MALE"}
	for k, v := range more {
		in[k] = v
	}
	return in
}

func TestRegisterWithDuplicateCheck(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	before := harness.PatientCount(t, s)
	first := registerAs(t, s, "reception", person("Juma", map[string]any{
		"preferredLanguage": "sw-ke",
		"nationalId":        "29876543",
		"contacts": []any{
			map[string]any{"name": "Halima Wekesa", "relationship": "mother", "phone": "+254 722 000 111", "nextOfKin": true},
			map[string]any{"name": "Otieno", "relationship": "friend", "email": "otieno@example.org", "emergencyContact": true},
		},
		"identifiers":       []any{map[string]any{"system": "passport", "value": "ak 445566"}},
		"insurancePolicies": []any{map[string]any{"payer": "NHIF", "memberNumber": "NH-1", "validFrom": "2025-01-01", "validTo": "2027-12-31"}},
	})).RegisterPatient
	p := first.Patient
	harness.Must(t, p != nil && len(first.Duplicates) == 0, "registered: %+v", first)
	harness.Must(t, *p.PreferredLanguage == "sw-KE" && p.Status == "ACTIVE" && len(p.Contacts) == 2 && len(p.Identifiers) == 1 &&
		p.Identifiers[0].System == "PASSPORT" && p.Identifiers[0].Value == "AK445566", "stored: %+v", p)
	pol := p.InsurancePolicies
	harness.Must(t, len(pol) == 1 && pol[0].ValidFrom == "2025-01-01" && *pol[0].ValidTo == "2027-12-31" && pol[0].Priority == 1 && pol[0].Status == "ACTIVE",
		"policy: %+v", pol)

	// The same person again, by each of the criteria: nothing is created
	// and the existing record is offered.
	for name, again := range map[string]map[string]any{
		"names and birth date": person(" JUMA ", nil),
		"national ID":          {"givenName": "J.", "familyName": "Wekesa-Oduya", "birthDate": "1987-09-03", "sex": "MALE", "nationalId": "29876543"},
		"identifier":           {"givenName": "J.", "familyName": "W.", "birthDate": "1980-01-01", "sex": "MALE", "identifiers": []any{map[string]any{"system": "PASSPORT", "value": "AK445566"}}},
	} {
		out := registerAs(t, s, "reception", again).RegisterPatient
		harness.Must(t, out.Patient == nil && len(out.Duplicates) == 1 && out.Duplicates[0].ID == p.ID, "%s: %+v", name, out)
	}
	harness.Must(t, harness.PatientCount(t, s) == before+1, "a stopped registration created a patient")

	var found struct{ FindDuplicatePatients []struct{ ID string } }
	s.As("reception", `query($in: FindDuplicatePatientsInput!) { findDuplicatePatients(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"identifiers": []any{map[string]any{"system": "Passport", "value": "AK 445 566"}}}}).Decode(t, &found)
	harness.Must(t, len(found.FindDuplicatePatients) == 1 && found.FindDuplicatePatients[0].ID == p.ID, "search: %+v", found)
	r := s.As("reception", `{ findDuplicatePatients(input: {givenName: "Juma"}) { id } }`, nil)
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.familyName", "half the criteria: %s", harness.Describe(r))

	// Confirmed: a namesake born the same day is registered.
	namesake := registerAs(t, s, "admin", person("Juma", map[string]any{"confirmNotDuplicate": true})).RegisterPatient
	harness.Must(t, namesake.Patient != nil && namesake.Patient.ID != p.ID && len(namesake.Duplicates) == 0, "confirmed: %+v", namesake)
	// An identifier stays one person's, confirmation or not.
	r = s.As("reception", registerFull, map[string]any{"in": person("Other", map[string]any{"confirmNotDuplicate": true,
		"identifiers": []any{map[string]any{"system": "PASSPORT", "value": "AK445566"}}})})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.identifiers[0].value", "shared identifier: %s", harness.Describe(r))
	harness.Must(t, harness.PatientCount(t, s) == before+2, "patients: %d", harness.PatientCount(t, s))

	for _, role := range []string{"doctor", "nurse", "billing", "patient"} {
		r := s.As(role, registerFull, map[string]any{"in": person("Nobody", nil)})
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s registers: %s", role, harness.Describe(r))
		r = s.As(role, `{ findDuplicatePatients(input: {nationalId: "29876543"}) { id } }`, nil)
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s searches for duplicates: %s", role, harness.Describe(r))
	}
}

// TestConcurrentRegistrationOfOnePerson: two desks registering the same
// walk-in at once must not create two records.
func TestConcurrentRegistrationOfOnePerson(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	before := harness.PatientCount(t, s)
	tokens := []string{s.Token("reception"), s.Token("admin")}
	const attempts = 10
	results := make([]harness.Response, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.Do(tokens[i%2], registerFull, map[string]any{"in": person("Kiprono", map[string]any{"nationalId": "31313131"})})
		}(i)
	}
	wg.Wait()
	var created string
	offered := 0
	for _, r := range results {
		var out registered
		r.Decode(t, &out)
		switch reg := out.RegisterPatient; {
		case reg.Patient != nil:
			harness.Must(t, created == "", "two records created")
			created = reg.Patient.ID
		case len(reg.Duplicates) == 1:
			offered++
		default:
			t.Errorf("neither created nor offered: %+v", reg)
		}
	}
	harness.Must(t, created != "" && offered == attempts-1, "created %q, offered %d", created, offered)
	harness.Must(t, harness.PatientCount(t, s) == before+1, "patients: %d", harness.PatientCount(t, s))
}

func TestRegistrationDataUpkeep(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	own, other := d.Patients[0], d.Patients[1]

	// Contacts.
	add := `mutation($p: ID!, $in: PatientContactInput!) { addPatientContact(patientId: $p, input: $in) { id name phone email nextOfKin patientID } }`
	var added struct {
		AddPatientContact struct {
			ID, Name, PatientID string
			Phone, Email        *string
			NextOfKin           bool
		}
	}
	s.As("reception", add, map[string]any{"p": own, "in": map[string]any{"name": "Baraka", "relationship": "brother", "phone": "+254 700 000 001", "nextOfKin": true}}).Decode(t, &added)
	contact := added.AddPatientContact
	harness.Must(t, contact.PatientID == own && contact.NextOfKin && *contact.Phone == "+254 700 000 001", "added: %+v", contact)
	r := s.As("reception", add, map[string]any{"p": own, "in": map[string]any{"name": "Baraka", "relationship": "brother", "phone": "call me"}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.phone", "bad phone: %s", harness.Describe(r))
	r = s.As("reception", add, map[string]any{"p": "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", "in": map[string]any{"name": "B", "relationship": "x", "phone": "+254700000001"}})
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown patient: %s", harness.Describe(r))

	update := `mutation($id: ID!, $in: UpdatePatientContactInput!) { updatePatientContact(id: $id, input: $in) { name phone email } }`
	var updated struct {
		UpdatePatientContact struct {
			Name         string
			Phone, Email *string
		}
	}
	s.As("admin", update, map[string]any{"id": contact.ID, "in": map[string]any{"email": "baraka@example.org", "phone": nil}}).Decode(t, &updated)
	harness.Must(t, updated.UpdatePatientContact.Name == "Baraka" && updated.UpdatePatientContact.Phone == nil && *updated.UpdatePatientContact.Email == "baraka@example.org",
		"omitted kept, null cleared, value set: %+v", updated)
	r = s.As("reception", update, map[string]any{"id": contact.ID, "in": map[string]any{"email": nil}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.phone", "unreachable contact: %s", harness.Describe(r))

	// The patient sees their own contacts, changes none, and another
	// patient's do not exist for them.
	var chart struct {
		Patient struct {
			Contacts []struct{ ID string }
		}
	}
	s.As("patient", `query($id: ID!) { patient(id: $id) { contacts { id } } }`, map[string]any{"id": own}).Decode(t, &chart)
	seen := false
	for _, c := range chart.Patient.Contacts {
		seen = seen || c.ID == contact.ID
	}
	harness.Must(t, seen, "own contacts: %+v", chart)
	r = s.As("patient", update, map[string]any{"id": contact.ID, "in": map[string]any{"name": "X"}})
	harness.Must(t, r.HasCode("FORBIDDEN"), "patient edits a contact: %s", harness.Describe(r))
	var theirs struct{ AddPatientContact struct{ ID string } }
	s.As("reception", add, map[string]any{"p": other, "in": map[string]any{"name": "Z", "relationship": "aunt", "phone": "+254700000002"}}).Decode(t, &theirs)
	r = s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": theirs.AddPatientContact.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's contact: %s", harness.Describe(r))
	for _, role := range []string{"doctor", "nurse", "billing", "labtech"} {
		r = s.As(role, add, map[string]any{"p": own, "in": map[string]any{"name": "B", "relationship": "x", "phone": "+254700000001"}})
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s adds a contact: %s", role, harness.Describe(r))
	}

	var removed struct{ RemovePatientContact string }
	s.As("reception", `mutation($id: ID!) { removePatientContact(id: $id) }`, map[string]any{"id": contact.ID}).Decode(t, &removed)
	harness.Must(t, removed.RemovePatientContact == contact.ID, "removed: %+v", removed)
	r = s.As("reception", `mutation($id: ID!) { removePatientContact(id: $id) }`, map[string]any{"id": contact.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "removed twice: %s", harness.Describe(r))

	// Identifiers.
	addID := `mutation($p: ID!, $in: PatientIdentifierInput!) { addPatientIdentifier(patientId: $p, input: $in) { id system value } }`
	var ident struct {
		AddPatientIdentifier struct{ ID, System, Value string }
	}
	s.As("reception", addID, map[string]any{"p": own, "in": map[string]any{"system": "nhif", "value": "77 88 99"}}).Decode(t, &ident)
	harness.Must(t, ident.AddPatientIdentifier.System == "NHIF" && ident.AddPatientIdentifier.Value == "778899", "identifier: %+v", ident)
	r = s.As("reception", addID, map[string]any{"p": own, "in": map[string]any{"system": "NHIF", "value": "778899"}})
	harness.Must(t, r.HasCode("CONFLICT"), "twice on one patient: %s", harness.Describe(r))
	r = s.As("reception", addID, map[string]any{"p": other, "in": map[string]any{"system": "NHIF", "value": "778899"}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.value", "another patient's: %s", harness.Describe(r))
	var dropped struct{ RemovePatientIdentifier string }
	s.As("reception", `mutation($id: ID!) { removePatientIdentifier(id: $id) }`, map[string]any{"id": ident.AddPatientIdentifier.ID}).Decode(t, &dropped)
	harness.Must(t, dropped.RemovePatientIdentifier == ident.AddPatientIdentifier.ID, "dropped: %+v", dropped)

	// Insurance: add, change validity, deactivate; clashes are CONFLICT.
	addIns := `mutation($p: ID!, $in: InsurancePolicyInput!) { addInsurancePolicy(patientId: $p, input: $in) { id priority status validTo } }`
	var ins struct {
		AddInsurancePolicy struct {
			ID, Status string
			Priority   int
			ValidTo    *string
		}
	}
	s.As("reception", addIns, map[string]any{"p": own, "in": map[string]any{"payer": "NHIF", "memberNumber": "N1", "validFrom": "2025-01-01"}}).Decode(t, &ins)
	primary := ins.AddInsurancePolicy
	harness.Must(t, primary.Priority == 1 && primary.Status == "ACTIVE" && primary.ValidTo == nil, "policy: %+v", primary)
	r = s.As("reception", addIns, map[string]any{"p": own, "in": map[string]any{"payer": "AAR", "memberNumber": "A1", "validFrom": "2026-01-01"}})
	harness.Must(t, r.HasCode("CONFLICT"), "second primary: %s", harness.Describe(r))
	r = s.As("reception", addIns, map[string]any{"p": own, "in": map[string]any{"payer": "AAR", "memberNumber": "A1", "validFrom": "2026-01-01", "validTo": "2025-01-01", "priority": 2}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.validTo", "ends before it starts: %s", harness.Describe(r))

	validity := `mutation($id: ID!, $in: InsurancePolicyValidityInput!) { updateInsurancePolicyValidity(id: $id, input: $in) { validFrom validTo } }`
	var v struct {
		UpdateInsurancePolicyValidity struct{ ValidFrom, ValidTo string }
	}
	s.As("reception", validity, map[string]any{"id": primary.ID, "in": map[string]any{"validFrom": "2025-01-01", "validTo": "2025-12-31"}}).Decode(t, &v)
	harness.Must(t, v.UpdateInsurancePolicyValidity.ValidTo == "2025-12-31", "validity: %+v", v)
	// Now a new primary from 2026 fits.
	s.As("reception", addIns, map[string]any{"p": own, "in": map[string]any{"payer": "AAR", "memberNumber": "A1", "validFrom": "2026-01-01"}}).Decode(t, &ins)

	deactivate := `mutation($id: ID!) { deactivateInsurancePolicy(id: $id) { status } }`
	var off struct{ DeactivateInsurancePolicy struct{ Status string } }
	s.As("reception", deactivate, map[string]any{"id": primary.ID}).Decode(t, &off)
	harness.Must(t, off.DeactivateInsurancePolicy.Status == "INACTIVE", "deactivated: %+v", off)
	r = s.As("reception", deactivate, map[string]any{"id": primary.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "deactivated twice: %s", harness.Describe(r))
	r = s.As("reception", validity, map[string]any{"id": primary.ID, "in": map[string]any{"validFrom": "2025-01-01"}})
	harness.Must(t, r.HasCode("CONFLICT"), "an inactive policy's validity: %s", harness.Describe(r))

	var mine struct {
		Patient struct {
			InsurancePolicies []struct{ Payer, Status string }
		}
	}
	s.As("patient", `query($id: ID!) { patient(id: $id) { insurancePolicies { payer status } } }`, map[string]any{"id": own}).Decode(t, &mine)
	cover := map[string]string{}
	for _, p := range mine.Patient.InsurancePolicies {
		cover[p.Payer] = p.Status
	}
	harness.Must(t, cover["NHIF"] == "INACTIVE" && cover["AAR"] == "ACTIVE", "the patient sees their own cover: %+v", mine)
}

const mergeMutation = `mutation($in: MergePatientsInput!) {
  mergePatients(input: $in) { survivor { id status mergedInto { id } } duplicate { id status mergedAt mergedInto { id } } }
}`

func mergeInput(survivor, duplicate string) map[string]any {
	return map[string]any{"in": map[string]any{"survivorId": survivor, "duplicateId": duplicate, "reason": "registered twice at the front desk"}}
}

func TestMergePatients(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	survivor := registerAs(t, s, "reception", person("Wafula", map[string]any{
		"identifiers": []any{map[string]any{"system": "PASSPORT", "value": "BX900"}},
		"contacts":    []any{map[string]any{"name": "Mama Wafula", "relationship": "mother", "phone": "+254700000010"}},
	})).RegisterPatient.Patient
	duplicate := registerAs(t, s, "reception", person("Wafula", map[string]any{
		"birthDate": "1987-09-03", "phone": "+254700000011",
		"identifiers": []any{map[string]any{"system": "NHIF", "value": "5050"}},
		"contacts":    []any{map[string]any{"name": "Baba Wafula", "relationship": "father", "phone": "+254700000012", "emergencyContact": true}},
	})).RegisterPatient.Patient
	harness.Must(t, survivor != nil && duplicate != nil, "both registered")
	// The same passport on the duplicate, as an import from the old system
	// wrote it: the database holds both forms, the merge keeps one.
	sys := auth.SystemContext(context.Background())
	s.App.Store.Client.PatientIdentifier.Create().SetPatientID(duplicate.ID).SetSystem("passport").SetValue("bx 900").ExecX(sys)
	for i, hour := range []int{9, 11} {
		start, end := harness.Slot(3+i, hour)
		s.As("reception", harness.BookMutation, harness.BookingInput(duplicate.ID, d.Doctor, start, end)).Decode(t, &struct{}{})
	}

	r := s.As("reception", mergeMutation, mergeInput(survivor.ID, duplicate.ID))
	harness.Must(t, r.HasCode("FORBIDDEN"), "reception merges: %s", harness.Describe(r))

	var merged struct {
		MergePatients struct {
			Survivor struct {
				ID, Status string
				MergedInto *struct{ ID string }
			}
			Duplicate struct {
				ID, Status string
				MergedAt   *string
				MergedInto *struct{ ID string }
			}
		}
	}
	s.As("admin", mergeMutation, mergeInput(survivor.ID, duplicate.ID)).Decode(t, &merged)
	m := merged.MergePatients
	harness.Must(t, m.Survivor.Status == "ACTIVE" && m.Survivor.MergedInto == nil, "survivor: %+v", m.Survivor)
	harness.Must(t, m.Duplicate.Status == "MERGED" && m.Duplicate.MergedAt != nil && m.Duplicate.MergedInto.ID == survivor.ID, "duplicate: %+v", m.Duplicate)

	// The survivor's chart shows what the duplicate had.
	var chart struct {
		Patient struct {
			Phone        *string
			Appointments struct{ TotalCount int }
			Contacts     []struct{ Name string }
			Identifiers  []struct{ System, Value string }
		}
	}
	s.As("doctor", `query($id: ID!) { patient(id: $id) { phone appointments { totalCount } contacts { name } identifiers { system value } } }`,
		map[string]any{"id": survivor.ID}).Decode(t, &chart)
	c := chart.Patient
	harness.Must(t, c.Appointments.TotalCount == 2 && len(c.Contacts) == 2 && *c.Phone == "+254700000011", "survivor's chart: %+v", c)
	systems := map[string]string{}
	for _, id := range c.Identifiers {
		systems[id.System] += id.Value
	}
	harness.Must(t, len(c.Identifiers) == 2 && systems["PASSPORT"] == "BX900" && systems["NHIF"] == "5050", "identifiers: %+v", c.Identifiers)

	// The merged record still resolves and leads on to the survivor.
	var node struct {
		Node struct {
			Status       string
			MergedInto   struct{ ID string }
			Appointments struct{ TotalCount int }
		}
	}
	s.As("reception", `query($id: ID!) { node(id: $id) { ... on Patient { status mergedInto { id } appointments { totalCount } } } }`,
		map[string]any{"id": duplicate.ID}).Decode(t, &node)
	harness.Must(t, node.Node.Status == "MERGED" && node.Node.MergedInto.ID == survivor.ID && node.Node.Appointments.TotalCount == 0, "merged node: %+v", node)

	// Neither record is offered twice: the merged one is no candidate.
	var found struct{ FindDuplicatePatients []struct{ ID string } }
	s.As("reception", `{ findDuplicatePatients(input: {identifiers: [{system: "NHIF", value: "5050"}]}) { id } }`, nil).Decode(t, &found)
	harness.Must(t, len(found.FindDuplicatePatients) == 1 && found.FindDuplicatePatients[0].ID == survivor.ID, "candidates: %+v", found)

	// The audit row names both patients.
	rows := harness.AuditRows(t, s, map[string]any{"operation": "mergePatients", "outcome": "ALLOWED"})
	harness.Must(t, len(rows) == 1 && strings.Contains(rows[0].PatientIds, survivor.ID) && strings.Contains(rows[0].PatientIds, duplicate.ID),
		"audit: %+v", rows)

	// Refusals.
	r = s.As("admin", mergeMutation, mergeInput(survivor.ID, duplicate.ID))
	harness.Must(t, r.HasCode("CONFLICT"), "merged twice: %s", harness.Describe(r))
	r = s.As("admin", mergeMutation, mergeInput(duplicate.ID, d.Patients[2]))
	harness.Must(t, r.HasCode("CONFLICT"), "into a merged record: %s", harness.Describe(r))
	r = s.As("admin", mergeMutation, mergeInput(survivor.ID, survivor.ID))
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.duplicateId", "into itself: %s", harness.Describe(r))
	r = s.As("admin", mergeMutation, map[string]any{"in": map[string]any{"survivorId": survivor.ID, "duplicateId": d.Patients[2], "reason": " "}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.reason", "no reason: %s", harness.Describe(r))
	r = s.As("reception", `mutation($p: ID!) { addPatientContact(patientId: $p, input: {name: "X", relationship: "y", phone: "+254700000001"}) { id } }`,
		map[string]any{"p": duplicate.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "changing a merged record: %s", harness.Describe(r))

	// Nothing new lands on the merged record: each domain names the survivor.
	start, end := harness.Slot(6, 9)
	r = s.As("reception", harness.BookMutation, harness.BookingInput(duplicate.ID, d.Doctor, start, end))
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.patientId" && strings.Contains(r.Errors[0].Message, survivor.ID),
		"booking for a merged record: %s", harness.Describe(r))
	r = s.As("nurse", harness.AdmitMutation, harness.AdmitInput(duplicate.ID, s.Layout().Beds["MED-A-03"], d.Doctor))
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.patientId", "admitting a merged record: %s", harness.Describe(r))

	// The survivor lists what it absorbed, and the reason is kept.
	var absorbed struct {
		Patient struct {
			MergedRecords []struct{ ID, MergeReason string }
		}
	}
	s.As("reception", `query($id: ID!) { patient(id: $id) { mergedRecords { id mergeReason } } }`,
		map[string]any{"id": survivor.ID}).Decode(t, &absorbed)
	mr := absorbed.Patient.MergedRecords
	harness.Must(t, len(mr) == 1 && mr[0].ID == duplicate.ID && mr[0].MergeReason != "", "merged records: %+v", mr)
}

func TestMergeRefusesWhatItCannotSettle(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	inpatient := d.Patients[3] // the demo's current admission

	// Both in a bed.
	var beds struct {
		Beds struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("admin", `{ beds(first: 1, where: {status: FREE}) { edges { node { id } } } }`, nil).Decode(t, &beds)
	harness.Must(t, len(beds.Beds.Edges) == 1, "a free bed: %+v", beds)
	s.As("admin", `mutation($in: AdmitPatientInput!) { admitPatient(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"patientId": d.Patients[2], "bedId": beds.Beds.Edges[0].Node.ID, "attendingId": d.Doctor, "reason": "chest pain", "admissionType": "EMERGENCY",
	}}).Decode(t, &struct{}{})
	r := s.As("admin", mergeMutation, mergeInput(inpatient, d.Patients[2]))
	harness.Must(t, r.HasCode("CONFLICT"), "both admitted: %s", harness.Describe(r))

	// Both with a patient-app login: the demo patient has one, give
	// another patient one too.
	sys := auth.SystemContext(context.Background())
	s.App.Store.Client.User.Create().SetUsername("second-patient").SetPasswordHash("x").SetRoles([]string{"patient"}).
		SetPatientID(d.Patients[1]).ExecX(sys)
	r = s.As("admin", mergeMutation, mergeInput(d.Patients[0], d.Patients[1]))
	harness.Must(t, r.HasCode("CONFLICT"), "both with a login: %s", harness.Describe(r))

	var status struct {
		Nodes []struct{ Status string }
	}
	s.As("admin", `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Patient { status } } }`,
		map[string]any{"ids": []string{d.Patients[0], d.Patients[1], d.Patients[2], inpatient}}).Decode(t, &status)
	for _, n := range status.Nodes {
		harness.Must(t, n.Status == "ACTIVE", "a refused merge changed a record: %+v", status)
	}
}

// TestMergeMovesThePatientLogin: the demo patient's record is merged into a
// new one; after signing in again the app shows the survivor, with the
// demo patient's appointments.
func TestMergeMovesThePatientLogin(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	survivor := registerAs(t, s, "reception", person("Wanjiru", map[string]any{"confirmNotDuplicate": true})).RegisterPatient.Patient
	s.As("admin", mergeMutation, mergeInput(survivor.ID, d.Patients[0])).Decode(t, &struct{}{})

	fresh := s.Login("patient", harness.DemoPassword)
	var mine struct {
		Patients struct {
			Edges []struct {
				Node struct {
					ID           string
					Appointments struct{ TotalCount int }
				}
			}
		}
	}
	r := s.Do(fresh.AccessToken, `{ patients { edges { node { id appointments { totalCount } } } } }`, nil)
	r.Decode(t, &mine)
	harness.Must(t, len(mine.Patients.Edges) == 1 && mine.Patients.Edges[0].Node.ID == survivor.ID && mine.Patients.Edges[0].Node.Appointments.TotalCount == 2,
		"the app after the merge: %+v", mine)
}

// TestConcurrentMerges: the same pair merged both ways at once; exactly one
// merge happens.
func TestConcurrentMerges(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	a := registerAs(t, s, "reception", person("Chebet", nil)).RegisterPatient.Patient
	b := registerAs(t, s, "reception", person("Chebet", map[string]any{"confirmNotDuplicate": true})).RegisterPatient.Patient
	token := s.Token("admin")
	const attempts = 10
	results := make([]harness.Response, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			in := mergeInput(a.ID, b.ID)
			if i%2 == 1 {
				in = mergeInput(b.ID, a.ID)
			}
			results[i] = s.Do(token, mergeMutation, in)
		}(i)
	}
	wg.Wait()
	wins, conflicts := 0, 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case r.HasCode("CONFLICT"):
			conflicts++
		default:
			t.Errorf("unexpected outcome: %s", harness.Describe(r))
		}
	}
	harness.Must(t, wins == 1 && conflicts == attempts-1, "wins %d, conflicts %d", wins, conflicts)
	var status struct {
		Nodes []struct{ Status string }
	}
	s.As("admin", `query($ids: [ID!]!) { nodes(ids: $ids) { ... on Patient { status } } }`, map[string]any{"ids": []string{a.ID, b.ID}}).Decode(t, &status)
	harness.Must(t, status.Nodes[0].Status != status.Nodes[1].Status, "one active, one merged: %+v", status)
}
