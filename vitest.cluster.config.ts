import { defineConfig } from 'vitest/config';

// `npm run test:cluster`: one real single-node cluster, one file, its steps in order.
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    // Each step waits on the cluster with its own, shorter timeouts; this is the backstop.
    testTimeout: 300_000,
    // Setup may build the components (about 40 min the first time) and the images.
    hookTimeout: 150 * 60_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
  },
});
