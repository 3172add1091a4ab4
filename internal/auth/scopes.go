package auth

import (
	"regexp"
	"strings"

	"github.com/hmis-dev/hmis/internal/apperr"
)

// A SMART-style scope (SMART App Launch v1 `patient/Observation.read` and
// v2 `patient/Observation.rs`) names a context, a resource type or `*`,
// and what may be done. HMIS keys hold them to narrow their role on the
// FHIR API: a scope never allows what the role does not.
var scopeSyntax = regexp.MustCompile(`^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.(read|write|\*|c?r?u?d?s?)$`)

// maxScopes bounds the scopes of one key: a real client asks for a few.
const maxScopes = 50

// CheckScopes validates scopes as SMART scopes, naming field in the error,
// and returns them trimmed, without duplicates.
func CheckScopes(field string, scopes []string) ([]string, error) {
	if len(scopes) > maxScopes {
		return nil, apperr.BadInput(field, "may hold at most %d scopes", maxScopes)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		s = strings.TrimSpace(s)
		m := scopeSyntax.FindStringSubmatch(s)
		if m == nil || m[3] == "" {
			return nil, apperr.BadInput(field, "%q is not a SMART scope such as user/*.read or system/Observation.rs", truncate(s, 80))
		}
		if m[1] == "patient" {
			// patient/ means one patient in context, chosen at a SMART
			// launch; a key has no such patient, and read as system/ it
			// would reach every patient its role does.
			return nil, apperr.BadInput(field, "%q: a key has no patient in context; use user/ (the patients of the member of staff it acts for) or system/", truncate(s, 80))
		}
		if p := m[3]; !(p == "read" || p == "*" || (p != "write" && strings.ContainsAny(p, "rs"))) {
			return nil, apperr.BadInput(field, "%q grants no reading, and the FHIR API only reads", truncate(s, 80))
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, nil
}

func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

// MayRead reports whether the viewer's scopes let it read resources of the
// FHIR type typ. A viewer without scopes (a user, or a key created without
// any) is limited by its role alone. `read`, `*` and a v2 permission with
// `r` allow reading; search (`s` in v2) is reading the same resources.
func (v *Viewer) MayRead(typ string) bool {
	if v == nil || v.System || v.Scopes == nil {
		return true
	}
	for _, s := range v.Scopes {
		m := scopeSyntax.FindStringSubmatch(s)
		if m == nil || (m[2] != "*" && m[2] != typ) {
			continue
		}
		if p := m[3]; p == "read" || p == "*" || (p != "write" && strings.ContainsAny(p, "rs")) {
			return true
		}
	}
	return false
}
