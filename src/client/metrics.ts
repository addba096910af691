// The client's Prometheus metrics: grpc_client_* as go-grpc-middleware's client
// provider names them (metrics-grpc.ts), taken by one grpc-js client
// interceptor, plus the Node process metrics. The library offers them to any
// program (ClientOptions.metrics); the `loop` command serves them on
// METRICS_ADDRESS when it is set. A method's series are made on its first call:
// the paths are this client's own methods, never a peer's input.
import * as grpc from '@grpc/grpc-js';
import { Registry } from '../shared/prom.js';
import {
  GrpcCallFamilies,
  grpcType,
  recordHandled,
  splitMethodPath,
  type MethodSeries,
} from '../shared/metrics-grpc.js';
import { collectProcessMetrics } from '../shared/metrics-process.js';

export class ClientMetrics {
  readonly registry: Registry;
  private readonly families: GrpcCallFamilies;
  private readonly byPath = new Map<string, MethodSeries>();

  /** Into `registry` when given (a program's own), else a registry of its own with the process metrics. */
  constructor(registry?: Registry) {
    this.registry = registry ?? new Registry();
    if (registry === undefined) collectProcessMetrics(this.registry);
    this.families = new GrpcCallFamilies(this.registry, 'client');
  }

  private seriesOf(def: {
    path: string;
    requestStream: boolean;
    responseStream: boolean;
  }): MethodSeries {
    let s = this.byPath.get(def.path);
    if (s === undefined) {
      const { service, method } = splitMethodPath(def.path);
      s = this.families.method(grpcType(def), service, method);
      this.byPath.set(def.path, s);
    }
    return s;
  }

  /** The interceptor counting every call of a channel: give it in the client's `interceptors`. */
  readonly interceptor: grpc.Interceptor = (options, nextCall) => {
    const s = this.seriesOf(options.method_definition);
    const startedMs = performance.now();
    s.started.value += 1;
    return new grpc.InterceptingCall(nextCall(options), {
      start(metadata, _listener, next) {
        next(metadata, {
          onReceiveMessage(message, nextMessage) {
            s.received.value += 1;
            nextMessage(message);
          },
          onReceiveStatus(status, nextStatus) {
            recordHandled(s, status.code, startedMs);
            nextStatus(status);
          },
        });
      },
      sendMessage(message, next) {
        s.sent.value += 1;
        next(message);
      },
    });
  };
}
