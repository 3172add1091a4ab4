// Package formulary keeps the hospital's formulary — the drugs and
// consumables it stocks — and the reference tables safer prescribing reads:
// allergen classes (an allergy to "penicillin" covers amoxicillin) and
// drug-drug interactions. All three are seeded with a starter set on every
// start, as the lab catalog is; pharmacists and administrators manage the
// items afterwards.
package formulary
