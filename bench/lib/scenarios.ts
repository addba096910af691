// What is measured: four load scenarios, plus start-up and idle memory taken
// each time a server starts, and memory under load taken during the throughput
// run. Each yields named metrics; every server reports every metric.
import type { GhzRun, Limit, NewConnsRun } from './load.js';

export const SCENARIO_NAMES = ['unary-c1', 'unary-c50', 'stream', 'connections'] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** Messages per ServerStream call: our server's maximum (src/server/echo-service.ts STREAM_LIMITS). */
export const STREAM_COUNT = 1000;
/** Fewer in a smoke run, which only checks that every part works. */
const SMOKE_STREAM_COUNT = 10;

export type Load = { kind: 'ghz'; run: GhzRun } | { kind: 'newconns'; run: NewConnsRun };

export interface Scenario {
  name: ScenarioName;
  summary: string;
  load: (seconds: number | null) => Load;
}

/**
 * A smoke run (seconds = null) sends a fixed small count instead of running for a time;
 * enough unary calls at c=50 for the server's CPU time to register (10 ms ticks).
 */
const limit = (seconds: number | null, smokeTotal: number): Limit =>
  seconds === null ? { total: smokeTotal } : { seconds };

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  'unary-c1': {
    name: 'unary-c1',
    summary: 'Echo, 1 call at a time on 1 connection: latency',
    load: (s) => ({
      kind: 'ghz',
      run: {
        method: 'Echo',
        data: { message: 'hello' },
        concurrency: 1,
        connections: 1,
        limit: limit(s, 10),
      },
    }),
  },
  'unary-c50': {
    name: 'unary-c50',
    summary: 'Echo, 50 calls in flight over 4 connections: throughput (and RSS under load)',
    load: (s) => ({
      kind: 'ghz',
      run: {
        method: 'Echo',
        data: { message: 'hello' },
        concurrency: 50,
        connections: 4,
        limit: limit(s, 2000),
      },
    }),
  },
  stream: {
    name: 'stream',
    summary: `ServerStream of ${STREAM_COUNT} messages, 4 streams in flight on 1 connection: messages per second`,
    load: (s) => ({
      kind: 'ghz',
      run: {
        method: 'ServerStream',
        data: {
          message: 'stream',
          count: s === null ? SMOKE_STREAM_COUNT : STREAM_COUNT,
          interval_ms: 0,
        },
        concurrency: 4,
        connections: 1,
        limit: limit(s, 4),
      },
    }),
  },
  connections: {
    name: 'connections',
    summary:
      'each Echo on a fresh connection (TCP, full TLS handshake with client certificate, HTTP/2), 4 at a time',
    load: (s) => ({
      kind: 'newconns',
      // The count cap sits far above what one core can handshake, so time is what ends a real run.
      run:
        s === null
          ? { concurrency: 4, seconds: 30, maxCalls: 8 }
          : { concurrency: 4, seconds: s, maxCalls: s * 20_000 },
    }),
  },
};

export type Better = 'higher' | 'lower';

export interface MetricDef {
  label: string;
  unit: string;
  better: Better;
  /** The scenario that produces it; null for start-up and idle memory, taken at every start. */
  scenario: ScenarioName | null;
  digits: number;
}

export const METRICS = {
  unaryC50Rps: {
    label: 'unary c=50 RPS',
    unit: 'calls/s',
    better: 'higher',
    scenario: 'unary-c50',
    digits: 0,
  },
  unaryC50P50Ms: {
    label: 'c=50 p50',
    unit: 'ms',
    better: 'lower',
    scenario: 'unary-c50',
    digits: 2,
  },
  unaryC50P99Ms: {
    label: 'c=50 p99',
    unit: 'ms',
    better: 'lower',
    scenario: 'unary-c50',
    digits: 2,
  },
  unaryC50CpuUsPerCall: {
    label: 'server CPU per call, c=50',
    unit: 'µs',
    better: 'lower',
    scenario: 'unary-c50',
    digits: 1,
  },
  unaryC50CpuPct: {
    label: 'server CPU busy, c=50 (100 = its core saturated)',
    unit: '%',
    better: 'higher',
    scenario: 'unary-c50',
    digits: 0,
  },
  unaryC1Rps: {
    label: 'unary c=1 RPS',
    unit: 'calls/s',
    better: 'higher',
    scenario: 'unary-c1',
    digits: 0,
  },
  unaryC1P50Ms: { label: 'c=1 p50', unit: 'ms', better: 'lower', scenario: 'unary-c1', digits: 3 },
  unaryC1P99Ms: { label: 'c=1 p99', unit: 'ms', better: 'lower', scenario: 'unary-c1', digits: 3 },
  streamMsgsPerS: {
    label: 'stream msgs/s',
    unit: 'msgs/s',
    better: 'higher',
    scenario: 'stream',
    digits: 0,
  },
  connectionsPerS: {
    label: 'new connections (TLS handshake + 1 call)',
    unit: 'conns/s',
    better: 'higher',
    scenario: 'connections',
    digits: 0,
  },
  connectionP50Ms: {
    label: 'new connection + call p50',
    unit: 'ms',
    better: 'lower',
    scenario: 'connections',
    digits: 2,
  },
  startupMs: {
    label: 'start-up, spawn to serving',
    unit: 'ms',
    better: 'lower',
    scenario: null,
    digits: 0,
  },
  idleRssMiB: {
    label: 'idle RSS (1 s after serving)',
    unit: 'MiB',
    better: 'lower',
    scenario: null,
    digits: 1,
  },
  loadRssMiB: {
    label: 'RSS under load (peak, unary c=50)',
    unit: 'MiB',
    better: 'lower',
    scenario: 'unary-c50',
    digits: 1,
  },
} as const satisfies Record<string, MetricDef>;

export type MetricName = keyof typeof METRICS;
export const METRIC_NAMES = Object.keys(METRICS) as MetricName[];
