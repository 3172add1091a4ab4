package lab

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/laborder"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
)

const wfUnknownItem = "lbi_01ARZ3NDEKTSV4RRFFQ69G5FAV"

func TestWorkflowOrder(t *testing.T) {
	f := newWorkflow(t)
	visit := f.client.Encounter.Create().SetPatient(f.woman).SetType(encounter.TypeOUTPATIENT).SetStartedAt(wfStart).SaveX(f.sys)
	o, err := f.svc.Order(f.as(f.doctor), OrderLabTestsInput{PatientID: f.woman.ID, EncounterID: &visit.ID,
		TestIDs: []string{f.potassium.ID}, PanelIDs: []string{f.lytes.ID}, Priority: new(laborder.PrioritySTAT),
		ClinicalNotes: new("  on furosemide ")})
	if err != nil {
		t.Fatal(err)
	}
	if o.PatientID != f.woman.ID || o.OrderedByID != f.doctor.ID || !o.OrderedAt.Equal(wfStart) || o.Priority != laborder.PrioritySTAT ||
		o.EncounterID == nil || *o.EncounterID != visit.ID || o.ClinicalNotes == nil || *o.ClinicalNotes != "on furosemide" {
		t.Fatalf("order: %+v", o)
	}
	// Potassium asked for alone and in the panel is run once, as asked alone.
	items := f.client.LabOrderItem.Query().Where(laborderitem.OrderID(o.ID)).AllX(f.sys)
	if len(items) != 2 {
		t.Fatalf("%d items, want 2 (potassium once, sodium)", len(items))
	}
	for _, it := range items {
		if it.Status != laborderitem.StatusORDERED || !it.OrderedAt.Equal(wfStart) || it.PatientID != f.woman.ID || it.SpecimenID != nil {
			t.Fatalf("item: %+v", it)
		}
		switch it.TestID {
		case f.potassium.ID:
			if it.PanelID != nil {
				t.Fatalf("potassium ordered alone carries panel %v", *it.PanelID)
			}
		case f.sodium.ID:
			if it.PanelID == nil || *it.PanelID != f.lytes.ID {
				t.Fatalf("sodium: %+v, want it from the panel", it)
			}
		default:
			t.Fatalf("unexpected test %s", it.TestID)
		}
	}
	plain := wfMust(f.svc.Order(f.as(f.doctor), OrderLabTestsInput{PatientID: f.man.ID, TestIDs: []string{f.sodium.ID}}))(t, "plain order")
	if plain.Priority != laborder.PriorityROUTINE || plain.EncounterID != nil || plain.ClinicalNotes != nil {
		t.Fatalf("defaults: %+v", plain)
	}
}

func TestWorkflowOrderBadInput(t *testing.T) {
	f := newWorkflow(t)
	merged := f.client.Patient.Create().SetMrn("200000099").SetGivenName("D").SetFamilyName("U").SetBirthDate(wfStart.AddDate(-30, 0, 0)).
		SetSex(patient.SexMALE).SetStatus(patient.StatusMERGED).SetMergedIntoID(f.man.ID).SaveX(f.sys)
	theirs := f.client.Encounter.Create().SetPatient(f.man).SetType(encounter.TypeOUTPATIENT).SetStartedAt(wfStart).SaveX(f.sys)
	ended := f.client.Encounter.Create().SetPatient(f.woman).SetType(encounter.TypeOUTPATIENT).SetStartedAt(wfStart.Add(-time.Hour)).
		SetStatus(encounter.StatusFINISHED).SetEndedAt(wfStart).SaveX(f.sys)
	k := []string{f.potassium.ID}
	for _, tc := range []struct {
		field string
		in    OrderLabTestsInput
	}{
		{"input.patientId", OrderLabTestsInput{PatientID: "nope", TestIDs: k}},
		{"input.patientId", OrderLabTestsInput{PatientID: f.potassium.ID, TestIDs: k}},
		{"input.patientId", OrderLabTestsInput{PatientID: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV", TestIDs: k}},
		{"input.patientId", OrderLabTestsInput{PatientID: merged.ID, TestIDs: k}},
		{"input.encounterId", OrderLabTestsInput{PatientID: f.woman.ID, EncounterID: new("enc_x"), TestIDs: k}},
		{"input.encounterId", OrderLabTestsInput{PatientID: f.woman.ID, EncounterID: new("enc_01ARZ3NDEKTSV4RRFFQ69G5FAV"), TestIDs: k}},
		{"input.encounterId", OrderLabTestsInput{PatientID: f.woman.ID, EncounterID: &theirs.ID, TestIDs: k}},
		{"input.encounterId", OrderLabTestsInput{PatientID: f.woman.ID, EncounterID: &ended.ID, TestIDs: k}},
		{"input.testIds", OrderLabTestsInput{PatientID: f.woman.ID}},
		{"input.testIds", OrderLabTestsInput{PatientID: f.woman.ID, TestIDs: []string{}, PanelIDs: []string{}}},
		{"input.testIds.0", OrderLabTestsInput{PatientID: f.woman.ID, TestIDs: []string{f.lytes.ID}}},
		{"input.testIds.1", OrderLabTestsInput{PatientID: f.woman.ID, TestIDs: []string{f.potassium.ID, "lbt_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}},
		{"input.testIds.1", OrderLabTestsInput{PatientID: f.woman.ID, TestIDs: []string{f.sodium.ID, f.retired.ID}}},
		{"input.panelIds.0", OrderLabTestsInput{PatientID: f.woman.ID, PanelIDs: []string{f.potassium.ID}}},
		{"input.panelIds.0", OrderLabTestsInput{PatientID: f.woman.ID, PanelIDs: []string{"lbp_01ARZ3NDEKTSV4RRFFQ69G5FAV"}}},
		{"input.panelIds.1", OrderLabTestsInput{PatientID: f.woman.ID, PanelIDs: []string{f.lytes.ID, f.oldPanel.ID}}},
		{"input.panelIds.0", OrderLabTestsInput{PatientID: f.woman.ID, PanelIDs: []string{f.stalePanel.ID}}},
		{"input.priority", OrderLabTestsInput{PatientID: f.woman.ID, TestIDs: k, Priority: new(laborder.Priority("ASAP"))}},
		{"input.clinicalNotes", OrderLabTestsInput{PatientID: f.woman.ID, TestIDs: k, ClinicalNotes: new(strings.Repeat("x", MaxClinicalNotes+1))}},
	} {
		f.unchanged(t, tc.field, apperr.BadUserInput, tc.field, func() error {
			_, err := f.svc.Order(f.as(f.doctor), tc.in)
			return err
		})
	}
	if n := f.client.LabOrder.Query().CountX(f.sys); n != 0 {
		t.Fatalf("refused orders left %d orders", n)
	}
}

func TestWorkflowCollectBadInput(t *testing.T) {
	f := newWorkflow(t)
	items := f.order(t, f.woman, f.potassium, f.protein)
	k, urine := items[0], items[1]
	other := f.order(t, f.woman, f.sodium)[0]
	for _, tc := range []struct {
		field string
		in    CollectLabSpecimenInput
	}{
		{"input.itemIds", CollectLabSpecimenInput{}},
		{"input.itemIds.0", CollectLabSpecimenInput{ItemIDs: []string{"lbi"}}},
		{"input.itemIds.0", CollectLabSpecimenInput{ItemIDs: []string{f.potassium.ID}}},
		{"input.itemIds.1", CollectLabSpecimenInput{ItemIDs: []string{k.ID, k.ID}}},
		{"input.itemIds.0", CollectLabSpecimenInput{ItemIDs: []string{wfUnknownItem, k.ID}}},
		{"input.itemIds.1", CollectLabSpecimenInput{ItemIDs: []string{k.ID, wfUnknownItem}}},
		{"input.itemIds.1", CollectLabSpecimenInput{ItemIDs: []string{k.ID, other.ID}}},
		{"input.itemIds.1", CollectLabSpecimenInput{ItemIDs: []string{k.ID, urine.ID}}},
		{"input.collectedAt", CollectLabSpecimenInput{ItemIDs: []string{k.ID}, CollectedAt: new(wfStart.Add(time.Hour))}},
		{"input.collectedAt", CollectLabSpecimenInput{ItemIDs: []string{k.ID}, CollectedAt: new(wfStart.Add(-time.Hour))}},
	} {
		f.unchanged(t, tc.field, apperr.BadUserInput, tc.field, func() error {
			_, err := f.svc.Collect(f.as(f.nurse), tc.in)
			return err
		})
	}
	// A handheld's clock a little ahead, and a specimen taken a little
	// before the order reached the system, are within the slack.
	sp := wfMust(f.svc.Collect(f.as(f.nurse), CollectLabSpecimenInput{ItemIDs: []string{k.ID},
		CollectedAt: new(wfStart.Add(4 * time.Minute))}))(t, "collect a little ahead")
	if !sp.CollectedAt.Equal(wfStart.Add(4 * time.Minute)) {
		t.Fatalf("collected at %v", sp.CollectedAt)
	}
	sp = wfMust(f.svc.Collect(f.as(f.nurse), CollectLabSpecimenInput{ItemIDs: []string{urine.ID},
		CollectedAt: new(wfStart.Add(-4 * time.Minute))}))(t, "collect just before the order")
	if sp.SpecimenType != labspecimen.SpecimenTypeURINE || !sp.CollectedAt.Equal(wfStart.Add(-4*time.Minute)) {
		t.Fatalf("urine specimen: %+v", sp)
	}
	_, err := f.svc.Receive(f.as(f.tech), "spc_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	wfWant(t, "receive unknown", err, apperr.NotFound, "")
}

func TestWorkflowStepBadInput(t *testing.T) {
	f := newWorkflow(t)
	it, sp := f.received(t, f.woman, f.potassium)
	urine, _ := f.received(t, f.woman, f.protein)
	swab, _ := f.received(t, f.woman, f.culture)
	_, verified := f.resulted(t, f.man, 4.0)
	verified = f.verify(t, verified)
	long := strings.Repeat("x", MaxReason+1)

	for _, tc := range []struct {
		field string
		call  func() error
	}{
		{"id", func() error { _, err := f.svc.Receive(f.as(f.tech), it.ID); return err }},
		{"id", func() error {
			_, err := f.svc.Reject(f.as(f.tech), "x", RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonCLOTTED})
			return err
		}},
		{"input.reason", func() error {
			_, err := f.svc.Reject(f.as(f.tech), sp.ID, RejectLabSpecimenInput{Reason: "DROPPED"})
			return err
		}},
		{"input.note", func() error {
			_, err := f.svc.Reject(f.as(f.tech), sp.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonOTHER})
			return err
		}},
		{"input.note", func() error {
			_, err := f.svc.Reject(f.as(f.tech), sp.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonOTHER, Note: new("  ")})
			return err
		}},
		{"input.note", func() error {
			_, err := f.svc.Reject(f.as(f.tech), sp.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonCLOTTED, Note: new(long)})
			return err
		}},
		{"id", func() error { _, err := f.svc.CancelItem(f.as(f.doctor), sp.ID, "x"); return err }},
		{"reason", func() error { _, err := f.svc.CancelItem(f.as(f.doctor), it.ID, " \t"); return err }},
		{"reason", func() error { _, err := f.svc.CancelItem(f.as(f.doctor), it.ID, long); return err }},

		{"itemId", func() error {
			_, err := f.svc.Enter(f.as(f.tech), sp.ID, EnterLabResultInput{NumericValue: new(4.0)})
			return err
		}},
		{"input.numericValue", func() error { _, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{}); return err }},
		{"input.numericValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{CodedValue: new("NEGATIVE")})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(4.0), TextValue: new("looks fine")})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(math.NaN())})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(math.Inf(1))})
			return err
		}},
		// 1e308 is finite, but scaled to one decimal it overflows: stored,
		// it would break every later read of the result.
		{"input.numericValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(1e308)})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(-1e308)})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(1e10)})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(-MaxNumericResult - 1)})
			return err
		}},
		{"input.comment", func() error {
			_, err := f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(4.0), Comment: new(strings.Repeat("x", MaxTextResult+1))})
			return err
		}},
		{"input.codedValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), urine.ID, EnterLabResultInput{NumericValue: new(1.0)})
			return err
		}},
		{"input.codedValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), urine.ID, EnterLabResultInput{CodedValue: new("1+"), NumericValue: new(1.0)})
			return err
		}},
		{"input.codedValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), urine.ID, EnterLabResultInput{CodedValue: new("3+")})
			return err
		}},
		{"input.codedValue", func() error {
			// Codes are matched as listed: the lab's vocabulary is exact.
			_, err := f.svc.Enter(f.as(f.tech), urine.ID, EnterLabResultInput{CodedValue: new("negative")})
			return err
		}},
		{"input.textValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), swab.ID, EnterLabResultInput{TextValue: new("   ")})
			return err
		}},
		{"input.textValue", func() error {
			_, err := f.svc.Enter(f.as(f.tech), swab.ID, EnterLabResultInput{TextValue: new(strings.Repeat("x", MaxTextResult+1))})
			return err
		}},

		{"id", func() error { _, err := f.svc.Verify(f.as(f.tech2), it.ID); return err }},
		{"id", func() error { _, err := f.svc.Acknowledge(f.as(f.doctor), "lbr"); return err }},
		{"id", func() error {
			_, err := f.svc.Amend(f.as(f.tech3), it.ID, AmendLabResultInput{NumericValue: new(4.0), Reason: "x"})
			return err
		}},
		{"input.reason", func() error {
			_, err := f.svc.Amend(f.as(f.tech3), verified.ID, AmendLabResultInput{NumericValue: new(4.0), Reason: "  "})
			return err
		}},
		{"input.reason", func() error {
			_, err := f.svc.Amend(f.as(f.tech3), verified.ID, AmendLabResultInput{NumericValue: new(4.0), Reason: long})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Amend(f.as(f.tech3), verified.ID, AmendLabResultInput{NumericValue: new(math.NaN()), Reason: "misread"})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Amend(f.as(f.tech3), verified.ID, AmendLabResultInput{CodedValue: new("TRACE"), Reason: "misread"})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Amend(f.as(f.tech3), verified.ID, AmendLabResultInput{NumericValue: new(1e308), Reason: "misread"})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Amend(f.as(f.tech3), verified.ID, AmendLabResultInput{NumericValue: new(-1e308), Reason: "misread"})
			return err
		}},
		{"input.numericValue", func() error {
			_, err := f.svc.Amend(f.as(f.tech3), verified.ID, AmendLabResultInput{NumericValue: new(1e10), Reason: "misread"})
			return err
		}},
		{"wardId", func() error { _, err := f.svc.Unacknowledged(f.client, new("bed_1")); return err }},
	} {
		f.unchanged(t, tc.field, apperr.BadUserInput, tc.field, tc.call)
	}
	if n := f.client.LabResult.Query().CountX(f.sys); n != 1 {
		t.Fatalf("%d results, want only the one verified in setting up", n)
	}
	_, err := f.svc.Verify(f.as(f.tech2), "lbr_01ARZ3NDEKTSV4RRFFQ69G5FAV")
	wfWant(t, "verify unknown", err, apperr.NotFound, "")
	_, err = f.svc.Enter(f.as(f.tech), wfUnknownItem, EnterLabResultInput{NumericValue: new(4.0)})
	wfWant(t, "enter unknown", err, apperr.NotFound, "")

	// The bound applies to the value as kept, at the test's precision:
	// a hair over it that rounds to it is taken.
	if r := wfMust(f.svc.Enter(f.as(f.tech), it.ID, EnterLabResultInput{NumericValue: new(MaxNumericResult + 0.04)}))(t, "at the bound"); r.NumericValue == nil ||
		*r.NumericValue != MaxNumericResult || f.result(r.ID).NumericValue == nil || *f.result(r.ID).NumericValue != MaxNumericResult {
		t.Fatalf("value at the bound: %+v", r)
	}

	// The same items take well-formed values of their kind.
	if r := wfMust(f.svc.Enter(f.as(f.tech), urine.ID, EnterLabResultInput{CodedValue: new(" TRACE ")}))(t, "coded"); r.CodedValue == nil ||
		*r.CodedValue != "TRACE" || r.Flag == nil || *r.Flag != labresult.FlagABNORMAL || r.NumericValue != nil || r.Unit != nil {
		t.Fatalf("coded result: %+v", r)
	}
	if r := wfMust(f.svc.Enter(f.as(f.tech), swab.ID, EnterLabResultInput{TextValue: new("Group A streptococcus isolated")}))(t, "text"); r.TextValue == nil ||
		*r.TextValue != "Group A streptococcus isolated" || r.Flag != nil || r.Critical {
		t.Fatalf("text result: %+v", r)
	}
}

// TestWorkflowRoles checks that each step is taken only by an active
// member of staff of a kind that answers for it, and that a refusal
// changes nothing. Roles are not consulted here: the policy admits roles,
// and an account that is no one on the staff cannot answer for a result.
func TestWorkflowRoles(t *testing.T) {
	f := newWorkflow(t)
	ordered := f.order(t, f.woman, f.potassium)[0]
	collected := f.collect(t, f.order(t, f.woman, f.potassium)[0])
	received, _ := f.received(t, f.woman, f.potassium)
	_, entered := f.resulted(t, f.woman, 4.0)
	_, verified := f.resulted(t, f.woman, 4.1)
	verified = f.verify(t, verified)
	_, critical := f.resulted(t, f.man, 7.0)
	critical = f.verify(t, critical)
	if !critical.Critical {
		t.Fatalf("7.0 mmol/L in a man is not critical: %+v", critical)
	}

	type actor struct {
		name string
		ctx  context.Context
		kind string // the staff kind of an active member; empty for none
	}
	viewer := func(v *auth.Viewer) context.Context { return auth.WithViewer(context.Background(), v) }
	actors := []actor{
		{"doctor", f.as(f.doctor), "DOCTOR"},
		{"nurse", f.as(f.nurse), "NURSE"},
		{"lab technician", f.as(f.tech3), "LAB_TECHNICIAN"},
		{"inactive lab technician", f.as(f.idleTech), ""},
		{"administrator on the staff", f.as(f.administrator), ""},
		{"administrator account", viewer(&auth.Viewer{UserID: "usr_admin", Roles: []string{"admin"}}), ""},
		{"API key", viewer(&auth.Viewer{APIKeyID: "key_1", Roles: []string{"admin", "lab_technician", "doctor"}}), ""},
		{"unknown staff ID", viewer(&auth.Viewer{UserID: "usr_x", Roles: []string{"doctor"}, StaffID: "stf_01ARZ3NDEKTSV4RRFFQ69G5FAV"}), ""},
		{"system", auth.SystemContext(context.Background()), ""},
		{"anonymous", context.Background(), ""},
	}
	steps := []struct {
		name  string
		kinds []string
		call  func(ctx context.Context) error
	}{
		{"order", []string{"DOCTOR"}, func(ctx context.Context) error {
			_, err := f.svc.Order(ctx, OrderLabTestsInput{PatientID: f.woman.ID, TestIDs: []string{f.sodium.ID}})
			return err
		}},
		{"collect", []string{"DOCTOR", "NURSE", "LAB_TECHNICIAN"}, func(ctx context.Context) error {
			_, err := f.svc.Collect(ctx, CollectLabSpecimenInput{ItemIDs: []string{ordered.ID}})
			return err
		}},
		{"receive", []string{"LAB_TECHNICIAN"}, func(ctx context.Context) error {
			_, err := f.svc.Receive(ctx, collected.ID)
			return err
		}},
		{"reject", []string{"LAB_TECHNICIAN"}, func(ctx context.Context) error {
			_, err := f.svc.Reject(ctx, collected.ID, RejectLabSpecimenInput{Reason: labspecimen.RejectionReasonMISLABELED})
			return err
		}},
		{"cancel", []string{"DOCTOR", "LAB_TECHNICIAN"}, func(ctx context.Context) error {
			_, err := f.svc.CancelItem(ctx, ordered.ID, "not needed")
			return err
		}},
		{"enter", []string{"LAB_TECHNICIAN"}, func(ctx context.Context) error {
			_, err := f.svc.Enter(ctx, received.ID, EnterLabResultInput{NumericValue: new(4.0)})
			return err
		}},
		{"verify", []string{"LAB_TECHNICIAN"}, func(ctx context.Context) error {
			_, err := f.svc.Verify(ctx, entered.ID)
			return err
		}},
		{"amend", []string{"LAB_TECHNICIAN"}, func(ctx context.Context) error {
			_, err := f.svc.Amend(ctx, verified.ID, AmendLabResultInput{NumericValue: new(4.2), Reason: "misread"})
			return err
		}},
		{"acknowledge", []string{"DOCTOR", "NURSE"}, func(ctx context.Context) error {
			_, err := f.svc.Acknowledge(ctx, critical.ID)
			return err
		}},
	}
	refusals := 0
	for _, step := range steps {
		for _, a := range actors {
			if a.kind != "" && slices.Contains(step.kinds, a.kind) {
				continue
			}
			refusals++
			f.unchanged(t, a.name+" may not "+step.name, apperr.Forbidden, "", func() error { return step.call(a.ctx) })
		}
	}
	if refusals < len(steps)*7 {
		t.Fatalf("only %d refusals tried", refusals)
	}

	// Each subject was ready for its step: the right person takes it.
	for _, ok := range []struct {
		step string
		ctx  context.Context
	}{
		{"order", f.as(f.doctor)}, {"collect", f.as(f.nurse)}, {"receive", f.as(f.tech)}, {"enter", f.as(f.tech)},
		{"verify", f.as(f.tech2)}, {"amend", f.as(f.tech3)}, {"acknowledge", f.as(f.nurse)},
	} {
		for _, step := range steps {
			if step.name == ok.step {
				if err := step.call(ok.ctx); err != nil {
					t.Fatalf("%s by the right person: %v", step.name, err)
				}
			}
		}
	}
	if r := f.result(critical.ID); r.AcknowledgedByID == nil || *r.AcknowledgedByID != f.nurse.ID {
		t.Fatalf("acknowledged: %+v", r)
	}
}
