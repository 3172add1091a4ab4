package patientbilling

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/payprovider"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// CallbackPattern is the route of providers' callbacks.
const CallbackPattern = "POST /payments/callback/{provider}"

// maxCallbackBytes bounds a callback body: the three fields HMIS reads fit
// many times over.
const maxCallbackBytes = 64 << 10

// CallbackHandler serves providers' callbacks. Every callback, believed or
// not, leaves a row in the audit trail.
func CallbackHandler(s *Service, trail *audit.Trail, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		provider := r.PathValue("provider")
		ctx := r.Context()
		body, err := io.ReadAll(io.LimitReader(r.Body, maxCallbackBytes+1))
		var status int
		var answer any
		var ckID, patientID string
		switch {
		case err != nil:
			status, answer = http.StatusBadRequest, errorBody(apperr.BadInput("body", "could not be read"))
		case len(body) > maxCallbackBytes:
			status, answer = http.StatusRequestEntityTooLarge, errorBody(apperr.BadInput("body", "is too large"))
		default:
			ck, err := s.Confirm(ctx, provider, body, r.Header.Get(payprovider.SignatureHeader))
			if err == nil {
				status, answer = http.StatusOK, map[string]any{"checkoutId": ck.ID, "status": ck.Status}
				ckID, patientID = ck.ID, ck.PatientID
				break
			}
			status = statusOf(err)
			if status == http.StatusInternalServerError {
				log.ErrorContext(ctx, "payment callback failed; the provider will retry", "provider", provider, "err", err,
					"request_id", requestinfo.From(ctx).RequestID)
				err = &apperr.Error{Code: apperr.Internal, Message: "internal error"}
			} else if status != http.StatusUnauthorized {
				// A signed callback refused: the provider may say money
				// moved that could not be recorded, so someone must look.
				log.WarnContext(ctx, "payment callback refused", "provider", provider, "err", err,
					"request_id", requestinfo.From(ctx).RequestID)
			}
			answer = errorBody(err)
		}
		info := requestinfo.From(ctx)
		e := audit.Entry{ActorID: "provider:" + provider, ActorName: provider, Operation: "paymentCallback",
			Kind: auditevent.KindHTTP, ClientAddr: info.ClientAddr, RequestID: info.RequestID, Outcome: auditevent.OutcomeALLOWED}
		switch {
		case status == http.StatusUnauthorized:
			e.Outcome, e.ErrorCode = auditevent.OutcomeDENIED, string(apperr.Unauthenticated)
		case status != http.StatusOK:
			e.Outcome, e.ErrorCode = auditevent.OutcomeFAILED, string(apperr.CodeOf(errFrom(answer)))
		}
		if ckID != "" {
			e.ObjectTypes, e.ObjectIDs, e.PatientIDs = []string{"PaymentCheckout"}, []string{ckID}, []string{patientID}
		}
		if _, err := trail.Append(ctx, e); err != nil {
			log.ErrorContext(ctx, "audit append failed; callback answered 500 for the provider to retry", "err", err,
				"request_id", info.RequestID)
			status, answer = http.StatusInternalServerError, errorBody(&apperr.Error{Code: apperr.Internal, Message: "internal error"})
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(answer)
	})
}

type errorAnswer struct {
	Errors []map[string]any `json:"errors"`
	err    error
}

func errorBody(err error) errorAnswer {
	ext := map[string]any{"code": string(apperr.CodeOf(err))}
	if ae, ok := apperr.As(err); ok && ae.Field != "" {
		ext["field"] = ae.Field
	}
	return errorAnswer{Errors: []map[string]any{{"message": err.Error(), "extensions": ext}}, err: err}
}

func errFrom(answer any) error {
	if a, ok := answer.(errorAnswer); ok {
		return a.err
	}
	return nil
}

// statusOf is the HTTP status a provider gets: 2xx and 4xx stop its
// retries, 5xx asks for them.
func statusOf(err error) int {
	if errors.Is(err, ErrBadSignature) {
		return http.StatusUnauthorized
	}
	switch apperr.CodeOf(err) {
	case apperr.BadUserInput:
		return http.StatusBadRequest
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}
