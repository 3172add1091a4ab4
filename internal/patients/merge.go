package patients

import (
	"context"
	"fmt"
	"sort"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/insurancepolicy"
	"github.com/hmis-dev/hmis/ent/migrate"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/patientidentifier"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/globalid"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// MergePatientsInput is the input of mergePatients.
type MergePatientsInput struct {
	SurvivorID  string
	DuplicateID string
	Reason      string
}

// MergePatientsPayload is the result of mergePatients.
type MergePatientsPayload struct {
	Survivor  *ent.Patient
	Duplicate *ent.Patient
}

// Merge moves everything the duplicate record holds to the survivor and
// marks the duplicate MERGED into it. The duplicate stays, so that its ID
// and MRN — on wristbands, labels and other systems — still lead to the
// person through mergedInto.
func (s *Service) Merge(ctx context.Context, in MergePatientsInput) (*MergePatientsPayload, error) {
	var c input.Checker
	c.ID("input.survivorId", in.SurvivorID, input.Patient)
	c.ID("input.duplicateId", in.DuplicateID, input.Patient)
	if c.Err() == nil && in.SurvivorID == in.DuplicateID {
		c.Fail(apperr.BadInput("input.duplicateId", "is the survivor: a patient cannot be merged into itself"))
	}
	in.Reason = c.Text("input.reason", in.Reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	audit.NotePatients(ctx, in.SurvivorID, in.DuplicateID)
	out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*MergePatientsPayload, error) {
		// Both patients, with the lock every writer of patient data takes,
		// so that neither a second merge nor anything added to either
		// record interleaves with moving it.
		if err := lockIgnoringMerged(ctx, tx, in.SurvivorID, in.DuplicateID); err != nil {
			return nil, err
		}
		var out MergePatientsPayload
		survivor, err := mergeParty(ctx, tx, "input.survivorId", "survivor", in.SurvivorID)
		if err != nil {
			return nil, err
		}
		duplicate, err := mergeParty(ctx, tx, "input.duplicateId", "duplicate", in.DuplicateID)
		if err != nil {
			return nil, err
		}
		login, err := refuseMergeClashes(ctx, tx, survivor.ID, duplicate.ID)
		if err != nil {
			return nil, err
		}
		if err := keepIdentifiersOnce(ctx, tx, survivor.ID, duplicate.ID); err != nil {
			return nil, err
		}
		if err := rankPoliciesAfterSurvivor(ctx, tx, survivor.ID, duplicate.ID); err != nil {
			return nil, err
		}
		if err := s.moveRecord(ctx, tx, survivor.ID, duplicate.ID); err != nil {
			return nil, err
		}
		// Records merged into the duplicate earlier lead straight on to the
		// survivor, so mergedInto is always one step from the living record.
		if err := tx.Patient.Update().
			Where(patient.MergedIntoID(duplicate.ID)).
			SetMergedIntoID(survivor.ID).
			Exec(ctx); err != nil {
			return nil, err
		}
		if login != nil {
			// The link is unique: off the duplicate first, then onto the survivor.
			if err := tx.Patient.UpdateOneID(duplicate.ID).ClearUser().Exec(ctx); err != nil {
				return nil, err
			}
			if err := tx.Patient.UpdateOneID(survivor.ID).SetUserID(login.ID).Exec(ctx); err != nil {
				return nil, err
			}
		}
		if out.Survivor, err = fillBlanks(tx, survivor, duplicate).Save(ctx); err != nil {
			return nil, err
		}
		err = tx.Patient.UpdateOneID(duplicate.ID).
			Where(patient.StatusEQ(patient.StatusACTIVE)).
			SetStatus(patient.StatusMERGED).
			SetMergedAt(s.now().UTC()).
			SetMergeReason(in.Reason).
			SetMergedIntoID(survivor.ID).
			Exec(ctx)
		if ent.IsNotFound(err) {
			return nil, errMergedMeanwhile
		} else if err != nil {
			return nil, err
		}
		out.Duplicate, err = tx.Patient.Get(ctx, duplicate.ID)
		return &out, err
	})
	if err != nil {
		return nil, err
	}
	audit.NoteObject(ctx, "Patient", in.SurvivorID)
	audit.NoteObject(ctx, "Patient", in.DuplicateID)
	return out, nil
}

func mergeParty(ctx context.Context, tx *ent.Tx, field, role, id string) (*ent.Patient, error) {
	p, err := tx.Patient.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.BadInput(field, "no such patient")
	} else if err != nil {
		return nil, err
	}
	if p.Status == patient.StatusMERGED {
		return nil, apperr.Conflictf("the %s was already merged into %s", role, deref(p.MergedIntoID))
	}
	return p, nil
}

// refuseMergeClashes refuses what a merge cannot settle by itself, and
// returns the duplicate's patient-app login if it is to move.
func refuseMergeClashes(ctx context.Context, tx *ent.Tx, survivorID, duplicateID string) (*ent.User, error) {
	admitted, err := tx.Admission.Query().
		Where(admission.PatientIDIn(survivorID, duplicateID), admission.StatusEQ(admission.StatusADMITTED)).
		Count(ctx)
	if err != nil {
		return nil, err
	}
	// A person is in one bed at a time; which stay is the real one is for
	// the ward to settle by discharging the other.
	if admitted > 1 {
		return nil, apperr.Conflictf("both patients are currently admitted; discharge one of the stays first")
	}
	// Which user is linked to which patient is not the viewer's to see, but
	// it decides the merge.
	sys := auth.SystemContext(ctx)
	survivorLogin, err := tx.User.Query().Where(user.HasPatientWith(patient.ID(survivorID))).Exist(sys)
	if err != nil {
		return nil, err
	}
	login, err := tx.User.Query().Where(user.HasPatientWith(patient.ID(duplicateID))).Only(sys)
	switch {
	case ent.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	case survivorLogin:
		return nil, apperr.Conflictf("both patients have a patient-app login; remove one of them first")
	}
	return login, nil
}

// keepIdentifiersOnce drops the duplicate's copy of an identifier the
// survivor has too (the same once case and spacing are set aside, as
// records imported from elsewhere may differ in those).
func keepIdentifiersOnce(ctx context.Context, tx *ent.Tx, survivorID, duplicateID string) error {
	ids, err := tx.PatientIdentifier.Query().Where(patientidentifier.PatientIDIn(survivorID, duplicateID)).All(ctx)
	if err != nil {
		return err
	}
	kept := map[PatientIdentifierInput]bool{}
	for _, id := range ids {
		if id.PatientID == survivorID {
			system, value := canonicalIdentifier(id.System, id.Value)
			kept[PatientIdentifierInput{System: system, Value: value}] = true
		}
	}
	var drop []string
	for _, id := range ids {
		system, value := canonicalIdentifier(id.System, id.Value)
		if id.PatientID == duplicateID && kept[PatientIdentifierInput{System: system, Value: value}] {
			drop = append(drop, id.ID)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	_, err = tx.PatientIdentifier.Delete().Where(patientidentifier.IDIn(drop...)).Exec(ctx)
	return err
}

// rankPoliciesAfterSurvivor keeps the survivor's insurance order: a policy
// both records have stays active once, and the duplicate's other active
// policies rank after the survivor's, in their own order.
func rankPoliciesAfterSurvivor(ctx context.Context, tx *ent.Tx, survivorID, duplicateID string) error {
	policies, err := tx.InsurancePolicy.Query().
		Where(insurancepolicy.PatientIDIn(survivorID, duplicateID), insurancepolicy.StatusEQ(insurancepolicy.StatusACTIVE)).
		Order(ent.Asc(insurancepolicy.FieldPriority), ent.Asc(insurancepolicy.FieldCreatedAt)).
		All(ctx)
	if err != nil {
		return err
	}
	var survivors []*ent.InsurancePolicy
	last := 0
	for _, p := range policies {
		if p.PatientID == survivorID {
			survivors = append(survivors, p)
			last = max(last, p.Priority)
		}
	}
	next := last
	for _, p := range policies {
		if p.PatientID != duplicateID {
			continue
		}
		u := tx.InsurancePolicy.UpdateOne(p)
		held := false
		for _, sp := range survivors {
			held = held || samePolicy(sp.Payer, sp.MemberNumber, p.Payer, p.MemberNumber)
		}
		switch {
		case held:
			u.SetStatus(insurancepolicy.StatusINACTIVE)
		case last > 0:
			next++
			u.SetPriority(next)
		default:
			continue // no survivor policies: the duplicate's order stands
		}
		if err := u.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// moveRecord gives the survivor every row of every kind of patient data the
// duplicate has. It goes over ent.PatientColumn, which code generation
// fills with each entity holding a patient_id, so a kind of patient data
// added later moves without anyone remembering to add it here.
func (s *Service) moveRecord(ctx context.Context, tx *ent.Tx, survivorID, duplicateID string) error {
	now := s.now().UTC()
	for _, typ := range patientDataTypes() {
		table, err := tableOf(typ)
		if err != nil {
			return err
		}
		column := ent.PatientColumn[typ]
		update := entsql.Dialect(s.store.Dialect).Update(table).
			Set(column, survivorID).
			Where(entsql.EQ(column, duplicateID))
		if hasColumn(table, "updated_at") {
			update.Set("updated_at", now)
		}
		query, args := update.Query()
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("move %s to the surviving patient: %w", typ, err)
		}
	}
	return nil
}

// patientDataTypes lists, in a fixed order, the entities that belong to a
// patient: every one in ent.PatientColumn but Patient itself.
func patientDataTypes() []string {
	var types []string
	for typ := range ent.PatientColumn {
		if typ != "Patient" {
			types = append(types, typ)
		}
	}
	sort.Strings(types)
	return types
}

// tableOf returns the table of an entity type. ent keeps the table by ID
// prefix, so ask it with an ID of that type.
func tableOf(typ string) (string, error) {
	prefix, ok := ent.PrefixByType[typ]
	if !ok {
		return "", fmt.Errorf("entity %s has no ID prefix", typ)
	}
	return ent.IDToType(context.Background(), globalid.New(prefix))
}

func hasColumn(table, column string) bool {
	for _, t := range migrate.Tables {
		if t.Name != table {
			continue
		}
		for _, c := range t.Columns {
			if c.Name == column {
				return true
			}
		}
	}
	return false
}

// fillBlanks gives the survivor what the duplicate knows and it does not.
// The address moves only as a whole, so no address mixes two records.
func fillBlanks(tx *ent.Tx, survivor, duplicate *ent.Patient) *ent.PatientUpdateOne {
	u := tx.Patient.UpdateOneID(survivor.ID)
	fill := func(have, other *string, set func(string) *ent.PatientUpdateOne) {
		if have == nil && other != nil {
			set(*other)
		}
	}
	fill(survivor.Phone, duplicate.Phone, u.SetPhone)
	fill(survivor.Email, duplicate.Email, u.SetEmail)
	fill(survivor.NationalID, duplicate.NationalID, u.SetNationalID)
	fill(survivor.PreferredLanguage, duplicate.PreferredLanguage, u.SetPreferredLanguage)
	if survivor.AddressLine == nil && survivor.City == nil && survivor.Region == nil && survivor.PostalCode == nil && survivor.Country == nil {
		fill(nil, duplicate.AddressLine, u.SetAddressLine)
		fill(nil, duplicate.City, u.SetCity)
		fill(nil, duplicate.Region, u.SetRegion)
		fill(nil, duplicate.PostalCode, u.SetPostalCode)
		fill(nil, duplicate.Country, u.SetCountry)
	}
	return u
}
