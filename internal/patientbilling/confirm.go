package patientbilling

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/paymentcheckout"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/charges"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/payprovider"
)

// ErrBadSignature is a callback whose signature does not verify under the
// provider's secret: nothing in it is believed.
var ErrBadSignature = apperr.Unauthenticatedf("the callback's signature does not verify")

// Confirm applies a provider's callback: body is the raw request body and
// signature its SignatureHeader. A success records the payment for the
// checkout's invoice and amount (the body only names the checkout, the
// provider's reference and the outcome) and is idempotent: the same
// callback again, or twice at once, records one payment. Once a reference
// has succeeded, no other reference settles the checkout; a failure never
// undoes a success, but a success after a failure is recorded, since the
// provider says money moved.
func (s *Service) Confirm(ctx context.Context, provider string, body []byte, signature string) (*ent.PaymentCheckout, error) {
	if !payprovider.Verify(s.o.Secrets[provider], body, signature) {
		return nil, ErrBadSignature
	}
	cb, err := payprovider.ParseCallback(body)
	if err != nil {
		return nil, apperr.BadInput("body", "%v", err)
	}
	// No person stands behind a callback: the signature is its authority.
	ctx = auth.SystemContext(ctx)
	notFound := apperr.NotFoundf("payment checkout not found")
	if !input.PaymentCheckout.Valid(cb.CheckoutID) {
		return nil, notFound
	}
	c := s.store.Client.PaymentCheckout
	ck, err := c.Get(ctx, cb.CheckoutID)
	if ent.IsNotFound(err) || (err == nil && ck.Provider != provider) {
		return nil, notFound
	} else if err != nil {
		return nil, err
	}
	now := input.Stored(s.now())
	if cb.Outcome == payprovider.Failed {
		if err := c.Update().Where(paymentcheckout.ID(ck.ID), paymentcheckout.StatusEQ(paymentcheckout.StatusPENDING)).
			SetStatus(paymentcheckout.StatusFAILED).SetCompletedAt(now).Exec(ctx); err != nil {
			return nil, err
		}
		return c.Get(ctx, ck.ID)
	}
	// The first reference to succeed claims the checkout, in one
	// conditional update, so two different transactions of the provider
	// can never both be recorded against it.
	n, err := c.Update().Where(paymentcheckout.ID(ck.ID), paymentcheckout.Or(
		paymentcheckout.ProviderReferenceIsNil(), paymentcheckout.ProviderReference(cb.Reference))).
		SetProviderReference(cb.Reference).Save(ctx)
	if ent.IsConstraintError(err) {
		return nil, apperr.Conflictf("the provider's transaction confirms another checkout")
	} else if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, apperr.Conflictf("the checkout was already paid by another transaction of the provider")
	}
	p, err := s.charges.ReceiveOnlinePayment(ctx, charges.OnlinePayment{PatientID: ck.PatientID, InvoiceID: ck.InvoiceID,
		Method: payment.Method(ck.Method), Amount: ck.Amount, Provider: provider, ProviderReference: cb.Reference})
	if err != nil {
		// Unclaim the reference, so that the provider's retry, or its
		// true transaction, can still settle the checkout; the money
		// that moved must not be stranded by one refused callback.
		_ = c.Update().Where(paymentcheckout.ID(ck.ID), paymentcheckout.ProviderReference(cb.Reference),
			paymentcheckout.PaymentIDIsNil()).ClearProviderReference().Exec(ctx)
		return nil, err
	}
	if err := c.Update().Where(paymentcheckout.ID(ck.ID), paymentcheckout.Or(
		paymentcheckout.PaymentIDIsNil(), paymentcheckout.PaymentID(p.ID))).
		SetStatus(paymentcheckout.StatusSUCCEEDED).SetPaymentID(p.ID).SetCompletedAt(now).Exec(ctx); err != nil {
		return nil, err
	}
	return c.Get(ctx, ck.ID)
}

// SimulateCompletion completes one of the viewer's checkouts of the
// simulated provider as the provider would: it signs a callback with the
// provider's secret and hands it to Confirm. Demo mode only.
func (s *Service) SimulateCompletion(ctx context.Context, checkoutID string, succeed bool) (*ent.PaymentCheckout, error) {
	if err := input.ID("checkoutId", checkoutID, input.PaymentCheckout); err != nil {
		return nil, err
	}
	if !s.o.AllowSimulation {
		return nil, apperr.Conflictf("payments are completed by the provider; simulating one is for demo mode only")
	}
	ck, err := s.MyPaymentCheckout(ctx, checkoutID)
	if err != nil {
		return nil, err
	}
	if ck.Provider != payprovider.SimulatedName {
		return nil, apperr.BadInput("checkoutId", "is not a checkout of the simulated provider")
	}
	outcome := payprovider.Failed
	if succeed {
		outcome = payprovider.Succeeded
	}
	ref := "simtx-" + ck.ID
	if ck.ProviderSessionID != nil {
		ref = "simtx-" + *ck.ProviderSessionID
	}
	body, err := json.Marshal(payprovider.Callback{CheckoutID: ck.ID, Reference: ref, Outcome: outcome})
	if err != nil {
		return nil, err
	}
	out, err := s.Confirm(ctx, payprovider.SimulatedName, body, payprovider.Sign(s.o.Secrets[payprovider.SimulatedName], body))
	if errors.Is(err, ErrBadSignature) {
		return nil, apperr.Conflictf("the simulated provider has no callback secret")
	}
	return out, err
}
