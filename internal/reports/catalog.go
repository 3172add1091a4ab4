package reports

import (
	"sort"
	"time"
)

// definition is one report: what it is called, what it may be narrowed
// by, its columns, and its SQL. build returns a query whose rows are
// (period, bucket index, dims…, subjects, metrics…): subjects is how many
// distinct people the row's figures are about (NULL: not about people).
type definition struct {
	name  string // in the CSV path: revenue, ar-ageing
	query string // the GraphQL field, and the policy object Query.<query>
	group string // financial, patient or operational
	about string // one line for the README and the schema
	// series: the report takes a bucket; noPrevious: it is of the present
	// (current balances, stock on hand) and has no earlier period to
	// compare with.
	series, noPrevious            bool
	byDepartment, byWard, byPayer bool
	// ranked: the SQL's order is the report's (a top list); otherwise
	// rows are sorted by bucket and dimensions.
	ranked  bool
	dims    []string
	metrics []metric
	build   func(b *q, p Params, ss []span, now time.Time) string
}

var catalog = []*definition{
	revenue, collections, arAgeing, claimsReport, discounts,
	census, admissions, visits, diagnoses, demographics,
	bedOccupancy, noShows, labTurnaround, pharmacyStock, attendance,
}

var byName = func() map[string]*definition {
	m := map[string]*definition{}
	for _, d := range catalog {
		m[d.name] = d
	}
	return m
}()

// Info describes a report for the CSV endpoint and documentation.
type Info struct {
	Name, Query, Group, About string
}

// Catalog lists the reports in their documented order.
func Catalog() []Info {
	out := make([]Info, len(catalog))
	for i, d := range catalog {
		out[i] = Info{Name: d.name, Query: d.query, Group: d.group, About: d.about}
	}
	return out
}

// Lookup returns the report called name.
func Lookup(name string) (Info, bool) {
	d, ok := byName[name]
	if !ok {
		return Info{}, false
	}
	return Info{Name: d.name, Query: d.query, Group: d.group, About: d.about}, true
}

// sortRows orders a report's rows by bucket, then dimensions, unless the
// report is a ranking.
func sortRows(def *definition, r *Report) {
	if def.ranked {
		return
	}
	sort.SliceStable(r.Rows, func(i, j int) bool {
		a, b := r.Rows[i], r.Rows[j]
		n := len(def.dims)
		if def.series {
			n++
		}
		for k := 0; k < n; k++ {
			if *a[k] != *b[k] {
				return *a[k] < *b[k]
			}
		}
		return false
	})
}
