// The ceiling of `npm run bench`: echo.v1.EchoService's Echo and ServerStream on
// grpc-go, with the same mutual TLS as our server and nothing else (no logging,
// no authorization, no health). On one pinned core it shows what this machine
// can do, so the Node servers' figures read against an upper bound.
//
//	GRPC_ADDRESS=127.0.0.1:0 TLS_CERT_FILE=… TLS_KEY_FILE=… TLS_CA_FILE=… ./go-server
//
// It prints {"msg":"serving","address":"HOST:PORT"} on standard output once it
// listens, like our server, and stops on SIGTERM or SIGINT.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/grpc-mtls-service/bench-go-server/echopb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
)

// Exit codes, numbered as our server's (src/exit-codes.ts).
const (
	exitUsage = 2 // a setting is missing
	exitFile  = 3 // a file cannot be read
	exitTLS   = 4 // the TLS material is unusable
	exitBind  = 5 // the address cannot be bound
)

// ServerStream's bounds, the same as our server's (src/echo-service.ts STREAM_LIMITS).
const (
	maxCount      = 1000
	maxIntervalMs = 10_000
)

type echoServer struct {
	echopb.UnimplementedEchoServiceServer
	serverID string
}

func (s *echoServer) Echo(_ context.Context, req *echopb.EchoRequest) (*echopb.EchoResponse, error) {
	return &echopb.EchoResponse{Message: req.GetMessage(), ServerId: s.serverID}, nil
}

func (s *echoServer) ServerStream(req *echopb.ServerStreamRequest, stream grpc.ServerStreamingServer[echopb.EchoResponse]) error {
	count, interval := req.GetCount(), req.GetIntervalMs()
	if count < 1 || count > maxCount || interval > maxIntervalMs {
		return status.Errorf(codes.InvalidArgument,
			"count must be 1 to %d (got %d) and interval_ms 0 to %d (got %d)", maxCount, count, maxIntervalMs, interval)
	}
	for i := uint32(0); i < count; i++ {
		if err := stream.Send(&echopb.EchoResponse{Message: req.GetMessage(), ServerId: s.serverID, Sequence: i}); err != nil {
			return err
		}
		if interval > 0 && i+1 < count {
			select {
			case <-stream.Context().Done():
				return status.FromContextError(stream.Context().Err()).Err()
			case <-time.After(time.Duration(interval) * time.Millisecond):
			}
		}
	}
	return nil
}

func fail(code int, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "go-server: "+format+"\n", args...)
	os.Exit(code)
}

func env(name string) string {
	v := os.Getenv(name)
	if v == "" {
		fail(exitUsage, "%s must be set", name)
	}
	return v
}

func serverTLS() *tls.Config {
	certFile, keyFile, caFile := env("TLS_CERT_FILE"), env("TLS_KEY_FILE"), env("TLS_CA_FILE")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fail(exitTLS, "TLS_KEY_FILE (%s) and TLS_CERT_FILE (%s): %v", keyFile, certFile, err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		fail(exitFile, "TLS_CA_FILE (%s) cannot be read: %v", caFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fail(exitTLS, "TLS_CA_FILE (%s) holds no PEM certificate", caFile)
	}
	return &tls.Config{
		Certificates: []tls.Certificate{pair},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		// The same floor as our server (src/tls-credentials.ts).
		MinVersion: tls.VersionTLS12,
	}
}

func main() {
	address := os.Getenv("GRPC_ADDRESS")
	if address == "" {
		address = "127.0.0.1:0"
	}
	serverID := os.Getenv("SERVER_ID")
	if serverID == "" {
		serverID = "grpc-go"
	}
	server := grpc.NewServer(grpc.Creds(credentials.NewTLS(serverTLS())))
	echopb.RegisterEchoServiceServer(server, &echoServer{serverID: serverID})

	listener, err := net.Listen("tcp", address)
	if err != nil {
		fail(exitBind, "cannot listen on %s: %v", address, err)
	}
	line, _ := json.Marshal(map[string]string{"msg": "serving", "address": listener.Addr().String()})
	fmt.Println(string(line))

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		server.Stop()
	}()
	if err := server.Serve(listener); err != nil {
		fail(1, "serve: %v", err)
	}
}
