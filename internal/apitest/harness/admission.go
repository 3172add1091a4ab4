package harness

import "testing"

// WardLayout is the demo's wards and beds by code: MED-A-01…06 (MED-A-02
// CLEANING) and CCU-01…04 (CCU-01 occupied by the demo inpatient,
// Patients[3]).
type WardLayout struct {
	Wards map[string]string
	Beds  map[string]string
}

// Layout reads the demo's wards and beds.
func (s *Server) Layout() WardLayout {
	s.T.Helper()
	var out struct {
		BedBoard []struct {
			Ward struct{ ID, Code string }
			Beds []struct{ Bed struct{ ID, Code string } }
		}
	}
	s.As("admin", `{ bedBoard { ward { id code } beds { bed { id code } } } }`, nil).Decode(s.T, &out)
	l := WardLayout{Wards: map[string]string{}, Beds: map[string]string{}}
	for _, w := range out.BedBoard {
		l.Wards[w.Ward.Code] = w.Ward.ID
		for _, b := range w.Beds {
			l.Beds[b.Bed.Code] = b.Bed.ID
		}
	}
	if len(l.Wards) != 2 || len(l.Beds) != 10 {
		s.T.Fatalf("demo wards incomplete: %+v", l)
	}
	return l
}

// AdmitMutation admits from variable in (see AdmitInput).
const AdmitMutation = `mutation($in: AdmitPatientInput!) {
  admitPatient(input: $in) { id status admissionType reason admittedAt patient { id } attending { id } bed { id code status } }
}`

// AdmitInput is AdmitMutation's variables: an emergency admission.
func AdmitInput(patientID, bedID, attendingID string) map[string]any {
	return map[string]any{"in": map[string]any{
		"patientId": patientID, "bedId": bedID, "attendingId": attendingID, "reason": "Community-acquired pneumonia",
		"admissionType": "EMERGENCY",
	}}
}

// Admission is an admission as the admission mutations return it.
type Admission struct {
	ID, Status, AdmissionType, Reason, AdmittedAt string
	DischargedAt                                  *string
	DischargeSummary, Disposition                 *string
	Patient, Attending                            struct{ ID string }
	Bed                                           struct{ ID, Code, Status string }
	BedHistory                                    []struct {
		Bed          struct{ Code string }
		FromAt       string
		ToAt, Reason *string
	}
}

// Admit admits a patient to a bed as user, failing the test if refused.
func Admit(t testing.TB, s *Server, user, patientID, bedID, attendingID string) Admission {
	t.Helper()
	var out struct{ AdmitPatient Admission }
	s.As(user, AdmitMutation, AdmitInput(patientID, bedID, attendingID)).Decode(t, &out)
	return out.AdmitPatient
}
