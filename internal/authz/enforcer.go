// Package authz decides what a viewer may do: the Casbin enforcer over
// policies/, the GraphQL field guard that asks it about every field, and
// the row scope that keeps ent queries to the rows a viewer may see.
package authz

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	stringadapter "github.com/casbin/casbin/v2/persist/string-adapter"

	"github.com/hmis-dev/hmis/internal/auth"
)

// Anonymous is the role of a request without credentials.
const Anonymous = "anonymous"

// Enforcer answers "may this role reach this object" from the policy.
// Decisions are memoized: the policy is fixed for the life of the process,
// and a page of 100 objects asks the same few questions thousands of times.
type Enforcer struct {
	casbin     *casbin.Enforcer
	decisions  sync.Map // role + "\x00" + object → bool
	deciders   sync.Map // the viewer's assignable roles → *Decider
	assignable map[string]bool
	// evaluations counts decisions Casbin actually computed, the rest
	// having come from the memo.
	evaluations atomic.Int64
	clock       clock
}

// NewEnforcer loads a Casbin model and policy given as text.
func NewEnforcer(modelText, policyText string) (*Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("policy model: %w", err)
	}
	e, err := casbin.NewEnforcer(m, stringadapter.NewAdapter(stripComments(policyText)))
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	enf := &Enforcer{casbin: e, assignable: map[string]bool{}}
	if err := enf.findAssignableRoles(); err != nil {
		return nil, err
	}
	return enf, nil
}

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
func (e *Enforcer) findAssignableRoles() error {
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
func (e *Enforcer) IsRole(role string) bool { return e.assignable[role] }

// Roles lists the roles users and API keys may hold, sorted.
func (e *Enforcer) Roles() []string {
	roles := make([]string, 0, len(e.assignable))
	for r := range e.assignable {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	return roles
}

// RoleAllows reports whether role may reach object.
func (e *Enforcer) RoleAllows(role, object string) bool {
	key := role + "\x00" + object
	if d, ok := e.decisions.Load(key); ok {
		return d.(bool)
	}
	e.evaluations.Add(1)
	allowed, err := e.casbin.Enforce(role, object)
	// An enforcer error is a denial: fail closed.
	allowed = allowed && err == nil
	e.decisions.Store(key, allowed)
	return allowed
}

// Evaluations returns how many decisions Casbin has computed so far.
func (e *Enforcer) Evaluations() int64 { return e.evaluations.Load() }

// Decider answers Allows for one viewer's roles, remembering each answer
// under the object's name alone: the field guard asks about hundreds of
// fields per request, and building a key from every role and object each
// time cost more than the answer. Deciders are shared by every viewer with
// the same roles, for the life of the process, like the decisions under them.
type Decider struct {
	e      *Enforcer
	system bool
	roles  []string // assignable roles only; Anonymous for a viewer without credentials
	memo   sync.Map // object → bool
}

// Decider returns the Decider for the viewer's roles.
func (e *Enforcer) Decider(v *auth.Viewer) *Decider {
	switch {
	case v == nil:
		return e.deciderFor([]string{Anonymous}, Anonymous)
	case v.System:
		return &Decider{e: e, system: true}
	}
	var roles []string
	for _, role := range v.Roles {
		if e.assignable[role] {
			roles = append(roles, role)
		}
	}
	return e.deciderFor(roles, "\x01"+strings.Join(roles, "\x00"))
}

func (e *Enforcer) deciderFor(roles []string, key string) *Decider {
	if d, ok := e.deciders.Load(key); ok {
		return d.(*Decider)
	}
	d, _ := e.deciders.LoadOrStore(key, &Decider{e: e, roles: roles})
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
		if d.e.RoleAllows(role, object) {
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
	if v == nil {
		return e.RoleAllows(Anonymous, object)
	}
	if v.System {
		return true
	}
	for _, role := range v.Roles {
		if e.assignable[role] && e.RoleAllows(role, object) {
			return true
		}
	}
	return false
}
