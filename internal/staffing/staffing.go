package staffing

import (
	"context"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/user"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/audit"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// Sessions ends a login's sessions everywhere: its refresh tokens are
// refused and its access tokens, and the sockets opened with them, stop
// working at once (auth.Service).
type Sessions interface {
	EndUserSessions(ctx context.Context, userID string) error
}

// Service manages staff records.
type Service struct {
	store    *store.Store
	sessions Sessions
	isRole   func(string) bool
	loc      *time.Location
	now      func() time.Time
}

// NewService returns a Service. isRole tells a role of the policy from a
// typo; loc is the hospital's time zone, whose today licences expire from.
func NewService(st *store.Store, sessions Sessions, isRole func(string) bool, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, sessions: sessions, isRole: isRole, loc: loc, now: time.Now}
}

// managers are the staff who answer for staff records.
var managers = []staff.Kind{staff.KindHR_OFFICER, staff.KindADMINISTRATOR}

const manage = "manage staff records"

// MaxWithinDays bounds expiringLicences' window.
const MaxWithinDays = 3650

// Create adds a member of staff, and their login when asked to.
func (s *Service) Create(ctx context.Context, in CreateStaffInput) (*ent.Staff, error) {
	var c input.Checker
	r := check(&c, record{
		givenName: in.GivenName, familyName: in.FamilyName, kind: in.Kind, departmentID: in.DepartmentID,
		email: in.Email, phone: in.Phone, position: in.Position, specialties: in.Specialties,
		licenceNumber: in.LicenceNumber, licenceIssuer: in.LicenceIssuer, licenceExpiresOn: in.LicenceExpiresOn,
		employmentType: &in.EmploymentType, startDate: &in.StartDate, endDate: in.EndDate,
		pay: in.Pay, bank: in.BankDetails,
	})
	var acct *StaffAccountInput
	if c.Err() == nil {
		switch {
		case in.Account != nil && in.UserID != nil:
			c.Fail(apperr.BadInput("input.userId", "give either account or userId, not both"))
		case in.Account != nil:
			a := *in.Account
			a.Username = c.Text("input.account.username", a.Username, 64)
			if c.Err() == nil && strings.ContainsAny(a.Username, " \t\n") {
				c.Fail(apperr.BadInput("input.account.username", "may not contain spaces"))
			}
			if c.Err() == nil && (len(a.Password) < auth.MinPasswordLength || len(a.Password) > 256) {
				c.Fail(apperr.BadInput("input.account.password", "must be %d to 256 characters", auth.MinPasswordLength))
			}
			if c.Err() == nil && strings.EqualFold(a.Password, a.Username) {
				c.Fail(apperr.BadInput("input.account.password", "must not be the username"))
			}
			a.Roles = s.checkRoles(ctx, &c, "input.account.roles", a.Roles)
			acct = &a
		case in.UserID != nil:
			c.ID("input.userId", *in.UserID, input.User)
		}
	}
	if err := c.Err(); err != nil {
		return nil, err
	}
	var hash string
	if acct != nil {
		var err error
		if hash, err = auth.HashPassword(acct.Password); err != nil {
			return nil, err
		}
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Staff, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, manage, managers...); err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, licenceKey(r.licenceNumber)...); err != nil {
			return nil, err
		}
		if err := s.checkReferences(ctx, tx, "", r); err != nil {
			return nil, err
		}
		// Logins are the system's to read: HR sees no user but their own.
		sys := auth.SystemContext(ctx)
		var u *ent.User
		switch {
		case acct != nil:
			taken, err := tx.User.Query().Where(user.UsernameEqualFold(acct.Username)).Exist(sys)
			if err != nil {
				return nil, err
			}
			if taken {
				return nil, apperr.BadInput("input.account.username", "is taken")
			}
			u, err = tx.User.Create().SetUsername(acct.Username).SetPasswordHash(hash).SetRoles(acct.Roles).Save(sys)
			if ent.IsConstraintError(err) {
				return nil, apperr.BadInput("input.account.username", "is taken")
			} else if err != nil {
				return nil, err
			}
		case in.UserID != nil:
			var err error
			u, err = tx.User.Query().Where(user.ID(*in.UserID)).WithStaff().WithPatient().Only(sys)
			if ent.IsNotFound(err) {
				return nil, apperr.BadInput("input.userId", "names no user")
			} else if err != nil {
				return nil, err
			}
			if u.Edges.Staff != nil || u.Edges.Patient != nil {
				return nil, apperr.BadInput("input.userId", "is the login of another staff or patient record")
			}
			if err := s.refuseAdminGrant(ctx, "input.userId", u.Roles); err != nil {
				return nil, err
			}
		}
		create := tx.Staff.Create().SetGivenName(r.givenName).SetFamilyName(r.familyName).SetKind(r.kind).
			SetDepartmentID(r.departmentID).SetNillableEmail(r.email).SetNillablePhone(r.phone).
			SetNillablePosition(r.position).SetSpecialties(r.specialties).SetNillableLicenceNumber(r.licenceNumber).
			SetNillableLicenceIssuer(r.licenceIssuer).SetNillableLicenceExpiresOn(r.licenceExpiresOn).
			SetNillableEmploymentType(r.employmentType).SetNillableStartDate(r.startDate).SetNillableEndDate(r.endDate)
		if r.pay != nil {
			create.SetPayBasis(staff.PayBasis(r.pay.Basis)).SetPayRate(r.pay.Rate)
		}
		if b := r.bank; b != nil {
			create.SetBankAccountHolder(b.AccountHolder).SetBankName(b.BankName).SetBankAccountNumber(b.AccountNumber).
				SetNillableBankBranch(b.Branch)
		}
		m, err := create.Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, licenceTaken()
		} else if err != nil {
			return nil, err
		}
		if u != nil {
			if err := tx.User.UpdateOne(u).SetStaffID(m.ID).Exec(sys); err != nil {
				return nil, err
			}
		}
		return m, nil
	})
}

// Update corrects a staff record. The record is read, changed and written
// whole under a lock, and the result is checked whole, so two HR officers
// correcting different fields at once both keep theirs and no change can
// leave the record inconsistent (an end before the start).
func (s *Service) Update(ctx context.Context, id string, in UpdateStaffInput) (*ent.Staff, error) {
	if err := input.ID("id", id, input.Staff); err != nil {
		return nil, err
	}
	var rolesChanged string
	out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Staff, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, manage, managers...); err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, "staff:"+id); err != nil {
			return nil, err
		}
		m, err := tx.Staff.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("staff record not found")
		} else if err != nil {
			return nil, err
		}
		r := recordOf(m)
		if v, ok := in.EmploymentType.ValueOK(); ok && v == nil {
			return nil, apperr.BadInput("input.employmentType", "cannot be cleared")
		}
		if v, ok := in.StartDate.ValueOK(); ok && v == nil {
			return nil, apperr.BadInput("input.startDate", "cannot be cleared")
		}
		applyUpdate(&r, in)
		var c input.Checker
		r = check(&c, r)
		if err := c.Err(); err != nil {
			return nil, err
		}
		var roles []string
		if v, ok := in.Roles.ValueOK(); ok {
			roles = s.checkRoles(ctx, &c, "input.roles", v)
			if err := c.Err(); err != nil {
				return nil, err
			}
		}
		if err := s.store.Lock(ctx, tx, licenceKey(r.licenceNumber)...); err != nil {
			return nil, err
		}
		if err := s.checkReferences(ctx, tx, m.ID, r); err != nil {
			return nil, err
		}
		u := tx.Staff.UpdateOne(m).SetGivenName(r.givenName).SetFamilyName(r.familyName).SetKind(r.kind).
			SetDepartmentID(r.departmentID).SetSpecialties(r.specialties)
		setOrClear(r.email, u.SetEmail, u.ClearEmail)
		setOrClear(r.phone, u.SetPhone, u.ClearPhone)
		setOrClear(r.position, u.SetPosition, u.ClearPosition)
		setOrClear(r.licenceNumber, u.SetLicenceNumber, u.ClearLicenceNumber)
		setOrClear(r.licenceIssuer, u.SetLicenceIssuer, u.ClearLicenceIssuer)
		setOrClear(r.licenceExpiresOn, u.SetLicenceExpiresOn, u.ClearLicenceExpiresOn)
		setOrClear(r.employmentType, u.SetEmploymentType, u.ClearEmploymentType)
		setOrClear(r.startDate, u.SetStartDate, u.ClearStartDate)
		setOrClear(r.endDate, u.SetEndDate, u.ClearEndDate)
		if r.pay != nil {
			u.SetPayBasis(staff.PayBasis(r.pay.Basis)).SetPayRate(r.pay.Rate)
		} else {
			u.ClearPayBasis().ClearPayRate()
		}
		if b := r.bank; b != nil {
			u.SetBankAccountHolder(b.AccountHolder).SetBankName(b.BankName).SetBankAccountNumber(b.AccountNumber)
			setOrClear(b.Branch, u.SetBankBranch, u.ClearBankBranch)
		} else {
			u.ClearBankAccountHolder().ClearBankName().ClearBankAccountNumber().ClearBankBranch()
		}
		saved, err := u.Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, licenceTaken()
		} else if err != nil {
			return nil, err
		}
		if roles != nil {
			sys := auth.SystemContext(ctx)
			login, err := tx.User.Query().Where(user.HasStaffWith(staff.ID(m.ID))).Only(sys)
			if ent.IsNotFound(err) {
				return nil, apperr.BadInput("input.roles", "this member of staff has no login")
			} else if err != nil {
				return nil, err
			}
			if err := s.refuseAdminGrant(ctx, "input.roles", login.Roles); err != nil {
				return nil, err
			}
			// Nobody widens their own access: another HR officer or an
			// administrator changes an HR officer's roles.
			if login.ID == auth.FromContext(ctx).UserID && !sameRoles(login.Roles, roles) {
				return nil, apperr.BadInput("input.roles", "are your own: someone else changes them")
			}
			if !sameRoles(login.Roles, roles) {
				if err := tx.User.UpdateOne(login).SetRoles(roles).Exec(sys); err != nil {
					return nil, err
				}
				rolesChanged = login.ID
			}
		}
		return saved, nil
	})
	if err != nil {
		return nil, err
	}
	// After the commit, so a refused update ends nobody's session; access
	// tokens carry the roles they were issued with, so they must go.
	if rolesChanged != "" {
		if err := s.sessions.EndUserSessions(ctx, rolesChanged); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Deactivate takes a member of staff out of service: the record and its
// login become inactive in one transaction, and then every session of the
// login ends, so that whatever they hold — access token, refresh token, an
// open socket — stops working at once.
func (s *Service) Deactivate(ctx context.Context, id, reason string) (*ent.Staff, error) {
	var c input.Checker
	c.ID("id", id, input.Staff)
	reason = c.Text("reason", reason, 500)
	if err := c.Err(); err != nil {
		return nil, err
	}
	var loginID string
	out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Staff, error) {
		actor, err := auth.ActingStaff(ctx, tx.Staff, manage, managers...)
		if err != nil {
			return nil, err
		}
		if actor.ID == id {
			return nil, apperr.BadInput("id", "is your own record: another HR officer or an administrator deactivates it")
		}
		m, err := tx.Staff.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("staff record not found")
		} else if err != nil {
			return nil, err
		}
		// Conditional on being active, so that of two concurrent changes
		// one is told it lost.
		out, err := tx.Staff.UpdateOne(m).Where(staff.Active(true)).SetActive(false).SetDeactivationReason(reason).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the member of staff is already inactive")
		} else if err != nil {
			return nil, err
		}
		sys := auth.SystemContext(ctx)
		login, err := tx.User.Query().Where(user.HasStaffWith(staff.ID(m.ID))).Only(sys)
		switch {
		case ent.IsNotFound(err):
		case err != nil:
			return nil, err
		default:
			// HR locking an administrator out would leave nobody to undo it.
			if containsRole(login.Roles, "admin") && !auth.FromContext(ctx).HasRole("admin") {
				return nil, apperr.Denied("only an administrator deactivates an administrator")
			}
			if err := tx.User.UpdateOne(login).SetActive(false).Exec(sys); err != nil {
				return nil, err
			}
			loginID = login.ID
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	audit.NoteReason(ctx, reason)
	if loginID != "" {
		if err := s.sessions.EndUserSessions(ctx, loginID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Reactivate puts a member of staff back in service with their login; they
// sign in afresh, as no session survived the deactivation.
func (s *Service) Reactivate(ctx context.Context, id string) (*ent.Staff, error) {
	if err := input.ID("id", id, input.Staff); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Staff, error) {
		if _, err := auth.ActingStaff(ctx, tx.Staff, manage, managers...); err != nil {
			return nil, err
		}
		m, err := tx.Staff.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("staff record not found")
		} else if err != nil {
			return nil, err
		}
		out, err := tx.Staff.UpdateOne(m).Where(staff.Active(false)).SetActive(true).ClearDeactivationReason().Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the member of staff is already active")
		} else if err != nil {
			return nil, err
		}
		sys := auth.SystemContext(ctx)
		if _, err := tx.User.Update().Where(user.HasStaffWith(staff.ID(m.ID))).SetActive(true).Save(sys); err != nil {
			return nil, err
		}
		return out, nil
	})
}

// ExpiringLicences lists active staff whose licence expires within
// withinDays days of today in the hospital's time zone, expired ones
// included: soonest first, ties by name.
func (s *Service) ExpiringLicences(ctx context.Context, withinDays int) ([]*ent.Staff, error) {
	if withinDays < 0 || withinDays > MaxWithinDays {
		return nil, apperr.BadInput("withinDays", "must be from 0 to %d", MaxWithinDays)
	}
	until := input.Today(s.now(), s.loc).AddDate(0, 0, withinDays)
	return s.store.Client.Staff.Query().
		Where(staff.Active(true), staff.LicenceExpiresOnNotNil(), staff.LicenceExpiresOnLTE(until)).
		Order(ent.Asc(staff.FieldLicenceExpiresOn), ent.Asc(staff.FieldFamilyName), ent.Asc(staff.FieldID)).
		All(ctx)
}

// Mine is the viewer's own staff record, nil for a viewer without one.
func (s *Service) Mine(ctx context.Context) (*MyStaffRecord, error) {
	v := auth.FromContext(ctx)
	if v == nil || v.StaffID == "" {
		return nil, nil
	}
	m, err := s.store.Client.Staff.Get(ctx, v.StaffID)
	if ent.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &MyStaffRecord{Staff: m, Pay: PayOf(m), BankDetails: s.BankDetailsOf(ctx, m)}, nil
}

// PayOf is m's pay, nil if none is on record.
func PayOf(m *ent.Staff) *StaffPay {
	if m.PayBasis == nil || m.PayRate == nil {
		return nil
	}
	return &StaffPay{Basis: PayBasis(*m.PayBasis), Rate: *m.PayRate}
}

// BankDetailsOf is m's bank details, nil if none are on record. The policy
// has decided the viewer may read them; the read goes on the audit trail,
// as a read of patient data would.
func (s *Service) BankDetailsOf(ctx context.Context, m *ent.Staff) *BankDetails {
	if m.BankAccountNumber == nil {
		return nil
	}
	audit.NoteSensitive(ctx, "Staff.bankDetails", ent.TypeStaff, m.ID)
	return &BankDetails{AccountHolder: deref(m.BankAccountHolder), BankName: deref(m.BankName),
		AccountNumber: *m.BankAccountNumber, Branch: m.BankBranch}
}

// LoginOf is the login linked to m, nil if there is none.
func (s *Service) LoginOf(ctx context.Context, m *ent.Staff) (*StaffLogin, error) {
	u, err := s.store.Client.User.Query().Where(user.HasStaffWith(staff.ID(m.ID))).Only(auth.SystemContext(ctx))
	if ent.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &StaffLogin{Username: u.Username, Roles: u.Roles, Active: u.Active}, nil
}

// checkRoles validates roles to grant: roles of the policy, assignable to
// a member of staff, admin only by an administrator.
func (s *Service) checkRoles(ctx context.Context, c *input.Checker, field string, roles []string) []string {
	if c.Err() != nil {
		return roles
	}
	if len(roles) == 0 {
		c.Fail(apperr.BadInput(field, "must name at least one role"))
		return roles
	}
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		r = strings.TrimSpace(r)
		switch {
		case s.isRole == nil || !s.isRole(r):
			c.Fail(apperr.BadInput(field, "%q is not a role of the policy", r))
		case r == "patient" || r == "integrator":
			// Their row scope and field rules are for patients and
			// services; a member of staff holding them would be neither.
			c.Fail(apperr.BadInput(field, "%q is not a role for a member of staff", r))
		case containsRole(out, r):
			c.Fail(apperr.BadInput(field, "names %q twice", r))
		}
		if c.Err() != nil {
			return roles
		}
		out = append(out, r)
	}
	c.Fail(s.refuseAdminGrant(ctx, field, out))
	return out
}

// refuseAdminGrant keeps HR from making or taking over an administrator's
// login, which would give them every permission there is.
func (s *Service) refuseAdminGrant(ctx context.Context, field string, roles []string) error {
	if containsRole(roles, "admin") && !auth.FromContext(ctx).HasRole("admin") {
		return apperr.BadInput(field, "only an administrator grants or changes the admin role")
	}
	return nil
}

// checkReferences checks what the record points at or shares with others:
// the department exists, and the licence number is nobody else's.
func (s *Service) checkReferences(ctx context.Context, tx *ent.Tx, self string, r record) error {
	ok, err := tx.Department.Query().Where(departmentID(r.departmentID)).Exist(ctx)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.BadInput("input.departmentId", "names no department")
	}
	if r.licenceNumber == nil {
		return nil
	}
	q := tx.Staff.Query().Where(staff.LicenceNumber(*r.licenceNumber))
	if self != "" {
		q.Where(staff.IDNEQ(self))
	}
	taken, err := q.Exist(auth.SystemContext(ctx))
	if err != nil {
		return err
	}
	if taken {
		return licenceTaken()
	}
	return nil
}

// licenceKey serialises the check and write of one licence number, so two
// records racing for it cannot both pass the check.
func licenceKey(n *string) []string {
	if n == nil {
		return nil
	}
	return []string{"staff-licence:" + *n}
}

func licenceTaken() error {
	return apperr.BadInput("input.licenceNumber", "is already the licence of another member of staff")
}

func containsRole(roles []string, r string) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

func sameRoles(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range a {
		if !containsRole(b, r) {
			return false
		}
	}
	return true
}

func setOrClear[T any, R any, C any](v *T, set func(T) R, clear func() C) {
	if v != nil {
		set(*v)
	} else {
		clear()
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
