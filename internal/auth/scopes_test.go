package auth

import "testing"

func TestScopes(t *testing.T) {
	good := []string{"user/*.read", "user/Observation.read", "system/Patient.rs", "system/Encounter.*", " system/*.cruds "}
	got, err := CheckScopes("input.scopes", append(good, "user/*.read"))
	if err != nil || len(got) != len(good) {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "patient/*", "Patient.read", "patient/patient.read", "launch/patient", "patient/*.readwrite", "patient/*.dc", "x/Patient.read", "patient/*.read", "system/*.write", "user/Patient.cud"} {
		if _, err := CheckScopes("input.scopes", []string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	v := &Viewer{Scopes: []string{"patient/Observation.read", "user/Condition.s", "system/Patient.write"}}
	for typ, want := range map[string]bool{"Observation": true, "Condition": true, "Patient": false, "Encounter": false} {
		if v.MayRead(typ) != want {
			t.Errorf("MayRead(%s) = %v", typ, !want)
		}
	}
	if !(&Viewer{}).MayRead("Patient") || !(&Viewer{Scopes: []string{"user/*.rs"}}).MayRead("Coverage") {
		t.Error("no scopes, or a wildcard, must leave the role alone")
	}
}
