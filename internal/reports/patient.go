package reports

import (
	"fmt"
	"strings"
	"time"
)

// wardOf joins an admission (alias a) to its ward (w) through its bed:
// the bed it holds now, so a transferred patient counts in their present
// ward.
const wardOf = ` JOIN beds bd ON bd.id = a.bed_id JOIN wards w ON w.id = bd.ward_id`

func wardFilters(b *q, p Params) string {
	return b.filter("w.department_id", p.DepartmentID) + b.filter("w.id", p.WardID)
}

var census = &definition{
	name: "census", query: "censusReport", group: "patient", series: true,
	about:        "Inpatients at the end of each bucket (of `to` without one), by the ward they were in then.",
	byDepartment: true, byWard: true,
	dims:    []string{"ward"},
	metrics: []metric{{name: "inpatients", kind: count}},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		// The bed history, not the stay's current bed: a patient moved since
		// counts where they were.
		return `WITH ` + b.buckets(ss) + `
SELECT b.p, b.i, w.name, COUNT(DISTINCT ba.patient_id), COUNT(*)
FROM bed_assignments ba JOIN admissions a ON a.id = ba.admission_id
` + b.scan() + ` b ON ba.from_at < b.e AND (ba.to_at IS NULL OR ba.to_at >= b.e) AND (a.discharged_at IS NULL OR a.discharged_at >= b.e)
JOIN beds bd ON bd.id = ba.bed_id JOIN wards w ON w.id = bd.ward_id
WHERE 1 = 1` + wardFilters(b, p) + `
GROUP BY b.p, b.i, w.name`
	},
}

var admissions = &definition{
	name: "admissions", query: "admissionsReport", group: "patient", series: true,
	about:        "Admissions and discharges by ward; the average length of stay (days) of the discharges; readmissions: admissions within 30 days of the same patient's discharge.",
	byDepartment: true, byWard: true,
	dims: []string{"ward"},
	metrics: []metric{
		{name: "admissions", kind: count}, {name: "discharges", kind: count},
		{name: "averageLengthOfStayDays", kind: number, of: "discharges"},
		{name: "readmissions30Days", kind: count},
	},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		null := b.float("NULL")
		return `WITH ` + b.buckets(ss) + `,
a AS (SELECT a.id, a.patient_id, a.admitted_at, a.discharged_at, w.name AS ward FROM admissions a` + wardOf + `
	WHERE 1 = 1` + wardFilters(b, p) + `),
ev AS (
	SELECT b.p, b.i, a.ward, a.patient_id, 1 AS adm, 0 AS dis, ` + null + ` AS los,
		CASE WHEN EXISTS (SELECT 1 FROM admissions r WHERE r.patient_id = a.patient_id AND r.id <> a.id
			AND r.discharged_at <= a.admitted_at AND ` + b.seconds("a.admitted_at", "r.discharged_at") + ` <= 30 * 86400) THEN 1 ELSE 0 END AS readm
	FROM a ` + b.scan() + ` b ON a.admitted_at >= b.s AND a.admitted_at < b.e
	UNION ALL
	SELECT b.p, b.i, a.ward, a.patient_id, 0, 1, ` + b.seconds("a.discharged_at", "a.admitted_at") + ` / 86400.0, 0
	FROM a ` + b.scan() + ` b ON a.discharged_at >= b.s AND a.discharged_at < b.e)
SELECT p, i, ward, COUNT(DISTINCT patient_id), SUM(adm), SUM(dis), AVG(los), SUM(readm) FROM ev GROUP BY p, i, ward`
	},
}

var visits = &definition{
	name: "visits", query: "visitsReport", group: "patient", series: true,
	about:        "Outpatient visits (encounters not cancelled) by department: new patients (no earlier encounter) and returning ones.",
	byDepartment: true,
	dims:         []string{"department"},
	metrics:      []metric{{name: "visits", kind: count}, {name: "newPatients", kind: count}, {name: "returning", kind: count}},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		return `WITH ` + b.buckets(ss) + `,
v AS (SELECT b.p, b.i, COALESCE(d.name, 'No department') AS department, e.patient_id,
	CASE WHEN EXISTS (SELECT 1 FROM encounters x WHERE x.patient_id = e.patient_id AND x.started_at < e.started_at AND x.status <> 'CANCELLED') THEN 0 ELSE 1 END AS first
	FROM encounters e ` + b.scan() + ` b ON e.started_at >= b.s AND e.started_at < b.e
	LEFT JOIN departments d ON d.id = e.department_id
	WHERE e.type = 'OUTPATIENT' AND e.status <> 'CANCELLED'` + b.filter("e.department_id", p.DepartmentID) + `)
SELECT p, i, department, COUNT(DISTINCT patient_id), COUNT(*), SUM(first), COUNT(*) - SUM(first) FROM v GROUP BY p, i, department`
	},
}

var diagnoses = &definition{
	name: "diagnoses", query: "diagnosesReport", group: "patient", ranked: true,
	about:        "The ten commonest diagnoses (ICD-10) recorded in the period, by patients diagnosed.",
	byDepartment: true,
	dims:         []string{"icd10Code", "display"},
	metrics:      []metric{{name: "patients", kind: count}},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		dept := ""
		if p.DepartmentID != "" {
			dept = ` JOIN encounters e ON e.id = pr.encounter_id AND e.department_id = ` + b.arg(p.DepartmentID)
		}
		return `WITH ` + b.buckets(ss) + `,
d AS (SELECT b.p, pr.icd10_code AS code, MIN(pr.display) AS display, COUNT(DISTINCT pr.patient_id) AS patients
	FROM problems pr ` + b.scan() + ` b ON pr.created_at >= b.s AND pr.created_at < b.e` + dept + `
	WHERE pr.status <> 'ENTERED_IN_ERROR'
	GROUP BY b.p, pr.icd10_code),
r AS (SELECT p, code, display, patients, ROW_NUMBER() OVER (PARTITION BY p ORDER BY patients DESC, code) AS rnk FROM d)
SELECT p, 0, code, display, patients, patients FROM r WHERE rnk <= 10 ORDER BY p, rnk`
	},
}

// ageBands are the demographics report's bands, in years [from, to).
var ageBands = []struct {
	name   string
	lo, hi int
}{{"0-4", 0, 5}, {"5-14", 5, 15}, {"15-24", 15, 25}, {"25-44", 25, 45}, {"45-64", 45, 65}, {"65+", 65, 200}}

var demographics = &definition{
	name: "demographics", query: "demographicsReport", group: "patient",
	about:        "Patients seen (any encounter not cancelled) by age band at the end of the period and sex.",
	byDepartment: true,
	dims:         []string{"ageBand", "sex"},
	metrics:      []metric{{name: "patients", kind: count}},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		// A patient is in a band when born in (end - hi years, end - lo
		// years]; birth dates are calendar dates, so the bounds are too.
		var bands []string
		for _, sp := range ss {
			end := sp.End.In(time.UTC)
			last := time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC)
			for k, band := range ageBands {
				bands = append(bands, fmt.Sprintf("(%d, %d, '%s', %s, %s)", sp.Period, k, band.name,
					b.ts(last.AddDate(-band.hi, 0, 0)), b.ts(last.AddDate(-band.lo, 0, 0))))
			}
		}
		return `WITH ` + b.buckets(ss) + `,
ab(p, o, band, lo, hi) AS (VALUES ` + strings.Join(bands, ", ") + `),
seen AS (SELECT DISTINCT b.p, e.patient_id FROM encounters e ` + b.scan() + ` b ON e.started_at >= b.s AND e.started_at < b.e
	WHERE e.status <> 'CANCELLED'` + b.filter("e.department_id", p.DepartmentID) + `)
SELECT seen.p, 0, ab.band, pt.sex, COUNT(*), COUNT(*)
FROM seen JOIN patients pt ON pt.id = seen.patient_id
JOIN ab ON ab.p = seen.p AND pt.birth_date > ab.lo AND pt.birth_date <= ab.hi
GROUP BY seen.p, ab.o, ab.band, pt.sex`
	},
}
