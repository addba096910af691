// The client loop runs for weeks in the client pod: what it keeps must not grow
// with the number of calls.
import { getEventListeners } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { runLoop, sleepUnless, type EchoCaller } from '../src/client/loop.js';
import * as exit from '../src/shared/exit-codes.js';
import { LatencyHistogram } from '../src/client/latency-histogram.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapAfterGc = (): number => (gc(), gc(), process.memoryUsage().heapUsed);

/** A client whose every call succeeds at once, alternating between two servers. */
const instantClient: EchoCaller = {
  echo: (message: string) =>
    Promise.resolve({
      message,
      server_id: message.endsWith('0') ? 'a' : 'b',
      caller: 'spiffe://test/client',
      sequence: 0,
    }),
};

describe('client loop', () => {
  it('holds the same memory after a million calls as after a hundred thousand', async () => {
    const samples = new Map<number, number>();
    let summary: Record<string, unknown> | undefined;
    const code = await runLoop(
      instantClient,
      { count: 1_000_000, intervalMs: 0 },
      new AbortController().signal,
      (line) => {
        const seq = (line as { seq?: number }).seq;
        if (seq === 100_000 || seq === 999_999) samples.set(seq, heapAfterGc());
        if ('summary' in line) summary = (line as { summary: Record<string, unknown> }).summary;
      },
    );
    expect(code).toBe(exit.OK);
    expect(summary).toMatchObject({ calls: 1_000_000, ok: 1_000_000, failed: 0 });
    const grownBytes = samples.get(999_999)! - samples.get(100_000)!;
    // One number kept per call would be 7.2 MB more for the 900 000 calls in between.
    expect(grownBytes).toBeLessThan(1024 * 1024);
  });

  it('leaves no abort listener behind between calls', async () => {
    const stop = new AbortController();
    const counts: number[] = [];
    await runLoop(instantClient, { count: 20, intervalMs: 1 }, stop.signal, () =>
      counts.push(getEventListeners(stop.signal, 'abort').length),
    );
    expect(counts).toHaveLength(21);
    expect(Math.max(...counts)).toBe(0);
  });

  it('stops waiting between calls as soon as it is stopped', async () => {
    const stop = new AbortController();
    const waited = sleepUnless(3_600_000, stop.signal);
    stop.abort();
    await expect(waited).resolves.toBeUndefined();
    expect(getEventListeners(stop.signal, 'abort')).toHaveLength(0);
  });

  it('counts failures by status code and exits with the RPC failure code', async () => {
    let n = 0;
    const flaky: EchoCaller = {
      echo: (message) =>
        n++ % 2 === 0
          ? Promise.resolve({ message, server_id: 'a', caller: 'x', sequence: 0 })
          : Promise.reject(Object.assign(new Error('down'), { code: 14, details: 'down' })),
    };
    const lines: Record<string, unknown>[] = [];
    const code = await runLoop(
      flaky,
      { count: 4, intervalMs: 0 },
      new AbortController().signal,
      (l) => lines.push(l as Record<string, unknown>),
    );
    expect(code).toBe(exit.RPC_FAILED);
    expect(lines.filter((l) => l.status === 'FAILED').map((l) => l.code)).toEqual([14, 14]);
    expect(lines.at(-1)).toMatchObject({
      summary: { calls: 4, ok: 2, failed: 2, perServer: { a: 2 }, failures: { '14': 2 } },
    });
  });
});

describe('latency histogram', () => {
  it('reports percentiles to three significant figures', () => {
    const h = new LatencyHistogram();
    for (let ms = 1; ms <= 1000; ms++) h.record(ms);
    expect(h.count).toBe(1000);
    expect(h.percentileMs(50)).toBeGreaterThanOrEqual(499.5);
    expect(h.percentileMs(50)).toBeLessThanOrEqual(501);
    expect(h.percentileMs(99)).toBeGreaterThanOrEqual(989.5);
    expect(h.percentileMs(99)).toBeLessThanOrEqual(991);
  });

  it('reports 0 before any call and keeps sub-millisecond calls', () => {
    const h = new LatencyHistogram();
    expect(h.percentileMs(99)).toBe(0);
    h.record(0.25);
    expect(h.percentileMs(50)).toBeCloseTo(0.25, 3);
  });
});
