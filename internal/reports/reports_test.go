package reports_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/cache"
	"github.com/hmis-dev/hmis/internal/reports"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
	"github.com/hmis-dev/hmis/policies"
)

// fixture is a hospital in Nairobi (UTC+3), so that local days and UTC
// days differ.
type fixture struct {
	t    *testing.T
	st   *store.Store
	c    *ent.Client
	sys  context.Context
	svc  *reports.Service
	loc  *time.Location
	seq  int
	pats []*ent.Patient
	now  time.Time
}

func newFixture(t *testing.T) *fixture {
	st := testenv.Store(t)
	enforcer, err := authz.NewEnforcer(policies.Model, policies.Policy)
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Africa/Nairobi")
	f := &fixture{t: t, st: st, c: st.Client, sys: auth.SystemContext(context.Background()), loc: loc,
		now: time.Date(2026, 4, 2, 9, 0, 0, 0, time.UTC)}
	f.svc = reports.NewService(st, cache.NewMemory(), enforcer.Allows, loc, time.Hour, []byte("reports test secret"))
	reports.ExactFigures(f.svc)
	f.svc.SetClock(func() time.Time { return f.now })
	for i := 0; i < 10; i++ {
		f.pats = append(f.pats, f.c.Patient.Create().SetMrn(fmt.Sprintf("7%08d", i)).SetGivenName("P").
			SetFamilyName(fmt.Sprint(i)).SetBirthDate(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)).
			SetSex(patient.SexFEMALE).SaveX(f.sys))
	}
	return f
}

func (f *fixture) charge(p *ent.Patient, dep *ent.Department, cat charge.Category, amount int64, at time.Time) *ent.Charge {
	f.seq++
	c := f.c.Charge.Create().SetPatient(p).SetSourceType(charge.SourceTypeMANUAL).SetSourceID(fmt.Sprintf("m%d", f.seq)).
		SetCode("X").SetDescription("x").SetCategory(cat).SetQuantity(1).SetUnitPrice(amount).SetAmount(amount).
		SetServiceAt(at)
	if dep != nil {
		c.SetDepartmentID(dep.ID)
	}
	return c.SaveX(f.sys)
}

func date(s string) time.Time {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return t
}

// table renders a report's rows as lines, "-" for a suppressed cell.
func table(r *reports.Report) string {
	var b strings.Builder
	b.WriteString(strings.Join(r.Columns, ",") + "\n")
	for _, row := range r.Rows {
		cells := make([]string, len(row))
		for i, c := range row {
			cells[i] = "-"
			if c != nil {
				cells[i] = *c
			}
		}
		b.WriteString(strings.Join(cells, ",") + "\n")
	}
	return b.String()
}

func as(roles ...string) context.Context {
	return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_x", Roles: roles})
}

// TestRevenueByHand: figures computed by hand, local days, the previous
// month beside each, reversals left out and small cells suppressed.
func TestRevenueByHand(t *testing.T) {
	f := newFixture(t)
	card := f.c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(f.sys)
	paed := f.c.Department.Create().SetCode("PED").SetName("Paediatrics").SaveX(f.sys)
	march := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	for _, p := range f.pats[:6] {
		f.charge(p, card, charge.CategoryCONSULTATION, 10000, march)
	}
	// 01:00 on 1 March in Nairobi, still February in UTC: March's.
	f.charge(f.pats[0], card, charge.CategoryCONSULTATION, 10000, time.Date(2026, 2, 28, 22, 0, 0, 0, time.UTC))
	// Two patients only: suppressed.
	f.charge(f.pats[6], paed, charge.CategoryLAB, 5000, march)
	f.charge(f.pats[7], paed, charge.CategoryLAB, 5000, march)
	// Reversed: not revenue.
	rev := f.charge(f.pats[1], card, charge.CategoryCONSULTATION, 99900, march)
	f.c.Charge.UpdateOne(rev).SetStatus(charge.StatusREVERSED).ExecX(f.sys)
	// February: five patients, 20.00 each.
	for _, p := range f.pats[:5] {
		f.charge(p, card, charge.CategoryCONSULTATION, 2000, time.Date(2026, 2, 10, 8, 0, 0, 0, time.UTC))
	}

	r, err := f.svc.Run(as("finance_officer"), "revenue", reports.Params{From: date("2026-03-01"), To: date("2026-03-31"), Bucket: reports.BucketMonth})
	if err != nil {
		t.Fatal(err)
	}
	want := `period,by,group,revenue,previousRevenue
2026-03-01,category,CONSULTATION,700.00,100.00
2026-03-01,category,LAB,-,0.00
2026-03-01,department,Cardiology,700.00,100.00
2026-03-01,department,Paediatrics,-,0.00
2026-03-01,payer,Patients (self-pay),800.00,100.00
`
	if got := table(r); got != want {
		t.Errorf("revenue:\n%s\nwant:\n%s", got, want)
	}
	if r.SuppressedCells != 2 {
		t.Errorf("suppressed %d cells, want 2", r.SuppressedCells)
	}
	if r.PreviousFrom == nil || !r.PreviousFrom.Equal(date("2026-02-01")) || !r.PreviousTo.Equal(date("2026-02-28")) {
		t.Errorf("previous period %v..%v", r.PreviousFrom, r.PreviousTo)
	}
	if !r.ComputedAt.Equal(f.now) {
		t.Errorf("computedAt %v, want %v", r.ComputedAt, f.now)
	}

	// By department: only Cardiology's charges.
	r, err = f.svc.Run(as("finance_officer"), "revenue", reports.Params{From: date("2026-03-01"), To: date("2026-03-31"), DepartmentID: card.ID})
	if err != nil {
		t.Fatal(err)
	}
	if got := table(r); !strings.Contains(got, "department,Cardiology,700.00,100.00") || strings.Contains(got, "Paediatrics") {
		t.Errorf("revenue of Cardiology:\n%s", got)
	}
}

// TestCacheHitAndInvalidation: a second run is the cached answer with its
// time; a published change (an outbox event) makes the next run recompute.
func TestCacheHitAndInvalidation(t *testing.T) {
	f := newFixture(t)
	card := f.c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(f.sys)
	at := time.Date(2026, 3, 10, 8, 0, 0, 0, time.UTC)
	for _, p := range f.pats[:5] {
		f.charge(p, card, charge.CategoryCONSULTATION, 10000, at)
	}
	params := reports.Params{From: date("2026-03-01"), To: date("2026-03-31")}
	first, err := f.svc.Run(as("finance_officer"), "revenue", params)
	if err != nil {
		t.Fatal(err)
	}
	computed := f.now
	f.now = f.now.Add(time.Minute)
	f.charge(f.pats[5], card, charge.CategoryCONSULTATION, 10000, at)
	second, err := f.svc.Run(as("finance_officer"), "revenue", params)
	if err != nil {
		t.Fatal(err)
	}
	if !second.ComputedAt.Equal(computed) || table(second) != table(first) {
		t.Errorf("second run was not the cached answer: %v\n%s", second.ComputedAt, table(second))
	}
	f.c.OutboxEvent.Create().SetTopic("billing").SetType("ChargeCaptured").SetPayload([]byte("{}")).ExecX(f.sys)
	third, err := f.svc.Run(as("finance_officer"), "revenue", params)
	if err != nil {
		t.Fatal(err)
	}
	if !third.ComputedAt.Equal(f.now) || !strings.Contains(table(third), "department,Cardiology,600.00") {
		t.Errorf("after a change: computed %v\n%s", third.ComputedAt, table(third))
	}
}

// TestDepartmentScope: a clinician reports on their own department only, a
// ward manager on the ones they manage, and neither on a report that cannot
// be narrowed to a department.
func TestDepartmentScope(t *testing.T) {
	f := newFixture(t)
	gen := f.c.Department.Create().SetCode("GEN").SetName("General").SaveX(f.sys)
	car := f.c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(f.sys)
	doc := f.c.Staff.Create().SetGivenName("D").SetFamilyName("D").SetKind(staff.KindDOCTOR).SetDepartment(gen).SaveX(f.sys)
	mgr := f.c.Staff.Create().SetGivenName("M").SetFamilyName("M").SetKind(staff.KindNURSE).SetDepartment(gen).SaveX(f.sys)
	f.c.Department.UpdateOne(car).SetManager(mgr).ExecX(f.sys)
	ctxOf := func(role, staffID string) context.Context {
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + role, Roles: []string{role}, StaffID: staffID})
	}
	params := func(dep string) reports.Params {
		return reports.Params{From: date("2026-03-01"), To: date("2026-03-31"), DepartmentID: dep}
	}
	r, err := f.svc.Run(ctxOf("doctor", doc.ID), "no-shows", params(""))
	if err != nil || r.DepartmentID != gen.ID {
		t.Fatalf("doctor's own department: %v %+v", err, r)
	}
	if _, err := f.svc.Run(ctxOf("doctor", doc.ID), "no-shows", params(car.ID)); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("doctor on another department: %v", err)
	}
	if _, err := f.svc.Run(ctxOf("ward_manager", mgr.ID), "no-shows", params(car.ID)); err != nil {
		t.Errorf("ward manager on the department they manage: %v", err)
	}
	if _, err := f.svc.Run(ctxOf("ward_manager", mgr.ID), "no-shows", params("")); apperr.CodeOf(err) != apperr.BadUserInput {
		t.Errorf("ward manager of two departments naming none: %v", err)
	}
	if _, err := f.svc.Run(ctxOf("ward_manager", mgr.ID), "collections", params("")); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("ward manager on a hospital-wide report: %v", err)
	}
	if _, err := f.svc.Run(ctxOf("hospital_manager", ""), "no-shows", params(car.ID)); err != nil {
		t.Errorf("hospital manager: %v", err)
	}
}

// TestBadInputNamesTheField: each refusal names the field as sent.
func TestBadInputNamesTheField(t *testing.T) {
	f := newFixture(t)
	cases := map[string]reports.Params{
		"input.to":           {From: date("2026-03-02"), To: date("2026-03-01")},
		"input.bucket":       {From: date("2026-03-01"), To: date("2026-03-02"), Bucket: "HOUR"},
		"input.departmentId": {From: date("2026-03-01"), To: date("2026-03-02"), DepartmentID: "bad"},
		"input.payerId":      {From: date("2026-03-01"), To: date("2026-03-02"), PayerID: "bad"},
	}
	for field, p := range cases {
		_, err := f.svc.Run(as("hospital_manager"), "revenue", p)
		e, ok := apperr.As(err)
		if !ok || e.Code != apperr.BadUserInput || e.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	_, err := f.svc.Run(as("hospital_manager"), "census", reports.Params{From: date("2026-03-01"), To: date("2026-03-02"), PayerID: "pyr_01ARZ3NDEKTSV4RRFFQ69G5FAV"})
	if e, ok := apperr.As(err); !ok || e.Field != "input.payerId" {
		t.Errorf("a payer on a report not kept by payer: %v", err)
	}
}

// TestEveryReportRuns runs each report, as a series where it is one, so
// that every query is checked against the backend's SQL.
func TestEveryReportRuns(t *testing.T) {
	f := newFixture(t)
	for _, info := range reports.Catalog() {
		for _, b := range []reports.Bucket{reports.BucketNone, reports.BucketWeek} {
			r, err := f.svc.Run(as("hospital_manager"), info.Name, reports.Params{From: date("2026-03-01"), To: date("2026-03-20"), Bucket: b})
			if err != nil {
				t.Errorf("%s (%q): %v", info.Name, b, err)
				continue
			}
			if len(r.Columns) == 0 {
				t.Errorf("%s: no columns", info.Name)
			}
		}
	}
}
