package reports_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/attendancerecord"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/reports"
)

func at(day, hour int) time.Time { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC) }

func (f *fixture) run(name string, p reports.Params) string {
	f.t.Helper()
	r, err := f.svc.Run(as("hospital_manager"), name, p)
	if err != nil {
		f.t.Fatalf("%s: %v", name, err)
	}
	return table(r)
}

func (f *fixture) check(name string, p reports.Params, want string) {
	f.t.Helper()
	if got := f.run(name, p); got != want {
		f.t.Errorf("%s:\n%s\nwant:\n%s", name, got, want)
	}
}

// TestInpatientReportsByHand: census, admissions (length of stay,
// readmissions) and bed occupancy of one ward, figures worked out by hand.
func TestInpatientReportsByHand(t *testing.T) {
	f := newFixture(t)
	gen := f.c.Department.Create().SetCode("GEN").SetName("General").SaveX(f.sys)
	doc := f.c.Staff.Create().SetGivenName("D").SetFamilyName("D").SetKind(staff.KindDOCTOR).SetDepartment(gen).SaveX(f.sys)
	ward := f.c.Ward.Create().SetCode("W1").SetName("Ward One").SetDepartment(gen).SaveX(f.sys)
	var beds []*ent.Bed
	for i := 0; i < 10; i++ {
		beds = append(beds, f.c.Bed.Create().SetWard(ward).SetCode(fmt.Sprintf("B%d", i)).SetStatusChangedAt(at(1, 0)).SaveX(f.sys))
	}
	admit := func(bed int, p *ent.Patient, in time.Time, out *time.Time) {
		c := f.c.Admission.Create().SetPatient(p).SetBed(beds[bed]).SetAttending(doc).SetAdmittedAt(in).
			SetReason("x").SetAdmissionType(admission.AdmissionTypeEMERGENCY)
		if out != nil {
			c.SetDischargedAt(*out).SetStatus(admission.StatusDISCHARGED)
		}
		stay := c.SaveX(f.sys)
		f.c.BedAssignment.Create().SetPatient(p).SetAdmission(stay).SetBed(beds[bed]).SetFromAt(in).SetNillableToAt(out).ExecX(f.sys)
	}
	ptr := func(t time.Time) *time.Time { return &t }
	admit(0, f.pats[0], at(2, 12), ptr(at(5, 12))) // 3 days
	admit(1, f.pats[1], at(2, 12), ptr(at(4, 12))) // 2 days
	admit(2, f.pats[2], at(3, 12), ptr(at(7, 12))) // 4 days
	admit(3, f.pats[3], at(3, 12), ptr(at(6, 12))) // 3 days
	admit(4, f.pats[4], at(4, 12), nil)            // still in
	admit(5, f.pats[5], at(4, 12), ptr(at(9, 12))) // 5 days
	admit(6, f.pats[0], at(20, 12), nil)           // back 15 days after discharge
	f.now = at(31, 12)

	// Seven admissions of six patients; five discharges averaging
	// (3+2+4+3+5)/5 = 3.4 days; one readmission, a count below five.
	f.check("admissions", reports.Params{From: date("2026-03-01"), To: date("2026-03-31")},
		`period,ward,admissions,previousAdmissions,discharges,previousDischarges,averageLengthOfStayDays,previousAverageLengthOfStayDays,readmissions30Days,previousReadmissions30Days
2026-03-01,Ward One,7,0,5,0,3.4,-,-,0
`)
	// At the end of 4 March, Nairobi time (21:00 UTC): patients 0, 2, 3,
	// 4 and 5; patient 1 left at noon. The day before: 0, 1, 2, 3 (four:
	// suppressed).
	f.check("census", reports.Params{From: date("2026-03-04"), To: date("2026-03-04")},
		`period,ward,inpatients,previousInpatients
2026-03-04,Ward One,5,-
`)
	// 4 March local is 3 March 21:00 to 4 March 21:00 UTC: 24 h (0) + 15 h
	// (1) + 24 h (2) + 24 h (3) + 9 h (4) + 9 h (5) = 105 h = 4.375 bed-days
	// of 10 beds. 3 March: four patients, suppressed but for the beds.
	f.check("bed-occupancy", reports.Params{From: date("2026-03-04"), To: date("2026-03-04"), Bucket: reports.BucketDay},
		`period,ward,beds,previousBeds,occupiedBedDays,previousOccupiedBedDays,occupancy,previousOccupancy
2026-03-04,Ward One,10,10,4.4,-,0.4375,-
`)
}

// TestOutpatientAndLabReportsByHand: no-shows with waits, and lab
// turnaround percentiles by nearest rank.
func TestOutpatientAndLabReportsByHand(t *testing.T) {
	f := newFixture(t)
	gen := f.c.Department.Create().SetCode("GEN").SetName("General").SaveX(f.sys)
	doc := f.c.Staff.Create().SetGivenName("D").SetFamilyName("D").SetKind(staff.KindDOCTOR).SetDepartment(gen).SaveX(f.sys)
	book := func(i int, status appointment.Status, wait int) {
		start := at(10, 6).Add(time.Duration(i) * 30 * time.Minute)
		c := f.c.Appointment.Create().SetPatient(f.pats[i]).SetProvider(doc).SetDepartment(gen).
			SetStartAt(start).SetEndAt(start.Add(20 * time.Minute)).SetStatus(status)
		if wait > 0 {
			c.SetCheckedInAt(start.Add(-time.Duration(wait) * time.Minute)).SetStartedAt(start)
		}
		c.ExecX(f.sys)
	}
	book(0, appointment.StatusCANCELLED, 0)
	for i := 1; i <= 5; i++ {
		book(i, appointment.StatusNO_SHOW, 0)
	}
	for i, wait := range []int{15, 20, 10, 15} {
		book(6+i, appointment.StatusCOMPLETED, wait)
	}
	// Nine appointments (the cancelled one is not), five no-shows: 5/9;
	// waits average (15+20+10+15)/4 = 15.
	f.check("no-shows", reports.Params{From: date("2026-03-10"), To: date("2026-03-10")},
		`period,department,appointments,previousAppointments,noShows,previousNoShows,noShowRate,previousNoShowRate,averageWaitMinutes,previousAverageWaitMinutes
2026-03-10,General,9,0,5,0,0.5556,-,15.0,-
`)

	test := f.c.LabTest.Create().SetCode("T1").SetName("Test one").SetSpecimenType(labtest.SpecimenTypeSERUM).
		SetResultKind(labtest.ResultKindNUMERIC).SetDecimals(1).SetPrice(100).SetTurnaroundMinutes(60).SetActive(true).SaveX(f.sys)
	for i, minutes := range []int{120, 30, 70, 45, 90, 50} {
		order := f.c.LabOrder.Create().SetPatient(f.pats[i]).SetOrderedBy(doc).SetOrderedAt(at(12, 6)).SaveX(f.sys)
		f.c.LabOrderItem.Create().SetPatient(f.pats[i]).SetOrder(order).SetTest(test).SetOrderedAt(at(12, 6)).
			SetVerifiedAt(at(12, 6).Add(time.Duration(minutes) * time.Minute)).SetTurnaroundMinutes(minutes).ExecX(f.sys)
	}
	// Sorted: 30 45 50 70 90 120. Median: rank ceil(0.5×6) = 3 → 50; p90:
	// rank ceil(0.9×6) = 6 → 120; within 60 minutes: 3 of 6.
	f.check("lab-turnaround", reports.Params{From: date("2026-03-01"), To: date("2026-03-31")},
		`testCode,test,results,previousResults,medianMinutes,previousMedianMinutes,p90Minutes,previousP90Minutes,targetMinutes,previousTargetMinutes,withinTarget,previousWithinTarget
T1,Test one,6,0,50.0,-,120.0,-,60.0,-,0.5000,-
`)
}

// TestAttendanceAndAgeingByHand: attendance of a rostered day, and
// receivables aged by the days since issue.
func TestAttendanceAndAgeingByHand(t *testing.T) {
	f := newFixture(t)
	gen := f.c.Department.Create().SetCode("GEN").SetName("General").SaveX(f.sys)
	boss := f.c.Staff.Create().SetGivenName("B").SetFamilyName("B").SetKind(staff.KindNURSE).SetDepartment(gen).SaveX(f.sys)
	shift := f.c.ShiftDefinition.Create().SetCode("D").SetName("Day").SetKind(shiftdefinition.KindDAY).
		SetStartMinute(8 * 60).SetEndMinute(16 * 60).SaveX(f.sys)
	for i, overtime := range []int{30, 60, 0, 0, 30, -1} {
		m := f.c.Staff.Create().SetGivenName("N").SetFamilyName(fmt.Sprint(i)).SetKind(staff.KindNURSE).SetDepartment(gen).SaveX(f.sys)
		e := f.c.RosterEntry.Create().SetStaff(m).SetDepartment(gen).SetShift(shift).SetDate(date("2026-03-10")).
			SetStartAt(at(10, 5)).SetEndAt(at(10, 13)).SetAssignedByID(boss.ID).SaveX(f.sys)
		if overtime < 0 {
			continue // absent
		}
		f.c.AttendanceRecord.Create().SetStaff(m).SetRosterEntry(e).SetClockInAt(at(10, 5)).
			SetClockInSource(attendancerecord.ClockInSourceSELF).SetWorkedMinutes(480).SetOvertimeMinutes(overtime).ExecX(f.sys)
	}
	// Six rostered, five attended (5/6), 5 × 8 h worked, 2 h overtime.
	f.check("attendance", reports.Params{From: date("2026-03-10"), To: date("2026-03-10")},
		`period,department,rosteredShifts,previousRosteredShifts,attended,previousAttended,attendanceRate,previousAttendanceRate,workedHours,previousWorkedHours,overtimeHours,previousOvertimeHours
2026-03-10,General,6,0,5,0,0.8333,-,40.0,-,2.0,-
`)

	// Five invoices issued 10 days before the end of 31 March, each with
	// 30.00 of the patient's left; one issued 45 days before.
	for i := 0; i < 6; i++ {
		issued := time.Date(2026, 3, 21, 12, 0, 0, 0, time.UTC)
		if i == 5 {
			issued = time.Date(2026, 2, 14, 12, 0, 0, 0, time.UTC)
		}
		f.c.Invoice.Create().SetPatient(f.pats[i]).SetStatus(invoice.StatusISSUED).SetIssuedAt(issued).
			SetSubtotal(5000).SetTotal(5000).SetPatientTotal(5000).SetPatientPaid(2000).SetCreatedByID(boss.ID).ExecX(f.sys)
	}
	f.check("ar-ageing", reports.Params{From: date("2026-03-31"), To: date("2026-03-31")},
		`debtor,band,invoices,balance
Patients,0-30,5,150.00
Patients,31-60,-,-
`)
}

// TestCensusFollowsTheBedHistory: five patients moved from one ward to
// another on 10 March are counted, and their bed-days occupied, where they
// were on each day, not in the ward they are in now.
func TestCensusFollowsTheBedHistory(t *testing.T) {
	f := newFixture(t)
	gen := f.c.Department.Create().SetCode("GEN").SetName("General").SaveX(f.sys)
	doc := f.c.Staff.Create().SetGivenName("D").SetFamilyName("D").SetKind(staff.KindDOCTOR).SetDepartment(gen).SaveX(f.sys)
	one := f.c.Ward.Create().SetCode("W1").SetName("Ward One").SetDepartment(gen).SaveX(f.sys)
	two := f.c.Ward.Create().SetCode("W2").SetName("Ward Two").SetDepartment(gen).SaveX(f.sys)
	moved := at(10, 12)
	for i, p := range f.pats[:5] {
		from := f.c.Bed.Create().SetWard(one).SetCode(fmt.Sprintf("A%d", i)).SetStatusChangedAt(at(1, 0)).SaveX(f.sys)
		to := f.c.Bed.Create().SetWard(two).SetCode(fmt.Sprintf("B%d", i)).SetStatusChangedAt(at(1, 0)).SaveX(f.sys)
		stay := f.c.Admission.Create().SetPatient(p).SetBed(to).SetAttending(doc).SetAdmittedAt(at(2, 12)).
			SetReason("x").SetAdmissionType(admission.AdmissionTypeEMERGENCY).SaveX(f.sys)
		f.c.BedAssignment.Create().SetPatient(p).SetAdmission(stay).SetBed(from).SetFromAt(at(2, 12)).SetToAt(moved).ExecX(f.sys)
		f.c.BedAssignment.Create().SetPatient(p).SetAdmission(stay).SetBed(to).SetFromAt(moved).ExecX(f.sys)
	}
	f.now = at(31, 12)
	f.check("census", reports.Params{From: date("2026-03-05"), To: date("2026-03-05")},
		`period,ward,inpatients,previousInpatients
2026-03-05,Ward One,5,5
`)
	f.check("census", reports.Params{From: date("2026-03-12"), To: date("2026-03-12")},
		`period,ward,inpatients,previousInpatients
2026-03-12,Ward Two,5,5
`)
	// 5 March, local: five whole days in Ward One's five beds and none in
	// Ward Two's.
	f.check("bed-occupancy", reports.Params{From: date("2026-03-05"), To: date("2026-03-05")},
		`period,ward,beds,previousBeds,occupiedBedDays,previousOccupiedBedDays,occupancy,previousOccupancy
2026-03-05,Ward One,5,5,5.0,5.0,1.0000,1.0000
2026-03-05,Ward Two,5,5,0.0,0.0,0.0000,0.0000
`)
}
