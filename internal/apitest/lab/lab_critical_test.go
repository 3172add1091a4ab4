package lab

import (
	"slices"
	"testing"

	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/config"
)

// TestLabUnacknowledgedCriticalsPaged: the dashboard's list is a connection:
// pages of first after a cursor, in a stable order, with the total; a
// dashboard that asks for no page gets the default one, not every row.
func TestLabUnacknowledgedCriticalsPaged(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t, func(c *config.Config) { c.DefaultPageSize = 3 })
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	w := setUpLabWards(t, s, d, desk)
	k := desk.Cat.Potassium.ID
	var crits []string
	for i, p := range []string{w.MedA, w.CCU, d.Patients[1], w.MedA, w.CCU} {
		v := map[string]float64{w.MedA: w.MedValues.CriticalHigh, w.CCU: w.CCUValues.CriticalHigh}[p]
		if v == 0 {
			pf := harness.Facts(t, s, p)
			_, pv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
			v = pv.CriticalHigh
		}
		r := desk.Released(p, k, harness.Potassium(v))
		harness.Must(t, r.Critical, "result %d is not critical: %+v", i, r)
		crits = append(crits, r.ID)
	}

	page := func(user string, ward any, after *string, first any) unackOut {
		t.Helper()
		vars := map[string]any{"w": ward, "first": first}
		if after != nil {
			vars["after"] = *after
		}
		var out unackOut
		s.As(user, unacknowledgedQuery, vars).Decode(t, &out)
		return out
	}
	idsOf := func(u unackOut) []string { return harness.IDs(u.nodes(), func(n unackNode) string { return n.ID }) }

	// Two at a time through all five, each page knowing the total.
	var seen []string
	var after *string
	for n := 0; ; n++ {
		harness.Must(t, n < 5, "paging does not end: %v", seen)
		p := page("nurse", nil, after, 2)
		c := p.UnacknowledgedCriticalResults
		harness.Must(t, c.TotalCount == 5 && len(c.Edges) <= 2, "page %d: %+v", n, c)
		harness.Must(t, c.PageInfo.HasPreviousPage == (after != nil), "page %d: hasPreviousPage %v after %v", n, c.PageInfo.HasPreviousPage, after)
		seen = append(seen, idsOf(p)...)
		if len(c.Edges) > 0 {
			harness.Must(t, *c.PageInfo.StartCursor == c.Edges[0].Cursor && *c.PageInfo.EndCursor == c.Edges[len(c.Edges)-1].Cursor,
				"page %d: cursors %+v", n, c.PageInfo)
		}
		if !c.PageInfo.HasNextPage {
			break
		}
		after = c.PageInfo.EndCursor
	}
	harness.Must(t, slices.Equal(seen, crits), "paged through %v, want %v", seen, crits)

	// A page of a ward's list.
	p := page("doctor", w.Wards["MED-A"], nil, 1)
	c := p.UnacknowledgedCriticalResults
	harness.Must(t, c.TotalCount == 2 && c.PageInfo.HasNextPage && slices.Equal(idsOf(p), crits[:1]), "MED-A's first page: %+v", c)
	p = page("doctor", w.Wards["MED-A"], c.PageInfo.EndCursor, 1)
	c = p.UnacknowledgedCriticalResults
	harness.Must(t, c.TotalCount == 2 && !c.PageInfo.HasNextPage && slices.Equal(idsOf(p), crits[3:4]), "MED-A's second page: %+v", c)

	// No page asked for: the default page, and the total beyond it.
	p = page("nurse", nil, nil, nil)
	c = p.UnacknowledgedCriticalResults
	harness.Must(t, c.TotalCount == 5 && c.PageInfo.HasNextPage && slices.Equal(idsOf(p), crits[:3]), "the default page: %+v", c)
	p = page("nurse", nil, nil, 0)
	c = p.UnacknowledgedCriticalResults
	harness.Must(t, c.TotalCount == 5 && len(c.Edges) == 0, "first: 0 counts without rows: %+v", c)
	for _, first := range []int{-1, 101} {
		r := s.As("nurse", unacknowledgedQuery, map[string]any{"first": first})
		harness.WantBadInput(t, "first out of bounds", r, "first")
	}

	// A cursor outlives its row: acknowledging the result a dashboard last
	// saw does not lose it its place.
	p = page("nurse", nil, nil, 2)
	cursor := p.UnacknowledgedCriticalResults.PageInfo.EndCursor
	s.As("nurse", harness.LabAcknowledgeMutation, map[string]any{"id": crits[1]}).Decode(t, &struct{}{})
	p = page("nurse", nil, cursor, 2)
	c = p.UnacknowledgedCriticalResults
	harness.Must(t, c.TotalCount == 4 && slices.Equal(idsOf(p), crits[2:4]), "after acknowledging the page's last row: %+v", c)
}

const unacknowledgedDashboardQuery = `{ unacknowledgedCriticalResults(first: 50) {
  totalCount edges { node { id patient { familyName } notify { familyName } item { test { name } } } } } }`

// TestLabUnacknowledgedCriticalsStatementCountIsFlat: the dashboard's list
// with each row's patient, who is to be told and the test costs the same
// number of SQL statements for 8 critical results as for 2.
func TestLabUnacknowledgedCriticalsStatementCountIsFlat(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	w := setUpLabWards(t, s, d, desk)
	k := desk.Cat.Potassium.ID
	value := func(p string) float64 {
		pf := harness.Facts(t, s, p)
		_, v := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
		return v.CriticalHigh
	}
	// Inpatients (told to two people in the CCU) and outpatients, so the
	// rows' patients, tests and people to tell are not all the same.
	patients := []string{w.CCU, w.MedA, d.Patients[1], d.Patients[2], w.CCU, d.Patients[4], w.MedA, d.Patients[1]}
	token := s.Token("nurse")

	// The relay polls the outbox in the background through the same
	// counter, so take the least of a few runs: polls only ever add.
	cost := func(want int) int64 {
		t.Helper()
		var least int64 = -1
		var r harness.Response
		for i := 0; i < 5; i++ {
			before := s.App.Store.Statements()
			r = s.Do(token, unacknowledgedDashboardQuery, nil)
			if n := s.App.Store.Statements() - before; least < 0 || n < least {
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
		r.Decode(t, &out)
		c := out.UnacknowledgedCriticalResults
		harness.Must(t, c.TotalCount == want && len(c.Edges) == want, "%d rows of %d, want %d", len(c.Edges), c.TotalCount, want)
		for _, e := range c.Edges {
			n := e.Node
			harness.Must(t, n.Patient.FamilyName != "" && len(n.Notify) > 0 && n.Notify[0].FamilyName != "" && n.Item.Test.Name != "",
				"a row without what the dashboard shows: %+v", n)
		}
		return least
	}
	for _, p := range patients[:2] {
		desk.Released(p, k, harness.Potassium(value(p)))
	}
	few := cost(2)
	for _, p := range patients[2:] {
		desk.Released(p, k, harness.Potassium(value(p)))
	}
	many := cost(len(patients))
	t.Logf("unacknowledged criticals: %d statements for 2 rows, %d for %d", few, many, len(patients))
	harness.Must(t, few == many, "statements grew with the list: %d for 2 rows, %d for %d", few, many, len(patients))
}

// TestLabUnacknowledgedCriticalsLongestWaitingFirst: "oldest first" is the
// order the values were released in, which is when a clinician's clock
// starts (acknowledgeMinutes counts from verifiedAt), not the order they
// were typed in: a value entered early but verified late has waited the
// least.
func TestLabUnacknowledgedCriticalsLongestWaitingFirst(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	desk := harness.NewLabDesk(t, s)
	pf := harness.Facts(t, s, d.Patients[1])
	_, kv := desk.Cat.PotassiumFor(t, pf.Sex, pf.Birth)
	early := desk.Entered(d.Patients[1], desk.Cat.Potassium.ID, harness.Potassium(kv.CriticalHigh))
	late := desk.Entered(d.Patients[1], desk.Cat.Potassium.ID, harness.Potassium(kv.CriticalHigh))
	late = desk.Verify("labtech2", late.ID)
	early = desk.Verify("labtech2", early.ID)
	harness.Must(t, parseTime(t, "verifiedAt", *late.VerifiedAt).Before(parseTime(t, "verifiedAt", *early.VerifiedAt)),
		"released in the wrong order: %s then %s", *late.VerifiedAt, *early.VerifiedAt)

	var out unackOut
	s.As("nurse", unacknowledgedQuery, map[string]any{"first": 10}).Decode(t, &out)
	got := harness.IDs(out.nodes(), func(n unackNode) string { return n.ID })
	harness.Must(t, slices.Equal(got, []string{late.ID, early.ID}),
		"unacknowledged %v, want the first released %s before %s, released after it", got, late.ID, early.ID)
}
