// `--cpu-prof`: where each Node server spends its CPU. Every Node server runs
// under `node --cpu-prof`, is stopped with SIGINT so that V8 writes the profile,
// and its profiles are summed into self time per function and per package, so
// that our code, grpc-js, Node's core and native work can be told apart. Our
// server runs as a bundle with the packages inside (dist/server.cjs), so each
// of its frames is first mapped through the bundle's source map to the file it
// came from, or every package would count as the bundle.
import { readFile, readdir } from 'node:fs/promises';
import { SourceMap, type SourceMapPayload, type SourceMapping } from 'node:module';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
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

/** Frames of bundled code mapped to their sources, through the `.map` beside each bundle. */
class SourceMaps {
  private readonly maps = new Map<string, Promise<SourceMap | null>>();

  private load(file: string): Promise<SourceMap | null> {
    let map = this.maps.get(file);
    if (map === undefined) {
      map = readFile(`${file}.map`, 'utf8').then(
        (text) => new SourceMap(JSON.parse(text) as SourceMapPayload),
        () => null,
      );
      this.maps.set(file, map);
    }
    return map;
  }

  /** The frame as its source has it, or as it is where no map says otherwise. */
  async original(frame: CallFrame): Promise<CallFrame> {
    if (!/\.c?js$/.test(frame.url) || frame.lineNumber < 0) return frame;
    const file = frame.url.startsWith('file:') ? fileURLToPath(frame.url) : frame.url;
    if (!isAbsolute(file)) return frame;
    const map = await this.load(file);
    // An empty object where the map has no entry for the position.
    const entry: Partial<SourceMapping> | undefined = map?.findEntry(
      frame.lineNumber,
      frame.columnNumber,
    );
    if (entry?.originalSource === undefined || entry.originalLine === undefined) return frame;
    const source = entry.originalSource.startsWith('file:')
      ? fileURLToPath(entry.originalSource)
      : resolve(dirname(file), entry.originalSource);
    return { ...frame, url: source, lineNumber: entry.originalLine };
  }
}

/** Where a function lives: a package, Node's core, the project (by file), V8 itself or native code. */
function owner(frame: CallFrame): string {
  if (SPECIAL.has(frame.functionName)) return frame.functionName;
  const url = frame.url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/.][^/]*)\/(?!.*node_modules\/)/.exec(url)?.[1];
  if (pkg !== undefined) return pkg;
  if (url.startsWith('node:')) return 'node core (JS)';
  if (url === '') return 'native (C++ and system calls)';
  const ours = /\/((?:src|servers)\/(?!.*\/(?:src|servers)\/).+)$/.exec(url)?.[1];
  return ours === undefined ? url : `ours: ${ours.replace(/\.[jt]s$/, '')}`;
}

function label(frame: CallFrame): string {
  const where =
    frame.url === ''
      ? ''
      : ` ${frame.url.replace(/^.*\/node_modules\//, '').replace(/^(?:file:\/\/)?\/.*\/(src|servers)\//, '$1/')}:${frame.lineNumber + 1}`;
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
  const sources = new SourceMaps();
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    const frames = new Map<number, CallFrame>();
    for (const n of profile.nodes) frames.set(n.id, await sources.original(n.callFrame));
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
