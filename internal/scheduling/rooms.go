package scheduling

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/room"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// NewRoom is the input of createRoom.
type NewRoom struct {
	DepartmentID string
	Code         string
	Name         string
}

// CreateRoom adds a room to a department, in service.
func (s *Service) CreateRoom(ctx context.Context, in NewRoom) (*ent.Room, error) {
	var c input.Checker
	c.ID("input.departmentId", in.DepartmentID, input.Department)
	code := c.Text("input.code", in.Code, 32)
	name := c.Text("input.name", in.Name, 100)
	if err := c.Err(); err != nil {
		return nil, err
	}
	created, err := store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (created *ent.Room, err error) {
		if exists, err := tx.Department.Query().Where(department.ID(in.DepartmentID)).Exist(ctx); err != nil {
			return nil, err
		} else if !exists {
			return nil, apperr.BadInput("input.departmentId", "no such department")
		}
		if taken, err := tx.Room.Query().Where(room.Code(code)).Exist(ctx); err != nil {
			return nil, err
		} else if taken {
			return nil, apperr.BadInput("input.code", "another room has this code")
		}
		created, err = tx.Room.Create().SetDepartmentID(in.DepartmentID).SetCode(code).SetName(name).Save(ctx)
		return created, err
	})
	// Two rooms created with one code at once: the unique index stops the second.
	if ent.IsConstraintError(err) {
		return nil, apperr.BadInput("input.code", "another room has this code")
	}
	return created, err
}

// SetRoomActive takes a room out of service or back into it. A room out of
// service cannot be booked; appointments already in it keep it until they
// are rescheduled.
func (s *Service) SetRoomActive(ctx context.Context, id string, active bool) (*ent.Room, error) {
	if err := input.ID("id", id, input.Room); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (changed *ent.Room, err error) {
		// Bookings read the room's state under this lock.
		if err := s.store.Lock(ctx, tx, "room:"+id); err != nil {
			return nil, err
		}
		changed, err = tx.Room.UpdateOneID(id).SetActive(active).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("room not found")
		}
		return changed, err
	})
}
