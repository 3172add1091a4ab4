// Package prescribing writes, revises and stops medication orders. A drug
// is chosen from the formulary or typed as free text (flagged for the
// pharmacist), and is checked before it is prescribed against the
// patient's active allergies — by name, ingredient, brand, allergen class
// and cross-reactive class — and against the patient's other active orders
// through the interaction table; either refuses the order unless the
// prescriber gives a reason to override, which the order keeps.
package prescribing
