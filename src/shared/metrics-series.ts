// Counters and histograms whose series are all made in advance, for the
// per-call metrics. prom-client's own Counter and Histogram hash the label
// values into a string on every inc() or observe(), even through labels();
// here each series is a plain object resolved once (per method, per status
// code), so counting a call is a field increment. The text exposition is still
// prom-client's: a family is registered in its Registry as a metric, and
// formatted with everything else at scrape time.
import type { Metric, Registry } from './prom.js';

export interface CounterSeries {
  value: number;
}

export class HistogramSeries {
  /** counts[i]: observations ≤ bounds[i] only (made cumulative at scrape time). */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count += 1;
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= (b[i] as number)) {
        (this.counts[i] as number) += 1;
        return;
      }
    }
  }
}

type Labels = Record<string, string>;
interface Value {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** What prom-client's Registry reads of a metric: its name and get(). */
abstract class Family<S> {
  readonly aggregator = 'sum';
  protected readonly series: { labels: Labels; s: S }[] = [];

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'histogram',
    private readonly labelNames: readonly string[],
  ) {}

  protected abstract make(): S;
  protected abstract values(labels: Labels, s: S): Value[];

  /** A new series; call it once per label set (at registration), never per call. */
  child(values: readonly string[]): S {
    const labels: Labels = {};
    this.labelNames.forEach((n, i) => (labels[n] = values[i] ?? ''));
    const s = this.make();
    this.series.push({ labels, s });
    return s;
  }

  get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Value[];
  }> {
    const values = this.series.flatMap(({ labels, s }) => this.values(labels, s));
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    });
  }

  /** prom-client types its registry for its own classes; it reads only name and get(). */
  registerIn(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }
}

export class CounterFamily extends Family<CounterSeries> {
  constructor(name: string, help: string, labelNames: readonly string[]) {
    super(name, help, 'counter', labelNames);
  }

  protected make(): CounterSeries {
    return { value: 0 };
  }

  protected values(labels: Labels, s: CounterSeries): Value[] {
    return [{ labels, value: s.value }];
  }
}

export class HistogramFamily extends Family<HistogramSeries> {
  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    private readonly bounds: readonly number[],
  ) {
    super(name, help, 'histogram', labelNames);
  }

  protected make(): HistogramSeries {
    return new HistogramSeries(this.bounds);
  }

  protected values(labels: Labels, s: HistogramSeries): Value[] {
    let acc = 0;
    const out: Value[] = this.bounds.map((le, i) => {
      acc += s.counts[i] ?? 0;
      return {
        labels: { ...labels, le: String(le) },
        value: acc,
        metricName: `${this.name}_bucket`,
      };
    });
    out.push({
      labels: { ...labels, le: '+Inf' },
      value: s.count,
      metricName: `${this.name}_bucket`,
    });
    out.push({ labels, value: s.sum, metricName: `${this.name}_sum` });
    out.push({ labels, value: s.count, metricName: `${this.name}_count` });
    return out;
  }
}
