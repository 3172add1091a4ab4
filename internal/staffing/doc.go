// Package staffing keeps the hospital's staff records: who works here, as
// what and where, under which professional licence and terms of employment,
// how they are paid and into which account, and which login they sign in
// with. HR manages them; payroll reads pay and bank details; every member
// of staff reads their own. Deactivating a member of staff disables their
// login and ends their sessions at once. Rosters, attendance, leave and
// payroll build on these records.
package staffing
