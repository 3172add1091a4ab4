package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/historyitem"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/internal/formulary"
)

type clinicalSeed struct {
	now                         time.Time
	departments                 map[string]*ent.Department
	patients                    []*ent.Patient
	doctor, nurse, cardiologist *ent.Staff
	labtech, labtech2           *ent.Staff
}

// seedClinical gives the demo hospital rooms, wards with beds, one
// inpatient, a cardiologist's weekly hours, and a chart for the patient
// user: allergy, problem, vitals, a prescription, a signed note, a care
// plan and verified lab results. The demo doctor and nurse keep no fixed hours, so they can be booked
// at any time while trying the API.
func seedClinical(ctx context.Context, tx *ent.Tx, s clinicalSeed) error {
	gen, car := s.departments["GEN"], s.departments["CAR"]
	for _, r := range []struct {
		code, name string
		dep        *ent.Department
	}{{"GEN-101", "Consulting room 1", gen}, {"GEN-102", "Consulting room 2", gen}, {"CAR-201", "Echo room", car}} {
		if err := tx.Room.Create().SetCode(r.code).SetName(r.name).SetDepartment(r.dep).Exec(ctx); err != nil {
			return fmt.Errorf("seed room: %w", err)
		}
	}
	for weekday := 0; weekday < 7; weekday++ {
		if err := tx.ProviderAvailability.Create().SetStaff(s.cardiologist).SetWeekday(weekday).
			SetStartMinute(8 * 60).SetEndMinute(18 * 60).Exec(ctx); err != nil {
			return fmt.Errorf("seed availability: %w", err)
		}
	}

	beds := map[string]*ent.Bed{}
	for _, w := range []struct {
		code, name string
		dep        *ent.Department
		beds       int
	}{{"MED-A", "Medical Ward A", gen, 6}, {"CCU", "Coronary Care Unit", car, 4}} {
		ward, err := tx.Ward.Create().SetCode(w.code).SetName(w.name).SetDepartment(w.dep).Save(ctx)
		if err != nil {
			return fmt.Errorf("seed ward: %w", err)
		}
		for i := 1; i <= w.beds; i++ {
			code := fmt.Sprintf("%s-%02d", w.code, i)
			b, err := tx.Bed.Create().SetWard(ward).SetCode(code).Save(ctx)
			if err != nil {
				return fmt.Errorf("seed bed: %w", err)
			}
			beds[code] = b
		}
	}

	// Peter Njoroge has been in the coronary care unit since yesterday.
	inpatient, admittedAt := s.patients[3], s.now.Add(-26*time.Hour)
	stay, err := tx.Admission.Create().SetPatient(inpatient).SetBed(beds["CCU-01"]).SetAttending(s.cardiologist).
		SetAdmittedAt(admittedAt).SetReason("Unstable angina").SetAdmissionType(admission.AdmissionTypeEMERGENCY).Save(ctx)
	if err != nil {
		return fmt.Errorf("seed admission: %w", err)
	}
	if err := tx.BedAssignment.Create().SetPatient(inpatient).SetAdmission(stay).SetBed(beds["CCU-01"]).SetFromAt(admittedAt).Exec(ctx); err != nil {
		return fmt.Errorf("seed bed assignment: %w", err)
	}
	if err := tx.Bed.UpdateOne(beds["CCU-01"]).SetStatus(bed.StatusOCCUPIED).SetStatusChangedAt(admittedAt).Exec(ctx); err != nil {
		return fmt.Errorf("seed bed status: %w", err)
	}
	if err := tx.Bed.UpdateOne(beds["MED-A-02"]).SetStatus(bed.StatusCLEANING).Exec(ctx); err != nil {
		return fmt.Errorf("seed bed status: %w", err)
	}
	if err := tx.Encounter.Create().SetPatient(inpatient).SetType(encounter.TypeINPATIENT).SetAdmission(stay).
		SetProvider(s.cardiologist).SetDepartment(car).SetStartedAt(admittedAt).SetReason("Unstable angina").Exec(ctx); err != nil {
		return fmt.Errorf("seed encounter: %w", err)
	}

	// The patient user's chart.
	own := s.patients[0]
	visit, err := tx.Encounter.Create().SetPatient(own).SetType(encounter.TypeOUTPATIENT).SetProvider(s.doctor).
		SetDepartment(gen).SetStartedAt(s.now.Add(-30 * 24 * time.Hour)).SetEndedAt(s.now.Add(-30*24*time.Hour + 40*time.Minute)).
		SetStatus(encounter.StatusFINISHED).SetReason("Headaches").Save(ctx)
	if err != nil {
		return fmt.Errorf("seed encounter: %w", err)
	}
	// The prescription is from the formulary, as a doctor writes one, so
	// the interaction checks and the pharmacy see what it is.
	if err := formulary.Seed(ctx, tx.Client()); err != nil {
		return err
	}
	amlodipine, err := tx.Drug.Query().Where(drug.Code("AMLO5TAB")).Only(ctx)
	if err != nil {
		return fmt.Errorf("seed prescription: %w", err)
	}
	steps := []error{
		tx.Allergy.Create().SetPatient(own).SetSubstance("Penicillin").SetCategory(allergy.CategoryDRUG).
			SetReaction("Hives").SetSeverity(allergy.SeveritySEVERE).SetRecordedByID(s.doctor.ID).Exec(ctx),
		tx.Problem.Create().SetPatient(own).SetEncounter(visit).SetIcd10Code("I10").SetDisplay("Essential (primary) hypertension").
			SetOnsetDate(date(2019, 6, 1)).SetRecordedByID(s.doctor.ID).Exec(ctx),
		tx.HistoryItem.Create().SetPatient(own).SetCategory(historyitem.CategoryFAMILY).SetRelation("mother").
			SetDescription("Type 2 diabetes").SetRecordedByID(s.doctor.ID).Exec(ctx),
		tx.MedicationOrder.Create().SetPatient(own).SetEncounter(visit).SetDrug(amlodipine.GenericName).SetDrugCode(amlodipine.Code).
			SetFormularyDrug(amlodipine).SetDoseAmount(5).SetDoseUnit("mg").
			SetRoute(medicationorder.RouteORAL).SetFrequency("once daily").SetDurationDays(90).SetQuantity(90).
			SetPrescriber(s.doctor).Exec(ctx),
		tx.ClinicalNote.Create().SetPatient(own).SetEncounter(visit).SetType(clinicalnote.TypePROGRESS).
			SetText("BP 152/96 on two readings. Start amlodipine 5 mg; review in four weeks.").
			SetAuthor(s.doctor).SetStatus(clinicalnote.StatusSIGNED).SetSignedAt(visit.StartedAt.Add(35 * time.Minute)).Exec(ctx),
		tx.CareTeamMember.Create().SetPatient(own).SetStaff(s.doctor).SetRole(careteammember.RolePRIMARY_CARE).SetSince(visit.StartedAt).Exec(ctx),
	}
	for _, v := range []struct {
		code, display, unit string
		value               float64
	}{{"8480-6", "Systolic blood pressure", "mm[Hg]", 152}, {"8462-4", "Diastolic blood pressure", "mm[Hg]", 96},
		{"8867-4", "Heart rate", "/min", 78}, {"29463-7", "Body weight", "kg", 81}} {
		steps = append(steps, tx.Observation.Create().SetPatient(own).SetEncounter(visit).SetCode(v.code).SetDisplay(v.display).
			SetValue(v.value).SetUnit(v.unit).SetEffectiveAt(visit.StartedAt.Add(5*time.Minute)).SetRecordedByID(s.nurse.ID).Exec(ctx))
	}
	plan, err := tx.CarePlan.Create().SetPatient(own).SetTitle("Hypertension control").SetStatus("ACTIVE").SetAuthor(s.doctor).Save(ctx)
	if err != nil {
		return fmt.Errorf("seed care plan: %w", err)
	}
	steps = append(steps,
		tx.CarePlanGoal.Create().SetPatient(own).SetCarePlan(plan).SetDescription("Blood pressure below 140/90").SetStatus("IN_PROGRESS").Exec(ctx),
		tx.CarePlanActivity.Create().SetPatient(own).SetCarePlan(plan).SetDescription("Home blood pressure log, twice a week").Exec(ctx),
	)
	for _, err := range steps {
		if err != nil {
			return fmt.Errorf("seed chart: %w", err)
		}
	}
	return seedLabResults(ctx, tx, own, visit, s.doctor, s.nurse, s.labtech, s.labtech2)
}
