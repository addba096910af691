// prom-client's classes, each loaded from its own file rather than through the
// package's index. The index also loads its Summary (with tdigest and
// bintrees), its Pushgateway (http, https, url), its cluster aggregator and
// every default metric, and one of those pulls in @opentelemetry/api (63 files)
// for exemplars this kit never takes: 20 to 25 ms of start-up and about 3.5 MiB
// of memory on a server that uses none of them (measured with `node -e`,
// requiring the index against these files after grpc-js).
//
// prom-client 15 has no "exports" map, so these paths are as public as its
// index; the version is pinned exactly, and test/metrics-process.test.ts holds
// these to be the very classes the index exports, so an upgrade that moves a
// file fails there rather than at run time.
import { createRequire } from 'node:module';
import type * as Prom from 'prom-client';

const load = createRequire(import.meta.url);

/** Loads one of prom-client's own files, typed as what its index exports under that name. */
function part<T>(file: string): T {
  return load(`prom-client/lib/${file}`) as T;
}

export const Registry = part<typeof Prom.Registry>('registry');
export type Registry = Prom.Registry;
export const Counter = part<typeof Prom.Counter>('counter');
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = part<typeof Prom.Gauge>('gauge');
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Metric = Prom.Metric;

/**
 * A collector of prom-client's default metrics (lib/metrics/NAME.js): it makes
 * its metrics in `registry`; `config` takes collectDefaultMetrics' options.
 */
export type DefaultCollector = (registry: Registry, config: Record<string, unknown>) => void;

export function defaultCollector(name: string): DefaultCollector {
  return part<DefaultCollector>(`metrics/${name}`);
}
