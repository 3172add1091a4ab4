// Package payslipreport is the printable payslip,
// GET /reports/payslips/{id}.pdf. Who gets it is decided as for every
// document (internal/pdfreport): the policy object Report.payslip, which
// every member of staff holds, then row scope on payslips (the owner's own
// once approved; HR and payroll everyone's), so that someone else's payslip
// is answered 404 exactly like one that does not exist. The read is audited
// as every read of a payslip is (payroll.AuditReads).
package payslipreport

import (
	"context"
	"io"
	"net/http"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/paydeduction"
	"github.com/hmis-dev/hmis/ent/payslip"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/pdfreport"
)

const (
	// Pattern is the route to mount the handler on.
	Pattern = "GET /reports/payslips/{" + pdfreport.PathValue + "}"
	// Object is the policy object that allows printing a payslip.
	Object = "Report.payslip"
	// Operation names the report in the audit trail.
	Operation = "report:payslip"
)

// Deps are what the handler is built from.
type Deps = pdfreport.Deps

// NewHandler returns the handler. Mount it on Pattern, behind the
// middleware that puts the viewer in the request's context.
func NewHandler(d Deps) http.Handler { return pdfreport.NewHandler(document, d) }

var document = pdfreport.Document{
	Object: Object, Operation: Operation,
	Noun: "payslip", What: "a payslip",
	ObjectType: ent.TypePayslip, FilePrefix: "payslip-",
	ValidID: input.Payslip.Valid,
	Make: func(ctx context.Context, d Deps, id string, w io.Writer) error {
		p, carried, err := load(ctx, d.Client, id)
		if err != nil {
			return err
		}
		return render(w, p, carried, d.HospitalName, d.Location, d.Now())
	},
}

// load reads the payslip in the viewer's context, so that row scope
// decides whether it exists, with its owner and run, and what of the
// period's deductions it could not take.
func load(ctx context.Context, client *ent.Client, id string) (*ent.Payslip, int64, error) {
	p, err := client.Payslip.Query().Where(payslip.ID(id)).WithStaff().WithRun().Only(ctx)
	if err != nil {
		return nil, 0, err
	}
	if p.Edges.Staff == nil || p.Edges.Run == nil {
		return nil, 0, pdfreport.ErrNotVisible
	}
	amounts, err := client.PayDeduction.Query().
		Where(paydeduction.StaffID(p.StaffID), paydeduction.Period(p.Period)).
		Select(paydeduction.FieldAmount).Ints(ctx)
	if err != nil {
		return nil, 0, err
	}
	var sum int64
	for _, a := range amounts {
		sum += int64(a)
	}
	return p, max(sum-p.OtherDeductions, 0), nil
}
