package staffing

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/staff"
)

// PayBasis is how a member of staff is paid. It mirrors the stored enum,
// which is kept out of the generated schema with the rest of pay.
type PayBasis string

// The pay bases.
const (
	PayMonthly PayBasis = "MONTHLY"
	PayHourly  PayBasis = "HOURLY"
)

// MarshalGQL implements graphql.Marshaler.
func (b PayBasis) MarshalGQL(w io.Writer) { io.WriteString(w, strconv.Quote(string(b))) }

// UnmarshalGQL implements graphql.Unmarshaler.
func (b *PayBasis) UnmarshalGQL(v any) error {
	s, ok := v.(string)
	if !ok {
		return fmt.Errorf("pay basis must be a string")
	}
	*b = PayBasis(s)
	return nil
}

// StaffPay is a member of staff's pay.
type StaffPay struct {
	Basis PayBasis
	// Rate is in minor units: a month's salary or an hour's rate.
	Rate int64
}

// BankDetails is where payroll pays a member of staff.
type BankDetails struct {
	AccountHolder string
	BankName      string
	AccountNumber string
	Branch        *string
}

// StaffLogin is a member of staff's login as HR sees it.
type StaffLogin struct {
	Username string
	Roles    []string
	Active   bool
}

// MyStaffRecord is the viewer's own record with their pay and bank details.
type MyStaffRecord struct {
	Staff       *ent.Staff
	Pay         *StaffPay
	BankDetails *BankDetails
}

// PayInput sets pay.
type PayInput struct {
	Basis PayBasis
	Rate  int64
}

// BankDetailsInput sets bank details.
type BankDetailsInput struct {
	AccountHolder string
	BankName      string
	AccountNumber string
	Branch        *string
}

// StaffAccountInput is a new login made with a staff record.
type StaffAccountInput struct {
	Username string
	Password string
	Roles    []string
}

// CreateStaffInput is the input of createStaff.
type CreateStaffInput struct {
	GivenName        string
	FamilyName       string
	Kind             staff.Kind
	DepartmentID     string
	Email            *string
	Phone            *string
	Position         *string
	Specialties      []string
	LicenceNumber    *string
	LicenceIssuer    *string
	LicenceExpiresOn *time.Time
	EmploymentType   staff.EmploymentType
	StartDate        time.Time
	EndDate          *time.Time
	Pay              *PayInput
	BankDetails      *BankDetailsInput
	Account          *StaffAccountInput
	UserID           *string
}

// UpdateStaffInput is the input of updateStaff: a field left out stays,
// null clears an optional one.
type UpdateStaffInput struct {
	GivenName        graphql.Omittable[*string]
	FamilyName       graphql.Omittable[*string]
	Kind             graphql.Omittable[*staff.Kind]
	DepartmentID     graphql.Omittable[*string]
	Email            graphql.Omittable[*string]
	Phone            graphql.Omittable[*string]
	Position         graphql.Omittable[*string]
	Specialties      graphql.Omittable[[]string]
	LicenceNumber    graphql.Omittable[*string]
	LicenceIssuer    graphql.Omittable[*string]
	LicenceExpiresOn graphql.Omittable[*time.Time]
	EmploymentType   graphql.Omittable[*staff.EmploymentType]
	StartDate        graphql.Omittable[*time.Time]
	EndDate          graphql.Omittable[*time.Time]
	Pay              graphql.Omittable[*PayInput]
	BankDetails      graphql.Omittable[*BankDetailsInput]
	Roles            graphql.Omittable[[]string]
}
