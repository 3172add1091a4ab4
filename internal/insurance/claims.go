package insurance

import (
	"context"
	"strconv"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/claim"
	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/invoiceadjustment"
	"github.com/hmis-dev/hmis/ent/problem"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

func claimPatient(c *ent.Claim) string { return c.PatientID }

func checkClaimLines(c *input.Checker, field string, lines []ClaimLineInput) []string {
	if c.Err() == nil && (len(lines) == 0 || len(lines) > MaxLines) {
		c.Fail(apperr.BadInput(field, "must hold 1 to %d lines", MaxLines))
	}
	codes := make([]string, len(lines))
	for i, l := range lines {
		f := field + "[" + strconv.Itoa(i) + "]"
		codes[i] = code(c, f+".serviceCode", l.ServiceCode)
		if c.Err() == nil && claimline.CategoryValidator(l.Category) != nil {
			c.Fail(apperr.BadInput(f+".category", "is not a service category"))
		}
		if c.Err() == nil && l.ServiceDate.IsZero() {
			c.Fail(apperr.BadInput(f+".serviceDate", "is required"))
		}
		if c.Err() == nil && (l.Quantity < 1 || l.Quantity > MaxQuantity) {
			c.Fail(apperr.BadInput(f+".quantity", "must be 1 to %d", MaxQuantity))
		}
		amount(c, f+".amountClaimed", l.AmountClaimed)
	}
	return codes
}

// CreateClaim drafts a claim to the payer of an active policy linked to a
// plan, as a billing clerk.
func (s *Service) CreateClaim(ctx context.Context, in CreateClaimInput) (*ent.Claim, error) {
	if err := checkClaim(in); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Claim, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "manage claims", clerks...); err != nil {
			return nil, err
		}
		return NewClaim(ctx, tx, in)
	})
}

func checkClaim(in CreateClaimInput) error {
	_, _, err := normalClaim(in)
	return err
}

// normalClaim checks a claim's input and returns its service codes and
// diagnosis codes as stored.
func normalClaim(in CreateClaimInput) ([]string, []string, error) {
	var c input.Checker
	c.ID("input.policyId", in.PolicyID, input.InsurancePolicy)
	c.OptionalID("input.encounterId", in.EncounterID, input.Encounter)
	codes := checkClaimLines(&c, "input.lines", in.Lines)
	if c.Err() == nil && len(in.DiagnosisCodes) > MaxDiagnoses {
		c.Fail(apperr.BadInput("input.diagnosisCodes", "must hold at most %d codes", MaxDiagnoses))
	}
	if c.Err() == nil && len(in.DiagnosisCodes) > 0 && in.EncounterID == nil {
		c.Fail(apperr.BadInput("input.encounterId", "is required with diagnosis codes: they are taken from the encounter"))
	}
	diagnoses := make([]string, 0, len(in.DiagnosisCodes))
	seen := map[string]bool{}
	for i, d := range in.DiagnosisCodes {
		f := "input.diagnosisCodes[" + strconv.Itoa(i) + "]"
		v := c.Text(f, d, 8)
		if c.Err() == nil && !icd10Pattern.MatchString(v) {
			c.Fail(apperr.BadInput(f, "is not an ICD-10 code"))
		}
		if !seen[v] {
			seen[v] = true
			diagnoses = append(diagnoses, v)
		}
	}
	return codes, diagnoses, c.Err()
}

// NewClaim drafts a claim in the caller's transaction: what invoicing calls
// to claim an invoice's payer share, with the lines the split gave the
// payer. The diagnosis codes must be coded on the encounter's problems: a
// claim carries only the diagnoses named from it, never the chart. The
// caller answers for who acts.
func NewClaim(ctx context.Context, tx *ent.Tx, in CreateClaimInput) (*ent.Claim, error) {
	codes, diagnoses, err := normalClaim(in)
	if err != nil {
		return nil, err
	}
	p, err := activePolicy(ctx, tx, "input.policyId", in.PolicyID)
	if err != nil {
		return nil, err
	}
	if p.PlanID == nil {
		return nil, apperr.BadInput("input.policyId", "the policy is linked to no plan, so it has no payer to claim from")
	}
	pl, err := tx.InsurancePlan.Get(ctx, *p.PlanID)
	if err != nil {
		return nil, err
	}
	if in.EncounterID != nil {
		enc, err := tx.Encounter.Get(ctx, *in.EncounterID)
		if ent.IsNotFound(err) || (err == nil && enc.PatientID != p.PatientID) {
			return nil, apperr.BadInput("input.encounterId", "no such encounter of the policy's patient")
		} else if err != nil {
			return nil, err
		}
		coded, err := tx.Problem.Query().Where(problem.EncounterID(enc.ID), problem.Icd10CodeIn(diagnoses...)).
			Select(problem.FieldIcd10Code).Strings(ctx)
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for _, cd := range coded {
			have[cd] = true
		}
		for i, d := range diagnoses {
			if !have[d] {
				return nil, apperr.BadInput("input.diagnosisCodes["+strconv.Itoa(i)+"]", "%s is not coded on the encounter", d)
			}
		}
	}
	var total int64
	for _, l := range in.Lines {
		total += l.AmountClaimed
	}
	cl, err := tx.Claim.Create().SetPatientID(p.PatientID).SetPolicyID(p.ID).SetPayerID(pl.PayerID).
		SetNillableEncounterID(in.EncounterID).SetDiagnosisCodes(diagnoses).SetTotalClaimed(total).Save(ctx)
	if err != nil {
		return nil, err
	}
	return cl, createLines(ctx, tx, cl, in.Lines, codes)
}

func createLines(ctx context.Context, tx *ent.Tx, cl *ent.Claim, lines []ClaimLineInput, codes []string) error {
	return tx.ClaimLine.MapCreateBulk(lines, func(c *ent.ClaimLineCreate, i int) {
		l := lines[i]
		c.SetClaimID(cl.ID).SetPatientID(cl.PatientID).SetPosition(i).SetServiceCode(codes[i]).SetCategory(l.Category).
			SetServiceDate(input.Date(l.ServiceDate)).SetQuantity(l.Quantity).SetAmountClaimed(l.AmountClaimed)
	}).Exec(ctx)
}

// SubmitClaim sends a DRAFT claim.
func (s *Service) SubmitClaim(ctx context.Context, id string) (*ent.Claim, error) {
	return s.transition(ctx, id, claim.StatusDRAFT, func(tx *ent.Tx, cl *ent.Claim, lines []*ent.ClaimLine) (*ent.ClaimUpdateOne, error) {
		return tx.Claim.UpdateOne(cl).SetStatus(claim.StatusSUBMITTED).SetSubmittedAt(input.Stored(s.now())), nil
	})
}

// AdjudicateClaim records the payer's decision on each line of a SUBMITTED
// claim; the claim's status follows from the amounts: all approved,
// some, or none (which needs the payer's denial code).
func (s *Service) AdjudicateClaim(ctx context.Context, id string, in AdjudicateClaimInput) (*ent.Claim, error) {
	var c input.Checker
	c.ID("id", id, input.Claim)
	reasons := make([]*string, len(in.Lines))
	for i, l := range in.Lines {
		f := "input.lines[" + strconv.Itoa(i) + "]"
		c.ID(f+".lineId", l.LineID, input.ClaimLine)
		amount(&c, f+".amountApproved", l.AmountApproved)
		reasons[i] = reasonCode(&c, f+".reasonCode", l.ReasonCode)
	}
	denial := reasonCode(&c, "input.denialCode", in.DenialCode)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return s.transition(ctx, id, claim.StatusSUBMITTED, func(tx *ent.Tx, cl *ent.Claim, lines []*ent.ClaimLine) (*ent.ClaimUpdateOne, error) {
		index, err := matchLines(lines, len(in.Lines), func(i int) string { return in.Lines[i].LineID })
		if err != nil {
			return nil, err
		}
		var approved int64
		for i, l := range in.Lines {
			line := lines[index[i]]
			f := "input.lines[" + strconv.Itoa(i) + "]"
			if l.AmountApproved > line.AmountClaimed {
				return nil, apperr.BadInput(f+".amountApproved", "is more than the line claims")
			}
			if l.AmountApproved < line.AmountClaimed && reasons[i] == nil {
				return nil, apperr.BadInput(f+".reasonCode", "is required when less than claimed is approved")
			}
			approved += l.AmountApproved
			if err := tx.ClaimLine.UpdateOne(line).SetAmountApproved(l.AmountApproved).SetNillableReasonCode(reasons[i]).Exec(ctx); err != nil {
				return nil, err
			}
		}
		status := claim.StatusPARTIALLY_APPROVED
		switch approved {
		case cl.TotalClaimed:
			status = claim.StatusAPPROVED
		case 0:
			status = claim.StatusDENIED
			if denial == nil {
				return nil, apperr.BadInput("input.denialCode", "is required when nothing is approved")
			}
		}
		if status != claim.StatusDENIED && denial != nil {
			return nil, apperr.BadInput("input.denialCode", "is only for a claim of which nothing is approved")
		}
		return tx.Claim.UpdateOne(cl).SetStatus(status).SetTotalApproved(approved).SetNillableDenialCode(denial).
			SetAdjudicatedAt(input.Stored(s.now())), nil
	})
}

// RecordRemittance records what the payer paid on each line of an approved
// claim, once: the claim becomes PAID, and each line keeps its adjustment
// (claimed minus paid) with the payer's code for it. Posting the payment and
// the adjustments to the invoices and the ledger reads these amounts.
func (s *Service) RecordRemittance(ctx context.Context, id string, in RecordRemittanceInput) (*ent.Claim, error) {
	var c input.Checker
	c.ID("id", id, input.Claim)
	ref := c.Text("input.reference", in.Reference, 64)
	codes := make([]*string, len(in.Lines))
	for i, l := range in.Lines {
		f := "input.lines[" + strconv.Itoa(i) + "]"
		c.ID(f+".lineId", l.LineID, input.ClaimLine)
		amount(&c, f+".amountPaid", l.AmountPaid)
		codes[i] = reasonCode(&c, f+".adjustmentCode", l.AdjustmentCode)
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	return s.transition(ctx, id, "", func(tx *ent.Tx, cl *ent.Claim, lines []*ent.ClaimLine) (*ent.ClaimUpdateOne, error) {
		if cl.Status != claim.StatusAPPROVED && cl.Status != claim.StatusPARTIALLY_APPROVED {
			return nil, apperr.Conflictf("the claim is %s; only an APPROVED or PARTIALLY_APPROVED claim is remitted", cl.Status)
		}
		index, err := matchLines(lines, len(in.Lines), func(i int) string { return in.Lines[i].LineID })
		if err != nil {
			return nil, err
		}
		var paid int64
		for i, l := range in.Lines {
			line := lines[index[i]]
			f := "input.lines[" + strconv.Itoa(i) + "]"
			if line.AmountApproved == nil || l.AmountPaid > *line.AmountApproved {
				return nil, apperr.BadInput(f+".amountPaid", "is more than the payer approved on the line")
			}
			adj := line.AmountClaimed - l.AmountPaid
			if adj > 0 && codes[i] == nil && line.ReasonCode == nil {
				return nil, apperr.BadInput(f+".adjustmentCode", "is required when less than claimed is paid")
			}
			if codes[i] == nil {
				codes[i] = line.ReasonCode
			}
			paid += l.AmountPaid
			if err := tx.ClaimLine.UpdateOne(line).SetAmountPaid(l.AmountPaid).SetAdjustment(adj).
				SetNillableAdjustmentCode(codes[i]).Exec(ctx); err != nil {
				return nil, err
			}
		}
		return tx.Claim.UpdateOne(cl).Where(claim.StatusIn(claim.StatusAPPROVED, claim.StatusPARTIALLY_APPROVED)).
			SetStatus(claim.StatusPAID).SetTotalPaid(paid).SetRemittanceReference(ref).SetPaidAt(input.Stored(s.now())), nil
	}, s.remitted)
}

// OnRemitted sets what runs in the transaction that records a claim's
// remittance, after the claim is PAID: billing posts the payer's payment
// and adjustments to the claim's invoice and the ledger there, so the
// remittance and its money commit together.
func (s *Service) OnRemitted(f func(ctx context.Context, tx *ent.Tx, cl *ent.Claim) error) {
	s.remitted = f
}

// ResubmitClaim drafts the next version of a DENIED claim with its lines.
// The denied claim keeps its decision; the two are linked.
func (s *Service) ResubmitClaim(ctx context.Context, id string) (*ent.Claim, error) {
	if err := input.ID("id", id, input.Claim); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Claim, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "manage claims", clerks...); err != nil {
			return nil, err
		}
		cl, err := store.GetLocked(ctx, tx, tx.Claim.Get, id, claimPatient, "claim not found")
		if err != nil {
			return nil, err
		}
		if cl.Status != claim.StatusDENIED {
			return nil, apperr.Conflictf("the claim is %s; only a DENIED claim is resubmitted", cl.Status)
		}
		if settled, err := tx.InvoiceAdjustment.Query().Where(invoiceadjustment.ClaimID(cl.ID)).Exist(ctx); err != nil {
			return nil, err
		} else if settled {
			return nil, apperr.Conflictf("the denied claim's share was settled on its invoice by hand; it is not claimed again")
		}
		if n, err := tx.Claim.Query().Where(claim.PreviousID(cl.ID)).Count(ctx); err != nil {
			return nil, err
		} else if n > 0 {
			return nil, apperr.Conflictf("the claim has been resubmitted already")
		}
		lines, err := tx.ClaimLine.Query().Where(claimline.ClaimID(cl.ID)).Order(ent.Asc(claimline.FieldPosition)).All(ctx)
		if err != nil {
			return nil, err
		}
		next, err := tx.Claim.Create().SetPatientID(cl.PatientID).SetPolicyID(cl.PolicyID).SetPayerID(cl.PayerID).
			SetNillableEncounterID(cl.EncounterID).SetDiagnosisCodes(cl.DiagnosisCodes).SetTotalClaimed(cl.TotalClaimed).
			SetVersion(cl.Version + 1).SetPreviousID(cl.ID).SetNillableInvoiceID(cl.InvoiceID).Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("the claim has been resubmitted already")
		} else if err != nil {
			return nil, err
		}
		in := make([]ClaimLineInput, len(lines))
		codes := make([]string, len(lines))
		for i, l := range lines {
			in[i] = ClaimLineInput{ServiceCode: l.ServiceCode, Category: l.Category, ServiceDate: l.ServiceDate, Quantity: l.Quantity, AmountClaimed: l.AmountClaimed}
			codes[i] = l.ServiceCode
		}
		return next, createLines(ctx, tx, next, in, codes)
	})
}

// transition runs a state change of a claim under its patient's lock: from
// is the state it requires ("" when change checks it), and the update is
// conditional on the state read, so of two racing changes one wins and the
// other is refused as CONFLICT.
func (s *Service) transition(ctx context.Context, id string, from claim.Status,
	change func(*ent.Tx, *ent.Claim, []*ent.ClaimLine) (*ent.ClaimUpdateOne, error),
	after ...func(context.Context, *ent.Tx, *ent.Claim) error) (*ent.Claim, error) {
	if err := input.ID("id", id, input.Claim); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Claim, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, "manage claims", clerks...); err != nil {
			return nil, err
		}
		cl, err := store.GetLocked(ctx, tx, tx.Claim.Get, id, claimPatient, "claim not found")
		if err != nil {
			return nil, err
		}
		if from != "" && cl.Status != from {
			return nil, apperr.Conflictf("the claim is %s; only a %s claim can do this", cl.Status, from)
		}
		lines, err := tx.ClaimLine.Query().Where(claimline.ClaimID(cl.ID)).Order(ent.Asc(claimline.FieldPosition)).All(ctx)
		if err != nil {
			return nil, err
		}
		u, err := change(tx, cl, lines)
		if err != nil {
			return nil, err
		}
		out, err := u.Where(claim.StatusEQ(cl.Status)).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the claim was changed by someone else meanwhile; reload it")
		} else if err != nil {
			return nil, err
		}
		for _, f := range after {
			if f == nil {
				continue
			}
			if err := f(ctx, tx, out); err != nil {
				return nil, err
			}
		}
		return out, nil
	})
}

// matchLines maps each of n inputs to a line of the claim, refusing a line
// named twice, a line of another claim, and a line left out.
func matchLines(lines []*ent.ClaimLine, n int, idOf func(int) string) ([]int, error) {
	pos := make(map[string]int, len(lines))
	for i, l := range lines {
		pos[l.ID] = i
	}
	index := make([]int, n)
	used := make(map[string]bool, n)
	for i := 0; i < n; i++ {
		f := "input.lines[" + strconv.Itoa(i) + "].lineId"
		j, ok := pos[idOf(i)]
		if !ok {
			return nil, apperr.BadInput(f, "is not a line of the claim")
		}
		if used[idOf(i)] {
			return nil, apperr.BadInput(f, "names a line twice")
		}
		used[idOf(i)] = true
		index[i] = j
	}
	if n != len(lines) {
		return nil, apperr.BadInput("input.lines", "must give every line of the claim once; it has %d", len(lines))
	}
	return index, nil
}
