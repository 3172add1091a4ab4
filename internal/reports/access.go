package reports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
)

// Policy objects that widen what a report covers (policies/reports.csv).
// The GraphQL field (Query.revenueReport) decides whether a role may run a
// report at all; these decide over which departments:
//   - AllDepartmentsObject: the whole hospital, any filter (hospital
//     manager, finance officer);
//   - ManagedDepartmentsObject: the departments the member of staff manages
//     (Department.manager) and their own (ward manager);
//   - neither: their own department only (clinicians).
const (
	AllDepartmentsObject     = "Reports.allDepartments"
	ManagedDepartmentsObject = "Reports.managedDepartments"
)

// scope checks that the viewer may run def over p and returns the
// parameters the figures are computed with: a viewer limited to some
// departments gets one of them even when they named none.
func (s *Service) scope(ctx context.Context, def *definition, p Params) (Params, error) {
	v := auth.FromContext(ctx)
	if v == nil {
		return p, apperr.Unauthenticatedf("sign in to run reports")
	}
	if !def.byDepartment && p.DepartmentID != "" {
		return p, apperr.BadInput("input.departmentId", "the %s report is not kept by department", def.name)
	}
	if !def.byWard && p.WardID != "" {
		return p, apperr.BadInput("input.wardId", "the %s report is not kept by ward", def.name)
	}
	if !def.byPayer && p.PayerID != "" {
		return p, apperr.BadInput("input.payerId", "the %s report is not kept by payer", def.name)
	}
	if p.WardID != "" {
		dep, err := s.departmentOfWard(ctx, p.WardID)
		if err != nil {
			return p, err
		}
		if p.DepartmentID != "" && p.DepartmentID != dep {
			return p, apperr.BadInput("input.wardId", "is not a ward of input.departmentId")
		}
		if def.byDepartment {
			p.DepartmentID = dep
		}
	}
	if v.System || s.allows(v, AllDepartmentsObject) {
		return p, nil
	}
	if !def.byDepartment {
		// A report that cannot be narrowed to a department is for those
		// who see the whole hospital.
		return p, apperr.Denied("the %s report covers the whole hospital", def.name)
	}
	mine, err := s.departmentsOf(ctx, v)
	if err != nil {
		return p, err
	}
	switch {
	case len(mine) == 0:
		return p, apperr.Denied("reports are limited to your department, and you have none")
	case p.DepartmentID == "" && len(mine) == 1:
		p.DepartmentID = mine[0]
	case p.DepartmentID == "":
		return p, apperr.BadInput("input.departmentId", "name one of the departments you may report on")
	}
	for _, d := range mine {
		if d == p.DepartmentID {
			return p, nil
		}
	}
	return p, apperr.Denied("you may report on your own department only")
}

// departmentsOf lists the departments v may report on without seeing the
// whole hospital: their own, and those they manage if the policy lets them.
func (s *Service) departmentsOf(ctx context.Context, v *auth.Viewer) ([]string, error) {
	if v.StaffID == "" {
		return nil, nil
	}
	var out []string
	var own sql.NullString
	err := s.store.DB.QueryRowContext(ctx, s.rebind(`SELECT department_id FROM staffs WHERE id = ? AND active`), v.StaffID).Scan(&own)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("reports: viewer's department: %w", err)
	}
	if own.Valid && own.String != "" {
		out = append(out, own.String)
	}
	if !s.allows(v, ManagedDepartmentsObject) {
		return out, nil
	}
	rows, err := s.store.DB.QueryContext(ctx, s.rebind(`SELECT id FROM departments WHERE manager_id = ? ORDER BY id`), v.StaffID)
	if err != nil {
		return nil, fmt.Errorf("reports: managed departments: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if id != own.String {
			out = append(out, id)
		}
	}
	return out, rows.Err()
}

func (s *Service) departmentOfWard(ctx context.Context, ward string) (string, error) {
	var dep string
	err := s.store.DB.QueryRowContext(ctx, s.rebind(`SELECT department_id FROM wards WHERE id = ?`), ward).Scan(&dep)
	if errors.Is(err, sql.ErrNoRows) {
		return "", apperr.NotFoundf("ward not found")
	}
	if err != nil {
		return "", fmt.Errorf("reports: ward: %w", err)
	}
	return dep, nil
}

// rebind turns a query with one ? into the dialect's placeholder.
func (s *Service) rebind(query string) string {
	b := &q{dialect: s.store.Dialect}
	out := ""
	for _, c := range query {
		if c == '?' {
			out += b.arg(nil)
			continue
		}
		out += string(c)
	}
	return out
}

func errUnknown(name string) error {
	return apperr.NotFoundf("no report called %q", name)
}

func errTooManyBuckets() error {
	return apperr.BadInput("input.bucket", "the range has more than %d buckets of this size", MaxBuckets)
}
