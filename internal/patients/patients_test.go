package patients

import (
	"context"
	"testing"
	"time"

	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/testenv"
)

func TestMRN(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		m := newMRN()
		if !ValidMRN(m) {
			t.Fatalf("generated MRN %s fails its own check", m)
		}
		seen[m] = true
	}
	if len(seen) < 990 {
		t.Fatalf("only %d distinct MRNs in 1000", len(seen))
	}
	for _, bad := range []string{"100000008", "10000000", "1000000090", "10000000a"} {
		if ValidMRN(bad) {
			t.Errorf("%s accepted", bad)
		}
	}
	// A single mistyped digit and a swap of neighbours are both caught.
	if ValidMRN("100000019") || ValidMRN("010000009") {
		t.Error("a typo passed the check digit")
	}
}

func TestRegisterValidatesAndNormalises(t *testing.T) {
	st := testenv.Store(t)
	svc := NewService(st)
	ctx := auth.SystemContext(context.Background())
	email, country, blank := " ada@example.org ", "de", "   "
	p, err := svc.Register(ctx, Registration{GivenName: " Ada ", FamilyName: "Lovelace", BirthDate: time.Date(1815, 12, 10, 0, 0, 0, 0, time.UTC),
		Sex: patient.SexFEMALE, Email: &email, Country: &country, Phone: &blank})
	if err == nil {
		t.Fatalf("born before 1880 must be refused, got %+v", p)
	}
	if e, ok := apperr.As(err); !ok || e.Field != "input.birthDate" {
		t.Fatalf("error %v", err)
	}
	out, err := svc.Register(ctx, Registration{GivenName: " Ada ", FamilyName: "Lovelace", BirthDate: time.Date(1915, 12, 10, 0, 0, 0, 0, time.UTC),
		Sex: patient.SexFEMALE, Email: &email, Country: &country, Phone: &blank})
	if err != nil {
		t.Fatal(err)
	}
	if p := out.Patient; p.GivenName != "Ada" || *p.Email != "ada@example.org" || *p.Country != "DE" || p.Phone != nil || !ValidMRN(p.Mrn) {
		t.Fatalf("stored %+v", p)
	}
}
