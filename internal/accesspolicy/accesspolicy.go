// Package accesspolicy keeps the access policy as live data: numbered
// versions in the database, proposals a second admin approves, rollbacks,
// and the reload of every instance's enforcer when the version in force
// changes. The built-in policy (or HMIS_POLICY_FILE) is version 0.
package accesspolicy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/policyproposal"
	"github.com/hmis-dev/hmis/ent/policyversion"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/accesspolicy/policyapi"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/store"
)

// The views the API returns, kept in policyapi for the resolvers.
type (
	Change       = policyapi.Change
	AccessPolicy = policyapi.AccessPolicy
	Version      = policyapi.Version
	RoleChange   = policyapi.RoleChange
	Status       = policyapi.Status
	Proposal     = policyapi.Proposal
)

// Service changes the policy and keeps this instance's enforcer on the
// version in force.
type Service struct {
	store    *store.Store
	enforcer *authz.Enforcer
	model    string
	baseline string
	schema   *ast.Schema
	log      *slog.Logger
	// publish tells the other instances a new version is in force; nil
	// when this process is the only one (no Redis).
	publish func(ctx context.Context, version int)
	syncMu  sync.Mutex
}

// NewService returns the service over enforcer, whose version 0 is
// baseline, checking changes against schema.
func NewService(st *store.Store, enforcer *authz.Enforcer, model, baseline string, schema *ast.Schema, log *slog.Logger) *Service {
	return &Service{store: st, enforcer: enforcer, model: model, baseline: baseline, schema: schema, log: log}
}

// Schema is the schema changes are checked against.
func (s *Service) Schema() *ast.Schema { return s.schema }

// Sync loads the version in force from the database into the enforcer if
// this instance runs another one. It is what every notice of a change,
// and every poll, comes down to.
func (s *Service) Sync(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	ctx = auth.SystemContext(ctx)
	number, text, err := s.current(ctx, s.store.Client)
	if err != nil {
		return err
	}
	if number == s.enforcer.Version() {
		return nil
	}
	if err := s.enforcer.Reload(s.model, text, number); err != nil {
		// The instance keeps deciding from the version it has: a version
		// was checked before it was stored, so this is a damaged row.
		return fmt.Errorf("access policy version %d does not load: %w", number, err)
	}
	s.log.Info("access policy loaded", "version", number)
	return nil
}

// current reads the number and lines of the version in force.
func (s *Service) current(ctx context.Context, client *ent.Client) (int, string, error) {
	return Current(ctx, client, s.baseline)
}

// Current reads the number and lines of the version in force from the
// database; with none stored, baseline is in force as version 0.
func Current(ctx context.Context, client *ent.Client, baseline string) (int, string, error) {
	v, err := client.PolicyVersion.Query().Order(ent.Desc(policyversion.FieldNumber)).First(ctx)
	switch {
	case ent.IsNotFound(err):
		return 0, baseline, nil
	case err != nil:
		return 0, "", err
	}
	return v.Number, v.Lines, nil
}

// linesOf reads the lines of version number.
func (s *Service) linesOf(ctx context.Context, client *ent.Client, number int) (string, error) {
	if number == 0 {
		return s.baseline, nil
	}
	v, err := client.PolicyVersion.Query().Where(policyversion.Number(number)).Only(ctx)
	if ent.IsNotFound(err) {
		return "", apperr.BadInput("toVersion", "there is no version %d", number)
	}
	if err != nil {
		return "", err
	}
	return v.Lines, nil
}

// Policy is the policy in force on this instance, with the versions stored.
func (s *Service) Policy(ctx context.Context) (*AccessPolicy, error) {
	text := s.enforcer.Text()
	lines, _ := authz.PolicyLines(text)
	out := &AccessPolicy{Version: s.enforcer.Version(), Lines: lines, Roles: s.enforcer.Roles()}
	versions, err := s.store.Client.PolicyVersion.Query().
		Select(policyversion.FieldID, policyversion.FieldNumber, policyversion.FieldReason, policyversion.FieldAppliedBy,
			policyversion.FieldProposedBy, policyversion.FieldProposalID, policyversion.FieldRestores, policyversion.FieldCreatedAt).
		Order(ent.Desc(policyversion.FieldNumber)).All(ctx)
	if err != nil {
		return nil, err
	}
	for _, v := range versions {
		out.Versions = append(out.Versions, versionView(v))
	}
	return out, nil
}

func versionView(v *ent.PolicyVersion) *Version {
	out := &Version{Number: v.Number, Reason: v.Reason, AppliedBy: v.AppliedBy, Restores: v.Restores, CreatedAt: v.CreatedAt}
	if v.ProposedBy != "" {
		out.ProposedBy = &v.ProposedBy
	}
	if v.ProposalID != "" {
		out.ProposalID = &v.ProposalID
	}
	return out
}

// Proposals lists proposals, newest first; by status when given.
func (s *Service) Proposals(ctx context.Context, status *Status) ([]*Proposal, error) {
	q := s.store.Client.PolicyProposal.Query().Order(ent.Desc(policyproposal.FieldCreatedAt), ent.Desc(policyproposal.FieldID))
	if status != nil {
		q = q.Where(policyproposal.StatusEQ(policyproposal.Status(*status)))
	}
	rows, err := q.All(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Proposal, len(rows))
	for i, r := range rows {
		out[i] = proposalView(r)
	}
	return out, nil
}

func proposalView(p *ent.PolicyProposal) *Proposal {
	out := &Proposal{ID: p.ID, BaseVersion: p.BaseVersion, Add: p.AddLines, Remove: p.RemoveLines, Reason: p.Reason,
		ProposedBy: p.ProposedByName, Status: Status(p.Status), AppliedVersion: p.AppliedVersion, CreatedAt: p.CreatedAt}
	if p.DecidedByName != "" {
		out.DecidedBy = &p.DecidedByName
	}
	if p.DecisionReason != "" {
		out.DecisionReason = &p.DecisionReason
	}
	_ = json.Unmarshal([]byte(p.Preview), &out.Preview)
	if out.Preview == nil {
		out.Preview = []*RoleChange{}
	}
	return out
}

// checked is a change that passed every check.
type checked struct {
	text    string
	add     []string
	remove  []string
	preview []*RoleChange
}

// check applies change to the lines of its base version (baseText) and
// runs every check on the result, online ones included: the users who
// could approve a change afterwards are read through client.
func (s *Service) check(ctx context.Context, client *ent.Client, baseText string, c Change) (*checked, error) {
	if strings.TrimSpace(c.Reason) == "" {
		return nil, apperr.BadInput("input.reason", "must say why")
	}
	base, errs := authz.PolicyLines(baseText)
	if len(errs) > 0 {
		return nil, fmt.Errorf("the base version does not parse: %w", errors.Join(errs...))
	}
	out := &checked{}
	present := map[string]bool{}
	for _, l := range base {
		present[l] = true
	}
	for i, raw := range c.Remove {
		l, err := authz.ParseLine(raw)
		if err != nil {
			return nil, apperr.BadInput(fmt.Sprintf("input.remove[%d]", i), "%v", err)
		}
		if !present[l.String()] {
			return nil, apperr.BadInput(fmt.Sprintf("input.remove[%d]", i), "%q is not a line of version %d", l.String(), c.BaseVersion)
		}
		if slices.Contains(out.remove, l.String()) {
			return nil, apperr.BadInput(fmt.Sprintf("input.remove[%d]", i), "%q is removed twice", l.String())
		}
		out.remove = append(out.remove, l.String())
	}
	for i, raw := range c.Add {
		l, err := authz.ParseLine(raw)
		if err != nil {
			return nil, apperr.BadInput(fmt.Sprintf("input.add[%d]", i), "%v", err)
		}
		field := fmt.Sprintf("input.add[%d]", i)
		switch {
		case present[l.String()] && !slices.Contains(out.remove, l.String()):
			return nil, apperr.BadInput(field, "%q is already a line of version %d", l.String(), c.BaseVersion)
		case slices.Contains(out.add, l.String()):
			return nil, apperr.BadInput(field, "%q is added twice", l.String())
		case l.Kind == "p" && !authz.KnownObject(s.schema, l.Fields[1]):
			return nil, apperr.BadInput(field, "%s is no GraphQL coordinate (Type.field) and no object the server asks about", l.Fields[1])
		case authz.BroadGrant(l):
			return nil, apperr.BadInput(field, "%s would grant every operation of its kind, those added later included: grant them one by one or through building blocks", l.Fields[1])
		}
		out.add = append(out.add, l.String())
	}
	if len(out.add)+len(out.remove) == 0 {
		return nil, apperr.BadInput("input.add", "the change adds and removes nothing")
	}
	var lines []string
	for _, l := range base {
		if !slices.Contains(out.remove, l) {
			lines = append(lines, l)
		}
	}
	lines = append(lines, out.add...)
	out.text = strings.Join(lines, "\n") + "\n"
	// A removal is what takes admin's powers away; an addition can too (a
	// deny line).
	field := "input.add"
	if len(out.remove) > 0 {
		field = "input.remove"
	}
	next, errs := authz.CheckPolicy(s.model, out.text, s.schema)
	if len(errs) > 0 {
		return nil, apperr.BadInput(field, "%v", errors.Join(errs...))
	}
	prev, err := authz.NewEnforcer(s.model, baseText)
	if err != nil {
		return nil, err
	}
	if err := s.checkRoles(ctx, client, prev, next, field); err != nil {
		return nil, err
	}
	out.preview = s.preview(prev, next, append(slices.Clone(out.add), out.remove...))
	return out, nil
}

// checkRoles refuses what would silently change who holds which role: a
// new role named only in a rule (a typo of an existing one, most likely),
// a role users hold that a grant turns into a building block, and a policy
// under which no active user could approve a change.
func (s *Service) checkRoles(ctx context.Context, client *ent.Client, prev, next *authz.Enforcer, field string) error {
	old := prev.Subjects()
	grantsOf := map[string]bool{}
	for _, l := range strings.Split(next.Text(), "\n") {
		if pl, err := authz.ParseLine(l); err == nil && pl.Kind == "g" {
			grantsOf[pl.Fields[0]] = true
		}
	}
	for subject := range next.Subjects() {
		if !old[subject] && !grantsOf[subject] {
			return apperr.BadInput(field, "role %s is new: give it building blocks with g lines (g, %s, signed_in) as well as rules", subject, subject)
		}
	}
	for _, role := range prev.Roles() {
		if next.Subjects()[role] && !next.IsRole(role) {
			return apperr.BadInput(field, "role %s, which users hold, would become a building block of another role; grant the other role %s's building blocks instead", role, role)
		}
	}
	users, err := client.User.Query().Where(user.Active(true)).Select(user.FieldRoles).All(auth.SystemContext(ctx))
	if err != nil {
		return err
	}
	for _, u := range users {
		if next.Allows(&auth.Viewer{Roles: u.Roles}, "Mutation.approvePolicyChange") {
			return nil
		}
	}
	return apperr.BadInput(field, "no active user could approve a change afterwards")
}

// preview compares, for every role the change touches, the root
// operations, the special objects and the objects the change names.
func (s *Service) preview(prev, next *authz.Enforcer, diff []string) []*RoleChange {
	touched := map[string]bool{}
	objects := append(authz.RootOperations(s.schema), authz.SpecialObjects()...)
	for _, raw := range diff {
		l, _ := authz.ParseLine(raw)
		touched[l.Fields[0]] = true
		if l.Kind == "p" && !slices.Contains(objects, l.Fields[1]) {
			objects = append(objects, l.Fields[1])
		}
	}
	roles := map[string]bool{authz.Anonymous: true}
	for _, r := range append(prev.Roles(), next.Roles()...) {
		roles[r] = true
	}
	var out []*RoleChange
	for role := range roles {
		affected := false
		for _, e := range []*authz.Enforcer{prev, next} {
			for _, r := range e.ImpliedRoles(role) {
				affected = affected || touched[r]
			}
		}
		if !affected {
			continue
		}
		rc := &RoleChange{Role: role, NewlyDenied: []string{}, NewlyAllowed: []string{}}
		for _, o := range objects {
			before, after := prev.RoleAllows(role, o), next.RoleAllows(role, o)
			switch {
			case before && !after:
				rc.NewlyDenied = append(rc.NewlyDenied, o)
			case after && !before:
				rc.NewlyAllowed = append(rc.NewlyAllowed, o)
			}
		}
		if len(rc.NewlyDenied)+len(rc.NewlyAllowed) > 0 || !prev.IsRole(role) || !next.IsRole(role) {
			out = append(out, rc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Role < out[j].Role })
	return out
}

// Preview checks a change without proposing it.
func (s *Service) Preview(ctx context.Context, c Change) ([]*RoleChange, error) {
	number, text, err := s.current(ctx, s.store.Client)
	if err != nil {
		return nil, err
	}
	if c.BaseVersion != number {
		return nil, apperr.Conflictf("the policy is at version %d, not %d: write the change against it", number, c.BaseVersion)
	}
	ch, err := s.check(ctx, s.store.Client, text, c)
	if err != nil {
		return nil, err
	}
	return ch.preview, nil
}

// Propose checks a change and stores it for a second admin.
func (s *Service) Propose(ctx context.Context, c Change) (*Proposal, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.UserID == "" {
		return nil, apperr.Denied("only a signed-in admin proposes policy changes")
	}
	audit.NoteReason(ctx, c.Reason)
	number, text, err := s.current(ctx, s.store.Client)
	if err != nil {
		return nil, err
	}
	if c.BaseVersion != number {
		return nil, apperr.Conflictf("the policy is at version %d, not %d: write the change against it", number, c.BaseVersion)
	}
	ch, err := s.check(ctx, s.store.Client, text, c)
	if err != nil {
		return nil, err
	}
	preview, err := json.Marshal(ch.preview)
	if err != nil {
		return nil, err
	}
	p, err := s.store.Client.PolicyProposal.Create().
		SetBaseVersion(number).SetAddLines(nonNil(ch.add)).SetRemoveLines(nonNil(ch.remove)).
		SetReason(strings.TrimSpace(c.Reason)).SetProposedBy(v.UserID).SetProposedByName(v.Username).
		SetPreview(string(preview)).Save(ctx)
	if err != nil {
		return nil, err
	}
	audit.NoteObject(ctx, "PolicyProposal", p.ID)
	return proposalView(p), nil
}

func nonNil(xs []string) []string {
	if xs == nil {
		return []string{}
	}
	return xs
}

// Approve applies a proposal as the next version, checked again against
// the users of the moment. The approver must be another admin than the
// proposer. Two approvals on the same base race for the same version
// number, which is unique: exactly one applies, the other is a CONFLICT.
func (s *Service) Approve(ctx context.Context, id string, reason *string) (*Proposal, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.UserID == "" {
		return nil, apperr.Denied("only a signed-in admin approves policy changes")
	}
	why := ""
	if reason != nil {
		why = strings.TrimSpace(*reason)
	}
	audit.NoteObject(ctx, "PolicyProposal", id)
	p, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PolicyProposal, error) {
		p, err := tx.PolicyProposal.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("no policy proposal %s", id)
		}
		if err != nil {
			return nil, err
		}
		if why == "" {
			why = p.Reason
		}
		audit.NoteReason(ctx, why)
		switch {
		case p.Status != policyproposal.StatusPROPOSED:
			return nil, apperr.Conflictf("the proposal is %s, not PROPOSED", p.Status)
		case p.ProposedBy == v.UserID:
			return nil, apperr.Denied("a second admin must approve a policy change: you proposed this one")
		}
		number, text, err := s.current(ctx, tx.Client())
		if err != nil {
			return nil, err
		}
		if number != p.BaseVersion {
			return nil, apperr.Conflictf("the proposal was written against version %d and the policy is at version %d now: propose it again", p.BaseVersion, number)
		}
		ch, err := s.check(ctx, tx.Client(), text, Change{BaseVersion: number, Add: p.AddLines, Remove: p.RemoveLines, Reason: p.Reason})
		if err != nil {
			return nil, err
		}
		version, err := tx.PolicyVersion.Create().SetNumber(number + 1).SetLines(ch.text).SetReason(p.Reason).
			SetAppliedBy(v.Username).SetProposedBy(p.ProposedByName).SetProposalID(p.ID).Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("another change was applied on version %d first: propose it again", number)
		}
		if err != nil {
			return nil, err
		}
		audit.NoteObject(ctx, "PolicyVersion", version.ID)
		if err := tx.PolicyProposal.Update().
			Where(policyproposal.StatusEQ(policyproposal.StatusPROPOSED), policyproposal.BaseVersion(number), policyproposal.IDNEQ(p.ID)).
			SetStatus(policyproposal.StatusSUPERSEDED).Exec(ctx); err != nil {
			return nil, err
		}
		return tx.PolicyProposal.UpdateOne(p).SetStatus(policyproposal.StatusAPPLIED).SetAppliedVersion(number + 1).
			SetDecidedBy(v.UserID).SetDecidedByName(v.Username).SetDecisionReason(why).Save(ctx)
	})
	if err != nil {
		return nil, conflictOnRace(err)
	}
	s.applied(ctx, *p.AppliedVersion)
	return proposalView(p), nil
}

// conflictOnRace turns the database's refusal of the second of two racing
// writers (a unique version number, SQLite's busy lock) into CONFLICT.
func conflictOnRace(err error) error {
	if _, ok := apperr.As(err); ok {
		return err
	}
	if ent.IsConstraintError(err) || strings.Contains(err.Error(), "UNIQUE constraint") ||
		strings.Contains(err.Error(), "duplicate key") || strings.Contains(err.Error(), "database is locked") ||
		strings.Contains(err.Error(), "could not serialize") {
		return apperr.Conflictf("another policy change was applied at the same time: look at accessPolicy and try again")
	}
	return err
}

// Reject rejects a proposal, or withdraws it when its proposer does.
func (s *Service) Reject(ctx context.Context, id, reason string) (*Proposal, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.UserID == "" {
		return nil, apperr.Denied("only a signed-in admin rejects policy changes")
	}
	if strings.TrimSpace(reason) == "" {
		return nil, apperr.BadInput("reason", "must say why")
	}
	audit.NoteReason(ctx, reason)
	audit.NoteObject(ctx, "PolicyProposal", id)
	p, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.PolicyProposal, error) {
		p, err := tx.PolicyProposal.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("no policy proposal %s", id)
		}
		if err != nil {
			return nil, err
		}
		if p.Status != policyproposal.StatusPROPOSED {
			return nil, apperr.Conflictf("the proposal is %s, not PROPOSED", p.Status)
		}
		status := policyproposal.StatusREJECTED
		if p.ProposedBy == v.UserID {
			status = policyproposal.StatusWITHDRAWN
		}
		return tx.PolicyProposal.UpdateOne(p).Where(policyproposal.StatusEQ(policyproposal.StatusPROPOSED)).
			SetStatus(status).SetDecidedBy(v.UserID).SetDecidedByName(v.Username).SetDecisionReason(strings.TrimSpace(reason)).Save(ctx)
	})
	if err != nil {
		return nil, conflictOnRace(err)
	}
	return proposalView(p), nil
}

// Rollback restores the lines of an earlier version as the next version.
// One admin may do it alone: it returns to a policy that was in force, and
// a change that locked people out must be undone without waiting for a
// second admin. It passes the same checks as a change.
func (s *Service) Rollback(ctx context.Context, to int, reason string) (*AccessPolicy, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.UserID == "" {
		return nil, apperr.Denied("only a signed-in admin rolls the policy back")
	}
	if strings.TrimSpace(reason) == "" {
		return nil, apperr.BadInput("reason", "must say why")
	}
	audit.NoteReason(ctx, reason)
	number, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (int, error) {
		number, _, err := s.current(ctx, tx.Client())
		if err != nil {
			return 0, err
		}
		if to < 0 || to >= number {
			return 0, apperr.BadInput("toVersion", "must be an earlier version than %d, the one in force", number)
		}
		text, err := s.linesOf(ctx, tx.Client(), to)
		if err != nil {
			return 0, err
		}
		if _, errs := authz.CheckPolicy(s.model, text, s.schema); len(errs) > 0 {
			return 0, apperr.BadInput("toVersion", "version %d no longer passes the checks: %v", to, errors.Join(errs...))
		}
		version, err := tx.PolicyVersion.Create().SetNumber(number + 1).SetLines(text).SetReason(strings.TrimSpace(reason)).
			SetAppliedBy(v.Username).SetRestores(to).Save(ctx)
		if err != nil {
			return 0, err
		}
		audit.NoteObject(ctx, "PolicyVersion", version.ID)
		// What was proposed on the version rolled back from no longer fits.
		if err := tx.PolicyProposal.Update().
			Where(policyproposal.StatusEQ(policyproposal.StatusPROPOSED), policyproposal.BaseVersion(number)).
			SetStatus(policyproposal.StatusSUPERSEDED).Exec(ctx); err != nil {
			return 0, err
		}
		return number + 1, nil
	})
	if err != nil {
		return nil, conflictOnRace(err)
	}
	s.applied(ctx, number)
	return s.Policy(ctx)
}

// applied loads a version this instance just stored and tells the others.
func (s *Service) applied(ctx context.Context, version int) {
	if err := s.Sync(context.WithoutCancel(ctx)); err != nil {
		s.log.ErrorContext(ctx, "access policy: reload after a change failed", "err", err)
	}
	if s.publish != nil {
		s.publish(context.WithoutCancel(ctx), version)
	}
}
