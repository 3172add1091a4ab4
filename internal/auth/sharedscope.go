package auth

import (
	"slices"
	"strings"
)

// SharedScope returns a key naming v's row scope, and a stand-in viewer
// that has that scope and nothing else of v's, so that rows can be loaded
// once for every viewer with the same key, as an event is for the many
// dashboards that follow it.
//
// The key covers everything of a viewer that authz.RowFilter and
// authz.Enforcer.Allows read: whether there is one, the system flag, the
// roles, the patient record of a patient, and the member of staff, whose
// care relationships decide which patients a clinician sees. Viewers with the same key therefore get the same rows from
// every query, except for User rows, which RowFilter keeps to a viewer's
// own account: the stand-in has no account, so a shared load sees no User
// row rather than one viewer's account shown to another.
func SharedScope(v *Viewer) (string, *Viewer) {
	if v == nil {
		return "anonymous", nil
	}
	if v.System {
		return "system", &Viewer{System: true}
	}
	roles := slices.Clone(v.Roles)
	slices.Sort(roles)
	roles = slices.Compact(roles)
	key := "roles:" + strings.Join(roles, "\x00") + "\x01patient:" + v.PatientID + "\x01staff:" + v.StaffID
	return key, &Viewer{Roles: roles, PatientID: v.PatientID, StaffID: v.StaffID}
}
