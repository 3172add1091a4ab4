package rostering

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/scheduling"
	"github.com/hmis-dev/hmis/internal/store"
)

const dayMinutes = 24 * 60

// MaxUnpaidBreakMinutes bounds a shift's unpaid break.
const MaxUnpaidBreakMinutes = 8 * 60

// ShiftTimes are the instants a shift of startMinute to endMinute (wall-clock
// minutes of loc) runs on the local day date: an end not after the start is
// on the next day. The wall clock is kept across a daylight-saving change,
// so a night shift on the night the clocks go back is an hour longer.
func ShiftTimes(loc *time.Location, date time.Time, startMinute, endMinute int) (time.Time, time.Time) {
	y, m, d := date.Date()
	start := time.Date(y, m, d, startMinute/60, startMinute%60, 0, 0, loc)
	if endMinute <= startMinute {
		d++
	}
	end := time.Date(y, m, d, endMinute/60, endMinute%60, 0, 0, loc)
	return start.UTC(), end.UTC()
}

// CrossesMidnight reports whether the shift ends on the day after it starts.
func CrossesMidnight(sh *ent.ShiftDefinition) bool { return sh.EndMinute <= sh.StartMinute }

// Clock formats minutes after midnight as HH:MM; 1440 is 24:00.
func Clock(minutes int) string { return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60) }

type shiftFields struct {
	name               string
	kind               shiftdefinition.Kind
	start, end         int
	unpaidBreakMinutes int
	bookable           bool
}

func checkShift(c *input.Checker, field func(string) string, f *shiftFields, startTime, endTime *string) {
	f.name = c.Text(field("name"), f.name, 100)
	if c.Err() == nil {
		if err := shiftdefinition.KindValidator(f.kind); err != nil {
			c.Fail(apperr.BadInput(field("kind"), "is not a kind of shift"))
		}
	}
	if c.Err() == nil && startTime != nil {
		m, ok := scheduling.ParseClock(*startTime)
		if !ok || m == dayMinutes {
			c.Fail(apperr.BadInput(field("startTime"), "must be a time of day HH:MM, 00:00 to 23:59"))
		}
		f.start = m
	}
	if c.Err() == nil && endTime != nil {
		m, ok := scheduling.ParseClock(*endTime)
		if !ok {
			c.Fail(apperr.BadInput(field("endTime"), "must be a time of day HH:MM, 00:00 to 24:00"))
		}
		f.end = m
	}
	if c.Err() != nil {
		return
	}
	length := f.end - f.start
	if length <= 0 {
		length += dayMinutes
	}
	switch {
	case f.unpaidBreakMinutes < 0 || f.unpaidBreakMinutes > MaxUnpaidBreakMinutes:
		c.Fail(apperr.BadInput(field("unpaidBreakMinutes"), "must be 0 to %d", MaxUnpaidBreakMinutes))
	case f.unpaidBreakMinutes >= length:
		c.Fail(apperr.BadInput(field("unpaidBreakMinutes"), "must be shorter than the shift (%d minutes)", length))
	}
}

// CreateShift defines a kind of shift.
func (s *Service) CreateShift(ctx context.Context, in CreateShiftDefinitionInput) (*ent.ShiftDefinition, error) {
	field := func(n string) string { return "input." + n }
	var c input.Checker
	code := strings.ToUpper(c.Text("input.code", in.Code, 32))
	if c.Err() == nil && strings.ContainsAny(code, " \t\n") {
		c.Fail(apperr.BadInput("input.code", "may not contain spaces"))
	}
	f := shiftFields{name: in.Name, kind: in.Kind, bookable: in.Kind != shiftdefinition.KindON_CALL}
	if in.UnpaidBreakMinutes != nil {
		f.unpaidBreakMinutes = *in.UnpaidBreakMinutes
	}
	if in.Bookable != nil {
		f.bookable = *in.Bookable
	}
	checkShift(&c, field, &f, &in.StartTime, &in.EndTime)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.ShiftDefinition, error) {
		if err := s.store.Lock(ctx, tx, "shift-code:"+code); err != nil {
			return nil, err
		}
		taken, err := tx.ShiftDefinition.Query().Where(shiftdefinition.Code(code)).Exist(ctx)
		if err != nil {
			return nil, err
		}
		if taken {
			return nil, apperr.BadInput("input.code", "is the code of another shift")
		}
		out, err := tx.ShiftDefinition.Create().SetCode(code).SetName(f.name).SetKind(f.kind).
			SetStartMinute(f.start).SetEndMinute(f.end).SetUnpaidBreakMinutes(f.unpaidBreakMinutes).
			SetBookable(f.bookable).Save(ctx)
		if ent.IsConstraintError(err) {
			return nil, apperr.BadInput("input.code", "is the code of another shift")
		}
		return out, err
	})
}

// UpdateShift changes a kind of shift. Entries already rostered keep the
// instants they were given: people were told those hours.
func (s *Service) UpdateShift(ctx context.Context, id string, in UpdateShiftDefinitionInput) (*ent.ShiftDefinition, error) {
	if err := input.ID("id", id, input.ShiftDefinition); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.ShiftDefinition, error) {
		if err := s.store.Lock(ctx, tx, "shift:"+id); err != nil {
			return nil, err
		}
		sh, err := tx.ShiftDefinition.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("shift not found")
		} else if err != nil {
			return nil, err
		}
		f := shiftFields{name: sh.Name, kind: sh.Kind, start: sh.StartMinute, end: sh.EndMinute,
			unpaidBreakMinutes: sh.UnpaidBreakMinutes, bookable: sh.Bookable}
		if in.Name != nil {
			f.name = *in.Name
		}
		if in.Kind != nil {
			f.kind = *in.Kind
		}
		if in.UnpaidBreakMinutes != nil {
			f.unpaidBreakMinutes = *in.UnpaidBreakMinutes
		}
		if in.Bookable != nil {
			f.bookable = *in.Bookable
		}
		var c input.Checker
		checkShift(&c, func(n string) string { return "input." + n }, &f, in.StartTime, in.EndTime)
		if err := c.Err(); err != nil {
			return nil, err
		}
		return tx.ShiftDefinition.UpdateOne(sh).SetName(f.name).SetKind(f.kind).SetStartMinute(f.start).
			SetEndMinute(f.end).SetUnpaidBreakMinutes(f.unpaidBreakMinutes).SetBookable(f.bookable).Save(ctx)
	})
}

// DeactivateShift stops a kind of shift from being rostered; what is
// rostered on it stays.
func (s *Service) DeactivateShift(ctx context.Context, id string) (*ent.ShiftDefinition, error) {
	if err := input.ID("id", id, input.ShiftDefinition); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.ShiftDefinition, error) {
		sh, err := tx.ShiftDefinition.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("shift not found")
		} else if err != nil {
			return nil, err
		}
		out, err := tx.ShiftDefinition.UpdateOne(sh).Where(shiftdefinition.Active(true)).SetActive(false).Save(ctx)
		if ent.IsNotFound(err) {
			return nil, apperr.Conflictf("the shift is already inactive")
		}
		return out, err
	})
}
