package charges

import (
	"context"
	"time"

	entsql "entgo.io/ent/dialect/sql"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/department"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/labtest"
	"github.com/hmis-dev/hmis/ent/payer"
	"github.com/hmis-dev/hmis/ent/staff"
	"github.com/hmis-dev/hmis/ent/stockbatch"
	"github.com/hmis-dev/hmis/ent/tariff"
	"github.com/hmis-dev/hmis/ent/ward"
	"github.com/hmis-dev/hmis/internal/apperr"
	"github.com/hmis-dev/hmis/internal/auth"
	"github.com/hmis-dev/hmis/internal/input"
	"github.com/hmis-dev/hmis/internal/store"
)

// MaxPrice bounds a price on the list (a hundred million in major units): times the largest quantity a
// charge takes it stays far inside int64 minor units, and so do an invoice's sums.
const MaxPrice = 100_000_000_00

// MaxPayment bounds one payment (ten billion in major units).
const MaxPayment = 10_000_000_000_00

// SetTariffPriceInput is the input of setTariffPrice: a new dated price of a
// service, for every payer (PayerID nil) or for one.
type SetTariffPriceInput struct {
	Code     string
	Name     string
	Category tariff.Category
	RefID    *string
	PayerID  *string
	Price    int64
	// EffectiveFrom defaults to now; a price cannot be back-dated, since
	// charges already captured were priced by the rows then in force.
	EffectiveFrom *time.Time
}

// clerks are the staff who keep the price list and the charges.
var clerks = []staff.Kind{staff.KindBILLING_CLERK, staff.KindADMINISTRATOR}

// SetPrice adds a row to the price list. The code's earlier rows stay: they
// priced the charges captured while they were in force.
func (s *Service) SetPrice(ctx context.Context, in SetTariffPriceInput) (*ent.Tariff, error) {
	var c input.Checker
	code := c.Text("input.code", in.Code, 40)
	name := c.Text("input.name", in.Name, 200)
	c.OptionalID("input.payerId", in.PayerID, input.Payer)
	c.OptionalText("input.refId", in.RefID, 40)
	if err := c.Err(); err != nil {
		return nil, err
	}
	if err := tariff.CategoryValidator(in.Category); err != nil {
		return nil, apperr.BadInput("input.category", "is not a category of the price list")
	}
	if in.Price < 0 || in.Price > MaxPrice {
		return nil, apperr.BadInput("input.price", "must be from 0.00 to %s", input.FormatMoney(MaxPrice))
	}
	now := input.Stored(s.now())
	from := now
	if in.EffectiveFrom != nil {
		from = input.Stored(*in.EffectiveFrom)
		if from.Before(now.Add(-time.Minute)) {
			return nil, apperr.BadInput("input.effectiveFrom", "must not be in the past: charges already captured were priced by the rows then in force")
		}
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (*ent.Tariff, error) {
		clerk, err := auth.ActingStaff(ctx, tx.Staff, "change the price list", clerks...)
		if err != nil {
			return nil, err
		}
		if err := s.store.Lock(ctx, tx, "tariff:"+code); err != nil {
			return nil, err
		}
		prev, err := tx.Tariff.Query().Where(tariff.Code(code)).Order(tariff.ByEffectiveFrom(entsql.OrderDesc())).First(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return nil, err
		}
		if prev != nil && prev.Category != in.Category {
			return nil, apperr.BadInput("input.category", "code %s is a %s service", code, prev.Category)
		}
		if err := checkRef(ctx, tx, in.Category, in.RefID); err != nil {
			return nil, err
		}
		if in.PayerID != nil {
			if ok, err := tx.Payer.Query().Where(payer.ID(*in.PayerID)).Exist(ctx); err != nil {
				return nil, err
			} else if !ok {
				return nil, apperr.BadInput("input.payerId", "no such payer")
			}
		}
		same := tx.Tariff.Query().Where(tariff.Code(code), tariff.EffectiveFrom(from))
		if in.PayerID != nil {
			same.Where(tariff.PayerID(*in.PayerID))
		} else {
			same.Where(tariff.PayerIDIsNil())
		}
		if dup, err := same.Exist(ctx); err != nil {
			return nil, err
		} else if dup {
			return nil, apperr.Conflictf("code %s already has a price from that moment for that payer", code)
		}
		return tx.Tariff.Create().SetCode(code).SetName(name).SetCategory(in.Category).
			SetNillableRefID(in.RefID).SetNillablePayerID(in.PayerID).SetPrice(in.Price).
			SetEffectiveFrom(from).SetCreatedByID(clerk.ID).Save(ctx)
	})
}

// checkRef makes sure a price's refId names what its category prices
// automatically, so a captured service finds it.
func checkRef(ctx context.Context, tx *ent.Tx, category tariff.Category, ref *string) error {
	if ref == nil {
		return nil
	}
	var exists bool
	var err error
	what := ""
	switch category {
	case tariff.CategoryCONSULTATION:
		what = "department"
		exists, err = tx.Department.Query().Where(department.ID(*ref)).Exist(ctx)
	case tariff.CategoryLAB:
		what = "lab test"
		exists, err = tx.LabTest.Query().Where(labtest.ID(*ref)).Exist(ctx)
	case tariff.CategoryDRUG, tariff.CategoryITEM:
		what = "formulary item"
		exists, err = tx.Drug.Query().Where(drug.ID(*ref)).Exist(ctx)
	case tariff.CategoryBED_DAY:
		what = "ward"
		exists, err = tx.Ward.Query().Where(ward.ID(*ref)).Exist(ctx)
	default:
		return apperr.BadInput("input.refId", "a %s price is charged by hand and refers to nothing", category)
	}
	if err != nil {
		return err
	}
	if !exists {
		return apperr.BadInput("input.refId", "no such %s", what)
	}
	return nil
}

// Price returns the row that prices code for payer at a time: the payer's
// own newest row in force, else the default one. payerID "" asks for the
// default price.
func Price(ctx context.Context, client *ent.TariffClient, code, payerID string, at time.Time) (*ent.Tariff, error) {
	return priceWhere(ctx, client, payerID, at, tariff.Code(code))
}

// priceOf is Price for the service a module's row stands for.
func priceOf(ctx context.Context, client *ent.TariffClient, category tariff.Category, refID, payerID string, at time.Time) (*ent.Tariff, error) {
	return priceWhere(ctx, client, payerID, at, tariff.CategoryEQ(category), tariff.RefID(refID))
}

func priceWhere(ctx context.Context, client *ent.TariffClient, payerID string, at time.Time, ps ...func(*entsql.Selector)) (*ent.Tariff, error) {
	newest := func(payer func(*entsql.Selector)) (*ent.Tariff, error) {
		q := client.Query().Where(tariff.EffectiveFromLTE(at), payer)
		for _, p := range ps {
			q.Where(p)
		}
		t, err := q.Order(tariff.ByEffectiveFrom(entsql.OrderDesc()), tariff.ByID(entsql.OrderDesc())).First(ctx)
		if ent.IsNotFound(err) {
			return nil, nil
		}
		return t, err
	}
	if payerID != "" {
		if t, err := newest(tariff.PayerID(payerID)); t != nil || err != nil {
			return t, err
		}
	}
	t, err := newest(tariff.PayerIDIsNil())
	if err == nil && t == nil {
		return nil, errNoPrice
	}
	return t, err
}

// SeedOptions are the prices the starter price list takes for what no
// module prices: a consultation, a bed-day.
type SeedOptions struct {
	ConsultationFee int64
	BedDayFee       int64
}

// Seed writes a starter price list from what exists: each active lab test
// at its price, each drug stocked at its newest batch's cost plus the markup,
// a consultation per department and a bed-day per ward at the fees given.
// Services already on the list are left alone, so seeding again adds only
// what is new. It returns how many rows it wrote.
func (s *Service) Seed(ctx context.Context, opt SeedOptions) (int, error) {
	if opt.ConsultationFee < 0 {
		return 0, apperr.BadInput("consultationFee", "must not be negative")
	}
	if opt.BedDayFee < 0 {
		return 0, apperr.BadInput("bedDayFee", "must not be negative")
	}
	return store.Tx(ctx, s.store, func(ctx context.Context, tx *ent.Tx) (int, error) {
		var by *string
		if v := auth.FromContext(ctx); v == nil || !v.System {
			clerk, err := auth.ActingStaff(ctx, tx.Staff, "seed the price list", clerks...)
			if err != nil {
				return 0, err
			}
			by = &clerk.ID
		}
		if err := s.store.Lock(ctx, tx, "tariff-seed"); err != nil {
			return 0, err
		}
		now := input.Stored(s.now())
		n := 0
		add := func(code, name string, cat tariff.Category, ref string, price int64) error {
			exists, err := tx.Tariff.Query().Where(tariff.Or(tariff.Code(code), tariff.And(tariff.CategoryEQ(cat), tariff.RefID(ref)))).Exist(ctx)
			if err != nil || exists {
				return err
			}
			n++
			return tx.Tariff.Create().SetCode(code).SetName(name).SetCategory(cat).SetRefID(ref).
				SetPrice(price).SetEffectiveFrom(now).SetNillableCreatedByID(by).Exec(ctx)
		}
		tests, err := tx.LabTest.Query().All(ctx)
		if err != nil {
			return 0, err
		}
		for _, t := range tests {
			if err := add("LAB-"+t.Code, t.Name, tariff.CategoryLAB, t.ID, t.Price); err != nil {
				return 0, err
			}
		}
		deps, err := tx.Department.Query().All(ctx)
		if err != nil {
			return 0, err
		}
		for _, d := range deps {
			if err := add("CONS-"+d.Code, "Consultation, "+d.Name, tariff.CategoryCONSULTATION, d.ID, opt.ConsultationFee); err != nil {
				return 0, err
			}
		}
		wards, err := tx.Ward.Query().All(ctx)
		if err != nil {
			return 0, err
		}
		for _, w := range wards {
			if err := add("BED-"+w.Code, "Bed-day, "+w.Name, tariff.CategoryBED_DAY, w.ID, opt.BedDayFee); err != nil {
				return 0, err
			}
		}
		drugs, err := tx.Drug.Query().All(ctx)
		if err != nil {
			return 0, err
		}
		for _, d := range drugs {
			b, err := tx.StockBatch.Query().Where(stockbatch.DrugID(d.ID)).
				Order(stockbatch.ByCreatedAt(entsql.OrderDesc()), stockbatch.ByID(entsql.OrderDesc())).First(ctx)
			if ent.IsNotFound(err) {
				continue // priced at cost plus markup when dispensed
			} else if err != nil {
				return 0, err
			}
			if err := add("DRUG-"+d.Code, d.GenericName, tariff.CategoryDRUG, d.ID, withMarkup(b.UnitCost, s.markup)); err != nil {
				return 0, err
			}
		}
		return n, nil
	})
}

// SeedPriceListInput is the input of seedPriceList.
type SeedPriceListInput struct {
	ConsultationFee int64
	BedDayFee       int64
}
