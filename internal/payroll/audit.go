package payroll

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/internal/audit"
)

// AuditReads puts every read of a payslip on the audit trail, as a read of
// bank details is: whichever way a request reached it (myPayslips, a run's
// payslips, node(id:), the printed payslip), the request's audit row names
// the payslips read.
func AuditReads(client *ent.Client) {
	client.Payslip.Intercept(ent.InterceptFunc(func(next ent.Querier) ent.Querier {
		return ent.QuerierFunc(func(ctx context.Context, q ent.Query) (ent.Value, error) {
			v, err := next.Query(ctx, q)
			if err != nil {
				return v, err
			}
			switch x := v.(type) {
			case []*ent.Payslip:
				for _, p := range x {
					audit.NoteSensitive(ctx, "Payslip", ent.TypePayslip, p.ID)
				}
			case *ent.Payslip:
				audit.NoteSensitive(ctx, "Payslip", ent.TypePayslip, x.ID)
			}
			return v, nil
		})
	}))
}
