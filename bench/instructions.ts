// `npx tsx bench/instructions.ts [--servers LIST] [--scenario NAME] [--warmup N]
// [--calls N] [--node-flags FLAGS] [--keep-dumps DIR]`: the servers' work per call counted in
// instructions, which the rest of the machine does not move. On a host whose
// speed varies between rounds (the harness's rounds spread by ±30% on some
// days), a 7-round median cannot tell 5% apart; an instruction count can, for
// the work done in user space.
//
// Each server of `npm run bench` (the same build, command and environment) runs
// under valgrind's callgrind (Debian's valgrind) with counting off, and with
// `--predictable` (default --node-flags): V8 then compiles and collects garbage
// on the main thread only, so three runs of bare grpc-js gave the same count to
// 0.3% (without it, ±7%). ghz sends --warmup calls (default 10000; after 3000,
// bare grpc-js still took 1.4 times as much per call), counting starts
// (callgrind_control --instr=on), ghz sends --calls more (default 10000) of the
// scenario, and the dump (callgrind_control --dump) divided by them is the
// figure. Timers that run meanwhile are counted too (below). About 80 s per
// server at the defaults. --keep-dumps DIR keeps each dump (NAME-N.callgrind.out)
// for callgrind_annotate.
//
// unary-c1 (the default) is one call per event-loop turn, and its count
// repeats: on 2026-12-03, 10000 calls after 10000, ours gave 282,276 and
// 282,100 per call, bare grpc-js 278,916, ours without the access line 277,493
// (ours ÷ bare 1.011; 0.995 without the line). Two things made ours repeat: a
// TLS poll (it reads and hashes the certificate files) came every few hundred
// calls under valgrind, so this spaces them out to an hour, and 3000 counted
// calls were too few to average out the garbage collections (the first runs
// gave 290,556 and 300,088). At unary-c50 how many calls share a read and a
// turn depends on timing: bare grpc-js's counts fell around 235,000 in three
// runs and around 285,000 in two, ours' in both places too, so one c=50 count
// compares nothing.
//
// `--scenario connections --warmup 500 --calls 1000` counts a new mTLS
// connection with one call on it (bench/go-server/newconns, one at a time):
// the handshake, the HTTP/2 session and the call, which is what the harness's
// new-connections figure pays for (about 100 s per server). On 2026-12-03
// bare grpc-js took 16.43 M to 16.48 M instructions per connection in three
// runs, ours 16.91 M and 17.13 M while it still prepared TLS session tickets,
// and 13.97 M and 13.86 M once it did not (src/tls/server-credentials.ts).
//
// What this does not see: time in the kernel (reads, writes, the access log's
// write), cache misses and the cost of each instruction. So it complements the
// harness's CPU seconds; it does not replace them.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultBundleOptions, generateBundle } from '../src/pki/cert-bundle.js';
import { buildAll, type Built } from './lib/build.js';
import { runGhz, runNewConns } from './lib/load.js';
import { median } from './lib/stats.js';
import { BUILD_DIR } from './lib/paths.js';
import { run } from './lib/processes.js';
import { SCENARIOS, type ScenarioName } from './lib/scenarios.js';
import { pkiFiles, servingAddress, serverSpecs, type ServerName } from './lib/servers.js';

/** Warm-up calls per ghz run. */
const WARMUP_ROUND = 5000;
/** Under valgrind a Node server takes 20 to 60 times as long to start. */
const START_TIMEOUT_MS = 180_000;

async function startUnderCallgrind(command: string[], env: Record<string, string>, dir: string) {
  const logFile = join(dir, 'server.log');
  const out = openSync(logFile, 'w');
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      // V8 writes and rewrites its machine code in memory that is not a file.
      '--smc-check=all-non-file',
      '--instr-atstart=no',
      `--callgrind-out-file=${join(dir, 'callgrind.out')}`,
      ...command,
    ],
    { env, stdio: ['ignore', out, 'pipe'] },
  );
  closeSync(out);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4096)));
  const started = Date.now();
  for (;;) {
    const address = servingAddress(readFileSync(logFile, 'utf8'));
    if (address !== null) return { child, port: Number(/:(\d+)$/.exec(address)?.[1]) };
    if (child.exitCode !== null) throw new Error(`the server exited before serving: ${stderr}`);
    if (Date.now() - started > START_TIMEOUT_MS)
      throw new Error(`the server did not serve within ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The instructions in the one dump callgrind_control --dump wrote into `dir`. */
async function dumpedInstructions(dir: string, keep: string | null): Promise<number> {
  const dumps = (await readdir(dir)).filter((f) => /^callgrind\.out\.\d+$/.test(f));
  if (dumps.length !== 1) throw new Error(`expected one callgrind dump, found ${dumps.length}`);
  if (keep !== null) await copyFile(join(dir, dumps[0]!), keep);
  const text = await readFile(join(dir, dumps[0]!), 'utf8');
  const summary = /^(?:summary|totals): (\d+)/m.exec(text)?.[1];
  if (summary === undefined) throw new Error('no summary line in the callgrind dump');
  return Number(summary);
}

async function measure(
  built: Built,
  name: ServerName,
  scenario: ScenarioName,
  warmup: number,
  calls: number,
  pkiDir: string,
  nodeFlags: string[],
  keep: string | null,
) {
  const spec = serverSpecs(built, pkiFiles(pkiDir))[name];
  const load = SCENARIOS[scenario].load(null);
  const dir = await mkdtemp(join(tmpdir(), `bench-callgrind-${name}-`));
  const [node, ...rest] = spec.command;
  const command = node === process.execPath ? [node, ...nodeFlags, ...rest] : spec.command;
  // Under valgrind each call takes about 50 times as long, so a timer fires 50 times as often
  // per call: ours would count a TLS poll every few hundred calls rather than every 50,000.
  const env = spec.env.TLS_CERT_FILE
    ? { ...spec.env, TLS_RELOAD_INTERVAL_MS: '3600000' }
    : spec.env;
  const { child, port } = await startUnderCallgrind(command, env, dir);
  try {
    const target = { port, pki: spec.tls ? pkiFiles(pkiDir) : null };
    const pid = String(child.pid);
    // `total` calls; for `connections`, each on its own connection, one at a time, so that no
    // two handshakes share a turn and the count repeats. Bounded by count; the time limit is
    // only a backstop (under valgrind a handshake takes about a second).
    const send = (total: number) =>
      load.kind === 'ghz'
        ? runGhz(target, { ...load.run, limit: { total } }, null)
        : runNewConns(
            built.newConns,
            target,
            { concurrency: 1, seconds: total * 10, maxCalls: total },
            null,
          );
    // In rounds that each fit ghz's time limit for a counted run.
    for (let left = warmup; left > 0; left -= WARMUP_ROUND)
      await send(Math.min(left, WARMUP_ROUND));
    await run('callgrind_control --instr=on', ['callgrind_control', '--instr=on', pid], {
      timeoutMs: 60_000,
    });
    const measured = await send(calls);
    await run('callgrind_control --dump', ['callgrind_control', '--dump', pid], {
      timeoutMs: 60_000,
    });
    if (measured.errors > 0) throw new Error(`${name}: ${measured.errors} calls failed`);
    return (await dumpedInstructions(dir, keep)) / measured.ok;
  } finally {
    child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      servers: { type: 'string', default: 'ours,ours-no-access-log,ours-no-metrics,grpc-js-mtls' },
      calls: { type: 'string', default: '10000' },
      warmup: { type: 'string', default: '10000' },
      'node-flags': { type: 'string', default: '--predictable' },
      scenario: { type: 'string', default: 'unary-c1' },
      'keep-dumps': { type: 'string' },
    },
  });
  const names = values.servers.split(',') as ServerName[];
  const scenario = values.scenario as ScenarioName;
  const pkiDir = await mkdtemp(join(tmpdir(), 'bench-callgrind-pki-'));
  try {
    await generateBundle(defaultBundleOptions(pkiDir));
    const built = await buildAll(() => {});
    // A name may be given more than once (to see whether its count repeats): every count is
    // kept, and ratios are taken between medians.
    const counts = new Map<ServerName, number[]>();
    const keep = values['keep-dumps'];
    if (keep !== undefined) await mkdir(keep, { recursive: true });
    for (const [n, name] of names.entries()) {
      const count = await measure(
        built,
        name,
        scenario,
        Number(values.warmup),
        Number(values.calls),
        pkiDir,
        values['node-flags'].split(' ').filter(Boolean),
        keep === undefined ? null : join(keep, `${name}-${n}.callgrind.out`),
      );
      counts.set(name, [...(counts.get(name) ?? []), count]);
      console.log(`${name}: ${Math.round(count).toLocaleString('en')} instructions per call`);
    }
    const bare = median(counts.get('grpc-js-mtls') ?? []);
    if (bare !== null)
      for (const [name, each] of counts)
        console.log(
          `${name} ÷ grpc-js-mtls: ${((median(each) ?? NaN) / bare).toFixed(3)}` +
            (each.length > 1 ? ` (median of ${each.length} runs)` : ''),
        );
    console.log(
      `(ratios to the median of grpc-js-mtls's runs; ${scenario}, ${values.calls} calls after ${values.warmup} to warm up; node flags: ${values['node-flags']}; build in ${BUILD_DIR})`,
    );
  } finally {
    await rm(pkiDir, { recursive: true, force: true });
  }
}

await main();
