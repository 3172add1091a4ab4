package reports

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"entgo.io/ent/dialect"
)

// q builds one report's SQL for a dialect: placeholders, the buckets as a
// VALUES list, and the few expressions the two dialects spell apart.
type q struct {
	dialect string
	args    []any
}

// arg binds v and returns its placeholder.
func (b *q) arg(v any) string {
	if t, ok := v.(time.Time); ok {
		// Stored times are UTC; SQLite compares them as text, so the
		// bound value must be written as they are.
		v = t.UTC()
	}
	b.args = append(b.args, v)
	// Numbered on both backends (SQLite reads ?NNN), so that a report may
	// bind its filters before the text they go in.
	if b.dialect == dialect.Postgres {
		return "$" + strconv.Itoa(len(b.args))
	}
	return "?" + strconv.Itoa(len(b.args))
}

// ts binds a timestamp.
func (b *q) ts(t time.Time) string {
	p := b.arg(t)
	if b.dialect == dialect.Postgres {
		return p + "::timestamptz"
	}
	return p
}

// buckets is the CTE b(p, i, s, e) of the spans: period, index, start,
// end. Joining a table's instant into it ([s, e)) buckets the rows in the
// database, whatever the time zone, since the bounds are local midnights
// computed here.
func (b *q) buckets(ss []span) string {
	var sb strings.Builder
	sb.WriteString("b(p, i, s, e) AS (VALUES ")
	for k, s := range ss {
		if k > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "(%d, %d, %s, %s)", s.Period, s.Index, b.ts(s.Start), b.ts(s.End))
	}
	sb.WriteString(")")
	return sb.String()
}

// seconds is the expression of end - start in seconds.
func (b *q) seconds(end, start string) string {
	if b.dialect == dialect.Postgres {
		return "EXTRACT(EPOCH FROM (" + end + " - " + start + "))"
	}
	return "((julianday(" + end + ") - julianday(" + start + ")) * 86400.0)"
}

// greatest and least of two instants.
func (b *q) greatest(x, y string) string {
	if b.dialect == dialect.Postgres {
		return "GREATEST(" + x + ", " + y + ")"
	}
	return "MAX(" + x + ", " + y + ")"
}

func (b *q) least(x, y string) string {
	if b.dialect == dialect.Postgres {
		return "LEAST(" + x + ", " + y + ")"
	}
	return "MIN(" + x + ", " + y + ")"
}

// float casts an expression so that division is not integer division.
func (b *q) float(x string) string {
	if b.dialect == dialect.Postgres {
		return "CAST(" + x + " AS double precision)"
	}
	return "CAST(" + x + " AS REAL)"
}

// text casts an expression to text, for a dimension column built from
// numbers.
func (b *q) text(x string) string {
	return "CAST(" + x + " AS " + map[bool]string{true: "text", false: "TEXT"}[b.dialect == dialect.Postgres] + ")"
}

// filter appends "AND col = ?" when v is set.
func (b *q) filter(col, v string) string {
	if v == "" {
		return ""
	}
	return " AND " + col + " = " + b.arg(v)
}

// scan is the join that puts the bucket list inside the loop over a
// table's rows: the table is read once and each row finds its bucket among
// a few dozen, where the other way round the table would be read once per
// bucket. SQLite keeps the left table of a CROSS JOIN outside; PostgreSQL's
// planner chooses by itself.
func (b *q) scan() string {
	if b.dialect == dialect.Postgres {
		return "JOIN"
	}
	return "CROSS JOIN"
}
