import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The real cluster has its own command and config: npm run test:cluster.
    exclude: ['test/cluster/**', 'node_modules/**'],
    // Installs the real peers (cached) so the whole suite runs right after `npm ci`.
    globalSetup: ['test/global-setup.ts'],
    // Real servers, real handshakes and child processes: generous, but bounded.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Files that spawn servers and tools run in parallel forks; two cores, so two at a time.
    pool: 'forks',
    maxWorkers: 2,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/generated/**', 'src/bin/**'],
      reporter: ['text-summary', 'text'],
      // The floor, as `go test -cover` prints and CI enforces: fail below it.
      thresholds: { lines: 80, functions: 80, statements: 80, branches: 70 },
    },
  },
});
