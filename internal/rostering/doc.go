// Package rostering keeps the hospital's shifts and rosters: the kinds of
// shift HR defines (day, evening, night, on-call; a shift may cross
// midnight), who is rostered on which shift of which department on which
// day, how many people each department needs on a shift, and how the
// roster covers that. It refuses a roster that would put one person on two
// shifts at once, give them less rest between shifts than the hospital's
// minimum, or roster them on approved leave. A doctor's or nurse's
// bookable hours follow their roster: scheduling reads the entries on
// bookable shifts as working periods, beside the weekly availability.
package rostering
