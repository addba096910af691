// What `npm run build` makes, and the image runs: each entry point of src/bin/
// as one CommonJS file (dist/server.cjs, dist/client.cjs) holding our code and
// the packages' code it uses. node_modules/ still sits beside dist/ (in the image
// too) for the files the packages read at run time (see ownFolders below), and
// for the CRL decoder, which src/tls/crl.ts requires only when a CRL is set.
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
// Why the packages too: then most of start-up was require() finding, reading
// and wrapping some 220 files of grpc-js, protobufjs, pino and prom-client one
// by one. With them inside, spawn to serving went from 378 to 282 ms (medians
// of 8 starts on a slow host), and the bench's start-up to SERVING from 331 ms
// to 247, where bare grpc-js took 250 (docs/performance.md).
//
// The bundle is not minified: a stack trace names our own functions, and each
// module's code follows a `// src/...` or `// node_modules/...` comment. Source
// maps sit beside it for `node --enable-source-maps`.
import { build, type Metafile, type Plugin } from 'esbuild';
import { readFile } from 'node:fs/promises';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where src/ is: found from this file, so that building loads none of the app. */
const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The entry points, by the name of the file each becomes in dist/. */
export const ENTRY_POINTS = { server: 'src/bin/server.ts', client: 'src/bin/client.ts' } as const;

/** The built file of an entry point, relative to the app's root: what `node` is given. */
export const builtEntry = (name: keyof typeof ENTRY_POINTS): string => `dist/${name}.cjs`;

export interface Bundled {
  /** Our source files that went into a bundle, relative to the source root. */
  sources: string[];
  /**
   * Every package with code in a bundle, by its folder relative to the source
   * root (`node_modules/@grpc/grpc-js`): the key package-lock.json lists it under.
   */
  packages: string[];
  /**
   * Every module a bundle still requires at run time that is not Node's own. A
   * require() through createRequire is not seen: src/tls/crl.ts loads its
   * decoder (@peculiar/asn1-*) that way, from node_modules/, on first use.
   */
  external: string[];
}

/** The package folder of a file in node_modules/ (the innermost, for nested ones). */
export function packageFolder(file: string): string | null {
  const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(file);
  return m ? m[1]! : null;
}

function summarize(meta: Metafile): Bundled {
  const sources: string[] = [];
  const packages = new Set<string>();
  for (const input of Object.keys(meta.inputs)) {
    const folder = packageFolder(input);
    if (folder === null) sources.push(input);
    else packages.add(folder);
  }
  const external = new Set<string>();
  for (const output of Object.values(meta.outputs)) {
    for (const i of output.imports) {
      if (i.external && !isBuiltin(i.path)) external.add(i.path);
    }
  }
  return {
    sources: sources.sort(),
    packages: [...packages].sort(),
    external: [...external].sort(),
  };
}

/**
 * A package's own folder, for the packages that read files beside their code:
 * grpc-health-check loads health.proto from `${__dirname}/../../proto` when it is
 * required, @grpc/reflection its protos when the service is added. Bundled,
 * every module's __dirname would be dist/; so each package module that names
 * __dirname or __filename gets its own, the folder it came from in
 * node_modules/, found from dist/ at run time (node_modules/ sits beside dist/
 * in the image and in the repository). Its other files stay there too.
 */
const ownFolders = (sourceRoot: string): Plugin => ({
  name: 'package-own-folders',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/].*\.[cm]?js$/ }, async ({ path }) => {
      const code = await readFile(path, 'utf8');
      const file = relative(sourceRoot, path).split(sep).join('/');
      // import.meta.url is defined as the bundle's own URL (below): right for our
      // modules, which find proto/ from it, and wrong for a package's files. The
      // test is textual, so a comment naming it fails the build too: a loud
      // refusal to look at, never a bundle that resolves a package's files wrongly.
      if (/\bimport\.meta\b/.test(code)) {
        return { errors: [{ text: `${file} reads import.meta, which the bundle cannot give it` }] };
      }
      if (!/\b__(dirname|filename)\b/.test(code)) return undefined;
      const own = `var __filename = __appFile(${JSON.stringify(file)}), __dirname = require('node:path').dirname(__filename);`;
      // On the module's first line, so that its own source map still lines up.
      return { contents: `${own} ${code}`, loader: 'js' };
    });
  },
});

/** Writes dist/server.cjs and dist/client.cjs (and their maps) under `appRoot`. */
export const bundleApp = (appRoot: string = PROJECT_ROOT): Promise<Bundled> =>
  bundle(PROJECT_ROOT, ENTRY_POINTS, appRoot);

/**
 * Bundles `entryPoints` (relative to `sourceRoot`, whose node_modules/ they
 * import from) into `appRoot`/dist/, one `.cjs` file each. Exported for the
 * test of what the bundle does to packages' own files.
 */
export async function bundle(
  sourceRoot: string,
  entryPoints: Record<string, string>,
  appRoot: string,
): Promise<Bundled> {
  const result = await build({
    absWorkingDir: sourceRoot,
    entryPoints,
    outdir: join(appRoot, 'dist'),
    outExtension: { '.js': '.cjs' },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    // The oldest Node the engines field admits.
    target: 'node20.19',
    plugins: [ownFolders(sourceRoot)],
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
      js: [
        "'use strict';",
        "const __bundleUrl = require('node:url').pathToFileURL(__filename).href;",
        // The bundle's folder, read once: a package module's own __dirname (above)
        // is a var, which esbuild could hoist to this scope if the module were ESM.
        'const __appDir = __dirname;',
        "const __appFile = (file) => require('node:path').join(__appDir, '..', file);",
      ].join('\n'),
    },
  });
  return summarize(result.metafile);
}
