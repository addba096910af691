//go:build tools

// The command scripts/cluster/build.sh builds; the import keeps go mod tidy from
// dropping its dependencies.
package tools

import _ "go.etcd.io/etcd/server/v3"
