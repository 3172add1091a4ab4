package harness

// RegisterPatient registers a patient through reception and returns their
// ID. Doctors and nurses see them only once they have a care relationship
// (CareFor, a booking, breakGlass).
func (s *Server) RegisterPatient(given, family string) string {
	s.T.Helper()
	var out struct {
		RegisterPatient struct{ Patient struct{ ID string } }
	}
	s.As("reception", `mutation($in: RegisterPatientInput!) { registerPatient(input: $in) { patient { id } } }`,
		map[string]any{"in": map[string]any{"givenName": given, "familyName": family, "birthDate": "1980-04-02",
			"sex": "FEMALE", "confirmNotDuplicate": true}}).
		Decode(s.T, &out)
	return out.RegisterPatient.Patient.ID
}

// CareFor gives the staff members a care relationship with the patient:
// reception books each of them an appointment with the patient, days ahead,
// so that the bookings clash with nothing a test books itself.
func (s *Server) CareFor(patientID string, staffIDs ...string) {
	s.T.Helper()
	b := &Booker{T: s.T, S: s, User: "reception", n: 200}
	for _, id := range staffIDs {
		b.Book(patientID, id)
	}
}

// CareAccessProbes: break-the-glass, the patient header and the access log.
var CareAccessProbes = map[string]string{
	"Query.patientHeader":             `{ patientHeader(mrn: "matrix-no-such-mrn") { __typename } }`,
	"Query.breakGlassAccesses":        `{ breakGlassAccesses(first: 1) { __typename } }`,
	"Query.myAccessLog":               `{ myAccessLog(first: 1) { __typename } }`,
	"Mutation.breakGlass":             `mutation { breakGlass(input: {patientId: "bad", reason: ""}) { __typename } }`,
	"Subscription.breakGlassAccessed": "", // over WebSocket: see TestBreakGlassAccessedAuthorization
}
