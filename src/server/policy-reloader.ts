// Following the policy file on disk, as tls-reloader.ts follows the TLS files:
// poll, check a changed file whole, swap only a good one, keep the last good
// policy otherwise and say why (each distinct reason once).
//
// Polling the file's content, not fs.watch: a Kubernetes ConfigMap volume is
// updated by swapping its `..data` symlink to a new folder, which changes no
// watched inode of `policy.json` itself; reading through the path always sees
// the whole old file or the whole new one.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describePolicy, readPolicyFile, type AuthzPolicy } from './policy-file.js';
import type { ReloadLog, ReloadResult } from '../tls/reloader.js';

const digest = (raw: string | Buffer) => createHash('sha256').update(raw).digest('hex');

export class PolicyReloader {
  private timer: NodeJS.Timeout | null = null;
  private current: string;
  private lastRejected: string | null = null;
  private running = false;

  constructor(
    private readonly path: string,
    /** The text of the policy in use (the start-up load). */
    initialRaw: string,
    private readonly known: ReadonlySet<string> | null,
    private readonly log: ReloadLog,
    private readonly onReload: (p: AuthzPolicy) => void,
  ) {
    this.current = digest(initialRaw);
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Told the result of every poll (the metrics count reloads). */
  onResult: ((result: ReloadResult) => void) | null = null;

  /** One poll. Exposed for tests and SIGHUP. */
  async check(): Promise<ReloadResult> {
    const result = await this.poll();
    this.onResult?.(result);
    return result;
  }

  private async poll(): Promise<ReloadResult> {
    if (this.running) return 'busy';
    this.running = true;
    try {
      const seen = await readFile(this.path).then(digest, () => null);
      if (seen === this.current) return 'unchanged';
      let loaded: { policy: AuthzPolicy; raw: string };
      try {
        loaded = await readPolicyFile(this.path, this.known);
      } catch (err) {
        const message = (err as Error).message;
        if (message !== this.lastRejected) {
          this.log.error(
            { err: message, file: this.path },
            'refused new authorization policy; still using the last good policy',
          );
          this.lastRejected = message;
        }
        return 'rejected';
      }
      const print = digest(loaded.raw);
      if (print === this.current) return 'unchanged';
      this.current = print;
      this.lastRejected = null;
      this.onReload(loaded.policy);
      this.log.info(
        { file: this.path, policy: describePolicy(loaded.policy) },
        'reloaded authorization policy; new calls use it',
      );
      return 'reloaded';
    } finally {
      this.running = false;
    }
  }
}
