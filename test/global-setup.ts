// Before any test file: the real peers and the benchmark's packages the suite drives,
// so that `npm test` right after `npm ci` runs the whole suite. Each step is cached
// (scripts/install-test-tools.sh keeps what it built in .tools/), so a second run
// takes about a second; the first one prints a line per tool while it builds.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { CONNECT_NODE_PACKAGE, INSTALL } from '../bench/lib/paths.js';
import { PROJECT_ROOT } from '../src/shared/proto.js';

function step(what: string, command: string, args: string[]): void {
  const run = spawnSync(command, args, { cwd: PROJECT_ROOT, stdio: 'inherit', timeout: 900_000 });
  if (run.status === 0) return;
  const how = run.error ? run.error.message : `exit code ${run.status ?? run.signal}`;
  throw new Error(
    `npm test could not install ${what} (${how}). Fix what the lines above say, then run ` +
      `\`${[command, ...args].join(' ')}\` by hand, or npm test again.`,
  );
}

export default function setup(): void {
  if (spawnSync('go', ['version'], { timeout: 10_000 }).status !== 0)
    throw new Error(
      `npm test needs Go for the real peers it drives: ${INSTALL.go}, then npm test.`,
    );
  step('the real peers (grpc_health_probe, grpcurl, ghz, promtool, Python grpcio)', 'bash', [
    'scripts/install-test-tools.sh',
  ]);
  if (!existsSync(CONNECT_NODE_PACKAGE))
    step('the benchmark packages', 'npm', ['ci', '--prefix', 'bench', '--no-audit', '--no-fund']);
}
