package scheduling

import (
	"context"
	"strings"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/room"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/globalid"
)

// NewRoom is the input of createRoom.
type NewRoom struct {
	DepartmentID string
	Code         string
	Name         string
}

// CreateRoom adds a room to a department, in service.
func (s *Service) CreateRoom(ctx context.Context, in NewRoom) (*ent.Room, error) {
	code, name := strings.TrimSpace(in.Code), strings.TrimSpace(in.Name)
	switch {
	case !globalid.Valid(in.DepartmentID, "dep"):
		return nil, apperr.BadInput("input.departmentId", "is not a department ID")
	case code == "" || len(code) > 32:
		return nil, apperr.BadInput("input.code", "is required, at most 32 characters")
	case name == "" || len(name) > 100:
		return nil, apperr.BadInput("input.name", "is required, at most 100 characters")
	}
	var created *ent.Room
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		if exists, err := tx.Department.Query().Where(department.ID(in.DepartmentID)).Exist(ctx); err != nil {
			return err
		} else if !exists {
			return apperr.BadInput("input.departmentId", "no such department")
		}
		if taken, err := tx.Room.Query().Where(room.Code(code)).Exist(ctx); err != nil {
			return err
		} else if taken {
			return apperr.BadInput("input.code", "another room has this code")
		}
		var err error
		created, err = tx.Room.Create().SetDepartmentID(in.DepartmentID).SetCode(code).SetName(name).Save(ctx)
		return err
	})
	// Two rooms created with one code at once: the unique index stops the second.
	if ent.IsConstraintError(err) {
		return nil, apperr.BadInput("input.code", "another room has this code")
	}
	if err != nil {
		return nil, err
	}
	return created.Unwrap(), nil
}

// SetRoomActive takes a room out of service or back into it. A room out of
// service cannot be booked; appointments already in it keep it until they
// are rescheduled.
func (s *Service) SetRoomActive(ctx context.Context, id string, active bool) (*ent.Room, error) {
	if !globalid.Valid(id, "rom") {
		return nil, apperr.BadInput("id", "is not a room ID")
	}
	var changed *ent.Room
	err := s.store.InTx(ctx, func(ctx context.Context, tx *ent.Tx) error {
		// Bookings read the room's state under this lock.
		if err := s.store.Lock(ctx, tx, "room:"+id); err != nil {
			return err
		}
		var err error
		changed, err = tx.Room.UpdateOneID(id).SetActive(active).Save(ctx)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("room not found")
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return changed.Unwrap(), nil
}
