// `npm run bench` in its smoke form: everything is built, each server
// starts and answers every scenario through ghz (and the fresh-connection
// load), and the result carries every figure. The real benchmark, minutes long,
// is not part of `npm test`.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONNECT_NODE_PACKAGE, INSTALL } from '../bench/lib/paths.js';
import { checkTargets, type BenchResult } from '../bench/lib/report.js';
import { summarizeProfiles } from '../bench/lib/profile.js';
import { METRIC_NAMES } from '../bench/lib/scenarios.js';
import { SERVER_LABELS, SERVER_NAMES, pkiFiles, serverSpecs } from '../bench/lib/servers.js';
import { median, rotate, roundRatios } from '../bench/lib/stats.js';
import { tempDir } from './helpers/pki.js';
import { runTs } from './helpers/server.js';
import { INSTALL_HINT, toolPath } from './helpers/tools.js';

/** Throws, naming the fix, when the harness cannot run here (test/global-setup.ts installs it all). */
function requirePrerequisites(): void {
  const absent: string[] = [];
  if (!existsSync(toolPath('ghz'))) absent.push(`ghz is not installed: ${INSTALL_HINT}`);
  if (spawnSync('go', ['version'], { timeout: 10_000 }).status !== 0)
    absent.push(`Go is not on PATH: ${INSTALL.go}`);
  if (!existsSync(CONNECT_NODE_PACKAGE))
    absent.push(`the bench packages are not installed: run \`${INSTALL.benchPackages}\``);
  if (absent.length > 0) throw new Error(absent.join('; '));
}

requirePrerequisites();

const bench = (args: string[]) => runTs('bench/run.ts', args);

describe('the benchmark statistics', () => {
  it('takes the median of an odd and an even number of runs', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });

  it('compares run by run, skipping rounds where either figure is missing', () => {
    const r = roundRatios([10, 20, null, 30], [5, 40, 7, 10]);
    expect(r.samples).toEqual([2, 0.5, null, 3]);
    expect(r).toMatchObject({ median: 2, min: 0.5, max: 3 });
  });

  it("puts the twin's ratio beside each ratio goal the run measured, and beside no other", () => {
    const summary = (median: number) => ({ median, min: median, max: median, samples: [median] });
    const every = (median: number) =>
      Object.fromEntries(
        METRIC_NAMES.map((m) => [m, summary(median)]),
      ) as BenchResult['ratios']['ours/ours-twin'];
    const targets = checkTargets(
      {},
      { 'ours/grpc-js-mtls': every(1.02), 'ours/ours-twin': every(0.97) },
    );
    for (const t of targets) {
      const measured = t.of === 'ours/grpc-js-mtls';
      expect(t.noise, t.text).toEqual(measured ? summary(0.97) : null);
    }
  });

  it('rotates the order of servers from round to round', () => {
    expect(rotate(['a', 'b', 'c'], 0)).toEqual(['a', 'b', 'c']);
    expect(rotate(['a', 'b', 'c'], 1)).toEqual(['b', 'c', 'a']);
    expect(rotate(['a', 'b', 'c'], 4)).toEqual(['b', 'c', 'a']);
  });
});

describe('the CPU profile summary', () => {
  it("counts a bundle's frames to the package or source file its source map names", async () => {
    const dir = await tempDir();
    try {
      // A bundle like dist/server.cjs: our module and a package's, one file, a map beside it.
      await mkdir(join(dir.path, 'src/server'), { recursive: true });
      await mkdir(join(dir.path, 'node_modules/some-pkg'), { recursive: true });
      await writeFile(
        join(dir.path, 'src/server/handler.ts'),
        '// One.\n// Two.\nexport function handleCall(n: number): number {\n  return n * 2;\n}\n',
      );
      await writeFile(
        join(dir.path, 'node_modules/some-pkg/index.js'),
        '// One.\n// Two.\nexports.packageWork = function packageWork(n) {\n  return n + 1;\n};\n',
      );
      await writeFile(
        join(dir.path, 'src/main.ts'),
        "import { handleCall } from './server/handler';\n" +
          "import { packageWork } from 'some-pkg';\n" +
          'console.log(handleCall(packageWork(1)));\n',
      );
      const bundle = join(dir.path, 'dist/main.cjs');
      await build({
        absWorkingDir: dir.path,
        entryPoints: ['src/main.ts'],
        outfile: bundle,
        bundle: true,
        platform: 'node',
        format: 'cjs',
        sourcemap: true,
        logLevel: 'silent',
      });
      // Frames as V8 writes them: a file URL, and the 0-based position of each function in the bundle.
      const lines = (await readFile(bundle, 'utf8')).split('\n');
      const frameOf = (name: string, text: string) => {
        const line = lines.findIndex((l) => l.includes(text));
        expect(line, text).toBeGreaterThanOrEqual(0);
        const columnNumber = lines[line]!.indexOf(text);
        return {
          functionName: name,
          url: pathToFileURL(bundle).href,
          lineNumber: line,
          columnNumber,
        };
      };
      const nodes = [
        { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: -1, columnNumber: -1 } },
        { id: 2, callFrame: frameOf('handleCall', 'function handleCall') },
        { id: 3, callFrame: frameOf('packageWork', 'function packageWork') },
      ];
      await mkdir(join(dir.path, 'profiles'));
      await writeFile(
        join(dir.path, 'profiles/ours.cpuprofile'),
        JSON.stringify({ nodes, samples: [2, 2, 3, 2], timeDeltas: [10, 10, 10, 10] }),
      );
      const summary = await summarizeProfiles(join(dir.path, 'profiles'));
      expect(summary?.packages).toEqual([
        { name: 'ours: src/server/handler', percent: 75 },
        { name: 'some-pkg', percent: 25 },
      ]);
      expect(summary?.topFunctions.map((f) => f.name)).toEqual([
        'handleCall src/server/handler.ts:3',
        'packageWork some-pkg/index.js:3',
      ]);
    } finally {
      await dir.remove();
    }
  });
});

describe('the variants of our server that price one feature, or the host, by difference', () => {
  const built = {
    ours: 'dist/server.cjs',
    grpcJsServer: 'grpc-js-server.ts',
    connectServer: 'connect-server.ts',
    echoDescriptor: 'echo.binpb',
    goServer: 'go-server',
    newConns: 'newconns',
  };
  const specs = serverSpecs(built, pkiFiles('/pki'));
  const without = (env: Record<string, string>, name: string) =>
    Object.fromEntries(Object.entries(env).filter(([k]) => k !== name));

  it('runs ours without the access line with everything else as shipped, metrics included', () => {
    const variant = specs['ours-no-access-log'];
    expect(variant.command).toEqual(specs.ours.command);
    expect(variant.env.ACCESS_LOG).toBe('false');
    expect(without(variant.env, 'ACCESS_LOG')).toEqual(without(specs.ours.env, 'ACCESS_LOG'));
  });

  it('runs the twin exactly as ours, in a process of its own', () => {
    expect(specs['ours-twin'].command).toEqual(specs.ours.command);
    expect(specs['ours-twin'].env).toEqual(specs.ours.env);
  });

  it('runs ours without metrics with everything else as shipped, the access line included', () => {
    const variant = specs['ours-no-metrics'];
    expect(variant.command).toEqual(specs.ours.command);
    expect(variant.env.METRICS_ADDRESS).toBeUndefined();
    expect(variant.env).toEqual(without(specs.ours.env, 'METRICS_ADDRESS'));
  });
});

describe('npm run bench options', () => {
  it('refuses a duration in a smoke run, naming the option', async () => {
    const r = await bench(['--smoke', '--duration', '5']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--smoke sets its own counts; drop --duration');
  });

  it('refuses an unknown server, listing the known ones', async () => {
    const r = await bench(['--servers', 'ours,nginx']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      `--servers: unknown "nginx"; choose from ${SERVER_NAMES.join(', ')}`,
    );
  });
});

describe('npm run bench --smoke', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let run: Awaited<ReturnType<typeof bench>>;
  let result: BenchResult;
  let out: string;

  beforeAll(async () => {
    dir = await tempDir('bench-smoke-');
    out = join(dir.path, 'result.json');
    // Bounded by the harness itself: every server start, ghz run and build has its own time limit.
    run = await bench(['--smoke', '--out', out]);
    if (run.code === 0) result = JSON.parse(await readFile(out, 'utf8')) as BenchResult;
  }, 120_000);
  afterAll(async () => {
    await dir.remove();
  });

  it('builds, starts every server and drives each through every scenario', () => {
    expect(run.code, run.stderr).toBe(0);
    expect(result.smoke).toBe(true);
    expect(Object.keys(result.servers).sort()).toEqual([...SERVER_NAMES].sort());
    for (const name of SERVER_NAMES) expect(result.servers[name]?.problems).toEqual([]);
  });

  it('writes every figure for every server, and every ratio and target', () => {
    for (const name of SERVER_NAMES) {
      const metrics = result.servers[name]!.metrics;
      for (const metric of METRIC_NAMES) {
        expect.soft(metrics[metric].median, `${name} ${metric}`).toBeGreaterThan(0);
        expect.soft(metrics[metric].samples, `${name} ${metric}`).toHaveLength(1);
      }
    }
    expect(Object.keys(result.ratios).sort()).toEqual(
      [
        'ours/connect-node',
        'ours/grpc-go',
        'ours/grpc-js-mtls',
        'ours-no-access-log/grpc-js-mtls',
        'ours/ours-no-access-log',
        'ours/ours-no-metrics',
        'ours/ours-twin',
      ].sort(),
    );
    for (const ratios of Object.values(result.ratios))
      for (const metric of METRIC_NAMES) expect(ratios[metric].median).toBeGreaterThan(0);
    for (const target of result.targets) {
      expect.soft(target.value, target.text).not.toBeNull();
      // Each ratio goal carries its noise floor, the twin's ratio of the same figure.
      if (target.of !== 'ours')
        expect
          .soft(target.noise, target.text)
          .toEqual(result.ratios['ours/ours-twin']![target.metric]);
    }
    expect(result.machine.cores).toBeGreaterThan(0);
    expect(result.machine.node).toBe(process.version);
    expect(result.pinning.note).toMatch(/^(pinned with taskset|not pinned: )/);
  });

  it('prints the Markdown table, also written beside the JSON, with the command to reproduce', async () => {
    const markdown = await readFile(join(dir.path, 'result.md'), 'utf8');
    expect(run.stdout).toBe(markdown);
    for (const name of SERVER_NAMES) expect(markdown).toContain(SERVER_LABELS[name]);
    expect(markdown).toContain('| unary throughput ≥ 0.95 × bare grpc-js mTLS |');
    expect(markdown).toContain('| target | figure | met | noise floor (ours/ours-twin) |');
    expect(markdown).toContain(`Reproduce: \`npm run bench -- --smoke --out ${out}\``);
  });
});
