package scheduling

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/provideravailability"
	"github.com/hmis-dev/hmis/ent/providertimeoff"
	"github.com/hmis-dev/hmis/ent/rosterentry"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// AvailabilityPeriod is one weekly working period of setProviderAvailability,
// in the hospital's local time.
type AvailabilityPeriod struct {
	Weekday   int // 0 Sunday … 6 Saturday
	StartTime string
	EndTime   string
	ValidFrom *time.Time
	ValidTo   *time.Time
}

// TimeOff is the input of addProviderTimeOff.
type TimeOff struct {
	StaffID string
	StartAt time.Time
	EndAt   time.Time
	Reason  *string
}

// Limits on schedules.
const (
	MaxPeriods = 100
	// MaxTimeOff bounds one stretch of time off; longer absences are
	// several, or the provider leaves the schedule.
	MaxTimeOff = 366 * 24 * time.Hour
	dayMinutes = 24 * 60
)

// busyStatuses are the appointments that time off cannot be laid over:
// those still to happen or happening.
var busyStatuses = []appointment.Status{appointment.StatusBOOKED, appointment.StatusCHECKED_IN, appointment.StatusIN_PROGRESS}

// SetAvailability replaces the provider's weekly schedule with periods; no
// periods at all makes the provider bookable at any time again. Bookings
// already made are kept, inside the new schedule or not.
func (s *Service) SetAvailability(ctx context.Context, staffID string, periods []*AvailabilityPeriod) ([]*ent.ProviderAvailability, error) {
	if err := input.ID("staffId", staffID, input.Staff); err != nil {
		return nil, err
	}
	parsed, err := parsePeriods(periods)
	if err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (created []*ent.ProviderAvailability, err error) {
		// Bookings check the schedule under the same lock.
		if err := s.store.Lock(ctx, tx, "provider:"+staffID); err != nil {
			return nil, err
		}
		provider, err := tx.Staff.Get(ctx, staffID)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("member of staff not found")
		} else if err != nil {
			return nil, err
		}
		if !isProviderKind(provider.Kind) {
			return nil, apperr.BadInput("staffId", "is not a doctor or nurse")
		}
		if _, err := tx.ProviderAvailability.Delete().Where(provideravailability.StaffID(staffID)).Exec(ctx); err != nil {
			return nil, err
		}
		if len(parsed) == 0 {
			return created, nil
		}
		builders := make([]*ent.ProviderAvailabilityCreate, len(parsed))
		for i, p := range parsed {
			builders[i] = tx.ProviderAvailability.Create().
				SetStaffID(staffID).
				SetWeekday(p.weekday).
				SetStartMinute(p.start).
				SetEndMinute(p.end).
				SetNillableValidFrom(p.validFrom).
				SetNillableValidTo(p.validTo)
		}
		created, err = tx.ProviderAvailability.CreateBulk(builders...).Save(ctx)
		sortPeriods(created)
		return created, err
	})
}

// period is an AvailabilityPeriod checked and in minutes.
type period struct {
	weekday, start, end int
	validFrom, validTo  *time.Time
}

func parsePeriods(in []*AvailabilityPeriod) ([]period, error) {
	if len(in) > MaxPeriods {
		return nil, apperr.BadInput("periods", "at most %d periods", MaxPeriods)
	}
	out := make([]period, len(in))
	for i, p := range in {
		field := func(name string) string { return fmt.Sprintf("periods[%d].%s", i, name) }
		if p.Weekday < 0 || p.Weekday > 6 {
			return nil, apperr.BadInput(field("weekday"), "must be 0 (Sunday) to 6 (Saturday)")
		}
		start, ok := ParseClock(p.StartTime)
		if !ok || start == dayMinutes {
			return nil, apperr.BadInput(field("startTime"), "must be a time of day HH:MM, 00:00 to 23:59")
		}
		end, ok := ParseClock(p.EndTime)
		if !ok {
			return nil, apperr.BadInput(field("endTime"), "must be a time of day HH:MM, 00:01 to 24:00")
		}
		if end <= start {
			return nil, apperr.BadInput(field("endTime"), "must be after startTime")
		}
		from, to := dateOnly(p.ValidFrom), dateOnly(p.ValidTo)
		if from != nil && to != nil && to.Before(*from) {
			return nil, apperr.BadInput(field("validTo"), "must not be before validFrom")
		}
		out[i] = period{weekday: p.Weekday, start: start, end: end, validFrom: from, validTo: to}
		for j := 0; j < i; j++ {
			if q := out[j]; q.weekday == p.Weekday && q.start < end && start < q.end && validitiesOverlap(q, out[i]) {
				return nil, apperr.BadInput(field("startTime"), "overlaps periods[%d] on the same weekday", j)
			}
		}
	}
	return out, nil
}

// twoDigits refuses what strconv.Atoi would take besides digits: "+9".
func twoDigits(s string) bool {
	return len(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9'
}

// ParseClock reads HH:MM as minutes after midnight; 24:00 is the end of
// the day.
func ParseClock(s string) (int, bool) {
	hh, mm, ok := strings.Cut(s, ":")
	if !ok || !twoDigits(hh) || !twoDigits(mm) {
		return 0, false
	}
	h, err1 := strconv.Atoi(hh)
	m, err2 := strconv.Atoi(mm)
	switch {
	case err1 != nil || err2 != nil || h < 0 || m < 0 || m > 59:
		return 0, false
	case h == 24 && m == 0:
		return dayMinutes, true
	case h > 23:
		return 0, false
	}
	return h*60 + m, true
}

// dateOnly is the calendar date of t as midnight UTC, however the database
// handed it back.
func dateOnly(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	d := time.Date(u.Year(), u.Month(), u.Day(), 0, 0, 0, 0, time.UTC)
	return &d
}

func validitiesOverlap(a, b period) bool {
	return (a.validTo == nil || b.validFrom == nil || !a.validTo.Before(*b.validFrom)) &&
		(b.validTo == nil || a.validFrom == nil || !b.validTo.Before(*a.validFrom))
}

func sortPeriods(ps []*ent.ProviderAvailability) {
	sort.Slice(ps, func(i, j int) bool {
		if ps[i].Weekday != ps[j].Weekday {
			return ps[i].Weekday < ps[j].Weekday
		}
		return ps[i].StartMinute < ps[j].StartMinute
	})
}

// AddTimeOff blocks the provider's time. It is refused while appointments
// are still to happen in that time: they are moved or cancelled first, so
// no patient is left booked with someone who is away.
func (s *Service) AddTimeOff(ctx context.Context, in TimeOff) (*ent.ProviderTimeOff, error) {
	in.StartAt, in.EndAt = in.StartAt.UTC(), in.EndAt.UTC()
	var c input.Checker
	c.ID("input.staffId", in.StaffID, input.Staff)
	switch {
	case c.Err() != nil:
	case !in.EndAt.After(in.StartAt):
		c.Fail(apperr.BadInput("input.endAt", "must be after startAt"))
	case in.EndAt.Sub(in.StartAt) > MaxTimeOff:
		c.Fail(apperr.BadInput("input.endAt", "one stretch of time off lasts at most %d days", int(MaxTimeOff.Hours()/24)))
	}
	in.Reason = c.OptionalText("input.reason", in.Reason, 200)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (created *ent.ProviderTimeOff, err error) {
		if err := s.store.Lock(ctx, tx, "provider:"+in.StaffID); err != nil {
			return nil, err
		}
		provider, err := tx.Staff.Get(ctx, in.StaffID)
		if ent.IsNotFound(err) {
			return nil, apperr.BadInput("input.staffId", "no such member of staff")
		} else if err != nil {
			return nil, err
		}
		if !isProviderKind(provider.Kind) {
			return nil, apperr.BadInput("input.staffId", "is not a doctor or nurse")
		}
		n, err := tx.Appointment.Query().Where(
			appointment.ProviderID(in.StaffID),
			appointment.StatusIn(busyStatuses...),
			appointment.StartAtLT(in.EndAt),
			appointment.EndAtGT(in.StartAt),
		).Count(ctx)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, apperr.Conflictf("the provider has %d appointment(s) in that time; reschedule or cancel them first", n)
		}
		created, err = tx.ProviderTimeOff.Create().
			SetStaffID(in.StaffID).
			SetStartAt(in.StartAt.UTC()).
			SetEndAt(in.EndAt.UTC()).
			SetNillableReason(in.Reason).
			Save(ctx)
		return created, err
	})
}

// RemoveTimeOff deletes time off, freeing the time for bookings again, and
// returns what was removed.
func (s *Service) RemoveTimeOff(ctx context.Context, id string) (*ent.ProviderTimeOff, error) {
	if err := input.ID("id", id, input.ProviderTimeOff); err != nil {
		return nil, err
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (removed *ent.ProviderTimeOff, err error) {
		removed, err = tx.ProviderTimeOff.Get(ctx, id)
		if ent.IsNotFound(err) {
			return nil, apperr.NotFoundf("time off not found")
		} else if err != nil {
			return nil, err
		}
		n, err := tx.ProviderTimeOff.Delete().Where(providertimeoff.ID(id)).Exec(ctx)
		if err == nil && n == 0 {
			return nil, apperr.NotFoundf("time off not found")
		}
		return removed, err
	})
}

// checkProviderWorks refuses [start, end) unless it lies inside one of the
// provider's working periods — their weekly availability and their roster
// entries on bookable shifts — when they have any availability or roster
// at all, and outside all their time off.
func (s *Service) checkProviderWorks(ctx context.Context, tx *ent.Tx, providerID string, start, end time.Time) error {
	cal, err := s.calendarAt(ctx, tx, providerID, start, end)
	if err != nil {
		return err
	}
	var periods []*ent.ProviderAvailability
	if cal.hasPeriods {
		if periods, err = tx.ProviderAvailability.Query().Where(provideravailability.StaffID(providerID)).All(ctx); err != nil {
			return err
		}
	}
	if (cal.hasPeriods || cal.rostered) && !s.withinPeriod(periods, start, end) {
		onShift, err := tx.RosterEntry.Query().Where(
			rosterentry.StaffID(providerID),
			rosterentry.StartAtLTE(start),
			rosterentry.EndAtGTE(end),
			rosterentry.HasShiftWith(shiftdefinition.Bookable(true)),
		).Exist(ctx)
		if err != nil {
			return err
		}
		if !onShift {
			return apperr.Conflictf("the provider does not work from %s to %s (see their availability and roster, in the hospital's time zone %s)",
				stamp(start), stamp(end), s.hospital)
		}
	}
	if !cal.away {
		return nil
	}
	off, err := tx.ProviderTimeOff.Query().Where(
		providertimeoff.StaffID(providerID),
		providertimeoff.StartAtLT(end),
		providertimeoff.EndAtGT(start),
	).Order(providertimeoff.ByStartAt()).First(ctx)
	switch {
	case ent.IsNotFound(err):
		return nil // removed since calendarAt looked: removing takes no lock
	case err != nil:
		return err
	}
	return apperr.Conflictf("the provider is away from %s to %s", stamp(off.StartAt), stamp(off.EndAt))
}

// providerCalendar says which of a provider's calendars bear on a booking.
type providerCalendar struct {
	hasPeriods bool // weekly availability, to be read and matched
	rostered   bool // a roster, so that no availability is not "always works"
	away       bool // time off overlapping the booking
}

// calendarAt asks the three questions of providerCalendar in one statement.
// Most providers have no availability periods or time off to read, and a
// booking holds the provider's lock while it asks, so each statement saved
// here shortens every booking of that provider.
func (s *Service) calendarAt(ctx context.Context, tx *ent.Tx, providerID string, start, end time.Time) (providerCalendar, error) {
	b := entsql.Dialect(s.store.Dialect)
	anyOf := func(table, staffColumn string, more ...*entsql.Predicate) *entsql.Predicate {
		return entsql.Exists(b.Select(staffColumn).From(entsql.Table(table)).
			Where(entsql.And(append([]*entsql.Predicate{entsql.EQ(staffColumn, providerID)}, more...)...)))
	}
	query, args := b.Select().
		AppendSelectExprAs(anyOf(provideravailability.Table, provideravailability.FieldStaffID), "has_periods").
		AppendSelectExprAs(anyOf(rosterentry.Table, rosterentry.FieldStaffID), "rostered").
		AppendSelectExprAs(anyOf(providertimeoff.Table, providertimeoff.FieldStaffID,
			entsql.LT(providertimeoff.FieldStartAt, end), entsql.GT(providertimeoff.FieldEndAt, start)), "away").
		Query()
	var cal providerCalendar
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return cal, fmt.Errorf("read the provider's calendar: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return cal, fmt.Errorf("read the provider's calendar: no row: %w", rows.Err())
	}
	if err := rows.Scan(&cal.hasPeriods, &cal.rostered, &cal.away); err != nil {
		return cal, fmt.Errorf("read the provider's calendar: %w", err)
	}
	return cal, rows.Close()
}

// withinPeriod reports whether [start, end) lies inside one period on the
// local day start falls on.
func (s *Service) withinPeriod(periods []*ent.ProviderAvailability, start, end time.Time) bool {
	day := s.localDay(start)
	for _, p := range periods {
		if from, to, ok := s.periodOn(p, day); ok && !start.Before(from) && !end.After(to) {
			return true
		}
	}
	return false
}

// localDay is local midnight of the hospital day t falls on.
func (s *Service) localDay(t time.Time) time.Time {
	l := t.In(s.hospital)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, s.hospital)
}

// periodOn returns the instants p runs from and to on the local day that
// starts at day, if it applies to that day. Minutes are wall-clock time, so
// a period keeps its hours across a daylight-saving change.
func (s *Service) periodOn(p *ent.ProviderAvailability, day time.Time) (time.Time, time.Time, bool) {
	if int(day.Weekday()) != p.Weekday {
		return time.Time{}, time.Time{}, false
	}
	date := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	if from := dateOnly(p.ValidFrom); from != nil && date.Before(*from) {
		return time.Time{}, time.Time{}, false
	}
	if to := dateOnly(p.ValidTo); to != nil && date.After(*to) {
		return time.Time{}, time.Time{}, false
	}
	y, m, d := day.Date()
	return time.Date(y, m, d, 0, p.StartMinute, 0, 0, s.hospital), time.Date(y, m, d, 0, p.EndMinute, 0, 0, s.hospital), true
}
