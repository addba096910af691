// `--cpu-prof`: where each Node server spends its CPU. Every Node server runs
// under `node --cpu-prof`, is stopped with SIGINT so that V8 writes the profile,
// and its profiles are summed into self time per function and per package, so
// that our code, grpc-js, Node's core and native work can be told apart.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileShare {
  name: string;
  /** Share of the busy samples (idle left out), in percent. */
  percent: number;
}

export interface ProfileSummary {
  dir: string;
  files: number;
  /** Share of all samples in which the process was idle: waiting for work, or for its turn in the round. */
  idlePercent: number;
  topFunctions: ProfileShare[];
  packages: ProfileShare[];
}

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

/** Where a function lives: a package, Node's core, the project (by file), V8 itself or native code. */
function owner(frame: CallFrame): string {
  if (SPECIAL.has(frame.functionName)) return frame.functionName;
  const url = frame.url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/.][^/]*)\/(?!.*node_modules\/)/.exec(url)?.[1];
  if (pkg !== undefined) return pkg;
  if (url.startsWith('node:')) return 'node core (JS)';
  if (url === '') return 'native (C++ and system calls)';
  const ours = /\/(src\/[^/]+|servers\/[^/]+)$/.exec(url)?.[1];
  return ours === undefined ? url : `ours: ${ours.replace(/\.js$/, '')}`;
}

function label(frame: CallFrame): string {
  const where =
    frame.url === ''
      ? ''
      : ` ${frame.url.replace(/^.*\/node_modules\//, '').replace(/^file:\/\/.*\/(src|servers)\//, '$1/')}:${frame.lineNumber + 1}`;
  return `${frame.functionName || '(anonymous)'}${where}`;
}

function top(map: Map<string, number>, total: number, count: number): ProfileShare[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, t]) => ({ name, percent: Math.round((t / total) * 1000) / 10 }));
}

/** Sums every .cpuprofile in `dir`. */
export async function summarizeProfiles(dir: string, count = 15): Promise<ProfileSummary | null> {
  const files = (await readdir(dir).catch(() => [] as string[])).filter((f) =>
    f.endsWith('.cpuprofile'),
  );
  if (files.length === 0) return null;
  const byFunction = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    const frames = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    profile.samples.forEach((id, i) => {
      const dt = profile.timeDeltas[i] ?? 0;
      const frame = frames.get(id);
      if (frame === undefined) return;
      total += dt;
      if (frame.functionName === '(idle)') {
        idle += dt;
        return;
      }
      const fn = label(frame);
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
      const o = owner(frame);
      byOwner.set(o, (byOwner.get(o) ?? 0) + dt);
    });
  }
  const busy = total - idle;
  if (busy <= 0) return null;
  return {
    dir,
    files: files.length,
    idlePercent: Math.round((idle / total) * 1000) / 10,
    topFunctions: top(byFunction, busy, count),
    packages: top(byOwner, busy, count),
  };
}
