// `npm run bench` options, checked before any work: a bad value or a
// contradiction stops the run with a message naming the option. Parsed and
// rendered in --help by the same table code as every other command
// (src/shared/options.ts).
import { UsageError, boolean, formatHelp, parseSettings } from '../../src/shared/options.js';
import { SCENARIO_NAMES, type ScenarioName } from './scenarios.js';
import { SERVER_NAMES, type ServerName } from './servers.js';

export { UsageError };

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

/** Defaults: about 15 minutes for everything on two cores. Ten seconds settles JIT and GC. */
const DEFAULTS = { seconds: 10, runs: 5, warmupSeconds: 2 } as const;

function number(
  name: string,
  range: { min: number; max: number; integer?: boolean },
): (raw: string) => number | null {
  return (raw) => {
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
  };
}

function list<T extends string>(name: string, allowed: readonly T[]): (raw: string) => T[] | null {
  return (raw) => {
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
  };
}

/** Every option; null defaults mean "not given", so that contradictions can be named. */
const settings = {
  duration: {
    flag: 'duration',
    valueName: 'SECONDS',
    help: `length of each measured run, 1 to 120 (default ${DEFAULTS.seconds})`,
    default: null,
    parse: number('duration', { min: 1, max: 120 }),
  },
  runs: {
    flag: 'runs',
    valueName: 'N',
    help: `rounds; every figure is the median over them, 1 to 20 (default ${DEFAULTS.runs})`,
    default: null,
    parse: number('runs', { min: 1, max: 20, integer: true }),
  },
  warmup: {
    flag: 'warmup',
    valueName: 'SECONDS',
    help: `unmeasured load on each server after it starts, 0 to 30 (default ${DEFAULTS.warmupSeconds})`,
    default: null,
    parse: number('warmup', { min: 0, max: 30 }),
  },
  scenarios: {
    flag: 'scenarios',
    valueName: 'LIST',
    help: `comma-separated, from ${SCENARIO_NAMES.join(', ')} (default all)`,
    default: null,
    parse: list('scenarios', SCENARIO_NAMES),
  },
  servers: {
    flag: 'servers',
    valueName: 'LIST',
    help: `comma-separated, from ${SERVER_NAMES.join(', ')} (default all)`,
    default: null,
    parse: list('servers', SERVER_NAMES),
  },
  out: {
    flag: 'out',
    valueName: 'FILE',
    help: 'where to write the JSON (default bench/results/<date>.json; .md beside it)',
    default: null,
    parse: (t: string): string | null => t,
  },
  noPin: {
    flag: 'no-pin',
    kind: 'boolean',
    help: 'do not pin server and load generator to separate cores',
    default: false,
    parse: boolean,
  },
  cpuProf: {
    flag: 'cpu-prof',
    kind: 'boolean',
    help: 'profile the Node servers (node --cpu-prof) and add where their CPU goes; profiling slows them, so compare figures from runs without it',
    default: false,
    parse: boolean,
  },
  smoke: {
    flag: 'smoke',
    kind: 'boolean',
    help: 'one round of a few calls per scenario: checks the harness, measures nothing',
    default: false,
    parse: boolean,
  },
  buildOnly: {
    flag: 'build-only',
    kind: 'boolean',
    help: 'build everything the benchmark runs, then stop',
    default: false,
    parse: boolean,
  },
} as const;

export const USAGE = formatHelp(
  `Usage: npm run bench -- [options]

Builds our server and four others (bare grpc-js with and without TLS, connect-node,
grpc-go), starts each in its own process and drives it with ghz on 127.0.0.1.
Writes bench/results/<date>.json and .md and prints the Markdown table.`,
  settings,
);

export function parseBenchOptions(argv: string[]): BenchOptions {
  const { values, positionals, help } = parseSettings(settings, argv, {});
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}; see --help`);
  const { smoke } = values;
  if (smoke) {
    const timed = (['duration', 'runs', 'warmup'] as const).filter((o) => values[o] !== null);
    if (timed.length > 0)
      throw new UsageError(`--smoke sets its own counts; drop --${timed.join(', --')}`);
  }
  if (values.buildOnly) {
    const other: string[] = (
      ['duration', 'runs', 'warmup', 'scenarios', 'servers', 'out'] as const
    ).filter((o) => values[o] !== null);
    if (values.cpuProf) other.push('cpu-prof');
    if (other.length > 0 || smoke)
      throw new UsageError(
        `--build-only runs nothing; drop --${[...other, ...(smoke ? ['smoke'] : [])].join(', --')}`,
      );
  }
  return {
    seconds: smoke ? null : (values.duration ?? DEFAULTS.seconds),
    runs: smoke ? 1 : (values.runs ?? DEFAULTS.runs),
    warmupSeconds: smoke ? 0 : (values.warmup ?? DEFAULTS.warmupSeconds),
    scenarios: values.scenarios ?? [...SCENARIO_NAMES],
    servers: values.servers ?? [...SERVER_NAMES],
    out: values.out,
    pin: !values.noPin,
    cpuProf: values.cpuProf,
    smoke,
    buildOnly: values.buildOnly,
    help,
  };
}
