package reports

import (
	"fmt"
	"time"
)

// claimPayer is the payer each invoice was claimed from: a claim's
// versions share their payer, and a cancelled one claimed nothing.
const claimPayer = `pay AS (SELECT invoice_id, MIN(payer_id) AS payer_id FROM claims
	WHERE status <> 'CANCELLED' AND invoice_id IS NOT NULL GROUP BY invoice_id)`

// selfPay names the patients' own share in by-payer figures.
const selfPay = "Patients (self-pay)"

var revenue = &definition{
	name: "revenue", query: "revenueReport", group: "financial", series: true,
	about:        "Revenue of the services charged (reversals excluded), by department, service category and payer (the payers' share as invoiced; the rest is the patients').",
	byDepartment: true, byPayer: true,
	dims:    []string{"by", "group"},
	metrics: []metric{{name: "revenue", kind: money}},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		where := b.filter("ch.department_id", p.DepartmentID) + b.filter("pay.payer_id", p.PayerID)
		selfPayRow := fmt.Sprintf(`UNION ALL SELECT p, i, 'payer', '%s', COUNT(DISTINCT patient_id), SUM(amount - payer_share) FROM c GROUP BY p, i`, selfPay)
		if p.PayerID != "" {
			selfPayRow = ""
		}
		return `WITH ` + b.buckets(ss) + `, ` + claimPayer + `,
c AS (SELECT b.p, b.i, ch.patient_id, ch.amount, ch.payer_share, ch.category,
	COALESCE(d.name, 'No department') AS department, py.name AS payer
	FROM charges ch ` + b.scan() + ` b ON ch.service_at >= b.s AND ch.service_at < b.e
	LEFT JOIN departments d ON d.id = ch.department_id
	LEFT JOIN pay ON pay.invoice_id = ch.invoice_id
	LEFT JOIN payers py ON py.id = pay.payer_id
	WHERE ch.status = 'ACTIVE'` + where + `)
SELECT p, i, 'department', department, COUNT(DISTINCT patient_id), SUM(amount) FROM c GROUP BY p, i, department
UNION ALL SELECT p, i, 'category', category, COUNT(DISTINCT patient_id), SUM(amount) FROM c GROUP BY p, i, category
UNION ALL SELECT p, i, 'payer', payer, COUNT(DISTINCT patient_id), SUM(payer_share) FROM c WHERE payer IS NOT NULL GROUP BY p, i, payer
` + selfPayRow
	},
}

var collections = &definition{
	name: "collections", query: "collectionsReport", group: "financial", series: true,
	about:   "Money received, by method (a payer's remittance as INSURANCE_REMITTANCE), and refunds paid out (negative); payments from credit move no money and are left out.",
	byPayer: true,
	dims:    []string{"method"},
	metrics: []metric{{name: "payments", kind: count}, {name: "amount", kind: money, of: "payments"}},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		if p.PayerID != "" {
			return `WITH ` + b.buckets(ss) + `
SELECT b.p, b.i, pm.method, COUNT(DISTINCT pm.patient_id), COUNT(*), SUM(pm.amount)
FROM payments pm ` + b.scan() + ` b ON pm.received_at >= b.s AND pm.received_at < b.e
JOIN claims cl ON cl.id = pm.claim_id
WHERE cl.payer_id = ` + b.arg(p.PayerID) + `
GROUP BY b.p, b.i, pm.method`
		}
		return `WITH ` + b.buckets(ss) + `
SELECT b.p, b.i, pm.method, COUNT(DISTINCT pm.patient_id), COUNT(*), SUM(pm.amount)
FROM payments pm ` + b.scan() + ` b ON pm.received_at >= b.s AND pm.received_at < b.e
WHERE pm.method <> 'CREDIT'
GROUP BY b.p, b.i, pm.method
UNION ALL
SELECT b.p, b.i, 'REFUND', COUNT(DISTINCT r.patient_id), COUNT(*), -SUM(r.amount)
FROM refunds r ` + b.scan() + ` b ON r.refunded_at >= b.s AND r.refunded_at < b.e
WHERE r.method <> 'CREDIT'
GROUP BY b.p, b.i`
	},
}

var arAgeing = &definition{
	name: "ar-ageing", query: "arAgeingReport", group: "financial", noPrevious: true,
	about:   "What patients and each payer still owe on issued invoices at the end of `to`, by days since the invoice was issued: 0-30, 31-60, 61-90, 90+ (today's balances, aged at that date).",
	byPayer: true,
	dims:    []string{"debtor", "band"},
	metrics: []metric{{name: "invoices", kind: count}, {name: "balance", kind: money, of: "invoices"}},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		age := b.seconds("b.e", "i.issued_at")
		payer := b.filter("pay.payer_id", p.PayerID)
		patients := `SELECT p, i, 'Patients', band, COUNT(DISTINCT patient_id), COUNT(*), SUM(patient_owes) FROM aged WHERE patient_owes > 0 GROUP BY p, i, band
UNION ALL `
		if p.PayerID != "" {
			patients = ""
		}
		return `WITH ` + b.buckets(ss) + `, ` + claimPayer + `,
inv AS (SELECT b.p, b.i, i.patient_id,
	i.patient_total + i.moved_to_patient - i.patient_paid - i.written_off AS patient_owes,
	i.payer_total - i.payer_paid - i.payer_adjusted - i.moved_to_patient AS payer_owes,
	COALESCE(py.name, 'Payer (not claimed yet)') AS payer, ` + age + ` AS age
	FROM invoices i ` + b.scan() + ` b ON i.issued_at < b.e
	LEFT JOIN pay ON pay.invoice_id = i.id
	LEFT JOIN payers py ON py.id = pay.payer_id
	WHERE i.status IN ('ISSUED', 'PARTIALLY_PAID')` + payer + `),
aged AS (SELECT p, i, patient_id, patient_owes, payer_owes, payer,
	CASE WHEN age < 31*86400 THEN '0-30' WHEN age < 61*86400 THEN '31-60' WHEN age < 91*86400 THEN '61-90' ELSE '90+' END AS band
	FROM inv)
` + patients + `SELECT p, i, payer, band, COUNT(DISTINCT patient_id), COUNT(*), SUM(payer_owes) FROM aged WHERE payer_owes > 0 GROUP BY p, i, payer, band`
	},
}

var claimsReport = &definition{
	name: "claims", query: "claimsReport", group: "financial", series: true,
	about:   "Claims submitted in the period, by payer: approved (wholly or partly, or paid), denied, the denial rate (denied / decided) and amounts; then the ten commonest denial reasons.",
	byPayer: true,
	dims:    []string{"by", "group"},
	metrics: []metric{
		{name: "submitted", kind: count}, {name: "approved", kind: count}, {name: "denied", kind: count},
		{name: "denialRate", kind: rate, ratio: []string{"denied", "approved", "denied"}},
		{name: "claimed", kind: money}, {name: "approvedAmount", kind: money, of: "approved"},
	},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		null := b.float("NULL")
		return `WITH ` + b.buckets(ss) + `,
c AS (SELECT b.p, b.i, cl.patient_id, cl.status, cl.denial_code, cl.total_claimed, cl.total_approved, py.name AS payer
	FROM claims cl ` + b.scan() + ` b ON cl.submitted_at >= b.s AND cl.submitted_at < b.e
	JOIN payers py ON py.id = cl.payer_id
	WHERE 1 = 1` + b.filter("cl.payer_id", p.PayerID) + `),
byp AS (SELECT p, i, payer, COUNT(DISTINCT patient_id) AS subjects, COUNT(*) AS submitted,
	SUM(CASE WHEN status IN ('APPROVED', 'PARTIALLY_APPROVED', 'PAID') THEN 1 ELSE 0 END) AS approved,
	SUM(CASE WHEN status = 'DENIED' THEN 1 ELSE 0 END) AS denied,
	SUM(total_claimed) AS claimed,
	SUM(CASE WHEN status IN ('APPROVED', 'PARTIALLY_APPROVED', 'PAID') THEN COALESCE(total_approved, 0) ELSE 0 END) AS approved_amount
	FROM c GROUP BY p, i, payer),
reasons AS (SELECT p, i, denial_code, COUNT(DISTINCT patient_id) AS subjects, COUNT(*) AS denied, SUM(total_claimed) AS claimed,
	ROW_NUMBER() OVER (PARTITION BY p, i ORDER BY COUNT(*) DESC, denial_code) AS rnk
	FROM c WHERE status = 'DENIED' AND denial_code IS NOT NULL GROUP BY p, i, denial_code)
SELECT p, i, 'payer', payer, subjects, submitted, approved, denied,
	` + b.float("denied") + ` / NULLIF(approved + denied, 0), claimed, approved_amount FROM byp
UNION ALL
SELECT p, i, 'denialReason', denial_code, subjects, ` + null + `, ` + null + `, denied, ` + null + `, claimed, ` + null + `
	FROM reasons WHERE rnk <= 10`
	},
}

var discounts = &definition{
	name: "discounts", query: "discountsReport", group: "financial", series: true,
	about:   "Discounts approved, and adjustments written: payers' contractual write-offs, amounts moved to the patient, bad debt.",
	byPayer: true,
	dims:    []string{"kind"},
	metrics: []metric{{name: "count", kind: count}, {name: "amount", kind: money, of: "count"}},
	build: func(b *q, p Params, ss []span, _ time.Time) string {
		adjustments := `SELECT b.p, b.i, a.kind, COUNT(DISTINCT a.patient_id), COUNT(*), SUM(a.amount)
FROM invoice_adjustments a ` + b.scan() + ` b ON a.created_at >= b.s AND a.created_at < b.e`
		if p.PayerID != "" {
			return `WITH ` + b.buckets(ss) + `
` + adjustments + ` JOIN claims cl ON cl.id = a.claim_id WHERE cl.payer_id = ` + b.arg(p.PayerID) + `
GROUP BY b.p, b.i, a.kind`
		}
		return `WITH ` + b.buckets(ss) + `
SELECT b.p, b.i, 'DISCOUNT', COUNT(DISTINCT d.patient_id), COUNT(*), SUM(d.amount)
FROM invoice_discounts d ` + b.scan() + ` b ON d.approved_at >= b.s AND d.approved_at < b.e
WHERE d.status = 'APPROVED'
GROUP BY b.p, b.i
UNION ALL
` + adjustments + `
GROUP BY b.p, b.i, a.kind`
	},
}
