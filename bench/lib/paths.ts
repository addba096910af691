// Where the benchmark finds its parts and puts what it builds.
import { join } from 'node:path';
import { PROJECT_ROOT, PROTO_ROOT } from '../../src/shared/proto.js';

export const BENCH_ROOT = join(PROJECT_ROOT, 'bench');
export const PROTO_FILE = join(PROTO_ROOT, 'echo', 'v1', 'echo.proto');
export { PROJECT_ROOT, PROTO_ROOT };

/**
 * Compiled comparison servers and Go binaries. Inside bench/node_modules, the
 * usual place for build caches (`node_modules/.cache`): git, ESLint and Prettier
 * already skip it, `npm ci --prefix bench` clears it, and the compiled servers
 * resolve their packages from bench/node_modules and the root's node_modules.
 */
export const BUILD_DIR = join(BENCH_ROOT, 'node_modules', '.cache', 'bench-build');

/** Present once `npm ci --prefix bench` has run. */
export const CONNECT_NODE_PACKAGE = join(
  BENCH_ROOT,
  'node_modules',
  '@connectrpc',
  'connect-node',
  'package.json',
);

/** ghz as scripts/install-test-tools.sh builds it; GHZ overrides. */
export const GHZ = process.env.GHZ ?? join(PROJECT_ROOT, '.tools', 'bin', 'ghz');

export const INSTALL = {
  benchPackages: 'npm ci --prefix bench',
  tools: 'bash scripts/install-test-tools.sh',
  go: 'install Go (https://go.dev/dl/ or apt-get install golang-go)',
} as const;
