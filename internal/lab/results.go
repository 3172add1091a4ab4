package lab

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// EnterLabResultInput is the input of enterLabResult.
type EnterLabResultInput struct {
	NumericValue *float64
	CodedValue   *string
	TextValue    *string
	Comment      *string
}

// AmendLabResultInput is the input of amendLabResult.
type AmendLabResultInput struct {
	NumericValue *float64
	CodedValue   *string
	TextValue    *string
	Comment      *string
	Reason       string
}

// value is a checked result value with its interpretation.
type value struct {
	numeric *float64
	coded   *string
	text    *string
	comment *string
	flag    *labresult.Flag
	applied *ent.LabReferenceRange
}

// checkValue checks that the input gives exactly the value the test's
// result kind asks for, and interprets it for the patient as they were
// when the specimen was taken.
func checkValue(c *input.Checker, t *ent.LabTest, pat *ent.Patient, collectedOn time.Time,
	numeric *float64, coded, text, comment *string) value {
	v := value{comment: c.OptionalText("input.comment", comment, MaxTextResult)}
	coded = c.OptionalText("input.codedValue", coded, 40)
	text = c.OptionalText("input.textValue", text, MaxTextResult)
	only := func(field string, given bool, others ...bool) {
		if !given {
			c.Fail(apperr.BadInput(field, "is required for a %s result", t.ResultKind))
		}
		if slices.Contains(others, true) {
			c.Fail(apperr.BadInput(field, "is the only value a %s result takes", t.ResultKind))
		}
	}
	switch t.ResultKind {
	case labtest.ResultKindNUMERIC:
		only("input.numericValue", numeric != nil, coded != nil, text != nil)
		if numeric == nil {
			return v
		}
		// Kept as reported: at the test's precision, so the flag judges
		// the same number the report prints. Checked after rounding, which
		// can overflow a huge value to infinity.
		scale := math.Pow(10, float64(t.Decimals))
		rounded := math.Round(*numeric*scale) / scale
		if math.IsNaN(rounded) || math.IsInf(rounded, 0) || math.Abs(rounded) > MaxNumericResult {
			c.Fail(apperr.BadInput("input.numericValue", "is not a measurement (at most %g in size)", float64(MaxNumericResult)))
			return v
		}
		v.numeric = &rounded
		ranges := t.Edges.ReferenceRanges
		v.applied = RangeFor(ranges, pat.Sex, AgeInDays(pat.BirthDate, collectedOn))
		v.flag = FlagNumeric(v.applied, rounded)
	case labtest.ResultKindCODED:
		only("input.codedValue", coded != nil, numeric != nil, text != nil)
		if coded == nil {
			return v
		}
		if !slices.Contains(t.ResultCodes, *coded) {
			c.Fail(apperr.BadInput("input.codedValue", "must be one of %v", t.ResultCodes))
			return v
		}
		v.coded = coded
		v.flag = FlagCoded(t, *coded)
	default:
		only("input.textValue", text != nil, numeric != nil, coded != nil)
		v.text = text
	}
	return v
}

// set writes the value and the range it was judged by onto a new result.
func (v value) set(c *ent.LabResultCreate, t *ent.LabTest) *ent.LabResultCreate {
	c.SetNillableNumericValue(v.numeric).
		SetNillableCodedValue(v.coded).
		SetNillableTextValue(v.text).
		SetNillableComment(v.comment).
		SetNillableFlag(v.flag).
		SetCritical(IsCritical(v.flag))
	if v.numeric != nil {
		c.SetNillableUnit(t.Unit)
	}
	if r := v.applied; r != nil {
		c.SetNillableReferenceLow(r.Low).SetNillableReferenceHigh(r.High).
			SetNillableCriticalLow(r.CriticalLow).SetNillableCriticalHigh(r.CriticalHigh)
	}
	return c
}

// itemContext is what judging a result needs: the item, its test with
// ranges, the patient and the specimen the test ran on.
type itemContext struct {
	item     *ent.LabOrderItem
	test     *ent.LabTest
	patient  *ent.Patient
	specimen *ent.LabSpecimen
}

func loadItemContext(ctx context.Context, tx *ent.Tx, itemID string) (*itemContext, error) {
	item, err := tx.LabOrderItem.Query().Where(laborderitem.ID(itemID)).
		WithTest(func(q *ent.LabTestQuery) { q.WithReferenceRanges() }).
		WithSpecimen().
		Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("lab order item not found")
	} else if err != nil {
		return nil, err
	}
	if item.Edges.Specimen == nil {
		// Never collected: a state the caller refuses, not broken data.
		if item.Status == laborderitem.StatusORDERED || item.Status == laborderitem.StatusCANCELLED {
			return nil, apperr.Conflictf("the item is %s; no specimen was collected for it", item.Status)
		}
		return nil, fmt.Errorf("lab order item %s is %s without a specimen", item.ID, item.Status)
	}
	pat, err := tx.Patient.Query().Where(patient.ID(item.PatientID)).Only(ctx)
	if err != nil {
		return nil, err
	}
	return &itemContext{item: item, test: item.Edges.Test, patient: pat, specimen: item.Edges.Specimen}, nil
}

// Enter records the result of a RECEIVED item, flagged against the range
// for the patient's sex and age at collection. The item becomes RESULTED;
// the result waits, ENTERED, for a second person to verify it. Of two
// technicians entering the same item at once, one wins and the other gets
// CONFLICT.
func (s *Service) Enter(ctx context.Context, itemID string, in EnterLabResultInput) (*ent.LabResult, error) {
	if err := input.ID("itemId", itemID, input.LabOrderItem); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (out *ent.LabResult, err error) {
		tech, err := auth.ActingStaff(ctx, tx.Staff, "enter lab results", staff.KindLAB_TECHNICIAN)
		if err != nil {
			return nil, err
		}
		return s.enter(ctx, tx, itemID, in, func(c *ent.LabResultCreate) { c.SetEnteredByID(tech.ID) })
	})
}

// EnterFromInstrument is Enter for a result an analyzer sent, in the
// caller's transaction, so that the results of one message are entered
// all or none. The result records the instrument, not a person, as who
// entered it; any lab technician may then verify it.
func (s *Service) EnterFromInstrument(ctx context.Context, tx *ent.Tx, instrumentID, itemID string, in EnterLabResultInput) (*ent.LabResult, error) {
	return s.enter(ctx, tx, itemID, in, func(c *ent.LabResultCreate) { c.SetInstrumentID(instrumentID) })
}

// enter is the one writer of a first result, whoever entered it: the
// range, the flag and the critical mark come out the same.
func (s *Service) enter(ctx context.Context, tx *ent.Tx, itemID string, in EnterLabResultInput, source func(*ent.LabResultCreate)) (*ent.LabResult, error) {
	ic, err := store.ReadLocked(ctx, tx, func() (*itemContext, error) { return loadItemContext(ctx, tx, itemID) },
		func(ic *itemContext) string { return ic.item.PatientID })
	if err != nil {
		return nil, err
	}
	if err := from(ic.item.Status, "resulted", laborderitem.StatusRECEIVED); err != nil {
		return nil, err
	}
	var c input.Checker
	v := checkValue(&c, ic.test, ic.patient, ic.specimen.CollectedAt.In(s.loc), in.NumericValue, in.CodedValue, in.TextValue, in.Comment)
	if err := c.Err(); err != nil {
		return nil, err
	}
	// The conditional update is what makes two entries exclusive: the
	// second waits for the first's row lock, then matches nothing.
	err = tx.LabOrderItem.UpdateOne(ic.item).
		Where(laborderitem.StatusEQ(laborderitem.StatusRECEIVED)).
		SetStatus(laborderitem.StatusRESULTED).
		Exec(ctx)
	if err := changedMeanwhile(err); err != nil {
		return nil, err
	}
	create := v.set(tx.LabResult.Create(), ic.test).
		SetPatientID(ic.item.PatientID).
		SetItemID(ic.item.ID).
		SetEnteredAt(s.now())
	source(create)
	return create.Save(ctx)
}

// Verify releases an ENTERED result: a second lab technician, not the one
// who entered it, confirms it. A first result makes the item VERIFIED with
// its turnaround time; an amendment makes the result it replaces
// CORRECTED and the item AMENDED. The result is published, as critical too
// if it is.
func (s *Service) Verify(ctx context.Context, id string) (*ent.LabResult, error) {
	if err := input.ID("id", id, input.LabResult); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (out *ent.LabResult, err error) {
		verifier, err := auth.ActingStaff(ctx, tx.Staff, "verify lab results", staff.KindLAB_TECHNICIAN)
		if err != nil {
			return nil, err
		}
		r, err := lockedResult(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if r.Status != labresult.StatusENTERED {
			return nil, apperr.Conflictf("the result is %s; only an ENTERED one can be verified", r.Status)
		}
		// An instrument's result has no person behind it yet: whoever
		// verifies it is the first and only one to answer for it.
		if r.EnteredByID != nil && *r.EnteredByID == verifier.ID {
			return nil, apperr.Denied("a result is verified by a second person, not by the one who entered it")
		}
		now := s.now()
		out, err = tx.LabResult.UpdateOne(r).
			Where(labresult.StatusEQ(labresult.StatusENTERED)).
			SetStatus(labresult.StatusVERIFIED).
			SetVerifiedByID(verifier.ID).
			SetVerifiedAt(now).
			Save(ctx)
		if err := changedMeanwhile(err); err != nil {
			return nil, err
		}
		item, err := tx.LabOrderItem.Get(ctx, r.ItemID)
		if err != nil {
			return nil, err
		}
		if r.ReplacesID != nil {
			return out, s.releaseAmendment(ctx, tx, out, item)
		}
		item, err = tx.LabOrderItem.UpdateOne(item).
			Where(laborderitem.StatusEQ(laborderitem.StatusRESULTED)).
			SetStatus(laborderitem.StatusVERIFIED).
			SetVerifiedAt(now).
			SetTurnaroundMinutes(minutesBetween(item.OrderedAt, now)).
			Save(ctx)
		if err := changedMeanwhile(err); err != nil {
			return nil, err
		}
		return out, publish(ctx, tx, ResultVerified, out, item)
	})
}

// releaseAmendment completes the verification of a correction: the result
// it replaces, still VERIFIED until now, becomes CORRECTED, and the item
// AMENDED.
func (s *Service) releaseAmendment(ctx context.Context, tx *ent.Tx, amendment *ent.LabResult, item *ent.LabOrderItem) error {
	err := tx.LabResult.UpdateOneID(*amendment.ReplacesID).
		Where(labresult.StatusEQ(labresult.StatusVERIFIED)).
		SetStatus(labresult.StatusCORRECTED).
		Exec(ctx)
	if err := changedMeanwhile(err); err != nil {
		return err
	}
	item, err = tx.LabOrderItem.UpdateOne(item).
		Where(laborderitem.StatusIn(laborderitem.StatusVERIFIED, laborderitem.StatusAMENDED)).
		SetStatus(laborderitem.StatusAMENDED).
		Save(ctx)
	if err := changedMeanwhile(err); err != nil {
		return err
	}
	return publish(ctx, tx, ResultAmended, amendment, item)
}

// Amend enters a correction of a verified result. Like any result it waits,
// ENTERED, for a second lab technician to verify it; until then the
// original stays the released one. On verification the original becomes
// CORRECTED — kept, and pointing to its replacement — and the item AMENDED.
// One correction of a result can wait at a time.
func (s *Service) Amend(ctx context.Context, id string, in AmendLabResultInput) (*ent.LabResult, error) {
	var c input.Checker
	c.ID("id", id, input.LabResult)
	reason := c.Text("input.reason", in.Reason, MaxReason)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (out *ent.LabResult, err error) {
		tech, err := auth.ActingStaff(ctx, tx.Staff, "amend lab results", staff.KindLAB_TECHNICIAN)
		if err != nil {
			return nil, err
		}
		old, err := lockedResult(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		if old.Status != labresult.StatusVERIFIED {
			return nil, apperr.Conflictf("the result is %s; only a VERIFIED one can be amended", old.Status)
		}
		pending, err := tx.LabResult.Query().Where(labresult.ReplacesID(old.ID)).Exist(ctx)
		if err != nil {
			return nil, err
		}
		if pending {
			return nil, apperr.Conflictf("a correction of this result is already waiting for verification")
		}
		ic, err := loadItemContext(ctx, tx, old.ItemID)
		if err != nil {
			return nil, err
		}
		v := checkValue(&c, ic.test, ic.patient, ic.specimen.CollectedAt.In(s.loc), in.NumericValue, in.CodedValue, in.TextValue, in.Comment)
		if err := c.Err(); err != nil {
			return out, err
		}
		out, err = v.set(tx.LabResult.Create(), ic.test).
			SetPatientID(old.PatientID).
			SetItemID(old.ItemID).
			SetEnteredByID(tech.ID).
			SetEnteredAt(s.now()).
			SetReplacesID(old.ID).
			SetAmendReason(reason).
			Save(ctx)
		// replaces is unique: of two corrections entered at once, the
		// second finds the first's row here.
		if ent.IsConstraintError(err) {
			return nil, apperr.Conflictf("a correction of this result is already waiting for verification")
		}
		return out, err
	})
}

// Acknowledge records that a clinician was told of a critical result, and
// how long after its release, and publishes it on CriticalTopic so every
// dashboard showing the alert can clear it.
func (s *Service) Acknowledge(ctx context.Context, id string) (*ent.LabResult, error) {
	if err := input.ID("id", id, input.LabResult); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (out *ent.LabResult, err error) {
		clinician, err := auth.ActingStaff(ctx, tx.Staff, "acknowledge critical results", staff.KindDOCTOR, staff.KindNURSE)
		if err != nil {
			return nil, err
		}
		r, err := lockedResult(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		switch {
		case !r.Critical:
			return nil, apperr.Conflictf("the result is not critical; there is nothing to acknowledge")
		case r.Status != labresult.StatusVERIFIED:
			return nil, apperr.Conflictf("the result is %s; only the released (VERIFIED) result is acknowledged", r.Status)
		case r.AcknowledgedAt != nil:
			return nil, apperr.Conflictf("the result was acknowledged already")
		}
		now := s.now()
		out, err = tx.LabResult.UpdateOne(r).
			Where(labresult.AcknowledgedAtIsNil(), labresult.StatusEQ(labresult.StatusVERIFIED)).
			SetAcknowledgedByID(clinician.ID).
			SetAcknowledgedAt(now).
			SetAcknowledgeMinutes(minutesBetween(*r.VerifiedAt, now)).
			Save(ctx)
		if err := changedMeanwhile(err); err != nil {
			return nil, err
		}
		return out, publishAcknowledged(ctx, tx, out)
	})
}

// Unacknowledged selects released critical results no clinician has
// acknowledged yet: of the patients admitted to wardID now, or all the
// viewer may see. The caller pages through it, oldest first.
func (s *Service) Unacknowledged(client *ent.Client, wardID *string) (*ent.LabResultQuery, error) {
	q := client.LabResult.Query().Where(
		labresult.Critical(true),
		labresult.StatusEQ(labresult.StatusVERIFIED),
		labresult.AcknowledgedAtIsNil(),
	)
	if wardID != nil {
		if err := input.ID("wardId", *wardID, input.Ward); err != nil {
			return nil, err
		}
		q.Where(labresult.HasPatientWith(patient.HasAdmissionsWith(
			admission.StatusEQ(admission.StatusADMITTED),
			admission.HasBedWith(bed.WardID(*wardID)),
		)))
	}
	return q, nil
}

// StaffInOrder loads staff members, in the order of ids.
func StaffInOrder(ctx context.Context, client *ent.Client, ids []string) ([]*ent.Staff, error) {
	found, err := client.Staff.Query().Where(staff.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*ent.Staff, len(found))
	for _, m := range found {
		byID[m.ID] = m
	}
	out := make([]*ent.Staff, 0, len(ids))
	for _, id := range ids {
		if m, ok := byID[id]; ok {
			out = append(out, m)
		}
	}
	return out, nil
}

func minutesBetween(from, to time.Time) int {
	m := int(to.Sub(from) / time.Minute)
	if m < 0 {
		return 0
	}
	return m
}
