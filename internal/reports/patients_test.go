package reports_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoiceadjustment"
	"github.com/hmis-dev/hmis/ent/invoicediscount"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/reports"
)

// TestVisitsAndDemographicsByHand: new and returning outpatients, and the
// patients seen by age band and sex.
func TestVisitsAndDemographicsByHand(t *testing.T) {
	f := newFixture(t)
	gen := f.c.Department.Create().SetCode("GEN").SetName("General").SaveX(f.sys)
	visit := func(i int, when time.Time) {
		f.c.Encounter.Create().SetPatient(f.pats[i]).SetType(encounter.TypeOUTPATIENT).SetStartedAt(when).
			SetDepartment(gen).ExecX(f.sys)
	}
	// Patients 0-4 came in February too; in March they return, and 5-9
	// come for the first time; 5 comes twice (new, then returning).
	for i := 0; i < 5; i++ {
		visit(i, at(1, 8).AddDate(0, -1, 0))
		visit(i, at(10, 8))
	}
	for i := 5; i < 10; i++ {
		visit(i, at(11, 8))
	}
	visit(5, at(12, 8))
	f.check("visits", reports.Params{From: date("2026-03-01"), To: date("2026-03-31")},
		`period,department,visits,previousVisits,newPatients,previousNewPatients,returning,previousReturning
2026-03-01,General,11,5,5,5,6,0
`)
	// Born 1980-01-01 (all ten): 46 on 31 March 2026. Make patients 0-5
	// 10 years old and male.
	for i := 0; i < 6; i++ {
		f.c.Patient.UpdateOne(f.pats[i]).SetBirthDate(time.Date(2016, 3, 31, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexMALE).ExecX(f.sys)
	}
	// Patient 0 turns 10 on 31 March: 10 at the end of March, so 5-14.
	// In February (to 28 February): patients 0-4, 9 years old, male.
	f.check("demographics", reports.Params{From: date("2026-03-01"), To: date("2026-03-31")},
		`ageBand,sex,patients,previousPatients
45-64,FEMALE,-,0
5-14,MALE,6,5
`)
}

// TestCollectionsAndDiscountsByHand: money in by method, refunds out, and
// discounts and write-offs.
func TestCollectionsAndDiscountsByHand(t *testing.T) {
	f := newFixture(t)
	gen := f.c.Department.Create().SetCode("GEN").SetName("General").SaveX(f.sys)
	clerk := f.c.Staff.Create().SetGivenName("C").SetFamilyName("C").SetKind(staff.KindBILLING_CLERK).SetDepartment(gen).SaveX(f.sys)
	for i := 0; i < 6; i++ {
		method := payment.MethodCASH
		if i == 5 {
			method = payment.MethodCARD
		}
		f.c.Payment.Create().SetPatient(f.pats[i]).SetMethod(method).SetAmount(int64(1000 * (i + 1))).
			SetIdempotencyKey(fmt.Sprintf("k%d", i)).SetRecordedByID(clerk.ID).SetReceivedAt(at(10, 9)).ExecX(f.sys)
	}
	// A payment from credit moves no money.
	f.c.Payment.Create().SetPatient(f.pats[0]).SetMethod(payment.MethodCREDIT).SetAmount(777).
		SetIdempotencyKey("credit").SetRecordedByID(clerk.ID).SetReceivedAt(at(10, 9)).ExecX(f.sys)
	// Cash: 10+20+30+40+50 = 150.00 from five patients; card: one, suppressed.
	f.check("collections", reports.Params{From: date("2026-03-01"), To: date("2026-03-31")},
		`period,method,payments,previousPayments,amount,previousAmount
2026-03-01,CARD,-,0,-,0.00
2026-03-01,CASH,5,0,150.00,0.00
`)
	for i := 0; i < 5; i++ {
		inv := f.c.Invoice.Create().SetPatient(f.pats[i]).SetStatus(invoice.StatusISSUED).SetIssuedAt(at(2, 9)).
			SetCreatedByID(clerk.ID).SaveX(f.sys)
		f.c.InvoiceDiscount.Create().SetPatient(f.pats[i]).SetInvoice(inv).SetAmount(500).SetReason("x").
			SetRequestedByID(clerk.ID).SetStatus(invoicediscount.StatusAPPROVED).SetApprovedAt(at(3, 9)).ExecX(f.sys)
		f.c.InvoiceAdjustment.Create().SetPatient(f.pats[i]).SetInvoice(inv).SetKind(invoiceadjustment.KindBAD_DEBT).
			SetAmount(100).SetRecordedByID(clerk.ID).SetCreatedAt(at(20, 9)).ExecX(f.sys)
	}
	// Requested, not approved: not a discount yet.
	inv := f.c.Invoice.Create().SetPatient(f.pats[9]).SetCreatedByID(clerk.ID).SaveX(f.sys)
	f.c.InvoiceDiscount.Create().SetPatient(f.pats[9]).SetInvoice(inv).SetAmount(999).SetReason("x").SetRequestedByID(clerk.ID).ExecX(f.sys)
	// Adjustments are dated by their creation.
	f.check("discounts", reports.Params{From: date("2026-03-01"), To: date("2026-03-31")},
		`period,kind,count,previousCount,amount,previousAmount
2026-03-01,BAD_DEBT,5,0,5.00,0.00
2026-03-01,DISCOUNT,5,0,25.00,0.00
`)
}
