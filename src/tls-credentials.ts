// Server credentials that require a client certificate from our CA and follow
// the files on disk: a rotated certificate, key or CA bundle is picked up by new
// connections without a restart, while existing connections carry on.
//
// grpc-js's own FileWatcherCertificateProvider loads asynchronously (connections
// arriving before the first read are dropped) and reads the three files one by
// one (a Secret-volume swap between reads pairs an old certificate with a new
// key). Here the first set is loaded and checked before the server binds, and
// every later set must pass the same checks as a unit before it is used.
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import {
  describeCertificate,
  loadTlsMaterial,
  type TlsFiles,
  type TlsMaterial,
} from './tls-material.js';

export interface CredentialOptions {
  /** A TLS handshake not finished by then is dropped, so stalled peers cannot hold sockets. */
  handshakeTimeoutMs: number;
}

/** grpc-js ServerCredentials whose secure context can be replaced while serving. */
export class RotatingServerCredentials extends grpc.ServerCredentials {
  constructor(initial: TlsMaterial, options: CredentialOptions) {
    super(
      {
        requestCert: true,
        rejectUnauthorized: true,
        // Node's default floor, stated so that no environment variable lowers it.
        minVersion: 'TLSv1.2',
        handshakeTimeout: options.handshakeTimeoutMs,
      },
      contextOptions(initial),
    );
  }

  replace(material: TlsMaterial): void {
    this.updateSecureContextOptions(contextOptions(material));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

function contextOptions(m: TlsMaterial): SecureContextOptions {
  return { cert: m.cert, key: m.key, ca: m.ca };
}

function fingerprint(m: { cert: Buffer; key: Buffer; ca: Buffer }): string {
  return createHash('sha256')
    .update(m.cert)
    .update('\0')
    .update(m.key)
    .update('\0')
    .update(m.ca)
    .digest('hex');
}

/**
 * Polls the three files and applies a changed set once it passes every check.
 * Polling (rather than fs.watch) sees Kubernetes' `..data` symlink swaps and
 * works on every file system; the files are small.
 */
export class CredentialReloader {
  private timer: NodeJS.Timeout | null = null;
  private current: string;
  private lastRejected: string | null = null;
  private running = false;

  constructor(
    private readonly files: TlsFiles,
    private readonly credentials: RotatingServerCredentials,
    initial: TlsMaterial,
    private readonly log: Logger,
    private readonly onReload: (m: TlsMaterial) => void = () => {},
  ) {
    this.current = fingerprint(initial);
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
      const [cert, key, ca] = await Promise.all(
        [this.files.certFile, this.files.keyFile, this.files.caFile].map((f) => readFile(f)),
      );
      return fingerprint({ cert: cert as Buffer, key: key as Buffer, ca: ca as Buffer });
    } catch {
      return null;
    }
  }

  /** One poll; returns 'unchanged', 'reloaded' or 'rejected'. Exposed for tests and SIGHUP. */
  async check(): Promise<'unchanged' | 'reloaded' | 'rejected' | 'busy'> {
    if (this.running) return 'busy';
    this.running = true;
    try {
      if ((await this.readFingerprint()) === this.current) return 'unchanged';
      let material: TlsMaterial;
      try {
        material = await loadTlsMaterial(this.files, 'server');
      } catch (err) {
        // A missing or mismatched set may be a swap in progress; report each distinct failure once.
        const message = (err as Error).message;
        if (message !== this.lastRejected) {
          this.log.error(
            { err: message },
            'refused new TLS files; still serving with the last good credentials',
          );
          this.lastRejected = message;
        }
        return 'rejected';
      }
      const print = fingerprint(material);
      if (print === this.current) return 'unchanged';
      this.credentials.replace(material);
      this.current = print;
      this.lastRejected = null;
      this.log.info(
        { certificate: describeCertificate(material.leaf), caCount: material.cas.length },
        'reloaded TLS credentials; new connections use them',
      );
      this.onReload(material);
      return 'reloaded';
    } finally {
      this.running = false;
    }
  }
}
