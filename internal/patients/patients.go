// Package patients registers patients — demographics, contacts,
// identifiers, insurance — keeps them up to date, finds likely duplicates
// and merges duplicate records.
package patients

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Registration is the input of registerPatient.
type Registration struct {
	GivenName   string
	FamilyName  string
	BirthDate   time.Time
	Sex         patient.Sex
	Phone       *string
	Email       *string
	AddressLine *string
	City        *string
	Region      *string
	PostalCode  *string
	Country     *string
	NationalID  *string
	// PreferredLanguage is a BCP 47 tag such as sw or en-KE.
	PreferredLanguage   *string
	Contacts            []PatientContactInput
	Identifiers         []PatientIdentifierInput
	InsurancePolicies   []InsurancePolicyInput
	ConfirmNotDuplicate bool
}

// RegisterPatientPayload is the result of registerPatient: the new patient,
// or, when nothing was created, the existing patients it may duplicate.
type RegisterPatientPayload struct {
	Patient    *ent.Patient
	Duplicates []*ent.Patient
}

// Changes is the input of updatePatient: an omitted field is kept, a null
// one cleared.
type Changes struct {
	GivenName   graphql.Omittable[*string]
	FamilyName  graphql.Omittable[*string]
	BirthDate   graphql.Omittable[*time.Time]
	Sex         graphql.Omittable[*patient.Sex]
	Phone       graphql.Omittable[*string]
	Email       graphql.Omittable[*string]
	AddressLine graphql.Omittable[*string]
	City        graphql.Omittable[*string]
	Region      graphql.Omittable[*string]
	PostalCode  graphql.Omittable[*string]
	Country     graphql.Omittable[*string]
	NationalID  graphql.Omittable[*string]

	PreferredLanguage graphql.Omittable[*string]
}

// Service registers and updates patients.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st.
func NewService(st *store.Store) *Service { return &Service{store: st, now: time.Now} }

// mrnAttempts bounds retries when a random MRN collides with an existing one;
// with a billion MRNs to draw from, more than one retry is already rare.
const mrnAttempts = 5

// Register validates r and, unless it may duplicate an existing patient,
// creates the patient with a new MRN and everything r lists, in one
// transaction. Possible duplicates stop it unless r.ConfirmNotDuplicate;
// then nothing is created and the payload lists them.
func (s *Service) Register(ctx context.Context, r Registration) (*RegisterPatientPayload, error) {
	v := validator{now: s.now()}
	r.GivenName = v.Text("input.givenName", r.GivenName, MaxName)
	r.FamilyName = v.Text("input.familyName", r.FamilyName, MaxName)
	v.birthDate("input.birthDate", r.BirthDate)
	v.sex("input.sex", r.Sex)
	contact := contactFields{
		phone: r.Phone, email: r.Email, addressLine: r.AddressLine, city: r.City,
		region: r.Region, postalCode: r.PostalCode, country: r.Country, nationalID: r.NationalID,
	}
	v.contact("input.", &contact)
	r.PreferredLanguage = v.language("input.preferredLanguage", r.PreferredLanguage)
	for i := range r.Contacts {
		v.contactPerson(fmt.Sprintf("input.contacts[%d].", i), &r.Contacts[i])
	}
	v.identifiers("input.identifiers", r.Identifiers)
	v.policies("input.insurancePolicies", r.InsurancePolicies)
	if err := v.Err(); err != nil {
		return nil, err
	}
	match := FindDuplicatePatientsInput{
		GivenName: &r.GivenName, FamilyName: &r.FamilyName, BirthDate: &r.BirthDate,
		NationalID: contact.nationalID, Identifiers: r.Identifiers,
	}
	for attempt := 0; ; attempt++ {
		out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*RegisterPatientPayload, error) {
			// Two desks registering the same person at once must not both
			// miss the other: the duplicate check and the insert are one step
			// for everyone matching the same criteria.
			if err := s.store.Lock(ctx, tx, match.lockKeys()...); err != nil {
				return nil, err
			}
			dups, err := s.findCandidates(ctx, tx.Client(), match)
			if err != nil {
				return nil, err
			}
			if len(dups) > 0 && !r.ConfirmNotDuplicate {
				// Nothing was written: committing only ends the reads.
				return &RegisterPatientPayload{Duplicates: dups}, nil
			}
			if err := s.identifiersFree(ctx, tx.Client(), "input.identifiers", r.Identifiers); err != nil {
				return nil, err
			}
			created, err := tx.Patient.Create().
				SetMrn(newMRN()).
				SetGivenName(r.GivenName).
				SetFamilyName(r.FamilyName).
				SetBirthDate(r.BirthDate).
				SetSex(r.Sex).
				SetNillablePhone(contact.phone).
				SetNillableEmail(contact.email).
				SetNillableAddressLine(contact.addressLine).
				SetNillableCity(contact.city).
				SetNillableRegion(contact.region).
				SetNillablePostalCode(contact.postalCode).
				SetNillableCountry(contact.country).
				SetNillableNationalID(contact.nationalID).
				SetNillablePreferredLanguage(r.PreferredLanguage).
				Save(ctx)
			if err != nil {
				return nil, err
			}
			if err := createRecordItems(ctx, tx, created.ID, r); err != nil {
				return nil, err
			}
			return &RegisterPatientPayload{Patient: created, Duplicates: []*ent.Patient{}}, nil
		})
		if ent.IsConstraintError(err) && attempt < mrnAttempts {
			continue
		}
		return out, err
	}
}

func createRecordItems(ctx context.Context, tx *ent.Tx, patientID string, r Registration) error {
	if len(r.Contacts) > 0 {
		if err := tx.PatientContact.MapCreateBulk(r.Contacts, func(c *ent.PatientContactCreate, i int) {
			in := r.Contacts[i]
			c.SetPatientID(patientID).SetName(in.Name).SetRelationship(in.Relationship).
				SetNillablePhone(in.Phone).SetNillableEmail(in.Email).SetNillableAddress(in.Address).
				SetNextOfKin(in.NextOfKin).SetEmergencyContact(in.EmergencyContact)
		}).Exec(ctx); err != nil {
			return err
		}
	}
	if len(r.Identifiers) > 0 {
		if err := tx.PatientIdentifier.MapCreateBulk(r.Identifiers, func(c *ent.PatientIdentifierCreate, i int) {
			c.SetPatientID(patientID).SetSystem(r.Identifiers[i].System).SetValue(r.Identifiers[i].Value)
		}).Exec(ctx); err != nil {
			return err
		}
	}
	if len(r.InsurancePolicies) > 0 {
		if err := tx.InsurancePolicy.MapCreateBulk(r.InsurancePolicies, func(c *ent.InsurancePolicyCreate, i int) {
			in := r.InsurancePolicies[i]
			c.SetPatientID(patientID).SetPayer(in.Payer).SetMemberNumber(in.MemberNumber).SetNillablePlanName(in.PlanName).
				SetValidFrom(in.ValidFrom).SetNillableValidTo(in.ValidTo).SetPriority(in.Priority)
		}).Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Update applies c to the patient with the given ID.
func (s *Service) Update(ctx context.Context, id string, c Changes) (*ent.Patient, error) {
	if err := input.ID("id", id, input.Patient); err != nil {
		return nil, err
	}
	v := validator{now: s.now()}
	contact := contactFields{}
	pick := func(o graphql.Omittable[*string], dst **string, set *bool) {
		if val, ok := o.ValueOK(); ok {
			*dst, *set = val, true
		}
	}
	var set struct{ phone, email, addressLine, city, region, postalCode, country, nationalID bool }
	pick(c.Phone, &contact.phone, &set.phone)
	pick(c.Email, &contact.email, &set.email)
	pick(c.AddressLine, &contact.addressLine, &set.addressLine)
	pick(c.City, &contact.city, &set.city)
	pick(c.Region, &contact.region, &set.region)
	pick(c.PostalCode, &contact.postalCode, &set.postalCode)
	pick(c.Country, &contact.country, &set.country)
	pick(c.NationalID, &contact.nationalID, &set.nationalID)
	v.contact("input.", &contact)
	var givenName, familyName string
	if val, ok := c.GivenName.ValueOK(); ok {
		givenName = v.Text("input.givenName", deref(val), MaxName)
	}
	if val, ok := c.FamilyName.ValueOK(); ok {
		familyName = v.Text("input.familyName", deref(val), MaxName)
	}
	if val, ok := c.BirthDate.ValueOK(); ok {
		if val == nil {
			v.Fail(apperr.BadInput("input.birthDate", "is required and cannot be cleared"))
		} else {
			v.birthDate("input.birthDate", *val)
		}
	}
	if val, ok := c.Sex.ValueOK(); ok {
		if val == nil {
			v.Fail(apperr.BadInput("input.sex", "is required and cannot be cleared"))
		} else {
			v.sex("input.sex", *val)
		}
	}
	language, setLanguage := c.PreferredLanguage.ValueOK()
	language = v.language("input.preferredLanguage", language)
	if err := v.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Patient, error) {
		// Row scope applies here too: a patient the viewer cannot see is not found.
		if _, err := lockedPatient(ctx, tx, id); err != nil {
			return nil, err
		}
		// Under the lock no merge can retire the record; the condition
		// stays as the last word on it.
		u := tx.Patient.UpdateOneID(id).Where(patient.StatusEQ(patient.StatusACTIVE))
		if givenName != "" {
			u.SetGivenName(givenName)
		}
		if familyName != "" {
			u.SetFamilyName(familyName)
		}
		if val, ok := c.BirthDate.ValueOK(); ok {
			u.SetBirthDate(*val)
		}
		if val, ok := c.Sex.ValueOK(); ok {
			u.SetSex(*val)
		}
		setOrClear := func(isSet bool, val *string, setter func(string) *ent.PatientUpdateOne, clearer func() *ent.PatientUpdateOne) {
			switch {
			case !isSet:
			case val == nil:
				clearer()
			default:
				setter(*val)
			}
		}
		setOrClear(set.phone, contact.phone, u.SetPhone, u.ClearPhone)
		setOrClear(set.email, contact.email, u.SetEmail, u.ClearEmail)
		setOrClear(set.addressLine, contact.addressLine, u.SetAddressLine, u.ClearAddressLine)
		setOrClear(set.city, contact.city, u.SetCity, u.ClearCity)
		setOrClear(set.region, contact.region, u.SetRegion, u.ClearRegion)
		setOrClear(set.postalCode, contact.postalCode, u.SetPostalCode, u.ClearPostalCode)
		setOrClear(set.country, contact.country, u.SetCountry, u.ClearCountry)
		setOrClear(set.nationalID, contact.nationalID, u.SetNationalID, u.ClearNationalID)
		setOrClear(setLanguage, language, u.SetPreferredLanguage, u.ClearPreferredLanguage)
		updated, err := u.Save(ctx)
		if ent.IsNotFound(err) {
			return nil, errMergedMeanwhile
		}
		return updated, err
	})
}

// newMRN draws a nine-digit medical record number: eight random digits and a
// Luhn check digit, so that a mistyped MRN is caught before it finds the
// wrong patient.
func newMRN() string {
	n, err := rand.Int(rand.Reader, big.NewInt(90_000_000))
	if err != nil {
		panic(err) // the system's random source failing is not recoverable
	}
	payload := strconv.FormatInt(n.Int64()+10_000_000, 10)
	return payload + string(input.LuhnDigit(payload))
}

// ValidMRN reports whether mrn is nine digits with a correct check digit.
func ValidMRN(mrn string) bool {
	if len(mrn) != 9 || strings.Trim(mrn, "0123456789") != "" {
		return false
	}
	return input.LuhnDigit(mrn[:8]) == mrn[8]
}

type contactFields struct {
	phone, email, addressLine, city, region, postalCode, country, nationalID *string
}

// validator checks a patient's details: the kit's checker with the rules
// of demographics, which need the current time.
type validator struct {
	input.Checker
	now time.Time
}

// MaxName bounds a given or family name, in characters.
const MaxName = 100

func (v *validator) birthDate(field string, d time.Time) {
	switch {
	case d.After(v.now):
		v.Fail(apperr.BadInput(field, "cannot be in the future"))
	case d.Year() < 1880:
		v.Fail(apperr.BadInput(field, "is before 1880"))
	}
}

func (v *validator) sex(field string, s patient.Sex) {
	if err := patient.SexValidator(s); err != nil {
		v.Fail(apperr.BadInput(field, "must be one of FEMALE, MALE, OTHER, UNKNOWN"))
	}
}

var (
	phonePattern      = regexp.MustCompile(`^\+?[0-9][0-9 ()\-.]{3,38}$`)
	countryPattern    = regexp.MustCompile(`^[A-Z]{2}$`)
	nationalIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9 \-/]{1,39}$`)
)

// contact trims the optional fields, turns blanks into absent values and
// checks their shape.
func (v *validator) contact(prefix string, c *contactFields) {
	trim := func(p **string) {
		if *p == nil {
			return
		}
		s := strings.TrimSpace(**p)
		if s == "" {
			*p = nil
			return
		}
		*p = &s
	}
	for _, p := range []**string{&c.phone, &c.email, &c.addressLine, &c.city, &c.region, &c.postalCode, &c.country, &c.nationalID} {
		trim(p)
	}
	v.phone(prefix+"phone", c.phone)
	v.email(prefix+"email", c.email)
	maxLen := func(field string, p *string, n int) {
		if p != nil {
			v.Fail(input.Length(prefix+field, *p, n))
		}
	}
	maxLen("addressLine", c.addressLine, 200)
	maxLen("city", c.city, 100)
	maxLen("region", c.region, 100)
	maxLen("postalCode", c.postalCode, 20)
	if c.country != nil {
		upper := strings.ToUpper(*c.country)
		c.country = &upper
		if !countryPattern.MatchString(upper) {
			v.Fail(apperr.BadInput(prefix+"country", "must be an ISO 3166-1 alpha-2 code such as KE or DE"))
		}
	}
	if c.nationalID != nil && !nationalIDPattern.MatchString(*c.nationalID) {
		v.Fail(apperr.BadInput(prefix+"nationalId", "must be 2 to 40 letters, digits, spaces, - or /"))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
