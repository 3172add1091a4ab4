package reports

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent/auditevent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/requestinfo"
)

// CSVPattern is where the reports are downloaded: /reports/revenue.csv?from=…
const CSVPattern = "GET /reports/{report}"

// Policy is the access policy (authz.Enforcer, which this package cannot
// import: the GraphQL layer that imports this one is below it).
type Policy interface {
	Allows(v *auth.Viewer, object string) bool
}

// CSVHandler serves every report as CSV behind the gates of the GraphQL
// field: the policy object Query.<report's field>, the same department
// scope (Run), and one audit row per request written before anything is
// sent. Mount it behind the middleware that puts the viewer in the
// request's context.
func CSVHandler(s *Service, enforcer Policy, trail *audit.Trail, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := strings.CutSuffix(r.PathValue("report"), ".csv")
		def := byName[name]
		if !ok || def == nil {
			// Not a report: left to other handlers of /reports/ (the
			// printable documents live under their own paths).
			http.NotFound(w, r)
			return
		}
		ctx, collector := audit.WithCollector(r.Context())
		body, status, err := serveCSV(ctx, s, enforcer, log, def, r)
		e := audit.RequestEntry(ctx, collector.Drain())
		e.Operation, e.Kind = "reports/"+def.name+".csv", auditevent.KindHTTP
		e.Outcome = auditevent.OutcomeALLOWED
		if err != nil {
			e.Outcome, e.ErrorCode = auditevent.OutcomeFAILED, string(err.Code)
			if err.Code == apperr.Unauthenticated || err.Code == apperr.Forbidden {
				e.Outcome = auditevent.OutcomeDENIED
			}
		}
		e.ObjectTypes, e.ObjectIDs = append(e.ObjectTypes, "Report"), append(e.ObjectIDs, def.name)
		if _, aerr := trail.Append(ctx, e); aerr != nil {
			log.ErrorContext(ctx, "audit append failed; report withheld", "err", aerr,
				"request_id", requestinfo.From(ctx).RequestID)
			body, status, err = nil, http.StatusInternalServerError, &apperr.Error{Code: apperr.Internal, Message: "internal error"}
		}
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if err != nil {
			writeError(w, status, err)
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+def.name+`.csv"`)
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

func serveCSV(ctx context.Context, s *Service, enforcer Policy, log *slog.Logger, def *definition, r *http.Request) ([]byte, int, *apperr.Error) {
	v := auth.FromContext(ctx)
	object := "Query." + def.query
	if v == nil {
		audit.NoteDenied(ctx, object)
		return nil, http.StatusUnauthorized, apperr.Unauthenticatedf("sign in to download reports")
	}
	if !enforcer.Allows(v, object) {
		audit.NoteDenied(ctx, object)
		return nil, http.StatusForbidden, apperr.Denied("your role may not run the %s report", def.name)
	}
	p, perr := paramsFromQuery(r)
	if perr != nil {
		return nil, http.StatusBadRequest, perr
	}
	rep, err := s.Run(ctx, def.name, p)
	if err != nil {
		ae, ok := apperr.As(err)
		if !ok {
			log.ErrorContext(ctx, "report "+def.name, "err", err, "request_id", requestinfo.From(ctx).RequestID)
			return nil, http.StatusInternalServerError, &apperr.Error{Code: apperr.Internal, Message: "internal error"}
		}
		return nil, statusOf(ae.Code), ae
	}
	return WriteCSV(rep), http.StatusOK, nil
}

// WriteCSV writes a report as CSV: a header of its columns, then its rows;
// a suppressed cell is empty. The GraphQL answer and the CSV are the same
// table.
func WriteCSV(rep *Report) []byte {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.Write(rep.Columns)
	for _, row := range rep.Rows {
		rec := make([]string, len(row))
		for i, c := range row {
			if c != nil {
				rec[i] = *c
			}
		}
		_ = cw.Write(rec)
	}
	cw.Flush()
	return buf.Bytes()
}

// paramsFromQuery reads the report's parameters from the URL, named as in
// ReportInput, so that the errors name the same fields.
func paramsFromQuery(r *http.Request) (Params, *apperr.Error) {
	q := r.URL.Query()
	var p Params
	date := func(key string) (time.Time, *apperr.Error) {
		v := q.Get(key)
		if v == "" {
			return time.Time{}, nil
		}
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return time.Time{}, apperr.BadInput("input."+key, "%q is not a date YYYY-MM-DD", v)
		}
		return t, nil
	}
	var err *apperr.Error
	if p.From, err = date("from"); err != nil {
		return p, err
	}
	if p.To, err = date("to"); err != nil {
		return p, err
	}
	p.Bucket = Bucket(strings.ToUpper(q.Get("bucket")))
	p.DepartmentID, p.WardID, p.PayerID = q.Get("departmentId"), q.Get("wardId"), q.Get("payerId")
	return p, nil
}

func statusOf(c apperr.Code) int {
	switch c {
	case apperr.Unauthenticated:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.BadUserInput:
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// writeError answers in the shape of the API's own errors.
func writeError(w http.ResponseWriter, status int, err *apperr.Error) {
	ext := map[string]any{"code": string(err.Code)}
	if err.Field != "" {
		ext["field"] = err.Field
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", "Bearer")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []map[string]any{{"message": err.Error(), "extensions": ext}},
	})
}
