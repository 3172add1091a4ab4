package staffing

import (
	"net/mail"
	"strings"
	"time"
	"unicode"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
)

// Limits on a record beyond what the data model enforces.
const (
	MaxSpecialties = 20
	// MaxPayRate is 100 000 000.00 in minor units: far above any salary,
	// far below where payroll's sums could overflow.
	MaxPayRate = 10_000_000_000
)

// record is a staff record's content, validated and normalised.
type record struct {
	givenName, familyName string
	kind                  staff.Kind
	departmentID          string
	email, phone          *string
	position              *string
	specialties           []string
	licenceNumber         *string
	licenceIssuer         *string
	licenceExpiresOn      *time.Time
	employmentType        *staff.EmploymentType
	startDate, endDate    *time.Time
	pay                   *PayInput
	bank                  *BankDetailsInput
}

func recordOf(m *ent.Staff) record {
	r := record{givenName: m.GivenName, familyName: m.FamilyName, kind: m.Kind, departmentID: m.DepartmentID,
		email: m.Email, phone: m.Phone, position: m.Position, specialties: m.Specialties,
		licenceNumber: m.LicenceNumber, licenceIssuer: m.LicenceIssuer, licenceExpiresOn: m.LicenceExpiresOn,
		employmentType: m.EmploymentType, startDate: m.StartDate, endDate: m.EndDate}
	if p := PayOf(m); p != nil {
		r.pay = &PayInput{Basis: p.Basis, Rate: p.Rate}
	}
	if m.BankAccountNumber != nil {
		r.bank = &BankDetailsInput{AccountHolder: deref(m.BankAccountHolder), BankName: deref(m.BankName),
			AccountNumber: *m.BankAccountNumber, Branch: m.BankBranch}
	}
	return r
}

func applyUpdate(r *record, in UpdateStaffInput) {
	if v, ok := in.GivenName.ValueOK(); ok {
		r.givenName = deref(v)
	}
	if v, ok := in.FamilyName.ValueOK(); ok {
		r.familyName = deref(v)
	}
	if v, ok := in.Kind.ValueOK(); ok {
		r.kind = ""
		if v != nil {
			r.kind = *v
		}
	}
	if v, ok := in.DepartmentID.ValueOK(); ok {
		r.departmentID = deref(v)
	}
	if v, ok := in.Email.ValueOK(); ok {
		r.email = v
	}
	if v, ok := in.Phone.ValueOK(); ok {
		r.phone = v
	}
	if v, ok := in.Position.ValueOK(); ok {
		r.position = v
	}
	if v, ok := in.Specialties.ValueOK(); ok {
		r.specialties = v
	}
	if v, ok := in.LicenceNumber.ValueOK(); ok {
		r.licenceNumber = v
	}
	if v, ok := in.LicenceIssuer.ValueOK(); ok {
		r.licenceIssuer = v
	}
	if v, ok := in.LicenceExpiresOn.ValueOK(); ok {
		r.licenceExpiresOn = v
	}
	if v, ok := in.EmploymentType.ValueOK(); ok {
		r.employmentType = v
	}
	if v, ok := in.StartDate.ValueOK(); ok {
		r.startDate = v
	}
	if v, ok := in.EndDate.ValueOK(); ok {
		r.endDate = v
	}
	if v, ok := in.Pay.ValueOK(); ok {
		r.pay = v
	}
	if v, ok := in.BankDetails.ValueOK(); ok {
		r.bank = v
	}
}

// check validates and normalises a record, naming the first bad field.
// Names, kind and department are required here, so an update cannot null
// them. Employment type and start date are required of a new record
// (the schema says so) and cannot be cleared (Update says so), but records
// from before staff records had them may lack them until HR fills them in.
func check(c *input.Checker, r record) record {
	r.givenName = c.Text("input.givenName", r.givenName, 100)
	r.familyName = c.Text("input.familyName", r.familyName, 100)
	if c.Err() == nil && staff.KindValidator(r.kind) != nil {
		c.Fail(apperr.BadInput("input.kind", "is not a kind of staff"))
	}
	c.ID("input.departmentId", r.departmentID, input.Department)
	r.email = c.OptionalText("input.email", r.email, 254)
	if c.Err() == nil && r.email != nil {
		if a, err := mail.ParseAddress(*r.email); err != nil || a.Address != *r.email {
			c.Fail(apperr.BadInput("input.email", "is not an email address"))
		}
	}
	r.phone = c.OptionalText("input.phone", r.phone, 40)
	r.position = c.OptionalText("input.position", r.position, 100)
	r.specialties = specialties(c, r.specialties)
	r.licenceNumber = c.OptionalText("input.licenceNumber", r.licenceNumber, 64)
	if c.Err() == nil && r.licenceNumber != nil {
		// Registers print licence numbers in capitals and with or without
		// spaces; stored one way, a duplicate cannot hide behind case.
		n := strings.ToUpper(strings.Join(strings.Fields(*r.licenceNumber), ""))
		r.licenceNumber = &n
		if strings.IndexFunc(n, func(x rune) bool { return !unicode.IsLetter(x) && !unicode.IsDigit(x) && x != '-' && x != '/' }) >= 0 {
			c.Fail(apperr.BadInput("input.licenceNumber", "may hold only letters, digits, '-' and '/'"))
		}
	}
	r.licenceIssuer = c.OptionalText("input.licenceIssuer", r.licenceIssuer, 200)
	r.licenceExpiresOn = date(r.licenceExpiresOn)
	r.startDate = date(r.startDate)
	r.endDate = date(r.endDate)
	if c.Err() != nil {
		return r
	}
	switch {
	case r.licenceNumber != nil && r.licenceExpiresOn == nil:
		c.Fail(apperr.BadInput("input.licenceExpiresOn", "is required with a licence number"))
	case r.licenceNumber != nil && r.licenceIssuer == nil:
		c.Fail(apperr.BadInput("input.licenceIssuer", "is required with a licence number"))
	case r.licenceNumber == nil && (r.licenceExpiresOn != nil || r.licenceIssuer != nil):
		c.Fail(apperr.BadInput("input.licenceNumber", "is required with a licence's issuer or expiry"))
	case r.employmentType != nil && staff.EmploymentTypeValidator(*r.employmentType) != nil:
		c.Fail(apperr.BadInput("input.employmentType", "is not a type of employment"))
	case r.endDate != nil && r.startDate == nil:
		c.Fail(apperr.BadInput("input.startDate", "is required with an end date"))
	case r.endDate != nil && r.endDate.Before(*r.startDate):
		c.Fail(apperr.BadInput("input.endDate", "is before the start date"))
	case r.licenceExpiresOn != nil && r.startDate != nil && r.licenceExpiresOn.Before(*r.startDate):
		c.Fail(apperr.BadInput("input.licenceExpiresOn", "is before the start date: nobody starts on an expired licence"))
	}
	if c.Err() == nil && r.pay != nil {
		switch {
		case r.pay.Basis != PayMonthly && r.pay.Basis != PayHourly:
			c.Fail(apperr.BadInput("input.pay.basis", "is not a pay basis"))
		case r.pay.Rate < 0:
			c.Fail(apperr.BadInput("input.pay.rate", "must not be negative"))
		case r.pay.Rate > MaxPayRate:
			c.Fail(apperr.BadInput("input.pay.rate", "must be at most %s", input.FormatMoney(MaxPayRate)))
		}
	}
	if c.Err() == nil && r.bank != nil {
		b := *r.bank
		b.AccountHolder = c.Text("input.bankDetails.accountHolder", b.AccountHolder, 200)
		b.BankName = c.Text("input.bankDetails.bankName", b.BankName, 200)
		b.AccountNumber = c.Text("input.bankDetails.accountNumber", b.AccountNumber, 34)
		if c.Err() == nil {
			b.AccountNumber = strings.ToUpper(strings.Join(strings.Fields(b.AccountNumber), ""))
			if strings.IndexFunc(b.AccountNumber, func(x rune) bool { return !unicode.IsLetter(x) && !unicode.IsDigit(x) && x != '-' }) >= 0 {
				c.Fail(apperr.BadInput("input.bankDetails.accountNumber", "may hold only letters, digits and '-'"))
			}
		}
		b.Branch = c.OptionalText("input.bankDetails.branch", b.Branch, 64)
		r.bank = &b
	}
	return r
}

func specialties(c *input.Checker, list []string) []string {
	if c.Err() != nil {
		return list
	}
	if len(list) > MaxSpecialties {
		c.Fail(apperr.BadInput("input.specialties", "may hold at most %d", MaxSpecialties))
		return list
	}
	out := make([]string, 0, len(list))
	seen := map[string]bool{}
	for _, s := range list {
		s = c.Text("input.specialties", s, 100)
		if c.Err() != nil {
			return list
		}
		if seen[strings.ToLower(s)] {
			c.Fail(apperr.BadInput("input.specialties", "names %q twice", s))
			return list
		}
		seen[strings.ToLower(s)] = true
		out = append(out, s)
	}
	return out
}

func date(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	d := input.Date(*t)
	return &d
}

func departmentID(id string) predicate.Department { return department.ID(id) }
