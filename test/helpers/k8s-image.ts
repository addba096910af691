// What the image is made of, read from the Dockerfile and .dockerignore without
// Docker, and the app built the way the image builds it (bundled into dist/).
import { chmod, cp, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/shared/proto.js';
import { bundleApp, type Bundled } from '../../scripts/lib/bundle.js';
import { readProjectFile } from './k8s-manifests.js';

export interface Instruction {
  stage: string;
  op: string;
  args: string;
  /** The arguments of the exec (JSON array) form, when used. */
  json?: string[];
}

/** Dockerfile instructions, continuation lines joined, comments dropped, ARG defaults substituted. */
export function parseDockerfile(text = readProjectFile('Dockerfile')): Instruction[] {
  const lines = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '');
  const args = new Map<string, string>();
  const out: Instruction[] = [];
  let stage = '';
  for (const line of lines) {
    const m = /^(\w+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile: cannot read ${JSON.stringify(line)}`);
    const op = m[1]!.toUpperCase();
    const raw = m[2]!;
    const value = raw.replace(/\$\{(\w+)\}|\$(\w+)/g, (s, a?: string, b?: string) => {
      return args.get(a ?? b ?? '') ?? s;
    });
    if (op === 'ARG') {
      const [name, def] = raw.split('=', 2);
      if (def !== undefined) args.set(name!.trim(), def.trim());
    }
    if (op === 'FROM') stage = /\bAS\s+(\S+)/i.exec(value)?.[1] ?? value.split(/\s+/)[0]!;
    let json: string[] | undefined;
    if (value.startsWith('[')) json = JSON.parse(value) as string[];
    out.push({ stage, op, args: value, ...(json ? { json } : {}) });
  }
  return out;
}

/**
 * The build arguments declared before the first FROM, with their defaults, and the
 * argument each FROM takes its base image from (`FROM ${NODE_IMAGE} AS build`), by stage.
 */
export function baseImageArgs(text = readProjectFile('Dockerfile')): {
  defaults: Map<string, string>;
  fromArg: Map<string, string>;
} {
  const defaults = new Map<string, string>();
  const fromArg = new Map<string, string>();
  let seenFrom = false;
  for (const line of text.split('\n').map((l) => l.trim())) {
    const arg = /^ARG\s+(\w+)=(\S+)$/.exec(line);
    if (arg && !seenFrom) defaults.set(arg[1]!, arg[2]!);
    const from = /^FROM\s+\$\{(\w+)\}(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (/^FROM\s/i.test(line)) seenFrom = true;
    if (from) fromArg.set(from[2] ?? '', from[1]!);
  }
  return { defaults, fromArg };
}

/**
 * Whether `version` (x.y.z, a leading v allowed) is in an npm `engines` range of the
 * form used here: `>=a.b.c <d || >=e.f.g <h` (alternatives of comparator pairs).
 */
export function inEngineRange(range: string, version: string): boolean {
  const parse = (v: string) => v.replace(/^v/, '').split('.').map(Number);
  const cmp = (a: number[], b: number[]) => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  const v = parse(version);
  return range.split('||').some((alt) =>
    alt
      .trim()
      .split(/\s+/)
      .every((c) => {
        const m = /^(>=|<=|>|<|=)?(\d+(?:\.\d+){0,2})$/.exec(c);
        if (!m)
          throw new Error(`engines: cannot read ${JSON.stringify(c)} in ${JSON.stringify(range)}`);
        const d = cmp(v, parse(m[2]!));
        return { '>=': d >= 0, '<=': d <= 0, '>': d > 0, '<': d < 0, '=': d === 0 }[m[1] ?? '=']!;
      }),
  );
}

/** The final stage's instructions (the image that runs). */
export function finalStage(instructions: Instruction[]): Instruction[] {
  const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
  return instructions.slice(lastFrom);
}

function patternRegExp(pattern: string): RegExp {
  const segments = pattern.split('/');
  const re = segments
    .map((seg, i) => {
      const last = i === segments.length - 1;
      if (seg === '**') return last ? '.*' : '(?:[^/]+/)*';
      const glob = seg
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]');
      return last ? glob : `${glob}/`;
    })
    .join('');
  return new RegExp(`^${re}$`);
}

/**
 * Whether the Docker build context leaves `path` out, by .dockerignore's rules: each
 * pattern is matched in order and the last match wins; `!` lets a path back in; `*`
 * stays within one path segment, `**` spans any number; a pattern that matches a
 * folder matches everything inside it.
 */
export function dockerIgnores(patterns: string[], path: string): boolean {
  const segments = path.split('/');
  let ignored = false;
  for (const raw of patterns) {
    const negate = raw.startsWith('!');
    const re = patternRegExp((negate ? raw.slice(1) : raw).replace(/^\/+|\/+$/g, ''));
    // The path itself or any folder above it.
    if (segments.some((_, i) => re.test(segments.slice(0, i + 1).join('/')))) ignored = !negate;
  }
  return ignored;
}

export function dockerignorePatterns(text = readProjectFile('.dockerignore')): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/**
 * The image's /app as the build stage makes it: the bundles in dist/ (the same
 * bundleApp() `npm run build` calls), proto/ and package.json, with
 * node_modules/ a link to the repository's. Readable by any user, as the
 * image's root-owned files are for user 10001.
 */
export async function buildApp(dir: string): Promise<{ app: string; bundled: Bundled }> {
  const app = join(dir, 'app');
  await mkdir(app);
  await symlink(join(PROJECT_ROOT, 'node_modules'), join(app, 'node_modules'));
  const bundled = await bundleApp(app);
  await cp(join(PROJECT_ROOT, 'proto'), join(app, 'proto'), { recursive: true });
  await writeFile(join(app, 'package.json'), await readFile(join(PROJECT_ROOT, 'package.json')));
  // mkdtemp makes 0700 folders; the pod's user must be able to walk in.
  await chmod(dir, 0o755);
  return { app, bundled };
}

/** Where the final stage copies a file from another stage: destination path, by source stage. */
export function copiedFromStages(instructions: Instruction[]): { stage: string; dest: string }[] {
  return finalStage(instructions)
    .filter((i) => i.op === 'COPY' && /--from=/.test(i.args))
    .map((i) => {
      const words = i.args.split(/\s+/);
      return { stage: /--from=(\S+)/.exec(i.args)![1]!, dest: words.at(-1)! };
    });
}
