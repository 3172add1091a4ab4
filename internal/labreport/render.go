package labreport

import (
	"fmt"
	"github.com/hmis-dev/hmis/internal/pdfreport"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
)

// Page geometry in millimetres, A4 portrait.
const (
	margin       = 15.0
	bottomMargin = 20.0 // room for the footer
	contentWidth = 210 - 2*margin
	lineHeight   = 4.6
	font         = "Helvetica"
)

// Columns of the results table; they add up to contentWidth.
var resultCols = []float64{56, 36, 28, 10, 50}

// Columns of the specimens table.
var specimenCols = []float64{30, 26, 46, 46, 32}

// render writes the report of order, with times in loc, printed at now.
func render(w io.Writer, order *ent.LabOrder, hospital string, loc *time.Location, now time.Time) error {
	if hospital == "" {
		hospital = pdfreport.DefaultHospitalName
	}
	pdf := fpdf.New("P", "mm", "A4", "")
	// Core fonts with the cp1252 translation print "Müller" and "µmol/L"
	// right and keep the text extractable; letters outside cp1252 are
	// folded to one it has first ("Dvořák" → "Dvorák").
	cp1252 := pdf.UnicodeTranslatorFromDescriptor("")
	p := &printer{
		pdf:      pdf,
		tr:       func(s string) string { return cp1252(fold(s)) },
		loc:      loc,
		hospital: hospital,
	}
	pt := order.Edges.Patient
	pdf.SetMargins(margin, margin, margin)
	pdf.SetAutoPageBreak(true, bottomMargin)
	pdf.SetTitle("Laboratory report "+order.ID, true)
	pdf.SetCreator(hospital, true)
	pdf.SetCreationDate(now)
	pdf.SetModificationDate(now)
	pdf.AliasNbPages("{nb}")
	pdf.SetHeaderFunc(func() {
		if pdf.PageNo() == 1 {
			return
		}
		// Every sheet names the patient, so a loose page finds its way back.
		p.style("B", 8, grey)
		p.cell(contentWidth/2, patientName(pt)+"  ·  MRN "+pt.Mrn, "L")
		p.style("", 8, grey)
		p.cell(contentWidth/2, hospital+"  ·  Laboratory report  ·  "+order.ID, "R")
		pdf.Ln(lineHeight + 1)
		p.rule()
	})
	pdf.SetFooterFunc(func() {
		pdf.SetY(-14)
		p.rule()
		p.style("", 7.5, grey)
		p.cell(contentWidth*2/3, "Printed "+p.time(now)+"  ·  Order "+order.ID, "L")
		p.cell(contentWidth/3, fmt.Sprintf("Page %d of {nb}", pdf.PageNo()), "R")
	})
	pdf.AddPage()

	amended := false
	for _, it := range order.Edges.Items {
		for _, r := range it.Edges.Results {
			amended = amended || r.Status == labresult.StatusCORRECTED
		}
	}
	p.header(order, amended)
	p.specimens(order.Edges.Specimens)
	p.results(order.Edges.Items)
	p.legend(amended)

	if err := pdf.Error(); err != nil {
		return err
	}
	return pdf.Output(w)
}

type colour [3]int

var (
	black   = colour{0, 0, 0}
	grey    = colour{100, 100, 100}
	flagRed = colour{170, 0, 0}
)

// printer draws on one PDF; fpdf and its translator are not safe for
// concurrent use, so each report has its own.
type printer struct {
	pdf      *fpdf.Fpdf
	tr       func(string) string
	loc      *time.Location
	hospital string
	// repeat redraws the heading of the table being drawn after a page
	// break; nil outside tables.
	repeat func()
}

func (p *printer) style(style string, size float64, c colour) {
	p.pdf.SetFont(font, style, size)
	p.pdf.SetTextColor(c[0], c[1], c[2])
}

func (p *printer) cell(w float64, s, align string) {
	p.pdf.CellFormat(w, lineHeight, p.tr(s), "", 0, align, false, 0, "")
}

func (p *printer) rule() {
	y := p.pdf.GetY()
	p.pdf.SetDrawColor(180, 180, 180)
	p.pdf.SetLineWidth(0.2)
	p.pdf.Line(margin, y, margin+contentWidth, y)
	p.pdf.Ln(1.2)
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
	p.ensure(4 * lineHeight)
	p.style("B", 11, black)
	p.cell(contentWidth, s, "L")
	p.pdf.Ln(lineHeight + 1)
}

// ensure starts a new page unless h millimetres fit on this one.
func (p *printer) ensure(h float64) {
	_, pageHeight := p.pdf.GetPageSize()
	if p.pdf.GetY()+h > pageHeight-bottomMargin {
		p.pdf.AddPage()
		if p.repeat != nil {
			p.repeat()
		}
	}
}

func (p *printer) header(order *ent.LabOrder, amended bool) {
	pt := order.Edges.Patient
	p.style("B", 16, black)
	p.cell(contentWidth*2/3, p.hospital, "L")
	p.style("", 9, grey)
	p.cell(contentWidth/3, "Order "+order.ID, "R")
	p.pdf.Ln(7)
	p.style("", 12, black)
	p.cell(contentWidth*2/3, "Laboratory report", "L")
	if amended {
		p.style("B", 11, flagRed)
		p.cell(contentWidth/3, "AMENDED REPORT", "R")
	}
	p.pdf.Ln(7)
	p.rule()

	p.pairs(
		"Patient", patientName(pt), "MRN", pt.Mrn,
		// A birth date is a calendar date, stored at midnight UTC: it is
		// printed as stored, never moved into the hospital's zone.
		"Birth date", pt.BirthDate.UTC().Format("2006-01-02"), "Sex", words(pt.Sex.String()),
	)
	p.rule()
	p.pairs(
		"Ordered by", staffName(order.Edges.OrderedBy), "Ordered at", p.time(order.OrderedAt),
		"Priority", priority(order.Priority.String()), "", "",
	)
	if order.ClinicalNotes != nil && strings.TrimSpace(*order.ClinicalNotes) != "" {
		p.style("B", 8, grey)
		p.pdf.CellFormat(28, lineHeight, p.tr("Clinical notes"), "", 0, "L", false, 0, "")
		p.style("", 9.5, black)
		p.pdf.MultiCell(contentWidth-28, lineHeight, p.tr(*order.ClinicalNotes), "", "L", false)
	}
	p.rule()
}

// pairs prints label/value pairs two to a line.
func (p *printer) pairs(kv ...string) {
	for i := 0; i+3 < len(kv); i += 4 {
		p.ensure(lineHeight)
		for j := i; j < i+4; j += 2 {
			p.style("B", 8, grey)
			p.pdf.CellFormat(28, lineHeight+0.6, p.tr(kv[j]), "", 0, "L", false, 0, "")
			p.style("", 10, black)
			p.pdf.CellFormat(contentWidth/2-28, lineHeight+0.6, p.tr(kv[j+1]), "", 0, "L", false, 0, "")
		}
		p.pdf.Ln(lineHeight + 0.6)
	}
}

// A span is one piece of a table cell's text in one style.
type span struct {
	text  string
	style string
	size  float64
	col   colour
}

func txt(s string) span  { return span{text: s, size: 9} }
func bold(s string) span { return span{text: s, style: "B", size: 9} }
func note(s string) span { return span{text: s, size: 7.5, col: grey} }
func ital(s string) span { return span{text: s, style: "I", size: 8.5} }

// A cell is a table cell: spans one under the other, each wrapped to width.
type cell struct {
	w     float64
	spans []span
	align string
}

// row draws cells side by side, line by line, so that a row taller than
// what is left of the page continues on the next one.
func (p *printer) row(cells ...cell) {
	type piece struct {
		span
		text string
	}
	lines := make([][]piece, len(cells))
	height := 0
	for i, c := range cells {
		for _, s := range c.spans {
			if s.text == "" {
				continue
			}
			p.style(s.style, s.size, s.col)
			for _, l := range p.pdf.SplitLines([]byte(p.tr(s.text)), c.w) {
				lines[i] = append(lines[i], piece{span: s, text: string(l)})
			}
		}
		height = max(height, len(lines[i]))
	}
	for n := 0; n < height; n++ {
		p.ensure(lineHeight)
		x, y := margin, p.pdf.GetY()
		for i, c := range cells {
			if n < len(lines[i]) {
				l := lines[i][n]
				p.style(l.style, l.size, l.col)
				p.pdf.SetXY(x, y)
				p.pdf.CellFormat(c.w, lineHeight, l.text, "", 0, c.align, false, 0, "")
			}
			x += c.w
		}
		p.pdf.SetXY(margin, y+lineHeight)
	}
}

func (p *printer) tableHead(widths []float64, titles ...string) func() {
	return func() {
		cells := make([]cell, len(titles))
		for i, t := range titles {
			cells[i] = cell{w: widths[i], spans: []span{{text: t, style: "B", size: 8, col: grey}}}
		}
		p.row(cells...)
		p.rule()
	}
}

func (p *printer) specimens(specimens []*ent.LabSpecimen) {
	p.heading("Specimens")
	if len(specimens) == 0 {
		p.row(cell{w: contentWidth, spans: []span{ital("No specimen collected yet.")}})
		return
	}
	head := p.tableHead(specimenCols, "Accession", "Type", "Collected", "Received", "Status")
	p.ensure(3 * lineHeight)
	head()
	p.repeat = head
	for _, s := range specimens {
		received := []span{txt("—")}
		if s.ReceivedAt != nil {
			received = []span{txt(p.timePtr(s.ReceivedAt)), note(by(s.Edges.ReceivedBy))}
		}
		status := []span{txt(words(s.Status.String()))}
		if s.RejectionReason != nil {
			status = append(status, note(words(s.RejectionReason.String())))
		}
		if s.RejectionNote != nil {
			status = append(status, note(*s.RejectionNote))
		}
		p.row(
			cell{w: specimenCols[0], spans: []span{bold(s.AccessionNumber)}},
			cell{w: specimenCols[1], spans: []span{txt(specimenType(s.SpecimenType.String()))}},
			cell{w: specimenCols[2], spans: []span{txt(p.time(s.CollectedAt)), note(by(s.Edges.CollectedBy))}},
			cell{w: specimenCols[3], spans: received},
			cell{w: specimenCols[4], spans: status},
		)
		p.rule()
	}
	p.repeat = nil
}

func (p *printer) results(items []*ent.LabOrderItem) {
	p.heading("Results")
	if len(items) == 0 {
		p.row(cell{w: contentWidth, spans: []span{ital("No tests ordered.")}})
		return
	}
	head := p.tableHead(resultCols, "Test", "Result", "Reference range", "Flag", "Verified")
	p.ensure(4 * lineHeight)
	head()
	p.repeat = head
	for _, it := range items {
		p.item(it)
		p.rule()
	}
	p.repeat = nil
}

// item prints one test: its name across the page, since LOINC names are
// long, then its verified result, each amendment's reason and the values
// it corrected, or, without a verified result, where it stands.
func (p *printer) item(it *ent.LabOrderItem) {
	test := it.Edges.Test
	p.ensure(2 * lineHeight)
	p.row(cell{w: contentWidth, spans: []span{bold(testName(test))}})
	codeCell := cell{w: resultCols[0], spans: testCode(test, it.Edges.Specimen)}
	var current, corrected []*ent.LabResult
	byID := map[string]*ent.LabResult{}
	for _, r := range it.Edges.Results {
		byID[r.ID] = r
		if r.Status == labresult.StatusVERIFIED {
			current = append(current, r)
		}
	}
	if len(current) == 0 {
		p.row(codeCell, cell{w: contentWidth - resultCols[0], spans: []span{ital(pending(it))}})
	}
	for i, r := range current {
		if i > 0 {
			codeCell = cell{w: resultCols[0]}
		}
		p.resultRow(codeCell, test, r, false)
		corrected = append(corrected, p.amendments(test, r, byID)...)
	}
	// Corrected values whose amendment is not on the report still show,
	// so no printed value silently disappears.
	for _, r := range it.Edges.Results {
		if r.Status == labresult.StatusCORRECTED && !slices.Contains(corrected, r) {
			p.resultRow(cell{w: resultCols[0]}, test, r, true)
		}
	}
}

// amendments prints, under an amended result, why it was amended and the
// value it corrected, back along the chain of corrections; it returns the
// corrected results it printed.
func (p *printer) amendments(test *ent.LabTest, r *ent.LabResult, byID map[string]*ent.LabResult) []*ent.LabResult {
	var printed []*ent.LabResult
	for r.ReplacesID != nil {
		p.amendReason(r)
		old, ok := byID[*r.ReplacesID]
		if !ok || slices.Contains(printed, old) {
			break
		}
		p.resultRow(cell{w: resultCols[0]}, test, old, true)
		printed = append(printed, old)
		r = old
	}
	return printed
}

func (p *printer) amendReason(r *ent.LabResult) {
	reason := "Amended " + p.timePtr(r.VerifiedAt)
	if r.AmendReason != nil {
		reason += ": " + *r.AmendReason
	}
	p.row(cell{w: resultCols[0]}, cell{w: contentWidth - resultCols[0], spans: []span{ital(reason)}})
}

func (p *printer) resultRow(first cell, test *ent.LabTest, r *ent.LabResult, corrected bool) {
	value := []span{bold(resultValue(test, r))}
	if corrected {
		first.spans = append(first.spans, ital("corrected, see amended value"))
		value = []span{txt(resultValue(test, r)), note("corrected")}
	} else if r.ReplacesID != nil {
		value = append(value, note("amended"))
	}
	flagSpan := span{text: flagCode(r.Flag), style: "B", size: 9}
	if flagSpan.text != "" && !corrected {
		value[0].col = flagRed
		flagSpan.col = flagRed
	}
	cells := []cell{
		first,
		{w: resultCols[1], spans: value},
		{w: resultCols[2], spans: []span{txt(referenceRange(test, r))}},
		{w: resultCols[3], spans: []span{flagSpan}, align: "C"},
		{w: resultCols[4], spans: []span{txt(staffName(r.Edges.VerifiedBy)), note(p.timePtr(r.VerifiedAt))}},
	}
	if r.NumericValue == nil && r.CodedValue == nil {
		// Free text is a finding, not a value: it reads better plain and
		// may use the range's column, which it has no use for.
		value[0].style = ""
		cells[1].w += cells[2].w
		cells = append(cells[:2], cells[3:]...)
	}
	p.row(cells...)
	if r.Comment != nil && strings.TrimSpace(*r.Comment) != "" {
		p.row(cell{w: resultCols[0]}, cell{w: contentWidth - resultCols[0], spans: []span{note("Comment: " + *r.Comment)}})
	}
}

func (p *printer) legend(amended bool) {
	p.pdf.Ln(3)
	text := "Flags: H above and L below the reference range; HH and LL critical; A abnormal. " +
		"Only verified results are reported."
	if amended {
		text += " Amended results are shown above the values they corrected, with the reason for the amendment."
	}
	p.row(cell{w: contentWidth, spans: []span{note(text)}})
	p.row(cell{w: contentWidth, spans: []span{note("End of report.")}})
}

// pending says where an item without a verified result stands.
func pending(it *ent.LabOrderItem) string {
	switch it.Status {
	case laborderitem.StatusCANCELLED:
		if it.CancelReason != nil && *it.CancelReason != "" {
			return "Cancelled: " + *it.CancelReason
		}
		return "Cancelled"
	case laborderitem.StatusREJECTED:
		return "Pending — specimen rejected, to be collected again"
	case laborderitem.StatusVERIFIED, laborderitem.StatusAMENDED:
		return "Result not available"
	}
	return "Pending — " + it.Status.String()
}
