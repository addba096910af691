// The soak: two server processes and the client library calling both
// (round-robin, retries within deadlines) at a steady rate while the leaves are
// re-issued twice, the CA is rolled over in three steps and each server is
// restarted in turn. Every call is recorded with the event it ran under.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { rotateCa } from '../../src/pki/ca-rollover.js';
import {
  defaultBundleOptions,
  generateBundle,
  type BundleOptions,
} from '../../src/pki/cert-bundle.js';
import { EchoClient } from '../../src/client/client.js';
import { LatencyHistogram } from '../../src/client/latency-histogram.js';
import {
  freePort,
  killProcess,
  startServerProcess,
  type LogLine,
  type ServerProcess,
} from '../lib/server-process.js';
import { SecretVolume } from './secret-volume.js';

export interface SoakOptions {
  /** Calls started per second, whatever the latency (an open-loop load). */
  rateHz: number;
  /** Quiet time before, between and after the events, for steady-state figures. */
  steadyMs: number;
  /** The servers' SHUTDOWN_DRAIN_DELAY_MS during the rolling restart. */
  drainDelayMs: number;
  /** Progress lines, one per event. */
  log: (line: string) => void;
}

export interface PhaseFigures {
  phase: string;
  calls: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  durationMs: number;
}

export interface SoakReport {
  calls: number;
  failed: number;
  failures: { phase: string; code: number | string; details: string }[];
  phases: PhaseFigures[];
  perServer: Record<string, number>;
  rssMiB: { start: Record<string, number>; end: Record<string, number> };
  durationMs: number;
}

const RELOADED = 'reloaded TLS credentials; new connections use them';
const run = promisify(execFile);

async function rssMiB(pid: number | undefined): Promise<number> {
  const { stdout } = await run('ps', ['-o', 'rss=', '-p', String(pid)]);
  return Math.round(Number(stdout.trim()) / 102.4) / 10;
}

/** Resolves on the next log line matching `match` that arrives after this call. */
function nextLog(proc: ServerProcess, match: (l: LogLine) => boolean): Promise<LogLine> {
  const seen = proc.lines.filter(match).length;
  return proc.waitForLog((l) => match(l) && proc.lines.filter(match).length > seen);
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const started = performance.now();
  const work = await mkdtemp(join(tmpdir(), 'grpc-mtls-soak-'));
  const pki = join(work, 'pki');
  const bundle: BundleOptions = defaultBundleOptions(pki, { days: 30, caDays: 60 });
  const volumes = {
    a: new SecretVolume(join(work, 'server-a')),
    b: new SecretVolume(join(work, 'server-b')),
    client: new SecretVolume(join(work, 'client')),
  };
  const servers: Record<'a' | 'b', ServerProcess | null> = { a: null, b: null };
  const ports = { a: await freePort(), b: await freePort() };
  let client: EchoClient | null = null;
  let timer: NodeJS.Timeout | null = null;
  try {
    /** Publishes the current files of pki/ to every volume, as re-applying the Secrets would. */
    const publish = async () => {
      const read = (f: string) => readFile(join(pki, f), 'utf8');
      const ca = await read('ca.crt');
      const server = {
        'tls.crt': await read('server.crt'),
        'tls.key': await read('server.key'),
        'ca.crt': ca,
      };
      await Promise.all([
        volumes.a.write(server),
        volumes.b.write(server),
        volumes.client.write({
          'tls.crt': await read('client.crt'),
          'tls.key': await read('client.key'),
          'ca.crt': ca,
        }),
      ]);
    };
    await generateBundle({ ...bundle, newCa: true });
    await publish();

    const startServer = (name: 'a' | 'b') =>
      startServerProcess(
        {
          GRPC_ADDRESS: `127.0.0.1:${ports[name]}`,
          SERVER_ID: `server-${name}`,
          TLS_CERT_FILE: volumes[name].file('tls.crt'),
          TLS_KEY_FILE: volumes[name].file('tls.key'),
          TLS_CA_FILE: volumes[name].file('ca.crt'),
          TLS_RELOAD_INTERVAL_MS: '200',
          SHUTDOWN_DRAIN_DELAY_MS: String(opts.drainDelayMs),
          SHUTDOWN_TIMEOUT_MS: '10000',
        },
        [],
        (l) => l.msg !== 'rpc',
      );
    [servers.a, servers.b] = await Promise.all([startServer('a'), startServer('b')]);

    let clientReloads = 0;
    let clientReloadWaiter: (() => void) | null = null;
    client = new EchoClient({
      target: `ipv4:127.0.0.1:${ports.a},127.0.0.1:${ports.b}`,
      serverName: 'localhost',
      deadlineMs: 5000,
      reloadIntervalMs: 200,
      caFile: volumes.client.file('ca.crt'),
      certFile: volumes.client.file('tls.crt'),
      keyFile: volumes.client.file('tls.key'),
      tlsLog: {
        info: () => {
          clientReloads++;
          clientReloadWaiter?.();
        },
        error: (obj) => opts.log(`client refused new TLS files: ${JSON.stringify(obj)}`),
      },
    });
    const clientReloaded = (after: number) =>
      new Promise<void>((resolve) => {
        const check = () => (clientReloads > after ? resolve() : undefined);
        clientReloadWaiter = check;
        check();
      });
    await clientReloaded(0);
    await client.echo('warm-up');

    const rssStart = {
      'server-a': await rssMiB(servers.a.child.pid),
      'server-b': await rssMiB(servers.b.child.pid),
      client: Math.round(process.memoryUsage().rss / 104857.6) / 10,
    };
    const records: {
      phase: string;
      ms: number;
      ok: boolean;
      server?: string;
      code?: number | string;
      details?: string;
    }[] = [];
    const phases: { phase: string; startedAt: number; endedAt: number }[] = [];
    let phase = 'steady';
    const inFlight = new Set<Promise<void>>();
    const c = client;
    timer = setInterval(() => {
      const at = phase;
      const t0 = performance.now();
      const call = c.echo(`soak ${records.length}`).then(
        (res) =>
          void records.push({
            phase: at,
            ms: performance.now() - t0,
            ok: true,
            server: res.server_id,
          }),
        (err: { code?: number; details?: string; message?: string }) =>
          void records.push({
            phase: at,
            ms: performance.now() - t0,
            ok: false,
            code: err.code ?? 'error',
            details: err.details ?? err.message ?? '',
          }),
      );
      inFlight.add(call);
      void call.finally(() => inFlight.delete(call));
    }, 1000 / opts.rateHz);

    const quiet = () => new Promise((r) => setTimeout(r, opts.steadyMs));
    const event = async (name: string, action: () => Promise<void>) => {
      phase = name;
      const startedAt = performance.now();
      opts.log(`${name} ...`);
      await action();
      phases.push({ phase: name, startedAt, endedAt: performance.now() });
      phase = 'steady';
    };
    /** Applies new files everywhere and waits until both servers and the client have reloaded them. */
    const rotate = async (change: () => Promise<unknown>) => {
      const a = nextLog(servers.a!, (l) => l.msg === RELOADED);
      const b = nextLog(servers.b!, (l) => l.msg === RELOADED);
      const before = clientReloads;
      await change();
      await publish();
      await Promise.all([a, b, clientReloaded(before)]);
    };
    const restart = async (name: 'a' | 'b') => {
      const proc = servers[name]!;
      proc.child.kill('SIGTERM');
      const code = await proc.exited;
      if (code !== 0) throw new Error(`server-${name} exited with ${code} after SIGTERM`);
      servers[name] = await startServer(name);
    };

    await quiet();
    await event('leaf re-issue 1', () => rotate(() => generateBundle(bundle)));
    await quiet();
    await event('leaf re-issue 2', () => rotate(() => generateBundle(bundle)));
    await quiet();
    for (const step of [1, 2, 3]) {
      await event(`CA rollover step ${step}/3`, () => rotate(() => rotateCa(bundle)));
      await quiet();
    }
    await event('rolling restart server-a', () => restart('a'));
    await quiet();
    await event('rolling restart server-b', () => restart('b'));
    await quiet();
    clearInterval(timer);
    timer = null;
    await Promise.all(inFlight);

    const figures = (name: string, rows: typeof records, durationMs: number): PhaseFigures => {
      const latency = new LatencyHistogram();
      for (const r of rows) latency.record(r.ms);
      return {
        phase: name,
        calls: rows.length,
        failed: rows.filter((r) => !r.ok).length,
        p50Ms: latency.percentileMs(50),
        p99Ms: latency.percentileMs(99),
        durationMs: Math.round(durationMs),
      };
    };
    const perServer: Record<string, number> = {};
    for (const r of records) if (r.server) perServer[r.server] = (perServer[r.server] ?? 0) + 1;
    return {
      calls: records.length,
      failed: records.filter((r) => !r.ok).length,
      failures: records
        .filter((r) => !r.ok)
        .map((r) => ({ phase: r.phase, code: r.code ?? '', details: r.details ?? '' })),
      phases: [
        figures(
          'steady state',
          records.filter((r) => r.phase === 'steady'),
          0,
        ),
        ...phases.map((p) =>
          figures(
            p.phase,
            records.filter((r) => r.phase === p.phase),
            p.endedAt - p.startedAt,
          ),
        ),
      ],
      perServer,
      rssMiB: {
        start: rssStart,
        end: {
          'server-a': await rssMiB(servers.a.child.pid),
          'server-b': await rssMiB(servers.b.child.pid),
          client: Math.round(process.memoryUsage().rss / 104857.6) / 10,
        },
      },
      durationMs: Math.round(performance.now() - started),
    };
  } finally {
    if (timer) clearInterval(timer);
    client?.close();
    for (const s of [servers.a, servers.b]) if (s) await killProcess(s.child);
    await rm(work, { recursive: true, force: true });
  }
}
