// Turning a failed call into a message a person can act on, and an exit code.
//
// gRPC reports most connection problems as UNAVAILABLE or DEADLINE_EXCEEDED
// with little detail (a refused client certificate under TLS 1.3 arrives only
// as a dropped connection). So on those failures the client looks again, step
// by step, the way a person would: resolve the name, open a TCP connection,
// then a TLS one with the same files, and reports the first step that fails.
import * as grpc from '@grpc/grpc-js';
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { isIP, connect as netConnect } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import {
  Revocations,
  SERVER_CERT_POLICY,
  SERVER_CERT_REVOKED,
  checkServer,
  revokedServerError,
} from '../tls/client-credentials.js';
import { parseCrls } from '../tls/crl.js';
import { splitPemCertificates } from '../tls/material.js';
import type { ClientOptions } from './client.js';
import * as exit from '../shared/exit-codes.js';

export interface Diagnosis {
  exitCode: number;
  message: string;
}

/** Where a target points: a host and port, or a unix socket path. */
export function parseTarget(target: string): { host: string; port: number } | { path: string } {
  if (target.startsWith('unix:')) return { path: target.replace(/^unix:(\/\/)?/, '') };
  const hostPort = target.replace(/^dns:(\/\/[^/]*)?\/?/, '');
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(hostPort);
  return m ? { host: m[1] ?? hostPort, port: Number(m[2]) } : { host: hostPort, port: 443 };
}

/** How long each diagnostic step may take: enough for loopback and a cluster network. */
const STEP_TIMEOUT_MS = 3000;

type TlsOutcome =
  { ok: true } | { ok: false; error: NodeJS.ErrnoException & { cert?: PeerCertificate } };

/**
 * Connects with the client's own TLS settings. An HTTP/2 server speaks first
 * (its SETTINGS frame), so a connection closed after our side of the handshake
 * with nothing received means the server refused our certificate (TLS 1.3
 * checks it after the client has finished).
 */
function tlsAttempt(options: ConnectionOptions): Promise<TlsOutcome> {
  return new Promise((resolve) => {
    const socket = tlsConnect({ ...options, ALPNProtocols: ['h2'], timeout: STEP_TIMEOUT_MS });
    let settled = false;
    const done = (outcome: TlsOutcome) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(outcome);
    };
    socket.once('data', () => done({ ok: true }));
    socket.once('error', (error: Error) => done({ ok: false, error }));
    socket.once('timeout', () =>
      done({
        ok: false,
        error: Object.assign(new Error('no answer from the server within the step timeout'), {
          code: 'ETIMEDOUT',
        }),
      }),
    );
    socket.once('close', () =>
      done({
        ok: false,
        error: Object.assign(
          new Error('the server closed the connection right after the TLS handshake'),
          { code: 'ECLOSED_AFTER_HANDSHAKE' },
        ),
      }),
    );
  });
}

function tcpAttempt(
  where: { host: string; port: number } | { path: string },
): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const socket = netConnect(
      'path' in where ? { path: where.path } : { host: where.host, port: where.port },
    );
    socket.setTimeout(STEP_TIMEOUT_MS, () => {
      socket.destroy();
      resolve(Object.assign(new Error('connection timed out'), { code: 'ETIMEDOUT' }));
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(null);
    });
    socket.once('error', (err) => resolve(err));
  });
}

/** Looks for why the connection failed; null when every step succeeds. */
export async function diagnoseConnection(opts: ClientOptions): Promise<Diagnosis | null> {
  const where = parseTarget(opts.target);
  if (!('path' in where) && isIP(where.host) === 0) {
    try {
      await lookup(where.host);
    } catch (err) {
      return {
        exitCode: exit.NAME_NOT_RESOLVED,
        message: `cannot resolve ${where.host} (${(err as NodeJS.ErrnoException).code}): check the name in GRPC_TARGET and your DNS`,
      };
    }
  }
  const shown = 'path' in where ? where.path : `${where.host}:${where.port}`;
  const tcpError = await tcpAttempt(where);
  if (tcpError) {
    return {
      exitCode: exit.CONNECTION_REFUSED,
      message: `cannot connect to ${shown} (${tcpError.code ?? tcpError.message}): is the server running and listening there?`,
    };
  }
  const serverName = opts.serverName ?? ('path' in where ? 'localhost' : where.host);
  const revocations = readRevocations(opts);
  const outcome = await tlsAttempt({
    ...('path' in where ? { path: where.path } : { host: where.host, port: where.port }),
    // Node checks the certificate against servername, else host: the name gRPC checks too.
    servername: isIP(serverName) ? undefined : serverName,
    // The same revocation, name and certificate-policy checks the client library makes.
    checkServerIdentity: (_host, cert) => {
      if (revocations?.has(new X509Certificate(cert.raw))) return revokedServerError(cert);
      return checkServer(serverName, cert);
    },
    ca: readFileSync(opts.caFile),
    cert: readFileSync(opts.certFile),
    key: readFileSync(opts.keyFile),
  });
  if (outcome.ok) return null;
  return classifyTlsError(outcome.error, serverName, shown, opts);
}

/** The CRLs of TLS_CRL_FILE, as the client library loaded them; null without one or when unreadable now. */
function readRevocations(opts: ClientOptions): Revocations | null {
  if (opts.crlFile === undefined || opts.crlFile === '') return null;
  try {
    const cas = splitPemCertificates(readFileSync(opts.caFile, 'utf8'));
    return new Revocations(
      cas.map((pem) => new X509Certificate(pem)),
      parseCrls(readFileSync(opts.crlFile, 'utf8')),
    );
  } catch {
    // Checked when the client started; a file swapped since is the library's reload to report.
    return null;
  }
}

function classifyTlsError(
  error: NodeJS.ErrnoException & { cert?: PeerCertificate },
  serverName: string,
  shown: string,
  opts: ClientOptions,
): Diagnosis {
  const code = error.code ?? '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return {
      exitCode: exit.SERVER_NAME_MISMATCH,
      message: `the server at ${shown} presented a certificate that does not cover the name ${serverName}; its names are: ${error.cert?.subjectaltname ?? 'none'}. Dial one of those names or set TLS_SERVER_NAME`,
    };
  }
  if (code === SERVER_CERT_REVOKED) {
    return {
      exitCode: exit.SERVER_CERT_REVOKED,
      message: `the server certificate at ${shown} is revoked: TLS_CRL_FILE (${opts.crlFile ?? ''}) lists its serial ${error.cert?.serialNumber ?? '?'}. The server needs a new certificate (\`npm run gen-certs\` re-issues it), deployed before it is trusted again`,
    };
  }
  const untrusted = [
    'SELF_SIGNED_CERT_IN_CHAIN',
    'DEPTH_ZERO_SELF_SIGNED_CERT',
    'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
    'UNABLE_TO_GET_ISSUER_CERT',
    'CERT_SIGNATURE_FAILURE',
  ];
  if (untrusted.includes(code)) {
    return {
      exitCode: exit.SERVER_UNTRUSTED,
      message: `the server certificate at ${shown} is not signed by a CA in TLS_CA_FILE (${opts.caFile}) (${code}): use the CA bundle that issued the server's certificate`,
    };
  }
  // Ours (client-credentials.ts), or OpenSSL's own refusal of a SHA-1 or MD5 signature or a tiny key.
  if (code === SERVER_CERT_POLICY || /too weak|too small/.test(error.message)) {
    return {
      exitCode: exit.SERVER_UNTRUSTED,
      message: `the server certificate at ${shown} is refused (${error.message}): the server needs a certificate with an RSA key of at least 2048 bits or an EC key on P-256 or larger, signed with SHA-256 or better, and CA:FALSE`,
    };
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return {
      exitCode: exit.SERVER_UNTRUSTED,
      message: `the server certificate at ${shown} is not valid now (${code}): the server must rotate it`,
    };
  }
  if (
    /ALERT|alert/.test(code + error.message) ||
    ['ECONNRESET', 'EPIPE', 'ECLOSED_AFTER_HANDSHAKE'].includes(code)
  ) {
    return {
      exitCode: exit.CLIENT_CERT_REFUSED,
      message: `the server at ${shown} refused our client certificate TLS_CERT_FILE (${opts.certFile}) (${code || error.message}): it must be a clientAuth certificate, valid now, from a CA the server trusts`,
    };
  }
  return {
    exitCode: exit.RPC_FAILED,
    message: `TLS connection to ${shown} failed: ${error.message}`,
  };
}

/** The exit code and message for a failed call. */
export async function explainCallError(
  err: grpc.ServiceError,
  opts: ClientOptions,
  ownIdentity: string,
): Promise<Diagnosis> {
  switch (err.code) {
    case grpc.status.PERMISSION_DENIED:
      return {
        exitCode: exit.PERMISSION_DENIED,
        message: `permission denied for our identity ${ownIdentity}: ${err.details}`,
      };
    case grpc.status.UNAUTHENTICATED:
      return {
        exitCode: exit.CLIENT_CERT_REFUSED,
        message: `the server did not accept our identity: ${err.details}`,
      };
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED: {
      const found = await diagnoseConnection(opts);
      if (found) return found;
      if (err.code === grpc.status.DEADLINE_EXCEEDED) {
        return {
          exitCode: exit.DEADLINE_EXCEEDED,
          message: `deadline exceeded: ${err.details}. Raise GRPC_DEADLINE_MS if the call needs longer`,
        };
      }
      return { exitCode: exit.RPC_FAILED, message: `server unavailable: ${err.details}` };
    }
    default:
      return {
        exitCode: exit.RPC_FAILED,
        message: `${grpc.status[err.code] ?? err.code}: ${err.details}`,
      };
  }
}
