package patients

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/patientidentifier"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/crypt"
	"github.com/hmis-dev/hmis/internal/input"
)

// FindDuplicatePatientsInput describes a person to look for among the
// registered patients. A patient is a candidate when they have the same
// given and family name (ignoring case) and birth date, the same national
// ID, or one of the identifiers.
type FindDuplicatePatientsInput struct {
	GivenName   *string
	FamilyName  *string
	BirthDate   *time.Time
	NationalID  *string
	Identifiers []PatientIdentifierInput
}

// maxDuplicates bounds the candidates listed: more than a handful means the
// criteria are too loose to pick from anyway.
const maxDuplicates = 20

// FindDuplicates lists the active patients who may be the person in.
func (s *Service) FindDuplicates(ctx context.Context, in FindDuplicatePatientsInput) ([]*ent.Patient, error) {
	v := validator{now: s.now()}
	// Names are only trimmed: one longer than any stored finds nothing.
	in.GivenName = v.OptionalText("input.givenName", in.GivenName, math.MaxInt)
	in.FamilyName = v.OptionalText("input.familyName", in.FamilyName, math.MaxInt)
	in.NationalID = v.OptionalText("input.nationalId", in.NationalID, 40)
	if in.GivenName != nil || in.FamilyName != nil || in.BirthDate != nil {
		switch {
		case in.GivenName == nil:
			v.Fail(apperr.BadInput("input.givenName", "is required with familyName and birthDate"))
		case in.FamilyName == nil:
			v.Fail(apperr.BadInput("input.familyName", "is required with givenName and birthDate"))
		case in.BirthDate == nil:
			v.Fail(apperr.BadInput("input.birthDate", "is required with givenName and familyName"))
		}
	}
	v.identifiers("input.identifiers", in.Identifiers)
	if v.Err() == nil && !in.hasCriteria() {
		v.Fail(apperr.BadInput("input", "give the names with the birth date, a national ID or identifiers"))
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return s.findCandidates(ctx, s.store.Client, in)
}

func (in FindDuplicatePatientsInput) byName() bool {
	return in.GivenName != nil && in.FamilyName != nil && in.BirthDate != nil
}

func (in FindDuplicatePatientsInput) hasCriteria() bool {
	return in.byName() || in.NationalID != nil || len(in.Identifiers) > 0
}

// findCandidates runs the duplicate search; merged records are never
// candidates, since their person lives on in the survivor.
func (s *Service) findCandidates(ctx context.Context, client *ent.Client, in FindDuplicatePatientsInput) ([]*ent.Patient, error) {
	keys, err := s.keys()
	if err != nil {
		return nil, err
	}
	var anyOf []predicate.Patient
	if in.byName() {
		day := input.Date(*in.BirthDate)
		anyOf = append(anyOf, patient.And(
			patient.GivenNameEqualFold(strings.TrimSpace(*in.GivenName)),
			patient.FamilyNameEqualFold(strings.TrimSpace(*in.FamilyName)),
			// A range, not equality: how a stored instant compares with
			// another depends on the driver, a day's bounds do not.
			patient.BirthDateGTE(day),
			patient.BirthDateLT(day.AddDate(0, 0, 1)),
		))
	}
	if in.NationalID != nil {
		// National IDs are encrypted; their blind index is of the
		// case-folded value, as the comparison ignored case before.
		anyOf = append(anyOf, patient.NationalIDBidx(keys.BlindIndex(patient.Table, patient.FieldNationalID, *in.NationalID)))
	}
	if len(in.Identifiers) > 0 {
		var ids []predicate.PatientIdentifier
		for _, id := range in.Identifiers {
			ids = append(ids, patientidentifier.And(patientidentifier.System(id.System), identifierValueIs(keys, id.Value)))
		}
		anyOf = append(anyOf, patient.HasIdentifiersWith(patientidentifier.Or(ids...)))
	}
	if len(anyOf) == 0 {
		return []*ent.Patient{}, nil
	}
	return client.Patient.Query().
		Where(patient.StatusEQ(patient.StatusACTIVE), patient.Or(anyOf...)).
		Order(ent.Asc(patient.FieldFamilyName), ent.Asc(patient.FieldGivenName), ent.Asc(patient.FieldMrn)).
		Limit(maxDuplicates).
		All(ctx)
}

// lockKeys names what a registration matching in must hold exclusively
// while it checks for duplicates and inserts.
func (in FindDuplicatePatientsInput) lockKeys() []string {
	var keys []string
	if in.byName() {
		keys = append(keys, fmt.Sprintf("patient-match:name:%s|%s|%s",
			strings.ToLower(*in.GivenName), strings.ToLower(*in.FamilyName), input.Date(*in.BirthDate).Format(time.DateOnly)))
	}
	if in.NationalID != nil {
		keys = append(keys, "patient-match:nid:"+strings.ToUpper(*in.NationalID))
	}
	for _, id := range in.Identifiers {
		keys = append(keys, identifierLockKey(id))
	}
	return keys
}

func identifierLockKey(id PatientIdentifierInput) string {
	return "identifier:" + id.System + "|" + id.Value
}

// identifiersFree fails with the field of the first identifier another
// patient already has.
func (s *Service) identifiersFree(ctx context.Context, client *ent.Client, list string, ids []PatientIdentifierInput) error {
	keys, err := s.keys()
	if err != nil {
		return err
	}
	// Whose identifier it is may be hidden from the viewer; that it is
	// taken is not.
	ctx = auth.SystemContext(ctx)
	for i, id := range ids {
		taken, err := client.PatientIdentifier.Query().
			Where(patientidentifier.System(id.System), identifierValueIs(keys, id.Value)).
			Exist(ctx)
		if err != nil {
			return err
		}
		if taken {
			return apperr.BadInput(fmt.Sprintf("%s[%d].value", list, i), "already identifies another patient")
		}
	}
	return nil
}

// keys is the keyring of the blind indexes that stand in for encrypted
// values in exact-match lookups.
func (s *Service) keys() (*crypt.Keyring, error) {
	if k := s.store.Keys(); k != nil {
		return k, nil
	}
	return nil, crypt.ErrLocked
}

// identifierValueIs matches the identifiers whose (encrypted) value is
// value, by its blind index.
func identifierValueIs(keys *crypt.Keyring, value string) predicate.PatientIdentifier {
	_, value = canonicalIdentifier("", value)
	return patientidentifier.ValueBidx(keys.BlindIndex(patientidentifier.Table, patientidentifier.FieldValue, value))
}

// IdentifierValueIs is the filter on identifier values the API offers in
// place of the generated ones, which cannot compare ciphertext: an exact
// match, case and spaces ignored as when the value was stored.
func (s *Service) IdentifierValueIs(value string) (predicate.PatientIdentifier, error) {
	keys, err := s.keys()
	if err != nil {
		return nil, err
	}
	return identifierValueIs(keys, value), nil
}
