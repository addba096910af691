//go:build tools

// Pins promtool for `go install` from this module (see go.mod).
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
