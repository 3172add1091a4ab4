package payslipreport

import (
	"bytes"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/payrollrun"
	"github.com/hmis-dev/hmis/ent/payslip"
)

func TestPayslipRenders(t *testing.T) {
	for _, st := range []payrollrun.Status{payrollrun.StatusDRAFT, payrollrun.StatusAPPROVED, payrollrun.StatusPAID} {
		p := &ent.Payslip{ID: "psl_x", Period: "2026-11", PayBasis: payslip.PayBasisHOURLY, PayRate: 85_050, WorkedMinutes: 1020,
			OvertimeMinutes: 60, BasePay: 1_360_800, OvertimePay: 127_575, GrossPay: 1_488_375, Tax: 148_838, NetPay: 1_339_537}
		p.Edges.Staff = &ent.Staff{ID: "stf_x", GivenName: "Zoë", FamilyName: "Dvořák"}
		p.Edges.Run = &ent.PayrollRun{Status: st, PeriodStart: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), PeriodEnd: time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)}
		var buf bytes.Buffer
		if err := render(&buf, p, 30_000, "HMIS Hospital", time.UTC, time.Now()); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
			t.Fatalf("%s: not a PDF", st)
		}
	}
	for min, want := range map[int]string{0: "0.00", 30: "0.50", 1020: "17.00", 61: "1.01"} {
		if got := hours(min); got != want {
			t.Errorf("hours(%d) = %s, want %s", min, got, want)
		}
	}
}
