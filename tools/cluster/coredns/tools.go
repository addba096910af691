//go:build tools

// The command scripts/cluster/build.sh builds; the import keeps go mod tidy from
// dropping its dependencies.
package tools

import _ "github.com/coredns/coredns"
