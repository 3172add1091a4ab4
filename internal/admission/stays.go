package admission

import (
	"context"
	"time"

	"github.com/hmis-dev/hmis/ent"
	entadmission "github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/ent/bedassignment"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// AdmitPatientInput is the input of admitPatient.
type AdmitPatientInput struct {
	PatientID     string
	BedID         string
	AttendingID   string
	Reason        string
	AdmissionType entadmission.AdmissionType
	AdmittedAt    *time.Time
}

// TransferPatientInput is the input of transferPatient.
type TransferPatientInput struct {
	ToBedID string
	Reason  string
}

// DischargePatientInput is the input of dischargePatient.
type DischargePatientInput struct {
	Summary      string
	Disposition  entadmission.Disposition
	DischargedAt *time.Time
}

// Admit admits a patient into a FREE bed: the stay, its first bed
// assignment and its inpatient encounter, and the bed becomes OCCUPIED, all
// in one transaction.
func (s *Service) Admit(ctx context.Context, in AdmitPatientInput) (*ent.Admission, error) {
	now := s.now()
	var c input.Checker
	c.ID("input.patientId", in.PatientID, input.Patient)
	c.ID("input.bedId", in.BedID, input.Bed)
	c.ID("input.attendingId", in.AttendingID, input.Staff)
	reason := c.Text("input.reason", in.Reason, maxReason)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if entadmission.AdmissionTypeValidator(in.AdmissionType) != nil {
		return nil, apperr.BadInput("input.admissionType", "must be one of ELECTIVE, EMERGENCY, MATERNITY, TRANSFER_IN")
	}
	admittedAt := now
	if in.AdmittedAt != nil {
		admittedAt = input.Stored(*in.AdmittedAt)
		if err := checkPast("input.admittedAt", admittedAt, now); err != nil {
			return nil, err
		}
	}
	out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (admitted *ent.Admission, err error) {
		// Lock before reading, so that the checks and the writes are one
		// step for this patient and this bed.
		pat, err := patients.Lock(ctx, tx, "input.patientId", in.PatientID)
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, bedKey(in.BedID)); err != nil {
			return nil, err
		}
		b, err := tx.Bed.Query().Where(bed.ID(in.BedID)).WithWard().Only(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.bedId", "no such bed")
		} else if err != nil {
			return nil, err
		}
		attending, err := tx.Staff.Get(ctx, in.AttendingID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.attendingId", "no such member of staff")
		} else if err != nil {
			return nil, err
		}
		if !attending.Active {
			return nil, apperr.BadInput("input.attendingId", "is no longer active")
		}
		if attending.Kind != staff.KindDOCTOR {
			return nil, apperr.BadInput("input.attendingId", "is not a doctor")
		}
		if already, err := tx.Admission.Query().
			Where(entadmission.PatientID(pat.ID), entadmission.StatusEQ(entadmission.StatusADMITTED)).
			Exist(ctx); err != nil {
			return nil, err
		} else if already {
			return nil, apperr.Conflictf("the patient is already admitted; transfer or discharge the current stay")
		}
		if b.Status != bed.StatusFREE {
			return nil, apperr.Conflictf("the bed is %s; only a FREE bed can take a patient", b.Status)
		}
		admitted, err = tx.Admission.Create().
			SetPatientID(pat.ID).
			SetBedID(b.ID).
			SetAttendingID(attending.ID).
			SetAdmittedAt(admittedAt).
			SetReason(reason).
			SetAdmissionType(in.AdmissionType).
			SetStatus(entadmission.StatusADMITTED).
			Save(ctx)
		if err != nil {
			return nil, err
		}
		if err := tx.BedAssignment.Create().SetPatientID(pat.ID).SetAdmissionID(admitted.ID).SetBedID(b.ID).
			SetFromAt(admittedAt).Exec(ctx); err != nil {
			return nil, err
		}
		if err := tx.Encounter.Create().
			SetPatientID(pat.ID).
			SetType(encounter.TypeINPATIENT).
			SetStatus(encounter.StatusIN_PROGRESS).
			SetAdmissionID(admitted.ID).
			SetProviderID(attending.ID).
			SetDepartmentID(b.Edges.Ward.DepartmentID).
			SetStartedAt(admittedAt).
			SetReason(reason).
			Exec(ctx); err != nil {
			return nil, err
		}
		_, err = s.moveBed(ctx, tx, b, bed.StatusOCCUPIED, Admitted, admitted.ID, nil, bed.StatusFREE)
		return admitted, err
	})
	return out, raceLost(err)
}

// Transfer moves a current stay to another FREE bed. The open bed
// assignment is closed and a new one opened, so the stay keeps its history;
// the bed left behind needs cleaning.
func (s *Service) Transfer(ctx context.Context, admissionID string, in TransferPatientInput) (*ent.Admission, error) {
	if err := input.ID("admissionId", admissionID, input.Admission); err != nil {
		return nil, err
	}
	if err := input.ID("input.toBedId", in.ToBedID, input.Bed); err != nil {
		return nil, err
	}
	reason, err := input.Text("input.reason", in.Reason, maxReason)
	if err != nil {
		return nil, err
	}
	out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (moved *ent.Admission, err error) {
		stay, err := s.lockStay(ctx, tx, admissionID, in.ToBedID)
		if err != nil {
			return nil, err
		}
		if stay.Status != entadmission.StatusADMITTED {
			return nil, apperr.Conflictf("the admission is %s; only a current stay can be transferred", stay.Status)
		}
		if in.ToBedID == stay.BedID {
			return nil, apperr.BadInput("input.toBedId", "is the patient's current bed")
		}
		to, err := tx.Bed.Get(ctx, in.ToBedID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.toBedId", "no such bed")
		} else if err != nil {
			return nil, err
		}
		if to.Status != bed.StatusFREE {
			return nil, apperr.Conflictf("the bed is %s; only a FREE bed can take a patient", to.Status)
		}
		from, err := tx.Bed.Get(ctx, stay.BedID)
		if err != nil {
			return nil, err
		}
		open, err := openAssignment(ctx, tx, stay.ID)
		if err != nil {
			return nil, err
		}
		at := s.now()
		if open != nil && at.Before(open.FromAt) {
			at = open.FromAt
		}
		moved, err = tx.Admission.UpdateOneID(stay.ID).
			Where(entadmission.StatusEQ(entadmission.StatusADMITTED), entadmission.BedID(stay.BedID)).
			SetBedID(to.ID).
			Save(ctx)
		if err := closeStayUpdate(ctx, tx, err, open, at); err != nil {
			return nil, err
		}
		if err := tx.BedAssignment.Create().SetPatientID(stay.PatientID).SetAdmissionID(stay.ID).SetBedID(to.ID).
			SetFromAt(at).SetReason(reason).Exec(ctx); err != nil {
			return nil, err
		}
		if _, err := s.moveBed(ctx, tx, from, bed.StatusCLEANING, TransferredOut, "", nil, bed.StatusOCCUPIED); err != nil {
			return nil, err
		}
		_, err = s.moveBed(ctx, tx, to, bed.StatusOCCUPIED, TransferredIn, stay.ID, nil, bed.StatusFREE)
		return moved, err
	})
	return out, raceLost(err)
}

// Discharge ends a current stay: the admission is DISCHARGED, its bed
// assignment closed, its encounter FINISHED, and the bed needs cleaning
// before the next patient.
func (s *Service) Discharge(ctx context.Context, admissionID string, in DischargePatientInput) (*ent.Admission, error) {
	now := s.now()
	if err := input.ID("admissionId", admissionID, input.Admission); err != nil {
		return nil, err
	}
	summary, err := input.Text("input.summary", in.Summary, maxSummary)
	if err != nil {
		return nil, err
	}
	if entadmission.DispositionValidator(in.Disposition) != nil {
		return nil, apperr.BadInput("input.disposition", "must be one of HOME, TRANSFERRED, DECEASED, AGAINST_MEDICAL_ADVICE, OTHER")
	}
	if in.DischargedAt != nil {
		if err := checkPast("input.dischargedAt", input.Stored(*in.DischargedAt), now); err != nil {
			return nil, err
		}
	}
	out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (discharged *ent.Admission, err error) {
		stay, err := s.lockStay(ctx, tx, admissionID)
		if err != nil {
			return nil, err
		}
		if stay.Status != entadmission.StatusADMITTED {
			return nil, apperr.Conflictf("the admission is %s; only a current stay can be discharged", stay.Status)
		}
		open, err := openAssignment(ctx, tx, stay.ID)
		if err != nil {
			return nil, err
		}
		since := stay.AdmittedAt
		if open != nil && open.FromAt.After(since) {
			since = open.FromAt
		}
		at := now
		if in.DischargedAt != nil {
			at = input.Stored(*in.DischargedAt)
			if at.Before(stay.AdmittedAt) {
				return nil, apperr.BadInput("input.dischargedAt", "is before the admission")
			}
			if at.Before(since) {
				return nil, apperr.BadInput("input.dischargedAt", "is before the patient moved into their current bed")
			}
		} else if at.Before(since) {
			at = since
		}
		discharged, err = tx.Admission.UpdateOneID(stay.ID).
			Where(entadmission.StatusEQ(entadmission.StatusADMITTED)).
			SetStatus(entadmission.StatusDISCHARGED).
			SetDischargedAt(at).
			SetDischargeSummary(summary).
			SetDisposition(in.Disposition).
			Save(ctx)
		if err := closeStayUpdate(ctx, tx, err, open, at); err != nil {
			return nil, err
		}
		if err := tx.Encounter.Update().
			Where(encounter.AdmissionID(stay.ID), encounter.StatusEQ(encounter.StatusIN_PROGRESS)).
			SetStatus(encounter.StatusFINISHED).
			SetEndedAt(at).
			Exec(ctx); err != nil {
			return nil, err
		}
		b, err := tx.Bed.Get(ctx, stay.BedID)
		if err != nil {
			return nil, err
		}
		_, err = s.moveBed(ctx, tx, b, bed.StatusCLEANING, Discharged, "", nil, bed.StatusOCCUPIED)
		return discharged, err
	})
	return out, raceLost(err)
}

// lockStay finds the admission, locks its patient (refusing a record
// merged meanwhile), its bed and the other beds named, and reads it again:
// another request may have moved or discharged the stay between the first
// read and the locks.
func (s *Service) lockStay(ctx context.Context, tx *ent.Tx, admissionID string, otherBeds ...string) (*ent.Admission, error) {
	stay, err := tx.Admission.Get(ctx, admissionID)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("admission not found")
	} else if err != nil {
		return nil, err
	}
	if err := store.LockPatient(ctx, tx, stay.PatientID); err != nil {
		return nil, err
	}
	keys := []string{bedKey(stay.BedID)}
	for _, id := range otherBeds {
		keys = append(keys, bedKey(id))
	}
	if err := s.store.Lock(ctx, tx, keys...); err != nil {
		return nil, err
	}
	again, err := tx.Admission.Get(ctx, admissionID)
	if err != nil {
		return nil, err
	}
	if again.BedID != stay.BedID {
		return nil, errStayChanged
	}
	return again, nil
}

func openAssignment(ctx context.Context, tx *ent.Tx, admissionID string) (*ent.BedAssignment, error) {
	open, err := tx.BedAssignment.Query().
		Where(bedassignment.AdmissionID(admissionID), bedassignment.ToAtIsNil()).
		Order(bedassignment.ByFromAt()).
		First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	return open, err
}

// raceLost turns a unique-index violation into the CONFLICT it means: the
// partial unique indexes on admissions (one current stay per patient, one
// per bed) caught two admissions that the locks did not keep apart.
// errStayChanged: the stay moved or ended between the read and the write.
var errStayChanged = apperr.Conflictf("the admission changed meanwhile; reload it")

// closeStayUpdate maps a conditional update of a stay that found it changed
// (updateErr) to errStayChanged and, once the stay moved on, ends its open
// bed assignment at at.
func closeStayUpdate(ctx context.Context, tx *ent.Tx, updateErr error, open *ent.BedAssignment, at time.Time) error {
	if ent.IsNotFound(updateErr) {
		return errStayChanged
	} else if updateErr != nil {
		return updateErr
	}
	if open == nil {
		return nil
	}
	return tx.BedAssignment.UpdateOneID(open.ID).SetToAt(at).Exec(ctx)
}

func raceLost(err error) error {
	if ent.IsConstraintError(err) {
		return apperr.Conflictf("the patient or the bed was taken by another admission meanwhile; reload and retry")
	}
	return err
}

// checkPast accepts a time of an event that has happened, recently.
func checkPast(field string, t, now time.Time) error {
	switch {
	case t.After(now.Add(ClockSkew)):
		return apperr.BadInput(field, "cannot be in the future")
	case t.Before(now.Add(-MaxBackdate)):
		return apperr.BadInput(field, "is more than %d days in the past", int(MaxBackdate.Hours()/24))
	}
	return nil
}
