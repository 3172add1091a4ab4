package globalid

import (
	"strings"
	"testing"
)

func TestNewAndPrefix(t *testing.T) {
	a, b := New("pat"), New("pat")
	if a == b || !strings.HasPrefix(a, "pat_") || !Valid(a, "pat") || Valid(a, "apt") {
		t.Fatalf("ids %q %q", a, b)
	}
	if a > b {
		t.Fatalf("IDs made one after the other must sort in that order: %q > %q", a, b)
	}
	for _, bad := range []string{"", "pat", "pat_", "_01ARZ3NDEKTSV4RRFFQ69G5FAV", "pat_01ARZ3NDEKTSV4RRFFQ69G5FA", "pat_01ARZ3NDEKTSV4RRFFQ69G5FAVX", "pat_ZZZZZZZZZZZZZZZZZZZZZZZZZZ", "pat_01ARZ3NDEKTSV4RRFFQ69G5FAU!"} {
		if Prefix(bad) != "" {
			t.Errorf("%q accepted", bad)
		}
	}
}
