package input

import (
	"fmt"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// IDType is a type of entity an ID input must name. Its prefix comes from
// the map code generation writes from the schemas' GlobalID annotations,
// so a prefix is spelled in one place only.
type IDType struct {
	// Prefix is what the IDs of the type start with ("pat").
	Prefix string
	// noun names one of the type in a message ("a patient").
	noun string
}

// Valid reports whether id is a well-formed ID of type t.
func (t IDType) Valid(id string) bool { return globalid.Valid(id, t.Prefix) }

// ID checks that id is an ID of type t, as a BAD_USER_INPUT naming field.
func ID(field, id string, t IDType) error {
	if !t.Valid(id) {
		return apperr.BadInput(field, "is not %s ID", t.noun)
	}
	return nil
}

// idType looks the prefix of an ent type up; a type without one is a
// mistake in this file, caught when the program starts.
func idType(entType, noun string) IDType {
	prefix, ok := ent.PrefixByType[entType]
	if !ok {
		panic(fmt.Sprintf("input: ent type %s has no ID prefix", entType))
	}
	return IDType{Prefix: prefix, noun: noun}
}

// The types of ID domain inputs name.
var (
	Admission         = idType(ent.TypeAdmission, "an admission")
	Allergy           = idType(ent.TypeAllergy, "an allergy")
	AttendanceRecord  = idType(ent.TypeAttendanceRecord, "an attendance record")
	Appointment       = idType(ent.TypeAppointment, "an appointment")
	Bed               = idType(ent.TypeBed, "a bed")
	CarePlan          = idType(ent.TypeCarePlan, "a care plan")
	Charge            = idType(ent.TypeCharge, "a charge")
	CarePlanActivity  = idType(ent.TypeCarePlanActivity, "a care plan activity")
	CarePlanGoal      = idType(ent.TypeCarePlanGoal, "a care plan goal")
	CareTeamMember    = idType(ent.TypeCareTeamMember, "a care-team membership")
	Claim             = idType(ent.TypeClaim, "a claim")
	ClaimLine         = idType(ent.TypeClaimLine, "a claim line")
	ClinicalNote      = idType(ent.TypeClinicalNote, "a clinical note")
	Department        = idType(ent.TypeDepartment, "a department")
	Dispensing        = idType(ent.TypeDispensing, "a dispensing")
	Drug              = idType(ent.TypeDrug, "a formulary item")
	Encounter         = idType(ent.TypeEncounter, "an encounter")
	HistoryItem       = idType(ent.TypeHistoryItem, "a history item")
	InsurancePlan     = idType(ent.TypeInsurancePlan, "an insurance plan")
	InsurancePolicy   = idType(ent.TypeInsurancePolicy, "an insurance policy")
	JournalEntry      = idType(ent.TypeJournalEntry, "a journal entry")
	Invoice           = idType(ent.TypeInvoice, "an invoice")
	InvoiceDiscount   = idType(ent.TypeInvoiceDiscount, "an invoice discount")
	LeaveRequest      = idType(ent.TypeLeaveRequest, "a leave request")
	LabOrder          = idType(ent.TypeLabOrder, "a lab order")
	LabOrderItem      = idType(ent.TypeLabOrderItem, "a lab order item")
	LabPanel          = idType(ent.TypeLabPanel, "a lab panel")
	LabResult         = idType(ent.TypeLabResult, "a lab result")
	LabInstrument     = idType(ent.TypeLabInstrument, "a lab instrument")
	InstrumentMessage = idType(ent.TypeInstrumentMessage, "an instrument message")
	LabSpecimen       = idType(ent.TypeLabSpecimen, "a specimen")
	LabTest           = idType(ent.TypeLabTest, "a lab test")
	LedgerAccount     = idType(ent.TypeLedgerAccount, "a ledger account")
	MedicationOrder   = idType(ent.TypeMedicationOrder, "a medication order")
	Observation       = idType(ent.TypeObservation, "an observation")
	Patient           = idType(ent.TypePatient, "a patient")
	Payer             = idType(ent.TypePayer, "a payer")
	PayDeduction      = idType(ent.TypePayDeduction, "a pay deduction")
	PayrollRun        = idType(ent.TypePayrollRun, "a payroll run")
	Payslip           = idType(ent.TypePayslip, "a payslip")
	PatientContact    = idType(ent.TypePatientContact, "a contact")
	PatientIdentifier = idType(ent.TypePatientIdentifier, "an identifier")
	PreAuthorization  = idType(ent.TypePreAuthorization, "a pre-authorization")
	Payment           = idType(ent.TypePayment, "a payment")
	PaymentCheckout   = idType(ent.TypePaymentCheckout, "a payment checkout")
	Problem           = idType(ent.TypeProblem, "a problem")
	ProviderTimeOff   = idType(ent.TypeProviderTimeOff, "a time-off")
	Referral          = idType(ent.TypeReferral, "a referral")
	Room              = idType(ent.TypeRoom, "a room")
	RosterEntry       = idType(ent.TypeRosterEntry, "a roster entry")
	ShiftDefinition   = idType(ent.TypeShiftDefinition, "a shift")
	Staff             = idType(ent.TypeStaff, "a staff")
	StockBatch        = idType(ent.TypeStockBatch, "a stock batch")
	StockLocation     = idType(ent.TypeStockLocation, "a stock location")
	Tariff            = idType(ent.TypeTariff, "a price-list entry")
	User              = idType(ent.TypeUser, "a user")
	Ward              = idType(ent.TypeWard, "a ward")
)
