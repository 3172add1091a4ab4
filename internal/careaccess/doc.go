// Package careaccess is the part of access control that depends on the
// patient's care: break-the-glass accesses, the identifying header a
// clinician without a care relationship may read, and the patient's own
// view of who touched their record, read from the audit trail.
//
// Which rows a clinician sees is decided by row scope (internal/authz,
// careRelationship), which reads the accesses this package creates.
package careaccess
