// The access line (src/shared/access-log.ts): built by hand for speed, it must
// be the very line pino writes for the same fields, whatever a caller puts in
// the method path and whatever a certificate puts in the identity.
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  JsonAccessLog,
  PinoAccessLog,
  accessEntry,
  type AccessLog,
} from '../src/shared/access-log.js';
import { createLoggers } from '../src/shared/logging.js';
import { LogOutput } from '../src/shared/log-output.js';

const TIME = ',"time":"2026-12-02T05:00:00.000Z"';
const PID = 4242;

/** One line from each: our hand-built one, and pino's with the options createLoggers gives it. */
function bothLines(
  method: string,
  caller: string | null,
  rule: string | undefined,
  code: grpc.status,
  ms: number,
): [string, string] {
  const ours: string[] = [];
  const theirs: string[] = [];
  // Through the output it writes to in the server: its bytes, gathered and written out.
  const out = new LogOutput(
    { write: (chunk: string) => ours.push(chunk) },
    { flushMs: 60_000, maxPendingBytes: 1_000_000 },
  );
  const json: AccessLog = new JsonAccessLog(out.batched, {
    name: 'grpc-server',
    pid: PID,
    time: () => TIME,
  });
  const logger = pino(
    {
      name: 'grpc-server',
      level: 'info',
      base: { pid: PID },
      timestamp: () => TIME,
      formatters: { level: (label) => ({ level: label }) },
    },
    { write: (l: string) => theirs.push(l) },
  );
  json.write(accessEntry(method, caller, rule), code, ms);
  out.close();
  const viaPino = new PinoAccessLog(logger);
  viaPino.write(accessEntry(method, caller, rule), code, ms);
  return [ours.join(''), theirs.join('')];
}

describe('the access line', () => {
  it('is the line pino writes for the same fields, for an allowed and a denied call', () => {
    const [allowedOurs, allowedPino] = bothLines(
      '/echo.v1.EchoService/Echo',
      'spiffe://cluster.local/ns/grpc-mtls/sa/grpc-client',
      'client-echo',
      grpc.status.OK,
      0.123456,
    );
    expect(allowedOurs).toBe(allowedPino);
    expect(JSON.parse(allowedOurs)).toEqual({
      level: 'info',
      time: '2026-12-02T05:00:00.000Z',
      pid: PID,
      name: 'grpc-server',
      method: '/echo.v1.EchoService/Echo',
      caller: 'spiffe://cluster.local/ns/grpc-mtls/sa/grpc-client',
      rule: 'client-echo',
      code: 'OK',
      ms: 0.123,
      msg: 'rpc',
    });
    const [deniedOurs, deniedPino] = bothLines('/x.Y/Z', null, undefined, 16, 2);
    expect(deniedOurs).toBe(deniedPino);
    expect(JSON.parse(deniedOurs)).toMatchObject({ caller: 'unknown', code: 'UNAUTHENTICATED' });
    expect(JSON.parse(deniedOurs)).not.toHaveProperty('rule');
  });

  it("stays pino's line for any method, caller and rule text, any status and any duration", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 80 }),
        fc.option(fc.string({ unit: 'binary', maxLength: 80 }), { nil: null }),
        fc.option(fc.string({ unit: 'grapheme', maxLength: 20 }), { nil: undefined }),
        fc.integer({ min: 0, max: 16 }),
        fc.double({ min: 0, max: 1e7, noNaN: true }),
        (method, caller, rule, code, ms) => {
          const [ours, theirs] = bothLines(method, caller, rule, code, ms);
          expect(ours).toBe(theirs);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('writes any duration as pino does, whether it is written digit by digit or not', () => {
    const edges = [0, 0.0005, 0.0004999, 0.001, 0.01, 0.1, 1, 999.9995, 1e12 - 0.001, 1e12, 1e20];
    fc.assert(
      fc.property(
        fc.oneof(
          // A whole number of µs: each count of decimals, each number of digits.
          fc.integer({ min: 0, max: 1e15 - 1 }).map((us) => us / 1000),
          fc.integer({ min: 0, max: 1e6 }).map((us) => (us + 0.5) / 1000),
          fc.double({ min: 0, max: 1e17 }),
          fc.constantFrom(...edges, -1, -0, Infinity, NaN),
        ),
        (ms) => {
          const [ours, theirs] = bothLines('/a.B/C', 'id', 'r', grpc.status.OK, ms);
          expect(ours).toBe(theirs);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('is whole when one line is longer than the buffer lines are gathered in', () => {
    // The gathering buffer starts at 32 KiB (log-output.ts) and must grow for it.
    const [ours, theirs] = bothLines(`/${'m'.repeat(40_000)}`, 'id', 'r', grpc.status.OK, 1e20);
    expect(ours.length).toBeGreaterThan(40_000);
    expect(ours).toBe(theirs);
  });

  it("carries each line's own time, whether the new time goes over the old one or not", () => {
    // Same length, then longer, then a non-ASCII time of the length before.
    const times = [
      TIME,
      ',"time":"2026-12-02T05:00:00.001Z"',
      ',"time":"2026-12-02T05:00:01.999Z"',
      ',"time":"+010000-01-01T00:00:00.000Z"',
      ',"time":"2026-12-02T05:00:01.999Z"',
      ',"time":"2026-12-02T05:00:01.99éZ"',
      TIME,
    ];
    let now = TIME;
    const ours: string[] = [];
    const theirs: string[] = [];
    const out = new LogOutput({ write: (chunk: string) => ours.push(chunk) });
    const json = new JsonAccessLog(out.batched, { name: 'n', pid: PID, time: () => now });
    const viaPino = new PinoAccessLog(
      pino(
        {
          name: 'n',
          base: { pid: PID },
          timestamp: () => now,
          formatters: { level: (label) => ({ level: label }) },
        },
        { write: (l: string) => theirs.push(l) },
      ),
    );
    for (const time of times) {
      now = time;
      json.write(accessEntry('/a.B/C', 'id', 'r'), grpc.status.OK, 1);
      viaPino.write(accessEntry('/a.B/C', 'id', 'r'), grpc.status.OK, 1);
    }
    out.close();
    expect(ours.join('')).toBe(theirs.join(''));
    expect(theirs).toHaveLength(times.length);
  });

  it('keeps a hostile method path inside its own field, on its own line', () => {
    const path = '/a.B/C","code":"OK"}\n{"forged":"\u2028';
    const [line] = bothLines(path, 'id', undefined, grpc.status.PERMISSION_DENIED, 1);
    expect(line.split('\n')).toHaveLength(2); // the line and the empty rest after its newline
    expect(JSON.parse(line)).toMatchObject({ method: path, code: 'PERMISSION_DENIED' });
  });

  it('serializes the fixed fields once, into the entry', () => {
    const e = accessEntry('/a.B/C', 'spiffe://x/"y"', 'r1');
    expect(e.json).toBe(',"method":"/a.B/C","caller":"spiffe://x/\\"y\\"","rule":"r1"');
    expect(accessEntry('/a.B/C', null).json).toBe(',"method":"/a.B/C","caller":"unknown"');
  });

  it("goes, from createLoggers, to the output's gathered lines with the general logger's time", () => {
    const chunks: string[] = [];
    const out = new LogOutput({ write: (c: string) => chunks.push(c) });
    try {
      const { log, access } = createLoggers('info', 'grpc-server', out);
      access?.write(accessEntry('/a.B/C', 'id', 'r'), 0, 1);
      expect(chunks).toEqual([]); // gathered, not yet written
      log.info('next');
      const [rpc, next] = chunks
        .join('')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(rpc).toMatchObject({ msg: 'rpc', method: '/a.B/C', pid: process.pid });
      expect(Date.parse(String(rpc?.time))).toBeLessThanOrEqual(Date.parse(String(next?.time)));
    } finally {
      out.close();
    }
  });
});
