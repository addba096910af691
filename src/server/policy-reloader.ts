// Following the policy file on disk with the poller the TLS files use
// (src/tls/poller.ts): poll, check a changed file whole, swap only a good
// one, keep the last good policy otherwise and say why (each reason once).
//
// Polling the file's content, not fs.watch: a Kubernetes ConfigMap volume is
// updated by swapping its `..data` symlink to a new folder, which changes no
// watched inode of `policy.json` itself; reading through the path always sees
// the whole old file or the whole new one.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describePolicy, readPolicyFile, type AuthzPolicy } from './policy-file.js';
import { Poller, type ReloadResult } from '../tls/poller.js';
import type { ReloadLog } from '../tls/reloader.js';

const digest = (raw: string | Buffer) => createHash('sha256').update(raw).digest('hex');

export class PolicyReloader {
  private readonly poller: Poller<AuthzPolicy>;

  constructor(
    private readonly path: string,
    /** The text of the policy in use (the start-up load). */
    initialRaw: string,
    private readonly known: ReadonlySet<string> | null,
    private readonly log: ReloadLog,
    private readonly onReload: (p: AuthzPolicy) => void,
  ) {
    this.poller = new Poller<AuthzPolicy>(
      {
        peek: () => readFile(this.path).then(digest, () => null),
        load: async () => {
          const { policy, raw } = await readPolicyFile(this.path, this.known);
          return { value: policy, fingerprint: digest(raw) };
        },
        accept: (policy) => {
          this.onReload(policy);
          this.log.info(
            { file: this.path, policy: describePolicy(policy) },
            'reloaded authorization policy; new calls use it',
          );
        },
        refuse: (message) =>
          this.log.error(
            { err: message, file: this.path },
            'refused new authorization policy; still using the last good policy',
          ),
      },
      digest(initialRaw),
    );
  }

  start(intervalMs: number): void {
    this.poller.start(intervalMs);
  }

  stop(): void {
    this.poller.stop();
  }

  /** One poll. Exposed for tests and SIGHUP. */
  async check(): Promise<ReloadResult> {
    return this.poller.check();
  }

  /** Told the result of every poll, timer's or SIGHUP's (the metrics count reloads). */
  set onResult(hook: ((result: ReloadResult) => void) | null) {
    this.poller.onResult = hook;
  }
}
