// Package staffing tests staff records through the API, as HR's, payroll's
// and every member of staff's frontends use them.
package staffing

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/config"
)

const createStaff = `mutation($in: CreateStaffInput!) {
  createStaff(input: $in) { id givenName kind licenceNumber licenceExpiresOn employmentType startDate
    pay { basis rate } bankDetails { accountHolder bankName accountNumber branch } login { username roles active } }
}`

type bank struct{ AccountHolder, BankName, AccountNumber string }

type created struct {
	ID, GivenName, Kind, LicenceNumber, LicenceExpiresOn, EmploymentType, StartDate string
	Pay                                                                             *struct{ Basis, Rate string }
	BankDetails                                                                     *bank
	Login                                                                           *struct {
		Username string
		Roles    []string
		Active   bool
	}
}

func staffInput(dep, licence, username string) map[string]any {
	in := map[string]any{
		"givenName": "Wanjiku", "familyName": "Kariuki", "kind": "NURSE", "departmentId": dep,
		"licenceNumber": licence, "licenceIssuer": "Nursing Council of Kenya", "licenceExpiresOn": "2030-06-30",
		"employmentType": "CONTRACT", "startDate": "2026-01-05",
		"pay":         map[string]any{"basis": "HOURLY", "rate": "850.50"},
		"bankDetails": map[string]any{"accountHolder": "Wanjiku Kariuki", "bankName": "Equity Bank", "accountNumber": "0123456789"},
	}
	if username != "" {
		in["account"] = map[string]any{"username": username, "password": "a-long-password-1", "roles": []string{"nurse"}}
	}
	return in
}

func create(t *testing.T, s *harness.Server, in map[string]any) created {
	t.Helper()
	var out struct{ CreateStaff created }
	s.As("hr", createStaff, map[string]any{"in": in}).Decode(t, &out)
	return out.CreateStaff
}

// TestCreateStaffAndWhoReadsWhat: HR creates a record with a login; pay and
// bank details come back to HR and payroll; every other role is refused
// them field by field, and the refusal changes nothing else in the answer.
func TestCreateStaffAndWhoReadsWhat(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	c := create(t, s, staffInput(d.General, "nck 777", "wkariuki"))
	harness.Must(t, c.LicenceNumber == "NCK777" && c.EmploymentType == "CONTRACT" && c.StartDate == "2026-01-05" &&
		c.Pay != nil && c.Pay.Basis == "HOURLY" && c.Pay.Rate == "850.50" &&
		c.BankDetails != nil && c.BankDetails.AccountNumber == "0123456789" &&
		c.Login != nil && c.Login.Username == "wkariuki" && slices.Equal(c.Login.Roles, []string{"nurse"}) && c.Login.Active,
		"created: %+v", c)
	// The new login works and sees itself as that member of staff.
	tok := s.Login("wkariuki", "a-long-password-1").AccessToken
	var mine struct {
		MyStaffRecord struct {
			Staff       struct{ ID string }
			Pay         struct{ Rate string }
			BankDetails bank
		}
	}
	s.Do(tok, `{ myStaffRecord { staff { id } pay { rate } bankDetails { accountHolder bankName accountNumber } } }`, nil).Decode(t, &mine)
	harness.Must(t, mine.MyStaffRecord.Staff.ID == c.ID && mine.MyStaffRecord.Pay.Rate == "850.50" &&
		mine.MyStaffRecord.BankDetails.AccountNumber == "0123456789", "own record: %+v", mine)

	read := `query($id: ID!) { node(id: $id) { ... on Staff { id givenName pay { rate } bankDetails { accountNumber } } } }`
	for role, want := range map[string]struct{ pay, bank bool }{
		"hr": {true, true}, "payroll": {true, true}, "admin": {true, false},
		"doctor": {}, "nurse": {}, "auditor": {}, "reception": {}, "finance_officer": {},
	} {
		r := s.As(role, read, map[string]any{"id": c.ID})
		denied := map[string]bool{}
		for _, e := range r.Errors {
			harness.Must(t, e.Code() == "FORBIDDEN", "%s: %s", role, harness.Describe(r))
			denied[e.Path[len(e.Path)-1].(string)] = true
		}
		harness.Must(t, denied["pay"] == !want.pay && denied["bankDetails"] == !want.bank, "%s: denied %v, want %+v", role, denied, want)
		harness.Must(t, harness.ContainsJSON(r.Data, `"givenName":"Wanjiku"`), "%s: the rest still answers: %s", role, r.Data)
		if want.bank {
			harness.Must(t, harness.ContainsJSON(r.Data, `"accountNumber":"0123456789"`), "%s reads the account: %s", role, r.Data)
		}
	}
	// A patient does not reach a staff record's pay or bank details either.
	r := s.As("patient", `{ myStaffRecord { __typename } }`, nil)
	harness.Must(t, harness.DeniedByGuard(r, "patient"), "patient, myStaffRecord: %s", harness.Describe(r))

	// A member of staff reads their own bank details, never another's
	// (the demo doctor's record is complete).
	var doc struct {
		MyStaffRecord struct {
			Staff       struct{ ID string }
			BankDetails bank
		}
	}
	s.As("doctor", `{ myStaffRecord { staff { id } bankDetails { accountHolder bankName accountNumber } } }`, nil).Decode(t, &doc)
	harness.Must(t, doc.MyStaffRecord.Staff.ID == d.Doctor && doc.MyStaffRecord.BankDetails.AccountHolder == "Grace Mwangi",
		"the doctor's own: %+v", doc)
	r = s.As("nurse", `query($id: ID!) { node(id: $id) { ... on Staff { bankDetails { accountNumber } } } }`, map[string]any{"id": d.Doctor})
	harness.Must(t, r.HasCode("FORBIDDEN") && !harness.ContainsJSON(r.Data, "0100200300"), "nurse reading the doctor's: %s", harness.Describe(r))

	// Every read of bank details is on the audit trail, naming the record.
	s.As("payroll", `{ staffs(first: 100) { edges { node { id bankDetails { accountNumber } } } } }`, nil).Decode(t, &struct{}{})
	rows := harness.AuditRows(t, s, map[string]any{"operation": "staffs"})
	found := false
	for _, row := range rows {
		if slices.Contains(row.Fields, "Staff.bankDetails") && slices.Contains(row.ObjectIds, d.Doctor) && slices.Contains(row.ObjectIds, c.ID) {
			found = true
		}
	}
	harness.Must(t, found, "no audit row of payroll's read of bank details: %+v", rows)
	rows = harness.AuditRows(t, s, map[string]any{"operation": "myStaffRecord"})
	found = false
	for _, row := range rows {
		found = found || (slices.Contains(row.Fields, "Staff.bankDetails") && slices.Contains(row.ObjectIds, d.Doctor))
	}
	harness.Must(t, found, "no audit row of the doctor's read of their own bank details: %+v", rows)
}

// TestBadStaffInputNamesTheFieldAndChangesNothing, through the API.
func TestBadStaffInputNamesTheFieldAndChangesNothing(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	count := func() int {
		var out struct{ Staffs struct{ TotalCount int } }
		s.As("hr", `{ staffs { totalCount } }`, nil).Decode(t, &out)
		return out.Staffs.TotalCount
	}
	before := count()
	for field, change := range map[string]func(map[string]any){
		"input.licenceExpiresOn": func(in map[string]any) { in["licenceExpiresOn"] = "2025-12-31" },
		"input.endDate":          func(in map[string]any) { in["endDate"] = "2026-01-04" },
		"input.pay.rate":         func(in map[string]any) { in["pay"] = map[string]any{"basis": "MONTHLY", "rate": "-1.00"} },
		"input.licenceNumber":    func(in map[string]any) { in["licenceNumber"] = "kmpdc-a1001" }, // the demo doctor's
		"input.departmentId":     func(in map[string]any) { in["departmentId"] = "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV" },
		"input.account.roles": func(in map[string]any) {
			in["account"] = map[string]any{"username": "newadmin", "password": "a-long-password-1", "roles": []string{"admin"}}
		},
	} {
		in := staffInput(d.General, "NEW-1", "")
		change(in)
		harness.WantBadInput(t, field, s.As("hr", createStaff, map[string]any{"in": in}), field)
	}
	harness.Must(t, count() == before, "refused input wrote staff")
	// updateStaff refuses as createStaff does, and keeps the record whole.
	r := s.As("hr", `mutation($id: ID!) { updateStaff(id: $id, input: {position: "Changed", endDate: "2019-01-01"}) { id } }`,
		map[string]any{"id": d.Doctor})
	harness.WantBadInput(t, "end before start", r, "input.endDate")
	var doc struct {
		Node struct{ Position string }
	}
	s.As("hr", `query($id: ID!) { node(id: $id) { ... on Staff { position } } }`, map[string]any{"id": d.Doctor}).Decode(t, &doc)
	harness.Must(t, doc.Node.Position == "Medical officer", "a refused update wrote: %+v", doc)
}

// TestDeactivationEndsSessions: deactivating a member of staff refuses their
// access token and refresh token at once, closes their open socket as
// logout does, and keeps them from signing in; reactivation lets them sign
// in again.
func TestDeactivationEndsSessions(t *testing.T) {
	t.Parallel()
	for _, proto := range harness.WSProtocols {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			s := harness.NewServer(t, func(c *config.Config) { c.WSSessionCheck = 200 * time.Millisecond })
			d := s.Demo()
			c := create(t, s, staffInput(d.General, "NCK-"+proto, "leaver"))
			session := s.Login("leaver", "a-long-password-1")
			ws := s.DialWS(t, proto)
			ws.Init(session.AccessToken)
			var me struct{ Me struct{ Username string } }
			id := ws.Start(`{ me { username } }`, nil)
			ws.Result(id).Resp.Decode(t, &me)
			harness.Must(t, me.Me.Username == "leaver", "before: %+v", me)
			harness.Must(t, ws.Result(id).Kind == "complete", "the query did not complete")

			var out struct {
				DeactivateStaff struct {
					Active             bool
					DeactivationReason string
					Login              struct{ Active bool }
				}
			}
			s.As("hr", `mutation($id: ID!) { deactivateStaff(id: $id, reason: "Contract ended") { active deactivationReason login { active } } }`,
				map[string]any{"id": c.ID}).Decode(t, &out)
			harness.Must(t, !out.DeactivateStaff.Active && out.DeactivateStaff.DeactivationReason == "Contract ended" &&
				!out.DeactivateStaff.Login.Active, "deactivated: %+v", out)

			ws.MustCloseUnauthorized("socket of a deactivated member of staff")
			r := s.Do(session.AccessToken, `{ me { username } }`, nil)
			harness.Must(t, r.HasCode("UNAUTHENTICATED"), "access token after deactivation: %s", harness.Describe(r))
			r = s.Do("", `mutation($t: String!) { refreshToken(input: {refreshToken: $t}) { accessToken } }`, map[string]any{"t": session.RefreshToken})
			harness.Must(t, r.HasCode("UNAUTHENTICATED"), "refresh after deactivation: %s", harness.Describe(r))
			r = s.Do("", harness.LoginMutation, map[string]any{"u": "leaver", "p": "a-long-password-1"})
			harness.Must(t, r.HasCode("UNAUTHENTICATED"), "login after deactivation: %s", harness.Describe(r))
			// HR's own session is not among those that ended.
			s.As("hr", `{ me { username } }`, nil).Decode(t, &me)

			r = s.As("hr", `mutation($id: ID!) { reactivateStaff(id: $id) { active login { active } } }`, map[string]any{"id": c.ID})
			harness.Must(t, harness.ContainsJSON(r.Data, `"active":true,"login":{"active":true}`), "reactivated: %s", harness.Describe(r))
			harness.Must(t, s.Login("leaver", "a-long-password-1").AccessToken != "", "no sign-in after reactivation")
		})
	}
}

// TestInactiveStaffCannotAct: a session that outlived its staff record's
// deactivation (the record made inactive behind the API's back) still
// cannot act as that member of staff.
func TestInactiveStaffCannotAct(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	tok := s.Token("nurse")
	err := s.App.Store.Client.Staff.UpdateOneID(d.Nurse).SetActive(false).Exec(auth.SystemContext(context.Background()))
	harness.Must(t, err == nil, "deactivate behind the API: %v", err)
	r := s.Do(tok, `mutation($p: ID!) { breakGlass(input: {patientId: $p, reason: "Unconscious on arrival, no relationship"}) { id } }`,
		map[string]any{"p": d.Patients[0]})
	harness.Must(t, r.HasCode("FORBIDDEN"), "an inactive nurse breaking the glass: %s", harness.Describe(r))
}

// TestExpiringLicencesThroughAPI: soonest first, expired ones in, the last
// day of the window in and the day after out; only HR and admin ask.
func TestExpiringLicencesThroughAPI(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	at := func(days int) string {
		now := time.Now().In(s.App.Config.Location())
		return time.Date(now.Year(), now.Month(), now.Day()+days, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	}
	mk := func(family, licence string, days int) string {
		in := staffInput(d.General, licence, "")
		in["familyName"], in["startDate"], in["licenceExpiresOn"] = family, "2020-01-01", at(days)
		return create(t, s, in).ID
	}
	in30 := mk("Thirty", "EXP-30", 30)
	in31 := mk("ThirtyOne", "EXP-31", 31)
	expired := mk("Expired", "EXP-OLD", -40)
	todayID := mk("Today", "EXP-0", 0)
	list := func(days int) []string {
		var out struct{ ExpiringLicences []struct{ ID string } }
		s.As("hr", `query($n: Int!) { expiringLicences(withinDays: $n) { id } }`, map[string]any{"n": days}).Decode(t, &out)
		var ids []string
		for _, m := range out.ExpiringLicences {
			ids = append(ids, m.ID)
		}
		return ids
	}
	// The demo doctor's licence expires in 20 days.
	harness.Must(t, slices.Equal(list(30), []string{expired, todayID, d.Doctor, in30}), "within 30: %v", list(30))
	harness.Must(t, slices.Equal(list(0), []string{expired, todayID}), "within 0: %v", list(0))
	harness.Must(t, slices.Contains(list(31), in31), "within 31: %v", list(31))
	harness.WantBadInput(t, "negative window", s.As("hr", `{ expiringLicences(withinDays: -1) { id } }`, nil), "withinDays")
	for _, role := range []string{"doctor", "payroll", "nurse", "patient", "auditor"} {
		r := s.As(role, `{ expiringLicences(withinDays: 30) { id } }`, nil)
		harness.Must(t, harness.DeniedByGuard(r, role), "%s: %s", role, harness.Describe(r))
	}
	var admin struct{ ExpiringLicences []struct{ ID string } }
	s.As("admin", `{ expiringLicences(withinDays: 30) { id } }`, nil).Decode(t, &admin)
	harness.Must(t, len(admin.ExpiringLicences) == 4, "admin: %+v", admin)
}

// TestConcurrentUpdatesThroughAPI: two HR requests correcting different
// fields at once both keep theirs.
func TestConcurrentUpdatesThroughAPI(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	for round := range 4 {
		pos, phone := "Position "+string(rune('A'+round)), "+254 711 00000"+string(rune('0'+round))
		done := make(chan harness.Response, 2)
		go func() {
			done <- s.As("hr", `mutation($id: ID!, $p: String!) { updateStaff(id: $id, input: {position: $p}) { id } }`,
				map[string]any{"id": d.Nurse, "p": pos})
		}()
		go func() {
			done <- s.As("admin", `mutation($id: ID!, $p: String!) { updateStaff(id: $id, input: {phone: $p}) { id } }`,
				map[string]any{"id": d.Nurse, "p": phone})
		}()
		for range 2 {
			r := <-done
			harness.Must(t, len(r.Errors) == 0, "round %d: %s", round, harness.Describe(r))
		}
		var out struct {
			Node struct{ Position, Phone string }
		}
		s.As("hr", `query($id: ID!) { node(id: $id) { ... on Staff { position phone } } }`, map[string]any{"id": d.Nurse}).Decode(t, &out)
		harness.Must(t, out.Node.Position == pos && out.Node.Phone == phone, "round %d lost a change: %+v", round, out.Node)
	}
}

// TestREADMEStaffOperationsAreValid runs the README's staff examples as HR:
// each is valid against the schema; with placeholder IDs it is refused as
// bad input or not found, or answers.
func TestREADMEStaffOperationsAreValid(t *testing.T) {
	t.Parallel()
	ops := harness.READMEOperations(t, "## Staff: records and licences")
	s := harness.NewServer(t)
	for _, op := range ops {
		harness.Must(t, op.Kind != ast.Subscription, "no subscription expected")
		user := "hr"
		if strings.Contains(op.Document, "myStaffRecord") {
			user = "doctor"
		}
		r := s.As(user, op.Document, nil)
		for _, e := range r.Errors {
			harness.Must(t, e.Code() == "BAD_USER_INPUT" || e.Code() == "NOT_FOUND", "README operation: %s %v\n%s", e.Code(), e, op.Document)
		}
	}
	harness.Must(t, len(ops) == 7, "%d README staff operations found", len(ops))
}
