// What `npm run build` makes, and the image runs: each entry point of src/bin/
// as one CommonJS file (dist/server.cjs, dist/client.cjs), with the packages
// left out and loaded from node_modules/ by require(), as they are published.
//
// Why one file and not tsc's one file per module: Node's ES-module loader
// resolves, links and compiles every file it is given, and when an ES module
// imports a CommonJS package, it scans that package's files with
// cjs-module-lexer too. For the server that was 37 of our files plus pino's and
// prom-client's, about 5 MiB allocated before serving, enough for a full
// garbage collection the bare grpc-js server never needs. Bundled and
// required, idle RSS went from 68.5 to 64.1 MiB on Node 20 and from 83.1 to
// 77.2 on Node 24 (bare grpc-js: 59.5 and 74.3; docs/performance.md).
//
// The bundle is not minified: a stack trace names our own functions, and each
// module's code follows a `// src/...` comment. Source maps sit beside it for
// `node --enable-source-maps`.
import { build, type Metafile } from 'esbuild';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where src/ is: found from this file, so that building loads none of the app. */
const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The entry points, by the name of the file each becomes in dist/. */
export const ENTRY_POINTS = { server: 'src/bin/server.ts', client: 'src/bin/client.ts' } as const;

/** The built file of an entry point, relative to the app's root: what `node` is given. */
export const builtEntry = (name: keyof typeof ENTRY_POINTS): string => `dist/${name}.cjs`;

export interface Bundled {
  /** Every source file that went into a bundle, relative to the project root. */
  inputs: string[];
  /** Every package a bundle requires at run time (left to node_modules/). */
  packages: string[];
}

/** The package a bare specifier names: `@scope/name` or `name`. */
const packageOf = (specifier: string): string =>
  specifier
    .split('/')
    .slice(0, specifier.startsWith('@') ? 2 : 1)
    .join('/');

function summarize(meta: Metafile): Bundled {
  const packages = new Set<string>();
  for (const output of Object.values(meta.outputs)) {
    for (const i of output.imports) {
      if (i.external && !i.path.startsWith('node:')) packages.add(packageOf(i.path));
    }
  }
  return { inputs: Object.keys(meta.inputs).sort(), packages: [...packages].sort() };
}

/** Writes dist/server.cjs and dist/client.cjs (and their maps) under `appRoot`. */
export async function bundleApp(appRoot: string = PROJECT_ROOT): Promise<Bundled> {
  const result = await build({
    absWorkingDir: PROJECT_ROOT,
    entryPoints: ENTRY_POINTS,
    outdir: join(appRoot, 'dist'),
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    // The oldest Node the engines field admits.
    target: 'node20.19',
    packages: 'external',
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    // import.meta does not exist in CommonJS: the few modules that read
    // import.meta.url (to find proto/, or to require() a package) get the
    // bundle's own URL, which is the same folder for every module; any other
    // use of import.meta (dirname, resolve) would be undefined, so it fails the build.
    // The banner comes before esbuild's own "use strict", which would then be a
    // plain string and leave the whole bundle in sloppy mode: so it starts with one.
    logOverride: { 'empty-import-meta': 'error' },
    define: { 'import.meta.url': '__bundleUrl' },
    banner: {
      js: "'use strict';\nconst __bundleUrl = require('node:url').pathToFileURL(__filename).href;",
    },
  });
  return summarize(result.metafile);
}
