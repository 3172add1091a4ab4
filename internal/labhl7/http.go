package labhl7

import (
	"io"
	"log/slog"
	"mime"
	"net/http"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/ent/instrumentmessage"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/hl7"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// Pattern is where instruments post their messages.
const Pattern = "POST /hl7/v2"

// PolicyObject is what a role needs to post messages (not a GraphQL field).
const PolicyObject = "Ingest.hl7v2"

// MediaType is the HL7 v2 ER7 media type; text/plain is taken too.
const MediaType = "x-application/hl7-v2+er7"

// Policy is the access policy (authz.Enforcer).
type Policy interface {
	Allows(v *auth.Viewer, object string) bool
}

// Handler takes one message per request, the body ER7 text, and answers
// with its acknowledgement. A request that is no instrument's gets 401 or
// 403; every message an instrument posted gets 200 and an ACK, AA, AE or
// AR, which is what an HL7 sender acts on. Each is audited as the
// instrument's, with the patients it wrote to, before the answer leaves.
// Mount it behind the middleware that puts the viewer in the context.
func Handler(s *Service, enforcer Policy, trail *audit.Trail, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		v := auth.FromContext(ctx)
		info := requestinfo.From(ctx)
		e := audit.Entry{ActorID: v.ActorID(), Operation: "hl7v2", Kind: auditevent.KindHTTP,
			ClientAddr: info.ClientAddr, RequestID: info.RequestID, Outcome: auditevent.OutcomeALLOWED}
		if v != nil {
			e.ActorName, e.Roles = v.Username, v.Roles
		}
		fail := func(status int, msg string) {
			if _, err := trail.Append(ctx, e); err != nil {
				log.ErrorContext(ctx, "audit append failed", "err", err, "request_id", info.RequestID)
			}
			http.Error(w, msg, status)
		}
		switch {
		case v == nil:
			e.Outcome, e.ErrorCode = auditevent.OutcomeDENIED, "UNAUTHENTICATED"
			w.Header().Set("WWW-Authenticate", `Bearer realm="hmis"`)
			fail(http.StatusUnauthorized, "an instrument's API key is required")
			return
		case v.APIKeyID == "" || !enforcer.Allows(v, PolicyObject):
			e.Outcome, e.ErrorCode = auditevent.OutcomeDENIED, "FORBIDDEN"
			fail(http.StatusForbidden, "only an instrument's API key posts HL7 messages")
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != MediaType && mt != "text/plain") {
			e.Outcome, e.ErrorCode = auditevent.OutcomeFAILED, "BAD_USER_INPUT"
			fail(http.StatusUnsupportedMediaType, "Content-Type must be "+MediaType+" or text/plain")
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, MaxMessageBytes+1))
		if err != nil {
			e.Outcome, e.ErrorCode = auditevent.OutcomeFAILED, "BAD_USER_INPUT"
			fail(http.StatusBadRequest, "the body could not be read")
			return
		}
		if len(body) > MaxMessageBytes {
			e.Outcome, e.ErrorCode = auditevent.OutcomeFAILED, "BAD_USER_INPUT"
			fail(http.StatusRequestEntityTooLarge, "the message is too large")
			return
		}
		out, err := s.Receive(ctx, string(body), Origin{Transport: instrumentmessage.TransportHTTP, APIKeyID: v.APIKeyID})
		if err != nil {
			log.ErrorContext(ctx, "HL7 message failed; the instrument should send it again", "err", err, "request_id", info.RequestID)
			e.Outcome, e.ErrorCode = auditevent.OutcomeFAILED, "INTERNAL"
			fail(http.StatusServiceUnavailable, "internal error; send the message again")
			return
		}
		record(&e, out)
		if _, err := trail.Append(ctx, e); err != nil {
			log.ErrorContext(ctx, "audit append failed", "err", err, "request_id", info.RequestID)
			http.Error(w, "internal error; send the message again", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", MediaType)
		w.Header().Set("Cache-Control", "no-store")
		_, _ = io.WriteString(w, out.Ack)
	})
}

// record notes in e what a message did.
func record(e *audit.Entry, out *Outcome) {
	if out.Code != hl7.Accept {
		e.Outcome, e.ErrorCode, e.Reason = auditevent.OutcomeFAILED, string(out.Code), truncate(out.Reason, 500)
	}
	if out.InstrumentID != "" {
		e.ObjectTypes, e.ObjectIDs = append(e.ObjectTypes, "LabInstrument"), append(e.ObjectIDs, out.InstrumentID)
	}
	if out.MessageID != "" {
		e.ObjectTypes, e.ObjectIDs = append(e.ObjectTypes, "InstrumentMessage"), append(e.ObjectIDs, out.MessageID)
	}
	for _, id := range out.ResultIDs {
		e.ObjectTypes, e.ObjectIDs = append(e.ObjectTypes, "LabResult"), append(e.ObjectIDs, id)
	}
	e.PatientIDs = out.PatientIDs
}
