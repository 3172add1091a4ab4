package care

import (
	"context"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

// cardiology gives the demo's cardiology department two users: "cardio",
// the demo cardiologist, and "cardionurse", a nurse added for the test.
// The demo has no cardiology login, and referrals need a receiving side.
type cardiology struct{ cardiologist, nurse string }

func withCardiologyUsers(t *testing.T, s *harness.Server, d harness.DemoIDs) cardiology {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	c := s.App.Store.Client
	hash, err := auth.HashPassword(harness.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	doctor := c.Staff.Query().Where(staff.DepartmentID(d.Cardiology), staff.KindEQ(staff.KindDOCTOR)).FirstX(ctx)
	nurse := c.Staff.Create().SetGivenName("Esi").SetFamilyName("Boateng").SetKind(staff.KindNURSE).SetDepartmentID(d.Cardiology).SaveX(ctx)
	c.User.Create().SetUsername("cardio").SetPasswordHash(hash).SetRoles([]string{"doctor"}).SetStaffID(doctor.ID).ExecX(ctx)
	c.User.Create().SetUsername("cardionurse").SetPasswordHash(hash).SetRoles([]string{"nurse"}).SetStaffID(nurse.ID).ExecX(ctx)
	return cardiology{cardiologist: doctor.ID, nurse: nurse.ID}
}

const referMutation = `mutation($in: ReferPatientInput!) {
  referPatient(input: $in) { id status priority reason fromStaff { id } fromDepartment { id } toDepartment { id } toStaff { id } }
}`

type referralOut struct {
	ID, Status, Priority, Reason string
	ResponseNote                 *string
	RespondedAt                  *string
	FromStaff, FromDepartment    struct{ ID string }
	ToDepartment                 struct{ ID string }
	ToStaff                      *struct{ ID string }
}

func refer(t *testing.T, s *harness.Server, as string, in map[string]any) referralOut {
	t.Helper()
	var out struct{ ReferPatient referralOut }
	s.As(as, referMutation, map[string]any{"in": in}).Decode(t, &out)
	return out.ReferPatient
}

// answer runs acceptReferral, declineReferral, completeReferral or
// cancelReferral; the reason or note is passed as $text.
func answer(s *harness.Server, as, op, id, text string) harness.Response {
	arg := "note"
	if op == "declineReferral" || op == "cancelReferral" {
		arg = "reason"
	}
	return s.As(as, `mutation($id: ID!, $text: String!) { `+op+`(id: $id, `+arg+`: $text) {
	  id status responseNote respondedAt toStaff { id } } }`, map[string]any{"id": id, "text": text})
}

func answered(t *testing.T, r harness.Response, op string) referralOut {
	t.Helper()
	var out map[string]referralOut
	r.Decode(t, &out)
	return out[op]
}

type careTeamRow struct {
	ID, Role string
	Until    *string
	Staff    struct{ ID string }
}

func careTeamOf(t *testing.T, s *harness.Server, as, patientID string) []careTeamRow {
	t.Helper()
	var out struct {
		Patient struct{ CareTeam []careTeamRow }
	}
	s.As(as, `query($id: ID!) { patient(id: $id) { careTeam { id role until staff { id } } } }`, map[string]any{"id": patientID}).Decode(t, &out)
	return out.Patient.CareTeam
}

func activeMemberships(team []careTeamRow, staffID string) (n int) {
	for _, m := range team {
		if m.Staff.ID == staffID && m.Until == nil {
			n++
		}
	}
	return n
}

func incoming(t *testing.T, s *harness.Server, as, status string) []string {
	t.Helper()
	var out struct {
		IncomingReferrals struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	vars := map[string]any{}
	if status != "" {
		vars["s"] = status
	}
	s.As(as, `query($s: ReferralStatus) { incomingReferrals(status: $s, first: 50) { edges { node { id } } } }`, vars).Decode(t, &out)
	var ids []string
	for _, e := range out.IncomingReferrals.Edges {
		ids = append(ids, e.Node.ID)
	}
	return ids
}

func TestReferralLifecycleOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	car := withCardiologyUsers(t, s, d)
	patient := d.Patients[1]

	ref := refer(t, s, "doctor", map[string]any{"patientId": patient, "toDepartmentId": d.Cardiology, "reason": "Exertional chest pain", "priority": "URGENT"})
	harness.Must(t, ref.Status == "REQUESTED" && ref.Priority == "URGENT" && ref.FromStaff.ID == d.Doctor &&
		ref.FromDepartment.ID == d.General && ref.ToDepartment.ID == d.Cardiology && ref.ToStaff == nil, "referred: %+v", ref)
	harness.Must(t, len(incoming(t, s, "cardio", "REQUESTED")) == 1 && len(incoming(t, s, "cardionurse", "")) == 1, "cardiology's work list")
	harness.Must(t, len(incoming(t, s, "doctor", "")) == 0 && len(incoming(t, s, "nurse", "")) == 0, "general medicine's work list")

	// The wrong side is FORBIDDEN whatever the status; the right side out
	// of turn gets CONFLICT.
	for _, c := range []struct{ who, op string }{
		{"nurse", "acceptReferral"}, {"doctor", "acceptReferral"}, {"admin", "declineReferral"}, {"cardio", "cancelReferral"},
		{"nurse", "cancelReferral"},
	} {
		r := answer(s, c.who, c.op, ref.ID, "x")
		harness.Must(t, r.HasCode("FORBIDDEN"), "%s by %s: %s", c.op, c.who, harness.Describe(r))
	}
	r := answer(s, "cardio", "completeReferral", ref.ID, "too early")
	harness.Must(t, r.HasCode("CONFLICT"), "complete before accepting: %s", harness.Describe(r))

	before := activeMemberships(careTeamOf(t, s, "admin", patient), car.cardiologist)
	accepted := answered(t, answer(s, "cardio", "acceptReferral", ref.ID, "Clinic on Tuesday"), "acceptReferral")
	harness.Must(t, accepted.Status == "ACCEPTED" && accepted.ToStaff != nil && accepted.ToStaff.ID == car.cardiologist &&
		accepted.RespondedAt != nil && *accepted.ResponseNote == "Clinic on Tuesday", "accepted: %+v", accepted)
	team := careTeamOf(t, s, "reception", patient)
	harness.Must(t, before == 0 && activeMemberships(team, car.cardiologist) == 1, "the cardiologist joins the care team: %+v", team)
	for _, m := range team {
		if m.Staff.ID == car.cardiologist {
			harness.Must(t, m.Role == "CONSULTANT", "as consultant: %+v", m)
		}
	}
	for _, op := range []string{"acceptReferral", "declineReferral"} {
		r := answer(s, "cardionurse", op, ref.ID, "again")
		harness.Must(t, r.HasCode("CONFLICT"), "%s an accepted referral: %s", op, harness.Describe(r))
	}
	r = answer(s, "cardio", "cancelReferral", ref.ID, "x")
	harness.Must(t, r.HasCode("FORBIDDEN"), "the receiver cancelling: %s", harness.Describe(r))

	done := answered(t, answer(s, "cardionurse", "completeReferral", ref.ID, "Echo normal"), "completeReferral")
	harness.Must(t, done.Status == "COMPLETED" && *done.ResponseNote == "Echo normal", "completed: %+v", done)
	for _, c := range []struct{ who, op string }{
		{"cardio", "completeReferral"}, {"cardio", "acceptReferral"}, {"doctor", "cancelReferral"},
	} {
		r := answer(s, c.who, c.op, ref.ID, "x")
		harness.Must(t, r.HasCode("CONFLICT"), "%s of a completed referral: %s", c.op, harness.Describe(r))
	}

	// Declining and cancelling; a second acceptance by a member of the
	// team adds no second membership.
	declined := refer(t, s, "nurse", map[string]any{"patientId": patient, "toDepartmentId": d.Cardiology, "toStaffId": car.cardiologist, "reason": "Palpitations"})
	harness.Must(t, declined.ToStaff != nil && declined.ToStaff.ID == car.cardiologist && declined.Priority == "ROUTINE", "named referral: %+v", declined)
	out := answered(t, answer(s, "cardio", "declineReferral", declined.ID, "Holter first, then refer"), "declineReferral")
	harness.Must(t, out.Status == "DECLINED" && *out.ResponseNote == "Holter first, then refer" && out.RespondedAt != nil, "declined: %+v", out)
	r = answer(s, "nurse", "cancelReferral", declined.ID, "x")
	harness.Must(t, r.HasCode("CONFLICT"), "cancel a declined referral: %s", harness.Describe(r))

	again := refer(t, s, "doctor", map[string]any{"patientId": patient, "toDepartmentId": d.Cardiology, "reason": "Follow-up"})
	answered(t, answer(s, "cardio", "acceptReferral", again.ID, "ok"), "acceptReferral")
	harness.Must(t, activeMemberships(careTeamOf(t, s, "doctor", patient), car.cardiologist) == 1, "one membership after two acceptances")
	cancelled := answered(t, answer(s, "doctor", "cancelReferral", again.ID, "Patient moved away"), "cancelReferral")
	harness.Must(t, cancelled.Status == "CANCELLED" && *cancelled.ResponseNote == "Patient moved away", "cancelled: %+v", cancelled)

	r = answer(s, "cardio", "acceptReferral", "ref_01ARZ3NDEKTSV4RRFFQ69G5FAV", "x")
	harness.Must(t, r.HasCode("NOT_FOUND"), "unknown referral: %s", harness.Describe(r))
	r = answer(s, "cardio", "declineReferral", again.ID, " ")
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "reason", "blank reason: %s", harness.Describe(r))
}

func TestReferralBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	car := withCardiologyUsers(t, s, d)
	patient := d.Patients[2]
	good := func() map[string]any {
		return map[string]any{"patientId": patient, "toDepartmentId": d.Cardiology, "reason": "Murmur"}
	}
	cases := []struct {
		field  string
		change func(map[string]any)
	}{
		{"input.patientId", func(in map[string]any) { in["patientId"] = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.toDepartmentId", func(in map[string]any) { in["toDepartmentId"] = d.Doctor }},
		{"input.toStaffId", func(in map[string]any) { in["toStaffId"] = d.Nurse }}, // general medicine, not cardiology
		{"input.toStaffId", func(in map[string]any) { in["toStaffId"] = d.Labtech }},
		{"input.reason", func(in map[string]any) { in["reason"] = "" }},
		{"input.encounterId", func(in map[string]any) { in["encounterId"] = "enc_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		// Enums are checked while variables are coerced, which names the variable.
		{"in.priority", func(in map[string]any) { in["priority"] = "SOON" }},
	}
	for _, c := range cases {
		in := good()
		c.change(in)
		r := s.As("doctor", referMutation, map[string]any{"in": in})
		harness.Must(t, r.HasCode("BAD_USER_INPUT") && len(r.Errors) == 1 && r.Errors[0].Field() == c.field, "%s: %s", c.field, harness.Describe(r))
	}
	r := s.As("reception", referMutation, map[string]any{"in": good()})
	harness.Must(t, r.HasCode("FORBIDDEN"), "reception referring: %s", harness.Describe(r))
	r = s.As("patient", referMutation, map[string]any{"in": good()})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient referring: %s", harness.Describe(r))

	var count struct{ Referrals struct{ TotalCount int } }
	s.As("admin", `query($p: ID!) { referrals(where: {patientID: $p}) { totalCount } }`, map[string]any{"p": patient}).Decode(t, &count)
	harness.Must(t, count.Referrals.TotalCount == 0, "refused referrals stored: %d", count.Referrals.TotalCount)
	harness.Must(t, len(incoming(t, s, "cardio", "")) == 0, "nothing reached cardiology (%s)", car.cardiologist)
}

// TestConcurrentAcceptsOfOneReferral: both cardiology clinicians accept the
// same referral many times at once. One acceptance wins, the rest are
// CONFLICTs, and the care team gains exactly one member.
func TestConcurrentAcceptsOfOneReferral(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	car := withCardiologyUsers(t, s, d)
	patient := d.Patients[3]
	ref := refer(t, s, "doctor", map[string]any{"patientId": patient, "toDepartmentId": d.Cardiology, "reason": "Syncope"})
	tokens := []string{s.Token("cardio"), s.Token("cardionurse")}
	teamBefore := len(careTeamOf(t, s, "admin", patient))

	const attempts = 10
	results := make([]harness.Response, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.Do(tokens[i%2], `mutation($id: ID!) { acceptReferral(id: $id) { id toStaff { id } } }`, map[string]any{"id": ref.ID})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case r.HasCode("CONFLICT"):
		default:
			t.Errorf("unexpected outcome: %s", harness.Describe(r))
		}
	}
	team := careTeamOf(t, s, "admin", patient)
	joined := activeMemberships(team, car.cardiologist) + activeMemberships(team, car.nurse)
	harness.Must(t, wins == 1 && len(team) == teamBefore+1 && joined == 1, "wins %d, team %d → %d, joined %d", wins, teamBefore, len(team), joined)
}

func TestCareTeamOverHTTP(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	// A patient of the doctor's and nurse's (by appointment) whose care
	// team is still empty: the demo's patients have theirs on it.
	patient := s.RegisterPatient("Team", "Empty")
	s.CareFor(patient, d.Doctor, d.Nurse)
	add := func(as, staffID, role string) harness.Response {
		return s.As(as, `mutation($in: AddCareTeamMemberInput!) { addCareTeamMember(input: $in) { id role since until staff { id } } }`,
			map[string]any{"in": map[string]any{"patientId": patient, "staffId": staffID, "role": role}})
	}
	var added struct {
		AddCareTeamMember struct {
			ID, Role, Since string
			Until           *string
			Staff           struct{ ID string }
		}
	}
	add("nurse", d.Doctor, "ATTENDING").Decode(t, &added)
	m := added.AddCareTeamMember
	harness.Must(t, m.Role == "ATTENDING" && m.Staff.ID == d.Doctor && m.Since != "" && m.Until == nil, "added: %+v", m)
	r := add("doctor", d.Doctor, "ATTENDING")
	harness.Must(t, r.HasCode("CONFLICT"), "the same role twice: %s", harness.Describe(r))
	r = add("doctor", d.Nurse, "ATTENDING")
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.role", "a nurse as attending: %s", harness.Describe(r))
	r = add("doctor", "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", "OTHER")
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.staffId", "unknown staff: %s", harness.Describe(r))
	r = add("reception", d.Nurse, "NURSE")
	harness.Must(t, r.HasCode("FORBIDDEN"), "reception managing the team: %s", harness.Describe(r))
	r = add("patient", d.Nurse, "NURSE")
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient managing the team: %s", harness.Describe(r))
	add("doctor", d.Nurse, "NURSE").Decode(t, &struct{}{})

	team := careTeamOf(t, s, "reception", patient)
	harness.Must(t, len(team) == 2, "reception reads the team: %+v", team)

	end := `mutation($id: ID!) { endCareTeamMembership(id: $id) { id until } }`
	var ended struct{ EndCareTeamMembership struct{ Until *string } }
	s.As("doctor", end, map[string]any{"id": m.ID}).Decode(t, &ended)
	harness.Must(t, ended.EndCareTeamMembership.Until != nil, "ended: %+v", ended)
	r = s.As("nurse", end, map[string]any{"id": m.ID})
	harness.Must(t, r.HasCode("CONFLICT"), "end twice: %s", harness.Describe(r))
	r = s.As("reception", end, map[string]any{"id": team[1].ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "reception ending a membership: %s", harness.Describe(r))
	add("doctor", d.Doctor, "ATTENDING").Decode(t, &struct{}{})
	team = careTeamOf(t, s, "doctor", patient)
	harness.Must(t, len(team) == 3 && activeMemberships(team, d.Doctor) == 1, "history kept, one active attending: %+v", team)
}

// TestPatientSeesOwnReferralsAndCareTeam: row scope keeps the patient app
// to the patient's own referrals and care team.
func TestPatientSeesOwnReferralsAndCareTeam(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	own, other := d.Patients[0], d.Patients[1]
	mine := refer(t, s, "doctor", map[string]any{"patientId": own, "toDepartmentId": d.Cardiology, "reason": "Echo"})
	theirs := refer(t, s, "doctor", map[string]any{"patientId": other, "toDepartmentId": d.Cardiology, "reason": "Echo"})
	var added struct{ AddCareTeamMember struct{ ID string } }
	// OTHER: the demo nurse is on the team as NURSE already.
	s.As("doctor", `mutation($p: ID!, $s: ID!) { addCareTeamMember(input: {patientId: $p, staffId: $s, role: OTHER}) { id } }`,
		map[string]any{"p": other, "s": d.Nurse}).Decode(t, &added)

	var list struct {
		Referrals struct {
			TotalCount int
			Edges      []struct {
				Node struct {
					ID, Status   string
					ToDepartment struct{ Name string }
				}
			}
		}
	}
	s.As("patient", `{ referrals { totalCount edges { node { id status toDepartment { name } } } } }`, nil).Decode(t, &list)
	harness.Must(t, list.Referrals.TotalCount == 1 && list.Referrals.Edges[0].Node.ID == mine.ID && list.Referrals.Edges[0].Node.ToDepartment.Name != "",
		"own referrals: %+v", list)
	team := careTeamOf(t, s, "patient", own)
	roles := map[string]bool{}
	for _, m := range team {
		roles[m.Role] = true
	}
	// The demo's doctor (PRIMARY_CARE) and nurse.
	harness.Must(t, len(team) == 2 && roles["PRIMARY_CARE"] && roles["NURSE"], "own care team: %+v", team)

	for what, id := range map[string]string{"referral": theirs.ID, "care-team membership": added.AddCareTeamMember.ID} {
		r := s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
		harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's %s: %s", what, harness.Describe(r))
	}
	r := s.As("patient", `{ incomingReferrals { edges { node { id } } } }`, nil)
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient's work list: %s", harness.Describe(r))
	r = s.As("patient", `mutation($id: ID!) { cancelReferral(id: $id, reason: "no") { id } }`, map[string]any{"id": mine.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient cancelling their referral: %s", harness.Describe(r))
	r = s.As("patient", `mutation($id: ID!) { endCareTeamMembership(id: $id) { id } }`, map[string]any{"id": team[0].ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "a patient ending a membership: %s", harness.Describe(r))
}
