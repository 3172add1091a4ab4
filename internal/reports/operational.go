package reports

import "time"

var bedOccupancy = &definition{
	name: "bed-occupancy", query: "bedOccupancyReport", group: "operational", series: true,
	about:        "Per ward: beds, occupied bed-days and occupancy (occupied bed-days / beds × days; up to now for a bucket still running).",
	byDepartment: true, byWard: true,
	dims: []string{"ward"},
	metrics: []metric{
		{name: "beds", kind: total}, {name: "occupiedBedDays", kind: number}, {name: "occupancy", kind: rate},
	},
	build: func(b *q, p Params, ss []span, now time.Time) string {
		// Each stretch in a bed counts in that bed's ward (the bed history),
		// up to now for a stay still open.
		n := b.ts(now)
		end := "COALESCE(ba.to_at, a.discharged_at, " + n + ")"
		until := b.least(end, "b.e")
		since := b.greatest("ba.from_at", "b.s")
		return `WITH ` + b.buckets(ss) + `,
wb AS (SELECT w.id, w.name, COUNT(bd.id) AS beds FROM wards w JOIN beds bd ON bd.ward_id = w.id
	WHERE 1 = 1` + wardFilters(b, p) + ` GROUP BY w.id, w.name),
occ AS (SELECT b.p, b.i, bd.ward_id, ba.patient_id, ` + b.seconds(until, since) + ` AS secs
	FROM bed_assignments ba JOIN admissions a ON a.id = ba.admission_id
	` + b.scan() + ` b ON ba.from_at < b.e AND ` + end + ` > b.s
	JOIN beds bd ON bd.id = ba.bed_id)
SELECT b.p, b.i, wb.name, COUNT(DISTINCT occ.patient_id), wb.beds,
	COALESCE(SUM(occ.secs), 0) / 86400.0,
	COALESCE(SUM(occ.secs), 0) / (wb.beds * ` + b.seconds("b.e", "b.s") + `)
FROM b CROSS JOIN wb LEFT JOIN occ ON occ.p = b.p AND occ.i = b.i AND occ.ward_id = wb.id
GROUP BY b.p, b.i, b.s, b.e, wb.id, wb.name, wb.beds`
	},
}

var noShows = &definition{
	name: "no-shows", query: "noShowsReport", group: "operational", series: true,
	about:        "Appointments (not cancelled) by department: no-shows, the no-show rate, and the average wait from check-in to start in minutes.",
	byDepartment: true,
	dims:         []string{"department"},
	metrics: []metric{
		{name: "appointments", kind: count}, {name: "noShows", kind: count},
		{name: "noShowRate", kind: rate, ratio: []string{"noShows", "appointments"}}, {name: "averageWaitMinutes", kind: number},
	},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		wait := `CASE WHEN ap.checked_in_at IS NOT NULL AND ap.started_at IS NOT NULL THEN ` +
			b.seconds("ap.started_at", "ap.checked_in_at") + ` / 60.0 END`
		return `WITH ` + b.buckets(ss) + `
SELECT b.p, b.i, d.name, COUNT(DISTINCT ap.patient_id), COUNT(*),
	SUM(CASE WHEN ap.status = 'NO_SHOW' THEN 1 ELSE 0 END),
	` + b.float("SUM(CASE WHEN ap.status = 'NO_SHOW' THEN 1 ELSE 0 END)") + ` / COUNT(*),
	AVG(` + wait + `)
FROM appointments ap ` + b.scan() + ` b ON ap.start_at >= b.s AND ap.start_at < b.e
JOIN departments d ON d.id = ap.department_id
WHERE ap.status <> 'CANCELLED'` + b.filter("ap.department_id", p.DepartmentID) + `
GROUP BY b.p, b.i, d.name`
	},
}

var labTurnaround = &definition{
	name: "lab-turnaround", query: "labTurnaroundReport", group: "operational",
	about:        "Per test verified in the period: results, median and 90th-percentile turnaround (order to first verified result, minutes, nearest rank), the test's target and the share within it.",
	byDepartment: true,
	dims:         []string{"testCode", "test"},
	metrics: []metric{
		{name: "results", kind: count}, {name: "medianMinutes", kind: number}, {name: "p90Minutes", kind: number},
		{name: "targetMinutes", kind: number}, {name: "withinTarget", kind: rate, coarse: true},
	},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		dept := ""
		if p.DepartmentID != "" {
			dept = ` JOIN lab_orders o ON o.id = li.order_id JOIN encounters e ON e.id = o.encounter_id AND e.department_id = ` + b.arg(p.DepartmentID)
		}
		return `WITH ` + b.buckets(ss) + `,
t AS (SELECT b.p, li.test_id, li.patient_id, li.turnaround_minutes AS m,
	ROW_NUMBER() OVER (PARTITION BY b.p, li.test_id ORDER BY li.turnaround_minutes) AS rn,
	COUNT(*) OVER (PARTITION BY b.p, li.test_id) AS n
	FROM lab_order_items li ` + b.scan() + ` b ON li.verified_at >= b.s AND li.verified_at < b.e` + dept + `
	WHERE li.turnaround_minutes IS NOT NULL)
SELECT t.p, 0, lt.code, lt.name, COUNT(DISTINCT t.patient_id), COUNT(*),
	MIN(CASE WHEN t.rn >= 0.5 * t.n THEN t.m END),
	MIN(CASE WHEN t.rn >= 0.9 * t.n THEN t.m END),
	MAX(lt.turnaround_minutes),
	AVG(CASE WHEN t.m <= lt.turnaround_minutes THEN 1.0 ELSE 0.0 END)
FROM t JOIN lab_tests lt ON lt.id = t.test_id
GROUP BY t.p, lt.code, lt.name`
	},
}

var pharmacyStock = &definition{
	name: "pharmacy-stock", query: "pharmacyStockReport", group: "operational", noPrevious: true,
	about:        "Stock on hand now, per location: its value at cost, the value expiring within 90 days after `to` (not yet expired at `to`), the value already expired at `to`, and stock-outs (drugs stocked there with none left).",
	byDepartment: true, byWard: true,
	dims: []string{"location"},
	metrics: []metric{
		{name: "value", kind: money}, {name: "expiringValue", kind: money}, {name: "expiredValue", kind: money},
		{name: "stockOuts", kind: total},
	},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		end := ss[0].End.In(time.UTC)
		to := time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC).AddDate(0, 0, -1)
		loc := ""
		if p.DepartmentID != "" || p.WardID != "" {
			loc = ` AND l.ward_id IN (SELECT w.id FROM wards w WHERE 1 = 1` + wardFilters(b, p) + `)`
		}
		toArg, horizon := b.ts(to), b.ts(to.AddDate(0, 0, 90))
		return `WITH per AS (SELECT l.id, l.name, sb.drug_id, SUM(sb.quantity_on_hand) AS on_hand,
	SUM(sb.quantity_on_hand * sb.unit_cost) AS value,
	SUM(CASE WHEN sb.expiry_date > ` + toArg + ` AND sb.expiry_date <= ` + horizon + ` THEN sb.quantity_on_hand * sb.unit_cost ELSE 0 END) AS expiring,
	SUM(CASE WHEN sb.expiry_date <= ` + toArg + ` THEN sb.quantity_on_hand * sb.unit_cost ELSE 0 END) AS expired
	FROM stock_locations l JOIN stock_batches sb ON sb.location_id = l.id
	WHERE l.active` + loc + `
	GROUP BY l.id, l.name, sb.drug_id)
SELECT 0, 0, name, ` + b.float("NULL") + `, SUM(value), SUM(expiring), SUM(expired),
	SUM(CASE WHEN on_hand = 0 THEN 1 ELSE 0 END)
FROM per GROUP BY id, name`
	},
}

var attendance = &definition{
	name: "attendance", query: "attendanceReport", group: "operational", series: true,
	about:        "Rostered shifts starting in the period by department: those attended (clocked in), the attendance rate, and the hours worked and overtime recorded on them.",
	byDepartment: true,
	dims:         []string{"department"},
	metrics: []metric{
		{name: "rosteredShifts", kind: count}, {name: "attended", kind: count},
		{name: "attendanceRate", kind: rate, ratio: []string{"attended", "rosteredShifts"}}, {name: "workedHours", kind: number}, {name: "overtimeHours", kind: number},
	},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		return `WITH ` + b.buckets(ss) + `,
r AS (SELECT b.p, b.i, re.id, re.staff_id, d.name AS department,
	(SELECT COUNT(*) FROM attendance_records ar WHERE ar.roster_entry_id = re.id) AS clocked,
	(SELECT COALESCE(SUM(ar.worked_minutes), 0) FROM attendance_records ar WHERE ar.roster_entry_id = re.id) AS worked,
	(SELECT COALESCE(SUM(ar.overtime_minutes), 0) FROM attendance_records ar WHERE ar.roster_entry_id = re.id) AS overtime
	FROM roster_entries re ` + b.scan() + ` b ON re.start_at >= b.s AND re.start_at < b.e
	JOIN departments d ON d.id = re.department_id
	WHERE 1 = 1` + b.filter("re.department_id", p.DepartmentID) + `)
SELECT p, i, department, COUNT(DISTINCT staff_id), COUNT(*),
	SUM(CASE WHEN clocked > 0 THEN 1 ELSE 0 END),
	` + b.float("SUM(CASE WHEN clocked > 0 THEN 1 ELSE 0 END)") + ` / COUNT(*),
	SUM(worked) / 60.0, SUM(overtime) / 60.0
FROM r GROUP BY p, i, department`
	},
}
