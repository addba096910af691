// Medians with their spread, and ratios taken run by run: in each round every
// server is measured back to back, so a ratio compares two figures taken under
// the same background load, and the median of those ratios is what we report.

export interface Summary {
  /** One value per round, in round order; null where that round had none. */
  samples: (number | null)[];
  median: number | null;
  min: number | null;
  max: number | null;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(samples: (number | null)[]): Summary {
  const values = samples.filter((v): v is number => v !== null && Number.isFinite(v));
  return {
    samples,
    median: median(values),
    min: values.length > 0 ? Math.min(...values) : null,
    max: values.length > 0 ? Math.max(...values) : null,
  };
}

/** ours/other for each round where both have a figure. */
export function roundRatios(ours: (number | null)[], other: (number | null)[]): Summary {
  return summarize(
    ours.map((a, i) => {
      const b = other[i];
      return a === null || b === null || b === undefined || b === 0 ? null : a / b;
    }),
  );
}

/** Rotates a list by `round` places, so each server takes each position in turn across rounds. */
export function rotate<T>(items: readonly T[], round: number): T[] {
  if (items.length === 0) return [];
  const k = round % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}
