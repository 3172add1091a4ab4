package invoicereport

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/go-pdf/fpdf"
	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/unicode/norm"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/invoiceadjustment"
	"github.com/hmis-dev/hmis/internal/charges"
)

// Page geometry in millimetres, A4 portrait.
const (
	margin       = 15.0
	bottomMargin = 20.0
	contentWidth = 210 - 2*margin
	lineHeight   = 5.0
	font         = "Helvetica"
)

// Columns of the lines table: code, description, quantity, unit, amount.
var lineCols = []float64{28, 82, 16, 27, 27}

// Columns of the payments table: date, method, reference, amount.
var paymentCols = []float64{40, 40, 60, 40}

type printer struct {
	pdf *fpdf.Fpdf
	tr  func(string) string
	loc *time.Location
}

// render writes the invoice, with times in loc, printed at now.
func render(w io.Writer, inv *ent.Invoice, hospital string, loc *time.Location, now time.Time) error {
	pdf := fpdf.New("P", "mm", "A4", "")
	// Core fonts with the cp1252 translation keep the text extractable;
	// letters outside cp1252 are folded to one it has first.
	cp1252 := pdf.UnicodeTranslatorFromDescriptor("")
	p := &printer{pdf: pdf, tr: func(s string) string { return cp1252(fold(s)) }, loc: loc}
	pt := inv.Edges.Patient
	title := "Invoice " + number(inv)
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(true, bottomMargin)
	pdf.SetTitle(title, true)
	pdf.SetCreator(hospital, true)
	pdf.SetCreationDate(now)
	pdf.SetModificationDate(now)
	pdf.AliasNbPages("{nb}")
	pdf.SetHeaderFunc(func() {
		if pdf.PageNo() == 1 {
			return
		}
		// Every sheet names the patient and the invoice, so a loose page
		// finds its way back.
		p.style("B", 8)
		p.cell(contentWidth/2, patientName(pt)+"  ·  MRN "+pt.Mrn, "L")
		p.style("", 8)
		p.cell(contentWidth/2, hospital+"  ·  "+title, "R")
		pdf.Ln(lineHeight + 1)
	})
	pdf.SetFooterFunc(func() {
		pdf.SetY(-14)
		p.style("", 7.5)
		p.cell(contentWidth*2/3, "Printed "+p.time(now)+"  ·  "+title, "L")
		p.cell(contentWidth/3, fmt.Sprintf("Page %d of {nb}", pdf.PageNo()), "R")
	})
	pdf.AddPage()

	p.style("B", 16)
	p.cell(contentWidth*2/3, hospital, "L")
	p.style("", 9)
	p.cell(contentWidth/3, inv.ID, "R")
	pdf.Ln(8)
	p.style("B", 13)
	p.cell(contentWidth*2/3, title, "L")
	switch inv.Status {
	case invoice.StatusDRAFT:
		p.cell(contentWidth/3, "DRAFT - NOT A BILL", "R")
	case invoice.StatusVOID:
		p.cell(contentWidth/3, "VOID", "R")
	default:
		p.cell(contentWidth/3, words(inv.Status.String()), "R")
	}
	pdf.Ln(9)

	p.pair("Patient", patientName(pt), "MRN", pt.Mrn)
	issued := "—"
	if inv.IssuedAt != nil {
		issued = p.time(*inv.IssuedAt)
	}
	p.pair("Issued", issued, "Created", p.time(inv.CreatedAt))
	if inv.PeriodFrom != nil && inv.PeriodTo != nil {
		p.pair("Period", inv.PeriodFrom.UTC().Format("2006-01-02")+" to "+inv.PeriodTo.UTC().Format("2006-01-02"), "", "")
	}
	if inv.EncounterID != nil {
		p.pair("Encounter", *inv.EncounterID, "", "")
	}
	if inv.Status == invoice.StatusVOID && inv.VoidReason != nil {
		p.pair("Voided", p.timePtr(inv.VoidedAt), "Reason", *inv.VoidReason)
	}
	pdf.Ln(3)

	p.heading("Lines")
	p.row(lineCols, "B", "Code", "Description", "Qty", "Unit price", "Amount")
	for _, l := range inv.Edges.Lines {
		p.row(lineCols, "", l.Code, l.Description+"  ("+l.ServiceAt.In(loc).Format("2006-01-02")+")",
			fmt.Sprint(l.Quantity), money(l.UnitPrice), money(l.Amount))
	}
	if len(inv.Edges.Lines) == 0 {
		p.row([]float64{contentWidth}, "I", "No lines.")
	}
	pdf.Ln(2)

	p.total("Subtotal", inv.Subtotal)
	for _, d := range inv.Edges.Discounts {
		p.total("Discount: "+d.Reason, -d.Amount)
	}
	if len(inv.Edges.Discounts) == 0 && inv.DiscountTotal > 0 {
		p.total("Discounts", -inv.DiscountTotal)
	}
	p.total(fmt.Sprintf("Tax (%s %%)", rate(inv.TaxRateBasisPoints)), inv.TaxTotal)
	p.boldTotal("Total", inv.Total)
	p.total("Insurance (payer share)", inv.PayerTotal)
	p.boldTotal("Patient share", inv.PatientTotal)

	p.heading("Payments")
	if len(inv.Edges.Allocations) == 0 {
		p.row([]float64{contentWidth}, "I", "No payments yet.")
	} else {
		p.row(paymentCols, "B", "Date", "Method", "Reference", "Amount")
		for _, a := range inv.Edges.Allocations {
			date, method, ref := "—", "—", ""
			if pm := a.Edges.Payment; pm != nil {
				date, method = p.time(pm.ReceivedAt), words(pm.Method.String())
				if pm.Reference != nil {
					ref = *pm.Reference
				}
			}
			p.row(paymentCols, "", date, method, ref, money(a.Amount))
			if a.Refunded > 0 {
				p.row(paymentCols, "I", "", "Refunded", "", money(-a.Refunded))
			}
		}
	}
	for _, adj := range inv.Edges.Adjustments {
		label := map[invoiceadjustment.Kind]string{
			invoiceadjustment.KindMOVED_TO_PATIENT: "Moved to the patient by the insurer",
			invoiceadjustment.KindPAYER_WRITE_OFF:  "Written off (insurer's adjustment)",
			invoiceadjustment.KindBAD_DEBT:         "Written off",
		}[adj.Kind]
		p.total(label, adj.Amount)
	}
	pdf.Ln(2)
	p.boldTotal("Balance due from the patient", charges.PatientBalance(inv))
	if b := charges.PayerBalance(inv); b != 0 {
		p.total("Balance due from the insurer", b)
	}

	if err := pdf.Error(); err != nil {
		return err
	}
	return pdf.Output(w)
}

func (p *printer) style(style string, size float64) { p.pdf.SetFont(font, style, size) }

func (p *printer) cell(w float64, s, align string) {
	p.pdf.CellFormat(w, lineHeight, p.tr(s), "", 0, align, false, 0, "")
}

func (p *printer) time(t time.Time) string { return t.In(p.loc).Format("2006-01-02 15:04 MST") }

func (p *printer) timePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return p.time(*t)
}

func (p *printer) heading(s string) {
	p.pdf.Ln(2)
	p.style("B", 11)
	p.cell(contentWidth, s, "L")
	p.pdf.Ln(lineHeight + 1)
}

func (p *printer) pair(k1, v1, k2, v2 string) {
	for _, kv := range [][2]string{{k1, v1}, {k2, v2}} {
		p.style("B", 8)
		p.pdf.CellFormat(24, lineHeight, p.tr(kv[0]), "", 0, "L", false, 0, "")
		p.style("", 10)
		p.pdf.CellFormat(contentWidth/2-24, lineHeight, p.tr(kv[1]), "", 0, "L", false, 0, "")
	}
	p.pdf.Ln(lineHeight)
}

// row prints one table row; the last column, an amount, is right-aligned,
// and a long description wraps onto as many lines as it needs.
func (p *printer) row(cols []float64, style string, cells ...string) {
	p.style(style, 9)
	lines := 1
	split := make([][]string, len(cells))
	for i, c := range cells {
		for _, l := range p.pdf.SplitLines([]byte(p.tr(c)), cols[i]-1) {
			split[i] = append(split[i], string(l))
		}
		lines = max(lines, len(split[i]))
	}
	_, pageHeight := p.pdf.GetPageSize()
	if p.pdf.GetY()+float64(lines)*lineHeight > pageHeight-bottomMargin {
		p.pdf.AddPage()
	}
	for n := 0; n < lines; n++ {
		for i := range cells {
			align := "L"
			if i == len(cells)-1 && len(cells) > 1 || i == 2 && len(cells) == 5 {
				align = "R"
			}
			text := ""
			if n < len(split[i]) {
				text = split[i][n]
			}
			p.pdf.CellFormat(cols[i], lineHeight, text, "", 0, align, false, 0, "")
		}
		p.pdf.Ln(lineHeight)
	}
}

func (p *printer) total(label string, amount int64) { p.totalIn("", label, amount) }

func (p *printer) boldTotal(label string, amount int64) { p.totalIn("B", label, amount) }

func (p *printer) totalIn(style, label string, amount int64) {
	p.style(style, 10)
	p.pdf.CellFormat(contentWidth-40, lineHeight+0.5, p.tr(label), "", 0, "R", false, 0, "")
	p.pdf.CellFormat(40, lineHeight+0.5, p.tr(money(amount)), "", 0, "R", false, 0, "")
	p.pdf.Ln(lineHeight + 0.5)
}

func number(inv *ent.Invoice) string {
	if inv.Number != nil {
		return *inv.Number
	}
	return "(not issued)"
}

func patientName(p *ent.Patient) string { return p.FamilyName + ", " + p.GivenName }

// money prints minor units as the API does ("1234.50"), so that the paper
// and the app show the same digits.
func money(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
}

// rate prints basis points as a percentage: 1600 → "16", 825 → "8.25".
func rate(bp int) string {
	s := fmt.Sprintf("%d.%02d", bp/100, bp%100)
	return strings.TrimSuffix(strings.TrimRight(s, "0"), ".")
}

// words turns an enum value into words: "PARTIALLY_PAID" → "Partially paid".
func words(enum string) string {
	s := strings.ToLower(strings.ReplaceAll(enum, "_", " "))
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// stroked are letters whose stroke is no accent, so they do not decompose.
var stroked = map[rune]string{'Ł': "L", 'ł': "l", 'Đ': "D", 'đ': "d", 'Ħ': "H", 'ħ': "h", 'Ŧ': "T", 'ŧ': "t"}

// fold keeps what cp1252 can print and folds the rest to a base letter
// ("ř" → "r"), or "?" when there is none.
func fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		if _, ok := charmap.Windows1252.EncodeRune(r); ok {
			b.WriteRune(r)
			continue
		}
		if alt, ok := stroked[r]; ok {
			b.WriteString(alt)
			continue
		}
		folded := false
		for _, d := range norm.NFKD.String(string(r)) {
			if _, ok := charmap.Windows1252.EncodeRune(d); ok && !unicode.Is(unicode.Mn, d) {
				b.WriteRune(d)
				folded = true
			}
		}
		if !folded {
			b.WriteByte('?')
		}
	}
	return b.String()
}
