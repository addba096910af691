// What the bundler (scripts/lib/bundle.ts) does to the code it takes in, shown
// on a small project of its own in a temporary folder: a package that reads a
// file beside its code still finds it, a stack trace through that package still
// names its own lines, our modules' import.meta.url is the bundle's URL, the
// bundle runs in strict mode, and a package reading import.meta fails the build.
// The image test (test/k8s-image.test.ts) runs the real bundles as built.
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bundle } from '../scripts/lib/bundle.js';
import { tempDir } from './helpers/pki.js';

let project: Awaited<ReturnType<typeof tempDir>>;

beforeEach(async () => {
  project = await tempDir('grpc-mtls-bundle-');
});
afterEach(() => project.remove());

async function write(files: Record<string, string>): Promise<void> {
  for (const [file, text] of Object.entries(files)) {
    const path = join(project.path, file);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, text);
  }
}

/** A package whose code reads data/greeting.txt from its own folder, as grpc-health-check reads its proto. */
const READS_OWN_FILE = {
  'node_modules/reads-own-file/package.json':
    '{ "name": "reads-own-file", "main": "lib/index.js" }',
  'node_modules/reads-own-file/data/greeting.txt': "read from the package's own folder",
  // where() makes its Error on line 4: a stack trace through it must say so.
  'node_modules/reads-own-file/lib/index.js': [
    "const { readFileSync } = require('node:fs');",
    "exports.greeting = readFileSync(require('node:path').join(__dirname, '../data/greeting.txt'), 'utf8');",
    'exports.where = function where() {',
    '  return new Error("where").stack;',
    '};',
  ].join('\n'),
};

/** Bundles src/main.js of the temporary project into dist/main.cjs and runs it. */
async function buildAndRun(main: string) {
  await write({ 'src/main.js': main });
  await bundle(project.path, { main: 'src/main.js' }, project.path);
  const built = join(project.path, 'dist/main.cjs');
  const run = spawnSync(process.execPath, ['--enable-source-maps', built], {
    cwd: project.path,
    encoding: 'utf8',
    timeout: 20_000,
  });
  expect(run.stderr).toBe('');
  expect(run.status).toBe(0);
  return { built, lines: run.stdout.trimEnd().split('\n') };
}

describe('the bundle', () => {
  it('lets a package read the files beside its code, from its own folder in node_modules/, not from dist/', async () => {
    await write(READS_OWN_FILE);
    const { lines } = await buildAndRun(
      "import { greeting } from 'reads-own-file';\nconsole.log(greeting);\n",
    );
    expect(lines).toEqual(["read from the package's own folder"]);
  });

  it("keeps a package's lines where its source map says, so a stack trace names the package's file and line", async () => {
    await write(READS_OWN_FILE);
    const { lines } = await buildAndRun(
      "import { where } from 'reads-own-file';\nconsole.log(where());\n",
    );
    const frame = lines.find((l) => l.includes('at where'));
    expect(frame).toMatch(/node_modules\/reads-own-file\/lib\/index\.js:4:\d+\)$/);
  });

  it("gives our own modules the bundle's URL as import.meta.url, and runs in strict mode", async () => {
    const { built, lines } = await buildAndRun(
      [
        'console.log(import.meta.url);',
        'console.log((function () { return this === undefined ? "strict" : "sloppy"; })());',
      ].join('\n'),
    );
    expect(lines).toEqual([pathToFileURL(built).href, 'strict']);
  });

  it('fails the build, naming the file, when a package reads import.meta, which a bundle cannot give it', async () => {
    await write({
      'node_modules/reads-meta/package.json': '{ "name": "reads-meta", "main": "index.mjs" }',
      'node_modules/reads-meta/index.mjs': 'export const here = import.meta.dirname;\n',
      'src/main.js': "import { here } from 'reads-meta';\nconsole.log(here);\n",
    });
    await expect(bundle(project.path, { main: 'src/main.js' }, project.path)).rejects.toThrow(
      'node_modules/reads-meta/index.mjs reads import.meta, which the bundle cannot give it',
    );
  });
});
