// Package authz decides what a viewer may do: the Casbin enforcer over
// policies/, the GraphQL field guard that asks it about every field, and
// the row scope that keeps ent queries to the rows a viewer may see.
package authz

import (
	"crypto/sha256"
	"fmt"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	stringadapter "github.com/casbin/casbin/v2/persist/string-adapter"

	"github.com/hmis-dev/hmis/internal/auth"
)

// Anonymous is the role of a request without credentials.
const Anonymous = "anonymous"

// Enforcer answers "may this role reach this object" from the policy.
// Decisions are memoized: a page of 100 objects asks the same few questions
// thousands of times. The policy can change while the server runs (an
// approved change, a rollback, another instance's change): Reload swaps in
// a whole new policy with empty memos at once, so a decision is always
// from one policy, never a mix of the old and the new.
type Enforcer struct {
	live atomic.Pointer[policy]
	// evaluations counts decisions Casbin actually computed, the rest
	// having come from the memo.
	evaluations atomic.Int64
	clock       clock
}

// policy is one loaded policy with the decisions made from it.
type policy struct {
	*evaluated
	text     string
	version  int
	deciders sync.Map // the viewer's assignable roles → *Decider
}

// evaluated is a model and policy loaded into Casbin, with every decision
// Casbin made from them. Enforcers of one process that load the same text
// share it (see loaded): a decision over some 800 policy lines costs
// Casbin a millisecond or more, and a test process starts hundreds of
// servers, each with an enforcer of its own, on the same policy.
type evaluated struct {
	casbin     *casbin.Enforcer
	decisions  sync.Map // role + "\x00" + object → bool
	assignable map[string]bool
}

// loaded maps the SHA-256 of a model and policy text to the evaluated
// policy loaded from them, for as long as an enforcer uses it.
var loaded sync.Map // [sha256.Size]byte → weak.Pointer[evaluated]

// NewEnforcer loads a Casbin model and policy given as text.
func NewEnforcer(modelText, policyText string) (*Enforcer, error) {
	p, err := loadPolicy(modelText, policyText)
	if err != nil {
		return nil, err
	}
	enf := &Enforcer{}
	enf.live.Store(p)
	return enf, nil
}

func loadPolicy(modelText, policyText string) (*policy, error) {
	key := sha256.Sum256([]byte(modelText + "\x00" + policyText))
	if w, ok := loaded.Load(key); ok {
		if ev := w.(weak.Pointer[evaluated]).Value(); ev != nil {
			return &policy{evaluated: ev, text: policyText}, nil
		}
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("policy model: %w", err)
	}
	e, err := casbin.NewEnforcer(m, stringadapter.NewAdapter(stripComments(policyText)))
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	ev := &evaluated{casbin: e, assignable: map[string]bool{}}
	if err := ev.findAssignableRoles(); err != nil {
		return nil, err
	}
	// Two enforcers loading the same text at once may both get here; the
	// later one's entry wins and the earlier one keeps its own copy.
	w := weak.Make(ev)
	loaded.Store(key, w)
	runtime.AddCleanup(ev, func(key [sha256.Size]byte) { loaded.CompareAndDelete(key, w) }, key)
	return &policy{evaluated: ev, text: policyText}, nil
}

// Reload replaces the policy with policyText, numbered version, for every
// decision from now on. The memos go with the old policy; an operation
// already running finishes on the policy it started with.
func (e *Enforcer) Reload(modelText, policyText string, version int) error {
	p, err := loadPolicy(modelText, policyText)
	if err != nil {
		return err
	}
	p.version = version
	e.live.Store(p)
	return nil
}

// Version is the number of the policy in force (0: the one the process
// started with).
func (e *Enforcer) Version() int { return e.live.Load().version }

// Text is the policy in force, as Casbin lines.
func (e *Enforcer) Text() string { return e.live.Load().text }

// stripComments drops comment and blank lines, which the file adapter skips
// but the string adapter does not.
func stripComments(policy string) string {
	var b strings.Builder
	for _, line := range strings.Split(policy, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

// findAssignableRoles collects the roles users and keys may hold: every
// subject of the policy that no other role inherits. The inherited ones are
// building blocks such as signed_in or patient_reader.
func (e *evaluated) findAssignableRoles() error {
	subjects := map[string]bool{}
	inherited := map[string]bool{}
	policies, err := e.casbin.GetPolicy()
	if err != nil {
		return err
	}
	for _, p := range policies {
		subjects[p[0]] = true
	}
	groupings, err := e.casbin.GetGroupingPolicy()
	if err != nil {
		return err
	}
	for _, g := range groupings {
		subjects[g[0]] = true
		inherited[g[1]] = true
	}
	for s := range subjects {
		if !inherited[s] && s != Anonymous {
			e.assignable[s] = true
		}
	}
	return nil
}

// IsRole reports whether users and API keys may hold role.
func (e *Enforcer) IsRole(role string) bool { return e.live.Load().assignable[role] }

// Roles lists the roles users and API keys may hold, sorted.
func (e *Enforcer) Roles() []string {
	assignable := e.live.Load().assignable
	roles := make([]string, 0, len(assignable))
	for r := range assignable {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}

// RoleAllows reports whether role may reach object.
func (e *Enforcer) RoleAllows(role, object string) bool {
	return e.live.Load().roleAllows(e, role, object)
}

func (p *policy) roleAllows(e *Enforcer, role, object string) bool {
	key := role + "\x00" + object
	if d, ok := p.decisions.Load(key); ok {
		return d.(bool)
	}
	e.evaluations.Add(1)
	allowed, err := p.casbin.Enforce(role, object)
	// An enforcer error is a denial: fail closed.
	allowed = allowed && err == nil
	p.decisions.Store(key, allowed)
	return allowed
}

// Evaluations returns how many decisions Casbin has computed so far.
func (e *Enforcer) Evaluations() int64 { return e.evaluations.Load() }

// Decider answers Allows for one viewer's roles, remembering each answer
// under the object's name alone: the field guard asks about hundreds of
// fields per request, and building a key from every role and object each
// time cost more than the answer. Deciders are shared by every viewer with
// the same roles, for the life of the policy they decide from.
type Decider struct {
	e      *Enforcer
	p      *policy
	system bool
	roles  []string // assignable roles only; Anonymous for a viewer without credentials
	memo   sync.Map // object → bool
}

// Decider returns the Decider for the viewer's roles.
func (e *Enforcer) Decider(v *auth.Viewer) *Decider {
	p := e.live.Load()
	switch {
	case v == nil:
		return e.deciderFor(p, []string{Anonymous}, Anonymous)
	case v.System:
		return &Decider{e: e, p: p, system: true}
	}
	var roles []string
	for _, role := range v.Roles {
		// A role the policy in force does not know (one a change removed)
		// counts for nothing: fail closed.
		if p.assignable[role] {
			roles = append(roles, role)
		}
	}
	return e.deciderFor(p, roles, "\x01"+strings.Join(roles, "\x00"))
}

func (e *Enforcer) deciderFor(p *policy, roles []string, key string) *Decider {
	if d, ok := p.deciders.Load(key); ok {
		return d.(*Decider)
	}
	d, _ := p.deciders.LoadOrStore(key, &Decider{e: e, p: p, roles: roles})
	return d.(*Decider)
}

// Allows reports what Enforcer.Allows reports for the Decider's viewer.
func (d *Decider) Allows(object string) bool {
	if d.system {
		return true
	}
	if ok, found := d.memo.Load(object); found {
		return ok.(bool)
	}
	allowed := false
	for _, role := range d.roles {
		if d.p.roleAllows(d.e, role, object) {
			allowed = true
			break
		}
	}
	d.memo.Store(object, allowed)
	return allowed
}

// Allows reports whether the viewer may reach object: some role of theirs
// allows it. A viewer without credentials has the anonymous role; the system
// viewer may do anything.
func (e *Enforcer) Allows(v *auth.Viewer, object string) bool {
	p := e.live.Load()
	if v == nil {
		return p.roleAllows(e, Anonymous, object)
	}
	if v.System {
		return true
	}
	for _, role := range v.Roles {
		if p.assignable[role] && p.roleAllows(e, role, object) {
			return true
		}
	}
	return false
}
