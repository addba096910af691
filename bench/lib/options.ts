// `npm run bench` options, checked before any work: a bad value or a
// contradiction stops the run with a message naming the option.
import { parseArgs } from 'node:util';
import { SCENARIO_NAMES, type ScenarioName } from './scenarios.js';
import { SERVER_NAMES, type ServerName } from './servers.js';

export interface BenchOptions {
  /** Seconds per measured run; null in a smoke run, which sends small fixed counts. */
  seconds: number | null;
  runs: number;
  warmupSeconds: number;
  scenarios: ScenarioName[];
  servers: ServerName[];
  out: string | null;
  pin: boolean;
  /** Run the Node servers under `node --cpu-prof` and summarize where their time goes. */
  cpuProf: boolean;
  smoke: boolean;
  buildOnly: boolean;
  help: boolean;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

/** Defaults: about 15 minutes for everything on two cores. Ten seconds settles JIT and GC. */
const DEFAULTS = { seconds: 10, runs: 5, warmupSeconds: 2 } as const;

export const USAGE = `Usage: npm run bench -- [options]

Builds our server and four others (bare grpc-js with and without TLS, connect-node,
grpc-go), starts each in its own process and drives it with ghz on 127.0.0.1.
Writes bench/results/<date>.json and .md and prints the Markdown table.

Options:
  --duration SECONDS   length of each measured run, 1 to 120 (default ${DEFAULTS.seconds})
  --runs N             rounds; every figure is the median over them, 1 to 20 (default ${DEFAULTS.runs})
  --warmup SECONDS     unmeasured load on each server after it starts, 0 to 30 (default ${DEFAULTS.warmupSeconds})
  --scenarios LIST     comma-separated, from ${SCENARIO_NAMES.join(', ')} (default all)
  --servers LIST       comma-separated, from ${SERVER_NAMES.join(', ')} (default all)
  --out FILE           where to write the JSON (default bench/results/<date>.json; .md beside it)
  --no-pin             do not pin server and load generator to separate cores
  --cpu-prof           profile the Node servers (node --cpu-prof) and add where their CPU goes;
                       profiling slows them, so compare figures from runs without it
  --smoke              one round of a few calls per scenario: checks the harness, measures nothing
  --build-only         build everything the benchmark runs, then stop
  --help               show this help
`;

function number(
  name: string,
  raw: string | undefined,
  range: { min: number; max: number; integer?: boolean },
  fallback: number,
): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const kind = range.integer ? 'a whole number' : 'a number';
  if (
    raw.trim() === '' ||
    !Number.isFinite(value) ||
    (range.integer === true && !Number.isInteger(value)) ||
    value < range.min ||
    value > range.max
  )
    throw new UsageError(
      `--${name} must be ${kind} from ${range.min} to ${range.max} (got ${JSON.stringify(raw)})`,
    );
  return value;
}

function list<T extends string>(name: string, raw: string | undefined, allowed: readonly T[]): T[] {
  if (raw === undefined) return [...allowed];
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const unknown = items.filter((i) => !(allowed as readonly string[]).includes(i));
  if (unknown.length > 0)
    throw new UsageError(
      `--${name}: unknown ${JSON.stringify(unknown[0])}; choose from ${allowed.join(', ')}`,
    );
  if (items.length === 0)
    throw new UsageError(`--${name} names nothing; choose from ${allowed.join(', ')}`);
  // In the canonical order, whatever order they were given in.
  return allowed.filter((a) => items.includes(a));
}

export function parseBenchOptions(argv: string[]): BenchOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        duration: { type: 'string' },
        runs: { type: 'string' },
        warmup: { type: 'string' },
        scenarios: { type: 'string' },
        servers: { type: 'string' },
        out: { type: 'string' },
        'no-pin': { type: 'boolean', default: false },
        'cpu-prof': { type: 'boolean', default: false },
        smoke: { type: 'boolean', default: false },
        'build-only': { type: 'boolean', default: false },
        help: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}; see --help`);
  }
  const smoke = values.smoke;
  if (smoke) {
    const timed = (['duration', 'runs', 'warmup'] as const).filter((o) => values[o] !== undefined);
    if (timed.length > 0)
      throw new UsageError(`--smoke sets its own counts; drop --${timed.join(', --')}`);
  }
  if (values['build-only']) {
    const other: string[] = (
      ['duration', 'runs', 'warmup', 'scenarios', 'servers', 'out'] as const
    ).filter((o) => values[o] !== undefined);
    if (values['cpu-prof']) other.push('cpu-prof');
    if (other.length > 0 || smoke)
      throw new UsageError(
        `--build-only runs nothing; drop --${[...other, ...(smoke ? ['smoke'] : [])].join(', --')}`,
      );
  }
  return {
    seconds: smoke
      ? null
      : number('duration', values.duration, { min: 1, max: 120 }, DEFAULTS.seconds),
    runs: smoke
      ? 1
      : number('runs', values.runs, { min: 1, max: 20, integer: true }, DEFAULTS.runs),
    warmupSeconds: smoke
      ? 0
      : number('warmup', values.warmup, { min: 0, max: 30 }, DEFAULTS.warmupSeconds),
    scenarios: list('scenarios', values.scenarios, SCENARIO_NAMES),
    servers: list('servers', values.servers, SERVER_NAMES),
    out: values.out ?? null,
    pin: !values['no-pin'],
    cpuProf: values['cpu-prof'],
    smoke,
    buildOnly: values['build-only'],
    help: values.help,
  };
}
