package labhl7

import (
	"context"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/labinstrument"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// RegisterInput is the input of registerLabInstrument.
type RegisterInput struct {
	Name               string
	SendingApplication string
	SendingFacility    *string
	Dialect            *labinstrument.Dialect
	CodeMap            []string
	AllowedAddress     *string
}

// Register adds an analyzer to the register, known by the MSH-3/MSH-4 of
// its messages.
func (s *Service) Register(ctx context.Context, in RegisterInput) (*ent.LabInstrument, error) {
	var c input.Checker
	name := c.Text("input.name", in.Name, 100)
	app := c.Text("input.sendingApplication", in.SendingApplication, 180)
	fac := c.OptionalText("input.sendingFacility", in.SendingFacility, 180)
	addr := c.OptionalText("input.allowedAddress", in.AllowedAddress, 50)
	if addr != nil {
		if _, err := parseAddress(*addr); err != nil {
			c.Fail(apperr.BadInput("input.allowedAddress", "must be an IP address or a network in CIDR notation"))
		}
	}
	if in.Dialect != nil {
		if err := labinstrument.DialectValidator(*in.Dialect); err != nil {
			c.Fail(apperr.BadInput("input.dialect", "is not a dialect"))
		}
	}
	codes := map[string]bool{}
	var targets []string
	for _, m := range in.CodeMap {
		from, to, ok := strings.Cut(m, "=")
		switch {
		case !ok || strings.TrimSpace(from) != from || from == "" || to == "" || len(m) > 60:
			c.Fail(apperr.BadInput("input.codeMap", "entries are INSTRUMENT=LOINC, e.g. WBC=6690-2 (%q is not)", m))
		case codes[from]:
			c.Fail(apperr.BadInput("input.codeMap", "maps %q twice", from))
		}
		codes[from] = true
		targets = append(targets, to)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.LabInstrument, error) {
		for _, code := range targets {
			ok, err := tx.LabTest.Query().Where(labtest.Code(code)).Exist(ctx)
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, apperr.BadInput("input.codeMap", "no lab test has the code %q", code)
			}
		}
		facility := ""
		if fac != nil {
			facility = *fac
		}
		out, err := tx.LabInstrument.Create().
			SetName(name).
			SetSendingApplication(app).
			SetSendingFacility(facility).
			SetNillableDialect(in.Dialect).
			SetCodeMap(in.CodeMap).
			SetNillableAllowedAddress(addr).
			Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("an instrument with this name or this MSH-3/MSH-4 is registered already")
		}
		return out, err
	})
}

// CreateKey issues the instrument's API key, with the role that may only
// post messages, and revokes the key it had: an instrument has one.
func (s *Service) CreateKey(ctx context.Context, id string) (*ent.LabInstrument, string, error) {
	if err := input.ID("id", id, input.LabInstrument); err != nil {
		return nil, "", err
	}
	inst, err := s.store.Client.LabInstrument.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, "", apperr.NotFoundf("lab instrument not found")
	} else if err != nil {
		return nil, "", err
	}
	key, secret, err := s.keys.CreateAPIKey(ctx, auth.FromContext(ctx), auth.APIKeyInput{Name: "instrument " + inst.Name, Role: Role})
	if err != nil {
		return nil, "", err
	}
	upd := s.store.Client.LabInstrument.UpdateOne(inst).SetAPIKeyID(key.ID)
	if inst.APIKeyID != nil {
		upd.Where(labinstrument.APIKeyID(*inst.APIKeyID))
	} else {
		upd.Where(labinstrument.APIKeyIDIsNil())
	}
	out, err := upd.Save(ctx)
	if err != nil {
		// Unbound, the new key is refused for want of an instrument;
		// revoke it so it does not linger.
		_, _ = s.keys.RevokeAPIKey(ctx, key.ID)
		if ent.IsNotFound(err) {
			return nil, "", apperr.Conflictf("the instrument's key was replaced meanwhile; try again")
		}
		return nil, "", err
	}
	if inst.APIKeyID != nil {
		if _, err := s.keys.RevokeAPIKey(ctx, *inst.APIKeyID); err != nil {
			return nil, "", err
		}
	}
	return out, secret, nil
}
