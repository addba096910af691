// Running the server as a child process and following its JSON log: used by
// the demo, the tests and the benchmarks, which all need a real process
// (signals, exit codes) rather than an in-process server.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PROJECT_ROOT } from '../../src/shared/proto.js';
import { LogLines, type LogLine } from './log-lines.js';
import { within } from './within.js';

export type { LogLine } from './log-lines.js';

/** A healthy server logs "serving" in well under a second; this only bounds a broken one. */
const START_TIMEOUT_MS = 20_000;

export interface ServerProcess {
  child: ChildProcess;
  /** The TCP port the server reported in its "serving" line. */
  port: number;
  lines: LogLine[];
  stderr: () => string;
  exited: Promise<number | null>;
  waitForLog: (match: (l: LogLine) => boolean) => Promise<LogLine>;
}

/** Spawns one of our TypeScript entry points with tsx, from the project root. */
export function spawnTs(script: string, args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, script), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, NODE_OPTIONS: '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Follows a child's JSON log lines on standard output. */
export function followLog(
  child: ChildProcess,
  /** Which lines to remember; a soak drops the per-RPC ones so memory stays flat. */
  keep: (l: LogLine) => boolean = () => true,
): Pick<ServerProcess, 'lines' | 'waitForLog'> {
  const log = new LogLines(keep);
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return; // not a log line
    }
    log.push(line);
  });
  return { lines: log.lines, waitForLog: (match) => log.waitFor(match) };
}

/**
 * Starts `src/bin/server.ts` (on 127.0.0.1:0 unless GRPC_ADDRESS says otherwise)
 * and resolves once it logs "serving"; rejects with its stderr if it exits first.
 */
export async function startServerProcess(
  env: Record<string, string>,
  args: string[] = [],
  keep?: (l: LogLine) => boolean,
): Promise<ServerProcess> {
  const child = spawnTs('src/bin/server.ts', args, { GRPC_ADDRESS: '127.0.0.1:0', ...env });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  const { lines, waitForLog } = followLog(child, keep);
  try {
    const serving = await within(
      Promise.race([
        waitForLog((l) => l.msg === 'serving'),
        exited.then((code): never => {
          throw new Error(`server exited with ${code} before serving: ${stderr.trim()}`);
        }),
      ]),
      START_TIMEOUT_MS,
      () =>
        `server did not log "serving" within ${START_TIMEOUT_MS} ms (LOG_LEVEL must include info): ${stderr.trim()}`,
    );
    const port = Number(/:(\d+)$/.exec(String(serving.address))?.[1]);
    return { child, port, lines, stderr: () => stderr, exited, waitForLog };
  } catch (err) {
    await killProcess(child);
    throw err;
  }
}

/** Stops a child for good, also when its owner failed half-way. */
export async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGKILL');
  await gone;
}

/** A loopback port nothing listens on now: bound, then released (for servers that must reuse a port). */
export async function freePort(): Promise<number> {
  const s = createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const { port } = s.address() as { port: number };
  s.close();
  await once(s, 'close');
  return port;
}
