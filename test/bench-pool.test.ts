// bench/pool.ts: the rounds of several bench runs pooled, with an interval that
// counts the runs' own spread, and a verdict only where that whole interval is
// on one side of a goal's line.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pooledMedian, poolTargets } from '../bench/lib/pool.js';
import type { BenchResult } from '../bench/lib/report.js';
import { summarize } from '../bench/lib/stats.js';
import { tempDir } from './helpers/pki.js';
import { runTs } from './helpers/server.js';

const C1_P99 = 'p99 at c=1 within 10% of bare grpc-js mTLS';

/** A full bench result with only the ratios a pooling reads: c=1 p99 of ours and of its twin, per round. */
function run(startedAt: string, ours: number[], twin: number[] = []): BenchResult {
  return {
    schema: 1,
    smoke: false,
    startedAt,
    ratios: {
      'ours/grpc-js-mtls': { unaryC1P99Ms: summarize(ours) },
      ...(twin.length > 0 ? { 'ours/ours-twin': { unaryC1P99Ms: summarize(twin) } } : {}),
    },
  } as unknown as BenchResult;
}

const rounds = (value: number, n = 9) => Array.from({ length: n }, () => value);

describe('pooling bench runs', () => {
  it('gives the value itself, with no width, when every round of every run agrees', () => {
    expect(pooledMedian([rounds(1.02), rounds(1.02)])).toEqual({
      median: 1.02,
      interval: [1.02, 1.02],
    });
  });

  it("widens the interval by the runs' spread: three runs apart are not 27 independent rounds", () => {
    // Each run steady within itself, the three apart: rounds 0.95–1.05, 1.05–1.15, 1.15–1.25.
    const spread = (from: number) => Array.from({ length: 9 }, (_, i) => from + i / 80);
    const p = pooledMedian([spread(0.95), spread(1.05), spread(1.15)])!;
    expect(p.median).toBeCloseTo(1.1, 2);
    // 27 rounds drawn alone would keep the median within 1.05–1.15; drawn by
    // run, a resample that holds the lowest or the highest run twice moves it further.
    expect(p.interval[0]).toBeLessThan(1.03);
    expect(p.interval[1]).toBeGreaterThan(1.17);
  });

  it('gives the same interval for the same runs in any order, so a pooled figure can be quoted', () => {
    // Ten distinct rounds a run: the pooled median of 30 draws is the mean of two of
    // them, so unseeded draws would almost never give the same two ends twice.
    const irregular = (seed: number) =>
      Array.from({ length: 10 }, (_, i) => 1 + ((i * seed) % 17) / 97 + seed / 1000);
    const [a, b, c] = [run('a', irregular(3)), run('b', irregular(5)), run('c', irregular(11))];
    const first = poolTargets([a, b, c])[0]!;
    expect(first.interval[0]).toBeLessThan(first.interval[1]);
    expect(poolTargets([a, b, c])[0]!.interval).toEqual(first.interval);
    expect(poolTargets([c, a, b])[0]!.interval).toEqual(first.interval);
  });

  it('says a goal is met only when the whole interval meets it, and missed only when none of it does', () => {
    const verdict = (runs: BenchResult[]) =>
      poolTargets(runs).find((p) => p.target.text === C1_P99)!.verdict;
    expect(verdict([run('a', rounds(1.0)), run('b', rounds(1.05))])).toBe('met');
    expect(verdict([run('a', rounds(1.2)), run('b', rounds(1.3))])).toBe('missed');
    expect(verdict([run('a', rounds(1.0)), run('b', rounds(1.2))])).toBe('undecided');
    // The pooled median (1.2) misses, but 7 in 27 resamples hold run a at least twice and meet it.
    expect(verdict([run('a', rounds(1.05)), run('b', rounds(1.2)), run('c', rounds(1.2))])).toBe(
      'undecided',
    );
  });

  it('pools only the goals the runs measured, and the twin where they had one', () => {
    const pooled = poolTargets([run('a', rounds(1.0), rounds(0.9)), run('b', rounds(1.1))]);
    expect(pooled.map((p) => p.target.text)).toEqual([C1_P99]);
    expect(pooled[0]!.rounds).toBe(18);
    expect(pooled[0]!.runs.map((r) => r.median)).toEqual([1.0, 1.1]);
    expect(pooled[0]!.noise).toEqual({ median: 0.9, interval: [0.9, 0.9], runs: 1 });
  });

  it("takes the twin only from runs that measured the goal's own ratio", () => {
    const twinOnly = {
      ...run('b', []),
      ratios: { 'ours/ours-twin': { unaryC1P99Ms: summarize(rounds(2.0)) } },
    } as unknown as BenchResult;
    const pooled = poolTargets([run('a', rounds(1.0), rounds(0.9)), twinOnly]);
    expect(pooled[0]!.noise).toEqual({ median: 0.9, interval: [0.9, 0.9], runs: 1 });
  });

  it('prints the pooled table from result files, and refuses a smoke result by name', async () => {
    const dir = await tempDir('grpc-mtls-pool-');
    try {
      const files = [join(dir.path, 'a.json'), join(dir.path, 'b.json')];
      await writeFile(files[0]!, JSON.stringify(run('a', rounds(1.0))));
      await writeFile(files[1]!, JSON.stringify(run('b', rounds(1.05))));
      const ok = await cli(files);
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain(`| ${C1_P99} | 2 | 18 | 1.025 | 1.000–1.050 | met |`);

      const smoke = join(dir.path, 'smoke.json');
      await writeFile(smoke, JSON.stringify({ ...run('s', rounds(1.0)), smoke: true }));
      const refused = await cli([files[0]!, smoke]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`${smoke}: not a full bench result`);
    } finally {
      await dir.remove();
    }
  });
});

const cli = (args: string[]) => runTs('bench/pool.ts', args);
