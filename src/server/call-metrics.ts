// The server's per-call metrics (grpc_server_*, metrics-grpc.ts), taken by
// wrapping each method's handler once, when its service is added, rather than
// by an interceptor: an interceptor layer costs grpc-js wrapper objects and a
// hop per event on every call, a wrapped handler a few field increments.
//
// A wrapped handler sees the call from the moment grpc-js gives it to the
// handler: it counts the messages read and written, and the status the handler
// ends with (the callback's error, an 'error' event, or OK at end()), or
// CANCELLED / DEADLINE_EXCEEDED when grpc-js ends the call first. Calls the
// authorizer refuses never reach a handler: it reports them with ended().
// A call to a method the server does not have is answered UNIMPLEMENTED by
// grpc-js before any of this runs, and is not counted here (as in grpc-go).
import * as grpc from '@grpc/grpc-js';
import type { Registry } from '../shared/prom.js';
import {
  GrpcCallFamilies,
  UNKNOWN,
  grpcType,
  recordHandled,
  splitMethodPath,
  type MethodSeries,
} from '../shared/metrics-grpc.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- handlers of every message type pass through */
type AnyDefinition = grpc.MethodDefinition<any, any>;
type Stream = NodeJS.EventEmitter & { cancelled: boolean; getDeadline(): grpc.Deadline };
type Callback = (err: unknown, value?: unknown, trailer?: unknown, flags?: unknown) => void;

/** The code grpc-js sends for an error a handler gives (its serverErrorToStatus). */
function codeOf(err: unknown): number {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && Number.isInteger(code) ? code : grpc.status.UNKNOWN;
}

/** A call grpc-js ended itself: DEADLINE_EXCEEDED once its deadline has passed, else CANCELLED. */
function cancelCode(call: Stream): number {
  const deadline = call.getDeadline();
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  return Date.now() >= at ? grpc.status.DEADLINE_EXCEEDED : grpc.status.CANCELLED;
}

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
   * Makes every later addService of `server` add wrapped handlers (the echo
   * service, health, reflection): one wrap per method, at registration.
   */
  instrument(server: grpc.Server): void {
    const add = server.addService.bind(server);
    server.addService = (service, impl) => add(service, this.wrapService(service, impl));
  }

  /** A call answered before any handler (an authorization refusal), at `startedMs`. */
  ended(path: string, code: number, startedMs: number): void {
    const s = this.seriesOf(path);
    s.started.value += 1;
    recordHandled(s, code, startedMs);
  }

  /** The implementation of `service` with every handler wrapped; for addService. */
  wrapService<T extends grpc.UntypedServiceImplementation>(
    service: grpc.ServiceDefinition,
    impl: T,
  ): T {
    const out: Record<string, unknown> = { ...impl };
    for (const [name, def] of Object.entries(service)) {
      const handler = (impl as Record<string, unknown>)[name];
      if (typeof handler === 'function') out[name] = this.wrapHandler(def, handler as never);
      // grpc-js also accepts a handler under the method's original (proto) name.
      const original = def.originalName;
      if (original !== undefined && original !== name && typeof out[original] === 'function')
        out[original] = this.wrapHandler(def, out[original] as never);
    }
    return out as T;
  }

  /** One method's handler, counting each call into the series made here, once. */
  wrapHandler<H extends (...args: any[]) => void>(def: AnyDefinition, handler: H): H {
    const { service, method } = splitMethodPath(def.path);
    const s = this.byPath.get(def.path) ?? this.families.method(grpcType(def), service, method);
    this.byPath.set(def.path, s);
    if (!def.responseStream) {
      // Unary and client-streaming: the status is the callback's.
      const countPushes = def.requestStream;
      return function (this: unknown, call: Stream, callback: Callback) {
        const startedMs = performance.now();
        s.started.value += 1;
        let done = false;
        if (countPushes) countReads(call, s);
        else s.received.value += 1;
        const respond = (err: unknown, value?: unknown, trailer?: unknown, flags?: unknown) => {
          if (!done) {
            done = true;
            if (err) recordHandled(s, codeOf(err), startedMs);
            else {
              s.sent.value += 1;
              recordHandled(s, grpc.status.OK, startedMs);
            }
          }
          callback(err, value, trailer, flags);
        };
        try {
          handler.call(this, call, respond);
        } catch (err) {
          if (!done) recordHandled(s, grpc.status.UNKNOWN, startedMs); // grpc-js answers UNKNOWN
          done = true;
          throw err;
        }
        // Most handlers answer before returning (Echo does): then no listener is needed. A
        // cancellation is an I/O event, so it cannot have come while the handler ran.
        if (!done)
          call.once('cancelled', () => {
            if (!done) recordHandled(s, cancelCode(call), startedMs);
            done = true;
          });
      } as unknown as H;
    }
    const countPushes = def.requestStream;
    // Server-streaming and bidirectional: OK at end() unless an 'error' event set a code.
    return function (this: unknown, call: Stream & { write: (...a: unknown[]) => boolean }) {
      const startedMs = performance.now();
      s.started.value += 1;
      if (countPushes) countReads(call, s);
      else s.received.value += 1;
      const write = call.write;
      call.write = function (this: unknown, ...args: unknown[]) {
        s.sent.value += 1;
        return write.apply(this, args);
      };
      let code: number = grpc.status.OK;
      let done = false;
      const finish = (c: number) => {
        if (!done) recordHandled(s, c, startedMs);
        done = true;
      };
      call.once('error', (err: unknown) => (code = codeOf(err)));
      call.once('finish', () => finish(code));
      call.once('cancelled', () => finish(cancelCode(call)));
      try {
        handler.call(this, call);
      } catch (err) {
        finish(grpc.status.UNKNOWN); // grpc-js answers a throwing handler UNKNOWN
        throw err;
      }
    } as unknown as H;
  }
}

/** Counts each request message grpc-js hands a reading call (its push), not the end (null). */
function countReads(call: Stream, s: MethodSeries): void {
  const readable = call as unknown as { push: (chunk: unknown) => boolean };
  const push = readable.push;
  readable.push = function (this: unknown, chunk: unknown) {
    if (chunk !== null) s.received.value += 1;
    return push.call(this, chunk);
  };
}
