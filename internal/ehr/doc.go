// Package ehr keeps the core of the electronic health record: encounters,
// problems coded with ICD-10, allergies, vital signs and other
// observations, and medical history.
package ehr
