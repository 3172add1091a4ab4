package payprovider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// SimulatedName is the name of the built-in simulated provider.
const SimulatedName = "simulated"

// Simulated is a provider that moves no money: its checkout only names a
// session. It is for demo mode and tests, where whoever holds the callback
// secret completes the payment as the provider would.
type Simulated struct{}

// Name implements Provider.
func (Simulated) Name() string { return SimulatedName }

// StartCheckout implements Provider.
func (Simulated) StartCheckout(_ context.Context, c Checkout) (Session, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return Session{}, err
	}
	id := "sim_" + hex.EncodeToString(b)
	how := "Approve the card payment"
	if c.Method == MobileMoney {
		how = "Approve the mobile-money prompt on your phone"
	}
	return Session{ID: id, Instructions: fmt.Sprintf("%s (simulated provider, session %s).", how, id)}, nil
}
