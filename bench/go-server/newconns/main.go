// The handshake load of `npm run bench`: every call on a fresh connection (new
// TCP connection, full TLS handshake with the client certificate, HTTP/2 set-up,
// one unary Echo, close), from a few workers, until a time or count limit.
// ghz cannot do this: it keeps its connections open for the whole run.
//
//	newconns -target 127.0.0.1:PORT -cacert ca.crt -cert client.crt -key client.key -duration 5s
//
// Without -cacert it dials in plaintext (the no-TLS baseline). It prints one JSON
// object: calls, errors, seconds, perSecond, p50Ms, p99Ms and the first error.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/grpc-mtls-service/bench-go-server/echopb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

type result struct {
	Calls      int     `json:"calls"`
	Errors     int     `json:"errors"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"perSecond"`
	P50Ms      float64 `json:"p50Ms"`
	P99Ms      float64 `json:"p99Ms"`
	FirstError string  `json:"firstError,omitempty"`
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "newconns: "+format+"\n", args...)
	os.Exit(2)
}

func clientCredentials(caFile, certFile, keyFile string) credentials.TransportCredentials {
	if caFile == "" {
		return insecure.NewCredentials()
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		fail("-cacert %s cannot be read: %v", caFile, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		fail("-cacert %s holds no PEM certificate", caFile)
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		fail("-cert %s / -key %s: %v", certFile, keyFile, err)
	}
	return credentials.NewTLS(&tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{pair},
		// No ClientSessionCache: every handshake is a full one, never a resumption.
		// X25519 only: Go also offers a post-quantum hybrid that Node's OpenSSL 3.0
		// lacks, and every server must do the same key exchange to be compared.
		CurvePreferences: []tls.CurveID{tls.X25519},
	})
}

func main() {
	target := flag.String("target", "", "HOST:PORT to dial (127.0.0.1 only)")
	caFile := flag.String("cacert", "", "CA certificate; without it the calls are plaintext")
	certFile := flag.String("cert", "", "client certificate")
	keyFile := flag.String("key", "", "client private key")
	duration := flag.Duration("duration", 5*time.Second, "stop after this long")
	maxCalls := flag.Int("max", 100_000, "stop after this many calls")
	workers := flag.Int("concurrency", 4, "calls in flight at once, each on its own connection")
	timeout := flag.Duration("timeout", 5*time.Second, "deadline of one call, connection included")
	flag.Parse()
	if *target == "" || *workers < 1 || *maxCalls < 1 || *duration <= 0 {
		fail("-target is required; -concurrency, -max and -duration must be positive")
	}
	if (*caFile == "") != (*certFile == "") || (*certFile == "") != (*keyFile == "") {
		fail("-cacert, -cert and -key go together (all three for mTLS, none for plaintext)")
	}
	creds := clientCredentials(*caFile, *certFile, *keyFile)

	var (
		mu        sync.Mutex
		latencies []time.Duration
		res       result
		started   = time.Now()
		deadline  = started.Add(*duration)
		wg        sync.WaitGroup
	)
	// A ticket per call: the count limit holds across workers.
	tickets := make(chan struct{}, *maxCalls)
	for range *maxCalls {
		tickets <- struct{}{}
	}
	close(tickets)
	call := func() error {
		conn, err := grpc.NewClient("passthrough:///"+*target, grpc.WithTransportCredentials(creds))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		_, err = echopb.NewEchoServiceClient(conn).Echo(ctx, &echopb.EchoRequest{Message: "handshake"})
		return err
	}
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tickets {
				if time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				err := call()
				elapsed := time.Since(t0)
				mu.Lock()
				if err != nil {
					res.Errors++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				} else {
					res.Calls++
					latencies = append(latencies, elapsed)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Seconds = time.Since(started).Seconds()
	res.PerSecond = float64(res.Calls) / res.Seconds
	if len(latencies) > 0 {
		slices.Sort(latencies)
		at := func(q float64) float64 {
			return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
		}
		res.P50Ms, res.P99Ms = at(0.50), at(0.99)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if res.Calls == 0 {
		os.Exit(1)
	}
}
