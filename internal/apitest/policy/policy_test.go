// Package policy tests the access policy as live data through the API: two
// admins add a role and a rule, every instance applies it, a bad change is
// refused with its reason, and a rollback restores what was.
package policy

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/authz"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/policies"
)

const (
	accessPolicy = `{ accessPolicy { version roles lines versions { number reason appliedBy proposedBy restores } } }`
	propose      = `mutation($in: PolicyChangeInput!) { proposePolicyChange(input: $in) {
	  id baseVersion add remove reason proposedBy status preview { role newlyDenied newlyAllowed } } }`
	approve  = `mutation($id: ID!) { approvePolicyChange(id: $id) { id status decidedBy appliedVersion } }`
	rollback = `mutation($to: Int!, $why: String!) { rollbackPolicy(toVersion: $to, reason: $why) { version } }`
	// What a night pharmacist reads: the stock block grants it.
	stockQuery = `{ stockLocations(first: 1) { totalCount } }`
)

type policyView struct {
	Version  int
	Roles    []string
	Lines    []string
	Versions []struct {
		Number     int
		Reason     string
		AppliedBy  string
		ProposedBy *string
		Restores   *int
	}
}

type proposal struct {
	ID, Reason, ProposedBy, Status string
	BaseVersion                    int
	Add, Remove                    []string
	DecidedBy                      *string
	AppliedVersion                 *int
	Preview                        []struct {
		Role                      string
		NewlyDenied, NewlyAllowed []string
	}
}

// twoInstances starts two servers on one database (and Redis, when the
// tests have one): the second polls often, since without Redis the poll is
// how it hears of the first's changes.
func twoInstances(t *testing.T) (*harness.Server, *harness.Server) {
	b := harness.NewBacking(t)
	fast := func(c *config.Config) { c.PolicyPollInterval = 100 * time.Millisecond }
	return harness.NewServerOn(t, b, fast), harness.NewServerOn(t, b, fast)
}

func current(t *testing.T, s *harness.Server) policyView {
	t.Helper()
	var out struct{ AccessPolicy policyView }
	s.As("admin", accessPolicy, nil).Decode(t, &out)
	return out.AccessPolicy
}

func proposeAs(t *testing.T, s *harness.Server, who string, in map[string]any) proposal {
	t.Helper()
	var out struct{ ProposePolicyChange proposal }
	s.As(who, propose, map[string]any{"in": in}).Decode(t, &out)
	return out.ProposePolicyChange
}

func approveAs(t *testing.T, s *harness.Server, who, id string) proposal {
	t.Helper()
	var out struct{ ApprovePolicyChange proposal }
	s.As(who, approve, map[string]any{"id": id}).Decode(t, &out)
	return out.ApprovePolicyChange
}

// eventually polls cond until it holds or the deadline passes, and
// returns how long it took.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// userWithRole creates, as HR on s, a pharmacist whose login holds role,
// and signs them in.
func userWithRole(t *testing.T, s *harness.Server, username, role string) string {
	t.Helper()
	in := map[string]any{
		"givenName": "Night", "familyName": "Shift", "kind": "PHARMACIST", "departmentId": s.Demo().General,
		"employmentType": "CONTRACT", "startDate": "2026-01-05",
		"account": map[string]any{"username": username, "password": "a-long-password-1", "roles": []string{role}},
	}
	s.As("hr", `mutation($in: CreateStaffInput!) { createStaff(input: $in) { id } }`, map[string]any{"in": in}).Decode(t, &struct{}{})
	return s.Login(username, "a-long-password-1").AccessToken
}

func allowed(s *harness.Server, token, query string) bool {
	r, err := s.Send(nil, token, query, nil)
	return err == nil && len(r.Errors) == 0
}

// TestTwoAdminsAddARoleOnTwoInstances is the story: admin proposes
// a night pharmacist (dispensing and stock reading, no stock receiving),
// admin2 approves, HR gives the role to a new login, and both instances
// honour it; a revocation stops it on both, and a rollback restores it.
func TestTwoAdminsAddARoleOnTwoInstances(t *testing.T) {
	a, b := twoInstances(t)
	before := current(t, a)
	harness.Must(t, before.Version == 0 && !slices.Contains(before.Roles, "night_pharmacist"), "fresh policy: %+v", before.Version)

	// Before the role exists HR cannot give it.
	r := a.As("hr", `mutation($in: CreateStaffInput!) { createStaff(input: $in) { id } }`, map[string]any{"in": map[string]any{
		"givenName": "Early", "familyName": "Bird", "kind": "PHARMACIST", "departmentId": a.Demo().General,
		"employmentType": "CONTRACT", "startDate": "2026-01-05",
		"account": map[string]any{"username": "early_bird", "password": "a-long-password-1", "roles": []string{"night_pharmacist"}}}})
	harness.Must(t, r.HasCode("BAD_USER_INPUT"), "unknown role given: %s", harness.Describe(r))

	change := map[string]any{
		"baseVersion": 0,
		"add": []string{
			"g, night_pharmacist, signed_in", "g, night_pharmacist, directory", "g, night_pharmacist, patient_identity",
			"g, night_pharmacist, all_patients", "g, night_pharmacist, stock_reader", "g, night_pharmacist, dispensing_reader",
			"g, night_pharmacist, dispenser",
		},
		"reason": "Night shift dispenses but does not receive stock (ticket OPS-112)",
	}
	p := proposeAs(t, a, "admin", change)
	harness.Must(t, p.Status == "PROPOSED" && p.ProposedBy == "admin" && p.BaseVersion == 0, "proposal: %+v", p)
	i := slices.IndexFunc(p.Preview, func(c struct {
		Role                      string
		NewlyDenied, NewlyAllowed []string
	}) bool {
		return c.Role == "night_pharmacist"
	})
	harness.Must(t, i >= 0 && slices.Contains(p.Preview[i].NewlyAllowed, "Query.stockLocations") &&
		!slices.Contains(p.Preview[i].NewlyAllowed, "Mutation.receiveStock"), "preview: %+v", p.Preview)

	// Four eyes: not the proposer.
	r = a.As("admin", approve, map[string]any{"id": p.ID})
	harness.Must(t, r.HasCode("FORBIDDEN"), "self-approval: %s", harness.Describe(r))
	// Approved on the other instance.
	done := approveAs(t, b, "admin2", p.ID)
	harness.Must(t, done.Status == "APPLIED" && *done.AppliedVersion == 1 && *done.DecidedBy == "admin2", "approved: %+v", done)

	// The role exists on both instances at once: HR on b gives it.
	eventually(t, time.Second, "role known on a", func() bool { return slices.Contains(current(t, a).Roles, "night_pharmacist") })
	night := userWithRole(t, b, "night_pharm", "night_pharmacist")
	harness.Must(t, allowed(a, night, stockQuery) && allowed(b, night, stockQuery), "night pharmacist reads stock on both")
	r = a.Do(night, harness.PharmacyProbes["Mutation.receiveStock"], nil)
	harness.Must(t, harness.DeniedByGuard(r, "night_pharm"), "receiving stock: %s", harness.Describe(r))

	// Revoke stock reading on a; b refuses within a second.
	revoke := proposeAs(t, a, "admin2", map[string]any{"baseVersion": 1, "remove": []string{"g, night_pharmacist, stock_reader"},
		"reason": "Stock counts are the day shift's"})
	approveAs(t, a, "admin", revoke.ID)
	harness.Must(t, !allowed(a, night, stockQuery), "revoked on the instance that applied it")
	took := eventually(t, time.Second, "revoked on b", func() bool { return !allowed(b, night, stockQuery) })
	t.Logf("revocation reached the other instance in %v", took)

	// Roll back to version 1 on b: a allows again.
	var rb struct{ RollbackPolicy struct{ Version int } }
	b.As("admin", rollback, map[string]any{"to": 1, "why": "Day shift short-staffed this week"}).Decode(t, &rb)
	harness.Must(t, rb.RollbackPolicy.Version == 3, "rollback is version 3: %+v", rb)
	eventually(t, time.Second, "restored on a", func() bool { return allowed(a, night, stockQuery) })

	// The history says who did what and why.
	after := current(t, b)
	harness.Must(t, after.Version == 3 && len(after.Versions) == 3, "versions: %+v", after.Versions)
	v3, v1 := after.Versions[0], after.Versions[2]
	harness.Must(t, v3.AppliedBy == "admin" && v3.Restores != nil && *v3.Restores == 1 && v3.Reason == "Day shift short-staffed this week", "v3: %+v", v3)
	harness.Must(t, v1.AppliedBy == "admin2" && *v1.ProposedBy == "admin" && strings.Contains(v1.Reason, "OPS-112"), "v1: %+v", v1)

	// And so does the audit trail: actor, operation, reason, object.
	var trail struct {
		AuditEvents struct {
			Edges []struct {
				Node struct {
					Operation, Outcome string
					ActorName          *string
					Reason             *string
					ObjectIds          []string
				}
			}
		}
	}
	a.As("auditor", `{ auditEvents(first: 100) { edges { node { operation outcome actorName reason objectIds } } } }`, nil).Decode(t, &trail)
	seen := map[string]string{}
	for _, e := range trail.AuditEvents.Edges {
		n := e.Node
		if strings.Contains(n.Operation, "Policy") && n.Outcome == "ALLOWED" && n.ActorName != nil && n.Reason != nil {
			seen[n.Operation+" by "+*n.ActorName] = *n.Reason
			if n.Operation == "proposePolicyChange" || n.Operation == "approvePolicyChange" {
				harness.Must(t, len(n.ObjectIds) > 0, "%s names the proposal: %+v", n.Operation, n)
			}
		}
	}
	for _, want := range []string{"proposePolicyChange by admin", "approvePolicyChange by admin2", "proposePolicyChange by admin2",
		"approvePolicyChange by admin", "rollbackPolicy by admin"} {
		harness.Must(t, seen[want] != "", "audit trail lacks %q: %v", want, seen)
	}
}

// TestBadChangesAreRefusedWithTheReason: each check refuses with
// BAD_USER_INPUT naming the field, and nothing is proposed.
func TestBadChangesAreRefusedWithTheReason(t *testing.T) {
	s := harness.NewServer(t)
	cases := []struct {
		name          string
		add, remove   []string
		field, reason string
	}{
		{"no such coordinate", []string{"p, pharmacist, Mutation.dispenseEverything, allow"}, nil, "input.add[0]", "no GraphQL coordinate"},
		{"bad effect", []string{"p, pharmacist, Query.stockLocations, maybe"}, nil, "input.add[0]", "allow or deny"},
		{"bad shape", []string{"p, pharmacist, Query.stockLocations"}, nil, "input.add[0]", "p line"},
		{"no such block", []string{"g, night_pharmacist, stock_readers", "g, night_pharmacist, signed_in"}, nil, "input.add", "no such role"},
		{"role named only in a rule", []string{"p, pharmacits, Query.stockLocations, allow"}, nil, "input.add", "is new"},
		{"role becomes a block", []string{"g, nurse, pharmacist"}, nil, "input.add", "would become a building block"},
		{"line not there", nil, []string{"p, pharmacist, Query.patients, allow"}, "input.remove[0]", "is not a line"},
		{"admin locks itself out", []string{"p, admin, Mutation.approvePolicyChange, deny"}, nil, "input.add", "admin role would lose Mutation.approvePolicyChange"},
		{"admin loses its block", nil, []string{"g, admin, policy_admin", "p, admin, *, allow"}, "input.remove", "admin role would lose"},
		// Grants that would cover what the schema gains later, unreviewed.
		{"everything", []string{"p, nurse, *, allow"}, nil, "input.add[0]", "every operation"},
		{"every mutation", []string{"p, nurse, Mutation.*, allow"}, nil, "input.add[0]", "every operation"},
		{"a prefix", []string{"p, nurse, Mutation.approve*, allow"}, nil, "input.add[0]", "every operation"},
		// "nurse" and an invisible character: a role that reads as nurse.
		{"look-alike role", []string{"g, nurse\u200b, signed_in"}, nil, "input.add[0]", "lower-case letters"},
	}
	for _, c := range cases {
		r := s.As("admin", propose, map[string]any{"in": map[string]any{"baseVersion": 0, "add": c.add, "remove": c.remove, "reason": "test"}})
		harness.WantBadInput(t, c.name, r, c.field)
		harness.Must(t, strings.Contains(r.Errors[0].Message, c.reason), "%s: %q lacks %q", c.name, r.Errors[0].Message, c.reason)
	}
	var list struct{ PolicyProposals []struct{ ID string } }
	s.As("admin", `{ policyProposals { id } }`, nil).Decode(t, &list)
	harness.Must(t, len(list.PolicyProposals) == 0, "nothing proposed: %+v", list)
	// A stale base is a conflict, not a change on the wrong policy.
	r := s.As("admin", propose, map[string]any{"in": map[string]any{"baseVersion": 7, "add": []string{"g, nurse, all_patients"}, "reason": "x"}})
	harness.Must(t, r.HasCode("CONFLICT"), "stale base: %s", harness.Describe(r))
	// Only admins change the policy.
	r = s.As("pharmacist", propose, map[string]any{"in": map[string]any{"baseVersion": 0, "add": []string{"g, nurse, all_patients"}, "reason": "x"}})
	harness.Must(t, harness.DeniedByGuard(r, "pharmacist"), "pharmacist proposing: %s", harness.Describe(r))
}

// TestConcurrentApprovalsApplyExactlyOne: two proposals on the same base,
// approved at once: one becomes version 1, the other is a CONFLICT and
// stays unapplied (SUPERSEDED by the winner).
func TestConcurrentApprovalsApplyExactlyOne(t *testing.T) {
	a, b := twoInstances(t)
	p1 := proposeAs(t, a, "admin", map[string]any{"baseVersion": 0, "add": []string{"p, nurse, Query.stockLocations, allow"}, "reason": "one"})
	p2 := proposeAs(t, a, "admin", map[string]any{"baseVersion": 0, "add": []string{"p, nurse, Query.stockBatches, allow"}, "reason": "two"})
	a.Token("admin2")
	b.Token("admin2")
	var wg sync.WaitGroup
	results := make([]harness.Response, 2)
	for i, run := range []struct {
		s  *harness.Server
		id string
	}{{a, p1.ID}, {b, p2.ID}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = run.s.Send(nil, run.s.Token("admin2"), approve, map[string]any{"id": run.id})
		}()
	}
	wg.Wait()
	applied, conflicts := 0, 0
	for _, r := range results {
		switch {
		case len(r.Errors) == 0:
			applied++
		case r.HasCode("CONFLICT"):
			conflicts++
		default:
			t.Fatalf("approval: %s", harness.Describe(r))
		}
	}
	harness.Must(t, applied == 1 && conflicts == 1, "applied %d, conflicts %d", applied, conflicts)
	pv := current(t, a)
	harness.Must(t, pv.Version == 1 && len(pv.Versions) == 1, "one version: %+v", pv.Versions)
	var list struct{ PolicyProposals []proposal }
	a.As("admin", `{ policyProposals { id status } }`, nil).Decode(t, &list)
	statuses := []string{list.PolicyProposals[0].Status, list.PolicyProposals[1].Status}
	slices.Sort(statuses)
	harness.Must(t, slices.Equal(statuses, []string{"APPLIED", "SUPERSEDED"}), "statuses: %v", statuses)
}

// TestBuiltInPolicyPassesTheChecks: the policy every deployment starts from
// passes what a change must, so the checks name every object the code asks
// about (hmis policy check runs the same).
func TestBuiltInPolicyPassesTheChecks(t *testing.T) {
	s := harness.NewServer(t)
	_, errs := authz.CheckPolicy(policies.Model, policies.Policy, s.App.Policy.Schema())
	harness.Must(t, len(errs) == 0, "built-in policy: %v", errs)
}

// TestREADMEPolicyWalkthrough runs the README's section as written: admin
// reads and proposes, admin2 lists and approves (with the proposal's ID in
// place of the placeholder), admin rolls back, the auditor reads the trail.
func TestREADMEPolicyWalkthrough(t *testing.T) {
	s := harness.NewServer(t)
	ops := harness.READMEOperations(t, "## Access policy: changing roles and rules")
	harness.Must(t, len(ops) == 6, "%d README policy operations found", len(ops))
	as := []string{"admin", "admin", "admin2", "admin2", "admin", "auditor"}
	var id string
	for i, op := range ops {
		doc := strings.ReplaceAll(op.Document, "ppr_…", id)
		r := s.As(as[i], doc, nil)
		harness.Must(t, len(r.Errors) == 0, "README operation %d as %s: %s\n%s", i, as[i], harness.Describe(r), doc)
		if i == 1 {
			var out struct{ ProposePolicyChange struct{ ID string } }
			r.Decode(t, &out)
			id = out.ProposePolicyChange.ID
		}
	}
	final := current(t, s)
	harness.Must(t, final.Version == 2 && !slices.Contains(final.Roles, "night_pharmacist"), "after the walkthrough: version %d roles %v", final.Version, final.Roles)
}

// TestARevokedSubscriptionStopsOnAnOpenSocket: a nurse's stream of
// verified lab results, open on instance B, ends with FORBIDDEN at the
// next event once a change approved on instance A takes the subscription
// from nurses; a stream opened before a change is not grandfathered in.
func TestARevokedSubscriptionStopsOnAnOpenSocket(t *testing.T) {
	t.Parallel()
	a, b := twoInstances(t)
	d := a.Demo()
	inpatient := d.Patients[3]
	nurse := b.Login("nurse", harness.DemoPassword).AccessToken
	ws := b.DialWS(t, harness.ProtoTransportWS)
	ws.Init(nurse)
	id := ws.Start(`subscription($p: ID) { labResultVerified(patientId: $p) { eventId } }`, map[string]any{"p": inpatient})
	// The results are released on B too: without Redis each instance has
	// its own broker.
	desk := harness.NewLabDesk(t, b)
	pf := harness.Facts(t, b, inpatient)
	_, kv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	// One result before the change: the stream is open and delivering.
	desk.Released(inpatient, desk.Cat.Potassium.ID, harness.Potassium(kv.Normal))
	harness.Must(t, ws.Result(id).Kind == "next", "the stream did not deliver before the change")

	version := current(t, a).Version
	p := proposeAs(t, a, "admin", map[string]any{
		"baseVersion": version,
		"add":         []string{"p, nurse, Subscription.labResultVerified, deny", "p, nurse, Query.me, deny"},
		"reason":      "nurses follow results on the ward board instead",
	})
	approveAs(t, a, "admin2", p.ID)
	eventually(t, 5*time.Second, "instance B applies the change", func() bool { return !allowed(b, nurse, `{ me { id } }`) })

	desk.Released(inpatient, desk.Cat.Potassium.ID, harness.Potassium(kv.Normal))
	errs := ws.Failure(id)
	harness.Must(t, len(errs) == 1 && errs[0].Code() == "FORBIDDEN", "the stream after the revocation: %v", errs)
}
