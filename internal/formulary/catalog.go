package formulary

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/hmis-dev/hmis/ent"
	"github.com/hmis-dev/hmis/ent/allergenclass"
	"github.com/hmis-dev/hmis/ent/drug"
	"github.com/hmis-dev/hmis/ent/druginteraction"
)

// The starter formulary: common hospital drugs with their WHO ATC codes
// (2024 index) and ingredients as lower-case INNs, and a few consumables.
// Controlled schedules follow the US federal schedules, the ones most
// formularies print; a hospital elsewhere edits them. Codes are the
// hospital's: a short name, the strength and the form.

type item struct {
	code, generic  string
	kind           drug.Kind
	brands         []string
	form, strength string
	route          drug.Route
	atc            string
	ingredients    []string
	unit           string
	schedule       drug.ControlledSchedule
	reorder        int
}

const (
	oral = drug.RouteORAL
	iv   = drug.RouteIV
	im   = drug.RouteIM
	sc   = drug.RouteSC
	inh  = drug.RouteINHALED
	subl = drug.RouteSUBLINGUAL
)

func medicine(code, generic string, brands []string, form, strength string, route drug.Route, atc string, ingredients []string, unit string, reorder int) item {
	return item{code: code, generic: generic, kind: drug.KindDRUG, brands: brands, form: form, strength: strength, route: route,
		atc: atc, ingredients: ingredients, unit: unit, reorder: reorder}
}

func (i item) controlled(s drug.ControlledSchedule) item { i.schedule = s; return i }

func consumable(code, name, unit string, reorder int) item {
	return item{code: code, generic: name, kind: drug.KindCONSUMABLE, unit: unit, reorder: reorder}
}

func in(ingredients ...string) []string { return ingredients }
func brands(names ...string) []string   { return names }

// items is the starter formulary.
var items = []item{
	// Penicillins and other beta-lactams.
	medicine("AMOX500CAP", "amoxicillin", brands("Amoxil"), "CAPSULE", "500 mg", oral, "J01CA04", in("amoxicillin"), "capsule", 300),
	medicine("AMOX250SUSP", "amoxicillin", brands("Amoxil"), "POWDER FOR ORAL SUSPENSION", "250 mg/5 mL", oral, "J01CA04", in("amoxicillin"), "bottle", 20),
	medicine("COAMOX625TAB", "amoxicillin + clavulanic acid", brands("Augmentin"), "TABLET", "500 mg/125 mg", oral, "J01CR02",
		in("amoxicillin", "clavulanic acid"), "tablet", 300),
	medicine("FLUCLOX500CAP", "flucloxacillin", brands("Floxapen"), "CAPSULE", "500 mg", oral, "J01CF05", in("flucloxacillin"), "capsule", 200),
	medicine("PENV250TAB", "phenoxymethylpenicillin", nil, "TABLET", "250 mg", oral, "J01CE02", in("phenoxymethylpenicillin"), "tablet", 200),
	medicine("BENZPEN600INJ", "benzylpenicillin", nil, "POWDER FOR INJECTION", "600 mg", iv, "J01CE01", in("benzylpenicillin"), "vial", 50),
	medicine("PIPTAZ4.5INJ", "piperacillin + tazobactam", brands("Tazocin", "Zosyn"), "POWDER FOR INJECTION", "4 g/500 mg", iv, "J01CR05",
		in("piperacillin", "tazobactam"), "vial", 40),
	medicine("CEFALEX500CAP", "cefalexin", brands("Keflex"), "CAPSULE", "500 mg", oral, "J01DB01", in("cefalexin"), "capsule", 200),
	medicine("CEFUROX250TAB", "cefuroxime", brands("Zinnat"), "TABLET", "250 mg", oral, "J01DC02", in("cefuroxime"), "tablet", 100),
	medicine("CEFTRI1GINJ", "ceftriaxone", brands("Rocephin"), "POWDER FOR INJECTION", "1 g", iv, "J01DD04", in("ceftriaxone"), "vial", 100),
	medicine("MEROP1GINJ", "meropenem", brands("Meronem", "Merrem"), "POWDER FOR INJECTION", "1 g", iv, "J01DH02", in("meropenem"), "vial", 30),
	// Other antibacterials.
	medicine("AZITH500TAB", "azithromycin", brands("Zithromax"), "TABLET", "500 mg", oral, "J01FA10", in("azithromycin"), "tablet", 100),
	medicine("CLARI500TAB", "clarithromycin", brands("Klacid", "Biaxin"), "TABLET", "500 mg", oral, "J01FA09", in("clarithromycin"), "tablet", 100),
	medicine("DOXY100CAP", "doxycycline", brands("Vibramycin"), "CAPSULE", "100 mg", oral, "J01AA02", in("doxycycline"), "capsule", 100),
	medicine("CIPRO500TAB", "ciprofloxacin", brands("Ciproxin", "Cipro"), "TABLET", "500 mg", oral, "J01MA02", in("ciprofloxacin"), "tablet", 100),
	medicine("COTRIM480TAB", "sulfamethoxazole + trimethoprim", brands("Bactrim", "Septrin"), "TABLET", "400 mg/80 mg", oral, "J01EE01",
		in("sulfamethoxazole", "trimethoprim"), "tablet", 200),
	medicine("TRIM200TAB", "trimethoprim", nil, "TABLET", "200 mg", oral, "J01EA01", in("trimethoprim"), "tablet", 100),
	medicine("METRO400TAB", "metronidazole", brands("Flagyl"), "TABLET", "400 mg", oral, "P01AB01", in("metronidazole"), "tablet", 200),
	medicine("GENT80INJ", "gentamicin", nil, "INJECTION", "40 mg/mL, 2 mL", iv, "J01GB03", in("gentamicin"), "ampoule", 50),
	// Analgesics, NSAIDs and opioids.
	medicine("PARA500TAB", "paracetamol", brands("Panadol"), "TABLET", "500 mg", oral, "N02BE01", in("paracetamol"), "tablet", 1000),
	medicine("IBU400TAB", "ibuprofen", brands("Brufen", "Nurofen", "Advil"), "TABLET", "400 mg", oral, "M01AE01", in("ibuprofen"), "tablet", 500),
	medicine("DICLO50TAB", "diclofenac", brands("Voltaren"), "GASTRO-RESISTANT TABLET", "50 mg", oral, "M01AB05", in("diclofenac"), "tablet", 300),
	medicine("ASA75TAB", "acetylsalicylic acid", brands("Aspirin", "Disprin"), "DISPERSIBLE TABLET", "75 mg", oral, "B01AC06",
		in("acetylsalicylic acid"), "tablet", 500),
	medicine("MORPH10INJ", "morphine", nil, "INJECTION", "10 mg/mL", iv, "N02AA01", in("morphine"), "ampoule", 50).controlled(drug.ControlledScheduleII),
	medicine("MORPH10TAB", "morphine", brands("Sevredol"), "TABLET", "10 mg", oral, "N02AA01", in("morphine"), "tablet", 100).controlled(drug.ControlledScheduleII),
	medicine("PETH50INJ", "pethidine", brands("Demerol"), "INJECTION", "50 mg/mL", im, "N02AB02", in("pethidine"), "ampoule", 30).controlled(drug.ControlledScheduleII),
	// Fentanyl injection is indexed with the anaesthetics (N01AH); the
	// opioid allergen class names it as an ingredient for that reason.
	medicine("FENT50INJ", "fentanyl", nil, "INJECTION", "50 micrograms/mL, 2 mL", iv, "N01AH01", in("fentanyl"), "ampoule", 30).controlled(drug.ControlledScheduleII),
	medicine("TRAM50CAP", "tramadol", brands("Tramal", "Ultram"), "CAPSULE", "50 mg", oral, "N02AX02", in("tramadol"), "capsule", 200).controlled(drug.ControlledScheduleIV),
	// Sedatives.
	medicine("DIAZ5TAB", "diazepam", brands("Valium"), "TABLET", "5 mg", oral, "N05BA01", in("diazepam"), "tablet", 100).controlled(drug.ControlledScheduleIV),
	medicine("DIAZ10INJ", "diazepam", brands("Valium"), "INJECTION", "5 mg/mL, 2 mL", iv, "N05BA01", in("diazepam"), "ampoule", 30).controlled(drug.ControlledScheduleIV),
	medicine("MIDAZ5INJ", "midazolam", brands("Hypnovel", "Dormicum"), "INJECTION", "5 mg/mL", iv, "N05CD08", in("midazolam"), "ampoule", 30).controlled(drug.ControlledScheduleIV),
	// Cardiovascular and blood.
	medicine("WARF5TAB", "warfarin", brands("Coumadin", "Marevan"), "TABLET", "5 mg", oral, "B01AA03", in("warfarin"), "tablet", 200),
	medicine("HEP5000INJ", "heparin", nil, "INJECTION", "5000 IU/mL", sc, "B01AB01", in("heparin"), "vial", 50),
	medicine("ENOX40INJ", "enoxaparin", brands("Clexane", "Lovenox"), "PREFILLED SYRINGE", "40 mg/0.4 mL", sc, "B01AB05", in("enoxaparin"), "syringe", 100),
	medicine("CLOP75TAB", "clopidogrel", brands("Plavix"), "TABLET", "75 mg", oral, "B01AC04", in("clopidogrel"), "tablet", 200),
	medicine("SIMVA20TAB", "simvastatin", brands("Zocor"), "TABLET", "20 mg", oral, "C10AA01", in("simvastatin"), "tablet", 300),
	medicine("ATORVA20TAB", "atorvastatin", brands("Lipitor"), "TABLET", "20 mg", oral, "C10AA05", in("atorvastatin"), "tablet", 300),
	medicine("AMLO5TAB", "amlodipine", brands("Norvasc", "Istin"), "TABLET", "5 mg", oral, "C08CA01", in("amlodipine"), "tablet", 300),
	medicine("ENAL10TAB", "enalapril", brands("Renitec", "Vasotec"), "TABLET", "10 mg", oral, "C09AA02", in("enalapril"), "tablet", 300),
	medicine("LISIN10TAB", "lisinopril", brands("Zestril"), "TABLET", "10 mg", oral, "C09AA03", in("lisinopril"), "tablet", 300),
	medicine("SPIRO25TAB", "spironolactone", brands("Aldactone"), "TABLET", "25 mg", oral, "C03DA01", in("spironolactone"), "tablet", 200),
	medicine("FUROS40TAB", "furosemide", brands("Lasix"), "TABLET", "40 mg", oral, "C03CA01", in("furosemide"), "tablet", 300),
	medicine("FUROS20INJ", "furosemide", brands("Lasix"), "INJECTION", "10 mg/mL, 2 mL", iv, "C03CA01", in("furosemide"), "ampoule", 50),
	medicine("GTN400SL", "glyceryl trinitrate", brands("Nitrolingual"), "SUBLINGUAL SPRAY", "400 micrograms/dose", subl, "C01DA02",
		in("glyceryl trinitrate"), "spray", 10),
	medicine("ISMN20TAB", "isosorbide mononitrate", brands("Ismo"), "TABLET", "20 mg", oral, "C01DA14",
		in("isosorbide mononitrate"), "tablet", 200),
	medicine("SILD50TAB", "sildenafil", brands("Viagra", "Revatio"), "TABLET", "50 mg", oral, "G04BE03", in("sildenafil"), "tablet", 20),
	medicine("ADR1INJ", "epinephrine", nil, "INJECTION", "1 mg/mL", im, "C01CA24", in("epinephrine"), "ampoule", 30),
	// Endocrine, gut, lungs, mind, immunity.
	medicine("METF500TAB", "metformin", brands("Glucophage"), "TABLET", "500 mg", oral, "A10BA02", in("metformin"), "tablet", 500),
	medicine("INSHUM100INJ", "insulin human", brands("Actrapid", "Humulin R"), "INJECTION", "100 IU/mL, 10 mL", sc, "A10AB01",
		in("insulin human"), "vial", 30),
	medicine("OMEP20CAP", "omeprazole", brands("Losec", "Prilosec"), "GASTRO-RESISTANT CAPSULE", "20 mg", oral, "A02BC01", in("omeprazole"), "capsule", 300),
	medicine("PANTO40TAB", "pantoprazole", brands("Protonix"), "GASTRO-RESISTANT TABLET", "40 mg", oral, "A02BC02", in("pantoprazole"), "tablet", 200),
	medicine("ONDAN4INJ", "ondansetron", brands("Zofran"), "INJECTION", "2 mg/mL, 2 mL", iv, "A04AA01", in("ondansetron"), "ampoule", 50),
	medicine("SALB100INH", "salbutamol", brands("Ventolin"), "PRESSURISED INHALATION", "100 micrograms/dose", inh, "R03AC02",
		in("salbutamol"), "inhaler", 30),
	medicine("PRED5TAB", "prednisolone", nil, "TABLET", "5 mg", oral, "H02AB06", in("prednisolone"), "tablet", 300),
	medicine("SERT50TAB", "sertraline", brands("Zoloft", "Lustral"), "TABLET", "50 mg", oral, "N06AB06", in("sertraline"), "tablet", 100),
	medicine("FLUOX20CAP", "fluoxetine", brands("Prozac"), "CAPSULE", "20 mg", oral, "N06AB03", in("fluoxetine"), "capsule", 100),
	medicine("MTX2.5TAB", "methotrexate", nil, "TABLET", "2.5 mg", oral, "L04AX03", in("methotrexate"), "tablet", 100),
	medicine("NACL09INF500", "sodium chloride 0.9 %", nil, "SOLUTION FOR INFUSION", "0.9 %, 500 mL", iv, "B05BB01", in("sodium chloride"), "bag", 200),
	// Consumables share the stock machinery but are never prescribed.
	consumable("SYR5ML", "syringe 5 mL, luer lock", "piece", 500),
	consumable("SYR10ML", "syringe 10 mL, luer lock", "piece", 300),
	consumable("NEEDLE21G", "hypodermic needle 21 G", "piece", 500),
	consumable("IVCAN20G", "IV cannula 20 G", "piece", 200),
	consumable("IVCAN22G", "IV cannula 22 G", "piece", 100),
	consumable("GAUZE10", "gauze swabs 10 cm x 10 cm, sterile, pack of 5", "pack", 200),
	consumable("GLOVEEXM", "examination gloves, nitrile, size M", "box", 50),
}

// class is one allergen class of the starter table.
type class struct {
	code, name  string
	terms       []string
	atc         []string
	ingredients []string
	crossWith   []string
	note        string
}

// classes are the allergen classes an allergy is matched against: what a
// prescriber records ("Penicillin", "sulfa", "NSAIDs"), the ATC groups it
// covers, and its members by name for drugs outside those groups and for
// free-text orders.
var classes = []class{
	{code: "PENICILLINS", name: "penicillins", terms: in("penicillin", "penicillins"), atc: in("J01C"),
		ingredients: in("amoxicillin", "ampicillin", "benzylpenicillin", "phenoxymethylpenicillin", "flucloxacillin",
			"cloxacillin", "piperacillin", "temocillin", "pivmecillinam"),
		crossWith: in("CEPHALOSPORINS", "CARBAPENEMS"),
		note: "Cross-reactivity with cephalosporins is about 1-2 % (higher with first-generation ones sharing a side chain, " +
			"such as cefalexin with amoxicillin) and below 1 % with carbapenems; avoid all beta-lactams after " +
			"anaphylaxis to a penicillin."},
	{code: "CEPHALOSPORINS", name: "cephalosporins", terms: in("cephalosporin", "cephalosporins"),
		atc:         in("J01DB", "J01DC", "J01DD", "J01DE"),
		ingredients: in("cefalexin", "cefazolin", "cefuroxime", "cefaclor", "ceftriaxone", "cefotaxime", "ceftazidime", "cefixime", "cefepime"),
		crossWith:   in("PENICILLINS"),
		note: "Cross-reactivity with penicillins is about 1-2 % and mostly with first-generation cephalosporins; " +
			"third-generation ones (ceftriaxone) are usually tolerated unless the reaction was anaphylaxis."},
	{code: "CARBAPENEMS", name: "carbapenems", terms: in("carbapenem", "carbapenems"), atc: in("J01DH"),
		ingredients: in("meropenem", "imipenem", "ertapenem"), crossWith: in("PENICILLINS"),
		note: "Cross-reactivity with penicillins is below 1 %."},
	{code: "SULFONAMIDES", name: "sulfonamide antibacterials", terms: in("sulfa", "sulpha", "sulfonamide", "sulfonamides", "sulphonamide", "sulphonamides"),
		// J01E less J01EA: trimethoprim shares the group but is no sulfonamide.
		atc: in("J01EB", "J01EC", "J01ED", "J01EE"), ingredients: in("sulfamethoxazole", "sulfadiazine", "sulfadoxine"),
		note: "Non-antibacterial sulfonamides (furosemide, thiazides, sulfasalazine) rarely cross-react and are not matched."},
	{code: "NSAIDS", name: "NSAIDs and aspirin", terms: in("nsaid", "nsaids", "non steroidal anti inflammatory"),
		atc:         in("M01A"),
		ingredients: in("acetylsalicylic acid", "ibuprofen", "diclofenac", "naproxen", "ketorolac", "indometacin", "celecoxib"),
		note: "In aspirin-exacerbated respiratory disease every COX-1 inhibitor can provoke a reaction; " +
			"paracetamol is usually tolerated."},
	{code: "OPIOIDS", name: "opioids", terms: in("opioid", "opioids", "opiate", "opiates"), atc: in("N02A"),
		ingredients: in("morphine", "codeine", "pethidine", "fentanyl", "tramadol", "oxycodone", "hydromorphone", "methadone"),
		note: "Many recorded opioid allergies are pseudo-allergy (histamine release: itch, flushing); " +
			"a synthetic opioid (fentanyl) is less likely to cause it than morphine or codeine."},
	{code: "MACROLIDES", name: "macrolides", terms: in("macrolide", "macrolides"), atc: in("J01FA"),
		ingredients: in("erythromycin", "clarithromycin", "azithromycin")},
	{code: "FLUOROQUINOLONES", name: "fluoroquinolones", terms: in("fluoroquinolone", "fluoroquinolones", "quinolone", "quinolones"),
		atc: in("J01MA"), ingredients: in("ciprofloxacin", "levofloxacin", "moxifloxacin", "ofloxacin")},
	{code: "TETRACYCLINES", name: "tetracyclines", terms: in("tetracycline", "tetracyclines"), atc: in("J01AA"),
		ingredients: in("doxycycline", "tetracycline", "minocycline")},
	{code: "AMINOGLYCOSIDES", name: "aminoglycosides", terms: in("aminoglycoside", "aminoglycosides"), atc: in("J01GB"),
		ingredients: in("gentamicin", "amikacin", "tobramycin")},
	{code: "ACE_INHIBITORS", name: "ACE inhibitors", terms: in("ace inhibitor", "ace inhibitors"), atc: in("C09A", "C09B"),
		ingredients: in("enalapril", "lisinopril", "ramipril", "captopril", "perindopril"),
		note:        "Angioedema on one ACE inhibitor recurs with the others."},
	{code: "BENZODIAZEPINES", name: "benzodiazepines", terms: in("benzodiazepine", "benzodiazepines"), atc: in("N05BA", "N05CD"),
		ingredients: in("diazepam", "midazolam", "lorazepam", "clonazepam")},
}

// interaction is one row of the starter interaction table.
type interaction struct {
	code               string
	aLabel             string
	aIngredients, aATC []string
	bLabel             string
	bIngredients, bATC []string
	severity           druginteraction.Severity
	effect, advice     string
}

// interactions is the starter interaction table: pairs common on a ward
// that are serious enough to stop a prescription, from the BNF and
// Stockley's interaction monographs. It is deliberately small; a hospital
// that licenses a full interaction database loads it into this table.
var interactions = []interaction{
	{code: "WARFARIN-NSAID", aLabel: "warfarin", aIngredients: in("warfarin"),
		bLabel: "NSAIDs and aspirin", bIngredients: in("acetylsalicylic acid"), bATC: in("M01A"),
		severity: druginteraction.SeverityMAJOR,
		effect:   "Higher bleeding risk: platelet inhibition and gastric mucosal injury on top of anticoagulation.",
		advice: "Avoid; use paracetamol for pain. If aspirin is indicated (after a stent), add a proton pump inhibitor " +
			"and monitor the INR and for bleeding."},
	{code: "WARFARIN-METRONIDAZOLE", aLabel: "warfarin", aIngredients: in("warfarin"),
		bLabel: "metronidazole", bIngredients: in("metronidazole", "tinidazole"),
		severity: druginteraction.SeverityMAJOR,
		effect:   "Metronidazole inhibits the metabolism of warfarin (CYP2C9); the INR can rise sharply.",
		advice:   "Choose another antibiotic, or reduce the warfarin dose (often by a third) and check the INR within 3-5 days."},
	{code: "WARFARIN-COTRIMOXAZOLE", aLabel: "warfarin", aIngredients: in("warfarin"),
		bLabel: "sulfamethoxazole", bIngredients: in("sulfamethoxazole"),
		severity: druginteraction.SeverityMAJOR,
		effect:   "Sulfamethoxazole inhibits CYP2C9 and displaces warfarin; the INR rises and bleeding follows.",
		advice:   "Avoid; if unavoidable, check the INR within 3 days and adjust."},
	{code: "SIMVASTATIN-MACROLIDE", aLabel: "simvastatin", aIngredients: in("simvastatin"),
		bLabel: "clarithromycin, erythromycin", bIngredients: in("clarithromycin", "erythromycin"),
		severity: druginteraction.SeverityCONTRAINDICATED,
		effect:   "Strong CYP3A4 inhibition raises simvastatin levels many-fold: myopathy and rhabdomyolysis.",
		advice:   "Withhold simvastatin for the course and a few days after, or choose azithromycin."},
	{code: "SIMVASTATIN-AMLODIPINE", aLabel: "simvastatin", aIngredients: in("simvastatin"),
		bLabel: "amlodipine", bIngredients: in("amlodipine"),
		severity: druginteraction.SeverityMODERATE,
		effect:   "Amlodipine raises simvastatin exposure and with it the risk of myopathy.",
		advice:   "Do not exceed simvastatin 20 mg daily, or use atorvastatin."},
	{code: "PDE5-NITRATE", aLabel: "sildenafil and other PDE5 inhibitors", aIngredients: in("sildenafil", "tadalafil", "vardenafil"), aATC: in("G04BE"),
		bLabel: "nitrates", bIngredients: in("glyceryl trinitrate", "isosorbide mononitrate", "isosorbide dinitrate"), bATC: in("C01DA"),
		severity: druginteraction.SeverityCONTRAINDICATED,
		effect:   "Additive vasodilatation: profound, possibly fatal hypotension.",
		advice:   "Do not prescribe together; no nitrate within 24 hours of sildenafil (48 hours of tadalafil)."},
	{code: "METHOTREXATE-TRIMETHOPRIM", aLabel: "methotrexate", aIngredients: in("methotrexate"),
		bLabel: "trimethoprim, co-trimoxazole", bIngredients: in("trimethoprim"),
		severity: druginteraction.SeverityCONTRAINDICATED,
		effect:   "Additive antifolate effect and less renal clearance of methotrexate: bone-marrow suppression, pancytopenia.",
		advice:   "Choose another antibiotic; if given, check full blood count within a week."},
	{code: "ACEI-SPIRONOLACTONE", aLabel: "ACE inhibitors", aATC: in("C09A", "C09B"),
		bLabel: "spironolactone, eplerenone", bIngredients: in("spironolactone", "eplerenone"),
		severity: druginteraction.SeverityMAJOR,
		effect:   "Both retain potassium: hyperkalaemia, especially with renal impairment.",
		advice: "Check potassium and creatinine before, within a week and then regularly; do not start if potassium is " +
			"above 5.0 mmol/L or eGFR below 30."},
	{code: "SSRI-TRAMADOL", aLabel: "SSRIs", aATC: in("N06AB"),
		bLabel: "tramadol", bIngredients: in("tramadol"),
		severity: druginteraction.SeverityMAJOR,
		effect:   "Serotonin syndrome, and a lower seizure threshold; fluoxetine and paroxetine also block tramadol's activation.",
		advice:   "Prefer another analgesic; if used, the lowest dose, and watch for agitation, tremor, clonus and fever."},
	{code: "OPIOID-BENZODIAZEPINE", aLabel: "opioids", aIngredients: in("fentanyl"), aATC: in("N02A"),
		bLabel: "benzodiazepines", bATC: in("N05BA", "N05CD"),
		severity: druginteraction.SeverityMAJOR,
		effect:   "Additive central nervous system depression: sedation, respiratory depression, death.",
		advice:   "Only when alternatives are inadequate: the lowest doses, monitor sedation and oxygen saturation, naloxone at hand."},
	{code: "CLOPIDOGREL-OMEPRAZOLE", aLabel: "clopidogrel", aIngredients: in("clopidogrel"),
		bLabel: "omeprazole, esomeprazole", bIngredients: in("omeprazole", "esomeprazole"),
		severity: druginteraction.SeverityMODERATE,
		effect:   "CYP2C19 inhibition lowers the active metabolite of clopidogrel and its antiplatelet effect.",
		advice:   "Use pantoprazole or lansoprazole instead."},
	{code: "AMINOGLYCOSIDE-LOOP", aLabel: "aminoglycosides", aATC: in("J01GB"),
		bLabel: "loop diuretics", bIngredients: in("furosemide", "bumetanide"), bATC: in("C03CA"),
		severity: druginteraction.SeverityMODERATE,
		effect:   "Additive ototoxicity and nephrotoxicity.",
		advice:   "Avoid high doses together; monitor gentamicin levels, renal function and hearing."},
}

// Seed loads the starter formulary, allergen classes and interaction table
// into client: rows it lacks are added, matched by code, and nothing that
// exists is changed — they are the pharmacy's to edit once seeded — so it
// is safe on every start after migration. It runs in one transaction of
// its own unless client is already transactional.
func Seed(ctx context.Context, client *ent.Client) error {
	tx, err := client.Tx(ctx)
	if errors.Is(err, ent.ErrTxStarted) {
		return seed(ctx, client)
	}
	if err != nil {
		return fmt.Errorf("seed formulary: %w", err)
	}
	if err := seed(ctx, tx.Client()); err != nil {
		_ = tx.Rollback()
		// Two processes starting at once may both find rows missing; the
		// unique codes make the loser's inserts fail, and the winner
		// committed all of them.
		if ent.IsConstraintError(err) {
			return nil
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("seed formulary: %w", err)
	}
	return nil
}

func seed(ctx context.Context, c *ent.Client) error {
	codes := make([]string, len(items))
	for i, it := range items {
		codes[i] = it.code
	}
	have, err := c.Drug.Query().Where(drug.CodeIn(codes...)).Select(drug.FieldCode).Strings(ctx)
	if err != nil {
		return fmt.Errorf("read formulary: %w", err)
	}
	var drugs []*ent.DrugCreate
	for _, it := range items {
		if slices.Contains(have, it.code) {
			continue
		}
		d := c.Drug.Create().SetCode(it.code).SetKind(it.kind).SetGenericName(it.generic).SetUnitOfIssue(it.unit).
			SetReorderLevel(it.reorder)
		if len(it.brands) > 0 {
			d.SetBrandNames(it.brands)
		}
		if len(it.ingredients) > 0 {
			d.SetIngredients(it.ingredients)
		}
		if it.form != "" {
			d.SetForm(it.form)
		}
		if it.strength != "" {
			d.SetStrength(it.strength)
		}
		if it.route != "" {
			d.SetRoute(it.route)
		}
		if it.atc != "" {
			d.SetAtcCode(it.atc)
		}
		if it.schedule != "" {
			d.SetControlledSchedule(it.schedule)
		}
		drugs = append(drugs, d)
	}
	if len(drugs) > 0 {
		if err := c.Drug.CreateBulk(drugs...).Exec(ctx); err != nil {
			return fmt.Errorf("load formulary: %w", err)
		}
	}

	codes = codes[:0]
	for _, cl := range classes {
		codes = append(codes, cl.code)
	}
	have, err = c.AllergenClass.Query().Where(allergenclass.CodeIn(codes...)).Select(allergenclass.FieldCode).Strings(ctx)
	if err != nil {
		return fmt.Errorf("read allergen classes: %w", err)
	}
	var classRows []*ent.AllergenClassCreate
	for _, cl := range classes {
		if slices.Contains(have, cl.code) {
			continue
		}
		row := c.AllergenClass.Create().SetCode(cl.code).SetName(cl.name).SetTerms(cl.terms).
			SetAtcPrefixes(cl.atc).SetIngredients(cl.ingredients).SetCrossReactiveClasses(cl.crossWith)
		if cl.note != "" {
			row.SetNote(cl.note)
		}
		classRows = append(classRows, row)
	}
	if len(classRows) > 0 {
		if err := c.AllergenClass.CreateBulk(classRows...).Exec(ctx); err != nil {
			return fmt.Errorf("load allergen classes: %w", err)
		}
	}

	codes = codes[:0]
	for _, ix := range interactions {
		codes = append(codes, ix.code)
	}
	have, err = c.DrugInteraction.Query().Where(druginteraction.CodeIn(codes...)).Select(druginteraction.FieldCode).Strings(ctx)
	if err != nil {
		return fmt.Errorf("read interactions: %w", err)
	}
	var rows []*ent.DrugInteractionCreate
	for _, ix := range interactions {
		if slices.Contains(have, ix.code) {
			continue
		}
		rows = append(rows, c.DrugInteraction.Create().SetCode(ix.code).
			SetALabel(ix.aLabel).SetAIngredients(ix.aIngredients).SetAAtcPrefixes(ix.aATC).
			SetBLabel(ix.bLabel).SetBIngredients(ix.bIngredients).SetBAtcPrefixes(ix.bATC).
			SetSeverity(ix.severity).SetEffect(ix.effect).SetAdvice(ix.advice))
	}
	if len(rows) > 0 {
		if err := c.DrugInteraction.CreateBulk(rows...).Exec(ctx); err != nil {
			return fmt.Errorf("load interactions: %w", err)
		}
	}
	return nil
}
