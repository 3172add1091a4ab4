package charges

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/dispensing"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/ent/tariff"
	admissions "github.com/hmis-dev/hmis/internal/admission"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/lab"
	"github.com/hmis-dev/hmis/internal/pharmacy"
)

// applyAll applies every retained event of every topic, as a consumer
// starting from scratch would.
func (f *fixture) applyAll(s *Service) {
	f.t.Helper()
	for _, topic := range Topics {
		for _, ev := range f.history(topic) {
			if err := s.Apply(f.sys, ev); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

// visit is an outpatient visit with a lab test verified and a drug
// dispensed, each with the event its module records.
type visit struct {
	p    *ent.Patient
	enc  *ent.Encounter
	item *ent.LabOrderItem
	disp *ent.Dispensing
}

func (f *fixture) visit() visit {
	p := f.patient()
	v := visit{p: p, enc: f.finishedEncounter(p)}
	test := f.c.LabTest.Query().Where(labtest.Code("2345-7")).FirstX(f.sys)
	order := f.c.LabOrder.Create().SetPatient(p).SetEncounterID(v.enc.ID).SetOrderedByID(f.doctorID).SetOrderedAt(f.now).SaveX(f.sys)
	v.item = f.c.LabOrderItem.Create().SetPatientID(p.ID).SetOrderID(order.ID).SetTestID(test.ID).SetOrderedAt(f.now).SaveX(f.sys)
	res := f.c.LabResult.Create().SetPatientID(p.ID).SetItemID(v.item.ID).SetEnteredByID(f.doctorID).SetEnteredAt(f.now).
		SetVerifiedAt(f.now).SaveX(f.sys)
	f.record(lab.ResultsTopic, string(lab.ResultVerified), lab.ResultPayload{PatientID: p.ID, ResultID: res.ID, ItemID: v.item.ID, TestID: test.ID})
	// An amendment is not charged again.
	f.record(lab.ResultsTopic, string(lab.ResultAmended), lab.ResultPayload{PatientID: p.ID, ResultID: res.ID, ItemID: v.item.ID, TestID: test.ID})

	d := f.c.Drug.Query().FirstX(f.sys)
	loc := f.c.StockLocation.Query().FirstX(f.sys)
	mo := f.c.MedicationOrder.Create().SetPatientID(p.ID).SetDrug(d.GenericName).SetDrugID(d.ID).SetDoseAmount(1).SetDoseUnit("capsule").
		SetRoute(medicationorder.RouteORAL).SetFrequency("TID").SetQuantity(15).SetPrescriberID(f.doctorID).SaveX(f.sys)
	v.disp = f.c.Dispensing.Create().SetPatientID(p.ID).SetOrderID(mo.ID).SetDrugID(d.ID).SetLocationID(loc.ID).SetQuantity(15).
		SetStatus(dispensing.StatusDISPENSED).SetDispensedByID(f.doctorID).SetDispensedAt(f.now).SaveX(f.sys)
	ev := pharmacy.DispensingEvent{DispensingID: v.disp.ID, OrderID: mo.ID, DrugID: d.ID, PatientID: p.ID, EncounterID: v.enc.ID,
		LocationID: loc.ID, Quantity: 15, TotalCost: 15 * 37}
	f.record(pharmacy.DispensingTopic, pharmacy.Dispensed, ev)
	ev.Quantity, ev.TotalCost = 5, 5*37
	f.record(pharmacy.DispensingTopic, pharmacy.Returned, ev)
	return v
}

// catalog is a lab test at 2500 on the list, a consultation at 5000, and a
// drug stocked at 37 with no price of its own.
func (f *fixture) catalog() {
	test := f.c.LabTest.Create().SetCode("2345-7").SetName("Glucose").SetSpecimenType(labtest.SpecimenTypeSERUM).
		SetResultKind(labtest.ResultKindNUMERIC).SetPrice(2000).SetTurnaroundMinutes(60).SaveX(f.sys)
	f.price("LAB-2345-7", tariff.CategoryLAB, test.ID, 2500)
	f.price("CONS-MED", tariff.CategoryCONSULTATION, f.dep.ID, 5000)
	f.c.Drug.Create().SetCode("AMOX500").SetGenericName("Amoxicillin 500 mg").SetUnitOfIssue("capsule").SaveX(f.sys)
	f.c.StockLocation.Create().SetCode("PHA").SetName("Pharmacy").SetKind(stocklocation.KindPHARMACY).SaveX(f.sys)
}

func summary(cs []*ent.Charge) map[charge.SourceType]int64 {
	out := map[charge.SourceType]int64{}
	for _, c := range cs {
		out[c.SourceType] += c.Amount
	}
	return out
}

func TestCaptureFromEventsExactlyOnce(t *testing.T) {
	f := setup(t)
	f.catalog()
	v := f.visit()
	f.publish()
	f.applyAll(f.svc)
	want := map[charge.SourceType]int64{
		charge.SourceTypeENCOUNTER:         5000,
		charge.SourceTypeLAB_ITEM:          2500,
		charge.SourceTypeDISPENSING:        15 * 46, // cost 37 plus 25 %
		charge.SourceTypeDISPENSING_RETURN: -5 * 46,
	}
	got := f.charges(v.p)
	if len(got) != 4 {
		t.Fatalf("%d charges, want 4: %v", len(got), got)
	}
	for k, w := range want {
		if summary(got)[k] != w {
			t.Errorf("%s: %d, want %d", k, summary(got)[k], w)
		}
	}
	for _, c := range got {
		if c.Amount != int64(c.Quantity)*c.UnitPrice {
			t.Errorf("%s: %d × %d ≠ %d", c.Code, c.Quantity, c.UnitPrice, c.Amount)
		}
		if c.SourceType != charge.SourceTypeENCOUNTER && (c.EncounterID == nil || *c.EncounterID != v.enc.ID) {
			t.Errorf("%s is not on the encounter", c.Code)
		}
	}
	// Delivered again — the whole history, to a fresh service — nothing
	// more is charged.
	f.applyAll(f.service())
	if n := len(f.charges(v.p)); n != 4 {
		t.Errorf("after redelivery: %d charges, want 4", n)
	}
	// The capture announced each charge for the ledger.
	f.publish()
	if n := len(f.history(Topic)); n != 4 {
		t.Errorf("%d billing events, want 4", n)
	}
}

// The consumer resumes from its saved cursor: events committed while no
// consumer ran (the server stopped between the event and its charge) are
// charged when the next one starts, and none twice.
func TestConsumerSurvivesARestart(t *testing.T) {
	f := setup(t)
	f.catalog()
	first := f.patient()
	f.finishedEncounter(first)
	f.publish()

	ctx, stop := context.WithCancel(f.sys)
	done := make(chan struct{})
	go func() { f.svc.Consume(ctx, f.broker, quiet); close(done) }()
	f.waitFor(first, 1)
	stop()
	<-done
	cursor, err := f.svc.Cursor(f.sys, "encounters")
	if err != nil || cursor == "" {
		t.Fatalf("no cursor saved: %q, %v", cursor, err)
	}

	// While the server is down: a visit ends and is published.
	second := f.patient()
	f.finishedEncounter(second)
	f.publish()
	if n := len(f.charges(second)); n != 0 {
		t.Fatalf("charged with no consumer running: %d", n)
	}

	ctx, stop = context.WithCancel(f.sys)
	defer stop()
	restarted := f.service()
	go restarted.Consume(ctx, f.broker, quiet)
	f.waitFor(second, 1)
	// Live events after the restart are charged too.
	third := f.patient()
	f.finishedEncounter(third)
	f.publish()
	f.waitFor(third, 1)
	if n := len(f.charges(first)); n != 1 {
		t.Errorf("the first visit was charged %d times", n)
	}
}

func (f *fixture) waitFor(p *ent.Patient, n int) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if len(f.charges(p)) >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("%s has %d charges, want %d", p.ID, len(f.charges(p)), n)
}

// The same event applied by several consumers at once (two processes after
// a failover) is charged once.
func TestConcurrentRedeliveryChargesOnce(t *testing.T) {
	f := setup(t)
	f.catalog()
	p := f.patient()
	f.finishedEncounter(p)
	f.publish()
	evs := f.history("encounters")
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				err := f.service().Apply(f.sys, evs[0])
				if err == nil || !retryable(err) {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := len(f.charges(p)); n != 1 {
		t.Errorf("%d charges, want 1", n)
	}
}

// retryable is a lost race a consumer retries: the first save of a
// topic's cursor by two transactions at once.
func retryable(err error) bool { return ent.IsConstraintError(err) }

func TestBedDays(t *testing.T) {
	f := setup(t)
	f.price("BED-W1", tariff.CategoryBED_DAY, f.ward.ID, 20000)
	f.price("BED-ICU", tariff.CategoryBED_DAY, f.ward2.ID, 90000)
	b1 := f.c.Bed.Create().SetWardID(f.ward.ID).SetCode("1").SaveX(f.sys)
	b2 := f.c.Bed.Create().SetWardID(f.ward2.ID).SetCode("2").SaveX(f.sys)
	day := func(d, h int) time.Time { return time.Date(2030, 3, d, h, 0, 0, 0, time.UTC) }
	stay := func(in, out time.Time, discharged bool) (*ent.Patient, *ent.Admission) {
		p := f.patient()
		c := f.c.Admission.Create().SetPatientID(p.ID).SetBedID(b1.ID).SetAttendingID(f.doctorID).SetAdmittedAt(in).
			SetReason("r").SetAdmissionType(admission.AdmissionTypeEMERGENCY)
		if discharged {
			c.SetStatus(admission.StatusDISCHARGED).SetDischargedAt(out)
		}
		a := c.SaveX(f.sys)
		f.c.BedAssignment.Create().SetPatientID(p.ID).SetAdmissionID(a.ID).SetBedID(b1.ID).SetFromAt(in).SaveX(f.sys)
		return p, a
	}
	// Admitted on the 1st, moved to the ICU on the 3rd, discharged on the
	// 5th: the 1st to the 4th are charged, the 3rd and 4th at the ICU's
	// price (the ward at the end of the day).
	long, la := stay(day(1, 22), day(5, 9), true)
	f.c.Admission.UpdateOne(la).SetBedID(b2.ID).ExecX(f.sys)
	f.c.BedAssignment.Create().SetPatientID(long.ID).SetAdmissionID(la.ID).SetBedID(b2.ID).SetFromAt(day(3, 14)).SaveX(f.sys)
	// In and out the same day: one day.
	short, _ := stay(day(6, 8), day(6, 17), true)
	// Still in, admitted on the 8th; today is the 10th: the 8th and 9th.
	running, ra := stay(day(8, 23), time.Time{}, false)

	if _, err := f.svc.ChargeBedDays(f.sys); err != nil {
		t.Fatal(err)
	}
	days := func(p *ent.Patient) (out []string, total int64) {
		for _, c := range f.charges(p) {
			out = append(out, c.Day)
			total += c.Amount
		}
		return out, total
	}
	for _, c := range []struct {
		p     *ent.Patient
		days  string
		total int64
	}{
		{long, "[2030-03-01 2030-03-02 2030-03-03 2030-03-04]", 2*20000 + 2*90000},
		{short, "[2030-03-06]", 20000},
		{running, "[2030-03-08 2030-03-09]", 2 * 20000},
	} {
		d, total := days(c.p)
		if got := fmt.Sprint(d); got != c.days || total != c.total {
			t.Errorf("%s: %s, %d; want %s, %d", c.p.ID, got, total, c.days, c.total)
		}
	}
	// The sweep again the same day adds nothing; the next day adds one.
	if _, err := f.svc.ChargeBedDays(f.sys); err != nil {
		t.Fatal(err)
	}
	if d, _ := days(running); len(d) != 2 {
		t.Errorf("the sweep charged again: %v", d)
	}
	// Discharged on the 11th: the discharge event catches up the 10th.
	f.now = day(11, 10)
	f.c.Admission.UpdateOne(ra).SetStatus(admission.StatusDISCHARGED).SetDischargedAt(f.now).ExecX(f.sys)
	f.record(admissions.Topic, string(admissions.Discharged), admissions.Change{BedID: b1.ID, WardID: f.ward.ID, Status: "CLEANING"})
	f.publish()
	f.applyAll(f.svc)
	if d, _ := days(running); fmt.Sprint(d) != "[2030-03-08 2030-03-09 2030-03-10]" {
		t.Errorf("after discharge: %v", d)
	}
}

func TestManualChargeAndReversal(t *testing.T) {
	f := setup(t)
	f.price("ITEM-CERT", tariff.CategoryITEM, "", 3000)
	p := f.patient()
	c, err := f.svc.AddManual(f.clerk, AddManualChargeInput{PatientID: p.ID, TariffCode: "ITEM-CERT", Quantity: 2})
	if err != nil {
		t.Fatal(err)
	}
	if c.Amount != 6000 || c.SourceType != charge.SourceTypeMANUAL || c.CreatedByID == nil {
		t.Errorf("manual charge: %+v", c)
	}
	for _, bad := range []struct {
		in    AddManualChargeInput
		field string
	}{
		{AddManualChargeInput{PatientID: p.ID, TariffCode: "NOPE", Quantity: 1}, "input.tariffCode"},
		{AddManualChargeInput{PatientID: p.ID, TariffCode: "ITEM-CERT", Quantity: 0}, "input.quantity"},
		{AddManualChargeInput{PatientID: "x", TariffCode: "ITEM-CERT", Quantity: 1}, "input.patientId"},
	} {
		_, err := f.svc.AddManual(f.clerk, bad.in)
		wantCode(t, err, apperr.BadUserInput, bad.field)
	}
	_, err = f.svc.Reverse(f.clerk, c.ID, " ")
	wantCode(t, err, apperr.BadUserInput, "reason")
	_, err = f.svc.Reverse(f.doctor, c.ID, "wrong patient")
	wantCode(t, err, apperr.Forbidden, "")
	r, err := f.svc.Reverse(f.clerk, c.ID, "wrong patient")
	if err != nil || r.Status != charge.StatusREVERSED || *r.ReversalReason != "wrong patient" {
		t.Fatalf("reverse: %+v, %v", r, err)
	}
	_, err = f.svc.Reverse(f.clerk, c.ID, "again")
	wantCode(t, err, apperr.Conflict, "")
	// Never deleted: the row stays, with the manual one only.
	if n := len(f.charges(p)); n != 1 {
		t.Errorf("%d charges", n)
	}
}

// An event about a record merged since is charged to the surviving one;
// an event naming a row that does not exist is passed by the consumer
// rather than holding every later charge behind it.
func TestCaptureFollowsMergesAndPassesPoisonEvents(t *testing.T) {
	f := setup(t)
	f.catalog()
	retired, survivor := f.patient(), f.patient()
	f.finishedEncounter(retired)
	f.c.Patient.UpdateOne(retired).SetStatus("MERGED").SetMergedIntoID(survivor.ID).ExecX(f.sys)
	f.record("encounters", "FINISHED", map[string]string{"encounterId": "enc_01NOSUCHENCOUNTER00000000", "patientId": survivor.ID})
	late := f.patient()
	f.finishedEncounter(late)
	f.publish()
	ctx, stop := context.WithCancel(f.sys)
	defer stop()
	go f.svc.Consume(ctx, f.broker, quiet)
	f.waitFor(late, 1)
	if n := len(f.charges(survivor)); n != 1 {
		t.Errorf("the survivor has %d charges, want the retired record's visit", n)
	}
	if n := len(f.charges(retired)); n != 0 {
		t.Errorf("the retired record was charged %d", n)
	}
}
