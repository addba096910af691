// The per-call gRPC metrics of the server and the client, named and labelled
// as the go-grpc-middleware Prometheus provider names them
// (providers/prometheus server_metrics.go, client_metrics.go), so dashboards and
// alerts written for it work unchanged:
//   grpc_{server,client}_started_total       {grpc_type,grpc_service,grpc_method}
//   grpc_{server,client}_handled_total       {grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_{server,client}_handling_seconds    histogram, labels of started_total
//   grpc_{server,client}_msg_received_total  {grpc_type,grpc_service,grpc_method}
//   grpc_{server,client}_msg_sent_total      {grpc_type,grpc_service,grpc_method}
// grpc_code takes grpc-go's names (OK, PermissionDenied, ...), as that provider writes them.
//
// Every series is made once per method when the method is registered (server)
// or first called (client, for methods of the proto it was built from): label
// values never come from a caller, so a hostile caller cannot add series.
import type { Registry } from './prom.js';
import {
  CounterFamily,
  HistogramFamily,
  type CounterSeries,
  type HistogramSeries,
} from './metrics-series.js';

/** grpc-go's codes.Code.String(), indexed by the numeric code. */
export const GO_CODE_NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
] as const;

/** Prometheus's DefBuckets, which the provider uses: 5 ms to 10 s. */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

export function grpcType(def: { requestStream: boolean; responseStream: boolean }): GrpcType {
  if (def.requestStream) return def.responseStream ? 'bidi_stream' : 'client_stream';
  return def.responseStream ? 'server_stream' : 'unary';
}

/** `/pkg.Service/Method` → service and method, as the provider splits it. */
export function splitMethodPath(path: string): { service: string; method: string } {
  const slash = path.lastIndexOf('/');
  return { service: path.slice(1, slash), method: path.slice(slash + 1) };
}

/** The label value every unknown method folds into. */
export const UNKNOWN = 'unknown';

/** The series of one method, resolved once. */
export interface MethodSeries {
  started: CounterSeries;
  /** handled[code]: one series per status code. */
  handled: CounterSeries[];
  seconds: HistogramSeries;
  received: CounterSeries;
  sent: CounterSeries;
}

export class GrpcCallFamilies {
  private readonly started: CounterFamily;
  private readonly handled: CounterFamily;
  private readonly seconds: HistogramFamily;
  private readonly received: CounterFamily;
  private readonly sent: CounterFamily;

  constructor(
    registry: Registry,
    readonly side: 'server' | 'client',
  ) {
    const base = ['grpc_type', 'grpc_service', 'grpc_method'] as const;
    const p = `grpc_${side}`;
    const on = side === 'server' ? 'on the server' : 'by the client';
    this.started = new CounterFamily(
      `${p}_started_total`,
      `Total number of RPCs started ${on}.`,
      base,
    ).registerIn(registry);
    this.handled = new CounterFamily(
      `${p}_handled_total`,
      `Total number of RPCs completed ${on}, regardless of success or failure.`,
      [...base, 'grpc_code'],
    ).registerIn(registry);
    this.seconds = new HistogramFamily(
      `${p}_handling_seconds`,
      side === 'server'
        ? 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.'
        : 'Histogram of response latency (seconds) of the gRPC until it is finished by the application.',
      base,
      DEFAULT_BUCKETS,
    ).registerIn(registry);
    this.received = new CounterFamily(
      `${p}_msg_received_total`,
      `Total number of RPC stream messages received ${on}.`,
      base,
    ).registerIn(registry);
    this.sent = new CounterFamily(
      `${p}_msg_sent_total`,
      `Total number of gRPC stream messages sent ${on}.`,
      base,
    ).registerIn(registry);
  }

  /** Makes every series of one method (handled: one per code, all at 0, as the provider's InitializeMetrics). */
  method(type: GrpcType | typeof UNKNOWN, service: string, method: string): MethodSeries {
    const l = [type, service, method];
    return {
      started: this.started.child(l),
      handled: GO_CODE_NAMES.map((code) => this.handled.child([...l, code])),
      seconds: this.seconds.child(l),
      received: this.received.child(l),
      sent: this.sent.child(l),
    };
  }
}

/** Counts one finished call: its code (out-of-range codes count as Unknown) and duration. */
export function recordHandled(
  s: MethodSeries,
  code: number,
  startedMs: number,
  nowMs = performance.now(),
): void {
  ((s.handled[code] ?? s.handled[2]) as CounterSeries).value += 1;
  s.seconds.observe((nowMs - startedMs) / 1000);
}
