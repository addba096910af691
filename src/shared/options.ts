// Settings from environment variables with matching command-line flags.
//
// Every command declares its settings once (flag, variable, default, help,
// parser); this module parses them, refuses bad values with a message naming
// the setting and the fix, and renders `--help` from the same table.
import { parseArgs } from 'node:util';
import { KitError } from './errors.js';
import { USAGE } from './exit-codes.js';

/** A setting a person got wrong: the message names it and says what would be accepted. */
export class UsageError extends KitError {
  override name = 'UsageError';
  readonly exitCode = USAGE;
}

export interface Setting<T> {
  /** Long flag without dashes, e.g. `ca-days`. */
  flag: string;
  /** Environment variable, when the setting may come from the environment. */
  env?: string;
  help: string;
  default: T;
  /** Turns the text into a value or throws a plain Error saying what is accepted (or a UsageError, taken as it is). */
  parse: (text: string) => T;
  /** Boolean flags take no value (`--new-ca`); the variable accepts true/false/1/0. */
  kind?: 'value' | 'boolean' | 'list';
  valueName?: string;
}

export type Settings = Record<string, Setting<unknown>>;
/** The parsed type of each setting: what its parser returns (a list of it for repeatable flags). */
export type Values<S extends Settings> = {
  [K in keyof S]: S[K] extends { kind: 'boolean' }
    ? boolean
    : S[K] extends { kind: 'list' }
      ? ReturnType<S[K]['parse']>[]
      : ReturnType<S[K]['parse']>;
};

export const text = (t: string): string => t;

export function integer(min: number, max: number): (t: string) => number {
  return (t) => {
    if (!/^\d+$/.test(t.trim())) throw new Error(`must be a whole number from ${min} to ${max}`);
    const n = Number(t);
    if (n < min || n > max) throw new Error(`must be from ${min} to ${max}`);
    return n;
  };
}

export function oneOf<T extends string | number>(choices: readonly T[]): (t: string) => T {
  return (t) => {
    const found = choices.find((c) => String(c) === t.trim());
    if (found === undefined) throw new Error(`must be one of ${choices.join(', ')}`);
    return found;
  };
}

export function boolean(t: string): boolean {
  const v = t.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(v)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(v)) return false;
  throw new Error('must be true or false');
}

function describe(setting: Setting<unknown>): string {
  return setting.env ? `--${setting.flag} (${setting.env})` : `--${setting.flag}`;
}

function parseOne<T>(setting: Setting<T>, raw: string, from: string): T {
  try {
    return setting.parse(raw);
  } catch (err) {
    // A parser that names the setting itself (as `npm run bench` does) is taken at its word.
    if (err instanceof UsageError) throw err;
    throw new UsageError(
      `invalid ${describe(setting)} ${JSON.stringify(raw)} from ${from}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/**
 * Flags win over variables, variables over defaults. Unknown flags are errors:
 * a misspelt security setting must never be silently ignored.
 */
export function parseSettings<S extends Settings>(
  settings: S,
  argv: string[],
  env: NodeJS.ProcessEnv,
): { values: Values<S>; positionals: string[]; help: boolean } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {
    help: { type: 'boolean' },
  };
  for (const s of Object.values(settings)) {
    options[s.flag] =
      s.kind === 'boolean' ? { type: 'boolean' } : { type: 'string', multiple: s.kind === 'list' };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const option = /'(-[^']*)'/.exec(e.message)?.[1];
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option)
      throw new UsageError(`unknown option ${option}; see --help`, { cause: err });
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option)
      throw new UsageError(`option ${option} needs a value; see --help`, { cause: err });
    throw new UsageError(`${e.message}; see --help`, { cause: err });
  }
  const values: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings)) {
    const flagValue = parsed.values[s.flag];
    const envValue = s.env !== undefined ? env[s.env] : undefined;
    if (flagValue !== undefined) {
      if (typeof flagValue === 'boolean') values[key] = flagValue;
      else if (Array.isArray(flagValue))
        values[key] = flagValue.map((v) => parseOne(s, String(v), `the command line`));
      else values[key] = parseOne(s, flagValue, 'the command line');
    } else if (envValue !== undefined && envValue !== '') {
      values[key] =
        s.kind === 'list'
          ? envValue.split(',').map((v) => parseOne(s, v.trim(), `the environment`))
          : s.kind === 'boolean'
            ? parseOne({ ...s, parse: boolean }, envValue, 'the environment')
            : parseOne(s, envValue, 'the environment');
    } else {
      values[key] = s.default;
    }
  }
  return {
    values: values as Values<S>,
    positionals: parsed.positionals,
    help: parsed.values.help === true,
  };
}

/** `--help` text rendered from the same table the parser uses, so the two never disagree. */
export function formatHelp(usage: string, settings: Settings, footer = ''): string {
  const rows = Object.values(settings).map((s) => {
    const left =
      `  --${s.flag}` +
      (s.kind === 'boolean' ? '' : ` ${s.valueName ?? 'VALUE'}`) +
      (s.env ? `  [${s.env}]` : '');
    // A null default means "not given": the help text says what applies then.
    const def =
      s.kind === 'boolean' || s.default === null ? '' : ` (default: ${formatDefault(s.default)})`;
    return { left, right: `${s.help}${def}` };
  });
  const width = Math.min(56, Math.max(...rows.map((r) => r.left.length)) + 2);
  const lines = rows.map((r) =>
    r.left.length + 1 > width
      ? `${r.left}\n${' '.repeat(width)}${r.right}`
      : `${r.left.padEnd(width)}${r.right}`,
  );
  return `${usage}\n\nOptions (flag, then environment variable):\n${lines.join('\n')}\n  --help${' '.repeat(width - 8)}show this help\n${footer}`;
}

function formatDefault(v: unknown): string {
  if (Array.isArray(v)) return v.length === 0 ? 'none' : v.join(',');
  if (v === '') return 'none';
  return String(v);
}
