// Package reports answers the hospital's reporting questions — financial,
// patient and operational — as tables of aggregates computed in the
// database (GROUP BY, window functions) on PostgreSQL and SQLite alike.
//
// Every report takes a date range (local days in the hospital's time zone),
// optional department, ward and payer filters and, for a series, a time
// bucket; a series carries the previous period of the same shape beside
// each figure. Answers are cached (internal/cache) under the report and its
// effective parameters together with the data version (the newest outbox
// event), so a change that publishes an event invalidates them and the rest
// expire; each answer says when it was computed. Cells that aggregate fewer
// than MinCellSubjects people are suppressed, so that no one learns about an
// individual from a report. The same answer is served over GraphQL and as
// CSV (/reports/{name}.csv), behind the same policy and the same audit.
package reports
