// Package admission admits, transfers and discharges inpatients and keeps
// wards' beds: one patient to a bed, one bed to a patient, also under
// concurrent requests.
package admission
