package auth

import (
	"context"
	"time"
)

// Viewer is who a request acts for. Exactly one of a user, an API key or the
// system stands behind it; roles name Casbin subjects.
type Viewer struct {
	UserID    string
	Username  string
	Roles     []string
	StaffID   string // set when the user is a member of staff
	PatientID string // set when the user is a patient; row scope keys on it
	SessionID string
	APIKeyID  string
	// Scopes are the SMART scopes of an API key created with some; nil
	// for every other viewer. They narrow the role on the FHIR API.
	Scopes []string
	System bool // internal work (migrations, seeding, the outbox relay): not a person
	// ExpiresAt is when the credential stops being valid (zero: never).
	// Long-lived connections check it, and StillValid, before each event.
	ExpiresAt time.Time
}

// HasRole reports whether the viewer holds role.
func (v *Viewer) HasRole(role string) bool {
	if v == nil {
		return false
	}
	for _, r := range v.Roles {
		if r == role {
			return true
		}
	}
	return false
}

// ActorID names the viewer in the audit trail.
func (v *Viewer) ActorID() string {
	switch {
	case v == nil:
		return ""
	case v.UserID != "":
		return v.UserID
	case v.APIKeyID != "":
		return v.APIKeyID
	case v.System:
		return "system"
	}
	return ""
}

type viewerKey struct{}

// WithViewer returns ctx acting for v.
func WithViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// FromContext returns the viewer of ctx, nil for an anonymous request.
func FromContext(ctx context.Context) *Viewer {
	v, _ := ctx.Value(viewerKey{}).(*Viewer)
	return v
}

// SystemContext returns ctx acting as the system itself, which row scope lets
// see everything. Use it only for work no person asked for.
func SystemContext(ctx context.Context) context.Context {
	return WithViewer(ctx, &Viewer{System: true, Username: "system"})
}
