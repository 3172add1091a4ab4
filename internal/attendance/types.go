package attendance

import "time"

// RecordAttendanceInput is the input of recordAttendance.
type RecordAttendanceInput struct {
	StaffID    string
	ClockInAt  time.Time
	ClockOutAt *time.Time
	Reason     string
}

// CorrectAttendanceInput is the input of correctAttendance: a time left
// nil stays as it is.
type CorrectAttendanceInput struct {
	ClockInAt  *time.Time
	ClockOutAt *time.Time
	Reason     string
}
