package graph

import (
	"github.com/hmis-dev/hmis/graph/model"
	"github.com/hmis-dev/hmis/internal/auth"
)

func authPayload(t *auth.Tokens) *model.AuthPayload {
	return &model.AuthPayload{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, ExpiresAt: t.ExpiresAt, User: t.User}
}
