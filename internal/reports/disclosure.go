package reports

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"math"
	"strconv"
	"strings"
	"time"
)

// Disclosure control. Suppressing small cells alone does not keep a report
// from telling about one person: two answers that differ by that person
// (two overlapping date ranges, a department filter against a breakdown
// by payer) give them away by subtraction. So every figure about people is
// also perturbed, by an amount that is small beside a large figure and
// large beside one person's share of it:
//
//   - a count from MinCellSubjects up is rounded to a multiple of
//     CountBase, up or down at random with the probability that keeps it
//     unbiased (random rounding);
//   - an amount of money is moved by up to half the cell's average per
//     person, either way, and given in whole units;
//   - a rate of two counts is computed from the counts as published, and a
//     share whose parts are not published is rounded to RateStep.
//
// "At random" is a keyed hash of the cell (report, filters, the bucket's
// dates, the row, the column) and its true value: the same question gets
// the same answer, so asking it again averages nothing away, and the key
// is secret, so the rounding cannot be undone by recomputing it.
const (
	CountBase = 5
	RateStep  = 0.05
)

// disclosureKey derives the report key from the deployment's secret, so
// that every instance perturbs a cell the same way and a leaked report key
// gives nothing else away.
func disclosureKey(secret []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("hmis reports disclosure control v1"))
	return m.Sum(nil)
}

// uniform is a number in [0, 1) drawn by the key from the cell and its
// true value.
func (s *Service) uniform(cell string, value float64) float64 {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(cell))
	m.Write([]byte{0})
	m.Write([]byte(strconv.FormatFloat(value, 'g', -1, 64)))
	return float64(binary.BigEndian.Uint64(m.Sum(nil))>>11) / (1 << 53)
}

// roundCount rounds n (at least MinCellSubjects) to a multiple of
// CountBase: up with probability (n mod CountBase) / CountBase, so that the
// published figure is the true one on average.
func roundCount(n int64, u float64) int64 {
	r := n % CountBase
	if r == 0 {
		return n
	}
	if u < float64(r)/CountBase {
		return n - r + CountBase
	}
	return n - r
}

// perturbMoney moves an amount (minor units) about subjects people by up to
// half its average per person, either way, and gives it in whole units.
func perturbMoney(amount float64, subjects int64, u float64) float64 {
	if subjects <= 0 {
		return amount
	}
	noise := (u - 0.5) * math.Abs(amount) / float64(subjects)
	return math.Round((amount+noise)/100) * 100
}

// roundRate gives a share to the nearest RateStep.
func roundRate(v float64) float64 {
	return math.Round(v/RateStep) * RateStep
}

// cellName is what a cell's perturbation is keyed on, apart from its
// column and value: every parameter that decides which rows it sums.
func cellName(def *definition, p Params, sp span, dims []string) string {
	return strings.Join([]string{def.name, p.DepartmentID, p.WardID, p.PayerID,
		sp.Start.Format(time.RFC3339), sp.End.Format(time.RFC3339), strings.Join(dims, "\x1f")}, "\x1e")
}
