package charges

import (
	"context"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/tariff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
)

// asStaff acts as a new member of staff of kind.
func (f *fixture) asStaff(kind staff.Kind, role string) context.Context {
	m := f.c.Staff.Create().SetGivenName("G").SetFamilyName(string(kind)).SetKind(kind).SetDepartmentID(f.dep.ID).SaveX(f.sys)
	return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + m.ID[4:], Username: role, Roles: []string{role}, StaffID: m.ID})
}

// billed is a patient with manual charges of the given quantities of a
// 1234.50 service, and a draft invoice of them.
func (f *fixture) billed(quantities ...int) (*ent.Patient, *ent.Invoice) {
	f.t.Helper()
	if !f.c.Tariff.Query().Where(tariff.Code("ITEM-X")).ExistX(f.sys) {
		f.price("ITEM-X", tariff.CategoryITEM, "", 123450)
	}
	p := f.patient()
	for _, q := range quantities {
		if _, err := f.svc.AddManual(f.clerk, AddManualChargeInput{PatientID: p.ID, TariffCode: "ITEM-X", Quantity: q}); err != nil {
			f.t.Fatal(err)
		}
	}
	day := f.now
	inv, err := f.svc.CreateInvoice(f.clerk, CreateInvoiceInput{PatientID: p.ID, PeriodFrom: &day, PeriodTo: &day})
	if err != nil {
		f.t.Fatal(err)
	}
	return p, inv
}

func TestInvoiceLifecycle(t *testing.T) {
	f := setup(t)
	f.svc.SetTaxRate(1600) // 16 %
	p, inv := f.billed(1, 2)
	if inv.Status != invoice.StatusDRAFT || inv.Subtotal != 3*123450 || inv.Number != nil {
		t.Fatalf("draft: %+v", inv)
	}
	// Nothing left to bill twice.
	day := f.now
	_, err := f.svc.CreateInvoice(f.clerk, CreateInvoiceInput{PatientID: p.ID, PeriodFrom: &day, PeriodTo: &day})
	wantCode(t, err, apperr.Conflict, "")
	_, err = f.svc.CreateInvoice(f.clerk, CreateInvoiceInput{PatientID: p.ID})
	wantCode(t, err, apperr.BadUserInput, "input.encounterId")

	// A discount counts once someone else approves it.
	d, err := f.svc.RequestDiscount(f.clerk, RequestInvoiceDiscountInput{InvoiceID: inv.ID, Amount: 10000, Reason: "hardship"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.RequestDiscount(f.clerk, RequestInvoiceDiscountInput{InvoiceID: inv.ID, Amount: 10000, Reason: " "})
	wantCode(t, err, apperr.BadUserInput, "input.reason")
	_, err = f.svc.RequestDiscount(f.clerk, RequestInvoiceDiscountInput{InvoiceID: inv.ID, Amount: 10_000_000, Reason: "x"})
	wantCode(t, err, apperr.BadUserInput, "input.amount")
	_, err = f.svc.ApproveDiscount(f.clerk, d.ID)
	wantCode(t, err, apperr.Forbidden, "")
	finance := f.asStaff(staff.KindADMINISTRATOR, "finance_officer")
	if _, err := f.svc.ApproveDiscount(finance, d.ID); err != nil {
		t.Fatal(err)
	}

	issued, err := f.svc.Issue(f.clerk, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	// 370350 − 10000 = 360350; 16 % of it is 57656.
	if issued.Status != invoice.StatusISSUED || *issued.Number != "INV-2030-000001" ||
		issued.DiscountTotal != 10000 || issued.TaxTotal != 57656 || issued.Total != 360350+57656 {
		t.Errorf("issued: %+v", issued)
	}
	_, err = f.svc.Issue(f.clerk, inv.ID)
	wantCode(t, err, apperr.Conflict, "")
	_, err = f.svc.RequestDiscount(f.clerk, RequestInvoiceDiscountInput{InvoiceID: inv.ID, Amount: 1, Reason: "late"})
	wantCode(t, err, apperr.Conflict, "")
	// A billed charge is not reversed behind the invoice's back.
	line := f.c.Charge.Query().Where(charge.InvoiceID(inv.ID)).FirstX(f.sys)
	_, err = f.svc.Reverse(f.clerk, line.ID, "x")
	wantCode(t, err, apperr.Conflict, "")

	// Void and reissue: the charges go on a new invoice with the next number.
	_, err = f.svc.Void(f.clerk, inv.ID, " ")
	wantCode(t, err, apperr.BadUserInput, "reason")
	voided, err := f.svc.Void(f.clerk, inv.ID, "wrong payer")
	if err != nil || voided.Status != invoice.StatusVOID || *voided.Number != "INV-2030-000001" {
		t.Fatalf("void: %+v, %v", voided, err)
	}
	again, err := f.svc.CreateInvoice(f.clerk, CreateInvoiceInput{PatientID: p.ID, PeriodFrom: &day, PeriodTo: &day})
	if err != nil {
		t.Fatal(err)
	}
	again, err = f.svc.Issue(f.clerk, again.ID)
	if err != nil || *again.Number != "INV-2030-000002" || again.Subtotal != 3*123450 {
		t.Fatalf("reissue: %+v, %v", again, err)
	}
	f.publish()
	var types []string
	for _, ev := range f.history(Topic) {
		types = append(types, ev.Type)
	}
	if got := fmt.Sprint(types); got != "[CHARGE_CAPTURED CHARGE_CAPTURED INVOICE_ISSUED INVOICE_VOIDED INVOICE_ISSUED]" {
		t.Errorf("billing events: %s", got)
	}
}

// Invoice numbers are gap-free and unique when many clerks issue at once.
func TestConcurrentIssuingIsGapFree(t *testing.T) {
	f := setup(t)
	const n = 12
	var drafts []*ent.Invoice
	for range n {
		_, inv := f.billed(1)
		drafts = append(drafts, inv)
	}
	var wg sync.WaitGroup
	numbers := make(chan string, n)
	for _, inv := range drafts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.svc.Issue(f.clerk, inv.ID)
			if err != nil {
				t.Error(err)
				return
			}
			numbers <- *out.Number
		}()
	}
	wg.Wait()
	close(numbers)
	var got []string
	for s := range numbers {
		got = append(got, s)
	}
	sort.Strings(got)
	if len(got) != n {
		t.Fatalf("%d issued, want %d", len(got), n)
	}
	for i, s := range got {
		if want := fmt.Sprintf("INV-2030-%06d", i+1); s != want {
			t.Errorf("number %d is %s, want %s", i, s, want)
		}
	}
}

// Money is exact: thousands of random lines, with a discount and a tax,
// against an independent computation in arbitrary precision.
func TestTotalsAreExact(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 2030))
	for round := range 200 {
		lines := make([]int64, 1000+r.IntN(4000))
		exact := new(big.Int)
		for i := range lines {
			lines[i] = r.Int64N(10_000_000) - 1_000_000 // returns are negative
			exact.Add(exact, big.NewInt(lines[i]))
		}
		if exact.Sign() <= 0 {
			continue
		}
		discount := r.Int64N(exact.Int64())
		bp := r.IntN(3000)
		subtotal, tax, total := Totals(lines, discount, bp)
		// Tax by rationals: (subtotal − discount) × bp / 10000, half up.
		taxable := new(big.Int).Sub(exact, big.NewInt(discount))
		q := new(big.Rat).SetFrac(new(big.Int).Mul(taxable, big.NewInt(int64(bp))), big.NewInt(10000))
		q.Add(q, big.NewRat(1, 2))
		wantTax := new(big.Int).Quo(q.Num(), q.Denom()) // floor, both positive
		wantTotal := new(big.Int).Add(taxable, wantTax)
		if subtotal != exact.Int64() || tax != wantTax.Int64() || total != wantTotal.Int64() {
			t.Fatalf("round %d: %d, %d, %d; want %s, %s, %s", round, subtotal, tax, total, exact, wantTax, wantTotal)
		}
	}
}

// The invoice over many captured lines totals them exactly.
func TestInvoiceOfManyLines(t *testing.T) {
	f := setup(t)
	r := rand.New(rand.NewPCG(1, 2))
	p := f.patient()
	var want int64
	for i := range 300 {
		price := r.Int64N(1_000_000)
		q := 1 + r.IntN(5)
		f.price(fmt.Sprintf("P%d", i), tariff.CategoryPROCEDURE, "", price)
		if _, err := f.svc.AddManual(f.clerk, AddManualChargeInput{PatientID: p.ID, TariffCode: fmt.Sprintf("P%d", i), Quantity: q}); err != nil {
			t.Fatal(err)
		}
		want += price * int64(q)
	}
	day := f.now
	inv, err := f.svc.CreateInvoice(f.clerk, CreateInvoiceInput{PatientID: p.ID, PeriodFrom: &day, PeriodTo: &day})
	if err != nil {
		t.Fatal(err)
	}
	if inv.Subtotal != want || inv.Total != want {
		t.Errorf("invoice %d / %d, want %d", inv.Subtotal, inv.Total, want)
	}
}
