package ehr

import (
	"context"
	"fmt"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/icd10code"
	"github.com/hmis-dev/hmis/ent/predicate"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
)

// icd10Catalog is the starter catalog: common diagnoses of general,
// emergency and inpatient practice, with their ICD-10-CM descriptions
// (M54.5 keeps the description it had before the 2022 split into M54.50-59).
var icd10Catalog = []struct{ code, display string }{
	{"A01.00", "Typhoid fever, unspecified"},
	{"A09", "Infectious gastroenteritis and colitis, unspecified"},
	{"A15.0", "Tuberculosis of lung"},
	{"A41.9", "Sepsis, unspecified organism"},
	{"A90", "Dengue fever [classical dengue]"},
	{"B20", "Human immunodeficiency virus [HIV] disease"},
	{"B50.9", "Plasmodium falciparum malaria, unspecified"},
	{"B54", "Unspecified malaria"},
	{"D50.9", "Iron deficiency anemia, unspecified"},
	{"D64.9", "Anemia, unspecified"},
	{"E03.9", "Hypothyroidism, unspecified"},
	{"E05.90", "Thyrotoxicosis, unspecified without thyrotoxic crisis or storm"},
	{"E10.9", "Type 1 diabetes mellitus without complications"},
	{"E11.9", "Type 2 diabetes mellitus without complications"},
	{"E55.9", "Vitamin D deficiency, unspecified"},
	{"E66.9", "Obesity, unspecified"},
	{"E78.5", "Hyperlipidemia, unspecified"},
	{"E86.0", "Dehydration"},
	{"E87.6", "Hypokalemia"},
	{"F10.20", "Alcohol dependence, uncomplicated"},
	{"F17.210", "Nicotine dependence, cigarettes, uncomplicated"},
	{"F20.9", "Schizophrenia, unspecified"},
	{"F32.9", "Major depressive disorder, single episode, unspecified"},
	{"F41.9", "Anxiety disorder, unspecified"},
	{"G40.909", "Epilepsy, unspecified, not intractable, without status epilepticus"},
	{"G43.909", "Migraine, unspecified, not intractable, without status migrainosus"},
	{"G47.00", "Insomnia, unspecified"},
	{"H66.90", "Otitis media, unspecified, unspecified ear"},
	{"I10", "Essential (primary) hypertension"},
	{"I20.0", "Unstable angina"},
	{"I20.9", "Angina pectoris, unspecified"},
	{"I21.9", "Acute myocardial infarction, unspecified"},
	{"I25.10", "Atherosclerotic heart disease of native coronary artery without angina pectoris"},
	{"I26.99", "Other pulmonary embolism without acute cor pulmonale"},
	{"I48.91", "Unspecified atrial fibrillation"},
	{"I50.9", "Heart failure, unspecified"},
	{"I63.9", "Cerebral infarction, unspecified"},
	{"I95.9", "Hypotension, unspecified"},
	{"J01.90", "Acute sinusitis, unspecified"},
	{"J02.9", "Acute pharyngitis, unspecified"},
	{"J03.90", "Acute tonsillitis, unspecified"},
	{"J06.9", "Acute upper respiratory infection, unspecified"},
	{"J18.9", "Pneumonia, unspecified organism"},
	{"J20.9", "Acute bronchitis, unspecified"},
	{"J30.9", "Allergic rhinitis, unspecified"},
	{"J44.9", "Chronic obstructive pulmonary disease, unspecified"},
	{"J45.909", "Unspecified asthma, uncomplicated"},
	{"K21.9", "Gastro-esophageal reflux disease without esophagitis"},
	{"K29.70", "Gastritis, unspecified, without bleeding"},
	{"K35.80", "Unspecified acute appendicitis"},
	{"K59.00", "Constipation, unspecified"},
	{"K80.20", "Calculus of gallbladder without cholecystitis without obstruction"},
	{"K92.2", "Gastrointestinal hemorrhage, unspecified"},
	{"L03.90", "Cellulitis, unspecified"},
	{"L20.9", "Atopic dermatitis, unspecified"},
	{"M06.9", "Rheumatoid arthritis, unspecified"},
	{"M10.9", "Gout, unspecified"},
	{"M19.90", "Unspecified osteoarthritis, unspecified site"},
	{"M54.5", "Low back pain"},
	{"M81.0", "Age-related osteoporosis without current pathological fracture"},
	{"N18.9", "Chronic kidney disease, unspecified"},
	{"N20.0", "Calculus of kidney"},
	{"N39.0", "Urinary tract infection, site not specified"},
	{"N40.0", "Benign prostatic hyperplasia without lower urinary tract symptoms"},
	{"O24.419", "Gestational diabetes mellitus in pregnancy, unspecified control"},
	{"O80", "Encounter for full-term uncomplicated delivery"},
	{"R05.9", "Cough, unspecified"},
	{"R07.9", "Chest pain, unspecified"},
	{"R10.9", "Unspecified abdominal pain"},
	{"R11.2", "Nausea with vomiting, unspecified"},
	{"R50.9", "Fever, unspecified"},
	{"R51.9", "Headache, unspecified"},
	{"U07.1", "COVID-19"},
	{"Z00.00", "Encounter for general adult medical examination without abnormal findings"},
	{"Z23", "Encounter for immunization"},
}

// SeedICD10 loads the starter catalog into client: codes it lacks are added
// and descriptions that changed are brought up to date. Running it again
// changes nothing, so it is safe on every start after migration. Codes
// added by other means are left alone.
func SeedICD10(ctx context.Context, client *ent.Client) error {
	existing, err := client.Icd10Code.Query().All(ctx)
	if err != nil {
		return fmt.Errorf("read ICD-10 catalog: %w", err)
	}
	have := make(map[string]*ent.Icd10Code, len(existing))
	for _, c := range existing {
		have[c.Code] = c
	}
	var missing []*ent.Icd10CodeCreate
	for _, entry := range icd10Catalog {
		current, ok := have[entry.code]
		switch {
		case !ok:
			missing = append(missing, client.Icd10Code.Create().SetCode(entry.code).SetDisplay(entry.display))
		case current.Display != entry.display:
			if err := client.Icd10Code.UpdateOne(current).SetDisplay(entry.display).Exec(ctx); err != nil {
				return fmt.Errorf("update ICD-10 %s: %w", entry.code, err)
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	// Two processes starting at once may both find a code missing; the
	// unique code makes the loser's insert fail, and what it wanted is there.
	if err := client.Icd10Code.CreateBulk(missing...).Exec(ctx); err != nil && !ent.IsConstraintError(err) {
		return fmt.Errorf("load ICD-10 catalog: %w", err)
	}
	return nil
}

// Limits of searchIcd10.
const (
	DefaultICD10Results = 20
	MaxICD10Results     = 100
)

// SearchICD10 finds catalog entries for a diagnosis picker: codes that
// start with text (with or without the dot: "e119" finds E11.9) first, then
// entries whose description contains every word of text, each group in
// code order, at most first in all.
func (s *Service) SearchICD10(ctx context.Context, text string, first *int) ([]*ent.Icd10Code, error) {
	text, err := input.Text("text", text, 100)
	if err != nil {
		return nil, err
	}
	limit := DefaultICD10Results
	switch {
	case first != nil && (*first < 1 || *first > MaxICD10Results):
		return nil, apperr.BadInput("first", "must be between 1 and %d", MaxICD10Results)
	case first != nil:
		limit = *first
	}
	var found []*ent.Icd10Code
	if prefix, ok := codePrefix(text); ok {
		byCode, err := s.store.Client.Icd10Code.Query().
			Where(icd10code.CodeHasPrefix(prefix)).
			Order(ent.Asc(icd10code.FieldCode)).
			Limit(limit).
			All(ctx)
		if err != nil {
			return nil, err
		}
		found = byCode
	}
	if len(found) < limit {
		var words []predicate.Icd10Code
		for _, w := range strings.Fields(text) {
			words = append(words, icd10code.DisplayContainsFold(w))
		}
		byDisplay, err := s.store.Client.Icd10Code.Query().
			Where(words...).
			Order(ent.Asc(icd10code.FieldCode)).
			Limit(limit).
			All(ctx)
		if err != nil {
			return nil, err
		}
		seen := make(map[string]bool, len(found))
		for _, c := range found {
			seen[c.ID] = true
		}
		for _, c := range byDisplay {
			if len(found) == limit {
				break
			}
			if !seen[c.ID] {
				found = append(found, c)
			}
		}
	}
	return found, nil
}

// codePrefix turns what a user types for a code into the stored form: upper
// case, with the dot after the category ("e119" → "E11.9"). ok is false for
// text that cannot be the start of a code.
func codePrefix(text string) (string, bool) {
	t := strings.ToUpper(strings.ReplaceAll(text, ".", ""))
	if len(t) == 0 || len(t) > 7 || t[0] < 'A' || t[0] > 'Z' {
		return "", false
	}
	for _, r := range t[1:] {
		if (r < '0' || r > '9') && (r < 'A' || r > 'Z') {
			return "", false
		}
	}
	if len(t) > 3 {
		t = t[:3] + "." + t[3:]
	}
	return t, true
}
