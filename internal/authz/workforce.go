package authz

import (
	"entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/internal/auth"
)

// AllWorkforceObject is the policy object that lets a role read every
// member of staff's attendance and leave (HR). It is not a GraphQL field.
// Without it a member of staff reads their own rows and those of the
// people of the departments they manage (Department.managerID), and no
// other: node(id:) on someone else's attendance record answers as for an
// ID that does not exist.
const AllWorkforceObject = "Rows.Workforce.all"

// workforceRows are the entities that belong to one member of staff, by
// the column naming them.
var workforceRows = map[string]string{
	"AttendanceRecord": "staff_id",
	"LeaveRequest":     "staff_id",
}

// workforceFilter is RowFilter for the entities of workforceRows: nil for
// entities it does not cover, and ok reports whether it does.
func (e *Enforcer) workforceFilter(v *auth.Viewer, typ string) (keep func(*sql.Selector), ok bool) {
	column, ok := workforceRows[typ]
	if !ok {
		return nil, false
	}
	switch {
	case v == nil:
		return nothing, true
	case v.System, e.Allows(v, AllWorkforceObject):
		return nil, true
	case v.StaffID == "":
		return nothing, true
	}
	return ownOrManaged(column, v.StaffID), true
}

// ownOrManaged keeps the rows of the member of staff and of the people of
// the departments they manage.
func ownOrManaged(column, staffID string) func(*sql.Selector) {
	return func(s *sql.Selector) {
		d := sql.Dialect(s.Dialect())
		st := sql.Table(staff.Table).As("wf_stf")
		dep := sql.Table(department.Table).As("wf_dep")
		managed := d.Select(st.C(staff.FieldID)).From(st).
			Join(dep).On(st.C(staff.FieldDepartmentID), dep.C(department.FieldID)).
			Where(sql.EQ(dep.C(department.FieldManagerID), staffID))
		s.Where(sql.Or(sql.EQ(s.C(column), staffID), sql.In(s.C(column), managed)))
	}
}
