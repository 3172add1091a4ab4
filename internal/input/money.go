package input

import "fmt"

// FormatMoney renders minor units as the API writes money, a decimal with
// two places, so that error messages quote amounts as the client sent them.
func FormatMoney(minor int64) string {
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign, u = "-", uint64(-minor)
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}
