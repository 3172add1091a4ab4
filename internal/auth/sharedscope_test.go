package auth

import "testing"

func TestSharedScope(t *testing.T) {
	key := func(v *Viewer) string { k, _ := SharedScope(v); return k }
	nurseA := &Viewer{UserID: "usr_a", SessionID: "a", Roles: []string{"nurse", "scheduler"}}
	nurseB := &Viewer{UserID: "usr_b", SessionID: "b", Roles: []string{"scheduler", "nurse", "nurse"}}
	if key(nurseA) != key(nurseB) {
		t.Errorf("the same roles in another order are another scope: %q, %q", key(nurseA), key(nurseB))
	}
	distinct := map[string]*Viewer{
		"anonymous":        nil,
		"system":           {System: true},
		"nurse":            nurseA,
		"doctor":           {Roles: []string{"doctor"}},
		"nurse and doctor": {Roles: []string{"doctor", "nurse"}},
		"patient 1":        {Roles: []string{"patient"}, PatientID: "pat_1"},
		"patient 2":        {Roles: []string{"patient"}, PatientID: "pat_2"},
		// Clinicians see the patients they care for: one nurse's are not another's.
		"nurse stf_1": {Roles: []string{"nurse"}, StaffID: "stf_1"},
		"nurse stf_2": {Roles: []string{"nurse"}, StaffID: "stf_2"},
		// A role name must not run into the next one.
		"roles a,b": {Roles: []string{"a", "b"}},
		"role a,b":  {Roles: []string{"a,b"}},
	}
	seen := map[string]string{}
	for name, v := range distinct {
		k := key(v)
		if other, ok := seen[k]; ok {
			t.Errorf("%s and %s share the scope %q", name, other, k)
		}
		seen[k] = name
	}
	_, stand := SharedScope(&Viewer{UserID: "usr_1", StaffID: "stf_1", SessionID: "s", Roles: []string{"patient"}, PatientID: "pat_1"})
	if stand.UserID != "" || stand.StaffID != "stf_1" || stand.SessionID != "" || stand.PatientID != "pat_1" || len(stand.Roles) != 1 {
		t.Errorf("the stand-in viewer carries more or less than the scope: %+v", stand)
	}
}
