// Package demo seeds a small demo hospital: departments, one user per role,
// staff, patients and appointments, so that every part of the API has
// something to show on a fresh install.
package demo

import (
	"context"
	"fmt"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/careteammember"
	"github.com/hmis-dev/hmis/ent/patient"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/store"
)

// Login is a demo user's username and role.
type Login struct {
	Username string
	Role     string
}

// Logins lists the demo users, one per role, a second lab technician,
// since a result is verified by someone other than who entered it, and a
// second admin, since a policy change is approved by another admin;
// PatientUsername is linked to a demo patient with appointments.
var Logins = []Login{
	{"admin", "admin"}, {"doctor", "doctor"}, {"nurse", "nurse"}, {"labtech", "labtech"}, {"labtech2", "labtech"},
	{"pharmacist", "pharmacist"}, {"pharmacy_technician", "pharmacy_technician"}, {"reception", "reception"}, {"billing", "billing"},
	{"billing_clerk", "billing_clerk"}, {"cashier", "cashier"}, {"finance_officer", "finance_officer"},
	{"hr", "hr"}, {"payroll", "payroll"}, {"auditor", "auditor"}, {"patient", "patient"}, {"manager", "manager"},
	{"hospital_manager", "hospital_manager"}, {"ward_manager", "ward_manager"},
	// A second administrator: a policy change needs two (four eyes).
	{"admin2", "admin"},
}

// PatientUsername is the demo user who is a patient.
const PatientUsername = "patient"

// staffOf maps the demo staff users to their staff record.
var staffOf = map[string]struct {
	given, family string
	kind          staff.Kind
	department    string
}{
	"admin":               {"Ada", "Okafor", staff.KindADMINISTRATOR, "ADM"},
	"doctor":              {"Grace", "Mwangi", staff.KindDOCTOR, "GEN"},
	"nurse":               {"Tomas", "Lindqvist", staff.KindNURSE, "GEN"},
	"labtech":             {"Priya", "Raman", staff.KindLAB_TECHNICIAN, "LAB"},
	"labtech2":            {"Nadia", "Haddad", staff.KindLAB_TECHNICIAN, "LAB"},
	"pharmacist":          {"Jonas", "Berg", staff.KindPHARMACIST, "PHA"},
	"pharmacy_technician": {"Rosa", "Mendes", staff.KindPHARMACY_TECHNICIAN, "PHA"},
	"reception":           {"Amina", "Diallo", staff.KindRECEPTIONIST, "GEN"},
	"billing":             {"Luis", "Ortega", staff.KindBILLING_CLERK, "ADM"},
	"billing_clerk":       {"Irene", "Kovacs", staff.KindBILLING_CLERK, "ADM"},
	"cashier":             {"Kofi", "Asante", staff.KindBILLING_CLERK, "ADM"},
	"finance_officer":     {"Elena", "Petrova", staff.KindADMINISTRATOR, "ADM"},
	"hr":                  {"Mei", "Chen", staff.KindHR_OFFICER, "ADM"},
	"payroll":             {"Ruth", "Wanjala", staff.KindADMINISTRATIVE, "ADM"},
	"auditor":             {"Sam", "Novak", staff.KindAUDITOR, "ADM"},
	// The manager of General Medicine, who decides the demo doctor's and
	// nurse's leave. Not a clinician, so that no demo slot search or
	// patient list changes with them.
	"manager":          {"Joseph", "Ndungu", staff.KindADMINISTRATIVE, "GEN"},
	"hospital_manager": {"Zawadi", "Kimani", staff.KindADMINISTRATOR, "ADM"},
	"ward_manager":     {"Hana", "Sato", staff.KindNURSE, "GEN"},
	"admin2":           {"Ines", "Duarte", staff.KindADMINISTRATOR, "ADM"},
}

var departments = []struct{ code, name string }{
	{"GEN", "General Medicine"}, {"CAR", "Cardiology"}, {"PED", "Paediatrics"},
	{"LAB", "Laboratory"}, {"PHA", "Pharmacy"}, {"ADM", "Administration"},
}

// Seeded reports whether the database already has users, in which case
// seeding leaves it alone.
func Seeded(ctx context.Context, st *store.Store) (bool, error) {
	return st.Client.User.Query().Exist(auth.SystemContext(ctx))
}

// Seed fills an empty database with the demo hospital, every demo user
// having password. It does nothing if there are users already.
func Seed(ctx context.Context, st *store.Store, password string, now time.Time) error {
	ctx = auth.SystemContext(ctx)
	if done, err := Seeded(ctx, st); err != nil || done {
		return err
	}
	// One hash for all demo users: they share the password anyway, and
	// argon2id is deliberately slow, which would make every test server
	// that seeds the demo pay for ten hashes.
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	return st.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		deps := map[string]*ent.Department{}
		for _, d := range departments {
			dep, err := tx.Department.Create().SetCode(d.code).SetName(d.name).Save(ctx)
			if err != nil {
				return fmt.Errorf("seed department: %w", err)
			}
			deps[d.code] = dep
		}
		staffByUser := map[string]*ent.Staff{}
		for _, l := range Logins {
			s, ok := staffOf[l.Username]
			if !ok {
				continue
			}
			create := tx.Staff.Create().SetGivenName(s.given).SetFamilyName(s.family).SetKind(s.kind).
				SetDepartment(deps[s.department]).SetEmail(l.Username + "@demo.hmis.invalid")
			if l.Username == "doctor" {
				// A record HR has filled in whole, so that expiringLicences
				// and myStaffRecord have something to show.
				create.SetPosition("Medical officer").SetSpecialties([]string{"Internal medicine"}).
					SetLicenceNumber("KMPDC-A1001").SetLicenceIssuer("Kenya Medical Practitioners and Dentists Council").
					SetLicenceExpiresOn(now.UTC().Truncate(24*time.Hour).AddDate(0, 0, 20)).
					SetEmploymentType(staff.EmploymentTypePERMANENT).SetStartDate(date(2020, 1, 6)).
					SetPayBasis(staff.PayBasisMONTHLY).SetPayRate(25_000_000).
					SetBankAccountHolder("Grace Mwangi").SetBankName("Demo Bank").SetBankAccountNumber("0100200300").
					SetBankBranch("Nairobi Central")
			}
			m, err := create.Save(ctx)
			if err != nil {
				return fmt.Errorf("seed staff: %w", err)
			}
			staffByUser[l.Username] = m
		}
		// General Medicine's head keeps its roster and decides its leave; the
		// ward manager, a nurse there, runs its reports as their own
		// department's.
		if err := tx.Department.UpdateOne(deps["GEN"]).SetManagerID(staffByUser["manager"].ID).Exec(ctx); err != nil {
			return fmt.Errorf("seed department manager: %w", err)
		}
		cardiologist, err := tx.Staff.Create().SetGivenName("Kwame").SetFamilyName("Asante").
			SetKind(staff.KindDOCTOR).SetDepartment(deps["CAR"]).Save(ctx)
		if err != nil {
			return fmt.Errorf("seed staff: %w", err)
		}
		var pats []*ent.Patient
		for i, p := range demoPatients {
			created, err := tx.Patient.Create().
				SetMrn(p.mrn).SetGivenName(p.given).SetFamilyName(p.family).
				SetBirthDate(p.birth).SetSex(p.sex).SetCity(p.city).SetCountry("KE").
				SetPhone(fmt.Sprintf("+254 700 000 %03d", i+1)).
				SetNationalID(fmt.Sprintf("DEMO-%06d", i+1)).
				Save(ctx)
			if err != nil {
				return fmt.Errorf("seed patient: %w", err)
			}
			pats = append(pats, created)
		}
		for _, l := range Logins {
			u := tx.User.Create().SetUsername(l.Username).SetPasswordHash(hash).SetRoles([]string{l.Role})
			if s := staffByUser[l.Username]; s != nil {
				u.SetStaff(s)
			}
			if l.Username == PatientUsername {
				u.SetPatient(pats[0])
			}
			if _, err := u.Save(ctx); err != nil {
				return fmt.Errorf("seed user: %w", err)
			}
		}
		day := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
		bookings := []struct {
			patient  int
			provider *ent.Staff
			at       time.Duration
			reason   string
		}{
			{0, staffByUser["doctor"], 9 * time.Hour, "Follow-up: hypertension"},
			{0, cardiologist, 24*time.Hour + 11*time.Hour, "Echocardiogram review"},
			{1, staffByUser["doctor"], 10 * time.Hour, "Persistent cough"},
			{2, staffByUser["nurse"], 9 * time.Hour, "Wound dressing"},
			{3, cardiologist, 14 * time.Hour, "Chest pain on exertion"},
		}
		for _, b := range bookings {
			start := day.Add(b.at)
			if _, err := tx.Appointment.Create().SetPatient(pats[b.patient]).SetProvider(b.provider).
				SetDepartmentID(b.provider.DepartmentID).SetStartAt(start).SetEndAt(start.Add(30 * time.Minute)).
				SetReason(b.reason).Save(ctx); err != nil {
				return fmt.Errorf("seed appointment: %w", err)
			}
		}
		// Doctors and nurses read only the patients they care for. The
		// demo doctor and nurse are on every demo patient's care team, so
		// that the API can be tried on them at once; a patient registered
		// later is theirs once booked with them, or through breakGlass.
		for i, p := range pats {
			if i > 0 {
				if err := tx.CareTeamMember.Create().SetPatient(p).SetStaff(staffByUser["doctor"]).
					SetRole(careteammember.RoleATTENDING).SetSince(now.UTC()).Exec(ctx); err != nil {
					return fmt.Errorf("seed care team: %w", err)
				}
			}
			if err := tx.CareTeamMember.Create().SetPatient(p).SetStaff(staffByUser["nurse"]).
				SetRole(careteammember.RoleNURSE).SetSince(now.UTC()).Exec(ctx); err != nil {
				return fmt.Errorf("seed care team: %w", err)
			}
		}
		if err := seedClinical(ctx, tx, clinicalSeed{
			now: now.UTC(), departments: deps, patients: pats,
			doctor: staffByUser["doctor"], nurse: staffByUser["nurse"], cardiologist: cardiologist,
			labtech: staffByUser["labtech"], labtech2: staffByUser["labtech2"],
		}); err != nil {
			return err
		}
		return seedPharmacy(ctx, tx, now, staffByUser["pharmacist"], staffByUser["doctor"], pats[3])
	})
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// The MRNs are valid (Luhn) and fixed, so demo scripts can name them.
var demoPatients = []struct {
	mrn, given, family, city string
	birth                    time.Time
	sex                      patient.Sex
}{
	{"100000009", "Wanjiru", "Kamau", "Nairobi", date(1968, 3, 14), patient.SexFEMALE},
	{"100000017", "Otieno", "Odhiambo", "Kisumu", date(1985, 11, 2), patient.SexMALE},
	{"100000025", "Fatuma", "Hassan", "Mombasa", date(1992, 7, 21), patient.SexFEMALE},
	{"100000033", "Peter", "Njoroge", "Nakuru", date(1954, 1, 30), patient.SexMALE},
	{"100000041", "Achieng", "Otieno", "Eldoret", date(2016, 5, 9), patient.SexFEMALE},
}
