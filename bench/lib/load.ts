// The load generators, both pinned to the load core and aimed at 127.0.0.1 only:
// ghz for calls on long-lived connections, and bench/go-server/newconns for calls
// that each open a fresh connection (ghz keeps its connections for the whole run).
// Every run stops by itself on a time or count limit, and is killed if it overruns.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GHZ, PROTO_FILE, PROTO_ROOT } from './paths.js';
import { run, type Pin } from './processes.js';
import type { Pki } from './servers.js';

/** Where to send load: always loopback. */
export interface Target {
  port: number;
  /** null dials without TLS (the plaintext baseline). */
  pki: Pki | null;
}

/** A run is bounded by time (`seconds`) or by count (`total`), never open-ended. */
export type Limit = { seconds: number } | { total: number };

export interface GhzRun {
  method: 'Echo' | 'ServerStream';
  data: Record<string, unknown>;
  concurrency: number;
  connections: number;
  limit: Limit;
}

export interface LoadResult {
  ok: number;
  errors: number;
  seconds: number;
  /** Successful calls per second. */
  perSecond: number;
  p50Ms: number | null;
  p99Ms: number | null;
  firstError: string | null;
}

/** What a run may take beyond its own limit (ghz start-up, report) before it is killed. */
const OVERRUN_MS = 30_000;
/** A count-bounded run must finish within this, or it is killed. */
const COUNT_RUN_MS = 60_000;
/** No single call of a benchmark takes this long unless the server is broken. */
const CALL_TIMEOUT = '10s';

interface GhzReport {
  total: number;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number>;
  latencyDistribution?: { percentage: number; latency: number }[] | null;
}

export async function runGhz(target: Target, spec: GhzRun, pin: Pin): Promise<LoadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-ghz-'));
  const out = join(dir, 'report.json');
  const limitArgs =
    'seconds' in spec.limit
      ? // "ignore": calls cut off by the end of the run are left out, not counted as errors.
        ['-z', `${Math.round(spec.limit.seconds * 1000)}ms`, '--duration-stop', 'ignore']
      : ['-n', String(spec.limit.total)];
  const tlsArgs = target.pki
    ? ['--cacert', target.pki.ca, '--cert', target.pki.clientCert, '--key', target.pki.clientKey]
    : ['--insecure'];
  const timeoutMs =
    ('seconds' in spec.limit ? spec.limit.seconds * 1000 : COUNT_RUN_MS) + OVERRUN_MS;
  try {
    await run(
      `ghz ${spec.method} c=${spec.concurrency}`,
      [
        GHZ,
        '--proto',
        PROTO_FILE,
        '--import-paths',
        PROTO_ROOT,
        '--call',
        `echo.v1.EchoService.${spec.method}`,
        '-d',
        JSON.stringify(spec.data),
        '-c',
        String(spec.concurrency),
        '--connections',
        String(spec.connections),
        '-t',
        CALL_TIMEOUT,
        // The same request every time: without these ghz renders the data as a template
        // per call, which costs it more CPU than the servers spend answering.
        '--disable-template-functions',
        '--disable-template-data',
        ...limitArgs,
        ...tlsArgs,
        '-O',
        'json',
        '-o',
        out,
        `127.0.0.1:${target.port}`,
      ],
      { pin, timeoutMs },
    );
    const report = JSON.parse(await readFile(out, 'utf8')) as GhzReport;
    const ok = report.statusCodeDistribution?.OK ?? 0;
    const errors =
      Object.values(report.statusCodeDistribution ?? {}).reduce((a, b) => a + b, 0) - ok;
    const seconds = report.total / 1e9;
    const at = (p: number) => {
      const ns = report.latencyDistribution?.find((d) => d.percentage === p)?.latency;
      return ns === undefined ? null : ns / 1e6;
    };
    return {
      ok,
      errors,
      seconds,
      perSecond: ok / seconds,
      p50Ms: at(50),
      p99Ms: at(99),
      firstError: Object.keys(report.errorDistribution ?? {})[0] ?? null,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface NewConnsRun {
  concurrency: number;
  seconds: number;
  maxCalls: number;
}

export async function runNewConns(
  binary: string,
  target: Target,
  spec: NewConnsRun,
  pin: Pin,
): Promise<LoadResult> {
  const tlsArgs = target.pki
    ? ['-cacert', target.pki.ca, '-cert', target.pki.clientCert, '-key', target.pki.clientKey]
    : [];
  // It exits 1 when no call succeeded, still with its report: the caller names the first error.
  const finished = await run(
    `newconns c=${spec.concurrency}`,
    [
      binary,
      '-target',
      `127.0.0.1:${target.port}`,
      '-concurrency',
      String(spec.concurrency),
      '-duration',
      `${Math.round(spec.seconds * 1000)}ms`,
      '-max',
      String(spec.maxCalls),
      '-timeout',
      CALL_TIMEOUT,
      ...tlsArgs,
    ],
    { pin, timeoutMs: spec.seconds * 1000 + OVERRUN_MS, allowFailure: true },
  );
  const { code, stdout, stderr } = finished;
  let r: NewConnsOutput;
  try {
    r = JSON.parse(stdout) as NewConnsOutput;
  } catch (err) {
    throw new Error(`newconns exited with ${code} and no report: ${stderr.trim()}`, {
      cause: err,
    });
  }
  return {
    ok: r.calls,
    errors: r.errors,
    seconds: r.seconds,
    perSecond: r.perSecond,
    p50Ms: r.calls > 0 ? r.p50Ms : null,
    p99Ms: r.calls > 0 ? r.p99Ms : null,
    firstError: r.firstError ?? null,
  };
}

interface NewConnsOutput {
  calls: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  firstError?: string;
}
