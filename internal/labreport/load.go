package labreport

import (
	"context"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/laborder"
	"github.com/hmis-dev/hmis/ent/laborderitem"
	"github.com/hmis-dev/hmis/ent/labresult"
	"github.com/hmis-dev/hmis/ent/labspecimen"
	"github.com/hmis-dev/hmis/internal/pdfreport"
)

// load reads the order and everything the report prints in the viewer's
// context, so row scope decides what exists: another patient's order is
// not found, and results not yet verified are filtered out for viewers
// who may not see drafts.
func load(ctx context.Context, client *ent.Client, id string) (*ent.LabOrder, error) {
	order, err := client.LabOrder.Query().
		Where(laborder.ID(id)).
		WithPatient().
		WithOrderedBy().
		WithSpecimens(func(q *ent.LabSpecimenQuery) {
			q.WithCollectedBy().WithReceivedBy().
				Order(labspecimen.ByCollectedAt(), labspecimen.ByID())
		}).
		WithItems(func(q *ent.LabOrderItemQuery) {
			q.WithTest().WithSpecimen().
				Order(laborderitem.ByOrderedAt(), laborderitem.ByID()).
				WithResults(func(q *ent.LabResultQuery) {
					// The lab itself sees results awaiting verification;
					// a printed report never shows them, whoever prints it.
					q.Where(labresult.StatusIn(labresult.StatusVERIFIED, labresult.StatusCORRECTED)).
						WithVerifiedBy().
						Order(labresult.ByEnteredAt(), labresult.ByID())
				})
		}).
		Only(ctx)
	if err != nil {
		return nil, err
	}
	// A report without the patient's identification is no report; row
	// scope hiding the patient means the order is not the viewer's either.
	if order.Edges.Patient == nil {
		return nil, pdfreport.ErrNotVisible
	}
	return order, nil
}
