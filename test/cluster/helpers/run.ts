// Running commands and daemons for the cluster harness, with a timeout on everything.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { paths } from './layout.js';

/** One line per step, so a long run shows where it is. */
export function progress(message: string): void {
  process.stdout.write(`cluster: ${message}\n`);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Return a failed result instead of throwing. */
  allowFail?: boolean;
}

/** Runs a command to completion (60 s unless told), throwing with its output when it fails. */
export function run(cmd: string, args: string[], opts: RunOptions = {}): RunResult {
  const r = spawnSync(cmd, args, {
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    input: opts.input ?? '',
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  const result = { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (!opts.allowFail && (r.error || r.status !== 0)) {
    const why = r.error ? r.error.message : `exit ${String(r.status)}`;
    throw new Error(
      `${cmd} ${args.join(' ')} failed (${why}): ${result.stderr.trim() || result.stdout.trim()}`,
    );
  }
  return result;
}

/** Like run, asynchronous: for commands that wait on the cluster while tests keep going. */
export function runAsync(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(opts.input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const result = { code, stdout, stderr };
      if (opts.allowFail || code === 0) resolve(result);
      else
        reject(
          new Error(
            `${cmd} ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`}): ${stderr.trim() || stdout.trim()}`,
          ),
        );
    });
  });
}

/**
 * Starts a daemon in its own process group with its output in logs/NAME.log, and records
 * its pid in pids/NAME.pid so a later clean-up finds it even after a crash.
 */
export function startDaemon(name: string, cmd: string, args: string[]): number {
  mkdirSync(paths.logs, { recursive: true });
  mkdirSync(paths.pids, { recursive: true });
  const out = openSync(join(paths.logs, `${name}.log`), 'a');
  const child = spawn(cmd, args, { detached: true, stdio: ['ignore', out, out] });
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  child.unref();
  writeFileSync(join(paths.pids, `${name}.pid`), `${child.pid}\n`);
  return child.pid;
}

/** Polls `check` until it returns a value other than undefined, or fails naming `what`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
  timeoutMs: number,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? `: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
