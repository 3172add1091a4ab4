// Package attendance records staff at work: each member of staff clocks in
// and out themselves, and HR records or corrects a stretch with a reason.
//
// A record is matched to the roster entry running when it starts, or
// starting within the match window (HMIS_ATTENDANCE_MATCH_WINDOW_MINUTES),
// and its measures are stored on it, recomputed whenever its times change
// (Measure):
//   - worked minutes: the time between clock-in and clock-out, less the
//     shift's unpaid break when rostered;
//   - lateness: a clock-in later than the rostered start plus the grace
//     (HMIS_ATTENDANCE_GRACE_MINUTES) is late by the minutes since the
//     rostered start, grace included;
//   - early leave: minutes between a clock-out and a later rostered end;
//   - overtime: minutes worked past the rostered end — arriving early is
//     not overtime; work matching no roster entry is overtime whole, since
//     the roster is the work the hospital planned and anything beyond it
//     is extra (HR corrects a record that should have matched).
//
// A record still open 4 hours after its rostered end, or 16 hours after an
// unrostered clock-in, is missing its clock-out (missingClockOut): HR
// closes it with correctAttendance. Instants are UTC and a roster entry's
// are fixed when it is made, so a night shift across midnight needs no
// special case.
package attendance
