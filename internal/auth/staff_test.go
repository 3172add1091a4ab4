package auth_test

import (
	"context"
	"testing"

	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

// An API key that acts for a member of staff reads as them but never signs
// a step in their name; the same person signed in does.
func TestAPIKeyNeverActsAsTheStaffItReadsFor(t *testing.T) {
	st := testenv.Store(t)
	sys := auth.SystemContext(context.Background())
	tech := st.Client.Staff.Create().SetGivenName("L").SetFamilyName("T").SetKind(staff.KindLAB_TECHNICIAN).SaveX(sys)
	signedIn := auth.WithViewer(context.Background(), &auth.Viewer{UserID: "usr_1", StaffID: tech.ID, Roles: []string{"labtech"}})
	if m, err := auth.ActingStaff(signedIn, st.Client.Staff, "verify lab results", staff.KindLAB_TECHNICIAN); err != nil || m.ID != tech.ID {
		t.Fatalf("the lab technician signed in: %v", err)
	}
	key := auth.WithViewer(context.Background(), &auth.Viewer{APIKeyID: "key_1", StaffID: tech.ID, Roles: []string{"labtech"}})
	if _, err := auth.ActingStaff(key, st.Client.Staff, "verify lab results", staff.KindLAB_TECHNICIAN); apperr.CodeOf(err) != apperr.Forbidden {
		t.Errorf("a key acting for the lab technician verified: %v", err)
	}
}
