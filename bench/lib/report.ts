// The result of a benchmark: one JSON document (bench/results/<date>.json) and
// the Markdown table printed at the end. Figures are medians with their min–max
// spread; comparisons are medians of ratios taken round by round; the targets
// of the benchmark issue are checked against those.
import type { Machine, Pinning } from './machine.js';
import type { ProfileSummary } from './profile.js';
import { METRICS, METRIC_NAMES, type MetricName, type ScenarioName } from './scenarios.js';
import { SERVER_LABELS, type ServerName } from './servers.js';
import { roundRatios, summarize, type Summary } from './stats.js';

/**
 * Ratios reported, each `a/b`: ours against the others, the price of the
 * access line and of the metrics, and ours against its twin (the noise floor).
 */
export const COMPARISONS = [
  ['ours', 'grpc-js-mtls'],
  ['ours', 'connect-node'],
  ['ours', 'grpc-go'],
  ['ours-no-access-log', 'grpc-js-mtls'],
  ['ours', 'ours-no-access-log'],
  ['ours', 'ours-no-metrics'],
  ['ours', 'ours-twin'],
] as const satisfies readonly (readonly [ServerName, ServerName])[];
type Named<P> = P extends readonly [infer A extends string, infer B extends string]
  ? `${A}/${B}`
  : never;
/** Exactly the pairs listed above, each as `a/b`. */
export type Comparison = Named<(typeof COMPARISONS)[number]>;

export interface RunProblem {
  round: number;
  scenario: ScenarioName;
  errors: number;
  ok: number;
  firstError: string | null;
}

export interface ServerResult {
  label: string;
  description: string;
  metrics: Record<MetricName, Summary>;
  /** Runs where some calls failed: a figure with failures beside it is suspect. */
  problems: RunProblem[];
}

export interface Target {
  text: string;
  metric: MetricName;
  /** 'ours' for an absolute figure, or a comparison for a ratio. */
  of: 'ours' | Comparison;
  op: '>=' | '<=' | '<';
  threshold: number;
}

export interface TargetResult extends Target {
  value: number | null;
  /** null when the figure was not measured in this run. */
  met: boolean | null;
  /** For a ratio: ours/ours-twin of the same metric, what the host alone moved it by; null without the twin. */
  noise: Summary | null;
}

export interface BenchResult {
  schema: 1;
  startedAt: string;
  finishedAt: string;
  command: string;
  smoke: boolean;
  options: {
    seconds: number | null;
    runs: number;
    warmupSeconds: number;
    scenarios: ScenarioName[];
    servers: ServerName[];
  };
  machine: Machine;
  pinning: Pinning;
  scenarios: Partial<Record<ScenarioName, string>>;
  metrics: Record<MetricName, { label: string; unit: string; better: string }>;
  servers: Partial<Record<ServerName, ServerResult>>;
  ratios: Partial<Record<Comparison, Record<MetricName, Summary>>>;
  targets: TargetResult[];
  notes: string[];
  /** With --cpu-prof only: where each Node server's CPU went. */
  profiles?: Partial<Record<ServerName, ProfileSummary>>;
}

/** The goals of the performance issue (16), plus the earlier comparisons with connect-node. */
export const TARGETS: Target[] = [
  {
    text: 'unary throughput ≥ 0.95 × bare grpc-js mTLS',
    metric: 'unaryC50Rps',
    of: 'ours/grpc-js-mtls',
    op: '>=',
    threshold: 0.95,
  },
  {
    // The same target judged by server CPU, which the load generator's own limit cannot hide.
    text: 'server CPU per unary call ≤ 1.05 × bare grpc-js mTLS',
    metric: 'unaryC50CpuUsPerCall',
    of: 'ours/grpc-js-mtls',
    op: '<=',
    threshold: 1.05,
  },
  {
    text: 'p99 at c=1 within 10% of bare grpc-js mTLS',
    metric: 'unaryC1P99Ms',
    of: 'ours/grpc-js-mtls',
    op: '<=',
    threshold: 1.1,
  },
  {
    text: 'server-streaming messages/s ≥ 0.95 × bare grpc-js mTLS',
    metric: 'streamMsgsPerS',
    of: 'ours/grpc-js-mtls',
    op: '>=',
    threshold: 0.95,
  },
  {
    text: 'new mTLS connections/s ≥ bare grpc-js mTLS',
    metric: 'connectionsPerS',
    of: 'ours/grpc-js-mtls',
    op: '>=',
    threshold: 1,
  },
  {
    text: 'idle RSS within 10% of bare grpc-js mTLS',
    metric: 'idleRssMiB',
    of: 'ours/grpc-js-mtls',
    op: '<=',
    threshold: 1.1,
  },
  {
    text: 'unary throughput ≥ connect-node',
    metric: 'unaryC50Rps',
    of: 'ours/connect-node',
    op: '>=',
    threshold: 1,
  },
  {
    text: 'p99 at c=1 ≤ connect-node',
    metric: 'unaryC1P99Ms',
    of: 'ours/connect-node',
    op: '<=',
    threshold: 1,
  },
  {
    text: 'p99 at c=50 ≤ connect-node',
    metric: 'unaryC50P99Ms',
    of: 'ours/connect-node',
    op: '<=',
    threshold: 1,
  },
  {
    text: 'p99 at c=1 under 1 ms on loopback',
    metric: 'unaryC1P99Ms',
    of: 'ours',
    op: '<',
    threshold: 1,
  },
  {
    text: 'start-up to SERVING under 300 ms',
    metric: 'startupMs',
    of: 'ours',
    op: '<',
    threshold: 300,
  },
];

/** Raw samples per server and metric, one slot per round. */
export type Samples = Partial<Record<ServerName, Record<MetricName, (number | null)[]>>>;

export function emptySamples(servers: ServerName[], runs: number): Samples {
  const samples: Samples = {};
  for (const s of servers)
    samples[s] = Object.fromEntries(
      METRIC_NAMES.map((m) => [m, Array<number | null>(runs).fill(null)]),
    ) as Record<MetricName, (number | null)[]>;
  return samples;
}

export function summarizeServers(
  samples: Samples,
  descriptions: Record<ServerName, string>,
  problems: Partial<Record<ServerName, RunProblem[]>>,
): Partial<Record<ServerName, ServerResult>> {
  const out: Partial<Record<ServerName, ServerResult>> = {};
  for (const [name, metrics] of Object.entries(samples) as [
    ServerName,
    Record<MetricName, (number | null)[]>,
  ][]) {
    out[name] = {
      label: SERVER_LABELS[name],
      description: descriptions[name],
      metrics: Object.fromEntries(METRIC_NAMES.map((m) => [m, summarize(metrics[m])])) as Record<
        MetricName,
        Summary
      >,
      problems: problems[name] ?? [],
    };
  }
  return out;
}

export function computeRatios(
  samples: Samples,
): Partial<Record<Comparison, Record<MetricName, Summary>>> {
  const out: Partial<Record<Comparison, Record<MetricName, Summary>>> = {};
  for (const [a, b] of COMPARISONS) {
    const first = samples[a];
    const second = samples[b];
    if (!first || !second) continue;
    // The pair comes from COMPARISONS, so its name is one of Comparison's.
    out[`${a}/${b}` as Comparison] = Object.fromEntries(
      METRIC_NAMES.map((m) => [m, roundRatios(first[m], second[m])]),
    ) as Record<MetricName, Summary>;
  }
  return out;
}

/** Whether `value` is on the goal's side of its line. */
export function meetsTarget(t: Target, value: number): boolean {
  return t.op === '>='
    ? value >= t.threshold
    : t.op === '<='
      ? value <= t.threshold
      : value < t.threshold;
}

export function checkTargets(
  servers: BenchResult['servers'],
  ratios: BenchResult['ratios'],
): TargetResult[] {
  return TARGETS.map((t) => {
    const value =
      t.of === 'ours'
        ? (servers.ours?.metrics[t.metric].median ?? null)
        : (ratios[t.of]?.[t.metric].median ?? null);
    const met = value === null ? null : meetsTarget(t, value);
    // Only beside a figure this run has: a goal against a server not run gets none.
    const noise =
      t.of === 'ours' || value === null ? null : (ratios['ours/ours-twin']?.[t.metric] ?? null);
    return { ...t, value, met, noise };
  });
}

function fmt(value: number | null, digits: number): string {
  if (value === null) return '–';
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

function cell(s: Summary, digits: number): string {
  if (s.median === null) return 'n/a';
  if (s.min === s.max) return fmt(s.median, digits);
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

export function renderMarkdown(r: BenchResult): string {
  const servers = Object.keys(r.servers) as ServerName[];
  const m = r.machine;
  const lines: string[] = [];
  const runs = r.options.runs;
  lines.push(
    `## gRPC server benchmark, ${r.startedAt}${r.smoke ? ' (SMOKE RUN: figures mean nothing)' : ''}`,
  );
  lines.push('');
  lines.push(
    `Machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}; Node ${m.node}, ${m.go}, ghz ${m.ghz}; ` +
      `grpc-js ${m.grpcJs}, connect-node ${m.connectNode}, grpc-go ${m.grpcGo}.`,
  );
  lines.push(
    `CPU: ${r.pinning.note}. Load average when the run began: ${m.loadAverageAtStart.join(', ')}.`,
  );
  lines.push(
    `Each figure: median of ${runs} run${runs === 1 ? '' : 's'} (min–max)` +
      (r.options.seconds === null
        ? ', each run a fixed small count of calls'
        : `, ${r.options.seconds} s each`) +
      '; within every round all servers run back to back, in an order that rotates from round to round.',
  );
  lines.push('');
  lines.push(`| metric | ${servers.map((s) => SERVER_LABELS[s]).join(' | ')} |`);
  lines.push(`| --- | ${servers.map(() => '---:').join(' | ')} |`);
  for (const name of METRIC_NAMES) {
    const def = METRICS[name];
    lines.push(
      `| ${def.label} (${def.unit}) | ${servers.map((s) => cell(r.servers[s]!.metrics[name], def.digits)).join(' | ')} |`,
    );
  }
  const comparisons = Object.keys(r.ratios) as Comparison[];
  if (comparisons.length > 0) {
    lines.push('');
    lines.push(
      'Ratios a/b, taken in each round and then the median (min–max); above 1 means a is higher:',
    );
    lines.push('');
    lines.push(`| metric | ${comparisons.join(' | ')} |`);
    lines.push(`| --- | ${comparisons.map(() => '---:').join(' | ')} |`);
    for (const name of METRIC_NAMES) {
      const def = METRICS[name];
      lines.push(
        `| ${def.label} (${def.better} is better) | ${comparisons.map((c) => cell(r.ratios[c]![name], 2)).join(' | ')} |`,
      );
    }
  }
  lines.push('');
  // With the twin measured, each ratio's noise floor stands beside it.
  const twin = r.targets.some((t) => t.noise !== null);
  lines.push(`| target | figure | met |${twin ? ' noise floor (ours/ours-twin) |' : ''}`);
  lines.push(`| --- | ---: | :---: |${twin ? ' ---: |' : ''}`);
  for (const t of r.targets) {
    const unit = t.of === 'ours' ? ` ${METRICS[t.metric].unit.split(' ')[0]}` : ` (${t.of})`;
    const verdict = t.met === null ? 'not measured' : t.met ? 'yes' : '**NO**';
    const noise = t.noise === null ? '–' : cell(t.noise, 2);
    lines.push(
      `| ${t.text} | ${fmt(t.value, t.of === 'ours' ? METRICS[t.metric].digits : 2)}${t.value === null ? '' : unit} | ${verdict} |${twin ? ` ${noise} |` : ''}`,
    );
  }
  const problems = servers.flatMap((s) => r.servers[s]!.problems.map((p) => ({ s, ...p })));
  if (problems.length > 0) {
    lines.push('');
    lines.push('Runs with failed calls (their figures count successful calls only):');
    for (const p of problems)
      lines.push(
        `- ${SERVER_LABELS[p.s]}, ${p.scenario}, round ${p.round + 1}: ${p.errors} failed, ${p.ok} ok; ${p.firstError ?? ''}`,
      );
  }
  for (const [name, p] of Object.entries(r.profiles ?? {}) as [ServerName, ProfileSummary][]) {
    lines.push('');
    lines.push(
      `CPU profile of ${SERVER_LABELS[name]} (${p.files} file${p.files === 1 ? '' : 's'} in ${p.dir}; idle ${p.idlePercent}%), self time as a share of its busy time:`,
    );
    lines.push(`- by owner: ${p.packages.map((x) => `${x.name} ${x.percent}%`).join(', ')}`);
    lines.push(`- by function: ${p.topFunctions.map((x) => `${x.name} ${x.percent}%`).join('; ')}`);
  }
  for (const note of r.notes) lines.push('', note);
  lines.push('');
  lines.push(`Reproduce: \`${r.command}\``);
  return `${lines.join('\n')}\n`;
}
