// The access line: one JSON line per RPC at info, with the method, the verified
// caller, the policy rule that allowed it, the status and the duration.
//
// The server's own access log (JsonAccessLog) writes the line pino would write
// for the same fields, built by hand: the fields that do not change from call
// to call (method, caller, rule) are serialized once into an AccessEntry that
// the authorizer keeps per caller and method, as UTF-8 bytes, so that a line is
// one call that copies five parts into the output's buffer: the head (its time
// rewritten once a millisecond), the entry, the status from a table, the
// duration's digits and the end.
// Through pino's generic serializer it was the largest part of our server's
// own per-call cost (docs/performance.md). test/access-log.test.ts holds the
// two to the same output. Given any other pino logger (tests capture lines that
// way), PinoAccessLog writes the same fields through it.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { LineBatch } from './log-output.js';

/** The fields of an access line that stay the same from call to call, prepared once. */
export interface AccessEntry {
  readonly method: string;
  /** 'unknown' for a caller without a usable identity. */
  readonly caller: string;
  /** The rule that allowed the call; absent on a denied call (none matched). */
  readonly rule: string | undefined;
  /** Those three as JSON members, each with its leading comma. */
  readonly json: string;
  /** `json` in UTF-8. */
  readonly bytes: Uint8Array;
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
  return { method, caller: who, rule, json, bytes: Buffer.from(json) };
}

/** Rounds a duration to the microsecond, as every access line gives it. */
const roundMs = (ms: number): number => Math.round(ms * 1000) / 1000;

/** grpc.status's name of a code, for the line ("OK", "PERMISSION_DENIED", …). */
function codeName(code: grpc.status): string {
  const name: string | undefined = grpc.status[code];
  return name ?? String(code);
}

/** `,"code":"NAME","ms":`, the members around a line's duration, for a code. */
const statusMembers = (code: grpc.status): Buffer =>
  Buffer.from(`,"code":${JSON.stringify(codeName(code))},"ms":`);
/** The same for every status code, made once. */
const STATUS_MEMBERS: readonly Buffer[] = Array.from({ length: 17 }, (_, code) =>
  statusMembers(code),
);
const TAIL = Buffer.from(',"msg":"rpc"}\n');
/** What a line starts with, before its time member. */
const HEAD_START = '{"level":"info"';

export interface JsonAccessLogOptions {
  /** The logger's name (pino's `name`). */
  name: string;
  pid: number;
  /** The time member with its leading comma, as pino's `timestamp` option gives it. */
  time: () => string;
}

/** The server's access log: pino's line for the same fields, gathered in a LineBatch. */
export class JsonAccessLog implements AccessLog {
  private readonly base: string;
  /** The time member `head` was made with. */
  private time = '';
  /** Its length in `head`, in bytes. */
  private timeBytes = -1;
  /** `{"level":"info","time":…,"pid":…,"name":…`, for that time. */
  private head = Buffer.alloc(0);

  constructor(
    private readonly batch: LineBatch,
    private readonly options: JsonAccessLogOptions,
  ) {
    this.base = `,"pid":${options.pid},"name":${JSON.stringify(options.name)}`;
  }

  write(entry: AccessEntry, code: grpc.status, ms: number): void {
    // The same string, unchanged, until the millisecond changes.
    const time = this.options.time();
    if (time !== this.time) {
      this.time = time;
      // A new time of the same length, in ASCII (any ISO time in the years 0
      // to 9999), goes over the old one in place: the head is copied into each
      // line, never handed out. Anything else makes a new head.
      const inPlace =
        time.length === this.timeBytes && this.head.write(time, HEAD_START.length) === time.length;
      if (!inPlace) {
        this.head = Buffer.from(`${HEAD_START}${time}${this.base}`);
        this.timeBytes = Buffer.byteLength(time);
      }
    }
    // The duration goes in digit by digit, without the string V8 would make of
    // the rounded number: that was half of this function's cost.
    this.batch.line(
      this.head,
      entry.bytes,
      STATUS_MEMBERS[code] ?? statusMembers(code),
      Math.round(ms * 1000),
      TAIL,
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
