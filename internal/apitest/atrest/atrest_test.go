// Package atrest tests encryption at rest through the API: what a frontend
// writes is read back in clear by those allowed to, while the database
// itself holds none of it.
package atrest

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apitest/harness"
)

const register = `mutation($in: RegisterPatientInput!) {
  registerPatient(input: $in) {
    patient { id mrn nationalID phone email addressLine postalCode
              contacts { phone email address } identifiers { system value } }
  }
}`

type patientOut struct {
	ID, Mrn, NationalID, Phone, Email, AddressLine, PostalCode string
	Contacts                                                   []struct{ Phone, Email, Address string }
	Identifiers                                                []struct{ System, Value string }
}

// TestDatabaseHoldsNoSensitiveValue registers a patient with every kind of
// sensitive value and writes a note through the API, reads them back in
// clear as the roles allowed to, and then finds none of them in the
// database: the SQLite file's bytes (and its write-ahead log), or on
// PostgreSQL the raw columns.
func TestDatabaseHoldsNoSensitiveValue(t *testing.T) {
	t.Parallel()
	b := harness.NewBacking(t)
	s := harness.NewServerOn(t, b)
	d := s.Demo()
	// Unique, so that a hit can only be this test's value: random, not part
	// of an ID, whose time prefix other rows of the same moment share.
	u := rand.Text()[:12]
	digits := make([]byte, 9)
	for i := range digits {
		digits[i] = '0' + u[i]%10
	}
	n := string(digits)
	secret := map[string]string{
		"nationalId":  "NID" + u,
		"phone":       "+254 7" + n,
		"email":       "pt." + strings.ToLower(u) + "@example.org",
		"addressLine": "Plot " + u + " Ngong Road",
		"postalCode":  "P" + u[:8],
		"contactTel":  "+254 1" + n,
		"contactMail": "kin." + strings.ToLower(u) + "@example.org",
		"contactAddr": "House " + u + " Kisumu",
		"identifier":  "ID" + u,
		"note":        "Patient reports " + u + " since Tuesday",
		"breakGlass":  "Unconscious on arrival, " + u + ", no relationship yet",
	}
	var reg struct{ RegisterPatient struct{ Patient patientOut } }
	s.As("reception", register, map[string]any{"in": map[string]any{
		"givenName": "Atieno", "familyName": "Odhiambo" + u, "birthDate": "1990-02-03", "sex": "FEMALE",
		"nationalId": secret["nationalId"], "phone": secret["phone"], "email": secret["email"],
		"addressLine": secret["addressLine"], "postalCode": secret["postalCode"],
		"contacts": []map[string]any{{"name": "Kin Odhiambo", "relationship": "SISTER", "phone": secret["contactTel"],
			"email": secret["contactMail"], "address": secret["contactAddr"]}},
		"identifiers": []map[string]any{{"system": "NHIF", "value": secret["identifier"]}},
	}}).Decode(t, &reg)
	p := reg.RegisterPatient.Patient
	harness.Must(t, p.NationalID == secret["nationalId"] && p.Phone == secret["phone"] && p.Email == secret["email"] &&
		p.AddressLine == secret["addressLine"] && p.PostalCode == secret["postalCode"], "registration answers in clear: %+v", p)
	// The doctor has no care relationship with a patient just registered:
	// breaking the glass gives one, and its reason is sensitive too.
	s.As("doctor", `mutation($in: BreakGlassInput!) { breakGlass(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"patientId": p.ID, "reason": secret["breakGlass"]}}).Decode(t, &struct{}{})
	var note struct{ WriteNote struct{ ID, Text string } }
	s.As("doctor", `mutation($in: WriteNoteInput!) { writeNote(input: $in) { id text } }`,
		map[string]any{"in": map[string]any{"patientId": p.ID, "type": "PROGRESS", "text": secret["note"]}}).Decode(t, &note)
	harness.Must(t, note.WriteNote.Text == secret["note"], "note answered in clear: %+v", note)

	// Read back in clear, through the interceptor, by the roles allowed.
	var got struct{ Node patientOut }
	s.As("reception", `query($id: ID!) { node(id: $id) { ... on Patient { id mrn nationalID phone email addressLine postalCode
	  contacts { phone email address } identifiers { system value } } } }`, map[string]any{"id": p.ID}).Decode(t, &got)
	harness.Must(t, got.Node.NationalID == secret["nationalId"] && got.Node.Phone == secret["phone"] &&
		len(got.Node.Contacts) == 1 && got.Node.Contacts[0].Address == secret["contactAddr"] &&
		len(got.Node.Identifiers) == 1 && got.Node.Identifiers[0].Value == secret["identifier"], "read back: %+v", got.Node)
	var notes struct {
		Node struct {
			Notes struct {
				Edges []struct{ Node struct{ Text string } }
			}
		}
	}
	s.As("doctor", `query($id: ID!) { node(id: $id) { ... on Patient { notes(first: 5) { edges { node { text } } } } } }`,
		map[string]any{"id": p.ID}).Decode(t, &notes)
	harness.Must(t, len(notes.Node.Notes.Edges) == 1 && notes.Node.Notes.Edges[0].Node.Text == secret["note"], "note read back: %+v", notes)

	// Exact-match lookups still find the patient, through the blind index,
	// normalised as before (case for national IDs, case and spaces for
	// identifier values).
	var dup struct{ FindDuplicatePatients []struct{ ID string } }
	s.As("reception", `query($nid: String!) { findDuplicatePatients(input: {nationalId: $nid}) { id } }`,
		map[string]any{"nid": strings.ToLower(secret["nationalId"])}).Decode(t, &dup)
	harness.Must(t, len(dup.FindDuplicatePatients) == 1 && dup.FindDuplicatePatients[0].ID == p.ID, "duplicate by national ID: %+v", dup)
	var byID struct {
		Patients struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	s.As("reception", `query($v: String!) { patients(first: 5, where: {hasIdentifiersWith: {system: "NHIF", value: $v}}) { edges { node { id } } } }`,
		map[string]any{"v": " " + strings.ToLower(secret["identifier"][:4]) + " " + secret["identifier"][4:]}).Decode(t, &byID)
	harness.Must(t, len(byID.Patients.Edges) == 1 && byID.Patients.Edges[0].Node.ID == p.ID, "search by identifier: %+v", byID)
	// A value cannot be registered twice, as before.
	r := s.As("reception", `mutation($id: ID!, $v: String!) { addPatientIdentifier(patientId: $id, input: {system: "NHIF", value: $v}) { id } }`,
		map[string]any{"id": d.Patients[1], "v": strings.ToLower(secret["identifier"])})
	harness.Must(t, r.HasCode("BAD_USER_INPUT") && r.Errors[0].Field() == "input.value", "a taken identifier: %s", harness.Describe(r))

	// And the database holds none of it.
	if b.DatabaseURL != "" {
		for name, v := range secret {
			for _, c := range ent.EncryptedColumns {
				found := rawColumnHas(t, b.DatabaseURL, c, v)
				harness.Must(t, !found, "%s found in clear in %s.%s", name, c.Table, c.Column)
			}
		}
		return
	}
	// Everything committed is in the file or its write-ahead log.
	var raw []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(b.SQLitePath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	// The unique part is in the family name, which is not encrypted, and
	// nowhere else.
	for i := 0; ; {
		j := bytes.Index(raw[i:], []byte(u))
		if j < 0 {
			break
		}
		at := i + j
		if at < len("Odhiambo") || string(raw[at-len("Odhiambo"):at]) != "Odhiambo" {
			t.Errorf("the unique part of a sensitive value is in the SQLite file: %q", raw[max(0, at-60):min(len(raw), at+60)])
		}
		i = at + len(u)
	}
	harness.Must(t, bytes.Contains(raw, []byte("Odhiambo"+u)), "the file should hold the family name in clear (it is not encrypted), or this test reads the wrong file")
	for name, v := range secret {
		harness.Must(t, !bytes.Contains(raw, []byte(v)), "%s (%q) found in clear in the SQLite file", name, v)
	}
}

// rawColumnHas reads a column as stored, without ent, on PostgreSQL.
func rawColumnHas(t *testing.T, url string, c ent.EncryptedColumn, v string) bool {
	t.Helper()
	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(context.Background(),
		fmt.Sprintf(`SELECT COUNT(*) FROM %s WHERE %s LIKE '%%' || $1 || '%%'`, c.Table, c.Column), v).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}

// TestStaffBankDetailsAtRest: bank details HR enters come back in clear to
// HR and payroll, and the staff table holds only ciphertext of them.
func TestStaffBankDetailsAtRest(t *testing.T) {
	t.Parallel()
	b := harness.NewBacking(t)
	s := harness.NewServerOn(t, b)
	d := s.Demo()
	u := rand.Text()[:12]
	secret := map[string]string{
		"accountHolder": "Holder " + u,
		"bankName":      "Bank " + u,
		"accountNumber": "ACC" + u,
		"branch":        "Branch " + u,
	}
	var out struct {
		CreateStaff struct {
			ID          string
			BankDetails struct{ AccountHolder, BankName, AccountNumber, Branch string }
		}
	}
	s.As("hr", `mutation($in: CreateStaffInput!) { createStaff(input: $in) { id bankDetails { accountHolder bankName accountNumber branch } } }`,
		map[string]any{"in": map[string]any{"givenName": "Baraka", "familyName": "Mutua", "kind": "SUPPORT", "departmentId": d.General,
			"employmentType": "PERMANENT", "startDate": "2026-02-01", "bankDetails": map[string]any{
				"accountHolder": secret["accountHolder"], "bankName": secret["bankName"],
				"accountNumber": secret["accountNumber"], "branch": secret["branch"]}}}).Decode(t, &out)
	var got struct {
		Node struct {
			BankDetails struct{ AccountHolder, BankName, AccountNumber, Branch string }
		}
	}
	s.As("payroll", `query($id: ID!) { node(id: $id) { ... on Staff { bankDetails { accountHolder bankName accountNumber branch } } } }`,
		map[string]any{"id": out.CreateStaff.ID}).Decode(t, &got)
	bd := got.Node.BankDetails
	harness.Must(t, bd.AccountHolder == secret["accountHolder"] && bd.BankName == secret["bankName"] &&
		bd.AccountNumber == strings.ToUpper(secret["accountNumber"]) && bd.Branch == secret["branch"], "read back: %+v", bd)
	columns := 0
	for _, c := range ent.EncryptedColumns {
		if c.Table == "staffs" {
			columns++
		}
	}
	harness.Must(t, columns == 4, "the staff table has %d encrypted columns, want the 4 of bank details", columns)
	if b.DatabaseURL != "" {
		for name, v := range secret {
			for _, c := range ent.EncryptedColumns {
				harness.Must(t, !rawColumnHas(t, b.DatabaseURL, c, v) && !rawColumnHas(t, b.DatabaseURL, c, strings.ToUpper(v)),
					"%s found in clear in %s.%s", name, c.Table, c.Column)
			}
		}
		db, err := sql.Open("postgres", b.DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		err = db.QueryRow(`SELECT COUNT(*) FROM staffs WHERE id = $1 AND bank_account_number IS NOT NULL AND bank_account_number <> ''`,
			out.CreateStaff.ID).Scan(&n)
		harness.Must(t, err == nil && n == 1, "the column holds a ciphertext: %d, %v", n, err)
		return
	}
	var raw []byte
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(b.SQLitePath + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		raw = append(raw, b...)
	}
	harness.Must(t, bytes.Contains(raw, []byte("Mutua")), "the file should hold the family name in clear, or this test reads the wrong file")
	harness.Must(t, !bytes.Contains(raw, []byte(u)) && !bytes.Contains(raw, []byte(strings.ToUpper(u))),
		"a bank detail is in the SQLite file in clear")
}
