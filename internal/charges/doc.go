// Package charges is billing's first part: the price list (tariff) and the
// capture of charges from what the other modules record.
//
// The price list is append-only: a price change is a new Tariff row with a
// later effective_from, and a charge keeps the row that priced it.
//
// Capture is event-driven and exactly-once. A Consumer subscribes to the
// broker topics of the modules that do billable things (encounters,
// lab.results, pharmacy.dispensing, beds), from the cursor it saved in the
// database; each event is applied in one transaction that writes its charge
// and advances the cursor. A charge has a unique key on (source type,
// source ID, day), so an event delivered again — after a restart, or to a
// second process — finds its charge and adds nothing. A server stopping
// between an event's commit and its charge loses nothing: the event is in
// the outbox and the broker, and the consumer resumes after its cursor.
// The guarantee holds as long as billing is not further behind a topic than
// the broker retains (HMIS_EVENT_RETENTION events): beyond that the broker
// answers ErrCursorExpired, and the consumer logs the loss and goes on from
// what is retained.
//
// Bed-days: a stay is charged one bed-day for each calendar day (in the
// hospital's time zone) from the day of admission up to, but not including,
// the day of discharge — a midnight census — and at least one day, so a stay
// that ends the day it began is charged one. The ward of a day is the ward
// of the bed the patient was in at the end of it (for the last day, the last
// bed). SweepBedDays charges the days of the stays still running up to
// yesterday (and the day of admission); the discharge event catches the
// stay up to its last day.
package charges
