// README step 7 on the cluster: a leaf rotation, then the three-step CA rollover; each
// picked up by every pod without a failed call and without a restart.
import { describe, expect, it } from 'vitest';
import {
  applySecrets,
  genCerts,
  measured,
  restarts,
  seconds,
  sh,
  waitForReloads,
} from '../helpers/user-shell.js';
import { calls, clientPod, failed, since } from '../helpers/workload-logs.js';

export function rotationTests(): void {
  describe('certificate rotation (README step 7)', () => {
    it('rotates the certificates: every pod logs the reload, no failed call, no restart', async () => {
      const t = Date.now();
      genCerts();
      sh(applySecrets);
      const slowest = await waitForReloads(t, 'rotation');
      measured('rotation, Secrets applied to the last pod reloaded', seconds(slowest));
      expect(failed(since(calls(clientPod()), t))).toEqual([]);
      expect(restarts().every((n) => n === 0)).toBe(true);
    });

    it('rolls the CA over in three steps: every pod reloads each, no failed call, no restart', async () => {
      const t = Date.now();
      for (const step of [1, 2, 3]) {
        const s = Date.now();
        genCerts('--rotate-ca');
        sh(applySecrets);
        const slowest = await waitForReloads(s, `CA rollover step ${step}`);
        measured(
          `CA rollover step ${step}, Secrets applied to the last pod reloaded`,
          seconds(slowest),
        );
      }
      expect(failed(since(calls(clientPod()), t))).toEqual([]);
      expect(restarts().every((n) => n === 0)).toBe(true);
    });
  });
}
