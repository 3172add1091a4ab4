package patients

import (
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
)

// PatientContactInput is a next of kin or emergency contact as entered.
type PatientContactInput struct {
	Name             string
	Relationship     string
	Phone            *string
	Email            *string
	Address          *string
	NextOfKin        bool
	EmergencyContact bool
}

// PatientIdentifierInput is an identifier in another system as entered.
type PatientIdentifierInput struct {
	System string
	Value  string
}

// InsurancePolicyInput is an insurance policy as entered.
type InsurancePolicyInput struct {
	Payer        string
	MemberNumber string
	PlanName     *string
	ValidFrom    time.Time
	ValidTo      *time.Time
	Priority     int
}

// InsurancePolicyValidityInput is the new validity of a policy.
type InsurancePolicyValidityInput struct {
	ValidFrom time.Time
	ValidTo   *time.Time
}

// MaxPriority bounds a policy's rank; nobody holds nine covers at once.
const MaxPriority = 9

var (
	languagePattern   = regexp.MustCompile(`^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$`)
	systemPattern     = regexp.MustCompile(`^[A-Z0-9][A-Z0-9_.:/\-]{0,49}$`)
	identifierPattern = regexp.MustCompile(`^[\p{Lu}\p{N}][\p{Lu}\p{N}.:/\-]{0,63}$`)
)

// language checks a BCP 47 tag and writes it in its conventional case
// (en-KE, zh-Hant-TW), so that equal tags are stored alike.
func (v *validator) language(field string, tag *string) *string {
	if tag == nil {
		return nil
	}
	s := strings.TrimSpace(*tag)
	if s == "" {
		return nil
	}
	if len(s) > 35 || !languagePattern.MatchString(s) {
		v.Fail(apperr.BadInput(field, "must be a BCP 47 language tag such as sw or en-KE"))
		return nil
	}
	parts := strings.Split(s, "-")
	parts[0] = strings.ToLower(parts[0])
	for i := 1; i < len(parts); i++ {
		p := parts[i]
		switch {
		case len(p) == 1:
			// An extension or private-use singleton: what follows is not a
			// script or region, so leave the rest in lower case.
			for j := i; j < len(parts); j++ {
				parts[j] = strings.ToLower(parts[j])
			}
			i = len(parts)
		case len(p) == 4 && isLetters(p):
			parts[i] = strings.ToUpper(p[:1]) + strings.ToLower(p[1:])
		case len(p) == 2 && isLetters(p):
			parts[i] = strings.ToUpper(p)
		default:
			parts[i] = strings.ToLower(p)
		}
	}
	s = strings.Join(parts, "-")
	return &s
}

func isLetters(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) {
			return false
		}
	}
	return true
}

func (v *validator) phone(field string, p *string) {
	if p != nil && !phonePattern.MatchString(*p) {
		v.Fail(apperr.BadInput(field, "is not a phone number"))
	}
}

func (v *validator) email(field string, p *string) {
	if p == nil {
		return
	}
	if a, err := mail.ParseAddress(*p); err != nil || a.Address != *p || len(*p) > 254 {
		v.Fail(apperr.BadInput(field, "is not an email address"))
	}
}

// contactPerson checks a contact, fields named under prefix
// ("input.contacts[0].").
func (v *validator) contactPerson(prefix string, c *PatientContactInput) {
	c.Name = v.Text(prefix+"name", c.Name, 200)
	c.Relationship = v.Text(prefix+"relationship", c.Relationship, 50)
	c.Phone = v.OptionalText(prefix+"phone", c.Phone, 40)
	v.phone(prefix+"phone", c.Phone)
	c.Email = v.OptionalText(prefix+"email", c.Email, 254)
	v.email(prefix+"email", c.Email)
	c.Address = v.OptionalText(prefix+"address", c.Address, 300)
	if c.Phone == nil && c.Email == nil {
		v.Fail(apperr.BadInput(prefix+"phone", "a contact needs a phone or an email"))
	}
}

// identifier checks an identifier and puts it in its stored form: system in
// upper case, value in upper case without spaces. Identifiers are typed in
// from cards and letters with varying case and spacing; one stored form
// makes the same identifier compare equal wherever it was typed.
func (v *validator) identifier(prefix string, id *PatientIdentifierInput) {
	id.System, id.Value = canonicalIdentifier(id.System, id.Value)
	switch {
	case id.System == "":
		v.Fail(apperr.BadInput(prefix+"system", "is required"))
	case !systemPattern.MatchString(id.System):
		v.Fail(apperr.BadInput(prefix+"system", "must be 1 to 50 letters, digits, _ . : / or -, such as PASSPORT or NHIF"))
	case id.Value == "":
		v.Fail(apperr.BadInput(prefix+"value", "is required"))
	case !identifierPattern.MatchString(id.Value):
		v.Fail(apperr.BadInput(prefix+"value", "must be 1 to 64 letters, digits, . : / or -"))
	}
}

func canonicalIdentifier(system, value string) (string, string) {
	system = strings.ToUpper(strings.TrimSpace(system))
	value = strings.ToUpper(strings.Join(strings.Fields(value), ""))
	return system, value
}

// identifiers checks a list of identifiers, fields named under list
// ("input.identifiers").
func (v *validator) identifiers(list string, ids []PatientIdentifierInput) {
	seen := map[PatientIdentifierInput]int{}
	for i := range ids {
		prefix := fmt.Sprintf("%s[%d].", list, i)
		v.identifier(prefix, &ids[i])
		if j, dup := seen[ids[i]]; dup {
			v.Fail(apperr.BadInput(prefix+"value", "is the same identifier as %s[%d]", list, j))
		}
		seen[ids[i]] = i
	}
}

func (v *validator) validity(prefix string, from *time.Time, to **time.Time) {
	*from = input.Date(*from)
	if *to != nil {
		d := input.Date(**to)
		*to = &d
	}
	switch {
	case from.Year() < 1900:
		v.Fail(apperr.BadInput(prefix+"validFrom", "is before 1900"))
	case *to != nil && (*to).Before(*from):
		v.Fail(apperr.BadInput(prefix+"validTo", "must not be before validFrom"))
	}
}

// policy checks a policy, fields named under prefix.
func (v *validator) policy(prefix string, p *InsurancePolicyInput) {
	p.Payer = v.Text(prefix+"payer", p.Payer, 200)
	p.MemberNumber = v.Text(prefix+"memberNumber", p.MemberNumber, 64)
	p.PlanName = v.OptionalText(prefix+"planName", p.PlanName, 200)
	v.validity(prefix, &p.ValidFrom, &p.ValidTo)
	if p.Priority < 1 || p.Priority > MaxPriority {
		v.Fail(apperr.BadInput(prefix+"priority", "must be from 1 to %d", MaxPriority))
	}
}

// policies checks a list of policies and that no two of them clash.
func (v *validator) policies(list string, ps []InsurancePolicyInput) {
	for i := range ps {
		v.policy(fmt.Sprintf("%s[%d].", list, i), &ps[i])
	}
	if v.Err() != nil {
		return
	}
	for j := range ps {
		for i := 0; i < j; i++ {
			a, b := ps[i], ps[j]
			if !overlaps(a.ValidFrom, a.ValidTo, b.ValidFrom, b.ValidTo) {
				continue
			}
			prefix := fmt.Sprintf("%s[%d].", list, j)
			if samePolicy(a.Payer, a.MemberNumber, b.Payer, b.MemberNumber) {
				v.Fail(apperr.BadInput(prefix+"memberNumber", "is the same policy as %s[%d]", list, i))
			}
			if a.Priority == b.Priority {
				v.Fail(apperr.BadInput(prefix+"priority", "is also the priority of %s[%d] for overlapping dates", list, i))
			}
		}
	}
}

// overlaps reports whether two validity periods, inclusive of their last
// day and open-ended without one, share a day.
func overlaps(aFrom time.Time, aTo *time.Time, bFrom time.Time, bTo *time.Time) bool {
	return (aTo == nil || !aTo.Before(bFrom)) && (bTo == nil || !bTo.Before(aFrom))
}

// samePolicy reports whether two policies are the same cover: the same payer
// and member number, however they were typed.
func samePolicy(payerA, memberA, payerB, memberB string) bool {
	_, a := canonicalIdentifier("", memberA)
	_, b := canonicalIdentifier("", memberB)
	return strings.EqualFold(strings.Join(strings.Fields(payerA), " "), strings.Join(strings.Fields(payerB), " ")) && a == b
}
