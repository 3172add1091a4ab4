package scheduling

import (
	"context"
	"sort"
	"time"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/appointment"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/provideravailability"
	"github.com/hmis-dev/hmis/ent/providertimeoff"
	"github.com/hmis-dev/hmis/ent/rosterentry"
	"github.com/hmis-dev/hmis/ent/shiftdefinition"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
)

// SlotSearch is the input of availableSlots: one provider or one
// department's providers, a time range and a slot length.
type SlotSearch struct {
	ProviderID      *string
	DepartmentID    *string
	From            time.Time
	To              time.Time
	DurationMinutes *int
	Limit           *int
}

// AvailableSlot is a free time of one provider, long enough for the
// duration asked for.
type AvailableSlot struct {
	Start    time.Time
	End      time.Time
	Provider *ent.Staff
}

// Bounds of a slot search, so that one request cannot ask for years of
// slots of a whole hospital.
const (
	MaxSlotRange           = 31 * 24 * time.Hour
	DefaultSlotMinutes     = 15
	MinSlotMinutes         = 5
	MaxSlotMinutes         = 8 * 60
	DefaultSlotLimit       = 100
	MaxSlotLimit           = 500
	maxProvidersPerRequest = 200
)

// AvailableSlots lists free slots inside the providers' working periods —
// their weekly availability and their roster entries on bookable shifts —
// earliest first: each starts at a period's start or a whole number of
// durations after it, ends inside the period (a shift crossing midnight
// runs past it), overlaps no appointment that holds its time and no time
// off, and has not started yet. Providers without any working periods are
// bookable at any time, so they have no slots to list. A search by
// department lists the weekly availability of its own providers and the
// shifts rostered in it.
func (s *Service) AvailableSlots(ctx context.Context, in SlotSearch) ([]*AvailableSlot, error) {
	in.From, in.To = in.From.UTC(), in.To.UTC()
	minutes, limit, err := validateSearch(in)
	if err != nil {
		return nil, err
	}
	providers, err := s.searchedProviders(ctx, in)
	if err != nil || len(providers) == 0 {
		return nil, err
	}
	ids := make([]string, len(providers))
	for i, p := range providers {
		ids[i] = p.ID
	}
	periods, err := s.store.Client.ProviderAvailability.Query().
		Where(provideravailability.StaffIDIn(ids...)).All(ctx)
	if err != nil {
		return nil, err
	}
	shifts, err := s.rosteredShifts(ctx, ids, in.DepartmentID, in.From, in.To)
	if err != nil {
		return nil, err
	}
	busy, err := s.busyTimes(ctx, ids, in.From, in.To)
	if err != nil {
		return nil, err
	}
	byProvider := map[string][]*ent.ProviderAvailability{}
	for _, p := range periods {
		byProvider[p.StaffID] = append(byProvider[p.StaffID], p)
	}
	onShift := map[string][]*ent.RosterEntry{}
	for _, e := range shifts {
		onShift[e.StaffID] = append(onShift[e.StaffID], e)
	}
	length := time.Duration(minutes) * time.Minute
	from := in.From
	if now := s.now(); now.After(from) {
		from = now
	}
	var slots []*AvailableSlot
	for _, provider := range providers {
		// The earliest page of all providers is among each one's earliest page.
		weekly := byProvider[provider.ID]
		if in.DepartmentID != nil && provider.DepartmentID != *in.DepartmentID {
			// Rostered here from another department: only the shifts here.
			weekly = nil
		}
		free := merge(busy[provider.ID])
		slots = append(slots, s.providerSlots(provider, weekly, free, from, in.To, length, limit)...)
		slots = append(slots, rosterSlots(provider, onShift[provider.ID], free, from, in.To, length, limit)...)
	}
	sort.SliceStable(slots, func(i, j int) bool {
		if !slots[i].Start.Equal(slots[j].Start) {
			return slots[i].Start.Before(slots[j].Start)
		}
		return slots[i].Provider.ID < slots[j].Provider.ID
	})
	slots = distinctSlots(slots)
	if len(slots) > limit {
		slots = slots[:limit]
	}
	return slots, nil
}

// providerSlots returns up to limit free slots of one provider in
// [from, to), earliest first.
func (s *Service) providerSlots(provider *ent.Staff, periods []*ent.ProviderAvailability, busy []interval,
	from, to time.Time, length time.Duration, limit int) []*AvailableSlot {
	sortPeriods(periods)
	var out []*AvailableSlot
	for day := s.localDay(from); day.Before(to); day = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, s.hospital) {
		for _, p := range periods {
			start, end, ok := s.periodOn(p, day)
			if !ok {
				continue
			}
			for t := start; !t.Add(length).After(end); t = t.Add(length) {
				if t.Before(from) || t.Add(length).After(to) || !isFree(busy, t, t.Add(length)) {
					continue
				}
				out = append(out, &AvailableSlot{Start: t.UTC(), End: t.Add(length).UTC(), Provider: provider})
				if len(out) == limit {
					return out
				}
			}
		}
	}
	return out
}

// rosterSlots returns up to limit free slots of one provider in [from, to)
// inside their rostered shifts, earliest first.
func rosterSlots(provider *ent.Staff, shifts []*ent.RosterEntry, busy []interval,
	from, to time.Time, length time.Duration, limit int) []*AvailableSlot {
	sort.Slice(shifts, func(i, j int) bool { return shifts[i].StartAt.Before(shifts[j].StartAt) })
	var out []*AvailableSlot
	for _, e := range shifts {
		for t := e.StartAt.UTC(); !t.Add(length).After(e.EndAt); t = t.Add(length) {
			if t.Before(from) || t.Add(length).After(to) || !isFree(busy, t, t.Add(length)) {
				continue
			}
			out = append(out, &AvailableSlot{Start: t.UTC(), End: t.Add(length).UTC(), Provider: provider})
			if len(out) == limit {
				return out
			}
		}
	}
	return out
}

// distinctSlots drops, from slots sorted by start and provider, a slot a
// weekly period and a rostered shift both offer.
func distinctSlots(slots []*AvailableSlot) []*AvailableSlot {
	out := slots[:0]
	for _, sl := range slots {
		if n := len(out); n > 0 && out[n-1].Provider.ID == sl.Provider.ID && out[n-1].Start.Equal(sl.Start) && out[n-1].End.Equal(sl.End) {
			continue
		}
		out = append(out, sl)
	}
	return out
}

// rosteredShifts are the roster entries on bookable shifts of the
// providers overlapping [from, to), those of one department when given.
func (s *Service) rosteredShifts(ctx context.Context, providerIDs []string, departmentID *string, from, to time.Time) ([]*ent.RosterEntry, error) {
	q := s.store.Client.RosterEntry.Query().Where(
		rosterentry.StaffIDIn(providerIDs...),
		rosterentry.StartAtLT(to),
		rosterentry.EndAtGT(from),
		rosterentry.HasShiftWith(shiftdefinition.Bookable(true)),
	)
	if departmentID != nil {
		q.Where(rosterentry.DepartmentID(*departmentID))
	}
	return q.All(ctx)
}

func validateSearch(in SlotSearch) (minutes, limit int, err error) {
	minutes, limit = DefaultSlotMinutes, DefaultSlotLimit
	if in.DurationMinutes != nil {
		minutes = *in.DurationMinutes
	}
	if in.Limit != nil {
		limit = *in.Limit
	}
	switch {
	case (in.ProviderID == nil) == (in.DepartmentID == nil):
		return 0, 0, apperr.BadInput("input.providerId", "give either providerId or departmentId")
	case in.ProviderID != nil && !input.Staff.Valid(*in.ProviderID):
		return 0, 0, input.ID("input.providerId", *in.ProviderID, input.Staff)
	case in.DepartmentID != nil && !input.Department.Valid(*in.DepartmentID):
		return 0, 0, input.ID("input.departmentId", *in.DepartmentID, input.Department)
	case !in.To.After(in.From):
		return 0, 0, apperr.BadInput("input.to", "must be after from")
	case in.To.Sub(in.From) > MaxSlotRange:
		return 0, 0, apperr.BadInput("input.to", "a search spans at most %d days", int(MaxSlotRange.Hours()/24))
	case minutes < MinSlotMinutes || minutes > MaxSlotMinutes:
		return 0, 0, apperr.BadInput("input.durationMinutes", "must be %d to %d", MinSlotMinutes, MaxSlotMinutes)
	case limit < 1 || limit > MaxSlotLimit:
		return 0, 0, apperr.BadInput("input.limit", "must be 1 to %d", MaxSlotLimit)
	}
	return minutes, limit, nil
}

// searchedProviders are the active doctors and nurses the search is about
// that have working periods: a department's own with weekly availability,
// and whoever is rostered there on a bookable shift in the search's time.
func (s *Service) searchedProviders(ctx context.Context, in SlotSearch) ([]*ent.Staff, error) {
	if in.ProviderID != nil {
		provider, err := s.store.Client.Staff.Get(ctx, *in.ProviderID)
		switch {
		case ent.IsNotFound(err):
			return nil, apperr.BadInput("input.providerId", "no such member of staff")
		case err != nil:
			return nil, err
		case !provider.Active:
			return nil, apperr.BadInput("input.providerId", "is no longer active")
		case !isProviderKind(provider.Kind):
			return nil, apperr.BadInput("input.providerId", "is not a doctor or nurse")
		}
		return []*ent.Staff{provider}, nil
	}
	if exists, err := s.store.Client.Department.Query().Where(department.ID(*in.DepartmentID)).Exist(ctx); err != nil {
		return nil, err
	} else if !exists {
		return nil, apperr.BadInput("input.departmentId", "no such department")
	}
	rostered, err := s.store.Client.RosterEntry.Query().Where(
		rosterentry.DepartmentID(*in.DepartmentID),
		rosterentry.StartAtLT(in.To),
		rosterentry.EndAtGT(in.From),
		rosterentry.HasShiftWith(shiftdefinition.Bookable(true)),
	).Unique(true).Select(rosterentry.FieldStaffID).Strings(ctx)
	if err != nil {
		return nil, err
	}
	return s.store.Client.Staff.Query().
		Where(
			staff.Active(true),
			staff.KindIn(providerKinds...),
			staff.Or(
				staff.And(staff.DepartmentID(*in.DepartmentID), staff.HasAvailability()),
				staff.IDIn(rostered...),
			),
		).
		Order(ent.Asc(staff.FieldID)).
		Limit(maxProvidersPerRequest).
		All(ctx)
}

// interval is a busy stretch [start, end).
type interval struct{ start, end time.Time }

// busyTimes returns, per provider, the times their appointments and time
// off take within [from, to). Appointments are read as the system: whose
// they are does not matter, only that the time is taken, and a viewer's row
// scope must not make someone else's booking look free. Only times are
// read, so no patient data is touched.
func (s *Service) busyTimes(ctx context.Context, providerIDs []string, from, to time.Time) (map[string][]interval, error) {
	var booked []struct {
		ProviderID string    `json:"provider_id"`
		StartAt    time.Time `json:"start_at"`
		EndAt      time.Time `json:"end_at"`
	}
	err := s.store.Client.Appointment.Query().
		Where(
			appointment.ProviderIDIn(providerIDs...),
			holdsTime(),
			appointment.StartAtLT(to),
			appointment.EndAtGT(from),
		).
		Select(appointment.FieldProviderID, appointment.FieldStartAt, appointment.FieldEndAt).
		Scan(auth.SystemContext(ctx), &booked)
	if err != nil {
		return nil, err
	}
	offs, err := s.store.Client.ProviderTimeOff.Query().
		Where(
			providertimeoff.StaffIDIn(providerIDs...),
			providertimeoff.StartAtLT(to),
			providertimeoff.EndAtGT(from),
		).
		All(ctx)
	if err != nil {
		return nil, err
	}
	busy := map[string][]interval{}
	for _, b := range booked {
		busy[b.ProviderID] = append(busy[b.ProviderID], interval{b.StartAt, b.EndAt})
	}
	for _, o := range offs {
		busy[o.StaffID] = append(busy[o.StaffID], interval{o.StartAt, o.EndAt})
	}
	return busy, nil
}

// merge sorts busy intervals and joins those that touch or overlap.
func merge(in []interval) []interval {
	sort.Slice(in, func(i, j int) bool { return in[i].start.Before(in[j].start) })
	var out []interval
	for _, iv := range in {
		if n := len(out); n > 0 && !iv.start.After(out[n-1].end) {
			if iv.end.After(out[n-1].end) {
				out[n-1].end = iv.end
			}
			continue
		}
		out = append(out, iv)
	}
	return out
}

// isFree reports whether [start, end) overlaps none of busy, which merge
// has sorted and made disjoint.
func isFree(busy []interval, start, end time.Time) bool {
	i := sort.Search(len(busy), func(i int) bool { return busy[i].end.After(start) })
	return i == len(busy) || !busy[i].start.Before(end)
}
