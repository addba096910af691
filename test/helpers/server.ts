// Servers for tests: in-process (fast, covered) or as a real child process
// (exit codes, signals). Both bind 127.0.0.1:0 and report the real port.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino, type Logger } from 'pino';
import { EchoClient, type ClientOptions } from '../../src/client.js';
import { parseServerConfig, type ServerConfig } from '../../src/server-config.js';
import { EchoServer } from '../../src/server.js';
import { PROJECT_ROOT } from '../../src/proto.js';

export function pkiEnv(dir: string): Record<string, string> {
  return {
    TLS_CERT_FILE: join(dir, 'server.crt'),
    TLS_KEY_FILE: join(dir, 'server.key'),
    TLS_CA_FILE: join(dir, 'ca.crt'),
  };
}

/** Log lines kept in memory so tests can wait for and match them. */
export class LogCapture {
  readonly lines: Record<string, unknown>[] = [];
  private waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  readonly logger: Logger;

  constructor(level = 'info') {
    this.logger = pino(
      { level },
      { write: (s: string) => this.push(JSON.parse(s) as Record<string, unknown>) },
    );
  }

  push(line: Record<string, unknown>): void {
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
  }

  waitFor(match: (l: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    const found = this.lines.find(match);
    if (found) return Promise.resolve(found);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
}

export async function startInProcess(
  pkiDir: string,
  env: Record<string, string> = {},
): Promise<{ server: EchoServer; port: number; config: ServerConfig; logs: LogCapture }> {
  const { config } = parseServerConfig([], {
    GRPC_ADDRESS: '127.0.0.1:0',
    SHUTDOWN_DRAIN_DELAY_MS: '0',
    SHUTDOWN_TIMEOUT_MS: '2000',
    SERVER_ID: 'test-server',
    ...pkiEnv(pkiDir),
    ...env,
  });
  const logs = new LogCapture(config.logLevel);
  const server = await EchoServer.create(config, logs.logger);
  const { port } = await server.start();
  return { server, port, config, logs };
}

export function clientFor(
  pkiDir: string,
  target: string,
  who: 'client' | 'probe' = 'client',
  extra: Partial<ClientOptions> = {},
): EchoClient {
  return new EchoClient({
    target,
    caFile: join(pkiDir, 'ca.crt'),
    certFile: join(pkiDir, `${who}.crt`),
    keyFile: join(pkiDir, `${who}.key`),
    deadlineMs: 5000,
    ...extra,
  });
}

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  lines: Record<string, unknown>[];
  stderr: () => string;
  exited: Promise<number | null>;
  waitForLog: (match: (l: Record<string, unknown>) => boolean) => Promise<Record<string, unknown>>;
}

const TSX = ['--import', 'tsx'];

/** Runs a command of ours as a child process with tsx, from the project root. */
export function spawnTs(script: string, args: string[], env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, [...TSX, join(PROJECT_ROOT, script), ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env, NODE_OPTIONS: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Starts `src/bin/server.ts`; resolves once it logs "serving" (or rejects with its stderr if it exits). */
export async function startServerProcess(
  env: Record<string, string>,
  args: string[] = [],
): Promise<ServerProcess> {
  const child = spawnTs('src/bin/server.ts', args, { GRPC_ADDRESS: '127.0.0.1:0', ...env });
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  let waiters: {
    match: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }[] = [];
  createInterface({ input: child.stdout! }).on('line', (text) => {
    try {
      const line = JSON.parse(text) as Record<string, unknown>;
      lines.push(line);
      waiters = waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
    } catch {
      /* not a log line */
    }
  });
  const waitForLog = (match: (l: Record<string, unknown>) => boolean) => {
    const found = lines.find(match);
    return found
      ? Promise.resolve(found)
      : new Promise<Record<string, unknown>>((resolve) => waiters.push({ match, resolve }));
  };
  const serving = await Promise.race([
    waitForLog((l) => l.msg === 'serving'),
    exited.then((code) => {
      throw new Error(`server exited with ${code} before serving: ${stderr}`);
    }),
  ]);
  const port = Number(/:(\d+)$/.exec(String(serving.address))?.[1]);
  return { child, port, lines, stderr: () => stderr, exited, waitForLog };
}

/** Stops a child for good, also when a test failed half-way. */
export async function killProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGKILL');
  await gone;
}

/** Runs a command to completion, collecting its output. */
export async function runTs(
  script: string,
  args: string[],
  env: Record<string, string> = {},
  input?: string,
) {
  const child = spawnTs(script, args, env);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin?.end(input ?? '');
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}
