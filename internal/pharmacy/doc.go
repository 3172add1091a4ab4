// Package pharmacy keeps the hospital's medication stock and dispenses it:
// stock locations, batches with lot and expiry, an append-only ledger of
// every change of quantity, first-expiry-first-out dispensing against
// medication orders with a witness for controlled drugs, returns, recall
// tracing by lot, and the alerts (low stock, expiring batches) and the
// dispensing events billing consumes, all through the outbox.
package pharmacy
