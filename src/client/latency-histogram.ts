// Call latencies in constant memory: Node's own HDR histogram (perf_hooks), so a
// client that loops for weeks, or a soak of any length, keeps a fixed-size record
// instead of one number per call. Three significant figures: p99 of 1.234 ms is
// reported as 1.234 ms, not rounded to a bucket of the next power of two.
import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

/** Microseconds: below 1 µs a call is not measurable here, above an hour it has failed. */
const LOWEST_US = 1;
const HIGHEST_US = 3_600_000_000;

export class LatencyHistogram {
  readonly #h: RecordableHistogram = createHistogram({
    lowest: LOWEST_US,
    highest: HIGHEST_US,
    figures: 3,
  });

  /** Records one call that took `ms` milliseconds (clamped into the histogram's range). */
  record(ms: number): void {
    const us = Math.round(ms * 1000);
    this.#h.record(Math.min(HIGHEST_US, Math.max(LOWEST_US, us)));
  }

  get count(): number {
    return this.#h.count;
  }

  /** The p-th percentile (0 < p ≤ 100) in milliseconds, to the microsecond; 0 when empty. */
  percentileMs(p: number): number {
    if (this.#h.count === 0) return 0;
    return this.#h.percentile(p) / 1000;
  }
}
