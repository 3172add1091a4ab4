// Package leave keeps staff leave: a member of staff requests whole days
// away, the manager of their department approves or rejects (HR when the
// department has no manager or the requester manages it), and balances
// per kind and calendar year say how many days are left.
//
// Approval changes the person's working time, so it runs under the lock
// scheduling takes for bookings and time off ("provider:"+staffID): it
// re-checks the balance, lays time off over the whole local days for a
// doctor or nurse (slots vanish, bookings are refused), removes their
// roster entries in those days, and returns the appointments already
// booked then for rebooking rather than refusing because of them.
//
// Rules decided here:
//   - days are calendar days, inclusive; a request stays within one
//     calendar year (split it at the new year), which also bounds it to
//     366 days;
//   - a request may not start before today, except SICK leave, which may
//     start up to SickBackdateDays days ago: people report sickness when
//     they are back;
//   - the balance checked when requesting counts pending requests too, so
//     requests together never ask for more than is left; approval checks
//     approved leave only (pending requests may still be rejected);
//   - UNPAID leave has no balance.
package leave
