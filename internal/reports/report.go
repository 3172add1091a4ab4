package reports

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/cache"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// MinCellSubjects is the suppression threshold: a figure about fewer people
// than this (patients, or staff for attendance) is withheld.
const MinCellSubjects = 5

// DefaultCacheTTL is how long an answer is kept when nothing invalidates it.
const DefaultCacheTTL = 5 * time.Minute

// Report is one answer: a table of aggregates.
type Report struct {
	Name string `json:"name"`
	// From and To are the calendar dates asked for; PreviousFrom and
	// PreviousTo those of the period compared with, when the report has one.
	From         time.Time  `json:"from"`
	To           time.Time  `json:"to"`
	PreviousFrom *time.Time `json:"previousFrom,omitempty"`
	PreviousTo   *time.Time `json:"previousTo,omitempty"`
	Bucket       Bucket     `json:"bucket,omitempty"`
	// DepartmentID is the department the figures are of, when the report
	// was limited to one (asked for, or the only one the viewer may see).
	DepartmentID string    `json:"departmentId,omitempty"`
	ComputedAt   time.Time `json:"computedAt"`
	Columns      []string  `json:"columns"`
	// Rows hold the cells as text; nil is a suppressed cell.
	Rows            [][]*string `json:"rows"`
	SuppressedCells int         `json:"suppressedCells"`
}

// kind is what a metric counts, which decides how it is written and
// whether it is suppressed on its own.
type kind int

const (
	count  kind = iota // people or events: suppressed from 1 to MinCellSubjects-1
	money              // minor units, written as Money
	number             // a measure (days, minutes, hours), one decimal
	rate               // a proportion 0..1, four decimals
	total              // a whole number of things, not people (beds, drugs): never suppressed on its own
)

type metric struct {
	name string
	kind kind
	// of is the count metric a derived figure (a rate, an average) follows:
	// when that count is suppressed, so is this, or it would give it away.
	of string
	// ratio names the counts a rate is of, numerator first, then the parts
	// of its denominator: it is computed from them as published, so that it
	// cannot undo their rounding.
	ratio []string
	// coarse: a share of people whose parts are not published, given to
	// the nearest RateStep.
	coarse bool
}

// Service computes reports.
type Service struct {
	store *store.Store
	cache cache.Cache
	loc   *time.Location
	ttl   time.Duration
	now   func() time.Time
	// allows asks the access policy about an object for a viewer.
	allows func(*auth.Viewer, string) bool
	// key perturbs the figures about people (disclosure.go); exact turns
	// that off, for the tests of the figures themselves.
	key   []byte
	exact bool
}

// NewService returns the reports over st, caching answers in c for ttl
// (0: DefaultCacheTTL); dates are local days in loc. secret is the
// deployment's secret, from which the key that perturbs small figures is
// derived; every instance needs the same one to give the same answers.
func NewService(st *store.Store, c cache.Cache, allows func(*auth.Viewer, string) bool, loc *time.Location, ttl time.Duration, secret []byte) *Service {
	if loc == nil {
		loc = time.UTC
	}
	if ttl <= 0 {
		ttl = DefaultCacheTTL
	}
	if c == nil {
		c = cache.NewMemory()
	}
	return &Service{store: st, cache: c, allows: allows, loc: loc, ttl: ttl, now: time.Now, key: disclosureKey(secret)}
}

// SetClock replaces the service's clock, for tests.
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Run answers the report called name for the viewer in ctx: access, the
// cache, and otherwise the database.
func (s *Service) Run(ctx context.Context, name string, p Params) (*Report, error) {
	def, ok := byName[name]
	if !ok {
		return nil, errUnknown(name)
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	if def.series {
		p = p.wholeBuckets()
	}
	eff, err := s.scope(ctx, def, p)
	if err != nil {
		// A refusal for the department asked for is in the trail as the
		// policy's refusals are, whichever route (GraphQL or CSV) it came by.
		if apperr.CodeOf(err) == apperr.Forbidden {
			audit.NoteDenied(ctx, "Query."+def.query)
		}
		return nil, err
	}
	// A report reads aggregates of patient data: its every read is in the
	// trail, naming the report.
	audit.NoteSensitive(ctx, "Query."+def.query, "Report", def.name)
	version, err := s.dataVersion(ctx)
	if err != nil {
		return nil, err
	}
	key := cacheKey(def.name, eff, version)
	if raw, ok, err := s.cache.Get(ctx, key); err == nil && ok {
		var r Report
		if json.Unmarshal([]byte(raw), &r) == nil {
			return &r, nil
		}
	}
	r, err := s.compute(ctx, def, eff)
	if err != nil {
		return nil, err
	}
	if raw, err := json.Marshal(r); err == nil {
		// A cache that does not answer costs a recomputation, not the report.
		_ = s.cache.Set(ctx, key, string(raw), s.ttl)
	}
	return r, nil
}

// dataVersion is the newest outbox event: every change a domain publishes
// moves it, so it invalidates every answer cached before the change. An
// index answers it (the primary key, ULIDs in time order).
func (s *Service) dataVersion(ctx context.Context) (string, error) {
	var v sql.NullString
	if err := s.store.DB.QueryRowContext(ctx, `SELECT MAX(id) FROM outbox_events`).Scan(&v); err != nil {
		return "", fmt.Errorf("report data version: %w", err)
	}
	return v.String, nil
}

func cacheKey(name string, p Params, version string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s|%s|%s|%s|%s|%s|%s|%s", name, p.From.Format(time.DateOnly), p.To.Format(time.DateOnly),
		p.Bucket, p.DepartmentID, p.WardID, p.PayerID, version)
	return "report:" + name + ":" + hex.EncodeToString(h.Sum(nil))
}

// compute runs def's query and builds the table.
func (s *Service) compute(ctx context.Context, def *definition, p Params) (*Report, error) {
	computedAt := input.Stored(s.now())
	r := &Report{Name: def.name, From: p.From, To: p.To, ComputedAt: computedAt, DepartmentID: p.DepartmentID}
	bucket := BucketNone
	if def.series {
		bucket = p.Bucket
		r.Bucket = bucket
	}
	ss := spans(0, p.From, p.To, bucket, s.loc)
	if len(ss) > MaxBuckets {
		return nil, errTooManyBuckets()
	}
	if !def.noPrevious {
		pf, pt := previous(p.From, p.To, bucket)
		r.PreviousFrom, r.PreviousTo = &pf, &pt
		prev := spans(1, pf, pt, bucket, s.loc)
		// The previous period has as many buckets, so that row i of one
		// compares with row i of the other.
		if len(prev) > len(ss) {
			prev = prev[len(prev)-len(ss):]
			for i := range prev {
				prev[i].Index = i
			}
		}
		ss = append(ss, prev...)
	}
	b := &q{dialect: s.store.Dialect}
	query := def.build(b, p, ss, computedAt)
	rows, err := s.store.DB.QueryContext(ctx, query, b.args...)
	if err != nil {
		return nil, fmt.Errorf("report %s: %w", def.name, err)
	}
	defer rows.Close()

	type line struct {
		index    int
		dims     []string
		subjects [2]int64
		values   [2][]sql.NullFloat64
		seen     [2]bool
	}
	var order []*line
	lines := map[string]*line{}
	for rows.Next() {
		var period, index, subjects sql.NullInt64
		dims := make([]sql.NullString, len(def.dims))
		vals := make([]sql.NullFloat64, len(def.metrics))
		dest := []any{&period, &index}
		for i := range dims {
			dest = append(dest, &dims[i])
		}
		dest = append(dest, &subjects)
		for i := range vals {
			dest = append(dest, &vals[i])
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("report %s: %w", def.name, err)
		}
		ds := make([]string, len(dims))
		for i, d := range dims {
			ds[i] = d.String
		}
		k := strconv.FormatInt(index.Int64, 10) + "\x00" + fmt.Sprint(ds)
		l := lines[k]
		if l == nil {
			l = &line{index: int(index.Int64), dims: ds}
			lines[k] = l
			order = append(order, l)
		}
		per := int(period.Int64)
		l.seen[per], l.values[per] = true, vals
		l.subjects[per] = -1
		if subjects.Valid {
			l.subjects[per] = subjects.Int64
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report %s: %w", def.name, err)
	}

	if def.series {
		r.Columns = append(r.Columns, "period")
	}
	r.Columns = append(r.Columns, def.dims...)
	for _, m := range def.metrics {
		r.Columns = append(r.Columns, m.name)
		if !def.noPrevious {
			r.Columns = append(r.Columns, "previous"+upperFirst(m.name))
		}
	}
	labels := map[int]string{}
	spanOf := map[[2]int]span{}
	for _, sp := range ss {
		if sp.Period == 0 {
			labels[sp.Index] = sp.Label
		}
		spanOf[[2]int{sp.Period, sp.Index}] = sp
	}
	for _, l := range order {
		var row []*string
		if def.series {
			row = append(row, str(labels[l.index]))
		}
		for _, d := range l.dims {
			row = append(row, str(d))
		}
		var cells [2][]*string
		for per := 0; per < 2; per++ {
			var n int
			cell := cellName(def, p, spanOf[[2]int{per, l.index}], l.dims)
			cells[per], n = s.cells(def, cell, l.values[per], l.seen[per], l.subjects[per])
			if per == 0 || !def.noPrevious {
				r.SuppressedCells += n
			}
		}
		for i := range def.metrics {
			row = append(row, cells[0][i])
			if !def.noPrevious {
				row = append(row, cells[1][i])
			}
		}
		r.Rows = append(r.Rows, row)
	}
	sortRows(def, r)
	return r, nil
}

// cells writes one period's figures of a row, suppressing and perturbing
// what the rule says (disclosure.go), and returns how many it suppressed.
// A row the period has no line for has nothing to count: zero counts and
// money, no averages. subjects is how many people the row is about, -1
// when its figures are not about people (beds, stock).
func (s *Service) cells(def *definition, cell string, vals []sql.NullFloat64, seen bool, subjects int64) ([]*string, int) {
	out := make([]*string, len(def.metrics))
	suppressed := 0
	small := func(n int64) bool { return n > 0 && n < MinCellSubjects }
	hidden := map[string]bool{}
	published := map[string]float64{}
	about := subjects >= 0 && !s.exact
	for i, m := range def.metrics {
		if !seen {
			if m.kind == count {
				out[i] = str("0")
			} else if m.kind == money {
				out[i] = str("0.00")
			}
			published[m.name] = 0
			continue
		}
		v := vals[i]
		hide := m.kind != total && subjects >= 0 && small(subjects)
		if m.kind == count && v.Valid && small(int64(math.Round(v.Float64))) {
			hide = true
		}
		if m.of != "" && hidden[m.of] {
			hide = true
		}
		for _, part := range m.ratio {
			if hidden[part] {
				hide = true
			}
		}
		if hide {
			hidden[m.name] = true
			suppressed++
			continue
		}
		if !v.Valid {
			continue
		}
		f := v.Float64
		u := s.uniform(cell+"\x1e"+m.name, f)
		switch {
		case s.exact:
		case m.kind == count:
			f = float64(roundCount(int64(math.Round(f)), u))
		case m.kind == money && about:
			f = perturbMoney(f, subjects, u)
		case m.kind == rate && len(m.ratio) > 0:
			f = s.ratioOf(m, published, f)
		case m.kind == rate && m.coarse && about:
			f = roundRate(f)
		}
		published[m.name] = f
		out[i] = str(format(m.kind, f))
	}
	return out, suppressed
}

// ratioOf is m's rate computed from the counts it names as they were
// published; fallback when they were not all (a zero denominator: no
// rate, as the SQL has it).
func (s *Service) ratioOf(m metric, published map[string]float64, fallback float64) float64 {
	num, ok := published[m.ratio[0]]
	if !ok {
		return fallback
	}
	den := 0.0
	for _, part := range m.ratio[1:] {
		v, ok := published[part]
		if !ok {
			return fallback
		}
		den += v
	}
	if den == 0 {
		return 0
	}
	return num / den
}

func format(k kind, v float64) string {
	switch k {
	case count, total:
		return strconv.FormatInt(int64(math.Round(v)), 10)
	case money:
		return input.FormatMoney(int64(math.Round(v)))
	case rate:
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func str(s string) *string { return &s }

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}
