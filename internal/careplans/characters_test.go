package careplans

import (
	"strings"
	"testing"

	"github.com/hmis-dev/hmis/internal/apperr"
)

// Lengths are counted in characters, as the error says: a description in
// Arabic or with emoji may be as many characters long as one in Latin
// letters, though it takes two or four times the bytes.
func TestDescriptionLengthInCharacters(t *testing.T) {
	ctx, f := setup(t)
	for script, unit := range map[string]string{"Swahili": "Mgonjwa ", "Arabic": "مريض ", "emoji": "💊"} {
		desc := string([]rune(strings.Repeat(unit, MaxDescription))[:MaxDescription-1]) + "."
		plan, err := f.svc.Create(ctx, CreateCarePlanInput{PatientID: f.patient.ID, Title: "مرض السكري " + script, Description: &desc})
		if err != nil {
			t.Fatalf("%s description of exactly %d characters (%d bytes): %v", script, MaxDescription, len(desc), err)
		}
		if plan.Description == nil || *plan.Description != desc {
			t.Fatalf("%s description stored as %d bytes, sent %d", script, len(*plan.Description), len(desc))
		}
		over := desc + "."
		_, err = f.svc.Create(ctx, CreateCarePlanInput{PatientID: f.patient.ID, Title: "Over", Description: &over})
		if e, ok := apperr.As(err); !ok || e.Code != apperr.BadUserInput || e.Field != "input.description" {
			t.Fatalf("%s description of %d characters: %v, want BAD_USER_INPUT on input.description", script, MaxDescription+1, err)
		}
	}
}
