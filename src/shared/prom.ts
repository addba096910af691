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
//
// Each is imported by a literal path, so that the bundle (scripts/lib/bundle.ts)
// holds them like any other module and nothing is left to find in node_modules/
// at start-up.
import type * as Prom from 'prom-client';
import counter from 'prom-client/lib/counter.js';
import gauge from 'prom-client/lib/gauge.js';
import eventLoopLag from 'prom-client/lib/metrics/eventLoopLag.js';
import gc from 'prom-client/lib/metrics/gc.js';
import heapSizeAndUsed from 'prom-client/lib/metrics/heapSizeAndUsed.js';
import heapSpacesSizeAndUsed from 'prom-client/lib/metrics/heapSpacesSizeAndUsed.js';
import osMemoryHeap from 'prom-client/lib/metrics/osMemoryHeap.js';
import processHandles from 'prom-client/lib/metrics/processHandles.js';
import processMaxFileDescriptors from 'prom-client/lib/metrics/processMaxFileDescriptors.js';
import processOpenFileDescriptors from 'prom-client/lib/metrics/processOpenFileDescriptors.js';
import processRequests from 'prom-client/lib/metrics/processRequests.js';
import processResources from 'prom-client/lib/metrics/processResources.js';
import processStartTime from 'prom-client/lib/metrics/processStartTime.js';
import version from 'prom-client/lib/metrics/version.js';
import registry from 'prom-client/lib/registry.js';

export const Registry = registry as typeof Prom.Registry;
export type Registry = Prom.Registry;
export const Counter = counter as typeof Prom.Counter;
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge = gauge as typeof Prom.Gauge;
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export type Metric = Prom.Metric;

/**
 * A collector of prom-client's default metrics (lib/metrics/NAME.js): it makes
 * its metrics in `registry`; `config` takes collectDefaultMetrics' options.
 */
export type DefaultCollector = (registry: Registry, config: Record<string, unknown>) => void;

/**
 * prom-client's default collectors but processCpuTotal (metrics-process.ts says
 * why), by the name of their file, in its order (lib/defaultMetrics.js).
 */
const collectors = {
  processStartTime,
  osMemoryHeap,
  processOpenFileDescriptors,
  processMaxFileDescriptors,
  eventLoopLag,
  // Node 20 and 24 both have process.getActiveResourcesInfo, which this one reads.
  processResources,
  processHandles,
  processRequests,
  heapSizeAndUsed,
  heapSpacesSizeAndUsed,
  version,
  gc,
};
export type CollectorName = keyof typeof collectors;
export const DEFAULT_COLLECTORS = collectors as Record<CollectorName, DefaultCollector>;
