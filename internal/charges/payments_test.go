package charges

import (
	"fmt"
	"sync"
	"testing"

	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/refund"
	"github.com/hmis-dev/hmis/internal/apperr"
)

func TestPaymentsAllocateAndHoldCredit(t *testing.T) {
	f := setup(t)
	p, inv := f.billed(1) // 1234.50
	inv, err := f.svc.Issue(f.clerk, inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	pay := func(amount int64, key string, hold bool) (*RecordPaymentInput, error) {
		in := RecordPaymentInput{PatientID: p.ID, InvoiceID: &inv.ID, Method: payment.MethodCASH, Amount: amount, IdempotencyKey: key, HoldExcessAsCredit: &hold}
		_, err := f.svc.RecordPayment(f.clerk, in)
		return &in, err
	}
	if _, err := pay(100000, "k1", false); err != nil {
		t.Fatal(err)
	}
	if got := f.c.Invoice.GetX(f.sys, inv.ID); got.Status != invoice.StatusPARTIALLY_PAID || got.Paid != 100000 {
		t.Errorf("after part: %s %d", got.Status, got.Paid)
	}
	// More than the balance: refused, and nothing changes…
	_, err = pay(50000, "k2", false)
	wantCode(t, err, apperr.BadUserInput, "input.amount")
	if got := f.c.Invoice.GetX(f.sys, inv.ID); got.Paid != 100000 {
		t.Errorf("a refused payment changed the invoice: %d", got.Paid)
	}
	// …unless the excess is held as credit, explicitly.
	if _, err := pay(50000, "k2", true); err != nil {
		t.Fatal(err)
	}
	if got := f.c.Invoice.GetX(f.sys, inv.ID); got.Status != invoice.StatusPAID || got.Paid != 123450 {
		t.Errorf("after the rest: %s %d", got.Status, got.Paid)
	}
	// A deposit: no invoice, all credit.
	if _, err := f.svc.RecordPayment(f.clerk, RecordPaymentInput{PatientID: p.ID, Method: payment.MethodMOBILE_MONEY, Amount: 7000, IdempotencyKey: "k3"}); err != nil {
		t.Fatal(err)
	}
	if c, err := Credit(f.sys, f.c.Payment, f.c.Refund, p.ID); err != nil || c != 50000-23450+7000 {
		t.Errorf("credit %d, %v", c, err)
	}
	// A paid invoice takes no more; a key reused for another payment is refused.
	_, err = pay(1, "k4", true)
	wantCode(t, err, apperr.Conflict, "")
	_, err = f.svc.RecordPayment(f.clerk, RecordPaymentInput{PatientID: p.ID, Method: payment.MethodCARD, Amount: 1, IdempotencyKey: "k3"})
	wantCode(t, err, apperr.BadUserInput, "input.idempotencyKey")
	_, err = f.svc.RecordPayment(f.clerk, RecordPaymentInput{PatientID: p.ID, Method: "GOLD", Amount: 1, IdempotencyKey: "k5"})
	wantCode(t, err, apperr.BadUserInput, "input.method")
	_, err = f.svc.RecordPayment(f.doctor, RecordPaymentInput{PatientID: p.ID, Method: payment.MethodCASH, Amount: 1, IdempotencyKey: "k6"})
	wantCode(t, err, apperr.Forbidden, "")
	// A paid invoice is not voided behind its payments.
	_, err = f.svc.Void(f.clerk, inv.ID, "x")
	wantCode(t, err, apperr.Conflict, "")
}

// A payment retried at once from several clients with one key is
// recorded once, and the invoice is paid once.
func TestRetriedPaymentIsRecordedOnce(t *testing.T) {
	f := setup(t)
	p, inv := f.billed(1)
	if _, err := f.svc.Issue(f.clerk, inv.ID); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make(chan string, 10)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := f.svc.RecordPayment(f.clerk, RecordPaymentInput{PatientID: p.ID, InvoiceID: &inv.ID,
				Method: payment.MethodCARD, Amount: 60000, IdempotencyKey: "retry-1"})
			if err != nil {
				t.Error(err)
				return
			}
			ids <- out.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[string]bool{}
	for id := range ids {
		seen[id] = true
	}
	if len(seen) != 1 {
		t.Errorf("%d payments recorded: %v", len(seen), seen)
	}
	got := f.c.Invoice.GetX(f.sys, inv.ID)
	if n := f.c.Payment.Query().CountX(f.sys); n != 1 || got.Paid != 60000 {
		t.Errorf("%d payment rows, paid %d", n, got.Paid)
	}
}

// Money given back under contention: of several clerks refunding most of
// one payment at once, and several applying most of a patient's credit at
// once, one each succeeds; nobody is refunded twice and no credit goes
// below zero.
func TestConcurrentRefundsAndCreditNeverOverdraw(t *testing.T) {
	f := setup(t)
	p, inv := f.billed(1) // 1234.50
	if _, err := f.svc.Issue(f.clerk, inv.ID); err != nil {
		t.Fatal(err)
	}
	hold := true
	paid, err := f.svc.RecordPayment(f.clerk, RecordPaymentInput{PatientID: p.ID, InvoiceID: &inv.ID, Method: payment.MethodCASH,
		Amount: 200000, IdempotencyKey: "pay", HoldExcessAsCredit: &hold}) // 765.50 of credit
	if err != nil {
		t.Fatal(err)
	}
	race := func(n int, do func(i int) error) (ok int) {
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = do(i) }()
		}
		wg.Wait()
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case apperr.CodeOf(err) != apperr.BadUserInput && apperr.CodeOf(err) != apperr.Conflict:
				t.Errorf("unexpected: %v", err)
			}
		}
		return ok
	}
	if ok := race(6, func(i int) error {
		_, err := f.svc.Refund(f.clerk, RefundPaymentInput{PatientID: p.ID, PaymentID: &paid.ID, Method: refund.MethodCASH,
			Amount: 100000, Reason: "overcharged", IdempotencyKey: fmt.Sprintf("r%d", i)})
		return err
	}); ok != 1 {
		t.Errorf("%d refunds of 1000.00 out of 1234.50 paid succeeded", ok)
	}
	if ok := race(6, func(i int) error {
		_, err := f.svc.Refund(f.clerk, RefundPaymentInput{PatientID: p.ID, Method: refund.MethodCASH,
			Amount: 50000, Reason: "leaving", IdempotencyKey: fmt.Sprintf("c%d", i)})
		return err
	}); ok != 1 {
		t.Errorf("%d credit refunds of 500.00 out of 765.50 succeeded", ok)
	}
	got := f.c.Invoice.GetX(f.sys, inv.ID)
	credit, err := Credit(f.sys, f.c.Payment, f.c.Refund, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.PatientPaid != 23450 || got.Status != invoice.StatusPARTIALLY_PAID || credit != 26550 {
		t.Errorf("after the races: paid %d (%s), credit %d", got.PatientPaid, got.Status, credit)
	}
	if ok := race(6, func(i int) error {
		_, err := f.svc.ApplyCredit(f.clerk, ApplyCreditInput{InvoiceID: inv.ID, Amount: 20000, IdempotencyKey: fmt.Sprintf("a%d", i)})
		return err
	}); ok != 1 {
		t.Errorf("%d applications of 200.00 out of 265.50 credit succeeded", ok)
	}
	if credit, _ := Credit(f.sys, f.c.Payment, f.c.Refund, p.ID); credit != 6550 {
		t.Errorf("credit left %d, want 6550", credit)
	}
}

// A patient paying online while the invoice was settled at the till: the
// money has moved, so it is kept as their credit; the provider's second
// confirmation of it is the same payment.
func TestOnlinePaymentForAnInvoiceSettledMeanwhileIsKeptAsCredit(t *testing.T) {
	f := setup(t)
	p, inv := f.billed(1)
	if _, err := f.svc.Issue(f.clerk, inv.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RecordPayment(f.clerk, RecordPaymentInput{PatientID: p.ID, InvoiceID: &inv.ID, Method: payment.MethodCASH, Amount: 123450, IdempotencyKey: "till"}); err != nil {
		t.Fatal(err)
	}
	online := OnlinePayment{PatientID: p.ID, InvoiceID: inv.ID, Method: payment.MethodCARD, Amount: 123450, Provider: "simulated", ProviderReference: "sim-1"}
	first, err := f.svc.ReceiveOnlinePayment(f.sys, online)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.ReceiveOnlinePayment(f.sys, online)
	if err != nil || again.ID != first.ID {
		t.Fatalf("the second confirmation: %v, %v", again, err)
	}
	if first.Allocated != 0 || first.Credited != 123450 {
		t.Fatalf("recorded %+v", first)
	}
	if c, _ := Credit(f.sys, f.c.Payment, f.c.Refund, p.ID); c != 123450 {
		t.Fatalf("credit %d", c)
	}
}

// A payment to another patient's invoice names the field the client sent.
func TestPaymentToAnotherPatientsInvoiceNamesInvoiceId(t *testing.T) {
	f := setup(t)
	_, inv := f.billed(1)
	if _, err := f.svc.Issue(f.clerk, inv.ID); err != nil {
		t.Fatal(err)
	}
	other := f.patient()
	_, err := f.svc.RecordPayment(f.clerk, RecordPaymentInput{PatientID: other.ID, InvoiceID: &inv.ID, Method: payment.MethodCASH, Amount: 100, IdempotencyKey: "x"})
	wantCode(t, err, apperr.BadUserInput, "input.invoiceId")
}
