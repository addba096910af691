// Server credentials that require a client certificate from our CA and can be
// replaced while serving: a rotated certificate, key or CA bundle (found by
// reloader.ts) is used by new connections, while existing ones carry on.
//
// grpc-js's own FileWatcherCertificateProvider loads asynchronously (connections
// arriving before the first read are dropped). Here the first set is loaded and
// checked before the server binds, so the secure context exists from the start.
import * as grpc from '@grpc/grpc-js';
import { constants } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import { SECURE_CIPHERS } from './cert-policy.js';
import type { TlsMaterial } from './material.js';

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

/**
 * No TLS session is resumed: every connection is a full handshake, in which the
 * client presents its certificate and it is checked against the CA bundle, the
 * CRLs and the policy in force. Sessions never outlived a rotation or CRL reload
 * (each new context has new ticket keys); within one context's life, a resumed
 * session would skip the expiry and CRL checks, and stand in for a certificate.
 * OpenSSL's TLS 1.3 server otherwise encrypts two tickets after each handshake,
 * each by encoding the session, client certificate included, and decoding it
 * again: 3.1 M of the 16.4 M instructions of a handshake (docs/performance.md).
 * grpc-js's and grpc-go's clients resume no sessions by default; one that does
 * loses a handshake's work per connection, which this server ends every
 * GRPC_MAX_CONNECTION_AGE_MS (5 minutes, about Node's ticket lifetime).
 * With this option TLS 1.3 tickets are stateful (a session ID) and none can be
 * found again while nothing gives the server a session store ('newSession' and
 * 'resumeSession' listeners, which neither grpc-js nor this server adds).
 * test/tls-sessions.test.ts holds it, rotated contexts included.
 */
const NO_RESUMPTION = constants.SSL_OP_NO_TICKET;

function contextOptions(m: TlsMaterial): SecureContextOptions {
  // Security level 2 in every context, the rotated ones too: OpenSSL itself then
  // refuses client keys below RSA 2048 and SHA-1 signatures (cert-policy.ts).
  // With CRLs, OpenSSL refuses a revoked client certificate (CERT_REVOKED) in the handshake.
  // Node's `crl` reads one CRL per entry (a buffer of several PEM blocks adds only the
  // first), so each CRL of a rollover's bundle is its own entry.
  return {
    cert: m.cert,
    key: m.key,
    ca: m.ca,
    ciphers: SECURE_CIPHERS,
    // Node's default floor, stated so that no environment variable lowers it. Here, not
    // with the server's options: setSecureContext() resets what a rotation does not pass.
    minVersion: 'TLSv1.2',
    secureOptions: NO_RESUMPTION,
    ...(m.crls === undefined ? {} : { crl: m.crls.map((c) => c.pem) }),
  };
}
