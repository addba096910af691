// The Node process metrics (src/shared/metrics-process.ts) and the way
// prom-client is loaded (src/shared/prom.ts): its classes from their own files,
// so that a server never loads the package index and what that drags in.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as promIndex from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LEFT_OUT, collectProcessMetrics } from '../src/shared/metrics-process.js';
import { Counter, Gauge, Registry } from '../src/shared/prom.js';
import { PROJECT_ROOT } from '../src/shared/proto.js';

const run = promisify(execFile);

async function names(registry: promIndex.Registry): Promise<string[]> {
  return (await registry.getMetricsAsJSON()).map((m) => m.name).sort();
}

/** The first sample of each metric named, all from one scrape. */
async function samples(registry: promIndex.Registry, ...wanted: string[]): Promise<number[]> {
  const metrics = await registry.getMetricsAsJSON();
  return wanted.map((name) => {
    const value = metrics.find((m) => m.name === name)?.values[0]?.value;
    if (value === undefined) throw new Error(`${name} has no sample`);
    return value;
  });
}

describe('prom-client, loaded file by file', () => {
  it('gives the very classes its index exports', () => {
    expect(Registry).toBe(promIndex.Registry);
    expect(Counter).toBe(promIndex.Counter);
    expect(Gauge).toBe(promIndex.Gauge);
  });

  it('keeps the index and OpenTelemetry out of a server with metrics on', async () => {
    // A fresh process: builds the server's metrics, then lists the CommonJS modules it loaded.
    const script = `
      import { createRequire } from 'node:module';
      const { ServerMetrics } = await import('./src/server/metrics.ts');
      new ServerMetrics({ leaf: { subject: 'CN=x', serialNumber: '01', validTo: 'Jan 1 00:00:00 2030 GMT' }, cas: [], crls: null });
      console.log(JSON.stringify(Object.keys(createRequire(import.meta.url).cache)));
    `;
    const { stdout } = await run(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      { cwd: PROJECT_ROOT },
    );
    const loaded = JSON.parse(stdout) as string[];
    const prom = loaded.filter((f) => f.includes('/node_modules/prom-client/'));
    expect(prom.some((f) => f.endsWith('/prom-client/lib/registry.js'))).toBe(true);
    expect(prom.some((f) => f.endsWith('/prom-client/lib/metrics/gc.js'))).toBe(true);
    expect(prom.filter((f) => f.endsWith('/prom-client/index.js'))).toEqual([]);
    expect(loaded.filter((f) => f.includes('/@opentelemetry/'))).toEqual([]);
  });
});

describe('the process metrics', () => {
  it("are prom-client's default metrics, less the three gauges promtool rejects", async () => {
    const ours = new Registry();
    collectProcessMetrics(ours);
    const defaults = new promIndex.Registry();
    promIndex.collectDefaultMetrics({ register: defaults });
    const expected = (await names(defaults)).filter((n) => !LEFT_OUT.includes(n));
    expect(LEFT_OUT.every((n) => (defaults.getSingleMetric(n) ?? null) !== null)).toBe(true);
    expect(await names(ours)).toEqual(expected);
  });

  it('report the CPU time the process has used since it started, user plus system', async () => {
    const registry = new Registry();
    collectProcessMetrics(registry);
    const before = process.cpuUsage();
    const [user = 0, system = 0, total = 0] = await samples(
      registry,
      'process_cpu_user_seconds_total',
      'process_cpu_system_seconds_total',
      'process_cpu_seconds_total',
    );
    const after = process.cpuUsage();
    // All three come from one reading, taken between the two around them.
    expect(user).toBeGreaterThanOrEqual(before.user / 1e6);
    expect(user).toBeLessThanOrEqual(after.user / 1e6);
    expect(system).toBeGreaterThanOrEqual(before.system / 1e6);
    expect(system).toBeLessThanOrEqual(after.system / 1e6);
    expect(total).toBeCloseTo(user + system, 9);
  });

  it('grow with the CPU the process spends', async () => {
    const registry = new Registry();
    collectProcessMetrics(registry);
    const [first = 0] = await samples(registry, 'process_cpu_seconds_total');
    const until = process.cpuUsage().user + 20_000;
    while (process.cpuUsage().user < until); // 20 ms of CPU, bounded by the clock of the CPU itself
    const [later = 0] = await samples(registry, 'process_cpu_seconds_total');
    expect(later).toBeGreaterThanOrEqual(first + 0.02);
  });
});
