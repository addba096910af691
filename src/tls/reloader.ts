// Following TLS files on disk, for the server and the client alike: a changed
// set (certificate, key, CA bundle) is used only once it passes, as a unit, the
// same checks as at start-up; otherwise the last good set stays. A configured
// CRL belongs to the set: signed by its CA and before its nextUpdate.
//
// grpc-js's FileWatcherCertificateProvider reads the three files one by one, so
// a Kubernetes Secret-volume swap between two reads can pair an old certificate
// with a new key; checking the set as a unit turns that into one refused poll.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { CRL_WARN_DAYS } from './crl.js';
import {
  describeCertificate,
  loadTlsMaterial,
  type TlsFiles,
  type TlsMaterial,
} from './material.js';

/** The two calls of a pino logger this needs; anything with them will do. */
export interface ReloadLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  /** The CRL's nextUpdate warning; `error` when absent. */
  warn?(obj: object, msg: string): void;
}

export const SILENT_LOG: ReloadLog = { info: () => {}, error: () => {}, warn: () => {} };

/** Repeat the CRL warning at most this often while it stands (a poll may run every second). */
const CRL_WARNING_EVERY_MS = 3_600_000;

export type ReloadResult = 'unchanged' | 'reloaded' | 'rejected' | 'busy';

function fingerprint(m: {
  cert: Buffer;
  key: Buffer;
  ca: Buffer;
  crl?: Buffer | undefined;
}): string {
  return createHash('sha256')
    .update(m.cert)
    .update('\0')
    .update(m.key)
    .update('\0')
    .update(m.ca)
    .update('\0')
    .update(m.crl ?? '')
    .digest('hex');
}

/**
 * Polls the three files. Polling (rather than fs.watch) sees Kubernetes'
 * `..data` symlink swaps and works on every file system; the files are small.
 */
export class TlsReloader {
  private timer: NodeJS.Timeout | null = null;
  private current: string;
  private lastRejected: string | null = null;
  private running = false;
  private crlNextUpdate: Date | null;
  private crlWarnedAt = 0;

  constructor(
    private readonly files: TlsFiles,
    private readonly usage: 'server' | 'client',
    /** The set already in use, or null when the first poll is the first load. */
    initial: TlsMaterial | null,
    private readonly log: ReloadLog,
    private readonly onReload: (m: TlsMaterial) => void,
  ) {
    this.current = initial ? fingerprint(initial) : '';
    this.crlNextUpdate = initial?.crlInfo?.nextUpdate ?? null;
    this.warnCrl();
  }

  /** Like the certificate expiry warning: a CRL past nextUpdate refuses every reload, then every peer. */
  private warnCrl(now: Date = new Date()): void {
    if (this.crlNextUpdate === null) return;
    const days = (this.crlNextUpdate.getTime() - now.getTime()) / 86_400_000;
    if (days >= CRL_WARN_DAYS || now.getTime() - this.crlWarnedAt < CRL_WARNING_EVERY_MS) return;
    this.crlWarnedAt = now.getTime();
    (this.log.warn ?? this.log.error).call(
      this.log,
      { crlFile: this.files.crlFile, nextUpdate: this.crlNextUpdate.toISOString() },
      `CRL expires in ${days.toFixed(1)} days; re-sign it with \`npm run gen-certs\``,
    );
  }

  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Cheap change detection: hash the raw files; null when one cannot be read. */
  private async readFingerprint(): Promise<string | null> {
    try {
      const crlFile = this.files.crlFile ?? '';
      const [cert, key, ca, crl] = await Promise.all(
        [this.files.certFile, this.files.keyFile, this.files.caFile, crlFile].map((f) =>
          f === '' ? Promise.resolve(undefined) : readFile(f),
        ),
      );
      return fingerprint({ cert: cert as Buffer, key: key as Buffer, ca: ca as Buffer, crl });
    } catch {
      return null;
    }
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
      if ((await this.readFingerprint()) === this.current) {
        this.warnCrl();
        return 'unchanged';
      }
      let material: TlsMaterial;
      try {
        material = await loadTlsMaterial(this.files, this.usage);
      } catch (err) {
        // A missing or mismatched set may be a swap in progress; report each distinct failure once.
        const message = (err as Error).message;
        if (message !== this.lastRejected) {
          this.log.error(
            { err: message },
            'refused new TLS files; still using the last good credentials',
          );
          this.lastRejected = message;
        }
        return 'rejected';
      }
      const print = fingerprint(material);
      if (print === this.current) return 'unchanged';
      const first = this.current === '';
      this.current = print;
      this.lastRejected = null;
      this.onReload(material);
      this.crlNextUpdate = material.crlInfo?.nextUpdate ?? null;
      this.crlWarnedAt = 0;
      this.log.info(
        {
          certificate: describeCertificate(material.leaf),
          caCount: material.cas.length,
          ...(material.crlInfo === undefined
            ? {}
            : {
                crl: {
                  number: String(material.crlInfo.number),
                  revoked: material.crlInfo.entries.length,
                  nextUpdate: material.crlInfo.nextUpdate.toISOString(),
                },
              }),
        },
        first ? 'loaded TLS credentials' : 'reloaded TLS credentials; new connections use them',
      );
      this.warnCrl();
      return 'reloaded';
    } finally {
      this.running = false;
    }
  }
}
