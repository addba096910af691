// The machine a benchmark ran on, and how the cores are shared: the server under
// test on one core, the load generator (and this harness) on another, with
// `taskset`, so neither steals the other's CPU. Figures without that are noisier
// and say so.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type as osType } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/shared/proto.js';
import { BENCH_ROOT } from './paths.js';

export interface Machine {
  /** CPUs of the machine; the harness may use fewer (see Pinning). */
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  go: string;
  ghz: string;
  grpcJs: string;
  connectNode: string;
  grpcGo: string;
  /** 1, 5 and 15 minute load averages when the run began: other work on the machine shows here. */
  loadAverageAtStart: number[];
}

export interface Pinning {
  enabled: boolean;
  serverCore: number | null;
  loadCore: number | null;
  note: string;
}

function output(command: string, args: string[]): string {
  const r = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? `${r.stdout}${r.stderr}`.trim() : '';
}

function packageVersion(file: string): string {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function describeMachine(ghzPath: string): Machine {
  const goMod = readFileSync(join(BENCH_ROOT, 'go-server', 'go.mod'), 'utf8');
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${osType()} ${release()}`,
    node: process.version,
    go: output('go', ['env', 'GOVERSION']) || 'not found',
    // Built from tools/go.mod, ghz reports its version as "dev": the pin says which it is.
    ghz: existsSync(ghzPath)
      ? (/github\.com\/bojand\/ghz (v\S+)/.exec(
          readFileSync(join(PROJECT_ROOT, 'tools', 'go.mod'), 'utf8'),
        )?.[1] ?? 'unknown')
      : 'not found',
    grpcJs: packageVersion(join(PROJECT_ROOT, 'node_modules', '@grpc', 'grpc-js', 'package.json')),
    connectNode: packageVersion(
      join(BENCH_ROOT, 'node_modules', '@connectrpc', 'connect-node', 'package.json'),
    ),
    grpcGo: /google\.golang\.org\/grpc (v\S+)/.exec(goMod)?.[1] ?? 'unknown',
    loadAverageAtStart: loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

/** The CPUs this process may run on, from `taskset -cp` (e.g. "0,1" or "0-3"). */
function allowedCores(): number[] {
  const list = /:\s*([\d,-]+)\s*$/.exec(output('taskset', ['-cp', String(process.pid)]))?.[1];
  if (list === undefined) return [];
  return list.split(',').flatMap((part) => {
    const [from, to] = part.split('-').map(Number) as [number, number | undefined];
    return Array.from({ length: (to ?? from) - from + 1 }, (_, i) => from + i);
  });
}

/**
 * Server on the first allowed core, load generator on the second; this harness
 * moves itself (all its threads) to the load core, where it only waits and drains.
 */
export function planPinning(wanted: boolean): Pinning {
  const off = (why: string): Pinning => ({
    enabled: false,
    serverCore: null,
    loadCore: null,
    note: `not pinned: ${why}; server and load generator share the CPUs, figures are noisier`,
  });
  if (!wanted) return off('--no-pin was given');
  if (output('taskset', ['--version']) === '') return off('taskset is not installed (util-linux)');
  const cores = allowedCores();
  if (cores.length < 2) return off(`only ${cores.length} CPU available to this process`);
  const [serverCore, loadCore] = cores as [number, number];
  if (output('taskset', ['-a', '-cp', String(loadCore), String(process.pid)]) === '')
    return off('taskset could not move the harness');
  return {
    enabled: true,
    serverCore,
    loadCore,
    note: `pinned with taskset: each server on CPU ${serverCore}; ghz, the connection load and this harness on CPU ${loadCore}`,
  };
}
