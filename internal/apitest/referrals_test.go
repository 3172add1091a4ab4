package apitest

import (
	"context"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/auth"
)

func init() {
	addProbes(map[string]string{
		"Query.incomingReferrals":        `{ incomingReferrals(first: 1) { __typename } }`,
		"Mutation.referPatient":          `mutation { referPatient(input: {patientId: "bad", toDepartmentId: "bad", reason: "x"}) { __typename } }`,
		"Mutation.acceptReferral":        `mutation { acceptReferral(id: "bad") { __typename } }`,
		"Mutation.declineReferral":       `mutation { declineReferral(id: "bad", reason: "x") { __typename } }`,
		"Mutation.completeReferral":      `mutation { completeReferral(id: "bad") { __typename } }`,
		"Mutation.cancelReferral":        `mutation { cancelReferral(id: "bad", reason: "x") { __typename } }`,
		"Mutation.addCareTeamMember":     `mutation { addCareTeamMember(input: {patientId: "bad", staffId: "bad", role: OTHER}) { __typename } }`,
		"Mutation.endCareTeamMembership": `mutation { endCareTeamMembership(id: "bad") { __typename } }`,
	})
}

// cardiology gives the demo's cardiology department two users: "cardio",
// the demo cardiologist, and "cardionurse", a nurse added for the test.
// The demo has no cardiology login, and referrals need a receiving side.
type cardiology struct{ cardiologist, nurse string }

func withCardiologyUsers(t *testing.T, s *server, d demoIDs) cardiology {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	c := s.app.Store.Client
	hash, err := auth.HashPassword(demoPassword)
	if err != nil {
		t.Fatal(err)
	}
	doctor := c.Staff.Query().Where(staff.DepartmentID(d.cardiology), staff.KindEQ(staff.KindDOCTOR)).FirstX(ctx)
	nurse := c.Staff.Create().SetGivenName("Esi").SetFamilyName("Boateng").SetKind(staff.KindNURSE).SetDepartmentID(d.cardiology).SaveX(ctx)
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

func refer(t *testing.T, s *server, as string, in map[string]any) referralOut {
	t.Helper()
	var out struct{ ReferPatient referralOut }
	s.as(as, referMutation, map[string]any{"in": in}).decode(t, &out)
	return out.ReferPatient
}

// answer runs acceptReferral, declineReferral, completeReferral or
// cancelReferral; the reason or note is passed as $text.
func answer(s *server, as, op, id, text string) response {
	arg := "note"
	if op == "declineReferral" || op == "cancelReferral" {
		arg = "reason"
	}
	return s.as(as, `mutation($id: ID!, $text: String!) { `+op+`(id: $id, `+arg+`: $text) {
	  id status responseNote respondedAt toStaff { id } } }`, map[string]any{"id": id, "text": text})
}

func answered(t *testing.T, r response, op string) referralOut {
	t.Helper()
	var out map[string]referralOut
	r.decode(t, &out)
	return out[op]
}

type careTeamRow struct {
	ID, Role string
	Until    *string
	Staff    struct{ ID string }
}

func careTeamOf(t *testing.T, s *server, as, patientID string) []careTeamRow {
	t.Helper()
	var out struct {
		Patient struct{ CareTeam []careTeamRow }
	}
	s.as(as, `query($id: ID!) { patient(id: $id) { careTeam { id role until staff { id } } } }`, map[string]any{"id": patientID}).decode(t, &out)
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

func incoming(t *testing.T, s *server, as, status string) []string {
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
	s.as(as, `query($s: ReferralStatus) { incomingReferrals(status: $s, first: 50) { edges { node { id } } } }`, vars).decode(t, &out)
	var ids []string
	for _, e := range out.IncomingReferrals.Edges {
		ids = append(ids, e.Node.ID)
	}
	return ids
}

func TestReferralLifecycleOverHTTP(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	car := withCardiologyUsers(t, s, d)
	patient := d.patients[1]

	ref := refer(t, s, "doctor", map[string]any{"patientId": patient, "toDepartmentId": d.cardiology, "reason": "Exertional chest pain", "priority": "URGENT"})
	must(t, ref.Status == "REQUESTED" && ref.Priority == "URGENT" && ref.FromStaff.ID == d.doctor &&
		ref.FromDepartment.ID == d.general && ref.ToDepartment.ID == d.cardiology && ref.ToStaff == nil, "referred: %+v", ref)
	must(t, len(incoming(t, s, "cardio", "REQUESTED")) == 1 && len(incoming(t, s, "cardionurse", "")) == 1, "cardiology's work list")
	must(t, len(incoming(t, s, "doctor", "")) == 0 && len(incoming(t, s, "nurse", "")) == 0, "general medicine's work list")

	// The wrong side is FORBIDDEN whatever the status; the right side out
	// of turn gets CONFLICT.
	for _, c := range []struct{ who, op string }{
		{"nurse", "acceptReferral"}, {"doctor", "acceptReferral"}, {"admin", "declineReferral"}, {"cardio", "cancelReferral"},
		{"nurse", "cancelReferral"},
	} {
		r := answer(s, c.who, c.op, ref.ID, "x")
		must(t, r.hasCode("FORBIDDEN"), "%s by %s: %s", c.op, c.who, describe(r))
	}
	r := answer(s, "cardio", "completeReferral", ref.ID, "too early")
	must(t, r.hasCode("CONFLICT"), "complete before accepting: %s", describe(r))

	before := activeMemberships(careTeamOf(t, s, "admin", patient), car.cardiologist)
	accepted := answered(t, answer(s, "cardio", "acceptReferral", ref.ID, "Clinic on Tuesday"), "acceptReferral")
	must(t, accepted.Status == "ACCEPTED" && accepted.ToStaff != nil && accepted.ToStaff.ID == car.cardiologist &&
		accepted.RespondedAt != nil && *accepted.ResponseNote == "Clinic on Tuesday", "accepted: %+v", accepted)
	team := careTeamOf(t, s, "reception", patient)
	must(t, before == 0 && activeMemberships(team, car.cardiologist) == 1, "the cardiologist joins the care team: %+v", team)
	for _, m := range team {
		if m.Staff.ID == car.cardiologist {
			must(t, m.Role == "CONSULTANT", "as consultant: %+v", m)
		}
	}
	for _, op := range []string{"acceptReferral", "declineReferral"} {
		r := answer(s, "cardionurse", op, ref.ID, "again")
		must(t, r.hasCode("CONFLICT"), "%s an accepted referral: %s", op, describe(r))
	}
	r = answer(s, "cardio", "cancelReferral", ref.ID, "x")
	must(t, r.hasCode("FORBIDDEN"), "the receiver cancelling: %s", describe(r))

	done := answered(t, answer(s, "cardionurse", "completeReferral", ref.ID, "Echo normal"), "completeReferral")
	must(t, done.Status == "COMPLETED" && *done.ResponseNote == "Echo normal", "completed: %+v", done)
	for _, c := range []struct{ who, op string }{
		{"cardio", "completeReferral"}, {"cardio", "acceptReferral"}, {"doctor", "cancelReferral"},
	} {
		r := answer(s, c.who, c.op, ref.ID, "x")
		must(t, r.hasCode("CONFLICT"), "%s of a completed referral: %s", c.op, describe(r))
	}

	// Declining and cancelling; a second acceptance by a member of the
	// team adds no second membership.
	declined := refer(t, s, "nurse", map[string]any{"patientId": patient, "toDepartmentId": d.cardiology, "toStaffId": car.cardiologist, "reason": "Palpitations"})
	must(t, declined.ToStaff != nil && declined.ToStaff.ID == car.cardiologist && declined.Priority == "ROUTINE", "named referral: %+v", declined)
	out := answered(t, answer(s, "cardio", "declineReferral", declined.ID, "Holter first, then refer"), "declineReferral")
	must(t, out.Status == "DECLINED" && *out.ResponseNote == "Holter first, then refer" && out.RespondedAt != nil, "declined: %+v", out)
	r = answer(s, "nurse", "cancelReferral", declined.ID, "x")
	must(t, r.hasCode("CONFLICT"), "cancel a declined referral: %s", describe(r))

	again := refer(t, s, "doctor", map[string]any{"patientId": patient, "toDepartmentId": d.cardiology, "reason": "Follow-up"})
	answered(t, answer(s, "cardio", "acceptReferral", again.ID, "ok"), "acceptReferral")
	must(t, activeMemberships(careTeamOf(t, s, "doctor", patient), car.cardiologist) == 1, "one membership after two acceptances")
	cancelled := answered(t, answer(s, "doctor", "cancelReferral", again.ID, "Patient moved away"), "cancelReferral")
	must(t, cancelled.Status == "CANCELLED" && *cancelled.ResponseNote == "Patient moved away", "cancelled: %+v", cancelled)

	r = answer(s, "cardio", "acceptReferral", "ref_01ARZ3NDEKTSV4RRFFQ69G5FAV", "x")
	must(t, r.hasCode("NOT_FOUND"), "unknown referral: %s", describe(r))
	r = answer(s, "cardio", "declineReferral", again.ID, " ")
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "reason", "blank reason: %s", describe(r))
}

func TestReferralBadInputChangesNothing(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	car := withCardiologyUsers(t, s, d)
	patient := d.patients[2]
	good := func() map[string]any {
		return map[string]any{"patientId": patient, "toDepartmentId": d.cardiology, "reason": "Murmur"}
	}
	cases := []struct {
		field  string
		change func(map[string]any)
	}{
		{"input.patientId", func(in map[string]any) { in["patientId"] = "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		{"input.toDepartmentId", func(in map[string]any) { in["toDepartmentId"] = d.doctor }},
		{"input.toStaffId", func(in map[string]any) { in["toStaffId"] = d.nurse }}, // general medicine, not cardiology
		{"input.toStaffId", func(in map[string]any) { in["toStaffId"] = d.labtech }},
		{"input.reason", func(in map[string]any) { in["reason"] = "" }},
		{"input.encounterId", func(in map[string]any) { in["encounterId"] = "enc_01ARZ3NDEKTSV4RRFFQ69G5FAV" }},
		// Enums are checked while variables are coerced, which names the variable.
		{"in.priority", func(in map[string]any) { in["priority"] = "SOON" }},
	}
	for _, c := range cases {
		in := good()
		c.change(in)
		r := s.as("doctor", referMutation, map[string]any{"in": in})
		must(t, r.hasCode("BAD_USER_INPUT") && len(r.Errors) == 1 && r.Errors[0].field() == c.field, "%s: %s", c.field, describe(r))
	}
	r := s.as("reception", referMutation, map[string]any{"in": good()})
	must(t, r.hasCode("FORBIDDEN"), "reception referring: %s", describe(r))
	r = s.as("patient", referMutation, map[string]any{"in": good()})
	must(t, r.hasCode("FORBIDDEN"), "a patient referring: %s", describe(r))

	var count struct{ Referrals struct{ TotalCount int } }
	s.as("admin", `query($p: ID!) { referrals(where: {patientID: $p}) { totalCount } }`, map[string]any{"p": patient}).decode(t, &count)
	must(t, count.Referrals.TotalCount == 0, "refused referrals stored: %d", count.Referrals.TotalCount)
	must(t, len(incoming(t, s, "cardio", "")) == 0, "nothing reached cardiology (%s)", car.cardiologist)
}

// TestConcurrentAcceptsOfOneReferral: both cardiology clinicians accept the
// same referral many times at once. One acceptance wins, the rest are
// CONFLICTs, and the care team gains exactly one member.
func TestConcurrentAcceptsOfOneReferral(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	car := withCardiologyUsers(t, s, d)
	patient := d.patients[3]
	ref := refer(t, s, "doctor", map[string]any{"patientId": patient, "toDepartmentId": d.cardiology, "reason": "Syncope"})
	tokens := []string{s.token("cardio"), s.token("cardionurse")}
	teamBefore := len(careTeamOf(t, s, "admin", patient))

	const attempts = 10
	results := make([]response, attempts)
	var wg sync.WaitGroup
	for i := 0; i < attempts; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = s.do(tokens[i%2], `mutation($id: ID!) { acceptReferral(id: $id) { id toStaff { id } } }`, map[string]any{"id": ref.ID})
		}(i)
	}
	wg.Wait()
	wins := 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			wins++
		case r.hasCode("CONFLICT"):
		default:
			t.Errorf("unexpected outcome: %s", describe(r))
		}
	}
	team := careTeamOf(t, s, "admin", patient)
	joined := activeMemberships(team, car.cardiologist) + activeMemberships(team, car.nurse)
	must(t, wins == 1 && len(team) == teamBefore+1 && joined == 1, "wins %d, team %d → %d, joined %d", wins, teamBefore, len(team), joined)
}

func TestCareTeamOverHTTP(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	patient := d.patients[2]
	add := func(as, staffID, role string) response {
		return s.as(as, `mutation($in: AddCareTeamMemberInput!) { addCareTeamMember(input: $in) { id role since until staff { id } } }`,
			map[string]any{"in": map[string]any{"patientId": patient, "staffId": staffID, "role": role}})
	}
	var added struct {
		AddCareTeamMember struct {
			ID, Role, Since string
			Until           *string
			Staff           struct{ ID string }
		}
	}
	add("nurse", d.doctor, "ATTENDING").decode(t, &added)
	m := added.AddCareTeamMember
	must(t, m.Role == "ATTENDING" && m.Staff.ID == d.doctor && m.Since != "" && m.Until == nil, "added: %+v", m)
	r := add("doctor", d.doctor, "ATTENDING")
	must(t, r.hasCode("CONFLICT"), "the same role twice: %s", describe(r))
	r = add("doctor", d.nurse, "ATTENDING")
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.role", "a nurse as attending: %s", describe(r))
	r = add("doctor", "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", "OTHER")
	must(t, r.hasCode("BAD_USER_INPUT") && r.Errors[0].field() == "input.staffId", "unknown staff: %s", describe(r))
	r = add("reception", d.nurse, "NURSE")
	must(t, r.hasCode("FORBIDDEN"), "reception managing the team: %s", describe(r))
	r = add("patient", d.nurse, "NURSE")
	must(t, r.hasCode("FORBIDDEN"), "a patient managing the team: %s", describe(r))
	add("doctor", d.nurse, "NURSE").decode(t, &struct{}{})

	team := careTeamOf(t, s, "reception", patient)
	must(t, len(team) == 2, "reception reads the team: %+v", team)

	end := `mutation($id: ID!) { endCareTeamMembership(id: $id) { id until } }`
	var ended struct{ EndCareTeamMembership struct{ Until *string } }
	s.as("doctor", end, map[string]any{"id": m.ID}).decode(t, &ended)
	must(t, ended.EndCareTeamMembership.Until != nil, "ended: %+v", ended)
	r = s.as("nurse", end, map[string]any{"id": m.ID})
	must(t, r.hasCode("CONFLICT"), "end twice: %s", describe(r))
	r = s.as("reception", end, map[string]any{"id": team[1].ID})
	must(t, r.hasCode("FORBIDDEN"), "reception ending a membership: %s", describe(r))
	add("doctor", d.doctor, "ATTENDING").decode(t, &struct{}{})
	team = careTeamOf(t, s, "doctor", patient)
	must(t, len(team) == 3 && activeMemberships(team, d.doctor) == 1, "history kept, one active attending: %+v", team)
}

// TestPatientSeesOwnReferralsAndCareTeam: row scope keeps the patient app
// to the patient's own referrals and care team.
func TestPatientSeesOwnReferralsAndCareTeam(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	own, other := d.patients[0], d.patients[1]
	mine := refer(t, s, "doctor", map[string]any{"patientId": own, "toDepartmentId": d.cardiology, "reason": "Echo"})
	theirs := refer(t, s, "doctor", map[string]any{"patientId": other, "toDepartmentId": d.cardiology, "reason": "Echo"})
	var added struct{ AddCareTeamMember struct{ ID string } }
	s.as("doctor", `mutation($p: ID!, $s: ID!) { addCareTeamMember(input: {patientId: $p, staffId: $s, role: NURSE}) { id } }`,
		map[string]any{"p": other, "s": d.nurse}).decode(t, &added)

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
	s.as("patient", `{ referrals { totalCount edges { node { id status toDepartment { name } } } } }`, nil).decode(t, &list)
	must(t, list.Referrals.TotalCount == 1 && list.Referrals.Edges[0].Node.ID == mine.ID && list.Referrals.Edges[0].Node.ToDepartment.Name != "",
		"own referrals: %+v", list)
	team := careTeamOf(t, s, "patient", own)
	must(t, len(team) == 1 && team[0].Role == "PRIMARY_CARE", "own care team: %+v", team)

	for what, id := range map[string]string{"referral": theirs.ID, "care-team membership": added.AddCareTeamMember.ID} {
		r := s.as("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": id})
		must(t, r.hasCode("NOT_FOUND"), "another patient's %s: %s", what, describe(r))
	}
	r := s.as("patient", `{ incomingReferrals { edges { node { id } } } }`, nil)
	must(t, r.hasCode("FORBIDDEN"), "a patient's work list: %s", describe(r))
	r = s.as("patient", `mutation($id: ID!) { cancelReferral(id: $id, reason: "no") { id } }`, map[string]any{"id": mine.ID})
	must(t, r.hasCode("FORBIDDEN"), "a patient cancelling their referral: %s", describe(r))
	r = s.as("patient", `mutation($id: ID!) { endCareTeamMembership(id: $id) { id } }`, map[string]any{"id": team[0].ID})
	must(t, r.hasCode("FORBIDDEN"), "a patient ending a membership: %s", describe(r))
}
