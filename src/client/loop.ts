// `npm run client -- loop`: Echo forever (or --count times), one JSON line per call,
// then a summary. The client pod runs it for weeks, so everything it keeps is of
// fixed size: counters per server and per status code, and a latency histogram.
import type * as grpc from '@grpc/grpc-js';
import type { EchoClient } from './client.js';
import * as exit from '../shared/exit-codes.js';
import { LatencyHistogram } from './latency-histogram.js';

export interface LoopOptions {
  /** Calls to make; 0 means until `stopped` aborts. */
  count: number;
  /** Pause between calls, in milliseconds. */
  intervalMs: number;
}

/** What the loop needs of the client: one unary call. */
export type EchoCaller = Pick<EchoClient, 'echo'>;

export async function runLoop(
  client: EchoCaller,
  opts: LoopOptions,
  stopped: AbortSignal,
  print: (line: object) => void,
): Promise<number> {
  const perServer: Record<string, number> = {};
  const failures: Record<string, number> = {};
  const latency = new LatencyHistogram();
  let calls = 0;
  while (!stopped.aborted && (opts.count === 0 || calls < opts.count)) {
    const seq = calls++;
    const started = performance.now();
    try {
      const res = await client.echo(`loop ${seq}`);
      const ms = performance.now() - started;
      latency.record(ms);
      perServer[res.server_id] = (perServer[res.server_id] ?? 0) + 1;
      print({
        time: new Date().toISOString(),
        seq,
        status: 'OK',
        server: res.server_id,
        latencyMs: round(ms),
      });
    } catch (err) {
      const e = err as grpc.ServiceError;
      const code = String(e.code);
      failures[code] = (failures[code] ?? 0) + 1;
      print({
        time: new Date().toISOString(),
        seq,
        status: 'FAILED',
        code: e.code,
        details: e.details,
        latencyMs: round(performance.now() - started),
      });
    }
    if (opts.intervalMs > 0 && !stopped.aborted) await sleepUnless(opts.intervalMs, stopped);
  }
  const failed = Object.values(failures).reduce((a, b) => a + b, 0);
  print({
    summary: {
      calls,
      ok: calls - failed,
      failed,
      perServer,
      failures,
      p50Ms: round(latency.percentileMs(50)),
      p99Ms: round(latency.percentileMs(99)),
    },
  });
  return failed === 0 ? exit.OK : exit.RPC_FAILED;
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;

/** Waits `ms`, or less if `signal` aborts first; leaves no listener behind either way. */
export function sleepUnless(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
