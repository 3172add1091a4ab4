// Package careplans keeps care plans with their goals and activities.
package careplans
