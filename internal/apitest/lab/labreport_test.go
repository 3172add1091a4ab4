package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pdfcpu/pdfcpu/pkg/api"
	"golang.org/x/text/encoding/charmap"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/laborder"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/config"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// labReportFixture is lab data made directly in the database: the orders'
// GraphQL mutations are not what is under test here.
type labReportFixture struct {
	own   string // an order of the demo patient user's own record
	other string // an order of another patient
}

// seedLabReport records, for the demo patient, an urgent order with one
// specimen and tests in every state a report must print: verified values
// (high, critically low, abnormal coded), an amended one with the value it
// corrected, one entered but not yet verified, one still pending and one
// cancelled. Another patient gets an order of their own.
func seedLabReport(t *testing.T, s *harness.Server, d harness.DemoIDs) labReportFixture {
	t.Helper()
	ctx := auth.SystemContext(context.Background())
	c := s.App.Store.Client
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("seed lab data: %v", err)
		}
	}
	verifier, err := c.Staff.Create().SetGivenName("Jürgen").SetFamilyName("Müller").
		SetKind(staff.KindLAB_TECHNICIAN).Save(ctx)
	check(err)
	// The server seeds a starter catalog; a test row is made to say what
	// the assertions below expect whether it was there already or not.
	test := func(code, name string, kind labtest.ResultKind, st labtest.SpecimenType, unit string, decimals int) *ent.LabTest {
		var resultCodes, normalCodes []string
		if kind == labtest.ResultKindCODED {
			resultCodes, normalCodes = []string{"NEGATIVE", "TRACE", "1+", "2+"}, []string{"NEGATIVE"}
		}
		existing, err := c.LabTest.Query().Where(labtest.Code(code)).Only(ctx)
		if err == nil {
			u := existing.Update().SetName(name).SetResultKind(kind).SetSpecimenType(st).SetDecimals(decimals).
				SetResultCodes(resultCodes).SetNormalCodes(normalCodes)
			if unit != "" {
				u.SetUnit(unit)
			} else {
				u.ClearUnit()
			}
			lt, err := u.Save(ctx)
			check(err)
			return lt
		}
		if !ent.IsNotFound(err) {
			check(err)
		}
		q := c.LabTest.Create().SetCode(code).SetName(name).SetResultKind(kind).SetSpecimenType(st).
			SetDecimals(decimals).SetPrice(1500).SetTurnaroundMinutes(120).
			SetResultCodes(resultCodes).SetNormalCodes(normalCodes)
		if unit != "" {
			q.SetUnit(unit)
		}
		lt, err := q.Save(ctx)
		check(err)
		return lt
	}
	potassium := test("2823-3", "Potassium [Moles/volume] in Serum or Plasma", labtest.ResultKindNUMERIC, labtest.SpecimenTypeSERUM, "mmol/L", 1)
	creatinine := test("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", labtest.ResultKindNUMERIC, labtest.SpecimenTypeSERUM, "umol/L", 0)
	haemoglobin := test("718-7", "Hemoglobin [Mass/volume] in Blood", labtest.ResultKindNUMERIC, labtest.SpecimenTypeSERUM, "g/dL", 1)
	protein := test("20454-5", "Protein [Presence] in Urine by Test strip", labtest.ResultKindCODED, labtest.SpecimenTypeSERUM, "", 0)
	glucose := test("14749-6", "Glucose [Moles/volume] in Serum or Plasma", labtest.ResultKindNUMERIC, labtest.SpecimenTypeSERUM, "mmol/L", 1)
	sodium := test("2951-2", "Sodium [Moles/volume] in Serum or Plasma", labtest.ResultKindNUMERIC, labtest.SpecimenTypeSERUM, "mmol/L", 0)
	hba1c := test("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", labtest.ResultKindNUMERIC, labtest.SpecimenTypeSERUM, "%", 1)

	orderedAt := time.Date(2025, 3, 3, 6, 30, 0, 0, time.UTC)
	pat := d.Patients[0]
	order, err := c.LabOrder.Create().SetPatientID(pat).SetOrderedByID(d.Doctor).SetOrderedAt(orderedAt).
		SetPriority(laborder.PriorityURGENT).SetClinicalNotes("Known CKD; on spironolactone. Fasting since 22:00.").Save(ctx)
	check(err)
	spec, err := c.LabSpecimen.Create().SetPatientID(pat).SetOrderID(order.ID).SetAccessionNumber("A25-000417").
		SetSpecimenType(labspecimen.SpecimenTypeSERUM).SetStatus(labspecimen.StatusRECEIVED).
		SetCollectedByID(d.Nurse).SetCollectedAt(orderedAt.Add(20 * time.Minute)).
		SetReceivedByID(d.Labtech).SetReceivedAt(orderedAt.Add(50 * time.Minute)).Save(ctx)
	check(err)
	item := func(lt *ent.LabTest, status laborderitem.Status) *ent.LabOrderItem {
		q := c.LabOrderItem.Create().SetPatientID(pat).SetOrderID(order.ID).SetTestID(lt.ID).
			SetStatus(status).SetOrderedAt(orderedAt)
		if status != laborderitem.StatusCANCELLED {
			q.SetSpecimenID(spec.ID)
		} else {
			q.SetCancelReason("Duplicate request").SetCancelledByID(d.Doctor)
		}
		it, err := q.Save(ctx)
		check(err)
		return it
	}
	enteredAt := orderedAt.Add(90 * time.Minute)
	verifiedAt := orderedAt.Add(100 * time.Minute)
	result := func(it *ent.LabOrderItem, status labresult.Status) *ent.LabResultCreate {
		q := c.LabResult.Create().SetPatientID(it.PatientID).SetItemID(it.ID).SetStatus(status).
			SetEnteredByID(d.Labtech).SetEnteredAt(enteredAt)
		if status != labresult.StatusENTERED {
			q.SetVerifiedByID(verifier.ID).SetVerifiedAt(verifiedAt)
		}
		return q
	}

	k := item(potassium, laborderitem.StatusAMENDED)
	wrong, err := result(k, labresult.StatusCORRECTED).SetNumericValue(5.94).SetUnit("mmol/L").
		SetFlag(labresult.FlagHIGH).SetReferenceLow(3.5).SetReferenceHigh(5.1).Save(ctx)
	check(err)
	_, err = result(k, labresult.StatusVERIFIED).SetNumericValue(4.23).SetUnit("mmol/L").
		SetFlag(labresult.FlagNORMAL).SetReferenceLow(3.5).SetReferenceHigh(5.1).
		SetReplacesID(wrong.ID).SetAmendReason("Haemolysed sample; repeated on a fresh aliquot").
		SetEnteredAt(enteredAt.Add(3 * time.Hour)).SetVerifiedAt(verifiedAt.Add(3 * time.Hour)).Save(ctx)
	check(err)

	_, err = result(item(creatinine, laborderitem.StatusVERIFIED), labresult.StatusVERIFIED).
		SetNumericValue(182.4).SetUnit("umol/L").SetFlag(labresult.FlagHIGH).
		SetReferenceLow(62).SetReferenceHigh(106).Save(ctx)
	check(err)
	_, err = result(item(haemoglobin, laborderitem.StatusVERIFIED), labresult.StatusVERIFIED).
		SetNumericValue(5.8).SetUnit("g/dL").SetFlag(labresult.FlagCRITICAL_LOW).
		SetReferenceLow(12).SetReferenceHigh(15.5).SetCriticalLow(7).SetCritical(true).
		SetComment("Called to Dr Mwangi at 08:25").Save(ctx)
	check(err)
	_, err = result(item(protein, laborderitem.StatusVERIFIED), labresult.StatusVERIFIED).
		SetCodedValue("1+").SetFlag(labresult.FlagABNORMAL).Save(ctx)
	check(err)
	_, err = result(item(glucose, laborderitem.StatusRESULTED), labresult.StatusENTERED).
		SetNumericValue(13.7).SetUnit("mmol/L").SetFlag(labresult.FlagHIGH).
		SetReferenceLow(3.9).SetReferenceHigh(5.5).Save(ctx)
	check(err)
	item(sodium, laborderitem.StatusRECEIVED)
	item(hba1c, laborderitem.StatusCANCELLED)

	other, err := c.LabOrder.Create().SetPatientID(d.Patients[1]).SetOrderedByID(d.Doctor).
		SetOrderedAt(orderedAt).Save(ctx)
	check(err)
	oi, err := c.LabOrderItem.Create().SetPatientID(d.Patients[1]).SetOrderID(other.ID).SetTestID(potassium.ID).
		SetStatus(laborderitem.StatusVERIFIED).SetOrderedAt(orderedAt).Save(ctx)
	check(err)
	_, err = result(oi, labresult.StatusVERIFIED).SetNumericValue(3.9).SetUnit("mmol/L").Save(ctx)
	check(err)
	return labReportFixture{own: order.ID, other: other.ID}
}

type reportResponse struct {
	status int
	header http.Header
	body   []byte
}

// getLabReport fetches a lab order's report with a bearer credential ("" for none).
func getLabReport(s *harness.Server, credential, id string) reportResponse {
	s.T.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.HTTP.URL+"/reports/lab-orders/"+id+".pdf", nil)
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := s.HTTP.Client().Do(req)
	if err != nil {
		s.T.Fatalf("get report: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		s.T.Fatalf("read report: %v", err)
	}
	return reportResponse{status: resp.StatusCode, header: resp.Header, body: body}
}

// errorCode is the extensions.code of an error response.
func (r reportResponse) errorCode() (code, field string) {
	var out struct{ Errors []harness.GQLError }
	if json.Unmarshal(r.body, &out) != nil || len(out.Errors) == 0 {
		return "", ""
	}
	return out.Errors[0].Code(), out.Errors[0].Field()
}

// pdfText returns the text a PDF shows, one string per text-showing
// operator, read from the pages' content streams.
func pdfText(t *testing.T, pdf []byte) []string {
	t.Helper()
	api.DisableConfigDir()
	var texts []string
	err := api.ExtractContent(bytes.NewReader(pdf), nil, func(r io.Reader, _ int) error {
		content, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		texts = append(texts, shownStrings(content)...)
		return nil
	}, nil)
	if err != nil {
		t.Fatalf("extract PDF content: %v", err)
	}
	decoder := charmap.Windows1252.NewDecoder()
	for i, s := range texts {
		// The report uses the core fonts, whose strings are cp1252.
		if texts[i], err = decoder.String(s); err != nil {
			t.Fatalf("decode %q: %v", s, err)
		}
	}
	return texts
}

// shownStrings returns the literal strings that content shows with Tj.
func shownStrings(content []byte) []string {
	var out []string
	for i := 0; i < len(content); i++ {
		if content[i] != '(' {
			continue
		}
		var b []byte
		depth := 1
		for i++; i < len(content) && depth > 0; i++ {
			c := content[i]
			switch {
			case c == '\\' && i+1 < len(content):
				i++
				switch e := content[i]; e {
				case 'n':
					b = append(b, '\n')
				case 'r':
					b = append(b, '\r')
				case 't':
					b = append(b, '\t')
				case '0', '1', '2', '3', '4', '5', '6', '7':
					v := 0
					for n := 0; n < 3 && i < len(content) && content[i] >= '0' && content[i] <= '7'; n++ {
						v = v*8 + int(content[i]-'0')
						i++
					}
					i--
					b = append(b, byte(v))
				default:
					b = append(b, e)
				}
			case c == '(':
				depth++
				b = append(b, c)
			case c == ')':
				depth--
				if depth > 0 {
					b = append(b, c)
				}
			default:
				b = append(b, c)
			}
		}
		rest := bytes.TrimLeft(content[min(i, len(content)):], " \t\r\n")
		if bytes.HasPrefix(rest, []byte("Tj")) {
			out = append(out, string(b))
		}
		i--
	}
	return out
}

func TestLabReportPrintsVerifiedResultsOnly(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t, func(c *config.Config) { c.TimeZone = "Africa/Nairobi" })
	d := s.Demo()
	f := seedLabReport(t, s, d)

	var key struct {
		CreateAPIKey struct{ Secret string } `json:"createApiKey"`
	}
	s.As("admin", harness.CreateAPIKeyMutation, map[string]any{"in": map[string]any{"name": "reports", "role": "integrator"}}).Decode(t, &key)

	creds := map[string]string{
		"doctor":     s.Token("doctor"),
		"nurse":      s.Token("nurse"),
		"labtech":    s.Token("labtech"), // sees unverified results elsewhere; never on the report
		"patient":    s.Token("patient"),
		"integrator": key.CreateAPIKey.Secret,
	}
	for who, cred := range creds {
		t.Run(who, func(t *testing.T) {
			r := getLabReport(s, cred, f.own)
			harness.Must(t, r.status == http.StatusOK, "status %d: %s", r.status, r.body)
			harness.Must(t, r.header.Get("Content-Type") == "application/pdf", "content type %q", r.header.Get("Content-Type"))
			harness.Must(t, r.header.Get("Cache-Control") == "no-store", "cache control %q", r.header.Get("Cache-Control"))
			disposition := r.header.Get("Content-Disposition")
			harness.Must(t, disposition == `inline; filename="lab-order-`+f.own+`.pdf"`, "disposition %q", disposition)
			harness.Must(t, bytes.HasPrefix(r.body, []byte("%PDF-")), "not a PDF: %.20q", r.body)

			texts := pdfText(t, r.body)
			all := strings.Join(texts, "\n")
			shown := map[string]bool{}
			for _, x := range texts {
				shown[strings.TrimSpace(x)] = true
			}
			for _, want := range []string{
				"HMIS Hospital", "Laboratory report", "AMENDED REPORT",
				"Kamau, Wanjiru", "100000009", "1968-03-14", "Female",
				"Grace Mwangi", "2025-03-03 09:30 EAT", "Urgent", "Known CKD; on spironolactone.",
				// The specimen.
				"A25-000417", "Serum", "2025-03-03 09:50 EAT", "by Tomas Lindqvist", "2025-03-03 10:20 EAT",
				// Test names and LOINC codes.
				"Potassium [Moles/volume] in Serum or Plasma", "LOINC 2823-3",
				"Creatinine [Moles/volume] in Serum or Plasma", "LOINC 14682-9",
				"Hemoglobin [Mass/volume] in Blood", "Protein [Presence] in Urine by Test strip",
				// Values with the test's decimals and units as printed
				// (UCUM "umol/L" is µmol/L on paper), and ranges.
				"4.2 mmol/L", "182 µmol/L", "5.8 g/dL", "1+",
				"3.5–5.1", "62–106", "12.0–15.5", "NEGATIVE",
				// Who verified, when, and what they noted.
				"Jürgen Müller", "2025-03-03 11:10 EAT", "Comment: Called to Dr Mwangi at 08:25",
				// The amendment, its reason, and the value it corrected.
				"amended", "Haemolysed sample; repeated on a fresh aliquot",
				"corrected, see amended value", "5.9 mmol/L",
				// Tests without a verified result say where they stand.
				"Glucose [Moles/volume] in Serum or Plasma", "Pending — RESULTED",
				"Sodium [Moles/volume] in Serum or Plasma", "Pending — RECEIVED",
				"Cancelled: Duplicate request",
				"Page 1 of",
			} {
				harness.Must(t, strings.Contains(all, want), "the report lacks %q; it shows:\n%s", want, all)
			}
			for _, flag := range []string{"H", "LL", "A"} {
				harness.Must(t, shown[flag], "flag %s not printed; the report shows:\n%s", flag, all)
			}
			// A result not yet verified never reaches paper, whoever prints.
			for _, absent := range []string{"13.7", "3.9–5.5"} {
				harness.Must(t, !strings.Contains(all, absent), "the unverified result %q was printed", absent)
			}
		})
	}
}

func TestLabReportRefusals(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	f := seedLabReport(t, s, d)

	noPatientData := func(r reportResponse) {
		t.Helper()
		for _, secret := range []string{"100000009", "Kamau", "Wanjiru", "100000017", "Otieno"} {
			harness.Must(t, !bytes.Contains(r.body, []byte(secret)), "refusal names patient data: %s", r.body)
		}
	}

	r := getLabReport(s, "", f.own)
	code, _ := r.errorCode()
	harness.Must(t, r.status == http.StatusUnauthorized && code == "UNAUTHENTICATED", "anonymous: %d %s", r.status, r.body)
	harness.Must(t, r.header.Get("Cache-Control") == "no-store", "cache control on refusal %q", r.header.Get("Cache-Control"))
	noPatientData(r)
	r = getLabReport(s, "not-a-token", f.own)
	harness.Must(t, r.status == http.StatusUnauthorized, "bad token: %d %s", r.status, r.body)
	noPatientData(r)

	for _, role := range []string{"billing", "reception", "pharmacist", "hr"} {
		r = getLabReport(s, s.Token(role), f.own)
		code, _ = r.errorCode()
		harness.Must(t, r.status == http.StatusForbidden && code == "FORBIDDEN", "%s: %d %s", role, r.status, r.body)
		noPatientData(r)
	}

	// Another patient's order is as absent as one that never existed.
	foreign := getLabReport(s, s.Token("patient"), f.other)
	missing := getLabReport(s, s.Token("patient"), globalid.New("lbo"))
	harness.Must(t, foreign.status == http.StatusNotFound, "patient, another patient's order: %d %s", foreign.status, foreign.body)
	harness.Must(t, bytes.Equal(foreign.body, missing.body) && missing.status == http.StatusNotFound,
		"another patient's order and a missing one differ: %s / %s", foreign.body, missing.body)
	noPatientData(foreign)
	r = getLabReport(s, s.Token("doctor"), f.other)
	harness.Must(t, r.status == http.StatusOK, "doctor, any patient's order: %d %s", r.status, r.body)

	for _, bad := range []string{"42", "lbo_nope", d.Patients[0]} {
		r = getLabReport(s, s.Token("doctor"), bad)
		code, field := r.errorCode()
		harness.Must(t, r.status == http.StatusBadRequest && code == "BAD_USER_INPUT" && field == "id",
			"malformed ID %q: %d %s", bad, r.status, r.body)
	}
}

func TestLabReportIsAudited(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	f := seedLabReport(t, s, d)

	printed := getLabReport(s, s.Token("doctor"), f.own)
	harness.Must(t, printed.status == http.StatusOK, "doctor: %d", printed.status)
	denied := getLabReport(s, s.Token("billing"), f.own)
	harness.Must(t, denied.status == http.StatusForbidden, "billing: %d", denied.status)
	anonymous := getLabReport(s, "", f.own)
	harness.Must(t, anonymous.status == http.StatusUnauthorized, "anonymous: %d", anonymous.status)
	hidden := getLabReport(s, s.Token("patient"), f.other)
	harness.Must(t, hidden.status == http.StatusNotFound, "patient: %d", hidden.status)

	rows := harness.AuditRows(t, s, map[string]any{"operation": "report:labOrder"})
	harness.Must(t, len(rows) == 4, "one row per report request, got %+v", rows)
	byRequest := map[string]harness.AuditRow{}
	for _, row := range rows {
		harness.Must(t, row.RequestID != nil && row.Kind == "HTTP", "row without request ID or of another kind: %+v", row)
		byRequest[*row.RequestID] = row
	}

	row, ok := byRequest[printed.header.Get("X-Request-ID")]
	harness.Must(t, ok && row.Outcome == "ALLOWED" && *row.ActorName == "doctor", "printed report's row: %+v", rows)
	harness.Must(t, row.PatientIds == ","+d.Patients[0]+",", "patients of the printed report: %q", row.PatientIds)
	harness.Must(t, slices.Contains(row.ObjectIds, f.own), "order in object IDs: %v", row.ObjectIds)
	harness.Must(t, slices.Contains(row.Fields, "LabResult.numericValue") && slices.Contains(row.Fields, "Patient.mrn"), "fields printed: %v", row.Fields)
	harness.Must(t, row.ClientAddr != nil && *row.ClientAddr == "127.0.0.1", "client address: %+v", row)
	harness.Must(t, strings.Join(row.Roles, ",") == "doctor", "roles: %v", row.Roles)

	row, ok = byRequest[denied.header.Get("X-Request-ID")]
	harness.Must(t, ok && row.Outcome == "DENIED" && *row.ErrorCode == "FORBIDDEN" && *row.ActorName == "billing", "denied row: %+v", rows)
	harness.Must(t, slices.Contains(row.ObjectIds, f.own) && slices.Contains(row.Fields, "Report.labOrder"), "denied row's object and field: %+v", row)
	harness.Must(t, row.PatientIds == "", "a denied request read no patient: %q", row.PatientIds)

	row, ok = byRequest[anonymous.header.Get("X-Request-ID")]
	harness.Must(t, ok && row.Outcome == "DENIED" && *row.ErrorCode == "UNAUTHENTICATED" && (row.ActorID == nil || *row.ActorID == ""), "anonymous row: %+v", rows)

	row, ok = byRequest[hidden.header.Get("X-Request-ID")]
	harness.Must(t, ok && row.Outcome == "FAILED" && *row.ErrorCode == "NOT_FOUND" && *row.ActorName == "patient", "not-found row: %+v", rows)
	harness.Must(t, row.PatientIds == "" && slices.Contains(row.ObjectIds, f.other), "row scope read nothing of the other patient: %+v", row)

	// The printing patient's own trail shows the report.
	rows = harness.AuditRows(t, s, map[string]any{"patientId": d.Patients[0], "operation": "report:labOrder"})
	harness.Must(t, len(rows) == 1, "patient filter: %+v", rows)
}

func TestLabReportIsWithheldWhenTheAuditFails(t *testing.T) {
	t.Parallel()
	s := harness.NewServer(t)
	d := s.Demo()
	f := seedLabReport(t, s, d)
	token := s.Token("doctor")

	if _, err := s.App.Store.DB.Exec(`ALTER TABLE audit_events RENAME TO audit_events_away`); err != nil {
		t.Fatalf("break the trail: %v", err)
	}
	r := getLabReport(s, token, f.own)
	code, _ := r.errorCode()
	harness.Must(t, r.status == http.StatusInternalServerError && code == "INTERNAL", "unaudited report: %d %.40q", r.status, r.body)
	harness.Must(t, !bytes.Contains(r.body, []byte("%PDF")) && !bytes.Contains(r.body, []byte("100000009")), "report sent unaudited")
}
