// Package patientapp tests billing in the patient app through the HTTP
// API: the patient's own invoices and balance, paying online through the
// simulated provider and its signed callback, and the printable invoice.
package patientapp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/payprovider"
)

const (
	setPrice      = `mutation($in: SetTariffPriceInput!) { setTariffPrice(input: $in) { id } }`
	addCharge     = `mutation($in: AddManualChargeInput!) { addManualCharge(input: $in) { id } }`
	createInvoice = `mutation($in: CreateInvoiceInput!) { createInvoice(input: $in) { id status } }`
	issueInvoice  = `mutation($id: ID!) { issueInvoice(id: $id) { id number status total } }`
	myInvoices    = `{ myInvoices(first: 20) { totalCount edges { node { id number status patientID patientBalance } } } }`
	myBalance     = `{ myBalance { owed credit openInvoices } }`
	payMyInvoice  = `mutation($in: PayMyInvoiceInput!) { payMyInvoice(input: $in) {
	  id status amount method provider instructions redirectURL invoiceID paymentID } }`
	myCheckout = `query($id: ID!) { myPaymentCheckout(id: $id) { id status amount paymentID providerReference } }`
	simulate   = `mutation($id: ID!, $ok: Boolean!) { simulatePaymentCompletion(checkoutId: $id, succeed: $ok) { id status paymentID } }`
)

// secondPatientUser gives demo patient Patients[1] an app login of their own.
func secondPatientUser(t *testing.T, s *harness.Server, patientID string) string {
	t.Helper()
	hash, err := auth.HashPassword(harness.DemoPassword)
	if err != nil {
		t.Fatal(err)
	}
	s.App.Store.Client.User.Create().SetUsername("patient-b").SetPasswordHash(hash).SetRoles([]string{"patient"}).
		SetPatientID(patientID).ExecX(auth.SystemContext(context.Background()))
	return s.Login("patient-b", harness.DemoPassword).AccessToken
}

// billing makes invoices the way the clerk does.
type billing struct {
	t *testing.T
	s *harness.Server
}

func newBilling(t *testing.T, s *harness.Server) billing {
	r := s.As("billing_clerk", setPrice, map[string]any{"in": map[string]any{
		"code": "ITEM-CERT", "name": "Medical certificate", "category": "ITEM", "price": "30.00"}})
	harness.Must(t, len(r.Errors) == 0, "setTariffPrice: %s", harness.Describe(r))
	return billing{t, s}
}

// draft charges the patient quantity certificates and puts the unbilled
// charges of today on a draft invoice.
func (b billing) draft(patientID string, quantity int) string {
	b.t.Helper()
	r := b.s.As("billing_clerk", addCharge, map[string]any{"in": map[string]any{
		"patientId": patientID, "tariffCode": "ITEM-CERT", "quantity": quantity}})
	harness.Must(b.t, len(r.Errors) == 0, "addManualCharge: %s", harness.Describe(r))
	today := time.Now().UTC().Format("2006-01-02")
	var inv struct{ CreateInvoice struct{ ID, Status string } }
	b.s.As("billing_clerk", createInvoice, map[string]any{"in": map[string]any{
		"patientId": patientID, "periodFrom": today, "periodTo": today}}).Decode(b.t, &inv)
	harness.Must(b.t, inv.CreateInvoice.Status == "DRAFT", "created %+v", inv)
	return inv.CreateInvoice.ID
}

// issued is a draft, issued.
func (b billing) issued(patientID string, quantity int) (id, number string) {
	b.t.Helper()
	id = b.draft(patientID, quantity)
	var out struct {
		IssueInvoice struct{ Number, Status string }
	}
	b.s.As("billing_clerk", issueInvoice, map[string]any{"id": id}).Decode(b.t, &out)
	harness.Must(b.t, out.IssueInvoice.Status == "ISSUED", "issued %+v", out)
	return id, out.IssueInvoice.Number
}

type invoicesOut struct {
	MyInvoices struct {
		TotalCount int
		Edges      []struct {
			Node struct{ ID, Number, Status, PatientID, PatientBalance string }
		}
	}
}

type balanceOut struct {
	MyBalance struct {
		Owed, Credit string
		OpenInvoices int
	}
}

// Patient A sees their issued invoices and balance, never B's, never a
// draft, by any road: myInvoices, invoices, node.
func TestPatientSeesOnlyTheirOwnIssuedInvoicesAndBalance(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	b := newBilling(t, s)
	tokenB := secondPatientUser(t, s, d.Patients[1])

	older, _ := b.issued(d.Patients[0], 1)
	newer, _ := b.issued(d.Patients[0], 2)
	draftA := b.draft(d.Patients[0], 3)
	invB, _ := b.issued(d.Patients[1], 5)

	var a invoicesOut
	s.As("patient", myInvoices, nil).Decode(t, &a)
	harness.Must(t, a.MyInvoices.TotalCount == 2 && len(a.MyInvoices.Edges) == 2, "patient A sees %+v", a)
	harness.Must(t, a.MyInvoices.Edges[0].Node.ID == newer && a.MyInvoices.Edges[1].Node.ID == older,
		"not newest first: %+v", a)
	harness.Must(t, a.MyInvoices.Edges[0].Node.PatientBalance == "60.00" && a.MyInvoices.Edges[1].Node.PatientBalance == "30.00",
		"balances %+v", a)
	var bal balanceOut
	s.As("patient", myBalance, nil).Decode(t, &bal)
	harness.Must(t, bal.MyBalance.Owed == "90.00" && bal.MyBalance.Credit == "0.00" && bal.MyBalance.OpenInvoices == 2,
		"patient A's balance %+v", bal)

	var bOut invoicesOut
	s.Do(tokenB, myInvoices, nil).Decode(t, &bOut)
	harness.Must(t, bOut.MyInvoices.TotalCount == 1 && bOut.MyInvoices.Edges[0].Node.ID == invB, "patient B sees %+v", bOut)
	s.Do(tokenB, myBalance, nil).Decode(t, &bal)
	harness.Must(t, bal.MyBalance.Owed == "150.00" && bal.MyBalance.OpenInvoices == 1, "patient B's balance %+v", bal)

	// The generic list and node(id:) keep the same rows back.
	var list struct {
		Invoices struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("patient", `{ invoices(first: 50) { edges { node { id } } } }`, nil).Decode(t, &list)
	harness.Must(t, len(list.Invoices.Edges) == 2, "invoices as patient A: %+v", list)
	for _, hidden := range []string{draftA, invB} {
		r := s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": hidden})
		harness.Must(t, r.HasCode("NOT_FOUND"), "patient A reads %s: %s", hidden, harness.Describe(r))
	}
	r := s.As("patient", `query($id: ID!) { node(id: $id) { ... on Invoice { id patientBalance } } }`, map[string]any{"id": older})
	harness.Must(t, len(r.Errors) == 0 && strings.Contains(string(r.Data), older), "own invoice by node: %s", harness.Describe(r))
	// Billing staff still see the draft they are working on.
	r = s.As("billing_clerk", `query($id: ID!) { node(id: $id) { ... on Invoice { status } } }`, map[string]any{"id": draftA})
	harness.Must(t, strings.Contains(string(r.Data), "DRAFT"), "the clerk lost the draft: %s", harness.Describe(r))

	// Staff have no balance of their own; a doctor may not ask.
	s.As("admin", myBalance, nil).Decode(t, &bal)
	harness.Must(t, bal.MyBalance.Owed == "0.00" && bal.MyBalance.OpenInvoices == 0, "admin's balance %+v", bal)
	r = s.As("doctor", myInvoices, nil)
	harness.Must(t, harness.DeniedByGuard(r, "doctor"), "doctor listed myInvoices: %s", harness.Describe(r))
}

type checkoutOut struct {
	ID, Status, Amount, Method, Provider, InvoiceID string
	Instructions, RedirectURL, PaymentID            *string
	ProviderReference                               *string
}

// callback posts a provider's callback signed with secret.
func callback(t *testing.T, s *harness.Server, provider string, secret []byte, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.HTTP.URL+"/payments/callback/"+provider, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if secret != nil {
		req.Header.Set(payprovider.SignatureHeader, payprovider.Sign(secret, body))
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		t.Errorf("post callback: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func body(checkout, reference string, outcome payprovider.Outcome) []byte {
	b, _ := json.Marshal(payprovider.Callback{CheckoutID: checkout, Reference: reference, Outcome: outcome})
	return b
}

// onlinePayments counts the payments providers confirmed, straight from
// the database.
func onlinePayments(t *testing.T, s *harness.Server) int {
	t.Helper()
	n, err := s.App.Store.Client.Payment.Query().Where(payment.IdempotencyKeyHasPrefix("online:")).
		Count(auth.SystemContext(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func checkouts(t *testing.T, s *harness.Server) int {
	t.Helper()
	return s.App.Store.Client.PaymentCheckout.Query().CountX(auth.SystemContext(context.Background()))
}

func TestPayMyInvoiceIsRecordedOnceByTheSignedCallback(t *testing.T) {
	t.Parallel()
	secret := payprovider.RandomSecret()
	s := harness.NewServer(t, func(c *config.Config) { c.PaymentCallbackSecrets = "simulated:" + string(secret) })
	d := s.Demo()
	b := newBilling(t, s)
	tokenB := secondPatientUser(t, s, d.Patients[1])
	inv, _ := b.issued(d.Patients[0], 2) // 60.00
	draft := b.draft(d.Patients[0], 1)
	invB, _ := b.issued(d.Patients[1], 1)

	pay := func(token, invoice, amount, method string) harness.Response {
		return s.Do(token, payMyInvoice, map[string]any{"in": map[string]any{"invoiceId": invoice, "amount": amount, "method": method}})
	}
	me := s.Token("patient")
	// Refusals name the field, or look like no invoice at all, and start nothing.
	harness.WantBadInput(t, "zero", pay(me, inv, "0", "CARD"), "input.amount")
	harness.WantBadInput(t, "negative", pay(me, inv, "-5.00", "CARD"), "input.amount")
	harness.WantBadInput(t, "more than owed", pay(me, inv, "60.01", "CARD"), "input.amount")
	harness.WantBadInput(t, "malformed invoice", pay(me, "inv_nope", "1.00", "CARD"), "input.invoiceId")
	foreign, missing := pay(me, invB, "1.00", "CARD"), pay(me, globalid.New("inv"), "1.00", "CARD")
	harness.Must(t, foreign.HasCode("NOT_FOUND") && missing.HasCode("NOT_FOUND") &&
		foreign.Errors[0].Message == missing.Errors[0].Message, "another's invoice: %s / missing: %s", harness.Describe(foreign), harness.Describe(missing))
	harness.Must(t, pay(me, draft, "1.00", "CARD").HasCode("NOT_FOUND"), "a draft was payable")
	r := s.As("doctor", payMyInvoice, map[string]any{"in": map[string]any{"invoiceId": inv, "amount": "1.00", "method": "CARD"}})
	harness.Must(t, harness.DeniedByGuard(r, "doctor"), "doctor: %s", harness.Describe(r))
	harness.Must(t, checkouts(t, s) == 0, "a refused payMyInvoice started a checkout")

	var started struct{ PayMyInvoice checkoutOut }
	pay(me, inv, "40.00", "MOBILE_MONEY").Decode(t, &started)
	ck := started.PayMyInvoice
	harness.Must(t, ck.Status == "PENDING" && ck.Amount == "40.00" && ck.Provider == "simulated" && ck.InvoiceID == inv &&
		ck.Instructions != nil && *ck.Instructions != "" && ck.PaymentID == nil, "checkout %+v", ck)

	// Patient B cannot poll A's checkout.
	r = s.Do(tokenB, myCheckout, map[string]any{"id": ck.ID})
	harness.Must(t, r.HasCode("NOT_FOUND"), "patient B read A's checkout: %s", harness.Describe(r))

	// Unsigned, wrongly signed, or signed for another provider: 401, nothing recorded.
	// A body may say more than HMIS reads; what was paid, for which
	// invoice and patient, comes from the stored checkout all the same.
	ok := []byte(`{"checkoutId":"` + ck.ID + `","reference":"MM-000117","outcome":"SUCCEEDED",` +
		`"amount":"60.00","invoiceId":"` + invB + `","patientId":"` + d.Patients[1] + `"}`)
	for name, c := range map[string]struct {
		provider string
		secret   []byte
	}{
		"unsigned":         {"simulated", nil},
		"another secret":   {"simulated", payprovider.RandomSecret()},
		"another provider": {"acme", secret},
	} {
		status, answer := callback(t, s, c.provider, c.secret, ok)
		harness.Must(t, status == http.StatusUnauthorized, "%s: %d %s", name, status, answer)
	}
	// A body altered after signing does not verify either.
	req, _ := http.NewRequest(http.MethodPost, s.HTTP.URL+"/payments/callback/simulated",
		bytes.NewReader(body(ck.ID, "MM-000118", payprovider.Succeeded)))
	req.Header.Set(payprovider.SignatureHeader, payprovider.Sign(secret, ok))
	resp, err := s.HTTP.Client().Do(req)
	harness.Must(t, err == nil && resp.StatusCode == http.StatusUnauthorized, "altered body: %v %v", resp, err)
	resp.Body.Close()
	harness.Must(t, onlinePayments(t, s) == 0, "a refused callback recorded a payment")

	// The same valid callback, delivered eight times at once: one payment.
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _ = callback(t, s, "simulated", secret, ok)
		}()
	}
	wg.Wait()
	for i, st := range statuses {
		harness.Must(t, st == http.StatusOK, "delivery %d answered %d", i, st)
	}
	status, answer := callback(t, s, "simulated", secret, ok)
	harness.Must(t, status == http.StatusOK && strings.Contains(answer, "SUCCEEDED"), "again: %d %s", status, answer)
	harness.Must(t, onlinePayments(t, s) == 1, "%d payments recorded, want 1", onlinePayments(t, s))

	var polled struct{ MyPaymentCheckout checkoutOut }
	s.As("patient", myCheckout, map[string]any{"id": ck.ID}).Decode(t, &polled)
	harness.Must(t, polled.MyPaymentCheckout.Status == "SUCCEEDED" && polled.MyPaymentCheckout.PaymentID != nil &&
		*polled.MyPaymentCheckout.ProviderReference == "MM-000117", "polled %+v", polled)
	var mine invoicesOut
	s.As("patient", myInvoices, nil).Decode(t, &mine)
	harness.Must(t, len(mine.MyInvoices.Edges) == 1 && mine.MyInvoices.Edges[0].Node.PatientBalance == "20.00" &&
		mine.MyInvoices.Edges[0].Node.Status == "PARTIALLY_PAID", "after paying 40.00: %+v", mine)

	var other balanceOut
	s.Do(tokenB, myBalance, nil).Decode(t, &other)
	harness.Must(t, other.MyBalance.Owed == "30.00", "the callback body moved money to patient B: %+v", other)

	// Another transaction cannot settle the checkout again; a late failure
	// does not undo the success; an unknown checkout is not found.
	status, answer = callback(t, s, "simulated", secret, body(ck.ID, "MM-000999", payprovider.Succeeded))
	harness.Must(t, status == http.StatusConflict, "second reference: %d %s", status, answer)
	status, answer = callback(t, s, "simulated", secret, body(ck.ID, "MM-000117", payprovider.Failed))
	harness.Must(t, status == http.StatusOK && strings.Contains(answer, "SUCCEEDED"), "late failure: %d %s", status, answer)
	status, _ = callback(t, s, "simulated", secret, body(globalid.New("pck"), "MM-1", payprovider.Succeeded))
	harness.Must(t, status == http.StatusNotFound, "unknown checkout: %d", status)
	status, _ = callback(t, s, "simulated", secret, []byte(`{"checkoutId":"`+ck.ID+`"}`))
	harness.Must(t, status == http.StatusBadRequest, "no reference: %d", status)
	harness.Must(t, onlinePayments(t, s) == 1, "%d payments recorded, want 1", onlinePayments(t, s))

	// Every callback is in the audit trail, refused ones as DENIED.
	rows := harness.AuditRows(t, s, map[string]any{"operation": "paymentCallback"})
	denied := 0
	for _, row := range rows {
		if row.Outcome == "DENIED" {
			denied++
		}
	}
	harness.Must(t, len(rows) >= 16 && denied == 4, "audit rows %d, denied %d", len(rows), denied)

	// A failed checkout records nothing; the rest is paid in the demo's
	// shortcut, which goes through the same signed callback.
	var second struct{ PayMyInvoice checkoutOut }
	pay(me, inv, "20.00", "CARD").Decode(t, &second)
	status, _ = callback(t, s, "simulated", secret, body(second.PayMyInvoice.ID, "CARD-1", payprovider.Failed))
	harness.Must(t, status == http.StatusOK && onlinePayments(t, s) == 1, "a failure recorded a payment")
	var done struct{ SimulatePaymentCompletion checkoutOut }
	s.As("patient", simulate, map[string]any{"id": second.PayMyInvoice.ID, "ok": true}).Decode(t, &done)
	harness.Must(t, done.SimulatePaymentCompletion.Status == "SUCCEEDED", "simulated: %+v", done)
	r = s.Do(tokenB, simulate, map[string]any{"id": second.PayMyInvoice.ID, "ok": true})
	harness.Must(t, r.HasCode("NOT_FOUND"), "patient B completed A's checkout: %s", harness.Describe(r))
	var bal balanceOut
	s.As("patient", myBalance, nil).Decode(t, &bal)
	harness.Must(t, bal.MyBalance.Owed == "0.00" && bal.MyBalance.OpenInvoices == 0, "after paying all: %+v", bal)
	s.As("patient", myInvoices, nil).Decode(t, &mine)
	harness.Must(t, mine.MyInvoices.Edges[0].Node.Status == "PAID", "invoice %+v", mine)
	harness.Must(t, pay(me, inv, "1.00", "CARD").HasCode("CONFLICT"), "a paid invoice took another payment")
}

// One transaction of the provider confirms one checkout, a refused
// callback leaves the checkout open for the true one, one payment of an
// invoice is under way at a time, and a draft voided before it was issued
// stays the clerk's.
func TestOneProviderTransactionPaysOneCheckout(t *testing.T) {
	t.Parallel()
	secret := payprovider.RandomSecret()
	s := harness.NewServer(t, func(c *config.Config) { c.PaymentCallbackSecrets = "simulated:" + string(secret) })
	d := s.Demo()
	b := newBilling(t, s)
	inv, _ := b.issued(d.Patients[0], 2) // 60.00
	me := s.Token("patient")
	start := func() harness.Response {
		return s.Do(me, payMyInvoice, map[string]any{"in": map[string]any{"invoiceId": inv, "amount": "20.00", "method": "CARD"}})
	}
	var first struct{ PayMyInvoice checkoutOut }
	start().Decode(t, &first)
	r := start()
	harness.Must(t, r.HasCode("CONFLICT"), "a second payment while the first is pending: %s", harness.Describe(r))
	status, answer := callback(t, s, "simulated", secret, body(first.PayMyInvoice.ID, "SAME-1", payprovider.Succeeded))
	harness.Must(t, status == http.StatusOK, "first: %d %s", status, answer)

	var second struct{ PayMyInvoice checkoutOut }
	start().Decode(t, &second)
	status, answer = callback(t, s, "simulated", secret, body(second.PayMyInvoice.ID, "SAME-1", payprovider.Succeeded))
	harness.Must(t, status == http.StatusConflict, "the first checkout's transaction for the second: %d %s", status, answer)
	var polled struct{ MyPaymentCheckout checkoutOut }
	s.As("patient", myCheckout, map[string]any{"id": second.PayMyInvoice.ID}).Decode(t, &polled)
	harness.Must(t, polled.MyPaymentCheckout.Status == "PENDING" && polled.MyPaymentCheckout.ProviderReference == nil,
		"after the refused callback: %+v", polled.MyPaymentCheckout)
	status, answer = callback(t, s, "simulated", secret, body(second.PayMyInvoice.ID, "GENUINE-2", payprovider.Succeeded))
	harness.Must(t, status == http.StatusOK && strings.Contains(answer, "SUCCEEDED"), "its own transaction: %d %s", status, answer)
	harness.Must(t, onlinePayments(t, s) == 2, "%d payments, want 2", onlinePayments(t, s))
	var bal balanceOut
	s.As("patient", myBalance, nil).Decode(t, &bal)
	harness.Must(t, bal.MyBalance.Owed == "20.00", "owed %+v", bal)

	draft := b.draft(d.Patients[0], 1)
	r = s.As("billing_clerk", `mutation($id: ID!) { voidInvoice(id: $id, reason: "entered twice") { status } }`, map[string]any{"id": draft})
	harness.Must(t, len(r.Errors) == 0, "void the draft: %s", harness.Describe(r))
	r = s.As("patient", `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": draft})
	harness.Must(t, r.HasCode("NOT_FOUND"), "the patient reads a draft voided unissued: %s", harness.Describe(r))
}

// Several taps on "pay" at once start one checkout: the others are told a
// payment is under way, so the patient's card is not charged twice for one
// balance.
func TestRacingPayTapsStartOneCheckout(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	b := newBilling(t, s)
	inv, _ := b.issued(d.Patients[0], 2)
	me := s.Token("patient")
	const taps = 8
	answers := make([]harness.Response, taps)
	var wg sync.WaitGroup
	for i := range taps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = s.Do(me, payMyInvoice, map[string]any{"in": map[string]any{"invoiceId": inv, "amount": "60.00", "method": "CARD"}})
		}()
	}
	wg.Wait()
	started, underWay := 0, 0
	for _, r := range answers {
		switch {
		case len(r.Errors) == 0:
			started++
		case r.HasCode("CONFLICT"):
			underWay++
		default:
			t.Errorf("unexpected answer: %s", harness.Describe(r))
		}
	}
	harness.Must(t, started == 1 && underWay == taps-1, "started %d, told under way %d, of %d taps", started, underWay, taps)
	harness.Must(t, checkouts(t, s) == 1, "%d checkouts for %d racing taps", checkouts(t, s), taps)
}
