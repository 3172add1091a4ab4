package ehr

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/historyitem"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
)

// fillChart gives a patient n items of every part of the record, written
// straight through ent: the test is about reading.
func fillChart(t testing.TB, s *harness.Server, patientID string, d harness.DemoIDs, n int) {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	c := s.App.Store.Client
	now := time.Now().UTC()
	plan := c.CarePlan.Create().SetPatientID(patientID).SetTitle("Blood pressure control").SetAuthorID(d.Doctor).SaveX(ctx)
	sodium, err := c.LabTest.Query().Where(labtest.Code("2951-2")).Only(ctx)
	if ent.IsNotFound(err) {
		sodium = c.LabTest.Create().SetCode("2951-2").SetName("Sodium").SetSpecimenType(labtest.SpecimenTypeSERUM).
			SetResultKind(labtest.ResultKindNUMERIC).SetUnit("mmol/L").SetPrice(40000).SetTurnaroundMinutes(60).SaveX(ctx)
	}
	for i := 0; i < n; i++ {
		enc := c.Encounter.Create().SetPatientID(patientID).SetType(encounter.TypeOUTPATIENT).
			SetStartedAt(now.Add(-time.Duration(i) * time.Hour)).SetProviderID(d.Doctor).SaveX(ctx)
		c.Problem.Create().SetPatientID(patientID).SetEncounterID(enc.ID).SetIcd10Code("I10").
			SetDisplay("Essential (primary) hypertension").SetRecordedByID(d.Doctor).ExecX(ctx)
		c.Allergy.Create().SetPatientID(patientID).SetSubstance(fmt.Sprintf("substance %d", i)).
			SetCategory(allergy.CategoryDRUG).SetSeverity(allergy.SeverityMODERATE).ExecX(ctx)
		c.Observation.Create().SetPatientID(patientID).SetEncounterID(enc.ID).SetCode("8867-4").
			SetDisplay("Heart rate").SetValue(float64(60 + i)).SetUnit("/min").SetEffectiveAt(now).SetRecordedByID(d.Nurse).ExecX(ctx)
		c.MedicationOrder.Create().SetPatientID(patientID).SetDrug("Amlodipine").SetDoseAmount(5).SetDoseUnit("mg").
			SetRoute(medicationorder.RouteORAL).SetFrequency("once daily").SetQuantity(30).SetPrescriberID(d.Doctor).ExecX(ctx)
		c.ClinicalNote.Create().SetPatientID(patientID).SetType(clinicalnote.TypePROGRESS).SetText("Stable.").
			SetAuthorID(d.Doctor).SetStatus(clinicalnote.StatusSIGNED).SetSignedAt(now).ExecX(ctx)
		c.ClinicalNote.Create().SetPatientID(patientID).SetType(clinicalnote.TypePROGRESS).SetText("Draft thoughts.").
			SetAuthorID(d.Doctor).ExecX(ctx)
		c.HistoryItem.Create().SetPatientID(patientID).SetCategory(historyitem.CategorySURGERY).SetDescription("Appendectomy").ExecX(ctx)
		c.CarePlanGoal.Create().SetPatientID(patientID).SetCarePlanID(plan.ID).SetDescription("BP below 140/90").ExecX(ctx)
		c.CarePlanActivity.Create().SetPatientID(patientID).SetCarePlanID(plan.ID).SetDescription("Home BP readings").ExecX(ctx)
		c.CareTeamMember.Create().SetPatientID(patientID).SetStaffID(d.Nurse).SetRole(careteammember.RoleNURSE).SetSince(now).ExecX(ctx)
		c.Referral.Create().SetPatientID(patientID).SetFromStaffID(d.Doctor).SetFromDepartmentID(d.General).
			SetToDepartmentID(d.Cardiology).SetReason("Echo").ExecX(ctx)
		c.PatientContact.Create().SetPatientID(patientID).SetName(fmt.Sprintf("Contact %d", i)).SetRelationship("sibling").ExecX(ctx)
		order := c.LabOrder.Create().SetPatientID(patientID).SetOrderedByID(d.Doctor).SetOrderedAt(now).SaveX(ctx)
		item := c.LabOrderItem.Create().SetPatientID(patientID).SetOrderID(order.ID).SetTestID(sodium.ID).
			SetOrderedAt(now).SetStatus(laborderitem.StatusVERIFIED).SaveX(ctx)
		c.LabResult.Create().SetPatientID(patientID).SetItemID(item.ID).SetNumericValue(float64(130 + i)).SetUnit("mmol/L").
			SetEnteredByID(d.Doctor).SetEnteredAt(now).SetStatus(labresult.StatusVERIFIED).SetVerifiedByID(d.Nurse).SetVerifiedAt(now).ExecX(ctx)
		start := now.Add(-time.Duration(24*(i+1)) * time.Hour)
		c.Appointment.Create().SetPatientID(patientID).SetProviderID(d.Doctor).SetDepartmentID(d.General).
			SetStartAt(start).SetEndAt(start.Add(30 * time.Minute)).ExecX(ctx)
	}
}

const chartQuery = `query($id: ID!) { patient(id: $id) {
  id mrn givenName familyName
  allergies { substance severity status recordedBy { familyName } }
  problems { icd10Code display status recordedBy { familyName } encounter { id } }
  encounters(first: 50) { totalCount edges { node { id type status startedAt provider { familyName } } } }
  observations(first: 50) { edges { node { code display value unit effectiveAt recordedBy { familyName } } } }
  medicationOrders(first: 50) { edges { node { drug doseAmount doseUnit route frequency status prescriber { familyName } } } }
  carePlans { title status author { familyName } goals { description status } activities { description status } }
  notes(first: 50) { edges { node { type status text author { familyName } } } }
  history { category description }
  careTeam { role staff { familyName } }
  referrals(first: 50) { edges { node { reason status toDepartment { name } } } }
  contacts { name relationship }
  appointments(first: 50) { edges { node { startAt status provider { familyName } } } }
  labOrders(first: 50) { edges { node { orderedAt priority orderedBy { familyName }
    items { status test { name unit } results { numericValue unit flag status verifiedBy { familyName } } } } } }
  labResults(first: 50) { totalCount edges { node { numericValue unit flag status } } }
} }`

// TestChartStatementCountIsFlat: the chart costs the same number of SQL
// statements for a patient with 2 items of everything as for one with 20.
func TestChartStatementCountIsFlat(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	small, large := d.Patients[2], d.Patients[4] // neither has a demo chart of its own
	fillChart(t, s, small, d, 2)
	fillChart(t, s, large, d, 20)
	token := s.Token("doctor")

	// The relay and the audit sealer work in the background through the
	// same counter, so take the least of a dozen runs: they only ever add,
	// and under the race detector on a loaded machine five runs were not
	// always enough to find one they left alone.
	cost := func(id string) (int64, harness.Response) {
		var least int64 = -1
		var r harness.Response
		for i := 0; i < 12; i++ {
			before := s.App.Store.Statements()
			r = s.Do(token, chartQuery, map[string]any{"id": id})
			if n := s.App.Store.Statements() - before; least < 0 || n < least {
				least = n
			}
		}
		return least, r
	}
	smallCost, r := cost(small)
	harness.Must(t, len(r.Errors) == 0, "small chart: %s", harness.Describe(r))
	largeCost, r := cost(large)
	harness.Must(t, len(r.Errors) == 0, "large chart: %s", harness.Describe(r))
	var out struct {
		Patient struct {
			Allergies  []any
			Encounters struct{ TotalCount int }
			Notes      struct{ Edges []any }
			LabResults struct{ TotalCount int }
		}
	}
	r.Decode(t, &out)
	harness.Must(t, len(out.Patient.Allergies) == 20 && out.Patient.Encounters.TotalCount == 20 && len(out.Patient.Notes.Edges) == 40 &&
		out.Patient.LabResults.TotalCount == 20,
		"the large chart holds everything: %+v", out)
	t.Logf("chart statements: %d for 2 items of each part, %d for 20 (including the audit row's)", smallCost, largeCost)
	harness.Must(t, smallCost == largeCost, "statements grew with the record: %d for 2 items, %d for 20", smallCost, largeCost)
}

func TestPatientReadsOwnChartWithoutDrafts(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	fillChart(t, s, d.Patients[0], d, 2)
	fillChart(t, s, d.Patients[1], d, 1)

	var out struct {
		Patient struct {
			Notes struct {
				Edges []struct{ Node struct{ Status string } }
			}
			Allergies []any
		}
	}
	s.As("patient", `query($id: ID!) { patient(id: $id) { allergies { substance } notes(first: 50) { edges { node { status } } } } }`,
		map[string]any{"id": d.Patients[0]}).Decode(t, &out)
	// The demo chart brings one allergy and one signed note of its own.
	harness.Must(t, len(out.Patient.Allergies) == 3 && len(out.Patient.Notes.Edges) == 3, "own chart: %+v", out)
	for _, e := range out.Patient.Notes.Edges {
		harness.Must(t, e.Node.Status == "SIGNED", "a patient sees a %s note", e.Node.Status)
	}
	var doctorView struct {
		Patient struct{ Notes struct{ Edges []any } }
	}
	s.As("doctor", `query($id: ID!) { patient(id: $id) { notes(first: 50) { edges { node { status } } } } }`,
		map[string]any{"id": d.Patients[0]}).Decode(t, &doctorView)
	harness.Must(t, len(doctorView.Patient.Notes.Edges) == 5, "clinicians see drafts too: %d", len(doctorView.Patient.Notes.Edges))

	r := s.As("patient", `query($id: ID!) { patient(id: $id) { id } }`, map[string]any{"id": d.Patients[1]})
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient's chart: %s", harness.Describe(r))
	r = s.As("patient", `{ patientByMrn(mrn: "100000017") { id } }`, nil)
	harness.Must(t, r.HasCode("NOT_FOUND"), "another patient by MRN: %s", harness.Describe(r))
	r = s.As("hr", `query($id: ID!) { patient(id: $id) { id } }`, map[string]any{"id": d.Patients[0]})
	harness.Must(t, r.HasCode("FORBIDDEN"), "hr: %s", harness.Describe(r))

	var byMrn struct{ PatientByMrn struct{ ID string } }
	s.As("reception", `{ patientByMrn(mrn: "100000009") { id } }`, nil).Decode(t, &byMrn)
	harness.Must(t, byMrn.PatientByMrn.ID == d.Patients[0], "by MRN: %+v", byMrn)
}
