package harness

import (
	"sort"
	"strings"
)

// Probes are documents that reach each root operation with harmless
// arguments: an allowed role gets past the guard and is stopped by
// validation (or succeeds without changing anything that matters); a denied
// one gets FORBIDDEN. Each selects only __typename (or a count), which is
// never guarded, so the operation's own decision is all that is tested.
//
// They are kept per domain, beside each other, so adding an operation means
// adding its probe to its domain's map; AllProbes joins them, and the role
// matrix test checks the union against every root field of the schema, so
// an operation without a probe anywhere fails it. A subscription's probe is
// "": it is refused over WebSocket, which each domain's subscription
// authorization test covers.

// PlatformProbes: sign-in, sessions, API keys, the directory and generic reads.
var PlatformProbes = map[string]string{
	"Query.me":                `{ me { __typename } }`,
	"Query.node":              `{ node(id: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV") { __typename } }`,
	"Query.nodes":             `{ nodes(ids: []) { __typename } }`,
	"Query.departments":       `{ departments(first: 1) { __typename } }`,
	"Query.staffs":            `{ staffs(first: 1) { __typename } }`,
	"Query.users":             `{ users(first: 1) { __typename } }`,
	"Query.apiKeys":           `{ apiKeys(first: 1) { __typename } }`,
	"Query.auditEvents":       `{ auditEvents(first: 1) { __typename } }`,
	"Mutation.login":          `mutation { login(input: {username: "matrix-nobody", password: "x"}) { __typename } }`,
	"Mutation.refreshToken":   `mutation { refreshToken(input: {refreshToken: "not-a-token"}) { __typename } }`,
	"Mutation.logout":         `mutation { logout }`,
	"Mutation.changePassword": `mutation { changePassword(input: {currentPassword: "wrong", newPassword: "another-long-password"}) }`,
	"Mutation.createApiKey":   `mutation { createApiKey(input: {name: "matrix", role: "no-such-role"}) { __typename } }`,
	"Mutation.revokeApiKey":   `mutation { revokeApiKey(id: "bad") { __typename } }`,
}

// MFAProbes: the second factor of sign-in.
var MFAProbes = map[string]string{
	"Mutation.verifyMfa":   `mutation { verifyMfa(input: {challengeToken: "x"}) { __typename } }`,
	"Mutation.enrollTotp":  `mutation { enrollTotp(input: {challengeToken: ""}) { __typename } }`,
	"Mutation.confirmTotp": `mutation { confirmTotp(input: {code: ""}) { __typename } }`,
	"Mutation.disableTotp": `mutation { disableTotp(input: {}) }`,
	"Mutation.resetMfa":    `mutation { resetMfa(input: {userId: "bad", reason: "x"}) { __typename } }`,
}

// PatientsProbes: registration and the patient record.
var PatientsProbes = map[string]string{
	"Query.patients":                         `{ patients(first: 1) { __typename } }`,
	"Mutation.registerPatient":               `mutation { registerPatient(input: {givenName: "", familyName: "X", birthDate: "2000-01-01", sex: FEMALE}) { __typename } }`,
	"Mutation.updatePatient":                 `mutation { updatePatient(id: "bad", input: {}) { __typename } }`,
	"Query.patient":                          `{ patient(id: "pat_01ARZ3NDEKTSV4RRFFQ69G5FAV") { __typename } }`,
	"Query.patientByMrn":                     `{ patientByMrn(mrn: "000000000") { __typename } }`,
	"Query.findDuplicatePatients":            `{ findDuplicatePatients(input: {}) { __typename } }`,
	"Mutation.addPatientContact":             `mutation { addPatientContact(patientId: "bad", input: {name: "x", relationship: "y", phone: "+254700000001"}) { __typename } }`,
	"Mutation.updatePatientContact":          `mutation { updatePatientContact(id: "bad", input: {}) { __typename } }`,
	"Mutation.removePatientContact":          `mutation { removePatientContact(id: "bad") }`,
	"Mutation.addPatientIdentifier":          `mutation { addPatientIdentifier(patientId: "bad", input: {system: "X", value: "1"}) { __typename } }`,
	"Mutation.removePatientIdentifier":       `mutation { removePatientIdentifier(id: "bad") }`,
	"Mutation.addInsurancePolicy":            `mutation { addInsurancePolicy(patientId: "bad", input: {payer: "X", memberNumber: "1", validFrom: "2025-01-01"}) { __typename } }`,
	"Mutation.updateInsurancePolicyValidity": `mutation { updateInsurancePolicyValidity(id: "bad", input: {validFrom: "2025-01-01"}) { __typename } }`,
	"Mutation.deactivateInsurancePolicy":     `mutation { deactivateInsurancePolicy(id: "bad") { __typename } }`,
	"Mutation.mergePatients":                 `mutation { mergePatients(input: {survivorId: "bad", duplicateId: "bad", reason: "x"}) { __typename } }`,
}

// SchedulingProbes: appointments, rooms and working hours.
var SchedulingProbes = map[string]string{
	"Query.appointments":               `{ appointments(first: 1) { __typename } }`,
	"Mutation.bookAppointment":         `mutation { bookAppointment(input: {patientId: "bad", providerId: "bad", startAt: "2030-01-01T09:00:00Z", endAt: "2030-01-01T10:00:00Z"}) { __typename } }`,
	"Mutation.cancelAppointment":       `mutation { cancelAppointment(id: "bad", input: {reason: "x"}) { __typename } }`,
	"Mutation.checkInAppointment":      `mutation { checkInAppointment(id: "bad") { __typename } }`,
	"Subscription.appointmentChanged":  "", // over WebSocket: see TestAppointmentChangedAuthorization
	"Query.rooms":                      `{ rooms(first: 1) { __typename } }`,
	"Query.availableSlots":             `{ availableSlots(input: {providerId: "bad", from: "2030-01-02T00:00:00Z", to: "2030-01-01T00:00:00Z"}) { __typename } }`,
	"Query.departmentQueue":            `{ departmentQueue(departmentId: "bad") { __typename } }`,
	"Mutation.rescheduleAppointment":   `mutation { rescheduleAppointment(id: "bad", input: {startAt: "2030-01-01T09:00:00Z", endAt: "2030-01-01T10:00:00Z"}) { __typename } }`,
	"Mutation.startAppointment":        `mutation { startAppointment(id: "bad") { __typename } }`,
	"Mutation.completeAppointment":     `mutation { completeAppointment(id: "bad") { __typename } }`,
	"Mutation.markNoShow":              `mutation { markNoShow(id: "bad") { __typename } }`,
	"Mutation.setProviderAvailability": `mutation { setProviderAvailability(staffId: "bad", periods: []) { __typename } }`,
	"Mutation.addProviderTimeOff":      `mutation { addProviderTimeOff(input: {staffId: "bad", startAt: "2030-01-01T09:00:00Z", endAt: "2030-01-01T10:00:00Z"}) { __typename } }`,
	"Mutation.removeProviderTimeOff":   `mutation { removeProviderTimeOff(id: "bad") { __typename } }`,
	"Mutation.createRoom":              `mutation { createRoom(input: {departmentId: "bad", code: "MATRIX", name: "Matrix"}) { __typename } }`,
	"Mutation.setRoomActive":           `mutation { setRoomActive(id: "bad", active: true) { __typename } }`,
}

// AdmissionProbes: wards, beds and stays.
var AdmissionProbes = map[string]string{
	"Query.wards":                   `{ wards(first: 1) { __typename } }`,
	"Query.beds":                    `{ beds(first: 1) { __typename } }`,
	"Query.admissions":              `{ admissions(first: 1) { __typename } }`,
	"Query.bedBoard":                `{ bedBoard(wardId: "bad") { __typename } }`,
	"Mutation.createWard":           `mutation { createWard(input: {departmentId: "bad", code: "X", name: "X"}) { __typename } }`,
	"Mutation.addBed":               `mutation { addBed(wardId: "bad", code: "X") { __typename } }`,
	"Mutation.admitPatient":         `mutation { admitPatient(input: {patientId: "bad", bedId: "bad", attendingId: "bad", reason: "x", admissionType: ELECTIVE}) { __typename } }`,
	"Mutation.transferPatient":      `mutation { transferPatient(admissionId: "bad", input: {toBedId: "bad", reason: "x"}) { __typename } }`,
	"Mutation.dischargePatient":     `mutation { dischargePatient(admissionId: "bad", input: {summary: "x", disposition: HOME}) { __typename } }`,
	"Mutation.markBedCleaned":       `mutation { markBedCleaned(bedId: "bad") { __typename } }`,
	"Mutation.setBedOutOfService":   `mutation { setBedOutOfService(bedId: "bad", reason: "x") { __typename } }`,
	"Mutation.returnBedToService":   `mutation { returnBedToService(bedId: "bad") { __typename } }`,
	"Subscription.bedStatusChanged": "", // over WebSocket: see TestBedStatusChangedAuthorization
}

// EHRProbes: encounters, problems, allergies, observations, notes and prescribing.
var EHRProbes = map[string]string{
	"Query.encounters":                       `{ encounters(first: 1) { __typename } }`,
	"Query.icd10Codes":                       `{ icd10Codes(first: 1) { __typename } }`,
	"Query.medicationOrders":                 `{ medicationOrders(first: 1) { __typename } }`,
	"Query.searchIcd10":                      `{ searchIcd10(text: "") { __typename } }`,
	"Mutation.startEncounter":                `mutation { startEncounter(input: {patientId: "bad", type: OUTPATIENT, departmentId: "bad", reason: "x"}) { __typename } }`,
	"Mutation.finishEncounter":               `mutation { finishEncounter(id: "bad") { __typename } }`,
	"Mutation.cancelEncounter":               `mutation { cancelEncounter(id: "bad", reason: "x") { __typename } }`,
	"Mutation.recordProblem":                 `mutation { recordProblem(input: {patientId: "bad", icd10Code: "I10"}) { __typename } }`,
	"Mutation.resolveProblem":                `mutation { resolveProblem(id: "bad") { __typename } }`,
	"Mutation.markProblemEnteredInError":     `mutation { markProblemEnteredInError(id: "bad") { __typename } }`,
	"Mutation.recordAllergy":                 `mutation { recordAllergy(input: {patientId: "bad", substance: "x", category: DRUG, severity: MILD}) { __typename } }`,
	"Mutation.updateAllergy":                 `mutation { updateAllergy(id: "bad", input: {}) { __typename } }`,
	"Mutation.recordVitals":                  `mutation { recordVitals(input: {patientId: "bad", heartRate: 70}) { __typename } }`,
	"Mutation.recordObservation":             `mutation { recordObservation(input: {patientId: "bad", code: "2339-0", display: "Glucose", value: 1, unit: "mg/dL"}) { __typename } }`,
	"Mutation.amendObservation":              `mutation { amendObservation(id: "bad", input: {value: 1, reason: "x"}) { __typename } }`,
	"Mutation.markObservationEnteredInError": `mutation { markObservationEnteredInError(id: "bad", reason: "x") { __typename } }`,
	"Mutation.recordHistoryItem":             `mutation { recordHistoryItem(input: {patientId: "bad", category: SOCIAL, description: "x"}) { __typename } }`,
	"Mutation.markHistoryItemEnteredInError": `mutation { markHistoryItemEnteredInError(id: "bad") { __typename } }`,
	"Subscription.vitalsRecorded":            "", // over WebSocket: see TestVitalsRecordedAuthorization
	"Query.clinicalNotes":                    `{ clinicalNotes(first: 1) { __typename } }`,
	"Mutation.writeNote":                     `mutation { writeNote(input: {patientId: "bad", type: PROGRESS, text: "x"}) { __typename } }`,
	"Mutation.updateDraftNote":               `mutation { updateDraftNote(id: "bad", text: "x") { __typename } }`,
	"Mutation.discardDraftNote":              `mutation { discardDraftNote(id: "bad") }`,
	"Mutation.signNote":                      `mutation { signNote(id: "bad") { __typename } }`,
	"Mutation.amendNote":                     `mutation { amendNote(id: "bad", input: {text: "x", reason: "y"}) { __typename } }`,
	"Mutation.prescribeMedication": `mutation { prescribeMedication(input: {patientId: "bad", drug: "x", doseAmount: 1, doseUnit: "mg",
		  route: ORAL, frequency: "BID", quantity: 1}) { __typename } }`,
	"Mutation.reviseMedicationOrder": `mutation { reviseMedicationOrder(id: "bad", input: {drug: "x", doseAmount: 1, doseUnit: "mg",
		  route: ORAL, frequency: "BID", quantity: 1}) { __typename } }`,
	"Mutation.stopMedicationOrder":     `mutation { stopMedicationOrder(id: "bad", reason: "x") { __typename } }`,
	"Mutation.completeMedicationOrder": `mutation { completeMedicationOrder(id: "bad") { __typename } }`,
}

// CareProbes: care plans, referrals and care teams.
var CareProbes = map[string]string{
	"Query.referrals":                    `{ referrals(first: 1) { __typename } }`,
	"Mutation.createCarePlan":            `mutation { createCarePlan(input: {patientId: "bad", title: "x"}) { __typename } }`,
	"Mutation.activateCarePlan":          `mutation { activateCarePlan(id: "bad") { __typename } }`,
	"Mutation.completeCarePlan":          `mutation { completeCarePlan(id: "bad") { __typename } }`,
	"Mutation.cancelCarePlan":            `mutation { cancelCarePlan(id: "bad") { __typename } }`,
	"Mutation.addCarePlanGoal":           `mutation { addCarePlanGoal(carePlanId: "bad", input: {description: "x"}) { __typename } }`,
	"Mutation.setCarePlanGoalStatus":     `mutation { setCarePlanGoalStatus(id: "bad", status: ACHIEVED) { __typename } }`,
	"Mutation.addCarePlanActivity":       `mutation { addCarePlanActivity(carePlanId: "bad", input: {description: "x"}) { __typename } }`,
	"Mutation.setCarePlanActivityStatus": `mutation { setCarePlanActivityStatus(id: "bad", status: COMPLETED) { __typename } }`,
	"Query.incomingReferrals":            `{ incomingReferrals(first: 1) { __typename } }`,
	"Mutation.referPatient":              `mutation { referPatient(input: {patientId: "bad", toDepartmentId: "bad", reason: "x"}) { __typename } }`,
	"Mutation.acceptReferral":            `mutation { acceptReferral(id: "bad") { __typename } }`,
	"Mutation.declineReferral":           `mutation { declineReferral(id: "bad", reason: "x") { __typename } }`,
	"Mutation.completeReferral":          `mutation { completeReferral(id: "bad") { __typename } }`,
	"Mutation.cancelReferral":            `mutation { cancelReferral(id: "bad", reason: "x") { __typename } }`,
	"Mutation.addCareTeamMember":         `mutation { addCareTeamMember(input: {patientId: "bad", staffId: "bad", role: OTHER}) { __typename } }`,
	"Mutation.endCareTeamMembership":     `mutation { endCareTeamMembership(id: "bad") { __typename } }`,
}

// LabProbes: orders, specimens and results.
var LabProbes = map[string]string{
	"Query.labOrders":                     `{ labOrders(first: 1) { totalCount } }`,
	"Query.labOrderItems":                 `{ labOrderItems(first: 1) { totalCount } }`,
	"Query.labPanels":                     `{ labPanels(first: 1) { totalCount } }`,
	"Query.labResults":                    `{ labResults(first: 1) { totalCount } }`,
	"Query.labSpecimens":                  `{ labSpecimens(first: 1) { totalCount } }`,
	"Query.labTests":                      `{ labTests(first: 1) { totalCount } }`,
	"Query.labSpecimenByAccession":        `{ labSpecimenByAccession(accessionNumber: "NONE") { id } }`,
	"Query.unacknowledgedCriticalResults": `{ unacknowledgedCriticalResults { totalCount } }`,
	"Mutation.orderLabTests":              `mutation { orderLabTests(input: {patientId: "bad", testIds: ["bad"]}) { __typename } }`,
	"Mutation.cancelLabOrderItem":         `mutation { cancelLabOrderItem(id: "bad", reason: "x") { __typename } }`,
	"Mutation.collectLabSpecimen":         `mutation { collectLabSpecimen(input: {itemIds: ["bad"]}) { __typename } }`,
	"Mutation.receiveLabSpecimen":         `mutation { receiveLabSpecimen(id: "bad") { __typename } }`,
	"Mutation.rejectLabSpecimen":          `mutation { rejectLabSpecimen(id: "bad", input: {reason: HAEMOLYSED}) { __typename } }`,
	"Mutation.enterLabResult":             `mutation { enterLabResult(itemId: "bad", input: {numericValue: 1}) { __typename } }`,
	"Mutation.verifyLabResult":            `mutation { verifyLabResult(id: "bad") { __typename } }`,
	"Mutation.amendLabResult":             `mutation { amendLabResult(id: "bad", input: {numericValue: 1, reason: "x"}) { __typename } }`,
	"Mutation.acknowledgeCriticalResult":  `mutation { acknowledgeCriticalResult(id: "bad") { __typename } }`,
	"Subscription.labResultVerified":      "", // over WebSocket: see the lab subscription tests
	"Subscription.criticalLabResult":      "", // over WebSocket: see the lab subscription tests
}

// FormularyProbes: the formulary and the tables safer prescribing reads.
var FormularyProbes = map[string]string{
	"Query.formulary":                  `{ formulary(first: 1) { totalCount } }`,
	"Query.allergenClasses":            `{ allergenClasses(first: 1) { totalCount } }`,
	"Query.drugInteractions":           `{ drugInteractions(first: 1) { totalCount } }`,
	"Mutation.createFormularyItem":     `mutation { createFormularyItem(input: {code: "", genericName: "x", unitOfIssue: "tablet"}) { __typename } }`,
	"Mutation.updateFormularyItem":     `mutation { updateFormularyItem(id: "bad", input: {}) { __typename } }`,
	"Mutation.deactivateFormularyItem": `mutation { deactivateFormularyItem(id: "bad") { __typename } }`,
	"Mutation.reactivateFormularyItem": `mutation { reactivateFormularyItem(id: "bad") { __typename } }`,
}

// PharmacyProbes: stock, dispensing and recall.
var PharmacyProbes = map[string]string{
	"Query.stockLocations":               `{ stockLocations(first: 1) { totalCount } }`,
	"Query.stockBatches":                 `{ stockBatches(first: 1) { totalCount } }`,
	"Query.stockMovements":               `{ stockMovements(first: 1) { totalCount } }`,
	"Query.dispensings":                  `{ dispensings(first: 1) { totalCount } }`,
	"Query.stockLevels":                  `{ stockLevels(locationId: "bad") { __typename } }`,
	"Query.expiringStock":                `{ expiringStock(withinDays: -1) { __typename } }`,
	"Query.lowStock":                     `{ lowStock(locationId: "bad") { __typename } }`,
	"Query.stockValuation":               `{ stockValuation { __typename } }`,
	"Query.pharmacyQueue":                `{ pharmacyQueue(first: 0) { __typename } }`,
	"Query.recallTrace":                  `{ recallTrace(lotNumber: "") { __typename } }`,
	"Mutation.createStockLocation":       `mutation { createStockLocation(input: {code: "", name: "x", kind: PHARMACY}) { __typename } }`,
	"Mutation.receiveStock":              `mutation { receiveStock(input: {locationId: "bad", drugId: "bad", lotNumber: "x", expiryDate: "2030-01-01", quantity: 1, unitCost: "1.00"}) { __typename } }`,
	"Mutation.transferStock":             `mutation { transferStock(input: {batchId: "bad", toLocationId: "bad", quantity: 1}) { __typename } }`,
	"Mutation.adjustStock":               `mutation { adjustStock(input: {batchId: "bad", countedQuantity: 0, reason: "x"}) { __typename } }`,
	"Mutation.writeOffExpired":           `mutation { writeOffExpired(locationId: "bad") { __typename } }`,
	"Mutation.dispenseMedication":        `mutation { dispenseMedication(input: {orderId: "bad"}) { __typename } }`,
	"Mutation.witnessDispensing":         `mutation { witnessDispensing(id: "bad") { __typename } }`,
	"Mutation.cancelDispensing":          `mutation { cancelDispensing(id: "bad", reason: "x") { __typename } }`,
	"Mutation.returnDispensedMedication": `mutation { returnDispensedMedication(id: "bad", quantity: 1) { __typename } }`,
	"Subscription.stockLow":              "", // over WebSocket: see TestStockSubscriptionsAuthorization
	"Subscription.batchExpiring":         "", // over WebSocket: see TestStockSubscriptionsAuthorization
}

// LedgerProbes: the general ledger.
var LedgerProbes = map[string]string{
	"Query.ledgerAccounts":            `{ ledgerAccounts(first: 1) { totalCount } }`,
	"Query.journalEntries":            `{ journalEntries(first: 1) { totalCount } }`,
	"Query.accountingPeriods":         `{ accountingPeriods(first: 1) { totalCount } }`,
	"Query.trialBalance":              `{ trialBalance(asOf: "2020-01-01") { __typename } }`,
	"Query.accountLedger":             `{ accountLedger(accountId: "bad", from: "2020-01-01", to: "2020-01-31") { __typename } }`,
	"Mutation.createLedgerAccount":    `mutation { createLedgerAccount(input: {code: "", name: "x", type: ASSET}) { __typename } }`,
	"Mutation.postJournalEntry":       `mutation { postJournalEntry(input: {entryDate: "2020-01-01", memo: "x", lines: [], idempotencyKey: "probe"}) { __typename } }`,
	"Mutation.reverseJournalEntry":    `mutation { reverseJournalEntry(id: "bad", reason: "x") { __typename } }`,
	"Mutation.closeAccountingPeriod":  `mutation { closeAccountingPeriod(period: "bad") { __typename } }`,
	"Mutation.reopenAccountingPeriod": `mutation { reopenAccountingPeriod(period: "bad", reason: "x") { __typename } }`,
}

// ChargesProbes: the price list and the charges.
var ChargesProbes = map[string]string{
	"Query.tariffs":                   `{ tariffs(first: 1) { totalCount } }`,
	"Query.charges":                   `{ charges(first: 1) { totalCount } }`,
	"Mutation.setTariffPrice":         `mutation { setTariffPrice(input: {code: "", name: "x", category: ITEM, price: "1.00"}) { __typename } }`,
	"Mutation.seedPriceList":          `mutation { seedPriceList(input: {consultationFee: "-1.00", bedDayFee: "0"}) }`,
	"Mutation.addManualCharge":        `mutation { addManualCharge(input: {patientId: "bad", tariffCode: "x", quantity: 1}) { __typename } }`,
	"Mutation.reverseCharge":          `mutation { reverseCharge(id: "bad", reason: "x") { __typename } }`,
	"Query.invoices":                  `{ invoices(first: 1) { totalCount } }`,
	"Mutation.createInvoice":          `mutation { createInvoice(input: {patientId: "bad"}) { __typename } }`,
	"Mutation.requestInvoiceDiscount": `mutation { requestInvoiceDiscount(input: {invoiceId: "bad", amount: "1.00", reason: "x"}) { __typename } }`,
	"Mutation.approveInvoiceDiscount": `mutation { approveInvoiceDiscount(id: "bad") { __typename } }`,
	"Mutation.issueInvoice":           `mutation { issueInvoice(id: "bad") { __typename } }`,
	"Mutation.voidInvoice":            `mutation { voidInvoice(id: "bad", reason: "x") { __typename } }`,
	"Query.payments":                  `{ payments(first: 1) { totalCount } }`,
	"Mutation.recordPayment":          `mutation { recordPayment(input: {patientId: "bad", method: CASH, amount: "1.00", idempotencyKey: "x"}) { __typename } }`,
	"Mutation.applyCredit":            `mutation { applyCredit(input: {invoiceId: "bad", amount: "1.00", idempotencyKey: "x"}) { __typename } }`,
	"Mutation.refundPayment":          `mutation { refundPayment(input: {patientId: "bad", method: CASH, amount: "1.00", reason: "x", idempotencyKey: "x"}) { __typename } }`,
	"Mutation.adjustInvoice":          `mutation { adjustInvoice(input: {invoiceId: "bad", kind: BAD_DEBT, amount: "1.00", reason: "x"}) { __typename } }`,
	"Query.refunds":                   `{ refunds(first: 1) { totalCount } }`,
	"Query.patientCredit":             `{ patientCredit(patientId: "bad") }`,
}

// ProbeSets are every domain's probes, by domain.
var ProbeSets = map[string]map[string]string{
	"platform":   PlatformProbes,
	"mfa":        MFAProbes,
	"patients":   PatientsProbes,
	"scheduling": SchedulingProbes,
	"admission":  AdmissionProbes,
	"ehr":        EHRProbes,
	"care":       CareProbes,
	"lab":        LabProbes,
	"careaccess": CareAccessProbes,
	"formulary":  FormularyProbes,
	"pharmacy":   PharmacyProbes,
	"charges":    ChargesProbes,
	"ledger":     LedgerProbes,
	"insurance":  InsuranceProbes,
	"patientapp": PatientAppProbes,
	"staffing":   StaffingProbes,
	"rostering":  RosteringProbes,
	"payroll":    PayrollProbes,
	"leave":      LeaveProbes,
	"attendance": AttendanceProbes,
	"reports":    ReportsProbes,
	"policy":     PolicyProbes,
}

// PolicyProbes: the access policy as live data.
var PolicyProbes = map[string]string{
	"Query.accessPolicy":           `{ accessPolicy { version } }`,
	"Query.policyProposals":        `{ policyProposals(status: PROPOSED) { __typename } }`,
	"Query.previewPolicyChange":    `{ previewPolicyChange(input: {baseVersion: -1, reason: "x"}) { __typename } }`,
	"Mutation.proposePolicyChange": `mutation { proposePolicyChange(input: {baseVersion: -1, reason: "x"}) { __typename } }`,
	"Mutation.approvePolicyChange": `mutation { approvePolicyChange(id: "bad") { __typename } }`,
	"Mutation.rejectPolicyChange":  `mutation { rejectPolicyChange(id: "bad", reason: "x") { __typename } }`,
	"Mutation.rollbackPolicy":      `mutation { rollbackPolicy(toVersion: -1, reason: "x") { __typename } }`,
}

// LeaveProbes: leave requests, decisions and balances.
var LeaveProbes = map[string]string{
	"Query.myLeaveBalances":        `{ myLeaveBalances(year: 1999) { __typename } }`,
	"Query.leaveBalances":          `{ leaveBalances(staffId: "bad", year: 2030) { __typename } }`,
	"Query.myLeaveRequests":        `{ myLeaveRequests(first: 1) { totalCount } }`,
	"Query.leaveRequests":          `{ leaveRequests(staffId: "bad", first: 1) { totalCount } }`,
	"Mutation.requestLeave":        `mutation { requestLeave(input: {leaveType: ANNUAL, startDate: "2030-01-02", endDate: "2030-01-01"}) { __typename } }`,
	"Mutation.cancelLeave":         `mutation { cancelLeave(id: "bad") { __typename } }`,
	"Mutation.approveLeave":        `mutation { approveLeave(id: "bad") { __typename } }`,
	"Mutation.rejectLeave":         `mutation { rejectLeave(id: "bad", note: "x") { __typename } }`,
	"Mutation.setLeaveEntitlement": `mutation { setLeaveEntitlement(staffId: "bad", year: 2030, leaveType: ANNUAL, days: 1) { __typename } }`,
}

// AttendanceProbes: clocking in and out, and HR's records.
var AttendanceProbes = map[string]string{
	"Query.myAttendance":              `{ myAttendance(from: "2030-01-02", to: "2030-01-01") { totalCount } }`,
	"Query.attendance":                `{ attendance(staffId: "bad", from: "2030-01-01", to: "2030-01-01") { totalCount } }`,
	"Query.attendanceMissingClockOut": `{ attendanceMissingClockOut(departmentId: "bad") { __typename } }`,
	"Mutation.clockIn":                `mutation { clockIn(note: "` + strings.Repeat("x", 501) + `") { __typename } }`,
	"Mutation.clockOut":               `mutation { clockOut(note: "` + strings.Repeat("x", 501) + `") { __typename } }`,
	"Mutation.recordAttendance":       `mutation { recordAttendance(input: {staffId: "bad", clockInAt: "2030-01-01T08:00:00Z", reason: "x"}) { __typename } }`,
	"Mutation.correctAttendance":      `mutation { correctAttendance(id: "bad", input: {reason: "x"}) { __typename } }`,
}

// RosteringProbes: shifts, rosters and their coverage.
var RosteringProbes = map[string]string{
	"Query.shiftDefinitions":             `{ shiftDefinitions(first: 1) { totalCount } }`,
	"Query.rosterEntries":                `{ rosterEntries(departmentId: "bad", from: "2030-01-01", to: "2030-01-02") { __typename } }`,
	"Query.myRoster":                     `{ myRoster(from: "2030-01-02", to: "2030-01-01") { __typename } }`,
	"Query.rosterCoverage":               `{ rosterCoverage(departmentId: "bad", from: "2030-01-01", to: "2030-01-02") { __typename } }`,
	"Mutation.createShiftDefinition":     `mutation { createShiftDefinition(input: {code: "", name: "X", kind: DAY, startTime: "08:00", endTime: "16:00"}) { __typename } }`,
	"Mutation.updateShiftDefinition":     `mutation { updateShiftDefinition(id: "bad", input: {}) { __typename } }`,
	"Mutation.deactivateShiftDefinition": `mutation { deactivateShiftDefinition(id: "bad") { __typename } }`,
	"Mutation.setDepartmentManager":      `mutation { setDepartmentManager(departmentId: "bad", staffId: "bad") { __typename } }`,
	"Mutation.assignShifts":              `mutation { assignShifts(input: {departmentId: "bad", entries: []}) { __typename } }`,
	"Mutation.removeRosterEntry":         `mutation { removeRosterEntry(id: "bad") { __typename } }`,
	"Mutation.setRosterRequirement":      `mutation { setRosterRequirement(departmentId: "bad", shiftId: "bad", minimumStaff: -1) { __typename } }`,
}

// ReportsProbes: the reports, each refused as bad input (to before from)
// once the guard lets it through.
var ReportsProbes = func() map[string]string {
	out := map[string]string{}
	for _, q := range []string{"revenueReport", "collectionsReport", "arAgeingReport", "claimsReport", "discountsReport",
		"censusReport", "admissionsReport", "visitsReport", "diagnosesReport", "demographicsReport",
		"bedOccupancyReport", "noShowsReport", "labTurnaroundReport", "pharmacyStockReport", "attendanceReport"} {
		out["Query."+q] = `{ ` + q + `(input: {from: "2030-01-02", to: "2030-01-01"}) { __typename } }`
	}
	return out
}()

// PatientAppProbes: billing in the patient app.
var PatientAppProbes = map[string]string{
	"Query.myInvoices":                   `{ myInvoices(first: 1) { totalCount } }`,
	"Query.myBalance":                    `{ myBalance { owed } }`,
	"Query.myPaymentCheckout":            `{ myPaymentCheckout(id: "bad") { __typename } }`,
	"Mutation.payMyInvoice":              `mutation { payMyInvoice(input: {invoiceId: "bad", amount: "1.00", method: CARD}) { __typename } }`,
	"Mutation.simulatePaymentCompletion": `mutation { simulatePaymentCompletion(checkoutId: "bad", succeed: true) { __typename } }`,
}

// StaffingProbes: staff records.
var StaffingProbes = map[string]string{
	"Query.myStaffRecord":      `{ myStaffRecord { __typename } }`,
	"Query.expiringLicences":   `{ expiringLicences(withinDays: -1) { __typename } }`,
	"Mutation.createStaff":     `mutation { createStaff(input: {givenName: "", familyName: "X", kind: NURSE, departmentId: "bad", employmentType: PERMANENT, startDate: "2030-01-01"}) { __typename } }`,
	"Mutation.updateStaff":     `mutation { updateStaff(id: "bad", input: {}) { __typename } }`,
	"Mutation.deactivateStaff": `mutation { deactivateStaff(id: "bad", reason: "x") { __typename } }`,
	"Mutation.reactivateStaff": `mutation { reactivateStaff(id: "bad") { __typename } }`,
}

// PayrollProbes: payroll runs, deductions and payslips.
var PayrollProbes = map[string]string{
	"Query.payrollRuns":           `{ payrollRuns(first: 1) { totalCount } }`,
	"Query.payrollRun":            `{ payrollRun(id: "bad") { __typename } }`,
	"Query.payDeductions":         `{ payDeductions(period: "bad") { __typename } }`,
	"Query.myPayslips":            `{ myPayslips { __typename } }`,
	"Mutation.runPayroll":         `mutation { runPayroll(period: "bad") { __typename } }`,
	"Mutation.approvePayroll":     `mutation { approvePayroll(id: "bad") { __typename } }`,
	"Mutation.markPayrollPaid":    `mutation { markPayrollPaid(id: "bad") { __typename } }`,
	"Mutation.recordPayDeduction": `mutation { recordPayDeduction(input: {staffId: "bad", period: "2026-11", amount: "1.00", description: "x"}) { __typename } }`,
	"Mutation.removePayDeduction": `mutation { removePayDeduction(id: "bad") }`,
}

// InsuranceProbes: payers, plans, pre-authorizations, claims and the coverage estimate.
var InsuranceProbes = map[string]string{
	"Query.payers":                       `{ payers(first: 1) { __typename } }`,
	"Query.insurancePlans":               `{ insurancePlans(first: 1) { __typename } }`,
	"Query.preAuthorizations":            `{ preAuthorizations(first: 1) { __typename } }`,
	"Query.claims":                       `{ claims(first: 1) { __typename } }`,
	"Query.coverageEstimate":             `{ coverageEstimate(patientId: "bad", lines: []) { __typename } }`,
	"Mutation.createPayer":               `mutation { createPayer(input: {code: "", name: "X", kind: INSURER}) { __typename } }`,
	"Mutation.createInsurancePlan":       `mutation { createInsurancePlan(input: {payerId: "bad", code: "X", name: "X"}) { __typename } }`,
	"Mutation.addPlanVersion":            `mutation { addPlanVersion(input: {planId: "bad", effectiveFrom: "2030-01-01", rules: []}) { __typename } }`,
	"Mutation.linkInsurancePolicyToPlan": `mutation { linkInsurancePolicyToPlan(policyId: "bad", planId: null) { __typename } }`,
	"Mutation.requestPreAuthorization":   `mutation { requestPreAuthorization(input: {policyId: "bad", category: PROCEDURE}) { __typename } }`,
	"Mutation.approvePreAuthorization":   `mutation { approvePreAuthorization(id: "bad", input: {payerReference: "X", validFrom: "2030-01-01", validTo: "2030-01-02", approvedQuantity: 1}) { __typename } }`,
	"Mutation.denyPreAuthorization":      `mutation { denyPreAuthorization(id: "bad", reason: "x") { __typename } }`,
	"Mutation.createClaim":               `mutation { createClaim(input: {policyId: "bad", lines: []}) { __typename } }`,
	"Mutation.submitClaim":               `mutation { submitClaim(id: "bad") { __typename } }`,
	"Mutation.adjudicateClaim":           `mutation { adjudicateClaim(id: "bad", input: {lines: []}) { __typename } }`,
	"Mutation.recordRemittance":          `mutation { recordRemittance(id: "bad", input: {reference: "X", lines: []}) { __typename } }`,
	"Mutation.resubmitClaim":             `mutation { resubmitClaim(id: "bad") { __typename } }`,
	"Query.labInstruments":               `{ labInstruments { totalCount } }`,
	"Query.unmatchedInstrumentMessages":  `{ unmatchedInstrumentMessages { totalCount } }`,
	"Mutation.registerLabInstrument":     `mutation { registerLabInstrument(input: {name: "", sendingApplication: ""}) { __typename } }`,
	"Mutation.createLabInstrumentKey":    `mutation { createLabInstrumentKey(id: "bad") { __typename } }`,
	"Mutation.resolveInstrumentMessage":  `mutation { resolveInstrumentMessage(id: "bad", input: {action: DISCARD}) { __typename } }`,
}

// AllProbes joins ProbeSets, panicking if two domains probe one operation:
// the matrix would then test one of them only.
func AllProbes() map[string]string {
	all := map[string]string{}
	domains := make([]string, 0, len(ProbeSets))
	for d := range ProbeSets {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		for op, doc := range ProbeSets[d] {
			if _, dup := all[op]; dup {
				panic("two probes for " + op)
			}
			all[op] = doc
		}
	}
	return all
}
