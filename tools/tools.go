//go:build tools

// Package tools only records the tool dependencies for go.mod.
package tools

import (
	_ "github.com/bojand/ghz/cmd/ghz"
	_ "github.com/fullstorydev/grpcurl/cmd/grpcurl"
	_ "github.com/grpc-ecosystem/grpc-health-probe"
)
