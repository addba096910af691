// The servers a benchmark compares, each started as its own process (pinned
// to the server core) on 127.0.0.1:0. Each prints a JSON "serving" line with its
// address; the time from spawn to that line is its start-up time. Standard
// output goes to a file, read only for that line: our server logs one line per
// RPC at info, its production level, and that costs what it costs in production.
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Built } from './build.js';
import { spawnTracked, stopTracked, type Pin } from './processes.js';

export const SERVER_NAMES = [
  'ours',
  'ours-twin',
  'ours-no-access-log',
  'ours-no-metrics',
  'grpc-js-mtls',
  'grpc-js-plain',
  'connect-node',
  'grpc-go',
] as const;
export type ServerName = (typeof SERVER_NAMES)[number];

export const SERVER_LABELS: Record<ServerName, string> = {
  ours: 'ours (as shipped)',
  'ours-twin': 'ours again (a second process)',
  'ours-no-access-log': 'ours, ACCESS_LOG=false',
  'ours-no-metrics': 'ours, METRICS_ADDRESS unset',
  'grpc-js-mtls': 'bare grpc-js, mTLS',
  'grpc-js-plain': 'bare grpc-js, no TLS',
  'connect-node': 'connect-node, mTLS',
  'grpc-go': 'grpc-go, mTLS',
};

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

export interface ServerSpec {
  name: ServerName;
  description: string;
  command: string[];
  env: Record<string, string>;
  /** false for the plaintext baseline: its clients dial without TLS. */
  tls: boolean;
  /** Stop with SIGINT first: a profiled Node server writes its profile on exit. */
  gracefulStop?: boolean;
}

/** A small, fixed environment: nothing from the caller's shell (LOG_LEVEL, NODE_OPTIONS…) leaks in. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = { GRPC_ADDRESS: '127.0.0.1:0', SERVER_ID: 'bench' };
  for (const name of ['PATH', 'HOME', 'TMPDIR', 'LANG'])
    if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}

/**
 * The command lines. With `cpuProfDir`, each Node server runs under `node --cpu-prof`
 * writing into its own folder there, is stopped with SIGINT so that the profile is
 * written, and ours skips its shutdown drain delay.
 */
export function serverSpecs(
  built: Built,
  pki: Pki,
  cpuProfDir: string | null = null,
): Record<ServerName, ServerSpec> {
  const tlsEnv = {
    TLS_CERT_FILE: pki.serverCert,
    TLS_KEY_FILE: pki.serverKey,
    TLS_CA_FILE: pki.ca,
  };
  const profiled = cpuProfDir !== null;
  const node = (name: ServerName): string[] =>
    profiled
      ? [process.execPath, '--cpu-prof', `--cpu-prof-dir=${join(cpuProfDir, name)}`]
      : [process.execPath];
  const stopAtOnce: Record<string, string> = profiled
    ? { SHUTDOWN_DRAIN_DELAY_MS: '0', SHUTDOWN_TIMEOUT_MS: '2000' }
    : {};
  const ours: ServerSpec = {
    name: 'ours',
    description:
      'node dist/server.cjs (npm run build output, beside proto/ as in the image): mTLS with rotation, authorization, one JSON log line per RPC (LOG_LEVEL=info), Prometheus metrics on (METRICS_ADDRESS), health',
    command: [...node('ours'), built.ours],
    // The production settings (the manifests'), stated so that the caller's environment cannot
    // change them: metrics on, as k8s/ runs it (bound to loopback here; nothing scrapes it).
    env: {
      ...baseEnv(),
      ...tlsEnv,
      LOG_LEVEL: 'info',
      ACCESS_LOG: 'true',
      METRICS_ADDRESS: '127.0.0.1:0',
      ...stopAtOnce,
    },
    tls: true,
    gracefulStop: profiled,
  };
  // The variants are ours with one thing changed, made from it, so that
  // nothing else can drift apart; each runs as its own process (and profile).
  const variant = (name: ServerName, description: string, env = ours.env): ServerSpec => ({
    ...ours,
    name,
    description,
    command: [...node(name), built.ours],
    env,
  });
  return {
    ours,
    // The control: ours again, in its own process. ours/ours-twin is what the
    // host alone moves a ratio by in this run.
    'ours-twin': variant(
      'ours-twin',
      "the same as ours, a second process started beside it: ours/ours-twin, 1 but for the host, is the run's noise floor",
    ),
    'ours-no-access-log': variant(
      'ours-no-access-log',
      'the same as shipped with the per-RPC access line turned off (ACCESS_LOG=false), metrics still on: what that line costs, by difference',
      { ...ours.env, ACCESS_LOG: 'false' },
    ),
    'ours-no-metrics': variant(
      'ours-no-metrics',
      'the same as shipped but without METRICS_ADDRESS (no per-call metrics, no endpoint): what the metrics cost, by difference',
      Object.fromEntries(Object.entries(ours.env).filter(([k]) => k !== 'METRICS_ADDRESS')),
    ),
    'grpc-js-mtls': {
      name: 'grpc-js-mtls',
      description:
        '@grpc/grpc-js Server, createSsl with a required client certificate, defaults otherwise',
      command: [...node('grpc-js-mtls'), built.grpcJsServer],
      env: { ...baseEnv(), ...tlsEnv },
      tls: true,
      gracefulStop: profiled,
    },
    'grpc-js-plain': {
      name: 'grpc-js-plain',
      description:
        '@grpc/grpc-js Server without TLS (createInsecure): the cost of TLS by difference',
      command: [...node('grpc-js-plain'), built.grpcJsServer, '--insecure-plaintext'],
      env: baseEnv(),
      tls: false,
      gracefulStop: profiled,
    },
    'connect-node': {
      name: 'connect-node',
      description:
        '@connectrpc/connect-node (gRPC protocol only) on node:http2 createSecureServer, client certificate required',
      command: [...node('connect-node'), built.connectServer],
      env: { ...baseEnv(), ...tlsEnv, ECHO_DESCRIPTOR_FILE: built.echoDescriptor },
      tls: true,
      gracefulStop: profiled,
    },
    'grpc-go': {
      name: 'grpc-go',
      description: 'grpc-go with tls.RequireAndVerifyClientCert (bench/go-server): the upper bound',
      command: [built.goServer],
      env: { ...baseEnv(), ...tlsEnv },
      tls: true,
    },
  };
}

export interface RunningServer {
  spec: ServerSpec;
  child: ChildProcess;
  pid: number;
  port: number;
  /** Spawn to "serving" line, as the harness saw it. */
  startupMs: number;
  stop: () => Promise<void>;
}

/** A broken server is found within this; a healthy one serves in well under a second. */
const START_TIMEOUT_MS = 20_000;
/** How often the log file is read for the serving line: the start-up figure's resolution. */
const SERVING_POLL_MS = 2;
/** Enough of a failed server's stderr to show why. */
const STDERR_KEEP = 4096;

/**
 * Starts a server with its standard output going to `logFile`, as a container
 * runtime writes a container's output to its log file; removed when it stops.
 * Not a pipe that this process drains: on a loaded machine this process (on the
 * load core, beside ghz) fell behind, and a server writing to a full pipe waits
 * (seen: our server blocked in that write 29% of a run), which measured the
 * harness, not the server.
 */
export async function startServer(
  spec: ServerSpec,
  pin: Pin,
  cwd: string,
  logFile: string,
): Promise<RunningServer> {
  const started = performance.now();
  const out = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawnTracked(spec.command, { env: spec.env, cwd, pin, stdout: out });
  } finally {
    closeSync(out); // the child has its own
  }
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-STDERR_KEEP)));
  let timer: NodeJS.Timeout | undefined;
  let poll: NodeJS.Timeout | undefined;
  const stop = async (): Promise<void> => {
    await stopTracked(child, spec.gracefulStop === true);
    await rm(logFile, { force: true });
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      poll = setInterval(() => {
        const address = servingAddress(readFileSync(logFile, 'utf8'));
        if (address !== null) resolve(Number(/:(\d+)$/.exec(address)?.[1]));
      }, SERVING_POLL_MS);
      child.once('exit', (code, signal) =>
        reject(
          new Error(`${spec.name} exited (${code ?? signal}) before serving: ${stderr.trim()}`),
        ),
      );
      child.once('error', (err) =>
        reject(new Error(`${spec.name} could not start: ${err.message}`, { cause: err })),
      );
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `${spec.name} did not print "serving" within ${START_TIMEOUT_MS} ms: ${stderr.trim()}`,
            ),
          ),
        START_TIMEOUT_MS,
      );
    });
    const startupMs = performance.now() - started;
    if (!Number.isInteger(port) || port <= 0) throw new Error(`${spec.name} reported no port`);
    return { spec, child, pid: child.pid!, port, startupMs, stop };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
  }
}

/** The address in the first complete "serving" line of `text`, if any. */
export function servingAddress(text: string): string | null {
  for (const line of text.split('\n').slice(0, -1)) {
    if (!line.includes('"serving"')) continue;
    try {
      const parsed = JSON.parse(line) as { msg?: unknown; address?: unknown };
      if (parsed.msg === 'serving' && typeof parsed.address === 'string') return parsed.address;
    } catch {
      // not a JSON line: keep looking
    }
  }
  return null;
}

export function pkiFiles(dir: string): Pki {
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    clientCert: join(dir, 'client.crt'),
    clientKey: join(dir, 'client.key'),
  };
}
