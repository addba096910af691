import { describe, expect, it } from 'vitest';
import { runSoak } from '../scripts/soak/soak.js';

describe('the short soak', () => {
  it('loses no call through two leaf re-issues, a three-step CA rollover and a rolling restart', async () => {
    const events: string[] = [];
    const report = await runSoak({
      rateHz: 40,
      steadyMs: 400,
      drainDelayMs: 400,
      log: (l) => events.push(l),
    });
    expect(events).toEqual([
      'leaf re-issue 1 ...',
      'leaf re-issue 2 ...',
      'CA rollover step 1/3 ...',
      'CA rollover step 2/3 ...',
      'CA rollover step 3/3 ...',
      'rolling restart server-a ...',
      'rolling restart server-b ...',
    ]);
    expect(report.failures).toEqual([]);
    expect(report.failed).toBe(0);
    expect(report.calls).toBeGreaterThan(100);
    // Round-robin over both replicas, before and after each restart.
    expect(report.perServer['server-a']).toBeGreaterThan(report.calls / 4);
    expect(report.perServer['server-b']).toBeGreaterThan(report.calls / 4);
    for (const phase of report.phases) expect(phase.calls, phase.phase).toBeGreaterThan(0);
  }, 120_000);
});
