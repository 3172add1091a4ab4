// Package notes keeps clinical notes: drafts their authors sign, and
// amendments that replace a signed note while keeping it.
package notes
