// Package prescribing writes, revises and stops medication orders, and
// warns about documented allergies before a drug is prescribed.
package prescribing
