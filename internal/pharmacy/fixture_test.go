package pharmacy

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/medicationorder"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/stockbatch"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/ent/stockmovement"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// fixture is a small hospital with a main store, a pharmacy and a ward
// store, the people who work them, and a clock the test moves.
type fixture struct {
	t      *testing.T
	st     *store.Store
	svc    *Service
	client *ent.Client
	system context.Context
	// Contexts acting as members of staff.
	pharmacist, pharmacist2, technician, nurse, doctor context.Context
	doctorID                                           string
	main, pharmacy, ward                               *ent.StockLocation
	now                                                time.Time
	seq                                                int
}

func setup(t *testing.T) *fixture {
	t.Helper()
	st := testenv.Store(t)
	ProtectLedger(st.Client)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	dep := c.Department.Create().SetCode("PHA").SetName("Pharmacy").SaveX(sys)
	as := func(kind staff.Kind, role string) (context.Context, string) {
		m := c.Staff.Create().SetGivenName("G").SetFamilyName(string(kind)).SetKind(kind).SetDepartment(dep).SaveX(sys)
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + m.ID[4:], Username: role, Roles: []string{role}, StaffID: m.ID}), m.ID
	}
	f := &fixture{t: t, st: st, client: c, system: sys, now: time.Date(2030, 3, 10, 9, 0, 0, 0, time.UTC)}
	f.svc = NewService(st, time.UTC)
	f.svc.now = func() time.Time { return f.now }
	f.pharmacist, _ = as(staff.KindPHARMACIST, "pharmacist")
	f.pharmacist2, _ = as(staff.KindPHARMACIST, "pharmacist")
	f.technician, _ = as(staff.KindPHARMACY_TECHNICIAN, "pharmacy_technician")
	f.nurse, _ = as(staff.KindNURSE, "nurse")
	f.doctor, f.doctorID = as(staff.KindDOCTOR, "doctor")
	ward := c.Ward.Create().SetDepartment(dep).SetCode("W1").SetName("Ward 1").SaveX(sys)
	f.main = c.StockLocation.Create().SetCode("MAIN").SetName("Main store").SetKind(stocklocation.KindMAIN_STORE).SaveX(sys)
	f.pharmacy = c.StockLocation.Create().SetCode("PHA").SetName("Pharmacy").SetKind(stocklocation.KindPHARMACY).SaveX(sys)
	f.ward = c.StockLocation.Create().SetCode("W1").SetName("Ward 1 store").SetKind(stocklocation.KindWARD_STORE).SetWardID(ward.ID).SaveX(sys)
	return f
}

// drug adds a formulary item; schedule makes it controlled.
func (f *fixture) drug(code string, reorder int, schedule *drug.ControlledSchedule) *ent.Drug {
	return f.client.Drug.Create().SetCode(code).SetGenericName(code).SetUnitOfIssue("tablet").
		SetReorderLevel(reorder).SetNillableControlledSchedule(schedule).SaveX(f.system)
}

// patient adds a patient with a unique MRN.
func (f *fixture) patient() *ent.Patient {
	f.seq++
	return f.client.Patient.Create().SetMrn(fmt.Sprintf("7%08d", f.seq)).SetGivenName("P").SetFamilyName(fmt.Sprint(f.seq)).
		SetBirthDate(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexFEMALE).SaveX(f.system)
}

// order writes an ACTIVE order of quantity units of d (nil: free text).
func (f *fixture) order(p *ent.Patient, d *ent.Drug, quantity int) *ent.MedicationOrder {
	o := f.client.MedicationOrder.Create().SetPatientID(p.ID).SetDrug("Something").SetDoseAmount(1).SetDoseUnit("tablet").
		SetRoute(medicationorder.RouteORAL).SetFrequency("TID").SetQuantity(quantity).SetPrescriberID(f.doctorID)
	if d != nil {
		o.SetDrugID(d.ID).SetDrug(d.GenericName)
	}
	return o.SaveX(f.system)
}

// receive books quantity units of lot, expiring days after the fixture's
// today, into loc.
func (f *fixture) receive(loc *ent.StockLocation, d *ent.Drug, lot string, days, quantity int, cost int64) *ent.StockBatch {
	f.t.Helper()
	b, err := f.svc.Receive(f.pharmacist, ReceiveStockInput{LocationID: loc.ID, DrugID: d.ID, LotNumber: lot,
		ExpiryDate: f.today().AddDate(0, 0, days), Quantity: quantity, UnitCost: cost})
	if err != nil {
		f.t.Fatalf("receive %s: %v", lot, err)
	}
	return b
}

func (f *fixture) today() time.Time { return f.svc.today() }

func (f *fixture) batch(id string) *ent.StockBatch {
	f.t.Helper()
	return f.client.StockBatch.GetX(f.system, id)
}

// ledgerAgrees fails the test unless every batch's quantity on hand is its
// ledger's sum and not negative.
func (f *fixture) ledgerAgrees() {
	f.t.Helper()
	batches := f.client.StockBatch.Query().AllX(f.system)
	if len(batches) == 0 {
		f.t.Fatal("no batches to check")
	}
	for _, b := range batches {
		qs := f.client.StockMovement.Query().Where(stockmovement.BatchID(b.ID)).Select(stockmovement.FieldQuantity).IntsX(f.system)
		sum := 0
		for _, q := range qs {
			sum += q
		}
		if sum != b.QuantityOnHand || b.QuantityOnHand < 0 {
			f.t.Fatalf("batch %s (lot %s): on hand %d, ledger sum %d", b.ID, b.LotNumber, b.QuantityOnHand, sum)
		}
	}
}

// events returns the payloads recorded on topic, oldest first, with their types.
func (f *fixture) events(topic string) (types []string, payloads []json.RawMessage) {
	rows := f.client.OutboxEvent.Query().Where(outboxevent.Topic(topic)).Order(ent.Asc(outboxevent.FieldID)).AllX(f.system)
	for _, r := range rows {
		types = append(types, r.Type)
		payloads = append(payloads, json.RawMessage(r.Payload))
	}
	return types, payloads
}

func (f *fixture) movements(kind stockmovement.Kind) int {
	return f.client.StockMovement.Query().Where(stockmovement.KindEQ(kind)).CountX(f.system)
}

func (f *fixture) batchesOf(d *ent.Drug, loc *ent.StockLocation) []*ent.StockBatch {
	return f.client.StockBatch.Query().Where(stockbatch.DrugID(d.ID), stockbatch.LocationID(loc.ID)).
		Order(ent.Asc(stockbatch.FieldExpiryDate)).AllX(f.system)
}

// wantCode fails unless err is an apperr of code (naming field, if given).
func wantCode(t *testing.T, err error, code apperr.Code, field string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok {
		t.Fatalf("want %s, got %v", code, err)
	}
	if e.Code != code || (field != "" && e.Field != field) {
		t.Fatalf("want %s on %q, got %s on %q: %v", code, field, e.Code, e.Field, e)
	}
}

func ptr[T any](v T) *T { return &v }
