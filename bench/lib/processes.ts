// Child processes of the benchmark: every one is tracked from spawn to exit and
// killed when the harness stops, however it stops (done, error, Ctrl-C), so no
// server or load generator outlives a run. Each command has a time limit.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { killProcess } from '../../scripts/lib/server-process.js';
import { within } from '../../scripts/lib/within.js';

const live = new Set<ChildProcess>();
let hooked = false;

/** Kills every child still running; synchronous, so it also works in an 'exit' handler. */
export function killAll(): void {
  for (const child of live)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  live.clear();
}

function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.stderr.write(`bench: stopped by ${signal}; every child process was killed\n`);
      process.exit(130);
    });
  }
}

/** CPU pinning: `taskset -c CORE` in front of a command, or nothing when pinning is off. */
export type Pin = number | null;

export function pinned(pin: Pin, command: string[]): [string, string[]] {
  const full = pin === null ? command : ['taskset', '-c', String(pin), ...command];
  return [full[0]!, full.slice(1)];
}

/** Spawns a tracked child; its stderr is a pipe the caller reads, and so is stdout unless given a file descriptor. */
export function spawnTracked(
  command: string[],
  options: { env: NodeJS.ProcessEnv; cwd?: string; pin?: Pin; stdout?: number },
): ChildProcess {
  hookExit();
  const [file, args] = pinned(options.pin ?? null, command);
  const child = spawn(file, args, {
    env: options.env,
    cwd: options.cwd,
    stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** A profiled Node process writes its profile on exit; this bounds how long that may take. */
const GRACEFUL_STOP_MS = 15_000;

/** Stops a child: at once (SIGKILL), or with SIGINT first so that it can write a CPU profile. */
export async function stopTracked(child: ChildProcess, graceful = false): Promise<void> {
  if (graceful && child.exitCode === null && child.signalCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGINT');
    // Past the bound it is killed below, profile or not.
    await within(exited, GRACEFUL_STOP_MS, 'no exit after SIGINT').catch(() => {});
  }
  await killProcess(child);
  live.delete(child);
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion within `timeoutMs` (killed after that); rejects
 * with an error naming `step` when it cannot start, times out or exits non-zero.
 */
export async function run(
  step: string,
  command: string[],
  options: {
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    pin?: Pin;
    timeoutMs: number;
    allowFailure?: boolean;
  },
): Promise<Finished> {
  const child = spawnTracked(command, {
    env: options.env ?? process.env,
    cwd: options.cwd,
    pin: options.pin ?? null,
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, options.timeoutMs);
  try {
    const [code] = (await Promise.race([
      once(child, 'exit'),
      once(child, 'error').then(([err]) => {
        throw new Error(`${step}: cannot run ${command[0]}: ${(err as Error).message}`, {
          cause: err,
        });
      }),
    ])) as [number | null];
    if (timedOut)
      throw new Error(`${step}: ${command[0]} did not finish within ${options.timeoutMs} ms`);
    if (code !== 0 && !options.allowFailure) {
      const tail = (stderr.trim() || stdout.trim()).split('\n').slice(-15).join('\n');
      throw new Error(`${step}: ${command.join(' ')} exited with ${code}:\n${tail}`);
    }
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** Clock ticks per second of /proc/PID/stat's CPU times (USER_HZ): 100 on every Linux in use. */
const USER_HZ = 100;

/** CPU time (user + system, all threads) a live process has used so far, in seconds; null without /proc. */
export function cpuSeconds(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return null;
  }
}

/** Resident set size of a live process, from /proc, in MiB; null where /proc has no such entry. */
export function rssMiB(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const kib = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kib === undefined ? null : Number(kib) / 1024;
  } catch {
    return null;
  }
}
