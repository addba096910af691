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
import { CRL_WARN_DAYS, type CrlInfo } from './crl.js';
import {
  describeCertificate,
  loadTlsMaterial,
  type TlsFiles,
  type TlsMaterial,
} from './material.js';
import { Poller, type ReloadResult } from './poller.js';

export type { ReloadResult } from './poller.js';

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

/** The CRL that passes its nextUpdate first decides when to warn (and when peers get refused). */
function earliestNextUpdate(m: TlsMaterial | null): Date | null {
  const times = (m?.crls ?? []).map((c) => c.nextUpdate.getTime());
  return times.length === 0 ? null : new Date(Math.min(...times));
}

/** For the log line: one CRL as before; a rollover's bundle as a count and totals. */
function describeCrls(crls: CrlInfo[]) {
  const next = earliestNextUpdate({ crls } as TlsMaterial);
  return {
    ...(crls.length === 1 ? { number: String(crls[0]?.number) } : { count: crls.length }),
    revoked: crls.reduce((n, c) => n + c.entries.length, 0),
    nextUpdate: next?.toISOString(),
  };
}

/** Polls the three files (and the CRL) through the shared Poller (poller.ts). */
export class TlsReloader {
  private readonly poller: Poller<TlsMaterial>;
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
    this.poller = new Poller<TlsMaterial>(
      {
        peek: () => this.readFingerprint(),
        load: async () => {
          const material = await loadTlsMaterial(this.files, this.usage);
          return { value: material, fingerprint: fingerprint(material) };
        },
        accept: (material, first) => this.accept(material, first),
        refuse: (message) =>
          this.log.error(
            { err: message },
            'refused new TLS files; still using the last good credentials',
          ),
        unchanged: () => this.warnCrl(),
      },
      initial ? fingerprint(initial) : '',
    );
    this.crlNextUpdate = earliestNextUpdate(initial);
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
    this.poller.start(intervalMs);
  }

  stop(): void {
    this.poller.stop();
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

  /** One poll. Exposed for tests and SIGHUP. */
  async check(): Promise<ReloadResult> {
    return this.poller.check();
  }

  /** Told the result of every poll, timer's or SIGHUP's (the metrics count reloads). */
  set onResult(hook: ((result: ReloadResult) => void) | null) {
    this.poller.onResult = hook;
  }

  private accept(material: TlsMaterial, first: boolean): void {
    this.onReload(material);
    this.crlNextUpdate = earliestNextUpdate(material);
    this.crlWarnedAt = 0;
    this.log.info(
      {
        certificate: describeCertificate(material.leaf),
        caCount: material.cas.length,
        ...(material.crls === undefined ? {} : { crl: describeCrls(material.crls) }),
      },
      first ? 'loaded TLS credentials' : 'reloaded TLS credentials; new connections use them',
    );
    this.warnCrl();
  }
}
