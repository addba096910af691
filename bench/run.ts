// `npm run bench`: builds, starts each server in its own process, drives it with
// ghz (and the fresh-connection load) on 127.0.0.1, and writes
// bench/results/<date>.json plus a Markdown table. See bench/README.md.
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { defaultBundleOptions, generateBundle } from '../src/pki/cert-bundle.js';
import { MissingToolError, buildAll, checkPrerequisites, type Built } from './lib/build.js';
import { runGhz, runNewConns, type LoadResult, type Target } from './lib/load.js';
import { describeMachine, planPinning, type Pinning } from './lib/machine.js';
import { USAGE, UsageError, parseBenchOptions, type BenchOptions } from './lib/options.js';
import { BENCH_ROOT, BUILD_DIR, GHZ, PROJECT_ROOT } from './lib/paths.js';
import { summarizeProfiles, type ProfileSummary } from './lib/profile.js';
import { cpuSeconds, killAll, rssMiB } from './lib/processes.js';
import {
  checkTargets,
  computeRatios,
  emptySamples,
  renderMarkdown,
  summarizeServers,
  type BenchResult,
  type RunProblem,
  type Samples,
} from './lib/report.js';
import { METRICS, SCENARIOS, STREAM_COUNT, type ScenarioName } from './lib/scenarios.js';
import {
  pkiFiles,
  serverSpecs,
  startServer,
  type Pki,
  type RunningServer,
  type ServerName,
} from './lib/servers.js';
import { rotate } from './lib/stats.js';

/** Exit codes of `npm run bench`. */
const EXIT = {
  OK: 0,
  /** A build, a server or a load run failed; the message names which. */
  FAILED: 1,
  /** An option is invalid or contradicts another. */
  USAGE: 2,
  /** ghz, Go or the bench packages are missing; the message gives the install command. */
  MISSING_TOOL: 3,
} as const;

/** "Idle" memory is read this long after the serving line, before any call. */
const IDLE_SETTLE_MS = 1000;
/** How often memory is sampled during the throughput run; the peak is reported. */
const RSS_SAMPLE_MS = 100;

const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

function target(server: RunningServer, pki: Pki): Target {
  return { port: server.port, pki: server.spec.tls ? pki : null };
}

/** Unmeasured calls after start-up, so that JIT compilation is not in the figures. */
async function warmUp(
  server: RunningServer,
  pki: Pki,
  seconds: number,
  pin: number | null,
): Promise<void> {
  const t = target(server, pki);
  await runGhz(
    t,
    {
      method: 'Echo',
      data: { message: 'warm-up' },
      concurrency: 10,
      connections: 2,
      limit: { seconds },
    },
    pin,
  );
  await runGhz(
    t,
    {
      method: 'ServerStream',
      data: { message: 'warm-up', count: STREAM_COUNT, interval_ms: 0 },
      concurrency: 4,
      connections: 1,
      limit: { total: 8 },
    },
    pin,
  );
}

/** Samples a process's RSS until stopped; returns the peak. */
function sampleRss(pid: number): () => number | null {
  let peak: number | null = null;
  const take = () => {
    const now = rssMiB(pid);
    if (now !== null && (peak === null || now > peak)) peak = now;
  };
  take();
  const timer = setInterval(take, RSS_SAMPLE_MS);
  return () => {
    clearInterval(timer);
    take();
    return peak;
  };
}

function record(
  samples: Samples,
  name: ServerName,
  round: number,
  scenario: ScenarioName,
  r: LoadResult,
  streamCount: number,
  /** Server CPU seconds used during the run. */
  cpu: number | null,
): void {
  const m = samples[name]!;
  switch (scenario) {
    case 'unary-c1':
      m.unaryC1Rps[round] = r.perSecond;
      m.unaryC1P50Ms[round] = r.p50Ms;
      m.unaryC1P99Ms[round] = r.p99Ms;
      break;
    case 'unary-c50':
      m.unaryC50Rps[round] = r.perSecond;
      m.unaryC50P50Ms[round] = r.p50Ms;
      m.unaryC50P99Ms[round] = r.p99Ms;
      // Independent of the load generator: what one call costs the server, and whether it was saturated.
      m.unaryC50CpuUsPerCall[round] = cpu === null ? null : (cpu * 1e6) / r.ok;
      m.unaryC50CpuPct[round] = cpu === null ? null : (cpu / r.seconds) * 100;
      break;
    case 'stream':
      m.streamMsgsPerS[round] = r.perSecond * streamCount;
      break;
    case 'connections':
      m.connectionsPerS[round] = r.perSecond;
      m.connectionP50Ms[round] = r.p50Ms;
      break;
  }
}

async function measure(
  options: BenchOptions,
  built: Built,
  pki: Pki,
  pinning: Pinning,
  cpuProfDir: string | null,
): Promise<{ samples: Samples; problems: Partial<Record<ServerName, RunProblem[]>> }> {
  const specs = serverSpecs(built, pki, cpuProfDir);
  const samples = emptySamples(options.servers, options.runs);
  const problems: Partial<Record<ServerName, RunProblem[]>> = {};
  for (let round = 0; round < options.runs; round++) {
    const order = rotate(options.servers, round);
    const running: RunningServer[] = [];
    try {
      for (const name of order) {
        // Its standard output, in the temporary folder removed at the end (see startServer).
        const logFile = join(pki.dir, `${name}.log`);
        const server = await startServer(specs[name], pinning.serverCore, PROJECT_ROOT, logFile);
        running.push(server);
        samples[name]!.startupMs[round] = server.startupMs;
      }
      if (!options.smoke) await delay(IDLE_SETTLE_MS);
      for (const s of running) samples[s.spec.name]!.idleRssMiB[round] = rssMiB(s.pid);
      if (options.warmupSeconds > 0) {
        log(`round ${round + 1}/${options.runs}: warming up ${order.join(', ')}`);
        for (const s of running) await warmUp(s, pki, options.warmupSeconds, pinning.loadCore);
      }
      for (const scenario of options.scenarios) {
        for (const s of running) {
          const name = s.spec.name;
          log(`round ${round + 1}/${options.runs}: ${scenario} on ${name}`);
          const load = SCENARIOS[scenario].load(options.seconds);
          const stopSampling = scenario === 'unary-c50' ? sampleRss(s.pid) : null;
          const cpuBefore = cpuSeconds(s.pid);
          const result =
            load.kind === 'ghz'
              ? await runGhz(target(s, pki), load.run, pinning.loadCore)
              : await runNewConns(built.newConns, target(s, pki), load.run, pinning.loadCore);
          const peak = stopSampling?.() ?? null;
          const cpuAfter = cpuSeconds(s.pid);
          const cpu = cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore;
          if (s.child.exitCode !== null || s.child.signalCode !== null)
            throw new Error(`${name} exited during ${scenario} (round ${round + 1})`);
          if (result.ok === 0)
            throw new Error(
              `${name} answered no call in ${scenario} (round ${round + 1}): ${result.firstError ?? 'no error reported'}`,
            );
          if (result.errors > 0)
            (problems[name] ??= []).push({
              round,
              scenario,
              errors: result.errors,
              ok: result.ok,
              firstError: result.firstError,
            });
          const streamCount = load.kind === 'ghz' ? Number(load.run.data.count ?? 0) : 0;
          record(samples, name, round, scenario, result, streamCount, cpu);
          if (peak !== null) samples[name]!.loadRssMiB[round] = peak;
        }
      }
    } finally {
      for (const s of running) await s.stop();
    }
  }
  return { samples, problems };
}

function notes(options: BenchOptions): string[] {
  const n = [
    'Other work (tests, builds) may run on this machine at the same time: single figures are noisy, which is why ' +
      'the comparisons are ratios taken within each round.',
    'The bare grpc-js, connect-node and grpc-go servers echo without computing the caller identity; ours also ' +
      'parses the client certificate (cached per certificate), authorizes and logs every call: that is what the ratios price.',
    'ghz and the connection load share one core: where a server is not saturated ("server CPU busy" well under ' +
      '100%), the load generator is the limit, and "server CPU per call" is the fairer comparison.',
  ];
  if (options.servers.includes('ours') && options.servers.includes('ours-twin'))
    n.push(
      'ours-twin is ours again, in a second process started beside the first: ours/ours-twin would be 1 on a quiet ' +
        'host, and how far it strays (its median, and its min–max from round to round) is what the host alone moves ' +
        "a ratio by in this run. A goal whose figure is nearer its line than that is not settled by the run's median.",
    );
  if (options.scenarios.includes('connections'))
    n.push(
      'New connections: each call opens a TCP connection, does a full TLS handshake (no resumption, X25519, RSA-2048 ' +
        'certificates from our PKI) and HTTP/2 set-up, then one Echo; for the no-TLS server only TCP and HTTP/2.',
    );
  return n;
}

function stamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '');
}

async function writeResult(result: BenchResult, out: string, markdown: string): Promise<void> {
  await mkdir(dirname(out), { recursive: true });
  // Written whole or not at all: a half-written result is never left behind.
  await writeFile(`${out}.tmp`, `${JSON.stringify(result, null, 2)}\n`);
  await rename(`${out}.tmp`, out);
  await writeFile(out.replace(/\.json$/, '') + '.md', markdown);
}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions;
  try {
    options = parseBenchOptions(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n`);
    return EXIT.USAGE;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return EXIT.OK;
  }
  try {
    checkPrerequisites();
  } catch (err) {
    if (!(err instanceof MissingToolError)) throw err;
    process.stderr.write(`bench: cannot run:\n${err.message}\n`);
    return EXIT.MISSING_TOOL;
  }
  const started = new Date();
  const built = await buildAll(log);
  if (options.buildOnly) {
    log('built; --build-only, so nothing is measured');
    return EXIT.OK;
  }
  // Before pinning, which narrows what this process sees.
  const machine = describeMachine(GHZ);
  const pinning = planPinning(options.pin);
  log(pinning.note);
  const pkiDir = await mkdtemp(join(tmpdir(), 'bench-pki-'));
  // Beside the build, where git, ESLint and Prettier do not look; open them in Chrome DevTools.
  const cpuProfDir = options.cpuProf
    ? join(BUILD_DIR, '..', 'bench-profiles', stamp(started))
    : null;
  let measured;
  try {
    log(`certificates: ${pkiDir}`);
    // gen-certs' defaults (RSA-2048): the handshake figures are for what we ship.
    await generateBundle(defaultBundleOptions(pkiDir));
    measured = await measure(options, built, pkiFiles(pkiDir), pinning, cpuProfDir);
  } finally {
    killAll();
    await rm(pkiDir, { recursive: true, force: true });
  }
  const specs = serverSpecs(built, pkiFiles(pkiDir));
  const descriptions = Object.fromEntries(
    Object.values(specs).map((s) => [s.name, s.description]),
  ) as Record<ServerName, string>;
  const servers = summarizeServers(measured.samples, descriptions, measured.problems);
  const ratios = computeRatios(measured.samples);
  const profiles: Partial<Record<ServerName, ProfileSummary>> = {};
  if (cpuProfDir !== null)
    for (const name of options.servers) {
      const summary = await summarizeProfiles(join(cpuProfDir, name));
      if (summary !== null) profiles[name] = summary;
    }
  const result: BenchResult = {
    schema: 1,
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    command: `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`,
    smoke: options.smoke,
    options: {
      seconds: options.seconds,
      runs: options.runs,
      warmupSeconds: options.warmupSeconds,
      scenarios: options.scenarios,
      servers: options.servers,
    },
    machine,
    pinning,
    scenarios: Object.fromEntries(options.scenarios.map((s) => [s, SCENARIOS[s].summary])),
    metrics: Object.fromEntries(
      Object.entries(METRICS).map(([k, d]) => [
        k,
        { label: d.label, unit: d.unit, better: d.better },
      ]),
    ) as BenchResult['metrics'],
    servers,
    ratios,
    targets: checkTargets(servers, ratios),
    notes: notes(options),
    ...(cpuProfDir === null ? {} : { profiles }),
  };
  const markdown = renderMarkdown(result);
  const out = resolve(options.out ?? join(BENCH_ROOT, 'results', `${stamp(started)}.json`));
  await writeResult(result, out, markdown);
  process.stdout.write(markdown);
  log(`results: ${relative(PROJECT_ROOT, out) || out}`);
  return EXIT.OK;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    killAll();
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exit(EXIT.FAILED);
  },
);
