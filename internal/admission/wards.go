package admission

import (
	"context"
	"regexp"
	"slices"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	entadmission "github.com/hmis-dev/hmis/ent/admission"
	"github.com/hmis-dev/hmis/ent/bed"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/ward"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// CreateWardInput is the input of createWard.
type CreateWardInput struct {
	DepartmentID string
	Code         string
	Name         string
	Description  *string
}

var codePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

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

func statusList(statuses []bed.Status) string {
	names := make([]string, len(statuses))
	for i, st := range statuses {
		names[i] = string(st)
	}
	return strings.Join(names, " or ")
}
