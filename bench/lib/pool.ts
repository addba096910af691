// The rounds of several runs taken together, for a goal that one run cannot
// decide. On this VM a round's ratio strays by ±30% and more (the twin's
// min–max), so a 9-round median lands on either side of a 5 or 10% line from
// run to run. Pooled, the rounds of runs of the same code give one median and,
// by resampling, how far that median itself could stray: a goal is settled
// only when the whole interval lies on one side of its line.
//
// The resampling is in two stages, runs and then rounds within each run, as
// rounds of one run share its host (its speed, what else ran): drawing rounds
// alone would treat 45 rounds of five runs as 45 independent ones and give an
// interval narrower than the runs' spread says. Runs on hosts of different
// speeds may be pooled for the same reason: each run is one draw of a host.
import { median, type Summary } from './stats.js';
import { TARGETS, meetsTarget, type BenchResult, type Comparison, type Target } from './report.js';

export interface PooledTarget {
  target: Target;
  /** The runs with this ratio, by their start time, and each run's median. */
  runs: { startedAt: string; median: number }[];
  rounds: number;
  median: number;
  /** The 5th and 95th percentiles of the pooled median over the resamples. */
  interval: [number, number];
  /** Whether the whole interval meets the goal, misses it, or straddles its line. */
  verdict: 'met' | 'missed' | 'undecided';
  /** The same pooling of ours/ours-twin, over those of the runs that had the twin. */
  noise: { median: number; interval: [number, number]; runs: number } | null;
}

/** How many resamples: the interval's ends repeat to the third decimal at this count. */
export const RESAMPLES = 4000;

/** A small seeded generator (mulberry32), so that the same runs give the same interval. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const finite = (s: Summary | undefined): number[] =>
  (s?.samples ?? []).filter((v): v is number => v !== null && Number.isFinite(v));

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}

/**
 * The pooled median of `groups` (one array of round values per run) and its
 * 90% interval: runs drawn with replacement, then rounds within each.
 */
export function pooledMedian(
  groups: number[][],
  resamples = RESAMPLES,
  random = seeded(16),
): { median: number; interval: [number, number] } | null {
  const nonEmpty = groups.filter((g) => g.length > 0);
  const all = nonEmpty.flat();
  const centre = median(all);
  if (centre === null) return null;
  const medians: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const drawn: number[] = [];
    for (let r = 0; r < nonEmpty.length; r++) {
      const run = pick(nonEmpty, random);
      for (let k = 0; k < run.length; k++) drawn.push(pick(run, random));
    }
    medians.push(median(drawn)!);
  }
  medians.sort((a, b) => a - b);
  // The 200th of 4000 from each end: as many draws below the interval as above it.
  const k = Math.max(0, Math.ceil(0.05 * medians.length) - 1);
  return { median: centre, interval: [medians[k]!, medians[medians.length - 1 - k]!] };
}

/** Every ratio goal that at least one of `results` measured, pooled over them. */
export function poolTargets(results: BenchResult[]): PooledTarget[] {
  const pooled: PooledTarget[] = [];
  for (const target of TARGETS) {
    if (target.of === 'ours') continue;
    const of: Comparison = target.of;
    // By start time, so that the same runs give the same interval in any order.
    const withIt = results
      .filter((r) => finite(r.ratios[of]?.[target.metric]).length > 0)
      .sort((a, b) => a.startedAt.localeCompare(b.startedAt));
    if (withIt.length === 0) continue;
    const groups = withIt.map((r) => finite(r.ratios[of]![target.metric]));
    const p = pooledMedian(groups)!;
    const [lo, hi] = p.interval;
    const verdict =
      meetsTarget(target, lo) && meetsTarget(target, hi)
        ? 'met'
        : !meetsTarget(target, lo) && !meetsTarget(target, hi)
          ? 'missed'
          : 'undecided';
    // The twin only beside the figure it qualifies: from the runs that have this goal's ratio.
    const twin = withIt
      .map((r) => finite(r.ratios['ours/ours-twin']?.[target.metric]))
      .filter((g) => g.length > 0);
    const noise = pooledMedian(twin);
    pooled.push({
      target,
      runs: withIt.map((r, i) => ({ startedAt: r.startedAt, median: median(groups[i]!)! })),
      rounds: groups.reduce((n, g) => n + g.length, 0),
      median: p.median,
      interval: p.interval,
      verdict,
      noise: noise && { ...noise, runs: twin.length },
    });
  }
  return pooled;
}

const f = (v: number) => v.toFixed(3);

export function renderPooled(pooled: PooledTarget[], files: string[]): string {
  const lines = [
    `Pooled rounds of ${files.length} runs (${files.join(', ')}); interval: 5th–95th percentile of the pooled median over ${RESAMPLES} resamples, runs then rounds within them.`,
    '',
    '| goal | runs | rounds | pooled median | 90% interval | verdict | each run | noise floor (ours/ours-twin) |',
    '| --- | ---: | ---: | ---: | ---: | :---: | --- | ---: |',
  ];
  for (const p of pooled) {
    const noise = p.noise
      ? `${f(p.noise.median)} (${f(p.noise.interval[0])}–${f(p.noise.interval[1])}), ${p.noise.runs} runs`
      : '–';
    lines.push(
      `| ${p.target.text} | ${p.runs.length} | ${p.rounds} | ${f(p.median)} | ${f(p.interval[0])}–${f(p.interval[1])} | ${p.verdict} | ${p.runs.map((r) => f(r.median)).join(', ')} | ${noise} |`,
    );
  }
  return lines.join('\n');
}
