package patients

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/allergy"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/claimline"
	"github.com/hmis-dev/hmis/ent/clinicalnote"
	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/historyitem"
	"github.com/hmis-dev/hmis/ent/insurancepolicy"
	"github.com/hmis-dev/hmis/ent/invoiceadjustment"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/payment"
	"github.com/hmis-dev/hmis/ent/paymentcheckout"
	"github.com/hmis-dev/hmis/ent/preauthorization"
	"github.com/hmis-dev/hmis/ent/refund"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// hospital is what patient data points at: a department, a doctor, beds.
type hospital struct {
	dep        *ent.Department
	doctor     *ent.Staff
	bed1, bed2 *ent.Bed
}

func newHospital(ctx context.Context, c *ent.Client) hospital {
	dep := c.Department.Create().SetCode("GEN").SetName("General").SaveX(ctx)
	ward := c.Ward.Create().SetCode("W1").SetName("Ward 1").SetDepartment(dep).SaveX(ctx)
	return hospital{
		dep:    dep,
		doctor: c.Staff.Create().SetGivenName("G").SetFamilyName("M").SetKind(staff.KindDOCTOR).SetDepartment(dep).SaveX(ctx),
		bed1:   c.Bed.Create().SetWard(ward).SetCode("W1-01").SaveX(ctx),
		bed2:   c.Bed.Create().SetWard(ward).SetCode("W1-02").SaveX(ctx),
	}
}

func admit(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient, b *ent.Bed) *ent.Admission {
	return c.Admission.Create().SetPatient(p).SetBed(b).SetAttending(h.doctor).SetAdmittedAt(time.Now().UTC()).
		SetReason("observation").SetAdmissionType(admission.AdmissionTypeEMERGENCY).SaveX(ctx)
}

// patientDataFixtures creates one row of each kind of patient data for a
// patient and returns its ID. A kind of patient data without a fixture
// fails TestMergeMovesEveryKindOfPatientData: add one here.
var patientDataFixtures = map[string]func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string{
	"Admission": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return admit(ctx, c, h, p, h.bed1).ID
	},
	"Allergy": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Allergy.Create().SetPatient(p).SetSubstance("Penicillin").SetCategory(allergy.CategoryDRUG).
			SetSeverity(allergy.SeveritySEVERE).SaveX(ctx).ID
	},
	"Appointment": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		start := time.Now().UTC().Add(48 * time.Hour)
		return c.Appointment.Create().SetPatient(p).SetProvider(h.doctor).SetDepartment(h.dep).
			SetStartAt(start).SetEndAt(start.Add(30 * time.Minute)).SaveX(ctx).ID
	},
	"BedAssignment": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		stay := c.Admission.Create().SetPatient(p).SetBed(h.bed2).SetAttending(h.doctor).SetAdmittedAt(time.Now().UTC()).
			SetReason("earlier stay").SetAdmissionType(admission.AdmissionTypeELECTIVE).SetStatus(admission.StatusDISCHARGED).SaveX(ctx)
		return c.BedAssignment.Create().SetPatient(p).SetAdmission(stay).SetBed(h.bed2).SetFromAt(time.Now().UTC()).SaveX(ctx).ID
	},
	"BreakGlassAccess": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.BreakGlassAccess.Create().SetPatient(p).SetStaff(h.doctor).SetUserID("usr_merge_fixture").
			SetReason("Unconscious on arrival").SetExpiresAt(time.Now().Add(time.Hour)).SaveX(ctx).ID
	},
	"CarePlan": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.CarePlan.Create().SetPatient(p).SetTitle("Diabetes").SetAuthor(h.doctor).SaveX(ctx).ID
	},
	"CarePlanActivity": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		plan := c.CarePlan.Create().SetPatient(p).SetTitle("Walking").SetAuthor(h.doctor).SaveX(ctx)
		return c.CarePlanActivity.Create().SetPatient(p).SetCarePlan(plan).SetDescription("Walk daily").SaveX(ctx).ID
	},
	"CarePlanGoal": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		plan := c.CarePlan.Create().SetPatient(p).SetTitle("Weight").SetAuthor(h.doctor).SaveX(ctx)
		return c.CarePlanGoal.Create().SetPatient(p).SetCarePlan(plan).SetDescription("Lose 5 kg").SaveX(ctx).ID
	},
	"CareTeamMember": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.CareTeamMember.Create().SetPatient(p).SetStaff(h.doctor).SetRole(careteammember.RolePRIMARY_CARE).
			SetSince(time.Now().UTC()).SaveX(ctx).ID
	},
	"ClinicalNote": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.ClinicalNote.Create().SetPatient(p).SetType(clinicalnote.TypePROGRESS).SetText("Doing well").SetAuthor(h.doctor).SaveX(ctx).ID
	},
	"Encounter": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Encounter.Create().SetPatient(p).SetType(encounter.TypeOUTPATIENT).SetStartedAt(time.Now().UTC()).SaveX(ctx).ID
	},
	"HistoryItem": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.HistoryItem.Create().SetPatient(p).SetCategory(historyitem.CategorySURGERY).SetDescription("Appendectomy").SaveX(ctx).ID
	},
	"InsurancePolicy": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.InsurancePolicy.Create().SetPatient(p).SetPayer("NHIF").SetMemberNumber("1").SetValidFrom(day(2024, 1, 1)).SaveX(ctx).ID
	},
	"PreAuthorization": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		policy, _ := insured(ctx, c, p)
		return c.PreAuthorization.Create().SetPatient(p).SetPolicyID(policy.ID).SetCategory(preauthorization.CategoryPROCEDURE).
			SetRequestedByID(h.doctor.ID).SaveX(ctx).ID
	},
	"Claim": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return claimed(ctx, c, p).ID
	},
	"ClaimLine": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		cl := claimed(ctx, c, p)
		return c.ClaimLine.Create().SetPatient(p).SetClaimID(cl.ID).SetPosition(0).SetServiceCode("FBC").
			SetCategory(claimline.CategoryLAB).SetServiceDate(day(2024, 2, 1)).SetAmountClaimed(100).SaveX(ctx).ID
	},
	"LabOrder": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return labOrder(ctx, c, h, p).ID
	},
	"LabOrderItem": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return labItem(ctx, c, h, p).ID
	},
	"LabSpecimen": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		o := labOrder(ctx, c, h, p)
		return c.LabSpecimen.Create().SetPatient(p).SetOrder(o).SetAccessionNumber("M" + p.ID[len(p.ID)-8:]).
			SetSpecimenType(labspecimen.SpecimenTypeSERUM).SetCollectedByID(h.doctor.ID).SetCollectedAt(time.Now().UTC()).SaveX(ctx).ID
	},
	"LabResult": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		item := labItem(ctx, c, h, p)
		return c.LabResult.Create().SetPatient(p).SetItem(item).SetNumericValue(4.1).SetEnteredByID(h.doctor.ID).
			SetEnteredAt(time.Now().UTC()).SaveX(ctx).ID
	},
	"Charge": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Charge.Create().SetPatient(p).SetSourceType(charge.SourceTypeMANUAL).SetSourceID("man_" + p.ID).
			SetCode("ITEM-X").SetDescription("x").SetCategory(charge.CategoryITEM).SetQuantity(1).SetUnitPrice(100).
			SetAmount(100).SetServiceAt(time.Now().UTC()).SaveX(ctx).ID
	},
	"Invoice": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Invoice.Create().SetPatient(p).SetCreatedByID(h.doctor.ID).SaveX(ctx).ID
	},
	"Payment": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Payment.Create().SetPatient(p).SetMethod(payment.MethodCASH).SetAmount(100).SetCredited(100).
			SetIdempotencyKey("merge-" + p.ID).SetRecordedByID(h.doctor.ID).SetReceivedAt(time.Now().UTC()).SaveX(ctx).ID
	},
	"PaymentAllocation": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		inv := c.Invoice.Create().SetPatient(p).SetCreatedByID(h.doctor.ID).SaveX(ctx)
		pmt := c.Payment.Create().SetPatient(p).SetMethod(payment.MethodCASH).SetAmount(100).SetAllocated(100).
			SetIdempotencyKey("merge-alloc-" + p.ID).SetRecordedByID(h.doctor.ID).SetReceivedAt(time.Now().UTC()).SaveX(ctx)
		return c.PaymentAllocation.Create().SetPatient(p).SetPaymentID(pmt.ID).SetInvoiceID(inv.ID).SetAmount(100).SaveX(ctx).ID
	},
	"PaymentCheckout": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		inv := c.Invoice.Create().SetPatient(p).SetCreatedByID(h.doctor.ID).SaveX(ctx)
		return c.PaymentCheckout.Create().SetPatient(p).SetInvoiceID(inv.ID).SetAmount(100).
			SetMethod(paymentcheckout.MethodCARD).SetProvider("simulated").SetStartedByID(h.doctor.ID).SaveX(ctx).ID
	},
	"Refund": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Refund.Create().SetPatient(p).SetMethod(refund.MethodCASH).SetAmount(100).SetReason("x").
			SetIdempotencyKey("merge-refund-" + p.ID).SetRefundedByID(h.doctor.ID).SetRefundedAt(time.Now().UTC()).SaveX(ctx).ID
	},
	"InvoiceAdjustment": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		inv := c.Invoice.Create().SetPatient(p).SetCreatedByID(h.doctor.ID).SaveX(ctx)
		return c.InvoiceAdjustment.Create().SetPatient(p).SetInvoiceID(inv.ID).SetKind(invoiceadjustment.KindBAD_DEBT).
			SetAmount(100).SetRecordedByID(h.doctor.ID).SaveX(ctx).ID
	},
	"InvoiceDiscount": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		inv := c.Invoice.Create().SetPatient(p).SetCreatedByID(h.doctor.ID).SaveX(ctx)
		return c.InvoiceDiscount.Create().SetPatient(p).SetInvoiceID(inv.ID).SetAmount(100).SetReason("x").
			SetRequestedByID(h.doctor.ID).SaveX(ctx).ID
	},
	"Dispensing": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		d, _ := dispensed(ctx, c, h, p)
		return d.ID
	},
	"DispensingLine": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		d, b := dispensed(ctx, c, h, p)
		return c.DispensingLine.Create().SetPatient(p).SetDispensing(d).SetBatch(b).SetQuantity(1).SetUnitCost(100).SaveX(ctx).ID
	},
	"MedicationOrder": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.MedicationOrder.Create().SetPatient(p).SetDrug("Amoxicillin").SetDoseAmount(500).SetDoseUnit("mg").
			SetRoute(medicationorder.RouteORAL).SetFrequency("TID").SetQuantity(21).SetPrescriber(h.doctor).SaveX(ctx).ID
	},
	"Observation": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Observation.Create().SetPatient(p).SetCode("8867-4").SetDisplay("Heart rate").SetValue(72).SetUnit("/min").
			SetEffectiveAt(time.Now().UTC()).SaveX(ctx).ID
	},
	"PatientContact": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.PatientContact.Create().SetPatient(p).SetName("Baraka").SetRelationship("spouse").SaveX(ctx).ID
	},
	"PatientIdentifier": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.PatientIdentifier.Create().SetPatient(p).SetSystem("PASSPORT").SetValue("X" + p.ID[len(p.ID)-6:]).SaveX(ctx).ID
	},
	"Problem": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Problem.Create().SetPatient(p).SetIcd10Code("E11").SetDisplay("Type 2 diabetes").SaveX(ctx).ID
	},
	"Referral": func(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) string {
		return c.Referral.Create().SetPatient(p).SetFromStaff(h.doctor).SetFromDepartment(h.dep).SetToDepartment(h.dep).
			SetReason("Second opinion").SaveX(ctx).ID
	},
}

// ownerOf reads a row's patient column straight from its table, past row
// scope and ent, the way the merge writes it.
func ownerOf(t *testing.T, st *store.Store, typ, id string) string {
	t.Helper()
	table, err := tableOf(typ)
	if err != nil {
		t.Fatal(err)
	}
	query, args := entsql.Dialect(st.Dialect).Select(ent.PatientColumn[typ]).From(entsql.Table(table)).Where(entsql.EQ("id", id)).Query()
	var owner string
	if err := st.DB.QueryRow(query, args...).Scan(&owner); err != nil {
		t.Fatalf("%s %s: %v", typ, id, err)
	}
	return owner
}

func countOwnedBy(t *testing.T, st *store.Store, typ, patientID string) int {
	t.Helper()
	table, err := tableOf(typ)
	if err != nil {
		t.Fatal(err)
	}
	column := ent.PatientColumn[typ]
	query, args := entsql.Dialect(st.Dialect).Select(entsql.Count("*")).From(entsql.Table(table)).Where(entsql.EQ(column, patientID)).Query()
	var n int
	if err := st.DB.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	return n
}

type mergeEnv struct {
	ctx context.Context
	st  *store.Store
	c   *ent.Client
	svc *Service
	h   hospital
}

func newMergeEnv(t *testing.T) mergeEnv {
	st := testenv.Store(t)
	ctx := auth.SystemContext(context.Background())
	return mergeEnv{ctx: ctx, st: st, c: st.Client, svc: NewService(st), h: newHospital(ctx, st.Client)}
}

func (e mergeEnv) patient(t *testing.T, given string) *ent.Patient {
	t.Helper()
	r := baseRegistration()
	r.GivenName = given
	r.ConfirmNotDuplicate = true
	return mustRegister(t, e.ctx, e.svc, r)
}

func (e mergeEnv) merge(survivor, duplicate *ent.Patient) (*MergePatientsPayload, error) {
	return e.svc.Merge(e.ctx, MergePatientsInput{SurvivorID: survivor.ID, DuplicateID: duplicate.ID, Reason: "same person"})
}

// TestMergeMovesEveryKindOfPatientData goes over ent.PatientColumn, so a
// kind of patient data added to the schema later is checked too: it fails
// until it has a fixture, and then until merging moves it.
func TestMergeMovesEveryKindOfPatientData(t *testing.T) {
	e := newMergeEnv(t)
	survivor, duplicate := e.patient(t, "Survivor"), e.patient(t, "Duplicate")
	created := map[string]string{}
	for _, typ := range patientDataTypes() {
		fixture, ok := patientDataFixtures[typ]
		if !ok {
			t.Errorf("%s holds patient data but has no fixture in patientDataFixtures: add one so that merging it is tested", typ)
			continue
		}
		created[typ] = fixture(e.ctx, e.c, e.h, duplicate)
	}
	if len(patientDataTypes()) != len(ent.PatientColumn)-1 {
		t.Fatalf("patientDataTypes leaves out more than Patient itself")
	}
	if _, err := e.merge(survivor, duplicate); err != nil {
		t.Fatal(err)
	}
	for typ, id := range created {
		if owner := ownerOf(t, e.st, typ, id); owner != survivor.ID {
			t.Errorf("%s %s still belongs to %s after the merge", typ, id, owner)
		}
	}
	for _, typ := range patientDataTypes() {
		if n := countOwnedBy(t, e.st, typ, duplicate.ID); n != 0 {
			t.Errorf("%d %s rows left with the merged patient", n, typ)
		}
	}
}

func TestMergeOutcome(t *testing.T) {
	e := newMergeEnv(t)
	sr := baseRegistration()
	sr.Phone = ptr("+254700000001")
	sr.Identifiers = []PatientIdentifierInput{{System: "PASSPORT", Value: "AB123"}}
	sr.InsurancePolicies = []InsurancePolicyInput{
		{Payer: "NHIF", MemberNumber: "77", ValidFrom: day(2024, 1, 1), Priority: 1},
		{Payer: "AAR", MemberNumber: "5", ValidFrom: day(2024, 1, 1), Priority: 2},
	}
	survivor := mustRegister(t, e.ctx, e.svc, sr)
	dr := baseRegistration()
	dr.GivenName, dr.ConfirmNotDuplicate = "Amani N.", true
	dr.Phone, dr.Email, dr.City, dr.Country = ptr("+254799999999"), ptr("amani@example.org"), ptr("Kisumu"), ptr("KE")
	dr.PreferredLanguage = ptr("sw")
	dr.Identifiers = []PatientIdentifierInput{{System: "NHIF", Value: "77"}}
	dr.InsurancePolicies = []InsurancePolicyInput{
		{Payer: "nhif", MemberNumber: "77", ValidFrom: day(2023, 1, 1), Priority: 1},
		{Payer: "Jubilee", MemberNumber: "J9", ValidFrom: day(2024, 1, 1), Priority: 2},
	}
	duplicate := mustRegister(t, e.ctx, e.svc, dr)
	// The same passport on both, in a format an older import left; the
	// stored forms differ, so the database holds both.
	e.c.PatientIdentifier.Create().SetPatient(duplicate).SetSystem("passport").SetValue("ab 123").ExecX(e.ctx)
	// A record merged into the duplicate earlier.
	older := e.patient(t, "Older")
	if _, err := e.merge(duplicate, older); err != nil {
		t.Fatal(err)
	}
	// The duplicate's patient-app login moves to the survivor, who has none.
	login := e.c.User.Create().SetUsername("amani").SetPasswordHash("x").SetRoles([]string{"patient"}).SetPatient(duplicate).SaveX(e.ctx)

	out, err := e.merge(survivor, duplicate)
	if err != nil {
		t.Fatal(err)
	}
	s, d := out.Survivor, out.Duplicate
	if d.Status != patient.StatusMERGED || *d.MergedIntoID != survivor.ID || d.MergedAt == nil || s.Status != patient.StatusACTIVE || s.MergedIntoID != nil {
		t.Fatalf("survivor %+v, duplicate %+v", s, d)
	}
	if *s.Phone != "+254700000001" || *s.Email != "amani@example.org" || *s.City != "Kisumu" || *s.PreferredLanguage != "sw" || s.GivenName != "Amani" {
		t.Fatalf("the survivor keeps its own details and gains the duplicate's missing ones: %+v", s)
	}
	if d.MergeReason == nil || *d.MergeReason == "" {
		t.Fatalf("the duplicate keeps why it was merged: %+v", d)
	}
	if again := e.c.Patient.GetX(e.ctx, older.ID); *again.MergedIntoID != survivor.ID {
		t.Fatalf("a record merged earlier points at %s, want the survivor %s", *again.MergedIntoID, survivor.ID)
	}
	if merged := e.c.Patient.QueryMergedRecords(s).IDsX(e.ctx); len(merged) != 2 {
		t.Fatalf("the survivor has absorbed two records, lists %v", merged)
	}
	ids := e.c.Patient.QueryIdentifiers(s).AllX(e.ctx)
	if len(ids) != 2 {
		t.Fatalf("the passport is kept once beside the NHIF number: %+v", ids)
	}
	policies := e.c.Patient.QueryInsurancePolicies(s).Order(ent.Asc(insurancepolicy.FieldPriority)).AllX(e.ctx)
	byPayer := map[string]*ent.InsurancePolicy{}
	for _, p := range policies {
		byPayer[p.Payer] = p
	}
	if len(policies) != 4 || byPayer["NHIF"].Priority != 1 || byPayer["AAR"].Priority != 2 || byPayer["Jubilee"].Priority != 3 ||
		byPayer["Jubilee"].Status != insurancepolicy.StatusACTIVE || byPayer["nhif"].Status != insurancepolicy.StatusINACTIVE {
		t.Fatalf("policies after the merge: %+v", policies)
	}
	if got := e.c.User.Query().Where(user.ID(login.ID)).QueryPatient().OnlyIDX(e.ctx); got != survivor.ID {
		t.Fatalf("login now belongs to %s", got)
	}
}

func TestMergeRefusals(t *testing.T) {
	e := newMergeEnv(t)
	a, b, c := e.patient(t, "A"), e.patient(t, "B"), e.patient(t, "C")

	_, err := e.merge(a, a)
	wantField(t, err, "input.duplicateId")
	_, err = e.svc.Merge(e.ctx, MergePatientsInput{SurvivorID: a.ID, DuplicateID: b.ID})
	wantField(t, err, "input.reason")
	_, err = e.svc.Merge(e.ctx, MergePatientsInput{SurvivorID: "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV", DuplicateID: b.ID, Reason: "x"})
	wantField(t, err, "input.survivorId")
	_, err = e.svc.Merge(e.ctx, MergePatientsInput{SurvivorID: a.ID, DuplicateID: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", Reason: "x"})
	wantField(t, err, "input.duplicateId")

	// Both in a bed: the ward settles which stay is real first.
	admit(e.ctx, e.c, e.h, a, e.h.bed1)
	stay := admit(e.ctx, e.c, e.h, b, e.h.bed2)
	_, err = e.merge(a, b)
	wantCode(t, err, apperr.Conflict)
	e.c.Admission.UpdateOne(stay).SetStatus(admission.StatusDISCHARGED).ExecX(e.ctx)

	// Both with a patient-app login.
	e.c.User.Create().SetUsername("a").SetPasswordHash("x").SetRoles([]string{"patient"}).SetPatient(a).ExecX(e.ctx)
	blogin := e.c.User.Create().SetUsername("b").SetPasswordHash("x").SetRoles([]string{"patient"}).SetPatient(b).SaveX(e.ctx)
	_, err = e.merge(a, b)
	wantCode(t, err, apperr.Conflict)
	e.c.User.UpdateOne(blogin).ClearPatient().ExecX(e.ctx)

	// Nothing of a refused merge stays.
	if got := e.c.Patient.GetX(e.ctx, b.ID); got.Status != patient.StatusACTIVE || e.c.Admission.Query().Where(admission.PatientID(b.ID)).CountX(e.ctx) != 1 {
		t.Fatalf("a refused merge changed %+v", got)
	}

	if _, err := e.merge(a, b); err != nil {
		t.Fatal(err)
	}
	_, err = e.merge(c, b)
	wantCode(t, err, apperr.Conflict) // already merged
	_, err = e.merge(b, c)
	wantCode(t, err, apperr.Conflict) // into a merged record

	// A survivor absorbs a second record as well.
	d := e.patient(t, "D")
	if _, err = e.merge(a, d); err != nil {
		t.Fatal(err)
	}
	if got := e.c.Patient.GetX(e.ctx, d.ID); got.Status != patient.StatusMERGED || *got.MergedIntoID != a.ID {
		t.Fatalf("second merge into one survivor: %+v", got)
	}
}

func labOrder(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) *ent.LabOrder {
	return c.LabOrder.Create().SetPatient(p).SetOrderedByID(h.doctor.ID).SetOrderedAt(time.Now().UTC()).SaveX(ctx)
}

// dispensed is a dispensing of an order of p's, from a batch of its own.
func dispensed(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) (*ent.Dispensing, *ent.StockBatch) {
	// Codes are unique: the random part of a fresh ULID.
	d := c.Drug.Create().SetCode("D" + globalid.New("d")[len("d_")+10:]).SetGenericName("amoxicillin").
		SetUnitOfIssue("capsule").SaveX(ctx)
	loc := c.StockLocation.Create().SetCode("L" + d.Code).SetName("Pharmacy").SetKind(stocklocation.KindPHARMACY).SaveX(ctx)
	b := c.StockBatch.Create().SetDrug(d).SetLocation(loc).SetLotNumber("A1").SetExpiryDate(time.Now().AddDate(1, 0, 0)).
		SetUnitCost(100).SaveX(ctx)
	o := c.MedicationOrder.Create().SetPatient(p).SetDrug("Amoxicillin").SetDrugID(d.ID).SetDoseAmount(500).SetDoseUnit("mg").
		SetRoute(medicationorder.RouteORAL).SetFrequency("TID").SetQuantity(21).SetPrescriber(h.doctor).SaveX(ctx)
	disp := c.Dispensing.Create().SetPatient(p).SetOrder(o).SetDrug(d).SetLocation(loc).SetQuantity(1).
		SetStatus(dispensing.StatusDISPENSED).SetDispensedByID(h.doctor.ID).SetDispensedAt(time.Now().UTC()).SaveX(ctx)
	return disp, b
}

func labItem(ctx context.Context, c *ent.Client, h hospital, p *ent.Patient) *ent.LabOrderItem {
	test, err := c.LabTest.Query().Where(labtest.Code("2823-3")).Only(ctx)
	if ent.IsNotFound(err) {
		test = c.LabTest.Create().SetCode("2823-3").SetName("Potassium").SetSpecimenType(labtest.SpecimenTypeSERUM).
			SetResultKind(labtest.ResultKindNUMERIC).SetPrice(50000).SetTurnaroundMinutes(60).SaveX(ctx)
	}
	return c.LabOrderItem.Create().SetPatient(p).SetOrder(labOrder(ctx, c, h, p)).SetTest(test).
		SetOrderedAt(time.Now().UTC()).SaveX(ctx)
}

var payers atomic.Int64

// insured gives p a policy linked to a plan of a payer of its own.
func insured(ctx context.Context, c *ent.Client, p *ent.Patient) (*ent.InsurancePolicy, *ent.Payer) {
	suffix := strconv.FormatInt(payers.Add(1), 10)
	py := c.Payer.Create().SetCode("P" + suffix).SetName("Payer").SetKind(payer.KindINSURER).SaveX(ctx)
	pl := c.InsurancePlan.Create().SetPayerID(py.ID).SetCode("PL" + suffix).SetName("Plan").SaveX(ctx)
	policy := c.InsurancePolicy.Create().SetPatient(p).SetPayer("Payer").SetMemberNumber("1").SetValidFrom(day(2024, 1, 1)).
		SetPlanID(pl.ID).SaveX(ctx)
	return policy, py
}

func claimed(ctx context.Context, c *ent.Client, p *ent.Patient) *ent.Claim {
	policy, py := insured(ctx, c, p)
	return c.Claim.Create().SetPatient(p).SetPolicyID(policy.ID).SetPayerID(py.ID).SetTotalClaimed(100).SaveX(ctx)
}
