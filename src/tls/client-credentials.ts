// Channel credentials that follow the client's TLS files: a rotated client
// certificate or CA bundle is used for new connections without a restart (the
// client half of a CA rollover). grpc-js waits for the first certificates
// before it connects, so nothing races the initial load.
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { certificateProblem } from './cert-policy.js';
import { crlOf, normaliseSerial, type CrlInfo } from './crl.js';
import type { TlsFiles } from './material.js';
import { SILENT_LOG, TlsReloader, type ReloadLog } from './reloader.js';

type CaUpdate = grpc.experimental.CaCertificateUpdate;
type IdentityUpdate = grpc.experimental.IdentityCertificateUpdate;

/** A grpc-js CertificateProvider fed by TlsReloader: only checked, matching sets are published. */
export class ReloadingCertificateProvider implements grpc.experimental.CertificateProvider {
  /** `undefined`: not loaded yet; `null`: the first load failed (connections fail fast). */
  private ca: CaUpdate | null | undefined = undefined;
  private identity: IdentityUpdate | null | undefined = undefined;
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly identityListeners =
    new Set<grpc.experimental.IdentityCertificateUpdateListener>();
  readonly reloader: TlsReloader;
  /** What the loaded CRLs revoke; null with no CRL configured. */
  private revoked: Revocations | null = null;

  constructor(files: TlsFiles, intervalMs: number, log: ReloadLog = SILENT_LOG) {
    this.reloader = new TlsReloader(files, 'client', null, log, (m) => {
      // Swapped with the certificates, so a connection is checked against one set.
      this.revoked = m.crls ? new Revocations(m.cas, m.crls) : null;
      this.publish({ caCertificate: m.ca }, { certificate: m.cert, privateKey: m.key });
    });
    void this.reloader.check().then((result) => {
      if (result === 'rejected' && this.ca === undefined) this.publish(null, null);
    });
    this.reloader.start(intervalMs);
  }

  private publish(ca: CaUpdate | null, identity: IdentityUpdate | null): void {
    this.ca = ca;
    this.identity = identity;
    for (const listener of this.caListeners) listener(ca);
    for (const listener of this.identityListeners) listener(identity);
  }

  addCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(listener);
    if (this.ca !== undefined) listener(this.ca);
  }

  removeCaCertificateListener(listener: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(listener);
  }

  addIdentityCertificateListener(
    listener: grpc.experimental.IdentityCertificateUpdateListener,
  ): void {
    this.identityListeners.add(listener);
    if (this.identity !== undefined) listener(this.identity);
  }

  removeIdentityCertificateListener(
    listener: grpc.experimental.IdentityCertificateUpdateListener,
  ): void {
    this.identityListeners.delete(listener);
  }

  close(): void {
    this.reloader.stop();
  }

  isRevoked(cert: X509Certificate): boolean {
    return this.revoked?.has(cert) ?? false;
  }
}

/** Per CA of a bundle, the serials its CRL revokes (lower-case hex). */
export class Revocations {
  private readonly byCa: { ca: X509Certificate; serials: ReadonlySet<string> }[];

  constructor(cas: X509Certificate[], crls: CrlInfo[]) {
    this.byCa = cas.map((ca) => ({
      ca,
      serials: new Set((crlOf(crls, ca)?.entries ?? []).map((e) => e.serial)),
    }));
  }

  /**
   * Whether the CRL of the CA that issued `cert` revokes it. A loaded set holds
   * a CRL for every CA (material.ts), and Node verified the chain before this
   * runs, so one of the CAs issued it.
   */
  has(cert: X509Certificate): boolean {
    const serial = normaliseSerial(cert.serialNumber);
    return this.byCa.some((r) => r.serials.has(serial) && cert.checkIssued(r.ca));
  }
}

/** How a revoked server certificate fails the connection: the code OpenSSL gives, as on the server. */
export function revokedServerError(cert: PeerCertificate): Error {
  return Object.assign(
    new Error(`the server certificate is revoked (serial ${cert.serialNumber})`),
    {
      code: SERVER_CERT_REVOKED,
      cert,
    },
  );
}

/** A server certificate the policy refuses; the message names why. */
export const SERVER_CERT_POLICY = 'ERR_TLS_SERVER_CERT_POLICY';
/** The server certificate is on the CRL: the code OpenSSL's verify gives, as on the server. */
export const SERVER_CERT_REVOKED = 'CERT_REVOKED';

/**
 * Node's host name check, then cert-policy.ts on the server's certificate.
 * Node calls this only once the chain verified, inside the handshake, and
 * fails the connection with the error returned. (grpc-js builds the client's
 * secure context itself and only takes a security level from the environment,
 * GRPC_SSL_CIPHER_SUITES, so the key and signature checks are made here; OpenSSL
 * already refuses SHA-1 at Node's default level 1.)
 */
export function checkServer(host: string, cert: PeerCertificate): Error | undefined {
  const mismatch = checkServerIdentity(host, cert);
  if (mismatch !== undefined) return mismatch;
  const problem = certificateProblem(new X509Certificate(cert.raw));
  if (problem === null) return undefined;
  return Object.assign(new Error(`the server certificate is refused: ${problem}`), {
    code: SERVER_CERT_POLICY,
  });
}

/**
 * grpc-js builds the client's secure context from the provider's CA and
 * identity only, with no place for a CRL; so the server certificate's serial is
 * checked against the CRL here, after Node verified the chain to the CA that
 * signed the CRL (the CRL itself was checked against that bundle when loaded).
 */
export function reloadingChannelCredentials(
  provider: ReloadingCertificateProvider,
): grpc.ChannelCredentials {
  return grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity: (host, cert) => {
      if (provider.isRevoked(new X509Certificate(cert.raw))) return revokedServerError(cert);
      return checkServer(host, cert);
    },
  });
}
