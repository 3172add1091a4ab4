package ledger

import (
	"strconv"

	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/predicate"
)

func itoa(i int) string { return strconv.Itoa(i) }

func departmentID(id string) predicate.Department { return department.ID(id) }
