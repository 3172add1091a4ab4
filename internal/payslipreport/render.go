package payslipreport

import (
	"fmt"
	"io"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/payrollrun"
	"github.com/hmis-dev/hmis/ent/payslip"
	"github.com/hmis-dev/hmis/internal/input"
)

// Page geometry in millimetres, A4 portrait.
const (
	margin       = 15.0
	contentWidth = 210 - 2*margin
	lineHeight   = 6.0
	font         = "Helvetica"
)

// render writes the payslip: who, which month, the quantities it was
// computed from and each line, so that its owner can check it by hand.
func render(w io.Writer, p *ent.Payslip, carried int64, hospital string, loc *time.Location, now time.Time) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	tr := pdf.UnicodeTranslatorFromDescriptor("")
	m, run := p.Edges.Staff, p.Edges.Run
	title := "Payslip " + p.Period
	pdf.SetMargins(margin, margin, margin)
	pdf.SetTitle(title, true)
	pdf.SetCreator(hospital, true)
	pdf.SetCreationDate(now)
	pdf.SetModificationDate(now)
	pdf.SetFooterFunc(func() {
		pdf.SetY(-14)
		pdf.SetFont(font, "", 7.5)
		pdf.CellFormat(contentWidth, lineHeight, tr("Printed "+now.In(loc).Format("2006-01-02 15:04")+"  ·  "+title+"  ·  "+p.ID), "", 0, "L", false, 0, "")
	})
	pdf.AddPage()
	cell := func(width float64, style string, size float64, text, align string) {
		pdf.SetFont(font, style, size)
		pdf.CellFormat(width, lineHeight, tr(text), "", 0, align, false, 0, "")
	}
	cell(contentWidth*2/3, "B", 16, hospital, "L")
	cell(contentWidth/3, "", 9, p.ID, "R")
	pdf.Ln(9)
	cell(contentWidth*2/3, "B", 13, title, "L")
	status := "Approved"
	switch run.Status {
	case payrollrun.StatusDRAFT:
		status = "DRAFT - NOT FINAL"
	case payrollrun.StatusPAID:
		status = "Paid"
	}
	cell(contentWidth/3, "B", 11, status, "R")
	pdf.Ln(10)

	pair := func(label, value string) {
		cell(45, "B", 9.5, label, "L")
		cell(contentWidth-45, "", 9.5, value, "L")
		pdf.Ln(lineHeight)
	}
	pair("Employee", m.FamilyName+", "+m.GivenName)
	pair("Staff ID", m.ID)
	pair("Period", run.PeriodStart.UTC().Format(time.DateOnly)+" to "+run.PeriodEnd.UTC().Format(time.DateOnly))
	basis := "Monthly salary"
	if p.PayBasis == payslip.PayBasisHOURLY {
		basis = "Hourly rate"
	}
	pair("Pay", basis+" "+input.FormatMoney(p.PayRate))
	pair("Attended", fmt.Sprintf("%s hours, of which %s overtime", hours(p.WorkedMinutes), hours(p.OvertimeMinutes)))
	pair("Shifts", fmt.Sprintf("%d night, %d on call", p.NightShifts, p.OnCallShifts))
	pair("Unpaid leave", fmt.Sprintf("%d days", p.UnpaidLeaveDays))
	pdf.Ln(4)

	line := func(label string, amount int64, bold bool) {
		style := ""
		if bold {
			style = "B"
		}
		cell(contentWidth-40, style, 10, label, "L")
		cell(40, style, 10, input.FormatMoney(amount), "R")
		pdf.Ln(lineHeight)
	}
	line("Base pay", p.BasePay, false)
	line("Overtime", p.OvertimePay, false)
	line("Night allowance", p.NightAllowance, false)
	line("On-call allowance", p.OnCallAllowance, false)
	line("Unpaid leave", -p.UnpaidLeaveDeduction, false)
	line("Gross pay", p.GrossPay, true)
	line("Tax", -p.Tax, false)
	line("Other deductions", -p.OtherDeductions, false)
	line("Net pay", p.NetPay, true)
	if carried > 0 {
		pdf.Ln(2)
		cell(contentWidth, "I", 9, "Deductions of "+input.FormatMoney(carried)+" exceeded the pay and were not taken.", "L")
		pdf.Ln(lineHeight)
	}
	return pdf.Output(w)
}

// hours prints minutes as hours with two decimals ("7.50").
func hours(min int) string { return fmt.Sprintf("%d.%02d", min/60, (min%60)*100/60) }
