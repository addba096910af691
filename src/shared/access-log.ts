// The access line: one JSON line per RPC at info, with the method, the verified
// caller, the policy rule that allowed it, the status and the duration.
//
// The server's own access log (JsonAccessLog) writes the line pino would write
// for the same fields, built by hand: the fields that do not change from call
// to call (method, caller, rule) are serialized once into an AccessEntry that
// the authorizer keeps per caller and method, so that a line costs one string
// concatenation: the fixed fragment, the status from a table, the duration.
// Through pino's generic serializer it was the largest part of our server's
// own per-call cost (docs/performance.md). test/logging.test.ts holds the two
// to the same output. Given any other pino logger (tests capture lines that
// way), PinoAccessLog writes the same fields through it.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { LogSink } from './log-output.js';

/** The fields of an access line that stay the same from call to call, prepared once. */
export interface AccessEntry {
  readonly method: string;
  /** 'unknown' for a caller without a usable identity. */
  readonly caller: string;
  /** The rule that allowed the call; absent on a denied call (none matched). */
  readonly rule: string | undefined;
  /** Those three as JSON members, each with its leading comma. */
  readonly json: string;
}

export interface AccessLog {
  /** One line: `entry`'s fields, the status's name and the duration in ms (to the µs). */
  write(entry: AccessEntry, code: grpc.status, ms: number): void;
}

export function accessEntry(method: string, caller: string | null, rule?: string): AccessEntry {
  const who = caller ?? 'unknown';
  const json =
    `,"method":${JSON.stringify(method)},"caller":${JSON.stringify(who)}` +
    (rule === undefined ? '' : `,"rule":${JSON.stringify(rule)}`);
  return { method, caller: who, rule, json };
}

/** Rounds a duration to the microsecond, as every access line gives it. */
const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** grpc.status's name of a code, for the line ("OK", "PERMISSION_DENIED", …). */
function codeName(code: grpc.status): string {
  const name: string | undefined = grpc.status[code];
  return name ?? String(code);
}

/** `,"code":"NAME"` for every status code, made once. */
const CODE_MEMBERS: readonly string[] = Array.from(
  { length: 17 },
  (_, code) => `,"code":${JSON.stringify(codeName(code))}`,
);

export interface JsonAccessLogOptions {
  /** The logger's name (pino's `name`). */
  name: string;
  pid: number;
  /** The time member with its leading comma, as pino's `timestamp` option gives it. */
  time: () => string;
}

/** The server's access log: pino's line for the same fields, written to a LogSink (batched). */
export class JsonAccessLog implements AccessLog {
  private readonly head: string;
  private readonly base: string;

  constructor(
    private readonly sink: LogSink,
    private readonly options: JsonAccessLogOptions,
  ) {
    this.head = '{"level":"info"';
    this.base = `,"pid":${options.pid},"name":${JSON.stringify(options.name)}`;
  }

  write(entry: AccessEntry, code: grpc.status, ms: number): void {
    const status = CODE_MEMBERS[code] ?? `,"code":${JSON.stringify(codeName(code))}`;
    const rounded = roundMs(ms);
    const duration = Number.isFinite(rounded) ? rounded : null;
    this.sink.write(
      `${this.head}${this.options.time()}${this.base}${entry.json}${status},"ms":${duration},"msg":"rpc"}\n`,
    );
  }
}

/** The same fields through any pino logger, at info. */
export class PinoAccessLog implements AccessLog {
  constructor(private readonly logger: Logger) {}

  write(entry: AccessEntry, code: grpc.status, ms: number): void {
    this.logger.info(
      {
        method: entry.method,
        caller: entry.caller,
        rule: entry.rule,
        code: codeName(code),
        ms: roundMs(ms),
      },
      'rpc',
    );
  }
}
