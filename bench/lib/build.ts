// Builds everything a benchmark runs, before any measurement: our server as
// shipped (`npm run build`'s bundle, laid out as in the image), the Node comparison servers compiled to plain
// JavaScript (so none pays for a TypeScript loader at start-up), the serialized
// echo.proto the connect-node server reads, and the grpc-go server and the
// fresh-connection load generator (`go build`, versions pinned in go.sum).
import * as protoLoader from '@grpc/proto-loader';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, cp, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import { bundleApp, builtEntry } from '../../scripts/lib/bundle.js';
import { run } from './processes.js';
import {
  BENCH_ROOT,
  BUILD_DIR,
  CONNECT_NODE_PACKAGE,
  GHZ,
  INSTALL,
  PROJECT_ROOT,
  PROTO_ROOT,
} from './paths.js';

export interface Built {
  ours: string;
  grpcJsServer: string;
  connectServer: string;
  echoDescriptor: string;
  goServer: string;
  newConns: string;
}

/** A required tool or package is missing; the message says how to install it. */
export class MissingToolError extends Error {
  override name = 'MissingToolError';
}

/** Everything the harness needs that it cannot build itself, checked before any work. */
export function checkPrerequisites(): void {
  const missing: string[] = [];
  if (!existsSync(CONNECT_NODE_PACKAGE))
    missing.push(
      `bench packages (@connectrpc/connect-node) are not installed: run \`${INSTALL.benchPackages}\``,
    );
  if (!existsSync(GHZ)) missing.push(`ghz not found at ${GHZ}: run \`${INSTALL.tools}\``);
  if (spawnSync('go', ['version'], { timeout: 10_000 }).status !== 0)
    missing.push(`the Go toolchain is not on PATH: ${INSTALL.go}`);
  if (missing.length > 0) throw new MissingToolError(missing.join('\n'));
}

/** What `buf build -o echo.binpb` would write: echo.proto's FileDescriptorProto, from the project's loader. */
export function serializeEchoDescriptor(): Uint8Array {
  const definition = protoLoader.loadSync('echo/v1/echo.proto', { includeDirs: [PROTO_ROOT] });
  const request = definition['echo.v1.EchoRequest'] as { fileDescriptorProtos: Buffer[] };
  const [file] = request.fileDescriptorProtos;
  if (file === undefined || request.fileDescriptorProtos.length !== 1)
    throw new Error('build: echo.proto was expected to be one file without imports');
  return file;
}

/** Type-checking is `npm run typecheck`'s job; here each file is only stripped of its types. */
async function compileServers(outDir: string): Promise<void> {
  const sourceDir = join(BENCH_ROOT, 'servers');
  await mkdir(outDir, { recursive: true });
  for (const name of (await readdir(sourceDir)).filter((f) => f.endsWith('.ts'))) {
    const source = await readFile(join(sourceDir, name), 'utf8');
    const { outputText, diagnostics } = ts.transpileModule(source, {
      fileName: name,
      reportDiagnostics: true,
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
    });
    if (diagnostics && diagnostics.length > 0) {
      const text = ts.flattenDiagnosticMessageText(diagnostics[0]!.messageText, '\n');
      throw new Error(`build: bench/servers/${name} does not compile: ${text}`);
    }
    await writeFile(join(outDir, name.replace(/\.ts$/, '.js')), outputText);
  }
}

/**
 * `npm run build`'s bundles, into a folder of the harness laid out as the image
 * ships it (dist/ beside proto/, node_modules/ and package.json), so that a
 * benchmark never rewrites the dist/ someone else may be running.
 */
async function buildOurs(): Promise<string> {
  const root = join(BUILD_DIR, 'ours');
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  await bundleApp(root);
  // node_modules/ beside dist/, as in the image: the packages' own files (protos) are read from there.
  await symlink(join(PROJECT_ROOT, 'node_modules'), join(root, 'node_modules'));
  await cp(PROTO_ROOT, join(root, 'proto'), { recursive: true });
  await copyFile(join(PROJECT_ROOT, 'package.json'), join(root, 'package.json'));
  const server = join(root, builtEntry('server'));
  if (!existsSync(server)) throw new Error(`build: the bundler did not produce ${server}`);
  return server;
}

export async function buildAll(log: (line: string) => void): Promise<Built> {
  log('build: our server (bundled into dist/server.cjs, as npm run build does)');
  const ours = await buildOurs();

  log('build: grpc-js and connect-node servers (bench/servers → JavaScript)');
  const serversDir = join(BUILD_DIR, 'servers');
  await compileServers(serversDir);
  const echoDescriptor = join(serversDir, 'echo.binpb');
  await writeFile(echoDescriptor, serializeEchoDescriptor());

  log('build: grpc-go server and connection load (go build)');
  const goDir = join(BENCH_ROOT, 'go-server');
  const goEnv = { ...process.env, GOFLAGS: `${process.env.GOFLAGS ?? ''} -mod=readonly`.trim() };
  const goServer = join(BUILD_DIR, 'go-server');
  const newConns = join(BUILD_DIR, 'newconns');
  // A cold build compiles grpc-go: minutes on two cores; a warm one takes a second or two.
  await run('build: go build (go-server)', ['go', 'build', '-trimpath', '-o', goServer, '.'], {
    cwd: goDir,
    env: goEnv,
    timeoutMs: 600_000,
  });
  await run(
    'build: go build (newconns)',
    ['go', 'build', '-trimpath', '-o', newConns, './newconns'],
    {
      cwd: goDir,
      env: goEnv,
      timeoutMs: 600_000,
    },
  );
  return {
    ours,
    grpcJsServer: join(serversDir, 'grpc-js-server.js'),
    connectServer: join(serversDir, 'connect-server.js'),
    echoDescriptor,
    goServer,
    newConns,
  };
}
