// The Node process metrics, for the server's and the client's registries alike:
// prom-client's default metrics, collector by collector (prom.ts says why not
// through its index), with two differences:
//   - the CPU counters are this file's: prom-client's own (processCpuTotal)
//     loads @opentelemetry/api for exemplars. Same names and help; the value
//     is the process's CPU time since it started, as Prometheus's other clients
//     report it (prom-client counts from when the metric was made);
//   - nodejs_active_{handles,requests,resources}_total are left out: gauges named
//     like counters, which Prometheus's linter (`promtool check metrics`)
//     rejects; nodejs_active_handles{type} and its siblings carry the same
//     counts by type.
import { Counter, DEFAULT_COLLECTORS, type CollectorName, type Registry } from './prom.js';

/** prom-client's default collectors but processCpuTotal, in its order. */
export const PROCESS_COLLECTORS = Object.keys(DEFAULT_COLLECTORS) as CollectorName[];

/** The three gauges promtool rejects (see the top of this file). */
export const LEFT_OUT = ['handles', 'requests', 'resources'].map((k) => `nodejs_active_${k}_total`);

/** collectDefaultMetrics' own default: the event-loop delay histogram's resolution, in ms. */
const EVENT_LOOP_PRECISION_MS = 10;

export function collectProcessMetrics(registry: Registry): void {
  cpuCounters(registry);
  const config = { eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS };
  for (const name of PROCESS_COLLECTORS) DEFAULT_COLLECTORS[name](registry, config);
  for (const name of LEFT_OUT) registry.removeSingleMetric(name);
}

/** process_cpu_{user,system,}_seconds_total, read from process.cpuUsage() at each scrape. */
function cpuCounters(registry: Registry): void {
  const registers = [registry];
  // Registered first: a scrape reads the metrics in order, so this one's collect sets
  // all three, from one reading, before the other two are read (as prom-client's does).
  new Counter({
    name: 'process_cpu_user_seconds_total',
    help: 'Total user CPU time spent in seconds.',
    registers,
    collect() {
      const { user, system: sys } = process.cpuUsage();
      setCounter(this, user / 1e6);
      setCounter(system, sys / 1e6);
      setCounter(total, (user + sys) / 1e6);
    },
  });
  const system = new Counter({
    name: 'process_cpu_system_seconds_total',
    help: 'Total system CPU time spent in seconds.',
    registers,
  });
  const total = new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent in seconds.',
    registers,
  });
}

/** A counter read from a running total: prom-client's Counter can only be reset and increased. */
function setCounter(counter: Counter, value: number): void {
  counter.reset();
  counter.inc(value);
}
