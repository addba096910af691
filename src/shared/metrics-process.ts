// The Node process metrics, for the server's and the client's registries alike.
import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's Node process metrics, less three gauges named like counters
 * (nodejs_active_{handles,requests,resources}_total), which Prometheus's own
 * linter (`promtool check metrics`) rejects; nodejs_active_handles{type} and
 * its siblings carry the same counts by type.
 */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const kind of ['handles', 'requests', 'resources'])
    registry.removeSingleMetric(`nodejs_active_${kind}_total`);
}
