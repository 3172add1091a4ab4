// Package ledger is the hospital's double-entry general ledger: the chart of
// accounts, journal entries and monthly accounting periods, and the reports
// read from them (trial balance, an account's ledger).
//
// The other billing parts post through Post and the typed helpers
// (ChargeCaptured, PaymentReceived, ...) inside their own transaction, so a
// business event and its entry commit or fail together. Every entry
// balances, has at least two lines, and is posted once per source (type and
// ID): delivering the same event again returns the entry already posted.
//
// Entries are append-only (ProtectJournal refuses updates and deletes);
// a correction is a reversing entry, dated today.
//
// Closed periods: a posting dated in a closed month is refused (CONFLICT)
// unless the caller sets Entry.IntoOpenPeriod, in which case it is dated
// today, in the open period, and carries a note naming the date it was meant
// for. Billing sets it for events that happen regardless of the books (a
// payment received today for an old invoice is dated today anyway; a late
// charge for last month is booked now). Postings take the period's lock
// shared and closing takes it exclusively, so a close waits for the
// postings under way and every posting after it sees the period closed.
//
// Who posts is the signed-in user (or "system"); the policy decides who may
// call the finance mutations, as there is no finance kind of staff.
package ledger
