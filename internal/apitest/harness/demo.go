package harness

import (
	"testing"
	"time"
)

// The demo hospital every test server is seeded with, and the small
// fixtures several domains' tests build on it.

// DemoIDs are the IDs the demo seeded, by kind, through the admin's eyes.
type DemoIDs struct {
	Patients   []string // in MRN order; Patients[0] is the patient user's own record, Patients[3] the demo inpatient
	Doctor     string   // the doctor user's staff ID
	Nurse      string
	Cardiology string // department
	General    string
	Labtech    string
}

// Demo reads the demo's IDs, failing the test if the seed is incomplete.
func (s *Server) Demo() DemoIDs {
	s.T.Helper()
	var out struct {
		Patients struct {
			Edges []struct{ Node struct{ ID string } }
		}
		Staffs struct {
			Edges []struct {
				Node struct {
					ID   string
					Kind string
					User *struct{ Username string }
				}
			}
		}
		Departments struct {
			Edges []struct{ Node struct{ ID, Code string } }
		}
	}
	s.As("admin", `{
	  patients(first: 100, orderBy: {field: MRN}) { edges { node { id } } }
	  staffs(first: 100) { edges { node { id kind user { username } } } }
	  departments(first: 100) { edges { node { id code } } }
	}`, nil).Decode(s.T, &out)
	var d DemoIDs
	for _, e := range out.Patients.Edges {
		d.Patients = append(d.Patients, e.Node.ID)
	}
	for _, e := range out.Staffs.Edges {
		if e.Node.User == nil {
			continue
		}
		switch e.Node.User.Username {
		case "doctor":
			d.Doctor = e.Node.ID
		case "nurse":
			d.Nurse = e.Node.ID
		case "labtech":
			d.Labtech = e.Node.ID
		}
	}
	for _, e := range out.Departments.Edges {
		switch e.Node.Code {
		case "CAR":
			d.Cardiology = e.Node.ID
		case "GEN":
			d.General = e.Node.ID
		}
	}
	if len(d.Patients) != 5 || d.Doctor == "" || d.Nurse == "" || d.Cardiology == "" {
		s.T.Fatalf("demo data incomplete: %+v", d)
	}
	return d
}

// PatientFacts are what a patient's reference ranges depend on.
type PatientFacts struct {
	Sex   string
	Birth time.Time
}

// Facts reads a patient's sex and birth date.
func Facts(t testing.TB, s *Server, patientID string) PatientFacts {
	t.Helper()
	var out struct {
		Node struct{ Sex, BirthDate string }
	}
	s.As("admin", `query($id: ID!) { node(id: $id) { ... on Patient { sex birthDate } } }`, map[string]any{"id": patientID}).Decode(t, &out)
	birth, err := time.Parse("2006-01-02", out.Node.BirthDate)
	Must(t, err == nil, "birth date %q: %v", out.Node.BirthDate, err)
	return PatientFacts{Sex: out.Node.Sex, Birth: birth}
}

// PatientCount is how many patients the admin sees, to prove that a
// refused registration created none.
func PatientCount(t testing.TB, s *Server) int {
	t.Helper()
	var out struct{ Patients struct{ TotalCount int } }
	s.As("admin", `{ patients { totalCount } }`, nil).Decode(t, &out)
	return out.Patients.TotalCount
}

// CreateAPIKeyMutation creates an API key from variable in.
const CreateAPIKeyMutation = `mutation($in: CreateAPIKeyInput!) { createApiKey(input: $in) { secret apiKey { id name role revokedAt } } }`

// Credentials signs in as each role: demo users, an API key for
// integrator and external_clinic, nothing for anonymous.
func Credentials(t testing.TB, s *Server, roles []string) map[string]string {
	t.Helper()
	creds := map[string]string{}
	for _, role := range roles {
		switch role {
		case "anonymous":
			creds[role] = ""
		case "integrator", "external_clinic", "lab_instrument":
			// Services, not people: they hold API keys, never a login.
			var out struct {
				CreateAPIKey struct{ Secret string } `json:"createApiKey"`
			}
			in := map[string]any{"name": "matrix " + role, "role": role}
			if role == "external_clinic" {
				// Acting for the demo doctor, whose patients it then reads:
				// a clinic's key acting for no one reads no patient.
				in["staffId"] = s.Demo().Doctor
			}
			s.As("admin", CreateAPIKeyMutation, map[string]any{"in": in}).Decode(t, &out)
			creds[role] = out.CreateAPIKey.Secret
		default:
			creds[role] = s.Token(role)
		}
	}
	return creds
}

// AuditRow is one audit event as the auditor reads it.
type AuditRow struct {
	Seq        *int // null until the sealer has chained the row
	Operation  string
	Kind       string
	Outcome    string
	ErrorCode  *string
	ActorID    *string
	ActorName  *string
	Roles      []string
	ObjectIds  []string
	PatientIds string
	Fields     []string
	ClientAddr *string
	RequestID  *string
}

// AuditRows reads up to a page of audit events matching filter.
func AuditRows(t testing.TB, s *Server, filter map[string]any) []AuditRow {
	t.Helper()
	var out struct {
		AuditEvents struct{ Edges []struct{ Node AuditRow } }
	}
	s.As("auditor", `query($f: AuditEventFilter) { auditEvents(first: 100, filter: $f) { edges { node {
	  seq operation kind outcome errorCode actorID actorName roles objectIds patientIds fields clientAddr requestID } } } }`,
		map[string]any{"f": filter}).Decode(t, &out)
	rows := make([]AuditRow, len(out.AuditEvents.Edges))
	for i, e := range out.AuditEvents.Edges {
		rows[i] = e.Node
	}
	return rows
}
