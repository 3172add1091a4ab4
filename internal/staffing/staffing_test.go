package staffing

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// endedSessions records whose sessions the service ended; the API tests
// check that sessions really end (internal/apitest/staffing).
type endedSessions struct {
	mu    sync.Mutex
	users []string
}

func (e *endedSessions) EndUserSessions(_ context.Context, userID string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.users = append(e.users, userID)
	return nil
}

type fixture struct {
	svc                    *Service
	client                 *ent.Client
	system                 context.Context
	ended                  *endedSessions
	dep                    string
	hr, admin, doctor, old context.Context
	hrID                   string
}

var roles = map[string]bool{"admin": true, "doctor": true, "nurse": true, "hr": true, "payroll": true, "patient": true, "integrator": true}

func setup(t *testing.T) fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	dep := c.Department.Create().SetCode("ADM").SetName("Administration").SaveX(sys)
	f := fixture{client: c, system: sys, ended: &endedSessions{}, dep: dep.ID}
	as := func(kind staff.Kind, active bool, role string) (context.Context, string) {
		s := c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(kind).SetDepartment(dep).SetActive(active).SaveX(sys)
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + s.ID, Username: role, Roles: []string{role}, StaffID: s.ID}), s.ID
	}
	f.hr, f.hrID = as(staff.KindHR_OFFICER, true, "hr")
	f.admin, _ = as(staff.KindADMINISTRATOR, true, "admin")
	f.doctor, _ = as(staff.KindDOCTOR, true, "doctor")
	f.old, _ = as(staff.KindHR_OFFICER, false, "hr")
	f.svc = NewService(st, f.ended, func(r string) bool { return roles[r] }, time.UTC)
	f.svc.now = func() time.Time { return time.Date(2026, 3, 10, 15, 0, 0, 0, time.UTC) }
	return f
}

func ptr[T any](v T) *T { return &v }

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func (f fixture) newStaff() CreateStaffInput {
	return CreateStaffInput{GivenName: " Wanjiku ", FamilyName: "Kariuki", Kind: staff.KindNURSE, DepartmentID: f.dep,
		Email: ptr("w.kariuki@example.org"), Position: ptr("Staff nurse"), Specialties: []string{"Midwifery"},
		LicenceNumber: ptr(" nck 12345 "), LicenceIssuer: ptr("Nursing Council of Kenya"), LicenceExpiresOn: ptr(day(2027, 6, 30)),
		EmploymentType: staff.EmploymentTypePERMANENT, StartDate: day(2024, 1, 2),
		Pay:         &PayInput{Basis: PayMonthly, Rate: 12_000_000},
		BankDetails: &BankDetailsInput{AccountHolder: "Wanjiku Kariuki", BankName: "Equity", AccountNumber: "0123 4567 89", Branch: ptr("Kenyatta Ave")}}
}

func isBadInput(err error, field string) bool {
	e, ok := apperr.As(err)
	return ok && e.Code == apperr.BadUserInput && e.Field == field
}

func TestCreateStaff(t *testing.T) {
	f := setup(t)
	in := f.newStaff()
	in.Account = &StaffAccountInput{Username: "wkariuki", Password: "a-long-password-1", Roles: []string{"nurse"}}
	m, err := f.svc.Create(f.hr, in)
	if err != nil {
		t.Fatal(err)
	}
	if m.GivenName != "Wanjiku" || *m.LicenceNumber != "NCK12345" || *m.BankAccountNumber != "0123456789" ||
		*m.PayBasis != staff.PayBasisMONTHLY || *m.PayRate != 12_000_000 || !m.Active || !m.StartDate.Equal(day(2024, 1, 2)) {
		t.Fatalf("created: %+v", m)
	}
	u := f.client.User.Query().Where(user.Username("wkariuki")).WithStaff().OnlyX(f.system)
	if u.Edges.Staff == nil || u.Edges.Staff.ID != m.ID || len(u.Roles) != 1 || u.Roles[0] != "nurse" || !u.Active {
		t.Fatalf("login: %+v", u)
	}
	for name, ctx := range map[string]context.Context{"doctor": f.doctor, "inactive hr": f.old, "anonymous": context.Background()} {
		in := f.newStaff()
		in.LicenceNumber = ptr("OTHER-1")
		if _, err := f.svc.Create(ctx, in); apperr.CodeOf(err) != apperr.Forbidden {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestBadStaffInputNamesTheFieldAndChangesNothing(t *testing.T) {
	f := setup(t)
	if _, err := f.svc.Create(f.hr, f.newStaff()); err != nil {
		t.Fatal(err)
	}
	staffBefore, usersBefore := f.client.Staff.Query().CountX(f.system), f.client.User.Query().CountX(f.system)
	for field, change := range map[string]func(*CreateStaffInput){
		"input.givenName":        func(in *CreateStaffInput) { in.GivenName = " " },
		"input.kind":             func(in *CreateStaffInput) { in.Kind = "SURGEON" },
		"input.departmentId":     func(in *CreateStaffInput) { in.DepartmentID = "dep_01ARZ3NDEKTSV4RRFFQ69G5FAV" },
		"input.email":            func(in *CreateStaffInput) { in.Email = ptr("not an address") },
		"input.licenceNumber":    func(in *CreateStaffInput) { in.LicenceNumber = ptr("Nck 123 45") }, // taken: case and spaces differ only
		"input.licenceExpiresOn": func(in *CreateStaffInput) { in.LicenceExpiresOn = ptr(day(2023, 12, 31)) },
		"input.licenceIssuer":    func(in *CreateStaffInput) { in.LicenceIssuer = nil },
		"input.employmentType":   func(in *CreateStaffInput) { in.EmploymentType = "SEASONAL" },
		"input.endDate":          func(in *CreateStaffInput) { in.EndDate = ptr(day(2024, 1, 1)) },
		"input.pay.rate":         func(in *CreateStaffInput) { in.Pay.Rate = -1 },
		"input.pay.basis":        func(in *CreateStaffInput) { in.Pay.Basis = "WEEKLY" },
		"input.specialties":      func(in *CreateStaffInput) { in.Specialties = []string{"Midwifery", "midwifery"} },
		"input.bankDetails.accountNumber": func(in *CreateStaffInput) {
			in.BankDetails.AccountNumber = "12;DROP"
		},
		"input.account.password": func(in *CreateStaffInput) {
			in.Account = &StaffAccountInput{Username: "x1", Password: "short", Roles: []string{"nurse"}}
		},
		"input.account.roles": func(in *CreateStaffInput) {
			in.Account = &StaffAccountInput{Username: "x2", Password: "a-long-password-1", Roles: []string{"admin"}}
		},
		"input.userId": func(in *CreateStaffInput) { in.UserID = ptr("usr_01ARZ3NDEKTSV4RRFFQ69G5FAV") },
	} {
		in := f.newStaff()
		if field != "input.licenceNumber" {
			in.LicenceNumber = ptr("FRESH-1")
		}
		change(&in)
		if _, err := f.svc.Create(f.hr, in); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	// Patients and integrators are not roles for staff, whoever grants them.
	in := f.newStaff()
	in.LicenceNumber = ptr("FRESH-2")
	in.Account = &StaffAccountInput{Username: "x3", Password: "a-long-password-1", Roles: []string{"patient"}}
	if _, err := f.svc.Create(f.admin, in); !isBadInput(err, "input.account.roles") {
		t.Errorf("patient role: %v", err)
	}
	if s, u := f.client.Staff.Query().CountX(f.system), f.client.User.Query().CountX(f.system); s != staffBefore || u != usersBefore {
		t.Fatalf("bad input wrote %d staff and %d users", s-staffBefore, u-usersBefore)
	}
	// An administrator may grant admin.
	in.Account.Roles = []string{"admin"}
	if _, err := f.svc.Create(f.admin, in); err != nil {
		t.Fatalf("admin granting admin: %v", err)
	}
}

func TestUpdateStaff(t *testing.T) {
	f := setup(t)
	in := f.newStaff()
	in.Account = &StaffAccountInput{Username: "wkariuki", Password: "a-long-password-1", Roles: []string{"nurse"}}
	m, err := f.svc.Create(f.hr, in)
	if err != nil {
		t.Fatal(err)
	}
	// Nothing changes on refusal.
	for field, up := range map[string]UpdateStaffInput{
		"input.endDate":          {EndDate: graphql.OmittableOf(ptr(day(2023, 1, 1)))},
		"input.startDate":        {StartDate: graphql.OmittableOf[*time.Time](nil)},
		"input.familyName":       {FamilyName: graphql.OmittableOf[*string](nil)},
		"input.employmentType":   {EmploymentType: graphql.OmittableOf[*staff.EmploymentType](nil)},
		"input.licenceExpiresOn": {LicenceExpiresOn: graphql.OmittableOf[*time.Time](nil)},
		"input.pay.rate":         {Pay: graphql.OmittableOf(&PayInput{Basis: PayHourly, Rate: -500})},
		"input.roles":            {Roles: graphql.OmittableOf([]string{"nurse", "no-such-role"})},
	} {
		up.GivenName = graphql.OmittableOf(ptr("Changed"))
		if _, err := f.svc.Update(f.hr, m.ID, up); !isBadInput(err, field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	// An HR officer does not change their own login's roles.
	own := f.newStaff()
	own.LicenceNumber, own.LicenceIssuer, own.LicenceExpiresOn = nil, nil, nil
	own.Account = &StaffAccountInput{Username: "hr2", Password: "a-long-password-1", Roles: []string{"hr"}}
	o, err := f.svc.Create(f.hr, own)
	if err != nil {
		t.Fatal(err)
	}
	login := f.client.User.Query().Where(user.Username("hr2")).OnlyX(f.system)
	self := auth.WithViewer(context.Background(), &auth.Viewer{UserID: login.ID, Username: "hr2", Roles: []string{"hr"}, StaffID: f.hrID})
	if _, err := f.svc.Update(self, o.ID, UpdateStaffInput{Roles: graphql.OmittableOf([]string{"hr", "payroll"})}); !isBadInput(err, "input.roles") {
		t.Fatalf("own roles: %v", err)
	}
	if got := f.client.Staff.GetX(f.system, m.ID); got.GivenName != "Wanjiku" {
		t.Fatalf("a refused update wrote: %+v", got)
	}
	if len(f.ended.users) != 0 {
		t.Fatalf("a refused update ended sessions: %v", f.ended.users)
	}
	up, err := f.svc.Update(f.hr, m.ID, UpdateStaffInput{Pay: graphql.OmittableOf(&PayInput{Basis: PayHourly, Rate: 150_000}),
		BankDetails: graphql.OmittableOf[*BankDetailsInput](nil), Roles: graphql.OmittableOf([]string{"nurse", "payroll"})})
	if err != nil {
		t.Fatal(err)
	}
	if *up.PayBasis != staff.PayBasisHOURLY || *up.PayRate != 150_000 || up.BankAccountNumber != nil || up.GivenName != "Wanjiku" {
		t.Fatalf("updated: %+v", up)
	}
	u := f.client.User.Query().Where(user.Username("wkariuki")).OnlyX(f.system)
	if len(u.Roles) != 2 || len(f.ended.users) != 1 || f.ended.users[0] != u.ID {
		t.Fatalf("roles %v, ended %v", u.Roles, f.ended.users)
	}
}

// Two HR officers correcting different fields of one record at once both
// keep theirs: the record is read and written whole under a lock.
func TestConcurrentUpdatesBothApply(t *testing.T) {
	f := setup(t)
	m, err := f.svc.Create(f.hr, f.newStaff())
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		pos, phone := ptr("Position "+string(rune('A'+round))), ptr("+254 700 00"+string(rune('0'+round)))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, errs[0] = f.svc.Update(f.hr, m.ID, UpdateStaffInput{Position: graphql.OmittableOf(pos)})
		}()
		go func() {
			defer wg.Done()
			_, errs[1] = f.svc.Update(f.admin, m.ID, UpdateStaffInput{Phone: graphql.OmittableOf(phone)})
		}()
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		got := f.client.Staff.GetX(f.system, m.ID)
		if *got.Position != *pos || *got.Phone != *phone {
			t.Fatalf("round %d: a change was lost: position %v phone %v", round, *got.Position, *got.Phone)
		}
	}
}

func TestDeactivateAndReactivate(t *testing.T) {
	f := setup(t)
	in := f.newStaff()
	in.Account = &StaffAccountInput{Username: "wkariuki", Password: "a-long-password-1", Roles: []string{"nurse"}}
	m, err := f.svc.Create(f.hr, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Deactivate(f.hr, m.ID, " "); !isBadInput(err, "reason") {
		t.Fatalf("no reason: %v", err)
	}
	if _, err := f.svc.Deactivate(f.hr, f.hrID, "leaving"); !isBadInput(err, "id") {
		t.Fatalf("own record: %v", err)
	}
	if _, err := f.svc.Deactivate(f.doctor, m.ID, "leaving"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a doctor: %v", err)
	}
	// HR does not lock out an administrator; an administrator may.
	boss := f.newStaff()
	boss.LicenceNumber, boss.Kind = nil, staff.KindADMINISTRATOR
	boss.LicenceIssuer, boss.LicenceExpiresOn = nil, nil
	boss.Account = &StaffAccountInput{Username: "boss", Password: "a-long-password-1", Roles: []string{"admin"}}
	b, err := f.svc.Create(f.admin, boss)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Deactivate(f.hr, b.ID, "leaving"); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("hr deactivating an administrator: %v", err)
	}
	if f.client.Staff.GetX(f.system, b.ID).Active != true {
		t.Fatal("a refused deactivation deactivated")
	}
	if len(f.ended.users) != 0 {
		t.Fatalf("refusals ended sessions: %v", f.ended.users)
	}
	out, err := f.svc.Deactivate(f.hr, m.ID, "Contract ended")
	if err != nil {
		t.Fatal(err)
	}
	u := f.client.User.Query().Where(user.Username("wkariuki")).OnlyX(f.system)
	if out.Active || *out.DeactivationReason != "Contract ended" || u.Active || len(f.ended.users) != 1 || f.ended.users[0] != u.ID {
		t.Fatalf("deactivated: %+v, login active %v, ended %v", out, u.Active, f.ended.users)
	}
	if _, err := f.svc.Deactivate(f.hr, m.ID, "again"); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("twice: %v", err)
	}
	back, err := f.svc.Reactivate(f.admin, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	u = f.client.User.GetX(f.system, u.ID)
	if !back.Active || back.DeactivationReason != nil || !u.Active {
		t.Fatalf("reactivated: %+v, login active %v", back, u.Active)
	}
	if _, err := f.svc.Reactivate(f.hr, m.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("twice: %v", err)
	}
}

// Today is 2026-03-10 (the fixture's clock): expired licences and those
// expiring within the window, soonest first; the window's last day is in.
func TestExpiringLicences(t *testing.T) {
	f := setup(t)
	mk := func(name, lic string, exp time.Time, active bool) string {
		in := f.newStaff()
		in.FamilyName, in.LicenceNumber, in.LicenceExpiresOn, in.StartDate = name, ptr(lic), ptr(exp), day(2020, 1, 1)
		m, err := f.svc.Create(f.hr, in)
		if err != nil {
			t.Fatal(err)
		}
		if !active {
			if _, err := f.svc.Deactivate(f.hr, m.ID, "left"); err != nil {
				t.Fatal(err)
			}
		}
		return name
	}
	mk("Thirty", "L30", day(2026, 4, 9), true)     // today + 30
	mk("ThirtyOne", "L31", day(2026, 4, 10), true) // today + 31
	mk("Expired", "LEX", day(2025, 12, 1), true)
	mk("Today", "L0", day(2026, 3, 10), true)
	mk("Gone", "LGONE", day(2026, 3, 11), false)
	names := func(days int) []string {
		list, err := f.svc.ExpiringLicences(f.hr, days)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range list {
			out = append(out, m.FamilyName)
		}
		return out
	}
	if got := names(30); len(got) != 3 || got[0] != "Expired" || got[1] != "Today" || got[2] != "Thirty" {
		t.Fatalf("within 30: %v", got)
	}
	if got := names(0); len(got) != 2 || got[0] != "Expired" || got[1] != "Today" {
		t.Fatalf("within 0: %v", got)
	}
	if got := names(31); len(got) != 4 || got[3] != "ThirtyOne" {
		t.Fatalf("within 31: %v", got)
	}
	for _, bad := range []int{-1, MaxWithinDays + 1} {
		if _, err := f.svc.ExpiringLicences(f.hr, bad); !isBadInput(err, "withinDays") {
			t.Errorf("%d: %v", bad, err)
		}
	}
}
