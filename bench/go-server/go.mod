// The grpc-go reference server of `npm run bench` and its fresh-connection load
// generator, in a module of their own so their versions are pinned here (go.sum)
// and `go build` needs no version lists from the module proxy.
module github.com/grpc-mtls-service/bench-go-server

go 1.23.0

require (
	google.golang.org/grpc v1.74.2
	google.golang.org/protobuf v1.36.6
)

require (
	golang.org/x/net v0.40.0 // indirect
	golang.org/x/sys v0.33.0 // indirect
	golang.org/x/text v0.25.0 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20250528174236-200df99c418a // indirect
)
