// Package referrals shares a patient's care among providers: referrals
// from one provider or department to another, and care-team membership.
package referrals
