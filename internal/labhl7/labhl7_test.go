package labhl7

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/instrumentmessage"
	"github.com/hmis-dev/hmis/ent/labinstrument"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/outboxevent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/hl7"
	"github.com/hmis-dev/hmis/internal/lab"
	"github.com/hmis-dev/hmis/internal/store"
	"github.com/hmis-dev/hmis/internal/testenv"
)

type fixture struct {
	svc            *Service
	store          *store.Store
	labs           *lab.Service
	client         *ent.Client
	sys            context.Context
	doctor, nurse  *ent.Staff
	tech, tech2    *ent.Staff
	woman          *ent.Patient
	sysmex, cobas  *ent.LabInstrument
	wbc, hb, gluc  *ent.LabTest
	bloodAccession string // WBC and Hb, received
	serumAccession string // glucose, received
	// How the instruments post over HTTP: with their keys.
	viaSysmex, viaCobas Origin
}

func (f *fixture) as(m *ent.Staff) context.Context {
	return auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_" + m.GivenName, Roles: []string{"staff"}, StaffID: m.ID})
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	c := st.Client
	if err := lab.SeedCatalog(sys, c); err != nil {
		t.Fatal(err)
	}
	f := &fixture{client: c, sys: sys, store: st}
	f.labs = lab.NewService(st, time.UTC)
	f.svc = NewService(st, f.labs, nil)
	dep := c.Department.Create().SetCode("LAB").SetName("Laboratory").SaveX(sys)
	person := func(given string, kind staff.Kind) *ent.Staff {
		return c.Staff.Create().SetGivenName(given).SetFamilyName("Staff").SetKind(kind).SetDepartment(dep).SaveX(sys)
	}
	f.doctor, f.nurse = person("Doc", staff.KindDOCTOR), person("Nurse", staff.KindNURSE)
	f.tech, f.tech2 = person("Tech", staff.KindLAB_TECHNICIAN), person("Tech2", staff.KindLAB_TECHNICIAN)
	f.woman = c.Patient.Create().SetMrn("300000001").SetGivenName("Ada").SetFamilyName("Lovelace").
		SetBirthDate(time.Date(1980, 5, 17, 0, 0, 0, 0, time.UTC)).SetSex(patient.SexFEMALE).SaveX(sys)
	test := func(code string) *ent.LabTest { return c.LabTest.Query().Where(labtest.Code(code)).OnlyX(sys) }
	f.wbc, f.hb, f.gluc = test("6690-2"), test("718-7"), test("14749-6")
	f.bloodAccession = f.specimen(t, true, f.wbc, f.hb)
	f.serumAccession = f.specimen(t, true, f.gluc)

	sysmex := labinstrument.DialectSYSMEX
	var err error
	f.sysmex, err = f.svc.Register(sys, RegisterInput{Name: "Hematology XN", SendingApplication: "XN-550", SendingFacility: ptr("LAB1"),
		Dialect: &sysmex, CodeMap: []string{"WBC=6690-2", "HGB=718-7"}})
	if err != nil {
		t.Fatal(err)
	}
	cobas := labinstrument.DialectCOBAS
	f.cobas, err = f.svc.Register(sys, RegisterInput{Name: "Chemistry c311", SendingApplication: "cobas", SendingFacility: ptr("CHEM"),
		Dialect: &cobas, AllowedAddress: ptr("127.0.0.0/8")})
	if err != nil {
		t.Fatal(err)
	}
	// Keys are the auth service's (tested through the API); rows do here.
	key := func(name string) string {
		return c.APIKey.Create().SetName(name).SetLookup(name).SetSecretHash("-").SetRole(Role).SetCreatedBy("test").SaveX(sys).ID
	}
	f.sysmex = c.LabInstrument.UpdateOne(f.sysmex).SetAPIKeyID(key("sysmex")).SaveX(sys)
	f.cobas = c.LabInstrument.UpdateOne(f.cobas).SetAPIKeyID(key("cobas")).SaveX(sys)
	f.viaSysmex = Origin{Transport: instrumentmessage.TransportHTTP, APIKeyID: *f.sysmex.APIKeyID}
	f.viaCobas = Origin{Transport: instrumentmessage.TransportHTTP, APIKeyID: *f.cobas.APIKeyID}
	return f
}

func ptr[T any](v T) *T { return &v }

// specimen orders tests for the woman, collects them on one specimen and,
// if received, receives it; it returns the accession number.
func (f *fixture) specimen(t *testing.T, received bool, tests ...*ent.LabTest) string {
	t.Helper()
	var ids []string
	for _, lt := range tests {
		ids = append(ids, lt.ID)
	}
	o, err := f.labs.Order(f.as(f.doctor), lab.OrderLabTestsInput{PatientID: f.woman.ID, TestIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	items := o.QueryItems().IDsX(f.sys)
	s, err := f.labs.Collect(f.as(f.nurse), lab.CollectLabSpecimenInput{ItemIDs: items})
	if err != nil {
		t.Fatal(err)
	}
	if received {
		if _, err := f.labs.Receive(f.as(f.tech), s.ID); err != nil {
			t.Fatal(err)
		}
	}
	return s.AccessionNumber
}

func sysmexORU(control, accession, wbc, wbcUnit string) string {
	return "MSH|^~\\&|XN-550|LAB1|HMIS|HOSP|20261206101500||ORU^R01|" + control + "|P|2.3.1\r" +
		"PID|1||||^^||U\r" +
		"OBR|1||" + accession + "|^^^^CBC|||20261206100000\r" +
		"OBX|1|NM|^^^WBC^1||" + wbc + "|" + wbcUnit + "|3.5-10.5|N|||F\r" +
		"OBX|2|NM|^^^HGB^1||13.9|g/dL|||||F\r"
}

func cobasORU(control, accession, code, value, unit string) string {
	return "MSH|^~\\&|cobas|CHEM|HMIS|HOSP|20261206101500+0100||ORU^R01^ORU_R01|" + control + "|P|2.5.1\r\n" +
		"PID|1||300000001\r\n" +
		"OBR|1|ORD-7||" + code + "^Glucose^LN\r\n" +
		"SPM|1|" + accession + "&LAB||SER\r\n" +
		"OBX|1|NM|" + code + "^Glucose^LN||" + value + "|" + unit + "|3.9-5.5|N|||F\r\n" +
		"NTE|1||lipaemic \\T\\ icteric\\E\\index \\F\\ 2\r\n"
}

func (f *fixture) receive(t *testing.T, raw string, o Origin) *Outcome {
	t.Helper()
	out, err := f.svc.Receive(context.Background(), raw, o)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (f *fixture) results(t *testing.T) []*ent.LabResult {
	t.Helper()
	return f.client.LabResult.Query().Order(ent.Asc(labresult.FieldEnteredAt), ent.Asc(labresult.FieldID)).AllX(f.sys)
}

func ackOf(t *testing.T, ack string) (code, control, reason string) {
	t.Helper()
	m, err := hl7.Parse(ack)
	if err != nil {
		t.Fatalf("ack %q: %v", ack, err)
	}
	for _, s := range m.Segments {
		switch s.Name {
		case "MSA":
			code, control = s.Get(1, 1), s.Get(2, 1)
		case "ERR":
			reason = s.Get(8, 1)
		}
	}
	return
}

func TestSysmexResultsAreEnteredThenVerifiedByATechnician(t *testing.T) {
	f := newFixture(t)
	out := f.receive(t, sysmexORU("MSG1", f.bloodAccession, "12.34", "10*3/uL"), f.viaSysmex)
	if code, control, _ := ackOf(t, out.Ack); code != "AA" || control != "MSG1" || out.Duplicate {
		t.Fatalf("ack %q", out.Ack)
	}
	if !strings.Contains(out.Ack, "|HMIS|HOSP|XN-550|LAB1|") {
		t.Fatalf("sender and receiver not swapped: %q", out.Ack)
	}
	rs := f.results(t)
	if len(rs) != 2 {
		t.Fatalf("%d results", len(rs))
	}
	byTest := map[string]*ent.LabResult{}
	for _, r := range rs {
		item := r.QueryItem().OnlyX(f.sys)
		byTest[item.TestID] = r
		if r.Status != labresult.StatusENTERED || r.EnteredByID != nil || r.InstrumentID == nil || *r.InstrumentID != f.sysmex.ID ||
			r.PatientID != f.woman.ID {
			t.Fatalf("result %+v", r)
		}
	}
	w := byTest[f.wbc.ID]
	// The lab's own interpretation: rounded to the test's decimals and
	// flagged against the adult range, as a manual entry would be.
	if w == nil || *w.NumericValue != 12.3 || *w.Unit != "10*3/uL" || *w.Flag != labresult.FlagHIGH || *w.ReferenceHigh != 11.0 {
		t.Fatalf("WBC %+v", w)
	}
	msg := f.client.InstrumentMessage.GetX(f.sys, out.MessageID)
	if msg.Status != instrumentmessage.StatusPROCESSED || *msg.ControlID != "MSG1" || msg.Ack != out.Ack {
		t.Fatalf("message %+v", msg)
	}
	// No person entered it, so any technician may verify it.
	v, err := f.labs.Verify(f.as(f.tech), w.ID)
	if err != nil || v.Status != labresult.StatusVERIFIED || *v.VerifiedByID != f.tech.ID {
		t.Fatalf("verify: %+v, %v", v, err)
	}
}

func TestCobasDialectWithSpecimenSegmentAndEscapes(t *testing.T) {
	f := newFixture(t)
	out := f.receive(t, cobasORU("c-1", f.serumAccession, "14749-6", "5.4", "mmol/L"), f.viaCobas)
	if code, _, reason := ackOf(t, out.Ack); code != "AA" {
		t.Fatalf("ack %s: %s", code, reason)
	}
	rs := f.results(t)
	if len(rs) != 1 || *rs[0].NumericValue != 5.4 || *rs[0].Flag != labresult.FlagNORMAL ||
		rs[0].Comment == nil || *rs[0].Comment != "lipaemic & icteric\\index | 2" {
		t.Fatalf("results %+v", rs)
	}
}

// Whatever goes wrong, nothing of the message is entered, it is kept with
// why, and the instrument is told.
func TestRefusedMessagesChangeNothingAndAreKept(t *testing.T) {
	f := newFixture(t)
	unreceived := f.specimen(t, false, f.gluc)
	cases := []struct {
		name   string
		raw    string
		origin Origin
		code   string
		status instrumentmessage.Status
		reason string
	}{
		{"malformed", "MSH|^~\\&|XN-550|LAB1|HMIS|HOSP|x||ORU^R01|M1|P|2.3.1\rOBX|1|NM|^^^WBC^1||1|10*3/uL\r", f.viaSysmex,
			"AR", instrumentmessage.StatusMALFORMED, "OBX before any OBR"},
		{"unreadable", "MSH|^~\\&|XN-550\rOBX|1|ST|X||a\\Q\\\r", f.viaSysmex, "AR", instrumentmessage.StatusMALFORMED, "not an escape sequence"},
		{"not ORU", strings.Replace(sysmexORU("M2", f.bloodAccession, "5", "10*3/uL"), "ORU^R01", "ADT^A01", 1), f.viaSysmex,
			"AR", instrumentmessage.StatusMALFORMED, "only ORU^R01"},
		{"another sender", strings.Replace(sysmexORU("M3", f.bloodAccession, "5", "10*3/uL"), "XN-550", "XN-9000", 1), f.viaSysmex,
			"AR", instrumentmessage.StatusMALFORMED, "do not name the instrument"},
		{"unknown accession", sysmexORU("M4", "NOPE-1", "5", "10*3/uL"), f.viaSysmex,
			"AE", instrumentmessage.StatusUNMATCHED, "no specimen has the accession number \"NOPE-1\""},
		// The first OBX (WBC) matches; the second's code is unknown: the
		// WBC must not be entered either.
		{"unknown test code", strings.Replace(sysmexORU("M5", f.bloodAccession, "5", "10*3/uL"), "^^^HGB^1", "^^^MCV^1", 1), f.viaSysmex,
			"AE", instrumentmessage.StatusUNMATCHED, "no lab test has the code \"MCV\""},
		{"wrong units", sysmexORU("M6", f.bloodAccession, "5000", "/uL"), f.viaSysmex,
			"AE", instrumentmessage.StatusUNMATCHED, "unit \"/uL\" is not the test's unit \"10*3/uL\""},
		{"not a number", sysmexORU("M7", f.bloodAccession, ">30", "10*3/uL"), f.viaSysmex,
			"AE", instrumentmessage.StatusUNMATCHED, "is not a number"},
		{"test not ordered on the specimen", cobasORU("c-2", f.bloodAccession, "14749-6", "5.1", "mmol/L"), f.viaCobas,
			"AE", instrumentmessage.StatusUNMATCHED, "has no 14749-6"},
		{"specimen not received", cobasORU("c-3", unreceived, "14749-6", "5.1", "mmol/L"), f.viaCobas,
			"AE", instrumentmessage.StatusUNMATCHED, "COLLECTED"},
	}
	for _, c := range cases {
		out := f.receive(t, c.raw, c.origin)
		code, _, reason := ackOf(t, out.Ack)
		if code != c.code || !strings.Contains(reason, c.reason) {
			t.Errorf("%s: %s %q, want %s with %q", c.name, code, reason, c.code, c.reason)
			continue
		}
		msg := f.client.InstrumentMessage.GetX(f.sys, out.MessageID)
		if msg.Status != c.status || msg.Raw != c.raw || msg.Error == nil || !strings.Contains(*msg.Error, c.reason) {
			t.Errorf("%s: kept %+v", c.name, msg)
		}
	}
	if n := f.client.LabResult.Query().CountX(f.sys); n != 0 {
		t.Fatalf("%d results entered", n)
	}
	if n := f.svc.Unmatched(f.client).CountX(f.sys); n != len(cases) {
		t.Fatalf("%d messages waiting, want %d", n, len(cases))
	}
	// A key bound to no instrument, or an MLLP sender nobody registered:
	// refused and not kept, as there is nobody to resolve it for.
	for _, o := range []Origin{{Transport: instrumentmessage.TransportHTTP, APIKeyID: "key_other"},
		{Transport: instrumentmessage.TransportMLLP, Addr: netip.MustParseAddr("127.0.0.1")}} {
		raw := strings.Replace(sysmexORU("X1", f.bloodAccession, "5", "10*3/uL"), "XN-550", "STRANGER", 1)
		if out := f.receive(t, raw, o); out.Code != hl7.Reject || out.MessageID != "" {
			t.Fatalf("stranger %+v", out)
		}
	}
}

func TestDuplicateIsAnsweredAgainAndEnteredOnce(t *testing.T) {
	f := newFixture(t)
	raw := sysmexORU("DUP1", f.bloodAccession, "6.0", "10*3/uL")
	first := f.receive(t, raw, f.viaSysmex)
	again := f.receive(t, raw, f.viaSysmex)
	if !again.Duplicate || again.Ack != first.Ack || again.MessageID != first.MessageID {
		t.Fatalf("again %+v, first %+v", again, first)
	}
	// An unmatched one is a duplicate too: the same AE, still nothing.
	bad := sysmexORU("DUP2", "NOPE", "6.0", "10*3/uL")
	a, b := f.receive(t, bad, f.viaSysmex), f.receive(t, bad, f.viaSysmex)
	if a.Code != hl7.Error || b.Ack != a.Ack || !b.Duplicate {
		t.Fatalf("unmatched duplicate %+v %+v", a, b)
	}
	if n := len(f.results(t)); n != 2 {
		t.Fatalf("%d results", n)
	}
}

// Copies of one message racing: one enters the results, every copy gets
// that message's acknowledgement, and one row is kept.
func TestRacingDuplicates(t *testing.T) {
	f := newFixture(t)
	raw := sysmexORU("RACE1", f.bloodAccession, "6.0", "10*3/uL")
	const n = 6
	outs := make([]*Outcome, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			outs[i], errs[i] = f.svc.Receive(context.Background(), raw, f.viaSysmex)
		}()
	}
	close(start)
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("copy %d: %v", i, errs[i])
		}
		if outs[i].Ack != outs[0].Ack || outs[i].Code != hl7.Accept {
			t.Fatalf("copy %d answered %q, copy 0 %q", i, outs[i].Ack, outs[0].Ack)
		}
		if !outs[i].Duplicate {
			fresh++
		}
	}
	if fresh != 1 {
		t.Fatalf("%d copies processed", fresh)
	}
	if got := len(f.results(t)); got != 2 {
		t.Fatalf("%d results", got)
	}
	if got := f.client.InstrumentMessage.Query().CountX(f.sys); got != 1 {
		t.Fatalf("%d messages kept", got)
	}
}

// A critical value from an analyzer is released, and announced, only when
// a technician verifies it, as a manual entry is.
func TestCriticalValueGoesOutOnVerification(t *testing.T) {
	f := newFixture(t)
	out := f.receive(t, sysmexORU("CRIT1", f.bloodAccession, "1.5", "10*3/uL"), f.viaSysmex)
	if out.Code != hl7.Accept {
		t.Fatalf("ack %q", out.Ack)
	}
	critical := func() int {
		return f.client.OutboxEvent.Query().Where(outboxevent.Topic(lab.CriticalTopic)).CountX(f.sys)
	}
	var wbc *ent.LabResult
	for _, r := range f.results(t) {
		if r.Critical {
			wbc = r
		}
	}
	if wbc == nil || *wbc.Flag != labresult.FlagCRITICAL_LOW || critical() != 0 {
		t.Fatalf("critical result %+v, %d events before verification", wbc, critical())
	}
	if _, err := f.labs.Verify(f.as(f.tech2), wbc.ID); err != nil {
		t.Fatal(err)
	}
	if critical() != 1 {
		t.Fatalf("%d critical events after verification", critical())
	}
}

// The four-eyes rule still holds for manual entries.
func TestManualEntryStillNeedsASecondPerson(t *testing.T) {
	f := newFixture(t)
	acc := f.specimen(t, true, f.gluc)
	item := f.client.LabSpecimen.Query().AllX(f.sys)
	var itemID string
	for _, s := range item {
		if s.AccessionNumber == acc {
			itemID = s.QueryItems().OnlyIDX(f.sys)
		}
	}
	r, err := f.labs.Enter(f.as(f.tech), itemID, lab.EnterLabResultInput{NumericValue: ptr(5.0)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.labs.Verify(f.as(f.tech), r.ID); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("self-verification: %v", err)
	}
}

func TestResolveReprocessesOrDiscards(t *testing.T) {
	f := newFixture(t)
	unreceived := f.specimen(t, false, f.gluc)
	out := f.receive(t, cobasORU("c-9", unreceived, "14749-6", "5.1", "mmol/L"), f.viaCobas)
	if out.Code != hl7.Error {
		t.Fatalf("ack %q", out.Ack)
	}
	// Still not received: re-processing fails and changes nothing.
	if _, err := f.svc.Resolve(f.as(f.tech), out.MessageID, Reprocess, nil); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("reprocess too early: %v", err)
	}
	spec := f.client.LabSpecimen.Query().AllX(f.sys)
	for _, s := range spec {
		if s.AccessionNumber == unreceived {
			if _, err := f.labs.Receive(f.as(f.tech), s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	m, err := f.svc.Resolve(f.as(f.tech), out.MessageID, Reprocess, nil)
	if err != nil || m.Status != instrumentmessage.StatusRESOLVED || *m.ResolvedByID != f.tech.ID {
		t.Fatalf("reprocess: %+v, %v", m, err)
	}
	rs := f.results(t)
	if len(rs) != 1 || *rs[0].InstrumentID != f.cobas.ID || rs[0].Status != labresult.StatusENTERED {
		t.Fatalf("results %+v", rs)
	}
	if _, err := f.svc.Resolve(f.as(f.tech), out.MessageID, Discard, ptr("late")); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("resolve twice: %v", err)
	}

	bad := f.receive(t, sysmexORU("M-X", "NOPE", "5", "10*3/uL"), f.viaSysmex)
	if _, err := f.svc.Resolve(f.as(f.tech), bad.MessageID, Discard, nil); fieldOf(err) != "input.reason" {
		t.Fatalf("discard without reason: %v", err)
	}
	if _, err := f.svc.Resolve(f.as(f.doctor), bad.MessageID, Discard, ptr("x")); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a doctor resolves: %v", err)
	}
	m, err = f.svc.Resolve(f.as(f.tech2), bad.MessageID, Discard, ptr("test sample, not a patient's"))
	if err != nil || m.Status != instrumentmessage.StatusDISCARDED || *m.ResolutionNote != "test sample, not a patient's" {
		t.Fatalf("discard: %+v, %v", m, err)
	}
	if n := f.svc.Unmatched(f.client).CountX(f.sys); n != 0 {
		t.Fatalf("%d still waiting", n)
	}
}

func TestRegisterRefusesBadInput(t *testing.T) {
	f := newFixture(t)
	for field, in := range map[string]RegisterInput{
		"input.name":               {SendingApplication: "A"},
		"input.sendingApplication": {Name: "X"},
		"input.allowedAddress":     {Name: "X", SendingApplication: "A", AllowedAddress: ptr("lab vlan")},
		"input.codeMap":            {Name: "X", SendingApplication: "A", CodeMap: []string{"WBC"}},
	} {
		if _, err := f.svc.Register(f.sys, in); fieldOf(err) != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	if _, err := f.svc.Register(f.sys, RegisterInput{Name: "X", SendingApplication: "A", CodeMap: []string{"WBC=0000-0"}}); fieldOf(err) != "input.codeMap" {
		t.Errorf("unknown code: %v", err)
	}
	if _, err := f.svc.Register(f.sys, RegisterInput{Name: "Other", SendingApplication: "XN-550", SendingFacility: ptr("LAB1")}); apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("same sender twice: %v", err)
	}
}

// MLLP: framed in and out, the sender known by MSH-3/MSH-4 and address.
func TestMLLP(t *testing.T) {
	f := newFixture(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	keys, err := audit.ParseKeyring("test1:" + strings.Repeat("QUJD", 11))
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.NewTrail(f.store, audit.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close(context.Background()) })
	m := &MLLP{Service: f.svc, Trail: trail, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(raw string) string {
		t.Helper()
		if _, err := conn.Write([]byte("\x0b" + raw + "\x1c\x0d")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 0, 4096)
		one := make([]byte, 1)
		for {
			if _, err := conn.Read(one); err != nil {
				t.Fatalf("read: %v (so far %q)", err, buf)
			}
			buf = append(buf, one[0])
			if n := len(buf); n >= 2 && buf[n-2] == 0x1c && buf[n-1] == 0x0d {
				break
			}
		}
		if buf[0] != 0x0b {
			t.Fatalf("frame %q", buf)
		}
		return string(buf[1 : len(buf)-2])
	}
	ack := exchange(cobasORU("mllp-1", f.serumAccession, "14749-6", "4.2", "mmol/L"))
	if code, control, reason := ackOf(t, ack); code != "AA" || control != "mllp-1" {
		t.Fatalf("ack %s %s %s", code, control, reason)
	}
	// The sysmex may connect from anywhere, but the register says what it
	// sends: a cobas header from another instrument's address is refused.
	f.client.LabInstrument.UpdateOne(f.cobas).SetAllowedAddress("10.1.2.3").ExecX(f.sys)
	if code, _, reason := ackOf(t, exchange(cobasORU("mllp-2", f.serumAccession, "14749-6", "4.2", "mmol/L"))); code != "AR" ||
		!strings.Contains(reason, "does not connect from 127.0.0.1") {
		t.Fatalf("from the wrong address: %s %s", code, reason)
	}
	if n := len(f.results(t)); n != 1 {
		t.Fatalf("%d results", n)
	}
	kept := f.client.InstrumentMessage.Query().OnlyX(f.sys)
	if kept.Transport != instrumentmessage.TransportMLLP {
		t.Fatalf("kept %+v", kept)
	}
	// Shutdown: the idle connection is closed and Serve returns.
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("MLLP did not stop")
	}
}

func fieldOf(err error) string {
	if ae, ok := apperr.As(err); ok {
		return ae.Field
	}
	return ""
}
