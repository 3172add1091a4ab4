package reports_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/claim"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/problem"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/internal/reports"
)

// TestClaimsByHand: counts, the denial rate of decided claims, amounts,
// and the commonest denial reason.
func TestClaimsByHand(t *testing.T) {
	f := newFixture(t)
	py := f.c.Payer.Create().SetCode("NHIF").SetName("National Fund").SetKind(payer.KindGOVERNMENT).SaveX(f.sys)
	statuses := []claim.Status{claim.StatusAPPROVED, claim.StatusAPPROVED, claim.StatusPAID, claim.StatusDENIED,
		claim.StatusDENIED, claim.StatusDENIED, claim.StatusDENIED, claim.StatusDENIED, claim.StatusSUBMITTED}
	for i, st := range statuses {
		pol := f.c.InsurancePolicy.Create().SetPatient(f.pats[i]).SetPayer("NHIF").SetMemberNumber(fmt.Sprint(i)).
			SetValidFrom(date("2026-01-01")).SetPriority(1).SaveX(f.sys)
		c := f.c.Claim.Create().SetPatient(f.pats[i]).SetPolicy(pol).SetPayer(py).SetStatus(st).
			SetTotalClaimed(10000).SetSubmittedAt(at(10, 9))
		if st == claim.StatusDENIED {
			c.SetDenialCode("CO-50")
		} else if st != claim.StatusSUBMITTED {
			c.SetTotalApproved(8000)
		}
		c.ExecX(f.sys)
	}
	// Nine submitted by nine patients: three approved (one paid), five
	// denied, one waiting; 900.00 claimed, 240.00 approved. The approvals
	// are three: suppressed, and with them the denial rate (5/8 would give
	// the three back) and the amount approved (about three people). The
	// reason: five denials of five patients.
	f.check("claims", reports.Params{From: date("2026-03-01"), To: date("2026-03-31")},
		`period,by,group,submitted,previousSubmitted,approved,previousApproved,denied,previousDenied,denialRate,previousDenialRate,claimed,previousClaimed,approvedAmount,previousApprovedAmount
2026-03-01,denialReason,CO-50,-,0,-,0,5,0,-,-,500.00,0.00,-,0.00
2026-03-01,payer,National Fund,9,0,-,0,5,0,-,-,900.00,0.00,-,0.00
`)
}

// TestPharmacyStockByHand: value at cost, expiring and expired value, and
// stock-outs, of one location.
func TestPharmacyStockByHand(t *testing.T) {
	f := newFixture(t)
	loc := f.c.StockLocation.Create().SetCode("MAIN").SetName("Main store").SetKind(stocklocation.KindMAIN_STORE).SetActive(true).SaveX(f.sys)
	for i, b := range []struct {
		qty, cost int
		expiry    string
	}{{10, 100, "2027-01-01"}, {5, 200, "2026-05-01"}, {3, 50, "2026-03-01"}, {0, 70, "2027-01-01"}} {
		d := f.c.Drug.Create().SetCode(fmt.Sprintf("D%d", i)).SetGenericName(fmt.Sprintf("drug %d", i)).
			SetUnitOfIssue("tablet").SetReorderLevel(1).SetActive(true).SaveX(f.sys)
		f.c.StockBatch.Create().SetDrug(d).SetLocation(loc).SetLotNumber("L").SetExpiryDate(date(b.expiry)).
			SetQuantityOnHand(b.qty).SetUnitCost(int64(b.cost)).ExecX(f.sys)
	}
	// On hand 10×1.00 + 5×2.00 + 3×0.50 = 21.50; within 90 days of 31
	// March: 10.00; expired by then: 1.50; one drug with none left.
	f.check("pharmacy-stock", reports.Params{From: date("2026-03-31"), To: date("2026-03-31")},
		`location,value,expiringValue,expiredValue,stockOuts
Main store,21.50,10.00,1.50,1
`)
}

// TestConcurrentRunsAgree: many viewers asking at once get one answer.
func TestConcurrentRunsAgree(t *testing.T) {
	f := newFixture(t)
	p := reports.Params{From: date("2026-03-01"), To: date("2026-03-31"), Bucket: reports.BucketWeek}
	want := f.run("no-shows", p)
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := f.svc.Run(as("hospital_manager"), "no-shows", p)
			if err != nil {
				errs <- err.Error()
				return
			}
			if got := table(r); got != want {
				errs <- got
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestDiagnosesByHand: the commonest diagnoses by patients, a rare one
// suppressed, errors left out.
func TestDiagnosesByHand(t *testing.T) {
	f := newFixture(t)
	diagnose := func(i int, code, display string) *ent.ProblemCreate {
		return f.c.Problem.Create().SetPatient(f.pats[i]).SetIcd10Code(code).SetDisplay(display).SetCreatedAt(at(10, 9))
	}
	for i := 0; i < 7; i++ {
		diagnose(i, "I10", "Essential hypertension").ExecX(f.sys)
	}
	diagnose(0, "I10", "Essential hypertension").ExecX(f.sys) // the same patient twice counts once
	for i := 0; i < 5; i++ {
		diagnose(i, "E11", "Type 2 diabetes").ExecX(f.sys)
	}
	diagnose(8, "A00", "Cholera").ExecX(f.sys)
	diagnose(9, "J45", "Asthma").SetStatus(problem.StatusENTERED_IN_ERROR).ExecX(f.sys)
	f.check("diagnoses", reports.Params{From: date("2026-03-01"), To: date("2026-03-31")},
		`icd10Code,display,patients,previousPatients
I10,Essential hypertension,7,0
E11,Type 2 diabetes,5,0
A00,Cholera,-,0
`)
}
