// Package patientbilling is billing as the patient app sees it: the
// patient's own invoices and balance, and paying an invoice through an
// online payment provider (internal/payprovider).
//
// Paying has two halves. payMyInvoice checks the invoice is the patient's
// and the amount within what they owe, stores a PaymentCheckout with the
// invoice, amount and method, and asks the provider for a session. The
// money is recorded only when the provider's signed callback confirms the
// checkout (Confirm), by charges.ReceiveOnlinePayment, whose key is the
// provider and its transaction reference: a callback delivered twice, or
// by two servers at once, records one payment.
package patientbilling

import (
	"context"
	"fmt"
	"time"

	"entgo.io/contrib/entgql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/invoice"
	"github.com/hmis-dev/hmis/ent/paymentcheckout"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/charges"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/payprovider"
	"github.com/hmis-dev/hmis/internal/store"
)

// Options configure the service.
type Options struct {
	// Provider starts checkouts; nil: online payment is not offered.
	Provider payprovider.Provider
	// Secrets are the callback secrets by provider name.
	Secrets map[string][]byte
	// AllowSimulation lets simulatePaymentCompletion complete checkouts of
	// the simulated provider: demo mode only.
	AllowSimulation bool
}

// Service serves the patient app's billing.
type Service struct {
	store   *store.Store
	charges *charges.Service
	o       Options
	now     func() time.Time
}

// NewService returns the service.
func NewService(st *store.Store, ch *charges.Service, o Options) *Service {
	return &Service{store: st, charges: ch, o: o, now: time.Now}
}

// Secret is the callback secret of provider; nil if it has none.
func (s *Service) Secret(provider string) []byte { return s.o.Secrets[provider] }

// patientOf is the viewer's own patient record, for a patient signed in to
// the app; "" for anyone else (staff have no balance of their own).
func patientOf(ctx context.Context) string {
	// Only a patient's login carries a patient record (authz keys the
	// patient scope on the same field).
	if v := auth.FromContext(ctx); v != nil {
		return v.PatientID
	}
	return ""
}

// visible are the statuses a patient's invoices are listed in: a draft
// may still change and is no bill yet; a void one bills nothing.
var visible = []invoice.Status{invoice.StatusISSUED, invoice.StatusPARTIALLY_PAID, invoice.StatusPAID}

// MyInvoices lists the viewer's issued invoices, newest first.
func (s *Service) MyInvoices(ctx context.Context, after *entgql.Cursor[string], first *int) (*ent.InvoiceConnection, error) {
	pid := patientOf(ctx)
	if pid == "" {
		return &ent.InvoiceConnection{Edges: []*ent.InvoiceEdge{}}, nil
	}
	return s.store.Client.Invoice.Query().
		Where(invoice.PatientID(pid), invoice.StatusIn(visible...)).
		Paginate(ctx, after, first, nil, nil, ent.WithInvoiceOrder(&ent.InvoiceOrder{
			Field: ent.InvoiceOrderFieldIssuedAt, Direction: entgql.OrderDirectionDesc,
		}))
}

// MyBalance is what the patient owes and holds, over all their invoices.
type MyBalance struct {
	// Owed is the sum of the patient balances of their open invoices.
	Owed int64
	// Credit is what they hold as credit (deposits, overpayments kept).
	Credit int64
	// OpenInvoices counts the invoices with something left to pay.
	OpenInvoices int
}

// MyBalance sums the viewer's balance.
func (s *Service) MyBalance(ctx context.Context) (*MyBalance, error) {
	out := &MyBalance{}
	pid := patientOf(ctx)
	if pid == "" {
		return out, nil
	}
	open, err := s.store.Client.Invoice.Query().
		Where(invoice.PatientID(pid), invoice.StatusIn(invoice.StatusISSUED, invoice.StatusPARTIALLY_PAID)).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, inv := range open {
		if b := charges.PatientBalance(inv); b > 0 {
			out.Owed += b
			out.OpenInvoices++
		}
	}
	out.Credit, err = charges.Credit(ctx, s.store.Client.Payment, s.store.Client.Refund, pid)
	return out, err
}

// PendingCheckoutWindow is how long an unconfirmed checkout keeps others
// of its invoice from starting: long enough for a patient to finish
// paying, short enough that an abandoned one does not block them for long.
const PendingCheckoutWindow = 15 * time.Minute

// PayMyInvoiceInput is the input of payMyInvoice.
type PayMyInvoiceInput struct {
	InvoiceID string
	Amount    int64
	Method    paymentcheckout.Method
}

// errNotYours is what any invoice the viewer may not pay looks like, so
// that another patient's invoice and a missing one cannot be told apart.
var errNotYours = apperr.NotFoundf("invoice not found")

// PayMyInvoice starts paying part or all of the viewer's balance on one of
// their invoices through the configured provider.
func (s *Service) PayMyInvoice(ctx context.Context, in PayMyInvoiceInput) (*ent.PaymentCheckout, error) {
	if err := input.ID("input.invoiceId", in.InvoiceID, input.Invoice); err != nil {
		return nil, err
	}
	if in.Method != paymentcheckout.MethodCARD && in.Method != paymentcheckout.MethodMOBILE_MONEY {
		return nil, apperr.BadInput("input.method", "must be CARD or MOBILE_MONEY")
	}
	if in.Amount <= 0 || in.Amount > charges.MaxPayment {
		return nil, apperr.BadInput("input.amount", "must be positive")
	}
	pid := patientOf(ctx)
	if pid == "" {
		return nil, apperr.Denied("only a patient signed in to the app pays their invoices online")
	}
	if s.o.Provider == nil {
		return nil, apperr.Conflictf("online payment is not set up at this hospital; pay at the cashier")
	}
	// The checks and the new checkout are one transaction under the
	// patient's lock, which payments at the cashier take too: two taps on
	// "pay" at once must not both find no payment under way.
	ck, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PaymentCheckout, error) {
		if _, err := patients.Lock(ctx, tx, "input.invoiceId", pid); err != nil {
			return nil, err
		}
		// Read in the viewer's context: row scope hides another patient's
		// invoice and drafts, which then look like no invoice at all.
		inv, err := tx.Invoice.Get(ctx, in.InvoiceID)
		if ent.IsNotFound(err) || (err == nil && inv.PatientID != pid) {
			return nil, errNotYours
		} else if err != nil {
			return nil, err
		}
		if inv.Status != invoice.StatusISSUED && inv.Status != invoice.StatusPARTIALLY_PAID {
			return nil, apperr.Conflictf("the invoice is %s; there is nothing to pay on it", inv.Status)
		}
		if owed := charges.PatientBalance(inv); in.Amount > owed {
			return nil, apperr.BadInput("input.amount", "exceeds what you owe on the invoice (%s)", money(owed))
		}
		// One payment of an invoice at a time: several pending at once could
		// each charge the patient's card for the same balance.
		if busy, err := tx.PaymentCheckout.Query().Where(paymentcheckout.InvoiceID(inv.ID),
			paymentcheckout.StatusEQ(paymentcheckout.StatusPENDING),
			paymentcheckout.CreatedAtGT(s.now().Add(-PendingCheckoutWindow))).Exist(ctx); err != nil {
			return nil, err
		} else if busy {
			return nil, apperr.Conflictf("a payment of this invoice is under way; wait for it, or start again in %d minutes", int(PendingCheckoutWindow.Minutes()))
		}
		return tx.PaymentCheckout.Create().SetPatientID(pid).SetInvoiceID(inv.ID).SetAmount(in.Amount).
			SetMethod(in.Method).SetProvider(s.o.Provider.Name()).SetStartedByID(auth.FromContext(ctx).UserID).Save(ctx)
	})
	if err != nil {
		return nil, err
	}
	// The provider is asked outside any transaction: a slow provider must
	// not hold the patient's lock or a database connection.
	sess, err := s.o.Provider.StartCheckout(ctx, payprovider.Checkout{ID: ck.ID, InvoiceID: ck.InvoiceID, PatientID: pid,
		Amount: in.Amount, Method: payprovider.Method(in.Method)})
	if err != nil {
		_ = s.store.Client.PaymentCheckout.UpdateOne(ck).SetStatus(paymentcheckout.StatusFAILED).
			SetCompletedAt(input.Stored(s.now())).Exec(ctx)
		return nil, apperr.Conflictf("the payment provider could not start the payment (%s); try again later", s.o.Provider.Name())
	}
	u := s.store.Client.PaymentCheckout.UpdateOne(ck).SetProviderSessionID(sess.ID)
	if sess.RedirectURL != "" {
		u.SetRedirectURL(sess.RedirectURL)
	}
	if sess.Instructions != "" {
		u.SetInstructions(sess.Instructions)
	}
	return u.Save(ctx)
}

// MyPaymentCheckout reads one of the viewer's checkouts, for the app to
// poll until the provider has answered.
func (s *Service) MyPaymentCheckout(ctx context.Context, id string) (*ent.PaymentCheckout, error) {
	if err := input.ID("id", id, input.PaymentCheckout); err != nil {
		return nil, err
	}
	pid := patientOf(ctx)
	ck, err := s.store.Client.PaymentCheckout.Get(ctx, id)
	if ent.IsNotFound(err) || (err == nil && ck.PatientID != pid) {
		return nil, apperr.NotFoundf("payment checkout not found")
	}
	return ck, err
}

// money prints minor units as the API does ("12.50").
func money(minor int64) string {
	sign := ""
	if minor < 0 {
		sign, minor = "-", -minor
	}
	return fmt.Sprintf("%s%d.%02d", sign, minor/100, minor%100)
}
