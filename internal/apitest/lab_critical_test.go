package apitest

import (
	"slices"
	"testing"
)

// TestLabUnacknowledgedCriticalsPaged: the dashboard's list is a connection:
// pages of first after a cursor, in a stable order, with the total; a
// dashboard that asks for no page gets the default one, not every row.
func TestLabUnacknowledgedCriticalsPaged(t *testing.T) {
	s := newServer(t, func(c *configT) { c.DefaultPageSize = 3 })
	d := s.demo()
	desk := newLabDesk(t, s)
	w := setUpLabWards(t, s, d, desk)
	k := desk.cat.potassium.ID
	var crits []string
	for i, p := range []string{w.medA, w.ccu, d.patients[1], w.medA, w.ccu} {
		v := map[string]float64{w.medA: w.medValues.criticalHigh, w.ccu: w.ccuValues.criticalHigh}[p]
		if v == 0 {
			pf := facts(t, s, p)
			_, pv := desk.cat.potassiumFor(t, pf.sex, pf.birth)
			v = pv.criticalHigh
		}
		r := desk.released(p, k, potassium(v))
		must(t, r.Critical, "result %d is not critical: %+v", i, r)
		crits = append(crits, r.ID)
	}

	page := func(user string, ward any, after *string, first any) unackOut {
		t.Helper()
		vars := map[string]any{"w": ward, "first": first}
		if after != nil {
			vars["after"] = *after
		}
		var out unackOut
		s.as(user, unacknowledgedQuery, vars).decode(t, &out)
		return out
	}
	idsOf := func(u unackOut) []string { return ids(u.nodes(), func(n unackNode) string { return n.ID }) }

	// Two at a time through all five, each page knowing the total.
	var seen []string
	var after *string
	for n := 0; ; n++ {
		must(t, n < 5, "paging does not end: %v", seen)
		p := page("nurse", nil, after, 2)
		c := p.UnacknowledgedCriticalResults
		must(t, c.TotalCount == 5 && len(c.Edges) <= 2, "page %d: %+v", n, c)
		must(t, c.PageInfo.HasPreviousPage == (after != nil), "page %d: hasPreviousPage %v after %v", n, c.PageInfo.HasPreviousPage, after)
		seen = append(seen, idsOf(p)...)
		if len(c.Edges) > 0 {
			must(t, *c.PageInfo.StartCursor == c.Edges[0].Cursor && *c.PageInfo.EndCursor == c.Edges[len(c.Edges)-1].Cursor,
				"page %d: cursors %+v", n, c.PageInfo)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		after = c.PageInfo.EndCursor
	}
	must(t, slices.Equal(seen, crits), "paged through %v, want %v", seen, crits)

	// A page of a ward's list.
	p := page("doctor", w.wards["MED-A"], nil, 1)
	c := p.UnacknowledgedCriticalResults
	must(t, c.TotalCount == 2 && c.PageInfo.HasNextPage && slices.Equal(idsOf(p), crits[:1]), "MED-A's first page: %+v", c)
	p = page("doctor", w.wards["MED-A"], c.PageInfo.EndCursor, 1)
	c = p.UnacknowledgedCriticalResults
	must(t, c.TotalCount == 2 && !c.PageInfo.HasNextPage && slices.Equal(idsOf(p), crits[3:4]), "MED-A's second page: %+v", c)

	// No page asked for: the default page, and the total beyond it.
	p = page("nurse", nil, nil, nil)
	c = p.UnacknowledgedCriticalResults
	must(t, c.TotalCount == 5 && c.PageInfo.HasNextPage && slices.Equal(idsOf(p), crits[:3]), "the default page: %+v", c)
	p = page("nurse", nil, nil, 0)
	c = p.UnacknowledgedCriticalResults
	must(t, c.TotalCount == 5 && len(c.Edges) == 0, "first: 0 counts without rows: %+v", c)
	for _, first := range []int{-1, 101} {
		r := s.as("nurse", unacknowledgedQuery, map[string]any{"first": first})
		wantBadInput(t, "first out of bounds", r, "first")
	}

	// A cursor outlives its row: acknowledging the result a dashboard last
	// saw does not lose it its place.
	p = page("nurse", nil, nil, 2)
	cursor := p.UnacknowledgedCriticalResults.PageInfo.EndCursor
	s.as("nurse", acknowledgeMutation, map[string]any{"id": crits[1]}).decode(t, &struct{}{})
	p = page("nurse", nil, cursor, 2)
	c = p.UnacknowledgedCriticalResults
	must(t, c.TotalCount == 4 && slices.Equal(idsOf(p), crits[2:4]), "after acknowledging the page's last row: %+v", c)
}

const unacknowledgedDashboardQuery = `{ unacknowledgedCriticalResults(first: 50) {
  totalCount edges { node { id patient { familyName } notify { familyName } item { test { name } } } } } }`

// TestLabUnacknowledgedCriticalsStatementCountIsFlat: the dashboard's list
// with each row's patient, who is to be told and the test costs the same
// number of SQL statements for 8 critical results as for 2.
func TestLabUnacknowledgedCriticalsStatementCountIsFlat(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	w := setUpLabWards(t, s, d, desk)
	k := desk.cat.potassium.ID
	value := func(p string) float64 {
		pf := facts(t, s, p)
		_, v := desk.cat.potassiumFor(t, pf.sex, pf.birth)
		return v.criticalHigh
	}
	// Inpatients (told to two people in the CCU) and outpatients, so the
	// rows' patients, tests and people to tell are not all the same.
	patients := []string{w.ccu, w.medA, d.patients[1], d.patients[2], w.ccu, d.patients[4], w.medA, d.patients[1]}
	token := s.token("nurse")

	// The relay polls the outbox in the background through the same
	// counter, so take the least of a few runs: polls only ever add.
	cost := func(want int) int64 {
		t.Helper()
		var least int64 = -1
		var r response
		for i := 0; i < 5; i++ {
			before := s.app.Store.Statements()
			r = s.do(token, unacknowledgedDashboardQuery, nil)
			if n := s.app.Store.Statements() - before; least < 0 || n < least {
				least = n
			}
		}
		var out struct {
			UnacknowledgedCriticalResults struct {
				TotalCount int
				Edges      []struct {
					Node struct {
						ID      string
						Patient struct{ FamilyName string }
						Notify  []struct{ FamilyName string }
						Item    struct{ Test struct{ Name string } }
					}
				}
			}
		}
		r.decode(t, &out)
		c := out.UnacknowledgedCriticalResults
		must(t, c.TotalCount == want && len(c.Edges) == want, "%d rows of %d, want %d", len(c.Edges), c.TotalCount, want)
		for _, e := range c.Edges {
			n := e.Node
			must(t, n.Patient.FamilyName != "" && len(n.Notify) > 0 && n.Notify[0].FamilyName != "" && n.Item.Test.Name != "",
				"a row without what the dashboard shows: %+v", n)
		}
		return least
	}
	for _, p := range patients[:2] {
		desk.released(p, k, potassium(value(p)))
	}
	few := cost(2)
	for _, p := range patients[2:] {
		desk.released(p, k, potassium(value(p)))
	}
	many := cost(len(patients))
	t.Logf("unacknowledged criticals: %d statements for 2 rows, %d for %d", few, many, len(patients))
	must(t, few == many, "statements grew with the list: %d for 2 rows, %d for %d", few, many, len(patients))
}

// TestLabUnacknowledgedCriticalsLongestWaitingFirst: "oldest first" is the
// order the values were released in, which is when a clinician's clock
// starts (acknowledgeMinutes counts from verifiedAt), not the order they
// were typed in: a value entered early but verified late has waited the
// least.
func TestLabUnacknowledgedCriticalsLongestWaitingFirst(t *testing.T) {
	s := newServer(t)
	d := s.demo()
	desk := newLabDesk(t, s)
	pf := facts(t, s, d.patients[1])
	_, kv := desk.cat.potassiumFor(t, pf.sex, pf.birth)
	early := desk.entered(d.patients[1], desk.cat.potassium.ID, potassium(kv.criticalHigh))
	late := desk.entered(d.patients[1], desk.cat.potassium.ID, potassium(kv.criticalHigh))
	late = desk.verify("labtech2", late.ID)
	early = desk.verify("labtech2", early.ID)
	must(t, parseTime(t, "verifiedAt", *late.VerifiedAt).Before(parseTime(t, "verifiedAt", *early.VerifiedAt)),
		"released in the wrong order: %s then %s", *late.VerifiedAt, *early.VerifiedAt)

	var out unackOut
	s.as("nurse", unacknowledgedQuery, map[string]any{"first": 10}).decode(t, &out)
	got := ids(out.nodes(), func(n unackNode) string { return n.ID })
	must(t, slices.Equal(got, []string{late.ID, early.ID}),
		"unacknowledged %v, want the first released %s before %s, released after it", got, late.ID, early.ID)
}
