package charges

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/charge"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/stocklocation"
	"github.com/hmis-dev/hmis/ent/tariff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/ehr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/ledger"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fixture is a small hospital with a clerk, a department with a ward, and
// a broker its events go through.
type fixture struct {
	t             *testing.T
	st            *store.Store
	svc           *Service
	c             *ent.Client
	sys           context.Context
	clerk, doctor context.Context
	doctorID      string
	dep           *ent.Department
	ward, ward2   *ent.Ward
	broker        *events.MemoryBroker
	relay         *events.Relay
	now           time.Time
	seq           int
}

func setup(t *testing.T) *fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	f := &fixture{t: t, st: st, c: c, sys: sys, now: time.Date(2030, 3, 10, 9, 0, 0, 0, time.UTC)}
	if err := ledger.Seed(sys, c); err != nil {
		t.Fatal(err)
	}
	f.dep = c.Department.Create().SetCode("MED").SetName("Medicine").SaveX(sys)
	as := func(kind staff.Kind, role string) (context.Context, string) {
		m := c.Staff.Create().SetGivenName("G").SetFamilyName(string(kind)).SetKind(kind).SetDepartment(f.dep).SaveX(sys)
		return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + m.ID[4:], Username: role, Roles: []string{role}, StaffID: m.ID}), m.ID
	}
	f.clerk, _ = as(staff.KindBILLING_CLERK, "billing_clerk")
	f.doctor, f.doctorID = as(staff.KindDOCTOR, "doctor")
	f.ward = c.Ward.Create().SetDepartment(f.dep).SetCode("W1").SetName("General").SaveX(sys)
	f.ward2 = c.Ward.Create().SetDepartment(f.dep).SetCode("ICU").SetName("Intensive care").SaveX(sys)
	f.broker = events.NewMemoryBroker(0)
	t.Cleanup(func() { f.broker.Close() })
	f.relay = events.NewRelay(st, f.broker, quiet)
	f.svc = f.service()
	return f
}

// service is a fresh Service over the same database, as a restarted
// process would build it.
func (f *fixture) service() *Service {
	s := NewService(f.st, time.UTC, DefaultMarkupPercent, ledger.NewService(f.st, time.UTC))
	s.now = func() time.Time { return f.now }
	return s
}

func (f *fixture) patient() *ent.Patient {
	f.seq++
	return f.c.Patient.Create().SetMrn(fmt.Sprintf("8%08d", f.seq)).SetGivenName("P").SetFamilyName(fmt.Sprint(f.seq)).
		SetBirthDate(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexMALE).SaveX(f.sys)
}

// price puts a default price on the list, effective from long ago.
func (f *fixture) price(code string, cat tariff.Category, ref string, price int64) *ent.Tariff {
	return f.c.Tariff.Create().SetCode(code).SetName(code).SetCategory(cat).SetRefID(ref).SetPrice(price).
		SetEffectiveFrom(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)).SaveX(f.sys)
}

// record commits an event as the module would, in a transaction of its own.
func (f *fixture) record(topic, typ string, payload any) {
	f.t.Helper()
	if _, err := store.Tx(f.sys, f.st, func(ctx context.Context, tx *ent.Tx) (struct{}, error) {
		return struct{}{}, events.Record(ctx, tx, topic, typ, payload)
	}); err != nil {
		f.t.Fatal(err)
	}
}

// publish runs the relay: the committed events reach the broker.
func (f *fixture) publish() {
	f.t.Helper()
	if err := f.relay.Flush(f.sys); err != nil {
		f.t.Fatal(err)
	}
}

// history returns every event the broker retains on topic.
func (f *fixture) history(topic string) []events.Event {
	f.t.Helper()
	ctx, cancel := context.WithCancel(f.sys)
	defer cancel()
	ch, err := f.broker.Subscribe(ctx, topic, fromTheStart)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []events.Event
	for {
		select {
		case ev := <-ch:
			out = append(out, ev)
		case <-time.After(100 * time.Millisecond):
			return out
		}
	}
}

func (f *fixture) charges(p *ent.Patient) []*ent.Charge {
	return f.c.Charge.Query().Where(charge.PatientID(p.ID)).Order(ent.Asc(charge.FieldServiceAt), ent.Asc(charge.FieldDay)).AllX(f.sys)
}

// finishedEncounter writes a finished visit and its event.
func (f *fixture) finishedEncounter(p *ent.Patient) *ent.Encounter {
	e := f.c.Encounter.Create().SetPatient(p).SetType(encounter.TypeOUTPATIENT).SetStatus(encounter.StatusFINISHED).
		SetDepartmentID(f.dep.ID).SetStartedAt(f.now.Add(-time.Hour)).SetEndedAt(f.now).SaveX(f.sys)
	f.record(ehr.EncountersTopic, ehr.EncounterFinished, ehr.EncounterEvent{EncounterID: e.ID, PatientID: p.ID, DepartmentID: f.dep.ID, Type: "OUTPATIENT"})
	return e
}

func wantCode(t *testing.T, err error, code apperr.Code, field string) {
	t.Helper()
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code != code || (field != "" && ae.Field != field) {
		t.Fatalf("got %v, want %s on %q", err, code, field)
	}
}

func TestPriceListIsDatedAndPerPayer(t *testing.T) {
	f := setup(t)
	in := SetTariffPriceInput{Code: "PROC-DRESS", Name: "Wound dressing", Category: tariff.CategoryPROCEDURE, Price: 1500}
	first, err := f.svc.SetPrice(f.clerk, in)
	if err != nil {
		t.Fatal(err)
	}
	payerA := f.c.Payer.Create().SetCode("A").SetName("A").SetKind(payer.KindINSURER).SaveX(f.sys).ID
	payerB := f.c.Payer.Create().SetCode("B").SetName("B").SetKind(payer.KindINSURER).SaveX(f.sys).ID
	in.PayerID, in.Price = &payerA, 1200
	if _, err := f.svc.SetPrice(f.clerk, in); err != nil {
		t.Fatal(err)
	}
	later := f.now.Add(48 * time.Hour)
	in.PayerID, in.Price, in.EffectiveFrom = nil, 1800, &later
	if _, err := f.svc.SetPrice(f.clerk, in); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		payer string
		at    time.Time
		want  int64
	}{
		{"", f.now, 1500},
		{payerA, f.now, 1200},
		{payerB, f.now, 1500}, // no price of its own: the default
		{"", later, 1800},
		{payerA, later, 1200}, // the payer's own price is still in force
	} {
		got, err := Price(f.sys, f.c.Tariff, "PROC-DRESS", c.payer, c.at)
		if err != nil || got.Price != c.want {
			t.Errorf("price for %q at %s = %v, %v; want %d", c.payer, c.at, got, err, c.want)
		}
	}
	if _, err := Price(f.sys, f.c.Tariff, "PROC-DRESS", "", f.now.Add(-time.Hour)); !errors.Is(err, errNoPrice) {
		t.Errorf("before the first price: %v, want no price", err)
	}
	// The first row is untouched: a change is a new row.
	if again := f.c.Tariff.GetX(f.sys, first.ID); again.Price != 1500 {
		t.Errorf("the first row was changed to %d", again.Price)
	}
	if n := f.c.Tariff.Query().CountX(f.sys); n != 3 {
		t.Errorf("%d rows, want 3", n)
	}

	// Bad input names its field and writes nothing.
	past := f.now.Add(-24 * time.Hour)
	for _, c := range []struct {
		in    SetTariffPriceInput
		field string
	}{
		{SetTariffPriceInput{Code: "X", Name: "X", Category: tariff.CategoryITEM, Price: -1}, "input.price"},
		// Times a quantity it would wrap around int64 into a negative charge.
		{SetTariffPriceInput{Code: "X", Name: "X", Category: tariff.CategoryITEM, Price: MaxPrice + 1}, "input.price"},
		{SetTariffPriceInput{Code: " ", Name: "X", Category: tariff.CategoryITEM}, "input.code"},
		{SetTariffPriceInput{Code: "X", Name: "X", Category: "NOPE"}, "input.category"},
		{SetTariffPriceInput{Code: "X", Name: "X", Category: tariff.CategoryITEM, EffectiveFrom: &past}, "input.effectiveFrom"},
		{SetTariffPriceInput{Code: "PROC-DRESS", Name: "X", Category: tariff.CategoryITEM, Price: 1}, "input.category"},
		{SetTariffPriceInput{Code: "X", Name: "X", Category: tariff.CategoryITEM, PayerID: ptr(payerA + "x")}, "input.payerId"},
		{SetTariffPriceInput{Code: "X", Name: "X", Category: tariff.CategoryITEM, PayerID: ptr("pay_01M94RRVZDF1AJB8WE44JG6GRR")}, "input.payerId"},
		{SetTariffPriceInput{Code: "X", Name: "X", Category: tariff.CategoryCONSULTATION, RefID: ptr("dep_01M94RRVZDF1AJB8WE44JG6GRR")}, "input.refId"},
		{SetTariffPriceInput{Code: "X", Name: "X", Category: tariff.CategoryPROCEDURE, RefID: &f.dep.ID}, "input.refId"},
	} {
		_, err := f.svc.SetPrice(f.clerk, c.in)
		wantCode(t, err, apperr.BadUserInput, c.field)
	}
	if n := f.c.Tariff.Query().CountX(f.sys); n != 3 {
		t.Errorf("bad input wrote rows: %d", n)
	}
	// Two prices of one code and payer from the same moment would leave
	// which one is in force to chance.
	_, err = f.svc.SetPrice(f.clerk, SetTariffPriceInput{Code: "PROC-DRESS", Name: "Wound dressing", Category: tariff.CategoryPROCEDURE, Price: 1900, EffectiveFrom: &later})
	wantCode(t, err, apperr.Conflict, "")
	// Only the billing staff keep the list.
	_, err = f.svc.SetPrice(f.doctor, SetTariffPriceInput{Code: "Y", Name: "Y", Category: tariff.CategoryITEM, Price: 1})
	wantCode(t, err, apperr.Forbidden, "")
}

func TestSeedPricesWhatExists(t *testing.T) {
	f := setup(t)
	test := f.c.LabTest.Create().SetCode("2345-7").SetName("Glucose").SetSpecimenType(labtest.SpecimenTypeSERUM).
		SetResultKind(labtest.ResultKindNUMERIC).SetPrice(2500).SetTurnaroundMinutes(60).SaveX(f.sys)
	d := f.c.Drug.Create().SetCode("AMOX500").SetGenericName("Amoxicillin 500 mg").SetUnitOfIssue("capsule").SaveX(f.sys)
	loc := f.c.StockLocation.Create().SetCode("PHA").SetName("Pharmacy").SetKind(stocklocation.KindPHARMACY).SaveX(f.sys)
	f.c.StockBatch.Create().SetDrugID(d.ID).SetLocationID(loc.ID).SetLotNumber("L1").SetExpiryDate(f.now.AddDate(1, 0, 0)).
		SetQuantityOnHand(100).SetUnitCost(37).SaveX(f.sys)
	n, err := f.svc.Seed(f.clerk, SeedOptions{ConsultationFee: 5000, BedDayFee: 20000})
	if err != nil {
		t.Fatal(err)
	}
	// One lab test, one department, two wards, one stocked drug.
	if n != 5 {
		t.Errorf("seeded %d, want 5", n)
	}
	for _, c := range []struct {
		cat  tariff.Category
		ref  string
		want int64
	}{
		{tariff.CategoryLAB, test.ID, 2500},
		{tariff.CategoryCONSULTATION, f.dep.ID, 5000},
		{tariff.CategoryBED_DAY, f.ward.ID, 20000},
		{tariff.CategoryBED_DAY, f.ward2.ID, 20000},
		{tariff.CategoryDRUG, d.ID, 46}, // 37 × 1.25 = 46.25, rounded
	} {
		got, err := priceOf(f.sys, f.c.Tariff, c.cat, c.ref, "", f.now)
		if err != nil || got.Price != c.want {
			t.Errorf("%s %s: %v, %v; want %d", c.cat, c.ref, got, err, c.want)
		}
	}
	if n, err := f.svc.Seed(f.clerk, SeedOptions{ConsultationFee: 1, BedDayFee: 1}); err != nil || n != 0 {
		t.Errorf("seeding again: %d, %v; want nothing added", n, err)
	}
	_, err = f.svc.Seed(f.clerk, SeedOptions{ConsultationFee: -1})
	wantCode(t, err, apperr.BadUserInput, "consultationFee")
}

func TestMarkupRoundsHalfUp(t *testing.T) {
	for _, c := range []struct{ cost, pct, want int64 }{
		{100, 25, 125}, {37, 25, 46}, {2, 25, 3}, {1, 50, 2}, {0, 25, 0}, {999, 0, 999},
	} {
		if got := withMarkup(c.cost, c.pct); got != c.want {
			t.Errorf("withMarkup(%d, %d) = %d, want %d", c.cost, c.pct, got, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
