// Package policies embeds the access policy, so that the binary carries the
// policy it was built and tested with. The files stay plain data to read.
package policies

import _ "embed"

//go:embed model.conf
var Model string

//go:embed policy.csv
var Policy string
