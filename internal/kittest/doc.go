// Package kittest tests what the domain services share through the kit
// (internal/store, internal/input) across all of them at once: that every
// writer of patient data takes the lock merging takes. It holds tests only.
package kittest
