// The scrape endpoint: plain HTTP on its own address (METRICS_ADDRESS), never
// on the gRPC port, answering GET /metrics in Prometheus's text format and 404
// to anything else. It serves only counts, timings and certificate expiry
// dates: no identity, message or key material reaches the registry.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from './prom.js';
import { KitError } from './errors.js';
import { BIND_FAILED } from './exit-codes.js';

/** METRICS_ADDRESS: '' (off) or HOST:PORT; the message says what is accepted. */
export function metricsAddress(t: string): string {
  const v = t.trim();
  if (v === '') return '';
  const m = /^(\[[0-9a-fA-F:]+\]|[^:[\]]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535)
    throw new Error('must be HOST:PORT (e.g. 0.0.0.0:9464, 127.0.0.1:0) or empty for no metrics');
  return v;
}

/** The metrics address could not be bound; the message names it and the reason. */
export class MetricsBindError extends KitError {
  override name = 'MetricsBindError';
  readonly exitCode = BIND_FAILED;
}

export class MetricsEndpoint {
  private readonly server: Server;

  constructor(private readonly registry: Registry) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' || path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try GET /metrics\n');
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': this.registry.contentType }).end(text),
        (err: unknown) =>
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`),
      );
    });
    // A scrape is one short request: an idle scraper connection holds nothing for long.
    this.server.keepAliveTimeout = 5_000;
    this.server.headersTimeout = 10_000;
    this.server.requestTimeout = 10_000;
  }

  /** Binds HOST:PORT; returns the port actually bound (for :0). */
  listen(address: string): Promise<number> {
    const i = address.lastIndexOf(':');
    const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
    const port = Number(address.slice(i + 1));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) =>
        reject(
          new MetricsBindError(
            `cannot listen for metrics on ${address} (METRICS_ADDRESS): ${err.message}`,
          ),
        );
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server.listening) return resolve();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}
