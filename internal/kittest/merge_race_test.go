package kittest

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	entadmission "github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/historyitem"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/referral"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/ent/tariff"
	"github.com/hmis-dev/hmis/internal/admission"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/careaccess"
	"github.com/hmis-dev/hmis/internal/careplans"
	"github.com/hmis-dev/hmis/internal/charges"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/insurance"
	"github.com/hmis-dev/hmis/internal/lab"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/notes"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/pharmacy"
	"github.com/hmis-dev/hmis/internal/prescribing"
	"github.com/hmis-dev/hmis/internal/referrals"
	"github.com/hmis-dev/hmis/internal/scheduling"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// mergeRaceRounds is how many merges each race runs. Every round starts a
// merge and one write of every domain at the same moment, so the writes
// land before, during and after the merge in varying orders.
const mergeRaceRounds = 25

// hospital is what the writes need: services, staff who may make them, a
// lab test to order and a department to refer to.
type hospital struct {
	st           *store.Store
	sys, doctor  context.Context
	pharmacist   context.Context
	drugID       string
	doctorID     string
	wardID       string
	otherDepID   string
	labTestID    string
	patients     *patients.Service
	scheduling   *scheduling.Service
	admission    *admission.Service
	lab          *lab.Service
	ehr          *ehr.Service
	careplans    *careplans.Service
	referrals    *referrals.Service
	notes        *notes.Service
	prescribing  *prescribing.Service
	careaccess   *careaccess.Service
	pharmacy     *pharmacy.Service
	insurance    *insurance.Service
	clerk        context.Context
	planID       string
	charges      *charges.Service
	appointments time.Time
}

func newHospital(t *testing.T) *hospital {
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	gen := c.Department.Create().SetCode("GEN").SetName("General").SaveX(sys)
	other := c.Department.Create().SetCode("CAR").SetName("Cardiology").SaveX(sys)
	doctor := c.Staff.Create().SetGivenName("D").SetFamilyName("R").SetKind(staff.KindDOCTOR).SetDepartment(gen).SaveX(sys)
	ward := c.Ward.Create().SetDepartment(gen).SetCode("W1").SetName("Ward 1").SaveX(sys)
	// A pharmacy with plenty of one drug, for a dispensing each round.
	pharmacist := c.Staff.Create().SetGivenName("P").SetFamilyName("H").SetKind(staff.KindPHARMACIST).SetDepartment(gen).SaveX(sys)
	pharmacistCtx := auth.WithViewer(context.Background(), &auth.Viewer{
		UserID: "usr_" + pharmacist.ID[4:], Roles: []string{"pharmacist"}, StaffID: pharmacist.ID,
	})
	drug := c.Drug.Create().SetCode("METF500TAB").SetGenericName("metformin").SetUnitOfIssue("tablet").SaveX(sys)
	pharmacyLoc := c.StockLocation.Create().SetCode("PHA").SetName("Pharmacy").SetKind(stocklocation.KindPHARMACY).SaveX(sys)
	pharmacySvc := pharmacy.NewService(st, time.UTC)
	if _, err := pharmacySvc.Receive(pharmacistCtx, pharmacy.ReceiveStockInput{LocationID: pharmacyLoc.ID, DrugID: drug.ID,
		LotNumber: "M1", ExpiryDate: time.Now().AddDate(2, 0, 0), Quantity: 10_000, UnitCost: 5}); err != nil {
		t.Fatal(err)
	}
	// A plan to link each round's policy to, and a clerk who claims on it.
	clerk := c.Staff.Create().SetGivenName("B").SetFamilyName("C").SetKind(staff.KindBILLING_CLERK).SetDepartment(gen).SaveX(sys)
	insuranceSvc := insurance.NewService(st, time.UTC)
	nhif, err := insuranceSvc.CreatePayer(sys, insurance.CreatePayerInput{Code: "NHIF", Name: "NHIF", Kind: payer.KindGOVERNMENT})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := insuranceSvc.CreatePlan(sys, insurance.CreateInsurancePlanInput{PayerID: nhif.ID, Code: "NHIF-1", Name: "NHIF", PlanYearStartMonth: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Charges accrue to the ledger as they are made, so its chart has to be there.
	if err := ledger.Seed(sys, c); err != nil {
		t.Fatal(err)
	}
	c.Tariff.Create().SetCode("ITEM-CERT").SetName("Certificate").SetCategory(tariff.CategoryITEM).SetPrice(3000).
		SetEffectiveFrom(time.Now().AddDate(-1, 0, 0)).SaveX(sys)
	test := c.LabTest.Create().SetCode("2823-3").SetName("Potassium").SetSpecimenType(labtest.SpecimenTypeSERUM).
		SetResultKind(labtest.ResultKindNUMERIC).SetUnit("mmol/L").SetPrice(1500).SetTurnaroundMinutes(60).SaveX(sys)
	return &hospital{
		st: st, sys: sys,
		doctor: auth.WithViewer(context.Background(), &auth.Viewer{
			UserID: "usr_" + doctor.ID[4:], Roles: []string{"doctor"}, StaffID: doctor.ID,
		}),
		doctorID: doctor.ID, wardID: ward.ID, otherDepID: other.ID, labTestID: test.ID,
		patients:    patients.NewService(st),
		scheduling:  scheduling.NewService(st, time.UTC),
		admission:   admission.NewService(st),
		lab:         lab.NewService(st, time.UTC),
		ehr:         ehr.NewService(st, time.UTC),
		careplans:   careplans.NewService(st),
		referrals:   referrals.NewService(st),
		notes:       notes.NewService(st),
		prescribing: prescribing.NewService(st),
		careaccess:  careaccess.NewService(st, 0, time.Now, func(*auth.Viewer) bool { return true }),
		pharmacy:    pharmacySvc,
		pharmacist:  pharmacistCtx,
		insurance:   insuranceSvc,
		clerk: auth.WithViewer(context.Background(), &auth.Viewer{
			UserID: "usr_" + clerk.ID[4:], Roles: []string{"billing_clerk"}, StaffID: clerk.ID,
		}),
		planID:  plan.ID,
		drugID:  drug.ID,
		charges: charges.NewService(st, time.UTC, charges.DefaultMarkupPercent, ledger.NewService(st, time.UTC)),
		// Appointments an hour apart, one per round, so the doctor is
		// never booked twice.
		appointments: time.Now().Add(time.Hour).Truncate(time.Hour),
	}
}

// write is one domain's write of patient data for the patient patientID.
// It returns the ID of the row it made, whose patient the test then
// checks.
type write struct {
	name string
	do   func(h *hospital, round int, patientID string) (string, error)
}

// writes are one write of every domain that keeps patient data.
var writes = []write{
	{"patients.AddContact", func(h *hospital, _ int, p string) (string, error) {
		phone := "+254700000000"
		c, err := h.patients.AddContact(h.sys, p, patients.PatientContactInput{Name: "Kin", Relationship: "sister", Phone: &phone})
		return idOf(c, err)
	}},
	{"scheduling.Book", func(h *hospital, round int, p string) (string, error) {
		start := h.appointments.Add(time.Duration(round) * time.Hour)
		a, err := h.scheduling.Book(h.doctor, scheduling.Booking{PatientID: p, ProviderID: h.doctorID, StartAt: start, EndAt: start.Add(15 * time.Minute)})
		return idOf(a, err)
	}},
	{"admission.Admit", func(h *hospital, round int, p string) (string, error) {
		b := h.st.Client.Bed.Create().SetWardID(h.wardID).SetCode(fmt.Sprintf("B%d", round)).SaveX(h.sys)
		a, err := h.admission.Admit(h.doctor, admission.AdmitPatientInput{PatientID: p, BedID: b.ID, AttendingID: h.doctorID,
			Reason: "observation", AdmissionType: entadmission.AdmissionTypeEMERGENCY})
		return idOf(a, err)
	}},
	{"lab.Order", func(h *hospital, _ int, p string) (string, error) {
		o, err := h.lab.Order(h.doctor, lab.OrderLabTestsInput{PatientID: p, TestIDs: []string{h.labTestID}})
		return idOf(o, err)
	}},
	{"ehr.RecordAllergy", func(h *hospital, _ int, p string) (string, error) {
		a, err := h.ehr.RecordAllergy(h.doctor, ehr.RecordAllergyInput{PatientID: p, Substance: "Penicillin",
			Category: allergy.CategoryDRUG, Severity: allergy.SeveritySEVERE})
		return idOf(a, err)
	}},
	{"ehr.RecordVitals", func(h *hospital, _ int, p string) (string, error) {
		rate := 72
		obs, err := h.ehr.RecordVitals(h.doctor, ehr.RecordVitalsInput{PatientID: p, HeartRate: &rate})
		if err != nil {
			return "", err
		}
		return obs[0].ID, nil
	}},
	{"ehr.RecordHistoryItem", func(h *hospital, _ int, p string) (string, error) {
		i, err := h.ehr.RecordHistoryItem(h.doctor, ehr.RecordHistoryItemInput{PatientID: p,
			Category: historyitem.CategorySURGERY, Description: "Appendectomy"})
		return idOf(i, err)
	}},
	{"careplans.Create", func(h *hospital, _ int, p string) (string, error) {
		c, err := h.careplans.Create(h.doctor, careplans.CreateCarePlanInput{PatientID: p, Title: "Diabetes",
			Goals: []careplans.CarePlanGoalInput{{Description: "HbA1c below 7%"}}})
		return idOf(c, err)
	}},
	{"referrals.Refer", func(h *hospital, _ int, p string) (string, error) {
		r, err := h.referrals.Refer(h.doctor, referrals.ReferPatientInput{PatientID: p, ToDepartmentID: h.otherDepID,
			Reason: "chest pain", Priority: referral.PriorityROUTINE})
		return idOf(r, err)
	}},
	{"notes.Write", func(h *hospital, _ int, p string) (string, error) {
		n, err := h.notes.Write(h.doctor, notes.WriteNoteInput{PatientID: p, Type: clinicalnote.TypePROGRESS, Text: "Seen."})
		return idOf(n, err)
	}},
	{"careaccess.BreakGlass", func(h *hospital, _ int, p string) (string, error) {
		a, err := h.careaccess.BreakGlass(h.doctor, careaccess.BreakGlassInput{PatientID: p, Reason: "Unconscious in the ED"})
		return idOf(a, err)
	}},
	{"prescribing.Prescribe", func(h *hospital, _ int, p string) (string, error) {
		metformin := "Metformin"
		o, err := h.prescribing.Prescribe(h.doctor, prescribing.PrescribeMedicationInput{PatientID: p, Drug: &metformin,
			DoseAmount: 500, DoseUnit: "mg", Route: medicationorder.RouteORAL, Frequency: "BID", Quantity: 60})
		return idOf(o, err)
	}},
	{"pharmacy.Dispense", func(h *hospital, _ int, p string) (string, error) {
		// The order is prescribed in the race too (by the locked path), then
		// linked to the formulary item and dispensed: either step may meet
		// the merge.
		metformin := "metformin"
		o, err := h.prescribing.Prescribe(h.doctor, prescribing.PrescribeMedicationInput{PatientID: p, Drug: &metformin,
			DoseAmount: 500, DoseUnit: "mg", Route: medicationorder.RouteORAL, Frequency: "BID", Quantity: 2})
		if err != nil {
			return "", err
		}
		if err := h.st.Client.MedicationOrder.UpdateOneID(o.ID).SetDrugID(h.drugID).Exec(h.sys); err != nil {
			return "", err
		}
		d, err := h.pharmacy.Dispense(h.pharmacist, pharmacy.DispenseMedicationInput{OrderID: o.ID})
		return idOf(d, err)
	}},
	{"insurance.CreateClaim", func(h *hospital, _ int, p string) (string, error) {
		// The policy is added, linked and claimed on in the race: each step
		// may meet the merge, and the claim follows the policy's patient.
		pol, err := h.patients.AddInsurancePolicy(h.sys, p, patients.InsurancePolicyInput{Payer: "NHIF", MemberNumber: "1",
			ValidFrom: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), Priority: 1})
		if err != nil {
			return "", err
		}
		if _, err := h.insurance.LinkPolicy(h.clerk, pol.ID, &h.planID); err != nil {
			return "", err
		}
		cl, err := h.insurance.CreateClaim(h.clerk, insurance.CreateClaimInput{PolicyID: pol.ID, Lines: []insurance.ClaimLineInput{
			{ServiceCode: "FBC", Category: claimline.CategoryLAB, ServiceDate: time.Now(), Quantity: 1, AmountClaimed: 1500}}})
		return idOf(cl, err)
	}},
	{"charges", func(h *hospital, _ int, patientID string) (string, error) {
		c, err := h.charges.AddManual(h.clerk, charges.AddManualChargeInput{PatientID: patientID, TariffCode: "ITEM-CERT", Quantity: 1})
		return idOf(c, err)
	}},
}

// idOf is the ID of the entity a write returned, if it succeeded.
func idOf[T any](v *T, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return reflect.ValueOf(v).Elem().FieldByName("ID").String(), nil
}

// TestNoWriteLandsOnAMergedRecord races mergePatients against a write of
// every domain, many times, on PostgreSQL, where transactions truly run at
// once (SQLite runs writers one at a time, so there is no race to lose).
// Each write either lands before the merge, and moves with the record, or
// after it, and is refused with an error that says so; no row is ever left
// on the retired record.
func TestNoWriteLandsOnAMergedRecord(t *testing.T) {
	if !testenv.UsingPostgres() {
		t.Skip("the race needs PostgreSQL: set HMIS_TEST_DATABASE_URL")
	}
	h := newHospital(t)
	refused := map[string]int{}
	for round := range mergeRaceRounds {
		survivor := h.newPatient(t, round, 0)
		duplicate := h.newPatient(t, round, 1)
		start := make(chan struct{})
		var wg sync.WaitGroup
		ids := make([]string, len(writes))
		errs := make([]error, len(writes))
		for i, w := range writes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ids[i], errs[i] = w.do(h, round, duplicate)
			}()
		}
		var mergeErr error
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, mergeErr = h.patients.Merge(h.sys, patients.MergePatientsInput{
				SurvivorID: survivor, DuplicateID: duplicate, Reason: "same person"})
		}()
		close(start)
		wg.Wait()
		if mergeErr != nil {
			t.Fatalf("round %d: merge: %v", round, mergeErr)
		}
		for i, w := range writes {
			switch err := errs[i]; {
			case err == nil:
				if got := h.patientOf(t, ids[i]); got != survivor {
					t.Errorf("round %d: %s made %s on %s, not on the survivor %s", round, w.name, ids[i], got, survivor)
				}
			case refusedAsMerged(err):
				refused[w.name]++
			default:
				t.Errorf("round %d: %s failed otherwise than as merged: %v", round, w.name, err)
			}
		}
		if left := h.rowsOf(t, duplicate); len(left) > 0 {
			t.Fatalf("round %d: rows left on the merged record: %v", round, left)
		}
	}
	t.Logf("writes refused as arriving after the merge, of %d rounds each: %v", mergeRaceRounds, refused)
}

// refusedAsMerged reports whether err is how a write that comes after the
// merge is refused: the input names a merged record, or the record was
// merged while the write waited for it.
func refusedAsMerged(err error) bool {
	e, ok := apperr.As(err)
	if !ok {
		return false
	}
	switch e.Code {
	case apperr.BadUserInput:
		return e.Field == "input.patientId" || e.Field == "patientId"
	case apperr.Conflict:
		return true
	}
	return false
}

func (h *hospital) newPatient(t *testing.T, round, n int) string {
	t.Helper()
	return h.st.Client.Patient.Create().
		SetMrn(fmt.Sprintf("9%03d%04d%d", round, n, n)).
		SetGivenName("Amina").SetFamilyName(fmt.Sprintf("Round%d", round)).
		SetBirthDate(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexFEMALE).
		SaveX(h.sys).ID
}

// patientOf returns the patient the row id belongs to.
func (h *hospital) patientOf(t *testing.T, id string) string {
	t.Helper()
	for typ, prefix := range ent.PrefixByType {
		if globalid.Prefix(id) != prefix {
			continue
		}
		table, column := tableAndColumn(t, typ)
		var p string
		q, args := entsql.Dialect(h.st.Dialect).Select(column).From(entsql.Table(table)).Where(entsql.EQ("id", id)).Query()
		if err := h.st.DB.QueryRow(q, args...).Scan(&p); err != nil {
			t.Fatalf("patient of %s: %v", id, err)
		}
		return p
	}
	t.Fatalf("no type has the prefix of %s", id)
	return ""
}

// rowsOf lists, by type, how many rows of patient data name patientID, over
// every entity code generation knows holds a patient_id.
func (h *hospital) rowsOf(t *testing.T, patientID string) map[string]int {
	t.Helper()
	left := map[string]int{}
	var types []string
	for typ := range ent.PatientColumn {
		if typ != "Patient" {
			types = append(types, typ)
		}
	}
	sort.Strings(types)
	for _, typ := range types {
		table, column := tableAndColumn(t, typ)
		var n int
		q, args := entsql.Dialect(h.st.Dialect).Select(entsql.Count("*")).From(entsql.Table(table)).
			Where(entsql.EQ(column, patientID)).Query()
		if err := h.st.DB.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", typ, err)
		}
		if n > 0 {
			left[typ] = n
		}
	}
	return left
}

func tableAndColumn(t *testing.T, typ string) (string, string) {
	t.Helper()
	table, err := ent.IDToType(context.Background(), globalid.New(ent.PrefixByType[typ]))
	if err != nil {
		t.Fatalf("table of %s: %v", typ, err)
	}
	return table, ent.PatientColumn[typ]
}
