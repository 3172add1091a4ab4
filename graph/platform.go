package graph

import (
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/auth"
)

func authPayload(t *auth.Tokens) *model.AuthPayload {
	if t.Challenge != nil {
		// No tokens and no user until the second factor: the password
		// alone does not even say who signed in.
		return &model.AuthPayload{MfaRequired: true, Challenge: t.Challenge}
	}
	return &model.AuthPayload{AccessToken: &t.AccessToken, RefreshToken: &t.RefreshToken, ExpiresAt: &t.ExpiresAt, User: t.User}
}
