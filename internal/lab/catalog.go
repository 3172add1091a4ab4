package lab

import (
	"context"
	"errors"
	"fmt"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/labpanel"
	"github.com/hmis-dev/hmis/ent/labreferencerange"
	"github.com/hmis-dev/hmis/ent/labtest"
)

// Units: the starter catalog reports in SI units, as most of the world's
// labs do, so that one set of reference ranges and panic limits serves every
// install: substance concentrations in mmol/L or umol/L, proteins in g/L,
// enzymes in U/L. The exceptions are what analysers and clinicians use almost
// everywhere: haemoglobin and MCHC in g/dL, haematocrit and HbA1c (NGSP) in
// %, cell counts in 10*3/uL and 10*6/uL. Each code is the LOINC term of the
// unit chosen (14749-6 glucose in mmol/L, not 2345-7 in mg/dL), because a
// LOINC code fixes the property measured: a lab reporting mg/dL must use
// other codes, not just other units. Units are written in UCUM (umol/L is
// what a report prints as µmol/L).
//
// The ranges are typical adult and paediatric ones from common reference
// tables, a starting point until a lab enters its own validated ranges,
// which seeding never overwrites.

// catalogTest is one orderable test of the starter catalog.
type catalogTest struct {
	code, name, short string
	specimen          labtest.SpecimenType
	kind              labtest.ResultKind
	unit              string
	decimals          int
	codes, normal     []string // CODED tests only
	price             int64    // minor units
	turnaround        int      // minutes
	ranges            []refBand
}

// catalogPanel is one panel of the starter catalog, by its tests' codes.
type catalogPanel struct {
	code, name string
	price      int64
	tests      []string
}

// refBand is one reference range of a catalog test; nil limits are absent.
type refBand struct {
	sex               labreferencerange.Sex // empty: either sex
	fromDays, toDays  int                   // toDays 0: no upper bound
	low, high         *float64
	critLow, critHigh *float64
}

// ageYears converts years of age to the days reference bands are kept in,
// counting leap days, so a band boundary falls on or next to the birthday.
func ageYears(n int) int { return n*365 + n/4 }

const neonatalDays = 30

// ageBand is a sex-neutral band with no limits yet; toDays 0 is open.
func ageBand(fromDays, toDays int) refBand { return refBand{fromDays: fromDays, toDays: toDays} }

// Bands most tests share.
var (
	ageAll     = ageBand(0, 0)
	ageNeonate = ageBand(0, neonatalDays)
	ageInfant  = ageBand(neonatalDays, ageYears(1))
	ageMinor   = ageBand(0, ageYears(18))
	ageAdult   = ageBand(ageYears(18), 0)
	ageTeen    = ageBand(ageYears(12), ageYears(18))
)

func refLimit(v float64) *float64 { return &v }

func (b refBand) female() refBand { b.sex = labreferencerange.SexFEMALE; return b }
func (b refBand) male() refBand   { b.sex = labreferencerange.SexMALE; return b }

// normal sets both normal limits; below and above set one, for analytes
// where only one side matters (CRP, HDL).
func (b refBand) normal(low, high float64) refBand {
	b.low, b.high = refLimit(low), refLimit(high)
	return b
}
func (b refBand) below(high float64) refBand { b.high = refLimit(high); return b }
func (b refBand) above(low float64) refBand  { b.low = refLimit(low); return b }

// critical sets both panic limits; criticalHigh only the upper one.
func (b refBand) critical(low, high float64) refBand {
	b.critLow, b.critHigh = refLimit(low), refLimit(high)
	return b
}
func (b refBand) criticalHigh(high float64) refBand { b.critHigh = refLimit(high); return b }

// Answers of the dipstick pads; only NEGATIVE is normal.
var (
	dipstickGraded  = []string{"NEGATIVE", "TRACE", "1+", "2+", "3+"}
	dipstickGraded4 = []string{"NEGATIVE", "TRACE", "1+", "2+", "3+", "4+"}
	dipstickNoTrace = []string{"NEGATIVE", "1+", "2+", "3+"}
	dipstickBinary  = []string{"NEGATIVE", "POSITIVE"}
	dipstickNormal  = []string{"NEGATIVE"}
)

const (
	inBlood     = labtest.SpecimenTypeWHOLE_BLOOD
	inSerum     = labtest.SpecimenTypeSERUM
	inPlasma    = labtest.SpecimenTypePLASMA
	inUrine     = labtest.SpecimenTypeURINE
	kindNumeric = labtest.ResultKindNUMERIC
	kindCoded   = labtest.ResultKindCODED
	kindText    = labtest.ResultKindTEXT
)

// labCatalog is the starter test catalog. Sex-specific tests keep a
// sex-neutral row beside the male and female ones, spanning both, so a
// patient recorded as OTHER or UNKNOWN is still flagged, panic values
// included. Critical limits follow common laboratory alert lists.
var labCatalog = []catalogTest{
	// Haematology: complete blood count.
	{code: "718-7", name: "Hemoglobin [Mass/volume] in Blood", short: "Hb", specimen: inBlood, kind: kindNumeric,
		unit: "g/dL", decimals: 1, price: 600, turnaround: 60, ranges: []refBand{
			ageNeonate.normal(14.0, 22.0).critical(9.5, 23.0),
			ageInfant.normal(9.5, 14.0).critical(7.0, 20.0),
			ageBand(ageYears(1), ageYears(12)).normal(10.5, 15.5).critical(7.0, 20.0),
			ageTeen.female().normal(12.0, 16.0).critical(7.0, 20.0),
			ageTeen.male().normal(13.0, 16.0).critical(7.0, 20.0),
			ageTeen.normal(12.0, 16.0).critical(7.0, 20.0),
			ageAdult.female().normal(12.0, 15.5).critical(7.0, 20.0),
			ageAdult.male().normal(13.5, 17.5).critical(7.0, 20.0),
			ageAdult.normal(12.0, 17.5).critical(7.0, 20.0),
		}},
	{code: "4544-3", name: "Hematocrit [Volume Fraction] of Blood by Automated count", short: "Hct", specimen: inBlood, kind: kindNumeric,
		unit: "%", decimals: 1, price: 500, turnaround: 60, ranges: []refBand{
			ageNeonate.normal(39.0, 65.0).critical(28.0, 70.0),
			ageInfant.normal(28.0, 42.0).critical(20.0, 60.0),
			ageBand(ageYears(1), ageYears(12)).normal(33.0, 45.0).critical(20.0, 60.0),
			ageTeen.female().normal(36.0, 46.0).critical(20.0, 60.0),
			ageTeen.male().normal(37.0, 49.0).critical(20.0, 60.0),
			ageTeen.normal(36.0, 49.0).critical(20.0, 60.0),
			ageAdult.female().normal(36.0, 46.0).critical(20.0, 60.0),
			ageAdult.male().normal(40.0, 52.0).critical(20.0, 60.0),
			ageAdult.normal(36.0, 52.0).critical(20.0, 60.0),
		}},
	{code: "6690-2", name: "Leukocytes [#/volume] in Blood by Automated count", short: "WBC", specimen: inBlood, kind: kindNumeric,
		unit: "10*3/uL", decimals: 1, price: 500, turnaround: 60, ranges: []refBand{
			ageNeonate.normal(5.0, 30.0).critical(2.0, 40.0),
			ageInfant.normal(6.0, 17.5).critical(2.0, 30.0),
			ageBand(ageYears(1), ageYears(6)).normal(5.0, 15.5).critical(2.0, 30.0),
			ageBand(ageYears(6), ageYears(18)).normal(4.5, 13.5).critical(2.0, 30.0),
			ageAdult.normal(4.0, 11.0).critical(2.0, 30.0),
		}},
	{code: "777-3", name: "Platelets [#/volume] in Blood by Automated count", short: "PLT", specimen: inBlood, kind: kindNumeric,
		unit: "10*3/uL", decimals: 0, price: 500, turnaround: 60, ranges: []refBand{
			ageAll.normal(150, 450).critical(20, 1000),
		}},
	{code: "789-8", name: "Erythrocytes [#/volume] in Blood by Automated count", short: "RBC", specimen: inBlood, kind: kindNumeric,
		unit: "10*6/uL", decimals: 2, price: 500, turnaround: 60, ranges: []refBand{
			ageNeonate.normal(3.6, 6.6),
			ageInfant.normal(2.7, 5.4),
			ageBand(ageYears(1), ageYears(12)).normal(3.7, 5.3),
			ageTeen.female().normal(4.1, 5.1),
			ageTeen.male().normal(4.5, 5.3),
			ageTeen.normal(4.1, 5.3),
			ageAdult.female().normal(4.0, 5.2),
			ageAdult.male().normal(4.5, 5.9),
			ageAdult.normal(4.0, 5.9),
		}},
	{code: "787-2", name: "MCV [Entitic volume] by Automated count", short: "MCV", specimen: inBlood, kind: kindNumeric,
		unit: "fL", decimals: 0, price: 300, turnaround: 60, ranges: []refBand{
			ageNeonate.normal(86, 124),
			ageBand(neonatalDays, 180).normal(74, 115),
			ageBand(180, ageYears(2)).normal(70, 86),
			ageBand(ageYears(2), ageYears(12)).normal(75, 95),
			ageTeen.normal(78, 100),
			ageAdult.normal(80, 100),
		}},
	{code: "785-6", name: "MCH [Entitic mass] by Automated count", short: "MCH", specimen: inBlood, kind: kindNumeric,
		unit: "pg", decimals: 1, price: 300, turnaround: 60, ranges: []refBand{
			ageNeonate.normal(28.0, 40.0),
			ageBand(neonatalDays, 180).normal(25.0, 35.0),
			ageBand(180, ageYears(2)).normal(23.0, 31.0),
			ageBand(ageYears(2), ageYears(12)).normal(24.0, 33.0),
			ageTeen.normal(25.0, 35.0),
			ageAdult.normal(27.0, 33.0),
		}},
	{code: "786-4", name: "MCHC [Mass/volume] by Automated count", short: "MCHC", specimen: inBlood, kind: kindNumeric,
		unit: "g/dL", decimals: 1, price: 300, turnaround: 60, ranges: []refBand{
			ageNeonate.normal(28.0, 38.0),
			ageBand(neonatalDays, ageYears(18)).normal(30.0, 36.0),
			ageAdult.normal(32.0, 36.0),
		}},
	{code: "788-0", name: "Erythrocyte distribution width [Ratio] by Automated count", short: "RDW", specimen: inBlood, kind: kindNumeric,
		unit: "%", decimals: 1, price: 300, turnaround: 60, ranges: []refBand{
			ageAll.normal(11.5, 14.5),
		}},

	// Chemistry: electrolytes and renal function.
	{code: "2951-2", name: "Sodium [Moles/volume] in Serum or Plasma", short: "Na", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 0, price: 500, turnaround: 90, ranges: []refBand{
			ageAll.normal(135, 145).critical(120, 160),
		}},
	{code: "2823-3", name: "Potassium [Moles/volume] in Serum or Plasma", short: "K", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 1, price: 500, turnaround: 90, ranges: []refBand{
			// Newborns run higher, and heel-prick samples haemolyse, so
			// their panic limit is higher too.
			ageNeonate.normal(3.7, 5.9).critical(2.8, 7.0),
			ageInfant.normal(4.1, 5.3).critical(2.8, 6.5),
			ageBand(ageYears(1), 0).normal(3.5, 5.1).critical(2.8, 6.2),
		}},
	{code: "2075-0", name: "Chloride [Moles/volume] in Serum or Plasma", short: "Cl", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 0, price: 500, turnaround: 90, ranges: []refBand{
			ageAll.normal(98, 107).critical(80, 120),
		}},
	{code: "2028-9", name: "Carbon dioxide, total [Moles/volume] in Serum or Plasma", short: "CO2", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 0, price: 500, turnaround: 90, ranges: []refBand{
			ageBand(0, ageYears(1)).normal(17, 24).critical(10, 40),
			ageBand(ageYears(1), ageYears(18)).normal(20, 28).critical(10, 40),
			ageAdult.normal(22, 29).critical(10, 40),
		}},
	{code: "22664-7", name: "Urea [Moles/volume] in Serum or Plasma", short: "Urea", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 1, price: 500, turnaround: 90, ranges: []refBand{
			ageNeonate.normal(1.1, 4.3),
			ageBand(neonatalDays, ageYears(18)).normal(1.8, 6.4),
			ageAdult.normal(2.5, 7.8),
		}},
	{code: "14682-9", name: "Creatinine [Moles/volume] in Serum or Plasma", short: "Creat", specimen: inSerum, kind: kindNumeric,
		unit: "umol/L", decimals: 0, price: 600, turnaround: 90, ranges: []refBand{
			ageNeonate.normal(27, 88), // still the mother's
			ageInfant.normal(18, 35),
			ageBand(ageYears(1), ageYears(12)).normal(27, 62),
			ageTeen.normal(44, 88),
			ageAdult.female().normal(45, 84),
			ageAdult.male().normal(59, 104),
			ageAdult.normal(45, 104),
		}},
	{code: "14749-6", name: "Glucose [Moles/volume] in Serum or Plasma", short: "Glu", specimen: inPlasma, kind: kindNumeric,
		unit: "mmol/L", decimals: 1, price: 400, turnaround: 60, ranges: []refBand{
			ageAll.normal(3.9, 5.5).critical(2.5, 25.0),
		}},
	{code: "2000-8", name: "Calcium [Moles/volume] in Serum or Plasma", short: "Ca", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 2, price: 500, turnaround: 90, ranges: []refBand{
			ageMinor.normal(2.20, 2.70).critical(1.75, 3.50),
			ageAdult.normal(2.15, 2.55).critical(1.75, 3.50),
		}},

	// Chemistry: liver function.
	{code: "1742-6", name: "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", short: "ALT", specimen: inSerum, kind: kindNumeric,
		unit: "U/L", decimals: 0, price: 600, turnaround: 120, ranges: []refBand{
			ageAll.normal(7, 50),
			ageAdult.female().normal(7, 35),
			ageAdult.male().normal(10, 50),
		}},
	{code: "1920-8", name: "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", short: "AST", specimen: inSerum, kind: kindNumeric,
		unit: "U/L", decimals: 0, price: 600, turnaround: 120, ranges: []refBand{
			ageNeonate.normal(35, 140),
			ageBand(neonatalDays, ageYears(3)).normal(15, 60),
			ageBand(ageYears(3), ageYears(12)).normal(10, 50),
			ageBand(ageYears(12), 0).normal(10, 40),
		}},
	{code: "6768-6", name: "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", short: "ALP", specimen: inSerum, kind: kindNumeric,
		unit: "U/L", decimals: 0, price: 600, turnaround: 120, ranges: []refBand{
			// Bone growth: high in infancy and again at the pubertal spurt.
			ageBand(0, ageYears(1)).normal(90, 520),
			ageBand(ageYears(1), ageYears(10)).normal(150, 370),
			ageBand(ageYears(10), ageYears(18)).normal(50, 520),
			ageAdult.normal(30, 130),
		}},
	{code: "14631-6", name: "Bilirubin.total [Moles/volume] in Serum or Plasma", short: "T Bili", specimen: inSerum, kind: kindNumeric,
		unit: "umol/L", decimals: 0, price: 500, turnaround: 120, ranges: []refBand{
			// Physiological jaundice; the panic limit is where
			// exchange transfusion comes into question.
			ageNeonate.below(205).criticalHigh(340),
			ageBand(neonatalDays, 0).below(21),
		}},
	{code: "14629-0", name: "Bilirubin.direct [Moles/volume] in Serum or Plasma", short: "D Bili", specimen: inSerum, kind: kindNumeric,
		unit: "umol/L", decimals: 0, price: 500, turnaround: 120, ranges: []refBand{
			ageAll.below(5),
		}},
	{code: "1751-7", name: "Albumin [Mass/volume] in Serum or Plasma", short: "Alb", specimen: inSerum, kind: kindNumeric,
		unit: "g/L", decimals: 0, price: 500, turnaround: 120, ranges: []refBand{
			ageNeonate.normal(28, 44),
			ageInfant.normal(28, 47),
			ageBand(ageYears(1), 0).normal(35, 50),
		}},
	{code: "2885-2", name: "Protein [Mass/volume] in Serum or Plasma", short: "TP", specimen: inSerum, kind: kindNumeric,
		unit: "g/L", decimals: 0, price: 500, turnaround: 120, ranges: []refBand{
			ageNeonate.normal(46, 70),
			ageInfant.normal(51, 73),
			ageBand(ageYears(1), 0).normal(60, 80),
		}},

	// Chemistry: lipids. Adult limits are the desirable levels of
	// cardiovascular risk guidelines, not population percentiles.
	{code: "14647-2", name: "Cholesterol [Moles/volume] in Serum or Plasma", short: "Chol", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 1, price: 500, turnaround: 240, ranges: []refBand{
			ageMinor.below(4.4),
			ageAdult.below(5.2),
		}},
	{code: "14646-4", name: "Cholesterol in HDL [Moles/volume] in Serum or Plasma", short: "HDL", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 2, price: 700, turnaround: 240, ranges: []refBand{
			ageAll.above(1.0),
			ageAdult.female().above(1.2),
			ageAdult.male().above(1.0),
		}},
	{code: "39469-2", name: "Cholesterol in LDL [Moles/volume] in Serum or Plasma by calculation", short: "LDL", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 1, price: 300, turnaround: 240, ranges: []refBand{
			ageMinor.below(2.8),
			ageAdult.below(3.0),
		}},
	{code: "14927-8", name: "Triglyceride [Moles/volume] in Serum or Plasma", short: "TG", specimen: inSerum, kind: kindNumeric,
		unit: "mmol/L", decimals: 1, price: 500, turnaround: 240, ranges: []refBand{
			ageBand(0, ageYears(10)).below(0.85),
			ageBand(ageYears(10), ageYears(18)).below(1.0),
			ageAdult.below(1.7),
		}},

	// Chemistry: standalone tests.
	{code: "4548-4", name: "Hemoglobin A1c/Hemoglobin.total in Blood", short: "HbA1c", specimen: inBlood, kind: kindNumeric,
		unit: "%", decimals: 1, price: 1500, turnaround: 1440, ranges: []refBand{
			ageAll.normal(4.0, 5.6),
		}},
	{code: "89579-7", name: "Troponin I.cardiac [Mass/volume] in Serum or Plasma by High sensitivity method", short: "hs-TnI", specimen: inPlasma, kind: kindNumeric,
		unit: "ng/L", decimals: 0, price: 2500, turnaround: 60, ranges: []refBand{
			// Sex-specific 99th percentiles of a common assay. For
			// patients of unknown sex its overall 99th percentile, not
			// the male limit: a rule-in marker should not be blunted. The
			// panic limit is the assay's immediate rule-in value.
			ageAll.female().below(16).criticalHigh(64),
			ageAll.male().below(34).criticalHigh(64),
			ageAll.below(26).criticalHigh(64),
		}},
	{code: "1988-5", name: "C reactive protein [Mass/volume] in Serum or Plasma", short: "CRP", specimen: inSerum, kind: kindNumeric,
		unit: "mg/L", decimals: 1, price: 900, turnaround: 120, ranges: []refBand{
			ageAll.below(5.0),
		}},

	// Coagulation.
	{code: "5902-2", name: "Prothrombin time (PT)", short: "PT", specimen: inPlasma, kind: kindNumeric,
		unit: "s", decimals: 1, price: 700, turnaround: 90, ranges: []refBand{
			ageAll.normal(11.0, 13.5),
		}},
	{code: "6301-6", name: "INR in Platelet poor plasma by Coagulation assay", short: "INR", specimen: inPlasma, kind: kindNumeric,
		unit: "{INR}", decimals: 1, price: 300, turnaround: 90, ranges: []refBand{
			ageAll.normal(0.8, 1.2).criticalHigh(5.0),
		}},
	{code: "14979-9", name: "aPTT in Platelet poor plasma by Coagulation assay", short: "aPTT", specimen: inPlasma, kind: kindNumeric,
		unit: "s", decimals: 1, price: 800, turnaround: 90, ranges: []refBand{
			ageAll.normal(25.0, 35.0).criticalHigh(100.0),
		}},

	// Urinalysis by dipstick.
	{code: "5811-5", name: "Specific gravity of Urine by Test strip", short: "U SG", specimen: inUrine, kind: kindNumeric,
		unit: "1", decimals: 3, price: 200, turnaround: 60, ranges: []refBand{
			ageAll.normal(1.005, 1.030),
		}},
	{code: "5803-2", name: "pH of Urine by Test strip", short: "U pH", specimen: inUrine, kind: kindNumeric,
		unit: "[pH]", decimals: 1, price: 200, turnaround: 60, ranges: []refBand{
			ageAll.normal(5.0, 8.0),
		}},
	{code: "20454-5", name: "Protein [Presence] in Urine by Test strip", short: "U Prot", specimen: inUrine, kind: kindCoded,
		codes: dipstickGraded4, normal: dipstickNormal, price: 200, turnaround: 60},
	{code: "25428-4", name: "Glucose [Presence] in Urine by Test strip", short: "U Glu", specimen: inUrine, kind: kindCoded,
		codes: dipstickGraded4, normal: dipstickNormal, price: 200, turnaround: 60},
	{code: "2514-8", name: "Ketones [Presence] in Urine by Test strip", short: "U Ket", specimen: inUrine, kind: kindCoded,
		codes: dipstickGraded, normal: dipstickNormal, price: 200, turnaround: 60},
	{code: "5794-3", name: "Hemoglobin [Presence] in Urine by Test strip", short: "U Bld", specimen: inUrine, kind: kindCoded,
		codes: dipstickGraded, normal: dipstickNormal, price: 200, turnaround: 60},
	{code: "5802-4", name: "Nitrite [Presence] in Urine by Test strip", short: "U Nit", specimen: inUrine, kind: kindCoded,
		codes: dipstickBinary, normal: dipstickNormal, price: 200, turnaround: 60},
	{code: "5799-2", name: "Leukocyte esterase [Presence] in Urine by Test strip", short: "U LE", specimen: inUrine, kind: kindCoded,
		codes: dipstickGraded, normal: dipstickNormal, price: 200, turnaround: 60},
	{code: "5770-3", name: "Bilirubin.total [Presence] in Urine by Test strip", short: "U Bili", specimen: inUrine, kind: kindCoded,
		codes: dipstickNoTrace, normal: dipstickNormal, price: 200, turnaround: 60},

	// Microbiology: findings are reported as text.
	{code: "600-7", name: "Bacteria identified in Blood by Culture", short: "Blood Cx", specimen: inBlood, kind: kindText,
		price: 4500, turnaround: 5 * 24 * 60},
	{code: "664-3", name: "Microscopic observation [Identifier] in Specimen by Gram stain", short: "Gram", specimen: labtest.SpecimenTypeOTHER, kind: kindText,
		price: 1200, turnaround: 240},
}

// labPanels are the starter panels; each costs less than its tests apart.
var labPanels = []catalogPanel{
	{code: "58410-2", name: "CBC panel - Blood by Automated count", price: 2000,
		tests: []string{"718-7", "4544-3", "6690-2", "777-3", "789-8", "787-2", "785-6", "786-4", "788-0"}},
	{code: "24321-2", name: "Basic metabolic 2000 panel - Serum or Plasma", price: 2500,
		tests: []string{"2951-2", "2823-3", "2075-0", "2028-9", "22664-7", "14682-9", "14749-6", "2000-8"}},
	{code: "24323-8", name: "Comprehensive metabolic 2000 panel - Serum or Plasma", price: 4000,
		tests: []string{"2951-2", "2823-3", "2075-0", "2028-9", "22664-7", "14682-9", "14749-6", "2000-8",
			"1742-6", "1920-8", "6768-6", "14631-6", "1751-7", "2885-2"}},
	{code: "24325-3", name: "Hepatic function 2000 panel - Serum or Plasma", price: 3000,
		tests: []string{"1742-6", "1920-8", "6768-6", "14631-6", "14629-0", "1751-7", "2885-2"}},
	{code: "24331-1", name: "Lipid 1996 panel - Serum or Plasma", price: 1800,
		tests: []string{"14647-2", "14646-4", "39469-2", "14927-8"}},
	{code: "24357-6", name: "Urinalysis macro (dipstick) panel - Urine", price: 1000,
		tests: []string{"5811-5", "5803-2", "20454-5", "25428-4", "2514-8", "5794-3", "5802-4", "5799-2", "5770-3"}},
}

// SeedCatalog loads the starter lab catalog into client: tests and panels
// it lacks are added, matched by code, and a NUMERIC test without any
// reference range gets the starter ones. Nothing that exists is changed —
// prices, ranges and panel contents are the lab's to set once seeded — so
// running it again changes nothing and it is safe on every start after
// migration. It runs in one transaction of its own unless client is
// already transactional.
func SeedCatalog(ctx context.Context, client *ent.Client) error {
	tx, err := client.Tx(ctx)
	if errors.Is(err, ent.ErrTxStarted) {
		return seedCatalog(ctx, client)
	}
	if err != nil {
		return fmt.Errorf("seed lab catalog: %w", err)
	}
	if err := seedCatalog(ctx, tx.Client()); err != nil {
		_ = tx.Rollback()
		// Two processes starting at once may both find the catalog
		// missing; the unique codes make the loser's inserts fail, and
		// the winner committed all of it.
		if ent.IsConstraintError(err) {
			return nil
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed lab catalog: %w", err)
	}
	return nil
}

func seedCatalog(ctx context.Context, c *ent.Client) error {
	codes := make([]string, len(labCatalog))
	for i, t := range labCatalog {
		codes[i] = t.code
	}
	existing, err := c.LabTest.Query().
		Where(labtest.CodeIn(codes...)).
		WithReferenceRanges().
		All(ctx)
	if err != nil {
		return fmt.Errorf("read lab catalog: %w", err)
	}
	have := make(map[string]*ent.LabTest, len(labCatalog))
	for _, t := range existing {
		have[t.Code] = t
	}

	var missing []*ent.LabTestCreate
	for _, t := range labCatalog {
		if _, ok := have[t.code]; !ok {
			missing = append(missing, t.create(c))
		}
	}
	if len(missing) > 0 {
		created, err := c.LabTest.CreateBulk(missing...).Save(ctx)
		if err != nil {
			return fmt.Errorf("load lab tests: %w", err)
		}
		for _, t := range created {
			have[t.Code] = t
		}
	}

	// A NUMERIC test without ranges can flag nothing; one with ranges has
	// the lab's (or an earlier seed's), which are left alone.
	var ranges []*ent.LabReferenceRangeCreate
	for _, t := range labCatalog {
		row := have[t.code]
		if row.ResultKind != labtest.ResultKindNUMERIC || len(row.Edges.ReferenceRanges) > 0 {
			continue
		}
		for _, b := range t.ranges {
			ranges = append(ranges, b.create(c, row.ID))
		}
	}
	if len(ranges) > 0 {
		if err := c.LabReferenceRange.CreateBulk(ranges...).Exec(ctx); err != nil {
			return fmt.Errorf("load lab reference ranges: %w", err)
		}
	}

	panelCodes := make([]string, len(labPanels))
	for i, p := range labPanels {
		panelCodes[i] = p.code
	}
	havePanels, err := c.LabPanel.Query().Where(labpanel.CodeIn(panelCodes...)).Select(labpanel.FieldCode).Strings(ctx)
	if err != nil {
		return fmt.Errorf("read lab panels: %w", err)
	}
	seen := make(map[string]bool, len(havePanels))
	for _, code := range havePanels {
		seen[code] = true
	}
	var panels []*ent.LabPanelCreate
	for _, p := range labPanels {
		if seen[p.code] {
			continue
		}
		ids := make([]string, len(p.tests))
		for i, code := range p.tests {
			t, ok := have[code]
			if !ok {
				return fmt.Errorf("lab panel %s: test %s is not in the catalog", p.code, code)
			}
			ids[i] = t.ID
		}
		panels = append(panels, c.LabPanel.Create().
			SetCode(p.code).
			SetName(p.name).
			SetPrice(p.price).
			AddTestIDs(ids...))
	}
	if len(panels) > 0 {
		if err := c.LabPanel.CreateBulk(panels...).Exec(ctx); err != nil {
			return fmt.Errorf("load lab panels: %w", err)
		}
	}
	return nil
}

func (t catalogTest) create(c *ent.Client) *ent.LabTestCreate {
	q := c.LabTest.Create().
		SetCode(t.code).
		SetName(t.name).
		SetShortName(t.short).
		SetSpecimenType(t.specimen).
		SetResultKind(t.kind).
		SetDecimals(t.decimals).
		SetPrice(t.price).
		SetTurnaroundMinutes(t.turnaround)
	if t.unit != "" {
		q.SetUnit(t.unit)
	}
	if len(t.codes) > 0 {
		q.SetResultCodes(t.codes).SetNormalCodes(t.normal)
	}
	return q
}

func (b refBand) create(c *ent.Client, testID string) *ent.LabReferenceRangeCreate {
	q := c.LabReferenceRange.Create().
		SetTestID(testID).
		SetAgeFromDays(b.fromDays).
		SetNillableLow(b.low).
		SetNillableHigh(b.high).
		SetNillableCriticalLow(b.critLow).
		SetNillableCriticalHigh(b.critHigh)
	if b.sex != "" {
		q.SetSex(b.sex)
	}
	if b.toDays > 0 {
		q.SetAgeToDays(b.toDays)
	}
	return q
}
