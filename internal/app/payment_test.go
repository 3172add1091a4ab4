package app

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/config"
)

func TestPaymentOptions(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	secret := strings.Repeat("s", 32)

	o, err := PaymentOptions(config.Config{}, log)
	if err != nil || o.Provider != nil {
		t.Fatalf("no provider outside demo mode by default: %+v, %v", o, err)
	}
	o, err = PaymentOptions(config.Config{Demo: true}, log)
	if err != nil || o.Provider == nil || !o.AllowSimulation || len(o.Secrets["simulated"]) < 32 {
		t.Fatalf("demo mode: the simulated provider with a random secret: %+v, %v", o, err)
	}
	if _, err := PaymentOptions(config.Config{PaymentProvider: "simulated"}, log); err == nil ||
		!strings.Contains(err.Error(), "HMIS_PAYMENT_CALLBACK_SECRETS") {
		t.Fatalf("a provider without a secret outside demo mode started: %v", err)
	}
	o, err = PaymentOptions(config.Config{PaymentProvider: "simulated", PaymentCallbackSecrets: "simulated:" + secret}, log)
	if err != nil || o.AllowSimulation || string(o.Secrets["simulated"]) != secret {
		t.Fatalf("staging: callbacks only, with the configured secret: %+v, %v", o, err)
	}
	if _, err := PaymentOptions(config.Config{Demo: true, PaymentCallbackSecrets: "simulated:short"}, log); err == nil {
		t.Fatal("a short secret was accepted")
	}
}
