package reports_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/reports"
	"github.com/hmis-dev/hmis/internal/testenv"
	"github.com/hmis-dev/hmis/policies"
)

// noCache never answers, so that every run of a benchmark computes.
type noCache struct{}

func (noCache) Get(context.Context, string) (string, bool, error)                   { return "", false, nil }
func (noCache) Set(context.Context, string, string, time.Duration) error            { return nil }
func (noCache) Incr(context.Context, string, time.Duration) (int64, error)          { return 0, nil }
func (noCache) Del(context.Context, ...string) error                                { return nil }
func (noCache) Ping(context.Context) error                                          { return nil }
func (noCache) Release(context.Context, string) error                               { return nil }
func (noCache) Reserve(context.Context, string, int64, time.Duration) (bool, error) { return true, nil }

// BenchmarkReports runs every report over a year of a busy hospital:
// HMIS_BENCH_APPOINTMENTS appointments (default 200000), as many lab
// results, a quarter as many charges, and admissions, encounters and
// diagnoses beside them. Each report is asked for the whole year by month,
// without the cache.
func BenchmarkReports(b *testing.B) {
	n := 200_000
	if v, err := strconv.Atoi(os.Getenv("HMIS_BENCH_APPOINTMENTS")); err == nil && v > 0 {
		n = v
	}
	st := testenv.Store(b)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	start := time.Now()
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	var deps []*ent.Department
	for i := 0; i < 6; i++ {
		deps = append(deps, c.Department.Create().SetCode(fmt.Sprintf("D%d", i)).SetName(fmt.Sprintf("Department %d", i)).SaveX(sys))
	}
	doc := c.Staff.Create().SetGivenName("D").SetFamilyName("D").SetKind(staff.KindDOCTOR).SetDepartment(deps[0]).SaveX(sys)
	const patients = 20_000
	pats := make([]string, 0, patients)
	for k := 0; k < patients; k += 1000 {
		bulk := make([]*ent.PatientCreate, 0, 1000)
		for i := k; i < k+1000; i++ {
			bulk = append(bulk, c.Patient.Create().SetMrn(fmt.Sprintf("B%08d", i)).SetGivenName("P").SetFamilyName("P").
				SetBirthDate(time.Date(1930+i%90, time.Month(1+i%12), 1+i%28, 0, 0, 0, 0, time.UTC)).
				SetSex([]patient.Sex{patient.SexFEMALE, patient.SexMALE}[i%2]))
		}
		for _, p := range c.Patient.CreateBulk(bulk...).SaveX(sys) {
			pats = append(pats, p.ID)
		}
	}
	year := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	when := func(i int) time.Time { return year.Add(time.Duration(i%(365*24*60)) * time.Minute * 1) }
	statuses := []appointment.Status{appointment.StatusCOMPLETED, appointment.StatusCOMPLETED, appointment.StatusCOMPLETED,
		appointment.StatusNO_SHOW, appointment.StatusCANCELLED}
	for k := 0; k < n; k += 1000 {
		bulk := make([]*ent.AppointmentCreate, 0, 1000)
		for i := k; i < k+1000 && i < n; i++ {
			at := year.Add(time.Duration(i) * (365 * 24 * time.Hour / time.Duration(n)))
			a := c.Appointment.Create().SetPatientID(pats[i%patients]).SetProviderID(doc.ID).SetDepartmentID(deps[i%6].ID).
				SetStartAt(at).SetEndAt(at.Add(15 * time.Minute)).SetStatus(statuses[i%5])
			if statuses[i%5] == appointment.StatusCOMPLETED {
				a.SetCheckedInAt(at.Add(-time.Duration(i%40) * time.Minute)).SetStartedAt(at)
			}
			bulk = append(bulk, a)
		}
		must(c.Appointment.CreateBulk(bulk...).Exec(sys))
	}
	var tests []*ent.LabTest
	for i := 0; i < 20; i++ {
		tests = append(tests, c.LabTest.Create().SetCode(fmt.Sprintf("T%d", i)).SetName(fmt.Sprintf("Test %d", i)).
			SetSpecimenType(labtest.SpecimenTypeSERUM).SetResultKind(labtest.ResultKindNUMERIC).SetDecimals(1).
			SetPrice(100).SetTurnaroundMinutes(60+i*10).SetActive(true).SaveX(sys))
	}
	for k := 0; k < n; k += 1000 {
		orders := make([]*ent.LabOrderCreate, 0, 250)
		for i := k; i < k+1000 && i < n; i += 4 {
			orders = append(orders, c.LabOrder.Create().SetPatientID(pats[i%patients]).SetOrderedByID(doc.ID).SetOrderedAt(when(i*7)))
		}
		saved := c.LabOrder.CreateBulk(orders...).SaveX(sys)
		items := make([]*ent.LabOrderItemCreate, 0, 1000)
		for i := k; i < k+1000 && i < n; i++ {
			o := saved[(i-k)/4]
			m := 20 + (i*37)%200
			items = append(items, c.LabOrderItem.Create().SetPatientID(o.PatientID).SetOrderID(o.ID).SetTestID(tests[i%20].ID).
				SetOrderedAt(o.OrderedAt).SetVerifiedAt(o.OrderedAt.Add(time.Duration(m)*time.Minute)).SetTurnaroundMinutes(m))
		}
		must(c.LabOrderItem.CreateBulk(items...).Exec(sys))
	}
	cats := []charge.Category{charge.CategoryCONSULTATION, charge.CategoryLAB, charge.CategoryDRUG, charge.CategoryPROCEDURE}
	for k := 0; k < n/4; k += 1000 {
		bulk := make([]*ent.ChargeCreate, 0, 1000)
		for i := k; i < k+1000 && i < n/4; i++ {
			bulk = append(bulk, c.Charge.Create().SetPatientID(pats[i%patients]).SetSourceType(charge.SourceTypeMANUAL).
				SetSourceID(fmt.Sprintf("b%d", i)).SetCode("X").SetDescription("x").SetCategory(cats[i%4]).SetQuantity(1).
				SetUnitPrice(int64(1000+i%9000)).SetAmount(int64(1000+i%9000)).SetServiceAt(when(i*13)).SetDepartmentID(deps[i%6].ID))
		}
		must(c.Charge.CreateBulk(bulk...).Exec(sys))
	}
	ward := c.Ward.Create().SetCode("W").SetName("Ward").SetDepartment(deps[0]).SaveX(sys)
	var beds []*ent.Bed
	for i := 0; i < 40; i++ {
		beds = append(beds, c.Bed.Create().SetWard(ward).SetCode(fmt.Sprintf("B%d", i)).SetStatusChangedAt(year).SaveX(sys))
	}
	// Admissions back to back in each bed, all discharged, each with its
	// stretch in the bed history.
	var adms []*ent.AdmissionCreate
	var stays []*ent.BedAssignmentCreate
	flush := func() {
		made, err := c.Admission.CreateBulk(adms...).Save(sys)
		must(err)
		for i, a := range made {
			stays[i].SetAdmissionID(a.ID)
		}
		must(c.BedAssignment.CreateBulk(stays...).Exec(sys))
		adms, stays = adms[:0], stays[:0]
	}
	admitted := 0
	for bed := range beds {
		for t := year.Add(time.Duration(bed) * time.Hour); t.Before(year.AddDate(1, 0, 0)); t = t.Add(4 * 24 * time.Hour) {
			pat := pats[admitted%patients]
			admitted++
			adms = append(adms, c.Admission.Create().SetPatientID(pat).SetBedID(beds[bed].ID).SetAttendingID(doc.ID).
				SetAdmittedAt(t).SetDischargedAt(t.Add(3*24*time.Hour)).SetStatus(admission.StatusDISCHARGED).
				SetReason("x").SetAdmissionType(admission.AdmissionTypeELECTIVE))
			stays = append(stays, c.BedAssignment.Create().SetPatientID(pat).SetBedID(beds[bed].ID).
				SetFromAt(t).SetToAt(t.Add(3*24*time.Hour)))
			if len(adms) == 1000 {
				flush()
			}
		}
	}
	flush()
	b.Logf("dataset: %d appointments, %d lab results, %d charges, %d patients, built in %v on %s",
		n, n, n/4, patients, time.Since(start).Round(time.Second), st.Dialect)

	enforcer, err := authz.NewEnforcer(policies.Model, policies.Policy)
	must(err)
	svc := reports.NewService(st, noCache{}, enforcer.Allows, time.UTC, time.Minute, []byte("reports bench secret"))
	ctx := as("hospital_manager")
	params := reports.Params{From: date("2026-01-01"), To: date("2026-12-31"), Bucket: reports.BucketMonth}
	b.ResetTimer()
	for _, info := range reports.Catalog() {
		b.Run(info.Name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := svc.Run(ctx, info.Name, params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
