// The server's per-call metrics (grpc_server_*, metrics-grpc.ts): the series
// of every method, made once when its service is added, and the record of the
// calls the authorizer refuses.
//
// The calls themselves are counted where the authorizer already is, on the
// object it hands an allowed call (allowed-call.ts): started when the call
// arrives, each message read and written, and the status it is answered with,
// or CANCELLED / DEADLINE_EXCEEDED when grpc-js ends it first. There is no
// second layer per call: counting is a few field increments on series
// resolved here, once per method.
//
// A call to a method the server does not have is answered UNIMPLEMENTED by
// grpc-js before any of this runs, and is not counted (as in grpc-go).
import type * as grpc from '@grpc/grpc-js';
import {
  GrpcCallFamilies,
  UNKNOWN,
  grpcType,
  recordHandled,
  splitMethodPath,
  type MethodSeries,
} from '../shared/metrics-grpc.js';
import type { Registry } from '../shared/prom.js';

export class ServerCallMetrics {
  private readonly families: GrpcCallFamilies;
  private readonly byPath = new Map<string, MethodSeries>();
  /** Every path the server does not serve, so a refused caller's made-up path adds no series. */
  private readonly unknown: MethodSeries;

  constructor(registry: Registry) {
    this.families = new GrpcCallFamilies(registry, 'server');
    this.unknown = this.families.method(UNKNOWN, UNKNOWN, UNKNOWN);
  }

  /** The series of a path: the method's own when it was registered, else the shared unknown one. */
  seriesOf(path: string): MethodSeries {
    return this.byPath.get(path) ?? this.unknown;
  }

  /** True for the path of a method the server has registered. */
  knows(path: string): boolean {
    return this.byPath.has(path);
  }

  /**
   * Makes every later addService of `server` (the echo service, health,
   * reflection) make its methods' series first. The implementation is handed
   * on untouched.
   */
  instrument(server: grpc.Server): void {
    const add = server.addService.bind(server);
    server.addService = (service, impl) => {
      this.register(service);
      add(service, impl);
    };
  }

  /** Makes the series of each method of `service`, once. */
  register(service: grpc.ServiceDefinition): void {
    for (const def of Object.values(service)) {
      if (this.byPath.has(def.path)) continue;
      const { service: name, method } = splitMethodPath(def.path);
      this.byPath.set(def.path, this.families.method(grpcType(def), name, method));
    }
  }

  /** A call answered before any handler (an authorization refusal), at `startedMs`. */
  ended(path: string, code: number, startedMs: number): void {
    const s = this.seriesOf(path);
    s.started.value += 1;
    recordHandled(s, code, startedMs);
  }
}
