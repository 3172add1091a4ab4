package admission

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	entadmission "github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/ent/bedassignment"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/encounter"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/ward"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/events"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/patients"
	"github.com/hmis-dev/hmis/internal/store"
)

// Topic is the event topic bed status changes are published on.
const Topic = "beds"

// EventType names what happened to a bed.
type EventType string

const (
	Added             EventType = "ADDED"
	Admitted          EventType = "ADMITTED"
	TransferredIn     EventType = "TRANSFERRED_IN"
	TransferredOut    EventType = "TRANSFERRED_OUT"
	Discharged        EventType = "DISCHARGED"
	Cleaned           EventType = "CLEANED"
	TakenOutOfService EventType = "OUT_OF_SERVICE"
	ReturnedToService EventType = "RETURNED_TO_SERVICE"
)

// Change is the payload of a bed event. It carries IDs and statuses only:
// a subscriber loads the bed and the stay through row scope before showing
// them. Status is the status the event moved the bed to, which a replayed
// event needs because the bed may have moved on since.
type Change struct {
	BedID          string     `json:"bedId"`
	WardID         string     `json:"wardId"`
	Status         bed.Status `json:"status"`
	PreviousStatus bed.Status `json:"previousStatus,omitempty"`
	// AdmissionID is the stay occupying the bed after the event, if any.
	AdmissionID string `json:"admissionId,omitempty"`
}

// CreateWardInput is the input of createWard.
type CreateWardInput struct {
	DepartmentID string
	Code         string
	Name         string
	Description  *string
}

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

// Limits on what the inputs may ask for.
const (
	// Admissions and discharges are often entered after the fact, but not
	// weeks later: that is a correction, not a bed movement.
	MaxBackdate = 7 * 24 * time.Hour
	// ClockSkew tolerates a client whose clock runs a little ahead when it
	// sends "now".
	ClockSkew       = time.Minute
	maxReason       = 500
	maxSummary      = 20000
	maxDescription  = 2000
	maxName         = 100
	maxCode         = 32
	maxOutOfService = 200
)

var codePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Service keeps wards and beds and moves patients through them.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns a Service on st. Its clock reads time as the
// database keeps it, so that what a mutation returns equals what a later
// read finds.
func NewService(st *store.Store) *Service {
	return &Service{store: st, now: func() time.Time { return input.Stored(time.Now()) }}
}

// bedKey is the lock key of a bed, which two admissions can compete for;
// the patient's lock keeps one patient from two beds.
func bedKey(bedID string) string { return "bed:" + bedID }

// CreateWard adds a ward to a department.
func (s *Service) CreateWard(ctx context.Context, in CreateWardInput) (*ent.Ward, error) {
	var c input.Checker
	c.ID("input.departmentId", in.DepartmentID, input.Department)
	code := checkCode(&c, "input.code", in.Code)
	name := c.Text("input.name", in.Name, maxName)
	description := c.OptionalText("input.description", in.Description, maxDescription)
	if err := c.Err(); err != nil {
		return nil, err
	}
	out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (created *ent.Ward, err error) {
		if ok, err := tx.Department.Query().Where(department.ID(in.DepartmentID)).Exist(ctx); err != nil {
			return nil, err
		} else if !ok {
			return nil, apperr.BadInput("input.departmentId", "no such department")
		}
		if taken, err := tx.Ward.Query().Where(ward.Code(code)).Exist(ctx); err != nil {
			return nil, err
		} else if taken {
			return nil, apperr.BadInput("input.code", "is already the code of another ward")
		}
		created, err = tx.Ward.Create().SetDepartmentID(in.DepartmentID).SetCode(code).SetName(name).
			SetNillableDescription(description).Save(ctx)
		return created, err
	})
	if ent.IsConstraintError(err) {
		return nil, apperr.BadInput("input.code", "is already the code of another ward")
	}
	return out, err
}

// AddBed adds a FREE bed to a ward.
func (s *Service) AddBed(ctx context.Context, wardID, code string) (*ent.Bed, error) {
	if err := input.ID("wardId", wardID, input.Ward); err != nil {
		return nil, err
	}
	var c input.Checker
	code = checkCode(&c, "code", code)
	if err := c.Err(); err != nil {
		return nil, err
	}
	out, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (added *ent.Bed, err error) {
		if ok, err := tx.Ward.Query().Where(ward.ID(wardID)).Exist(ctx); err != nil {
			return nil, err
		} else if !ok {
			return nil, apperr.NotFoundf("ward not found")
		}
		if taken, err := tx.Bed.Query().Where(bed.WardID(wardID), bed.Code(code)).Exist(ctx); err != nil {
			return nil, err
		} else if taken {
			return nil, apperr.BadInput("code", "is already the code of another bed of this ward")
		}
		added, err = tx.Bed.Create().SetWardID(wardID).SetCode(code).SetStatus(bed.StatusFREE).
			SetStatusChangedAt(s.now()).Save(ctx)
		if err != nil {
			return nil, err
		}
		return added, record(ctx, tx, Added, added, "", "")
	})
	if ent.IsConstraintError(err) {
		return nil, apperr.BadInput("code", "is already the code of another bed of this ward")
	}
	return out, err
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
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the admission changed meanwhile; reload it")
		} else if err != nil {
			return nil, err
		}
		if open != nil {
			if err := tx.BedAssignment.UpdateOneID(open.ID).SetToAt(at).Exec(ctx); err != nil {
				return nil, err
			}
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
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the admission changed meanwhile; reload it")
		} else if err != nil {
			return nil, err
		}
		if open != nil {
			if err := tx.BedAssignment.UpdateOneID(open.ID).SetToAt(at).Exec(ctx); err != nil {
				return nil, err
			}
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
		return nil, apperr.Conflictf("the admission changed meanwhile; reload it")
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

// MarkBedCleaned makes a CLEANING bed FREE.
func (s *Service) MarkBedCleaned(ctx context.Context, bedID string) (*ent.Bed, error) {
	return s.bedTransition(ctx, bedID, bed.StatusFREE, Cleaned, "marked clean", nil, bed.StatusCLEANING)
}

// SetBedOutOfService takes a FREE or CLEANING bed out of use, noting why.
func (s *Service) SetBedOutOfService(ctx context.Context, bedID, reason string) (*ent.Bed, error) {
	if err := input.ID("bedId", bedID, input.Bed); err != nil {
		return nil, err
	}
	reason, err := input.Text("reason", reason, maxOutOfService)
	if err != nil {
		return nil, err
	}
	return s.bedTransition(ctx, bedID, bed.StatusOUT_OF_SERVICE, TakenOutOfService, "taken out of service",
		func(u *ent.BedUpdateOne) { u.SetNote(reason) }, bed.StatusFREE, bed.StatusCLEANING)
}

// ReturnBedToService makes an OUT_OF_SERVICE bed FREE again.
func (s *Service) ReturnBedToService(ctx context.Context, bedID string) (*ent.Bed, error) {
	return s.bedTransition(ctx, bedID, bed.StatusFREE, ReturnedToService, "returned to service",
		func(u *ent.BedUpdateOne) { u.ClearNote() }, bed.StatusOUT_OF_SERVICE)
}

// bedTransition moves a bed that is in one of the from statuses to status
// to, outside any admission.
func (s *Service) bedTransition(ctx context.Context, bedID string, to bed.Status, event EventType, done string,
	set func(*ent.BedUpdateOne), from ...bed.Status) (*ent.Bed, error) {
	if err := input.ID("bedId", bedID, input.Bed); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (changed *ent.Bed, err error) {
		if err := s.store.Lock(ctx, tx, bedKey(bedID)); err != nil {
			return nil, err
		}
		b, err := tx.Bed.Get(ctx, bedID)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("bed not found")
		} else if err != nil {
			return nil, err
		}
		if !slices.Contains(from, b.Status) {
			return nil, apperr.Conflictf("the bed is %s; only a %s bed can be %s", b.Status, statusList(from), done)
		}
		changed, err = s.moveBed(ctx, tx, b, to, event, "", set, from...)
		return changed, err
	})
}

// moveBed sets b's status to to, provided it is still one of from, and
// records the event in the same transaction.
func (s *Service) moveBed(ctx context.Context, tx *ent.Tx, b *ent.Bed, to bed.Status, event EventType, admissionID string,
	set func(*ent.BedUpdateOne), from ...bed.Status) (*ent.Bed, error) {
	u := tx.Bed.UpdateOneID(b.ID).Where(bed.StatusIn(from...)).SetStatus(to).SetStatusChangedAt(s.now())
	if set != nil {
		set(u)
	}
	changed, err := u.Save(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.Conflictf("the bed changed meanwhile; reload it")
	} else if err != nil {
		return nil, err
	}
	return changed, record(ctx, tx, event, changed, b.Status, admissionID)
}

func record(ctx context.Context, tx *ent.Tx, event EventType, b *ent.Bed, previous bed.Status, admissionID string) error {
	return events.Record(ctx, tx, Topic, string(event), Change{
		BedID: b.ID, WardID: b.WardID, Status: b.Status, PreviousStatus: previous, AdmissionID: admissionID,
	})
}

// raceLost turns a unique-index violation into the CONFLICT it means: the
// partial unique indexes on admissions (one current stay per patient, one
// per bed) caught two admissions that the locks did not keep apart.
func raceLost(err error) error {
	if ent.IsConstraintError(err) {
		return apperr.Conflictf("the patient or the bed was taken by another admission meanwhile; reload and retry")
	}
	return err
}

// Board returns the bed board of one ward, or of every ward ordered by code
// when wardID is nil: each ward's beds by code with their current stay, its
// patient and attending. It runs a fixed number of SQL statements however
// many wards, beds and stays there are.
func (s *Service) Board(ctx context.Context, wardID *string) ([]*WardBoard, error) {
	q := s.store.Client.Ward.Query()
	if wardID != nil {
		if err := input.ID("wardId", *wardID, input.Ward); err != nil {
			return nil, err
		}
		q.Where(ward.ID(*wardID))
	}
	wards, err := q.Order(ward.ByCode()).
		WithDepartment().
		WithBeds(func(bq *ent.BedQuery) {
			bq.Order(bed.ByCode()).WithAdmissions(func(aq *ent.AdmissionQuery) {
				aq.Where(entadmission.StatusEQ(entadmission.StatusADMITTED)).WithPatient().WithAttending()
			})
		}).
		All(ctx)
	if err != nil {
		return nil, err
	}
	if wardID != nil && len(wards) == 0 {
		return nil, apperr.NotFoundf("ward not found")
	}
	boards := make([]*WardBoard, 0, len(wards))
	for _, w := range wards {
		board := &WardBoard{Ward: w, Beds: make([]*BoardBed, 0, len(w.Edges.Beds))}
		for _, b := range w.Edges.Beds {
			// The loaded parents stand in for the edges back to them, so
			// selecting bed { ward } or admission { bed } costs no query.
			b.Edges.Ward = w
			entry := &BoardBed{Bed: b}
			if len(b.Edges.Admissions) > 0 {
				entry.Admission = b.Edges.Admissions[0]
				entry.Admission.Edges.Bed = b
			}
			board.Beds = append(board.Beds, entry)
			switch b.Status {
			case bed.StatusFREE:
				board.Free++
			case bed.StatusOCCUPIED:
				board.Occupied++
			case bed.StatusCLEANING:
				board.Cleaning++
			case bed.StatusOUT_OF_SERVICE:
				board.OutOfService++
			}
		}
		boards = append(boards, board)
	}
	return boards, nil
}

// WardBoard is one ward on the bed board.
type WardBoard struct {
	Ward *ent.Ward
	Beds []*BoardBed
	// How many of the ward's beds are in each status.
	Free, Occupied, Cleaning, OutOfService int
}

// BoardBed is one bed on the bed board with its current stay, if any.
type BoardBed struct {
	Bed       *ent.Bed
	Admission *ent.Admission
}

func checkCode(c *input.Checker, field, code string) string {
	code = c.Text(field, code, maxCode)
	if c.Err() == nil && !codePattern.MatchString(code) {
		c.Fail(apperr.BadInput(field, "must be letters, digits, '.', '_' or '-'"))
	}
	return code
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

func statusList(statuses []bed.Status) string {
	names := make([]string, len(statuses))
	for i, st := range statuses {
		names[i] = string(st)
	}
	return strings.Join(names, " or ")
}
