package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/internal/lab"
)

// seedLabResults gives the patient user's visit a renal panel, collected,
// entered by one lab technician and verified by the other, so the patient
// app and the printable report have results to show from the start.
func seedLabResults(ctx context.Context, tx *ent.Tx, own *ent.Patient, visit *ent.Encounter, doctor, nurse, tech, verifier *ent.Staff) error {
	if err := lab.SeedCatalog(ctx, tx.Client()); err != nil {
		return err
	}
	values := []struct {
		code  string
		value float64
	}{{"2951-2", 139}, {"2823-3", 5.4}, {"14682-9", 98}}
	ordered := visit.StartedAt.Add(10 * time.Minute)
	order, err := tx.LabOrder.Create().SetPatient(own).SetEncounter(visit).SetOrderedBy(doctor).SetOrderedAt(ordered).
		SetClinicalNotes("Baseline renal function before amlodipine").Save(ctx)
	if err != nil {
		return fmt.Errorf("seed lab order: %w", err)
	}
	collected := ordered.Add(15 * time.Minute)
	specimen, err := tx.LabSpecimen.Create().SetPatient(own).SetOrder(order).SetAccessionNumber(collected.Format("060102") + "DEM001").
		SetSpecimenType(labspecimen.SpecimenTypeSERUM).SetStatus(labspecimen.StatusRECEIVED).
		SetCollectedBy(nurse).SetCollectedAt(collected).SetReceivedBy(tech).SetReceivedAt(collected.Add(20 * time.Minute)).Save(ctx)
	if err != nil {
		return fmt.Errorf("seed specimen: %w", err)
	}
	verified := collected.Add(90 * time.Minute)
	for _, v := range values {
		test, err := tx.LabTest.Query().Where(labtest.Code(v.code)).WithReferenceRanges().Only(ctx)
		if err != nil {
			return fmt.Errorf("seed lab result: test %s: %w", v.code, err)
		}
		item, err := tx.LabOrderItem.Create().SetPatient(own).SetOrder(order).SetTest(test).SetSpecimen(specimen).
			SetStatus(laborderitem.StatusVERIFIED).SetOrderedAt(ordered).SetVerifiedAt(verified).
			SetTurnaroundMinutes(int(verified.Sub(ordered) / time.Minute)).Save(ctx)
		if err != nil {
			return fmt.Errorf("seed lab item: %w", err)
		}
		applied := lab.RangeFor(test.Edges.ReferenceRanges, own.Sex, lab.AgeInDays(own.BirthDate, collected))
		create := tx.LabResult.Create().SetPatient(own).SetItem(item).SetStatus(labresult.StatusVERIFIED).
			SetNumericValue(v.value).SetNillableUnit(test.Unit).SetNillableFlag(lab.FlagNumeric(applied, v.value)).
			SetEnteredBy(tech).SetEnteredAt(verified.Add(-10 * time.Minute)).SetVerifiedBy(verifier).SetVerifiedAt(verified)
		if applied != nil {
			create.SetNillableReferenceLow(applied.Low).SetNillableReferenceHigh(applied.High).
				SetNillableCriticalLow(applied.CriticalLow).SetNillableCriticalHigh(applied.CriticalHigh)
		}
		if err := create.Exec(ctx); err != nil {
			return fmt.Errorf("seed lab result: %w", err)
		}
	}
	return nil
}
